package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	"github.com/ferrymigrate/ferry/sqlite"
)

// countEngine is a test-only engine: its full step "copies" Items items,
// saving a checkpoint after each, and its incremental step reports a lag
// until cutover. It records where each run of a step resumed from.
type countEngine struct {
	Items     int
	ItemDelay time.Duration
	// FailOnce makes the first full run fail at item FailAt with err.
	FailAt  int
	FailErr error
	failed  atomic.Bool
	// BlockIncremental keeps the incremental step's lag above threshold.
	Lag time.Duration

	mu      sync.Mutex
	resumes map[ferry.StepName][]int // checkpoint each run started from
	agents  map[ferry.StepName][]string

	active, maxActive atomic.Int32 // concurrent runs of steps
}

type cp struct {
	Done int `json:"done"`
}

func (e *countEngine) Kind() ferry.EngineKind       { return ferry.KindRedis }
func (e *countEngine) Check(*ferry.Migration) error { return nil }

func (e *countEngine) record(step ferry.StepName, from int, agentID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.resumes == nil {
		e.resumes = map[ferry.StepName][]int{}
		e.agents = map[ferry.StepName][]string{}
	}
	e.resumes[step] = append(e.resumes[step], from)
	e.agents[step] = append(e.agents[step], agentID)
}

func (e *countEngine) runs(step ferry.StepName) ([]int, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.resumes[step]...), append([]string(nil), e.agents[step]...)
}

func (e *countEngine) RunStep(ctx context.Context, m *ferry.Migration, step ferry.StepName, rt ferry.StepRuntime) error {
	var c cp
	if raw := rt.Checkpoint(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return err
		}
	}
	e.record(step, c.Done, rt.AgentID())
	if n := e.active.Add(1); n > e.maxActive.Load() {
		e.maxActive.Store(n)
	}
	defer e.active.Add(-1)
	switch step {
	case ferry.StepFull:
		for c.Done < e.Items {
			if e.FailErr != nil && c.Done == e.FailAt && !e.failed.Swap(true) {
				return e.FailErr
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(e.ItemDelay):
			}
			c.Done++
			rt.Progress(ferry.Counters{Done: int64(c.Done), Total: int64(e.Items), Unit: "keys"}, 100*float64(c.Done)/float64(e.Items))
			b, _ := json.Marshal(c)
			if err := rt.Save(ctx, b); err != nil {
				return err
			}
		}
		return nil
	case ferry.StepIncremental:
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			rt.Lag(e.Lag, time.Now())
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-rt.Cutover():
				now := time.Now()
				ferry.RecordCutover(rt, func(c *ferry.CutoverInfo) {
					c.SourceWriteBlock, c.SourceBlockedAt, c.SourcePosition, c.DrainedPosition = ferry.WriteBlockClientPause, &now, "offset 7", "offset 7"
				})
				rt.Lag(0, time.Now())
				return nil
			case <-t.C:
			}
		}
	case ferry.StepVerify:
		rt.Progress(ferry.Counters{Done: int64(e.Items), Total: int64(e.Items), Unit: "keys"}, 100)
		rt.Message("verified: equal")
	}
	return nil
}

type fixture struct {
	store ferry.Store
	svc   *ferry.Service
	reg   *ferry.Registry
	eng   *countEngine
	ctx   context.Context // carries an org owner principal
	proj  *ferry.Project
	clock *clock
}

type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFixture(t *testing.T, store ferry.Store, eng *countEngine) *fixture {
	t.Helper()
	reg := ferry.NewRegistry()
	reg.Register(eng)
	clk := &clock{}
	svc := ferry.NewService(store, reg, quietLogger())
	svc.Now = clk.Now
	sys := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "acme")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := svc.CreateProject(sys, org.ID, "prod")
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx := ferry.WithPrincipal(context.Background(), ferry.PrincipalOf(key))
	return &fixture{store: store, svc: svc, reg: reg, eng: eng, ctx: ctx, proj: proj, clock: clk}
}

