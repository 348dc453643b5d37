package mongo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/postgres"
)

func checkpointOf(t *testing.T, s *ferry.Step) map[string]any {
	var m map[string]any
	if len(s.Checkpoint) > 0 {
		if err := json.Unmarshal(s.Checkpoint, &m); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// usePostgres moves the env onto a PostgreSQL store, the store that real
// `ferry agent` processes share.
func (e *env) usePostgres() string {
	e.t.Helper()
	pg := testharness.StartPostgres(e.t)
	store, err := postgres.Open(context.Background(), pg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { store.Close() })
	e.store = store
	e.svc.Store = store
	org, err := e.svc.CreateOrg(e.ctx, "acme")
	if err != nil {
		e.t.Fatal(err)
	}
	if e.proj, err = e.svc.CreateProject(e.ctx, org.ID, "prod"); err != nil {
		e.t.Fatal(err)
	}
	return pg
}

// TestKillAgentMidCopyAndMidSync SIGKILLs `ferry agent` processes (kill
// -9, on a PostgreSQL store) during the initial sync and during the
// continuous sync while the application writes on; the agent processes
// that take over resume from the checkpoints (the copy skips the finished
// collections and copies the others again over what they left, the sync
// restarts from the saved oplog position) and the target ends equal to the
// source: verification reports 0 differences and every document is equal
// byte for byte.
func TestKillAgentMidCopyAndMidSync(t *testing.T) {
	e := newEnv(t)
	pg := e.usePostgres()
	seed(t, e.src, 12000)
	// 1 MB/s makes the ~3 MB copy take a few seconds.
	m := e.create(ferry.Modes{Full: true, Incremental: true, Verify: true},
		ferry.Options{Filters: ferry.Filters{ExcludeDBs: []string{"scratch"}}, Parallelism: 2, BandwidthLimitMB: 1})
	a := testharness.StartFerryAgent(t, pg, "agent-a")
	w := startWriter(t, e.src, "k", 200*time.Millisecond)
	m = e.wait(m.ID, "copy under way", 60*time.Second, func(m *ferry.Migration) bool {
		s := m.Step(ferry.StepFull)
		done := 0
		if cp := checkpointOf(t, s); cp != nil {
			parts, _ := cp["partitions"].([]any)
			for _, p := range parts {
				if p.(map[string]any)["done"] == true {
					done++
				}
			}
		}
		return s.State == ferry.StepRunning && done >= 2 && s.Counters.Done > 1000
	})
	before := m.Step(ferry.StepFull).Counters
	testharness.KillProcess(t, a)
	b := testharness.StartFerryAgent(t, pg, "agent-b")
	m = e.wait(m.ID, "syncing after the takeover", 120*time.Second, func(m *ferry.Migration) bool {
		return m.ReadyForCutover && m.Step(ferry.StepIncremental).Counters.Ops > 5
	})
	if cp := checkpointOf(t, m.Step(ferry.StepFull)); cp["copies"] != 2.0 {
		t.Errorf("full checkpoint copies = %v, want 2 (the killed copy and its resume)", cp["copies"])
	}
	opsBefore := m.Step(ferry.StepIncremental).Counters.Ops
	// Let a checkpoint of the sync be saved, then kill it between saves.
	m = e.wait(m.ID, "sync checkpointed", 30*time.Second, func(m *ferry.Migration) bool {
		return len(m.Step(ferry.StepIncremental).Checkpoint) > 0 && m.Step(ferry.StepIncremental).Counters.Ops > opsBefore+3
	})
	testharness.KillProcess(t, b)
	time.Sleep(time.Second) // the application writes on while no agent runs
	testharness.StartFerryAgent(t, pg, "agent-c")
	m = e.wait(m.ID, "sync resumed by agent-c", 180*time.Second, func(m *ferry.Migration) bool {
		cp := checkpointOf(t, m.Step(ferry.StepIncremental))
		r, _ := cp["resumes"].(float64)
		return len(m.Hosts) == 3 && r >= 1 && m.ReadyForCutover
	})
	n := w.halt()
	if _, err := e.svc.CutoverMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.wait(m.ID, "completed", 90*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 || v.Counters.Done < 12000 {
		t.Fatalf("verify %+v: %s", v.Counters, v.Message)
	}
	if fmt.Sprint(m.Hosts) != "[agent-a agent-b agent-c]" {
		t.Errorf("hosts %v", m.Hosts)
	}
	docs := sameBytes(t, e.src, e.dst, movedNS...)
	icp := checkpointOf(t, m.Step(ferry.StepIncremental))
	t.Logf("kill -9 of agent-a at %d/%d documents of the copy; agent-b resumed it and synced %d changes; kill -9 of agent-b; agent-c resumed (resumes %v, %v changes in all); %d writer rounds; %d documents equal byte for byte; %s",
		before.Done, before.Total, opsBefore, icp["resumes"], icp["ops"], n, docs, v.Message)
}
