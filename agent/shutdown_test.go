package agent_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

// TestGracefulStopHandsMigrationBack: an agent stopped gracefully (not
// killed) mid-copy gives the job's lease back without failing it or counting
// an attempt; another agent claims it at once and resumes at the checkpoint.
func TestGracefulStopHandsMigrationBack(t *testing.T) {
	eng := &countEngine{Items: 200, ItemDelay: 3 * time.Millisecond}
	f := newFixture(t, openSQLite(t), eng)
	m := f.create(t, ferry.Modes{Full: true})
	ttl := 30 * time.Second // a lease left behind would block agent-2 for the whole test
	_, stop1 := f.agent(t, "agent-1", ttl)
	f.waitFor(t, m.ID, "agent-1 progress", func(m *ferry.Migration) bool { return stepDone(m, ferry.StepFull) >= 20 })
	stop1()
	got, err := f.store.GetMigration(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != ferry.StateRunning || got.Lease != nil || got.Attempts != 0 || got.Error != "" || got.Step(ferry.StepFull).State == ferry.StepFailed {
		t.Fatalf("after a graceful stop: state %s lease %+v attempts %d error %q", got.State, got.Lease, got.Attempts, got.Error)
	}
	var c cp
	_ = json.Unmarshal(got.Step(ferry.StepFull).Checkpoint, &c)
	f.agent(t, "agent-2", ttl)
	m = f.waitFor(t, m.ID, "completed by agent-2", func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	resumes, agents := eng.runs(ferry.StepFull)
	if len(resumes) != 2 || agents[1] != "agent-2" || resumes[1] != c.Done || c.Done < 20 || m.Attempts != 0 {
		t.Fatalf("full runs from %v by %v; checkpoint at the stop %d; attempts %d", resumes, agents, c.Done, m.Attempts)
	}
}

// blockingExporter exports until its context ends.
type blockingExporter struct{ started chan string }

func (*blockingExporter) Kind() ferry.EngineKind                       { return ferry.KindMongoDB }
func (*blockingExporter) Check(*ferry.Pipeline, *ferry.Endpoint) error { return nil }
func (e *blockingExporter) Export(ctx context.Context, p *ferry.Pipeline, src *ferry.Endpoint, run *ferry.PipelineRun, rt ferry.RunRuntime) error {
	rt.Phase(ferry.PhaseExport)
	e.started <- run.ID
	<-ctx.Done()
	return ctx.Err()
}
func (*blockingExporter) DeleteDataset(context.Context, *ferry.Pipeline, *ferry.PipelineRun) error {
	return nil
}

// TestGracefulStopHandsRunBack: the same for a pipeline run: it is not
// marked FAILED; it stays IN_PROGRESS without a lease for the next agent.
func TestGracefulStopHandsRunBack(t *testing.T) {
	eng := &countEngine{}
	f := newFixture(t, openSQLite(t), eng)
	exp := &blockingExporter{started: make(chan string, 4)}
	f.reg.RegisterExporter(exp)
	ctx := context.Background()
	src := &ferry.Endpoint{ProjectID: f.proj.ID, Name: "docs", Kind: ferry.KindMongoDB, Addrs: []string{"127.0.0.1:1"}}
	if err := f.store.CreateEndpoint(ctx, src); err != nil {
		t.Fatal(err)
	}
	p := &ferry.Pipeline{ProjectID: f.proj.ID, Name: "p1", State: ferry.PipelineActive,
		Source: ferry.PipelineSource{Type: "ON_DEMAND_CPS", ClusterName: "docs", DatabaseName: "db", CollectionName: "c"}}
	if err := f.store.CreatePipeline(ctx, p); err != nil {
		t.Fatal(err)
	}
	r := &ferry.PipelineRun{ProjectID: f.proj.ID, PipelineID: p.ID, PipelineName: p.Name, State: ferry.RunPending}
	if err := f.store.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	_, stop1 := f.agent(t, "agent-1", 30*time.Second)
	select {
	case <-exp.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the run was not started")
	}
	stop1()
	got, err := f.store.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != ferry.RunInProgress || got.Lease != nil || got.Error != "" {
		t.Fatalf("after a graceful stop: state %s lease %+v error %q", got.State, got.Lease, got.Error)
	}
	f.agent(t, "agent-2", 30*time.Second)
	select {
	case id := <-exp.started:
		if id != r.ID {
			t.Fatalf("agent-2 started run %s", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent-2 did not take the run over")
	}
}
