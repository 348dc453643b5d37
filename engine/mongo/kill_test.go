package mongo_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
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

// TestKillAgentMidCopyAndMidSync kills in-process agents (agent.Kill: no
// more writes, no lease release, as a crash) during the initial sync and
// during the continuous sync while the application writes; the agents that
// take over resume from the checkpoints (the copy skips the finished
// partitions, the sync restarts from the saved oplog position) and the
// target ends equal to the source, byte for byte.
func TestKillAgentMidCopyAndMidSync(t *testing.T) {
	e := newEnv(t)
	e.eng.SplitDocs, e.eng.ForceSplit = 3000, true
	seed(t, e.src, 12000)
	// 1 MB/s makes the ~3 MB copy take a few seconds.
	m := e.create(ferry.Modes{Full: true, Incremental: true, Verify: true},
		ferry.Options{Filters: ferry.Filters{ExcludeDBs: []string{"scratch"}}, Parallelism: 2, BandwidthLimitMB: 1})
	a, _ := e.agent("agent-a")
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
		return s.State == ferry.StepRunning && done >= 2
	})
	before := m.Step(ferry.StepFull).Counters
	a.Kill()
	b, _ := e.agent("agent-b")
	m = e.wait(m.ID, "syncing after the takeover", 120*time.Second, func(m *ferry.Migration) bool {
		return m.ReadyForCutover && m.Step(ferry.StepIncremental).Counters.Ops > 5
	})
	if cp := checkpointOf(t, m.Step(ferry.StepFull)); cp["copies"] != 2.0 {
		t.Errorf("full checkpoint copies = %v, want 2 (the killed copy and its resume)", cp["copies"])
	}
	opsBefore := m.Step(ferry.StepIncremental).Counters.Ops
	b.Kill()
	time.Sleep(time.Second) // the application writes on while no agent runs
	e.agent("agent-c")
	m = e.wait(m.ID, "sync resumed by agent-c", 90*time.Second, func(m *ferry.Migration) bool {
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
	t.Logf("killed agent-a at %d/%d documents of the copy; agent-b resumed it and synced %d changes; killed agent-b; agent-c resumed (resumes %v, %v changes in all); %d writer rounds; %d documents equal byte for byte; %s",
		before.Done, before.Total, opsBefore, icp["resumes"], icp["ops"], n, docs, v.Message)
}
