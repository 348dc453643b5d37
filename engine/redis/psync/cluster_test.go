package psync_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/internal/redistest"
	"github.com/ferrymigrate/ferry/internal/testharness"
)

// TestClusterTarget migrates a standalone source into a Redis Cluster of 3
// masters: slot routing for the full and the incremental sync, then a
// verification across every master.
func TestClusterTarget(t *testing.T) {
	e := redistest.NewEnv(t, "--repl-diskless-sync-delay", "0")
	nodes := testharness.StartRedisCluster(t, 3, 0)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr)
	}
	ctx := context.Background()
	redistest.PopulateDBs(t, e.SrcC, "pre:", 1)
	if err := e.SrcC.Do(ctx, "DEBUG", "POPULATE", 20000, "bulk", 64).Err(); err != nil {
		t.Fatal(err)
	}
	m := &ferry.Migration{ProjectID: e.Proj.ID, Engine: ferry.KindRedis,
		Source: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Src}},
		Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: addrs, Cluster: true},
		Modes:  ferry.Modes{Full: true, Incremental: true, Verify: true}}
	if err := e.Svc.CreateMigration(e.Ctx, m, true); err != nil {
		t.Fatal(err)
	}
	e.Agent("agent-1")
	e.Wait(m.ID, "ready for cutover", 60*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	for i := 0; i < 2000; i++ {
		pipe := e.SrcC.Pipeline()
		pipe.Set(ctx, fmt.Sprintf("live:%d", i), i, 0)
		pipe.Incr(ctx, "live:n")
		pipe.RPush(ctx, "live:list", i)
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Svc.CutoverMigration(e.Ctx, e.Proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.Wait(m.ID, "completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 || v.Counters.Done < 20000 {
		t.Fatalf("verify %+v: %s", v.Counters, v.Message)
	}
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	if n, _ := cc.Get(ctx, "live:n").Int(); n != 2000 {
		t.Fatalf("live:n = %d on the cluster", n)
	}
	// The keys are spread over the three masters.
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		n, _ := c.DBSize(ctx).Result()
		c.Close()
		if n < 5000 {
			t.Errorf("master %s holds only %d keys", a, n)
		}
	}
	t.Logf("cluster target: %d keys verified equal; incremental %d commands", v.Counters.Done, m.Step(ferry.StepIncremental).Counters.Ops)
}
