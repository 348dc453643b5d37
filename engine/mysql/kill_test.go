package mysql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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

// TestKillAgentMidFullAndMidIncremental SIGKILLs `ferry agent` processes
// during the full copy and during the incremental sync while the
// application writes on; the agents that take over resume (the full copy
// under a new snapshot, the stream from the target's marker) and the target
// ends equal to the source: mysqldump of both sides identical, verification
// with 0 differences (key-less rows would be doubled by a change applied
// twice).
func TestKillAgentMidFullAndMidIncremental(t *testing.T) {
	e := newEnv(t)
	pg := testharness.StartPostgres(t)
	store, err := postgres.Open(context.Background(), pg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.store = store
	e.svc.Store = store
	org, err := e.svc.CreateOrg(e.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if e.proj, err = e.svc.CreateProject(e.ctx, org.ID, "prod"); err != nil {
		t.Fatal(err)
	}
	seed(t, e.srcDB, 60000)
	w := startWriter(t, e.srcDB, 2)
	// 1 MB/s makes the ~4 MB copy take a few seconds.
	m := e.create(ferry.Modes{Full: true, Incremental: true, Verify: true}, ferry.Options{BandwidthLimitMB: 1, Parallelism: 2})
	// The schema step is off: the full step creates the tables.
	a := testharness.StartFerryAgent(t, pg, "agent-a")
	m = e.wait(m.ID, "full copy under way", 60*time.Second, func(m *ferry.Migration) bool {
		s := m.Step(ferry.StepFull)
		return s.State == ferry.StepRunning && s.Counters.Done > 20000
	})
	fullBefore := m.Step(ferry.StepFull).Counters
	testharness.KillProcess(t, a)
	b := testharness.StartFerryAgent(t, pg, "agent-b")
	m = e.wait(m.ID, "ready for cutover after the takeover", 120*time.Second, func(m *ferry.Migration) bool {
		return m.ReadyForCutover && m.Step(ferry.StepIncremental).Counters.Ops > 0
	})
	cp := checkpointOf(t, m.Step(ferry.StepFull))
	if cp["snapshots"] != 2.0 {
		t.Errorf("full checkpoint snapshots = %v, want 2 (the killed copy and its resume)", cp["snapshots"])
	}
	if fmt.Sprint(m.Hosts) != "[agent-a agent-b]" {
		t.Errorf("hosts %v", m.Hosts)
	}
	opsBefore := m.Step(ferry.StepIncremental).Counters.Ops
	m = e.wait(m.ID, "incremental progress", 60*time.Second, func(m *ferry.Migration) bool {
		return m.Step(ferry.StepIncremental).Counters.Ops > opsBefore+300
	})
	testharness.KillProcess(t, b)
	time.Sleep(300 * time.Millisecond)
	testharness.StartFerryAgent(t, pg, "agent-c")
	m = e.wait(m.ID, "incremental resumed by agent-c", 60*time.Second, func(m *ferry.Migration) bool {
		cp := checkpointOf(t, m.Step(ferry.StepIncremental))
		r, _ := cp["resumes"].(float64)
		return len(m.Hosts) == 3 && r >= 1 && m.ReadyForCutover
	})
	time.Sleep(300 * time.Millisecond)
	n := w.halt(t)
	if _, err := e.svc.CutoverMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.wait(m.ID, "completed", 90*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 || v.Counters.Done < 60000 {
		t.Fatalf("verify %+v: %s", v.Counters, v.Message)
	}
	// No schema step: the full step created the tables, not the view.
	compareDumps(t, dump(t, e.src, "shop", "--ignore-table=shop.big_even"), dump(t, e.dst, "shop"))
	icp := checkpointOf(t, m.Step(ferry.StepIncremental))
	var left int
	_ = e.dstDB.QueryRow("SELECT COUNT(*) FROM ferry_meta.checkpoint").Scan(&left)
	if left != 0 {
		t.Errorf("%d marker rows left on the target after cutover", left)
	}
	t.Logf("killed agent-a at %d/%d rows of the full copy; agent-b resumed it (%v); killed agent-b after %d+ changes; agent-c resumed (incremental checkpoint %v); %d app transactions; %s",
		fullBefore.Done, fullBefore.Total, strings.TrimSpace(fmt.Sprint(cp["snapshots"])), opsBefore+300, icp, n, v.Message)
}