func openSQLite(t *testing.T) ferry.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func (f *fixture) agent(t *testing.T, id string, ttl time.Duration) (*agent.Agent, func()) {
	t.Helper()
	a := agent.New(agent.Config{ID: id, Store: f.store, Registry: f.reg, Service: f.svc, Logger: quietLogger(),
		LeaseTTL: ttl, Heartbeat: ttl / 4, PollInterval: 20 * time.Millisecond, RetryBackoff: 50 * time.Millisecond, Now: f.clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return a, stop
}

func (f *fixture) create(t *testing.T, modes ferry.Modes) *ferry.Migration {
	t.Helper()
	m := &ferry.Migration{ProjectID: f.proj.ID, Engine: ferry.KindRedis,
		Source: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:1"}, Password: "src-secret"},
		Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:2"}},
		Modes:  modes, Options: ferry.Options{CutoverLagSeconds: 2}}
	if err := f.svc.CreateMigration(f.ctx, m, true); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitFor polls the job until cond holds.
func (f *fixture) waitFor(t *testing.T, id, what string, cond func(m *ferry.Migration) bool) *ferry.Migration {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var m *ferry.Migration
	var err error
	for time.Now().Before(deadline) {
		m, err = f.store.GetMigration(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(m) {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(m, "", " ")
	t.Fatalf("timed out waiting for %s; job: %s", what, b)
	return nil
}

func stepDone(m *ferry.Migration, s ferry.StepName) int64 {
	if st := m.Step(s); st != nil {
		return st.Counters.Done
	}
	return -1
}

func TestLifecycleToCutover(t *testing.T) {
	eng := &countEngine{Items: 20, ItemDelay: 2 * time.Millisecond, Lag: time.Second}
	f := newFixture(t, openSQLite(t), eng)
	m := f.create(t, ferry.Modes{Full: true, Incremental: true})
	a, _ := f.agent(t, "agent-1", 2*time.Second)

	m = f.waitFor(t, m.ID, "ready for cutover", func(m *ferry.Migration) bool { return m.ReadyForCutover })
	if m.State != ferry.StateRunning || m.CurrentStep != ferry.StepIncremental {
		t.Fatalf("state %s step %s", m.State, m.CurrentStep)
	}
	if m.LagSeconds == nil || *m.LagSeconds != 1 {
		t.Fatalf("lag %v, want 1", m.LagSeconds)
	}
	if m.CutoverDeadline == nil || m.CutoverDeadline.Sub(time.Now()) < 119*time.Hour {
		t.Fatalf("cutover deadline %v", m.CutoverDeadline)
	}
	if full := m.Step(ferry.StepFull); full.State != ferry.StepDone || full.Progress != 100 || full.Counters.Done != 20 || full.Counters.Total != 20 {
		t.Fatalf("full step %+v", full)
	}
	if len(m.Hosts) != 1 || m.Hosts[0] != a.ID() {
		t.Fatalf("hosts %v", m.Hosts)
	}
	if _, err := f.svc.CutoverMigration(f.ctx, f.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = f.waitFor(t, m.ID, "completed", func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	for _, s := range m.Steps {
		if s.State != ferry.StepDone {
			t.Errorf("step %s is %s after completion", s.Name, s.State)
		}
	}
	if m.Lease != nil || m.LagSeconds != nil || m.ReadyForCutover {
		t.Fatalf("completed job keeps lease %v lag %v ready %v", m.Lease, m.LagSeconds, m.ReadyForCutover)
	}
	if m.Source.Password != "src-secret" {
		t.Fatal("the store lost the source password the engine needs")
	}
}

func TestPauseResumeFromCheckpoint(t *testing.T) {
	eng := &countEngine{Items: 200, ItemDelay: 5 * time.Millisecond}
	f := newFixture(t, openSQLite(t), eng)
	m := f.create(t, ferry.Modes{Full: true})
	f.agent(t, "agent-1", 2*time.Second)
	f.waitFor(t, m.ID, "some progress", func(m *ferry.Migration) bool { return stepDone(m, ferry.StepFull) >= 10 })
	if _, err := f.svc.PauseMigration(f.ctx, f.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	paused := f.waitFor(t, m.ID, "lease given back", func(m *ferry.Migration) bool { return m.State == ferry.StatePaused && m.Lease == nil })
	time.Sleep(100 * time.Millisecond)
	var c cp
	_ = json.Unmarshal(paused.Step(ferry.StepFull).Checkpoint, &c)
	if c.Done == 0 || c.Done >= 200 {
		t.Fatalf("checkpoint after pause: %d", c.Done)
	}
	if _, err := f.svc.ResumeMigration(f.ctx, f.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, m.ID, "completed", func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	resumes, _ := eng.runs(ferry.StepFull)
	if len(resumes) != 2 || resumes[0] != 0 || resumes[1] < c.Done {
		t.Fatalf("full step runs started from %v, want [0, >=%d]", resumes, c.Done)
	}
}

func TestRetryAfterTransientFailure(t *testing.T) {
	eng := &countEngine{Items: 10, FailAt: 5, FailErr: errors.New("connection reset by peer")}
	f := newFixture(t, openSQLite(t), eng)
	m := f.create(t, ferry.Modes{Full: true})
	f.agent(t, "agent-1", time.Second)
	m = f.waitFor(t, m.ID, "completed", func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	if m.Attempts != 1 {
		t.Fatalf("attempts %d, want 1", m.Attempts)
	}
	resumes, _ := eng.runs(ferry.StepFull)
	if fmt.Sprint(resumes) != "[0 5]" {
		t.Fatalf("full runs started from %v, want [0 5]", resumes)
	}
}

func TestPermanentFailure(t *testing.T) {
	eng := &countEngine{Items: 10, FailAt: 3, FailErr: &ferry.Error{Code: ferry.EINVALID, Message: "target is not empty", Advice: "empty it or choose conflict=replace"}}
	f := newFixture(t, openSQLite(t), eng)
	m := f.create(t, ferry.Modes{Full: true})
	f.agent(t, "agent-1", time.Second)
	m = f.waitFor(t, m.ID, "failed", func(m *ferry.Migration) bool { return m.State == ferry.StateFailed })
	if m.Step(ferry.StepFull).State != ferry.StepFailed || m.Error != "full: target is not empty (empty it or choose conflict=replace)" {
		t.Fatalf("failed job: error %q step %+v", m.Error, m.Step(ferry.StepFull))
	}
	// A retry resumes from the checkpoint.
	if _, err := f.svc.StartMigration(f.ctx, f.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, m.ID, "completed", func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	resumes, _ := eng.runs(ferry.StepFull)
	if fmt.Sprint(resumes) != "[0 3]" {
		t.Fatalf("full runs started from %v, want [0 3]", resumes)
	}
}

func TestExpiryAfterCutoverWindow(t *testing.T) {
	eng := &countEngine{Items: 1}
	f := newFixture(t, openSQLite(t), eng)
	m := f.create(t, ferry.Modes{Full: true, Incremental: true})
	f.agent(t, "agent-1", time.Second)
	f.waitFor(t, m.ID, "ready", func(m *ferry.Migration) bool { return m.ReadyForCutover })
	f.clock.Advance(ferry.CutoverWindow + time.Minute)
	m = f.waitFor(t, m.ID, "expired", func(m *ferry.Migration) bool { return m.State == ferry.StateExpired })
	if m.LagSeconds != nil || m.Lease != nil {
		t.Fatalf("expired job keeps lag %v lease %v", m.LagSeconds, m.Lease)
	}
	if _, err := f.svc.CutoverMigration(f.ctx, f.proj.ID, m.ID); ferry.ErrorCode(err) != ferry.ECONFLICT {
		t.Fatalf("cutover of an expired job: %v", err)
	}
}

func TestReleaseStopsRunningJob(t *testing.T) {
	eng := &countEngine{Items: 1, Lag: 30 * time.Second}
	f := newFixture(t, openSQLite(t), eng)
	m := f.create(t, ferry.Modes{Full: true, Incremental: true})
	f.agent(t, "agent-1", time.Second)
	f.waitFor(t, m.ID, "incremental", func(m *ferry.Migration) bool { return m.CurrentStep == ferry.StepIncremental && m.LagSeconds != nil })
	if _, err := f.svc.ReleaseMigration(f.ctx, f.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, m.ID, "released", func(m *ferry.Migration) bool { return m.State == ferry.StateReleased })
}

// TakeoverSuite kills an agent mid-job and checks that another one takes the
// job over after the lease expires and resumes from the last checkpoint. It
// runs on every store (see postgres_takeover_test.go for PostgreSQL).
func TakeoverSuite(t *testing.T, store ferry.Store) {
	eng := &countEngine{Items: 150, ItemDelay: 4 * time.Millisecond}
	f := newFixture(t, store, eng)
	m := f.create(t, ferry.Modes{Full: true})
	ttl := 600 * time.Millisecond
	a1, _ := f.agent(t, "agent-1", ttl)
	f.waitFor(t, m.ID, "agent-1 progress", func(m *ferry.Migration) bool { return stepDone(m, ferry.StepFull) >= 20 })
	a2, _ := f.agent(t, "agent-2", ttl)
	time.Sleep(50 * time.Millisecond)
	if got := a2.Running(); len(got) != 0 {
		t.Fatalf("agent-2 runs %v while agent-1 holds a valid lease", got)
	}
	killedAt := time.Now()
	a1.Kill()
	before, _ := f.store.GetMigration(context.Background(), m.ID)
	var c cp
	_ = json.Unmarshal(before.Step(ferry.StepFull).Checkpoint, &c)
	m = f.waitFor(t, m.ID, "completed by agent-2", func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	if fmt.Sprint(m.Hosts) != "[agent-1 agent-2]" {
		t.Fatalf("hosts %v", m.Hosts)
	}
	resumes, agents := eng.runs(ferry.StepFull)
	if len(resumes) != 2 || agents[1] != "agent-2" || resumes[1] != c.Done || c.Done < 20 {
		t.Fatalf("full runs from %v by %v; checkpoint at kill %d", resumes, agents, c.Done)
	}
	if m.Step(ferry.StepFull).Counters.Done != 150 {
		t.Fatalf("done %d", m.Step(ferry.StepFull).Counters.Done)
	}
	t.Logf("takeover: killed at item %d, agent-2 resumed there; %v after the kill", c.Done, time.Since(killedAt).Round(time.Millisecond))
}

func TestTakeoverSQLite(t *testing.T) { TakeoverSuite(t, openSQLite(t)) }

// Pausing and resuming at once, again and again, with two agents never
// runs the job twice side by side: the pause leaves the lease with the
// agent that runs the job until it gives it back.
func TestPauseResumeNeverRunsTwice(t *testing.T) {
	eng := &countEngine{Items: 300, ItemDelay: 3 * time.Millisecond}
	f := newFixture(t, openSQLite(t), eng)
	m := f.create(t, ferry.Modes{Full: true})
	f.agent(t, "agent-1", time.Second)
	f.agent(t, "agent-2", time.Second)
	f.waitFor(t, m.ID, "progress", func(m *ferry.Migration) bool { return stepDone(m, ferry.StepFull) >= 5 })
	for i := 0; i < 8; i++ {
		if _, err := f.svc.PauseMigration(f.ctx, f.proj.ID, m.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ResumeMigration(f.ctx, f.proj.ID, m.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40 * time.Millisecond)
	}
	m = f.waitFor(t, m.ID, "completed", func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	if got := eng.maxActive.Load(); got != 1 {
		t.Fatalf("%d runs of the job at once", got)
	}
	if m.Step(ferry.StepFull).Counters.Done != 300 {
		t.Fatalf("done %d", m.Step(ferry.StepFull).Counters.Done)
	}
}

// TestCutoverRecord: what an engine reports through ferry.RecordCutover
// lands in the job's cutover record, with the request time and the
// verification step's outcome.
func TestCutoverRecord(t *testing.T) {
	eng := &countEngine{Items: 5, ItemDelay: time.Millisecond}
	f := newFixture(t, openSQLite(t), eng)
	m := f.create(t, ferry.Modes{Full: true, Incremental: true, Verify: true})
	f.agent(t, "agent-1", 2*time.Second)
	m = f.waitFor(t, m.ID, "ready for cutover", func(m *ferry.Migration) bool { return m.ReadyForCutover })
	if m.Cutover != nil {
		t.Fatalf("cutover record before cutover: %+v", m.Cutover)
	}
	if _, err := f.svc.CutoverMigration(f.ctx, f.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = f.waitFor(t, m.ID, "completed", func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	c := m.Cutover
	if c == nil || c.RequestedAt == nil || c.SourceWriteBlock != ferry.WriteBlockClientPause || c.SourceBlockedAt == nil || c.SourcePosition != "offset 7" ||
		c.Verification == nil || c.Verification.State != ferry.StepDone || c.Verification.Checked != 5 || c.Verification.Message != "verified: equal" {
		t.Fatalf("cutover record %+v (verification %+v)", c, c.Verification)
	}
	if !c.SourceBlocked(time.Now()) || c.SourceState(time.Now()) != ferry.SourceWritePaused {
		t.Fatalf("source state %s", c.SourceState(time.Now()))
	}
}
