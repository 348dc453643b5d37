package testharness

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartRedisCluster starts masters*(1+replicas) cluster-enabled redis-servers and
// joins them with redis-cli --cluster create. The first `masters` servers
// returned are the masters.
func StartRedisCluster(t testing.TB, masters, replicas int) []*RedisServer {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if InCI() {
			t.Fatal("redis-cli is not installed (redis-tools) and CI=true")
		}
		t.Skip("redis-cli is not installed (apt-get install -y redis-tools)")
	}
	var nodes []*RedisServer
	var addrs []string
	for i := 0; i < masters*(1+replicas); i++ {
		s := StartRedisServer(t, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(clusterBusPort(t)),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no")
		nodes = append(nodes, s)
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Wait until every node says ok and the replicas are attached.
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr})
		for {
			info, _ := c.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ok on %s: %s", n.Addr, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Close()
	}
	// redis-cli assigns masters to the first nodes given.
	var out []*RedisServer
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr})
		role, _ := c.Do(context.Background(), "ROLE").Slice()
		c.Close()
		if len(role) > 0 && role[0] == "master" {
			out = append(out, n)
		}
	}
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr})
		role, _ := c.Do(context.Background(), "ROLE").Slice()
		c.Close()
		if len(role) > 0 && role[0] != "master" {
			out = append(out, n)
		}
	}
	if replicas > 0 {
		// Wait for the replicas to be in sync.
		for _, n := range out[masters:] {
			c := redis.NewClient(&redis.Options{Addr: n.Addr})
			for {
				info, _ := c.Info(context.Background(), "replication").Result()
				if strings.Contains(info, "master_link_status:up") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("replica %s not in sync", n.Addr)
				}
				time.Sleep(100 * time.Millisecond)
			}
			c.Close()
		}
	}
	return out
}

// clusterBusPort returns a free loopback port for a node's cluster bus.
func clusterBusPort(t testing.TB) int {
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
