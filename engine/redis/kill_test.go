package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/internal/redistest"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/postgres"
)

func redisCheckpoint(t *testing.T, s *ferry.Step) map[string]any {
	var m map[string]any
	if len(s.Checkpoint) > 0 {
		if err := json.Unmarshal(s.Checkpoint, &m); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// TestKillAgentMidFullAndMidIncremental kills `ferry agent` processes with
// SIGKILL during the full sync and during the incremental sync; the agents
// that take over resume (the full sync again, the incremental by partial
// resync) and the target ends equal to the source.
func TestKillAgentMidFullAndMidIncremental(t *testing.T) {
	e := redistest.NewEnv(t, "--repl-diskless-sync-delay", "0")
	pg := testharness.StartPostgres(t)
	store, err := postgres.Open(context.Background(), pg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.Store = store
	e.Svc.Store = store
	sys := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	org, err := e.Svc.CreateOrg(sys, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if e.Proj, err = e.Svc.CreateProject(sys, org.ID, "prod"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// 60k keys of 200 random (incompressible) bytes: a ~13 MB RDB.
	rnd := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, 200)
	for i := 0; i < 60; i++ {
		pipe := e.SrcC.Pipeline()
		for j := 0; j < 1000; j++ {
			for k := range val {
				val[k] = byte(rnd.Uint32())
			}
			pipe.Set(ctx, fmt.Sprintf("bulk:%d", i*1000+j), string(val), 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	redistest.Populate(t, e.SrcC, "pre:")
	// 2 MB/s on the source stream makes the ~15 MB RDB take a few seconds.
	m := e.Create(ferry.Modes{Full: true, Incremental: true, Verify: true}, ferry.Options{BandwidthLimitMB: 2})

	a := testharness.StartFerryAgent(t, pg, "agent-a")
	m = e.Wait(m.ID, "full sync under way", 60*time.Second, func(m *ferry.Migration) bool {
		s := m.Step(ferry.StepFull)
		return s.State == ferry.StepRunning && s.Counters.Bytes > 1<<20
	})
	fullBefore := m.Step(ferry.StepFull).Counters
	testharness.KillProcess(t, a)
	b := testharness.StartFerryAgent(t, pg, "agent-b")
	m = e.Wait(m.ID, "ready for cutover after the takeover", 90*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	cp := redisCheckpoint(t, m.Step(ferry.StepFull))
	if cp["fullResyncs"] != 2.0 {
		t.Errorf("full step checkpoint %v: want 2 full syncs (the killed one and the one after)", cp)
	}
	if fmt.Sprint(m.Hosts) != "[agent-a agent-b]" {
		t.Errorf("hosts %v", m.Hosts)
	}

	// The application writes on; kill the agent mid-incremental.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var n int
	go func() {
		defer wg.Done()
		for ; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := e.SrcC.Set(ctx, fmt.Sprintf("live:%d", n), n, 0).Err(); err != nil {
				t.Error(err)
				return
			}
			if err := e.SrcC.Incr(ctx, "live:n").Err(); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	e.Wait(m.ID, "incremental progress", 30*time.Second, func(m *ferry.Migration) bool { return m.Step(ferry.StepIncremental).Counters.Ops > 200 })
	testharness.KillProcess(t, b)
	time.Sleep(500 * time.Millisecond) // an outage shorter than the backlog holds
	testharness.StartFerryAgent(t, pg, "agent-c")
	m = e.Wait(m.ID, "partial resync by agent-c", 60*time.Second, func(m *ferry.Migration) bool {
		cp := redisCheckpoint(t, m.Step(ferry.StepIncremental))
		return len(m.Hosts) == 3 && cp["partialResyncs"] == 1.0 && m.ReadyForCutover
	})
	close(stop)
	wg.Wait()
	if _, err := e.Svc.CutoverMigration(e.Ctx, e.Proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.Wait(m.ID, "completed", 90*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	cp = redisCheckpoint(t, m.Step(ferry.StepIncremental))
	if cp["fullResyncs"] != 2.0 || cp["partialResyncs"] != 1.0 {
		t.Errorf("incremental checkpoint %v: want the partial resync after the kill and no further full sync", cp)
	}
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 || v.Counters.Done < 60000 {
		t.Fatalf("verify %+v: %s", v.Counters, v.Message)
	}
	if got, _ := e.DstC.Get(ctx, "live:n").Int(); got != n {
		t.Fatalf("live:n = %d on the target, %d writes on the source", got, n)
	}
	if a, b := redistest.Digest(t, e.SrcC), redistest.Digest(t, e.DstC); a != b {
		t.Fatalf("DEBUG DIGEST differs: %s vs %s", a, b)
	}
	t.Logf("killed agent-a at %d bytes / %d keys of the full sync; agent-b redid it; killed agent-b after %d+ commands; agent-c resumed by partial resync; %d app writes; verify %d keys equal",
		fullBefore.Bytes, fullBefore.Done, 200, n, v.Counters.Done)
}
