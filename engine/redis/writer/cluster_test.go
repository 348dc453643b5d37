package writer

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry/internal/testharness"
)

func clusterClient(t testing.TB, nodes []*redisServer) *redis.ClusterClient {
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSlot(t *testing.T) {
	// Values from the Redis Cluster specification and redis-cli CLUSTER KEYSLOT.
	for key, want := range map[string]int{"123456789": 12739, "foo": 12182, "{user1000}.following": Slot([]byte("user1000")), "foo{}{bar}": Slot([]byte("foo{}{bar}")), "": 0} {
		if got := Slot([]byte(key)); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	if Slot([]byte("{user1000}.following")) != Slot([]byte("{user1000}.followers")) {
		t.Error("hashtag ignored")
	}
}

func TestClusterTarget(t *testing.T) {
	nodes := startCluster(t, 3, 0)
	ctx := context.Background()
	w := mustNew(t, Options{Addrs: []string{nodes[0].Addr}, Cluster: true, Conns: 4})
	const n = 20000
	for i := 0; i < n; i++ {
		do(t, w, 0, "SET", "k"+strconv.Itoa(i), strconv.Itoa(i))
	}
	for i := 0; i < 100; i++ {
		do(t, w, 0, "APPEND", "ord", strconv.Itoa(i%10))
	}
	// Cross-slot MSET and DEL are split per slot.
	do(t, w, 0, "MSET", "ma", "1", "mb", "2", "mc", "3", "{ma}x", "4")
	do(t, w, 0, "DEL", "k1", "k2", "k3")
	// A same-slot transaction.
	do(t, w, 0, "MULTI")
	do(t, w, 0, "SET", "{tx}a", "1")
	do(t, w, 0, "INCR", "{tx}b")
	do(t, w, 0, "EXEC")
	// Same-slot multi-key command.
	do(t, w, 0, "RENAME", "{ma}x", "{ma}y")
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c := clusterClient(t, nodes)
	var sum atomic.Int64
	_ = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		sum.Add(m.DBSize(ctx).Val())
		return nil
	})
	total := sum.Load()
	// n - 3 deleted + ord + ma mb mc {ma}y + {tx}a {tx}b
	if want := int64(n - 3 + 1 + 4 + 2); total != want {
		t.Fatalf("%d keys, want %d", total, want)
	}
	want := strings.Repeat("0123456789", 10)
	if got := c.Get(ctx, "ord").Val(); got != want {
		t.Fatalf("ord = %q", got)
	}
	if c.Get(ctx, "mc").Val() != "3" || c.Get(ctx, "{tx}b").Val() != "1" || c.Get(ctx, "{ma}y").Val() != "4" {
		t.Fatal("values")
	}
	// Cross-slot RENAME cannot be applied to a cluster.
	err := w.Do(0, bs("RENAME", "ma", "mb")...)
	if err == nil || !strings.Contains(err.Error(), "RENAME") || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("cross-slot RENAME: %v", err)
	}
	if err := w.Do(1, bs("SET", "a", "b")...); err == nil || !strings.Contains(err.Error(), "db 1") {
		t.Fatalf("db 1 on a cluster: %v", err)
	}
	// Error replies name the command and key.
	do(t, w, 0, "LPUSH", "k10", "x")
	err = w.Flush(ctx)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Command != "LPUSH" || ce.Key != "k10" {
		t.Fatalf("Flush = %v", err)
	}
}

// TestClusterFailover kills a master with SIGKILL while writing: its replica
// takes over and every write still lands.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	nodes := startCluster(t, 3, 1)
	ctx := context.Background()
	w := mustNew(t, Options{Addrs: []string{nodes[0].Addr, nodes[1].Addr, nodes[2].Addr}, Cluster: true, Conns: 4, RetryTimeout: 60 * time.Second})
	const n = 30000
	for i := 0; i < n; i++ {
		if i == n/3 {
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			// Acknowledged writes must have reached the replica, or the
			// failover itself would lose them (replication is asynchronous).
			mc := redis.NewClient(&redis.Options{Addr: nodes[1].Addr})
			if err := mc.Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
				t.Fatal(err)
			}
			mc.Close()
			nodes[1].Kill()
		}
		do(t, w, 0, "SET", "f"+strconv.Itoa(i), strconv.Itoa(i))
		if i%1000 == 0 {
			time.Sleep(20 * time.Millisecond) // spread the writes over the failover
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var alive []*redisServer
	for i, n := range nodes {
		if i != 1 {
			alive = append(alive, n)
		}
	}
	c := clusterClient(t, alive)
	for i := 0; i < n; i++ {
		k := "f" + strconv.Itoa(i)
		if got, err := c.Get(ctx, k).Result(); err != nil || got != strconv.Itoa(i) {
			t.Fatalf("%s = %q, %v", k, got, err)
		}
	}
	if w.Applied() != n {
		t.Fatalf("applied %d", w.Applied())
	}
}

// TestClusterReshardWhileWriting moves slots between masters (MIGRATE,
// ASK and MOVED redirections) while order-sensitive commands are written.
func TestClusterReshardWhileWriting(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if testharness.InCI() {
			t.Fatal("redis-cli is not installed (redis-tools) and CI=true")
		}
		t.Skip("redis-cli is not installed (apt-get install -y redis-tools)")
	}
	nodes := startCluster(t, 3, 0)
	ctx := context.Background()
	ids := make([]string, 2)
	for i := range ids {
		c := redis.NewClient(&redis.Options{Addr: nodes[i].Addr})
		ids[i], err = c.ClusterMyID(ctx).Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	w := mustNew(t, Options{Addrs: []string{nodes[2].Addr}, Cluster: true, Conns: 4, Batch: 64})
	// Some keys exist before the move.
	const keys = 2000
	want := make([]string, keys)
	for i := 0; i < keys; i++ {
		do(t, w, 0, "SET", "r"+strconv.Itoa(i), "")
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		out, err := exec.Command(cli, "--cluster", "reshard", nodes[0].Addr, "--cluster-from", ids[0], "--cluster-to", ids[1],
			"--cluster-slots", "3000", "--cluster-yes", "--cluster-pipeline", "10").CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		done <- err
	}()
	moving := true
	rounds := 0
	for round := 0; moving || round < 3; round++ {
		rounds++
		for i := 0; i < keys; i++ {
			s := strconv.Itoa(round % 10)
			do(t, w, 0, "APPEND", "r"+strconv.Itoa(i), s)
			want[i] += s
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			moving = false
		default:
			time.Sleep(5 * time.Millisecond)
		}
		if round > 2000 {
			t.Fatal("reshard did not finish")
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rounds of %d APPENDs while 3000 slots moved", rounds, keys)
	c := clusterClient(t, nodes)
	for i := 0; i < keys; i++ {
		k := "r" + strconv.Itoa(i)
		if got := c.Get(ctx, k).Val(); got != want[i] {
			t.Fatalf("%s = %q, want %q", k, got, want[i])
		}
	}
	// The slots really moved.
	n1 := redis.NewClient(&redis.Options{Addr: nodes[1].Addr})
	defer n1.Close()
	if sz := n1.DBSize(ctx).Val(); sz < keys/3+keys/6 {
		t.Fatalf("node 1 has only %d keys after the reshard", sz)
	}
}
