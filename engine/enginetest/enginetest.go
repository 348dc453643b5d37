// Package enginetest is the conformance suite every ferry engine passes,
// the way storetest is the one every store passes. It runs against real
// servers and real `ferry agent` processes (built and started by
// internal/testharness) sharing a PostgreSQL store. An engine's tests call
// Run with a function that starts a fresh source and target and describes
// the engine's side of the cases:
//
//	func TestKillAgentMidFullAndMidIncremental(t *testing.T) {
//		enginetest.Run(t, func(t *testing.T) *enginetest.Engine {
//			e := newEnv(t)
//			return &enginetest.Engine{Registry: e.reg, Source: ..., Target: ..., ...}
//		})
//	}
//
// The cases:
//
//   - KillResumeVerify: a full + incremental + verify migration whose agent
//     is killed with SIGKILL during the full step and again during the
//     incremental step while the application writes on; the agents that
//     take over resume from the checkpoints and, after the cutover, the
//     target equals the source (verification with 0 differences and the
//     engine's own independent comparison).
package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/postgres"
)

// Engine is an engine's side of the suite: its servers (already started),
// the migration to run between them and the checks only it can make.
type Engine struct {
	// Registry holds the engine: the suite's service checks the migration
	// against it at creation. The migration itself runs in `ferry agent`
	// processes, which register their own engines.
	Registry *ferry.Registry
	// Source and Target are the endpoints of the migration; Target.Kind
	// is the engine.
	Source, Target ferry.Endpoint
	// Options are the migration's options (its modes are always full,
	// incremental and verify). A bandwidth limit should make the full step
	// take a few seconds, so that it can be killed half way.
	Options ferry.Options

	// Seed fills the source before the migration is created.
	Seed func(t *testing.T)
	// StartWriter starts the application writing on the source; halt
	// stops it and returns how many writes (transactions, rounds) it made.
	// The suite calls halt once, before the cutover.
	StartWriter func(t *testing.T) (halt func() int64)
	// WriteDuringFull starts the writer right after the migration is
	// created, before the first agent; otherwise it starts once the agent
	// that took over the full step reports ready for cutover.
	WriteDuringFull bool

	// FullUnderWay reports whether the running full step has gone far
	// enough for its agent to be killed.
	FullUnderWay func(t *testing.T, full *ferry.Step) bool
	// FullRunsKey is the number in the full step's checkpoint that counts
	// its runs: 2 once the agent that took over has finished it (the
	// killed run and the one after).
	FullRunsKey string
	// MinReadyOps is how many changes the incremental step must have
	// applied, besides being ready for cutover, before the takeover counts
	// as done.
	MinReadyOps int64
	// IncrementalOps is how many more changes the incremental step applies
	// (after a checkpoint of it is saved) before its agent is killed.
	IncrementalOps int64
	// Outage is how long no agent runs after the second kill.
	Outage time.Duration
	// ResumesKey is the number in the incremental step's checkpoint that
	// counts how often it resumed; at least 1 once the third agent took
	// over.
	ResumesKey string
	// MinVerified is the least the verify step must have compared.
	MinVerified int64

	// Check makes the engine's own checks on the completed migration (its
	// checkpoints, an independent comparison of source and target, the
	// writes' effect) and returns what it found, for the test's log.
	// writes is what halt returned.
	Check func(t *testing.T, m *ferry.Migration, writes int64) string
}

// Run runs the conformance suite. open starts a fresh source and target
// for one subtest and describes them.
func Run(t *testing.T, open func(t *testing.T) *Engine) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *Engine)
	}{
		{"KillResumeVerify", testKillResumeVerify},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// Env is what a case runs on: a service on a PostgreSQL store (the store
// `ferry agent` processes share) with one organization and project.
type Env struct {
	StoreURL string
	Store    ferry.Store
	Svc      *ferry.Service
	Ctx      context.Context // the system principal
	Project  *ferry.Project
}

// NewEnv starts PostgreSQL and opens a service on it with reg's engines,
// an organization "acme" and its project "prod".
func NewEnv(t *testing.T, reg *ferry.Registry) *Env {
	t.Helper()
	pg := testharness.StartPostgres(t)
	store, err := postgres.Open(context.Background(), pg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	env := &Env{StoreURL: pg, Store: store, Svc: ferry.NewService(store, reg, logger()),
		Ctx: ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)}
	org, err := env.Svc.CreateOrg(env.Ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if env.Project, err = env.Svc.CreateProject(env.Ctx, org.ID, "prod"); err != nil {
		t.Fatal(err)
	}
	return env
}

func logger() *slog.Logger {
	if os.Getenv("FERRY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Wait polls the migration until cond holds and returns it (WaitFor on
// the suite's store).
func (env *Env) Wait(t *testing.T, id, what string, timeout time.Duration, cond func(m *ferry.Migration) bool) *ferry.Migration {
	t.Helper()
	return WaitFor(t, env.Store, id, what, timeout, cond)
}

// WaitFor polls a migration in store until cond holds and returns it; it
// fails the test (showing the migration) after timeout, or as soon as the
// migration failed unless what mentions "fail". Every engine's tests wait
// with it.
func WaitFor(t testing.TB, store ferry.Store, id, what string, timeout time.Duration, cond func(m *ferry.Migration) bool) *ferry.Migration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var m *ferry.Migration
	for time.Now().Before(deadline) {
		var err error
		m, err = store.GetMigration(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(m) {
			return m
		}
		if m.State == ferry.StateFailed && !strings.Contains(what, "fail") {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	t.Fatalf("waiting for %s: %s", what, b)
	return nil
}

// Checkpoint decodes a step's checkpoint (nil when it has none).
func Checkpoint(t testing.TB, s *ferry.Step) map[string]any {
	t.Helper()
	var m map[string]any
	if len(s.Checkpoint) > 0 {
		if err := json.Unmarshal(s.Checkpoint, &m); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// number is a checkpoint's number at key (0 when missing or no number).
func number(cp map[string]any, key string) float64 {
	f, _ := cp[key].(float64)
	return f
}

func testKillResumeVerify(t *testing.T, e *Engine) {
	env := NewEnv(t, e.Registry)
	e.Seed(t)
	m := &ferry.Migration{ProjectID: env.Project.ID, Engine: e.Target.Kind, Source: e.Source, Target: e.Target,
		Modes: ferry.Modes{Full: true, Incremental: true, Verify: true}, Options: e.Options}
	if err := env.Svc.CreateMigration(env.Ctx, m, true); err != nil {
		t.Fatal(err)
	}
	var halt func() int64
	startWriter := func() {
		var once sync.Once
		var n int64
		h := e.StartWriter(t)
		halt = func() int64 { once.Do(func() { n = h() }); return n }
		t.Cleanup(func() { halt() })
	}
	if e.WriteDuringFull {
		startWriter()
	}

	// Kill the agent of the full step half way; the next one takes over.
	a := testharness.StartFerryAgent(t, env.StoreURL, "agent-a")
	m = env.Wait(t, m.ID, "full step under way", 60*time.Second, func(m *ferry.Migration) bool {
		s := m.Step(ferry.StepFull)
		return s.State == ferry.StepRunning && e.FullUnderWay(t, s)
	})
	fullBefore := m.Step(ferry.StepFull).Counters
	testharness.KillProcess(t, a)
	b := testharness.StartFerryAgent(t, env.StoreURL, "agent-b")
	m = env.Wait(t, m.ID, "ready for cutover after the takeover", 120*time.Second, func(m *ferry.Migration) bool {
		return m.ReadyForCutover && m.Step(ferry.StepIncremental).Counters.Ops >= e.MinReadyOps
	})
	fcp := Checkpoint(t, m.Step(ferry.StepFull))
	if fcp[e.FullRunsKey] != 2.0 {
		t.Errorf("full step checkpoint %s = %v, want 2 (the killed run and the one after): %v", e.FullRunsKey, fcp[e.FullRunsKey], fcp)
	}
	if fmt.Sprint(m.Hosts) != "[agent-a agent-b]" {
		t.Errorf("hosts after the takeover %v", m.Hosts)
	}

	// The application writes on; once a checkpoint of the incremental step
	// is saved and more changes arrived, kill its agent between saves.
	if !e.WriteDuringFull {
		startWriter()
	}
	opsBefore := m.Step(ferry.StepIncremental).Counters.Ops
	m = env.Wait(t, m.ID, "incremental progress", 60*time.Second, func(m *ferry.Migration) bool {
		s := m.Step(ferry.StepIncremental)
		return len(s.Checkpoint) > 0 && s.Counters.Ops > opsBefore+e.IncrementalOps
	})
	opsAtKill := m.Step(ferry.StepIncremental).Counters.Ops
	testharness.KillProcess(t, b)
	time.Sleep(e.Outage) // the application writes on while no agent runs
	testharness.StartFerryAgent(t, env.StoreURL, "agent-c")
	m = env.Wait(t, m.ID, "incremental resumed by agent-c", 180*time.Second, func(m *ferry.Migration) bool {
		return len(m.Hosts) == 3 && number(Checkpoint(t, m.Step(ferry.StepIncremental)), e.ResumesKey) >= 1 && m.ReadyForCutover
	})
	time.Sleep(300 * time.Millisecond) // a few more writes through agent-c
	writes := halt()

	if _, err := env.Svc.CutoverMigration(env.Ctx, env.Project.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = env.Wait(t, m.ID, "completed", 90*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 || v.Counters.Done < e.MinVerified {
		t.Fatalf("verify %+v: %s", v.Counters, v.Message)
	}
	if fmt.Sprint(m.Hosts) != "[agent-a agent-b agent-c]" {
		t.Errorf("hosts %v", m.Hosts)
	}
	found := e.Check(t, m, writes)
	inc := m.Step(ferry.StepIncremental)
	t.Logf("killed agent-a at %d/%d items, %d bytes of the full step; agent-b took over (full checkpoint %s=%v); killed agent-b at %d changes (%d after ready for cutover); agent-c resumed (incremental checkpoint %s=%v; %d changes in all); %d application writes; verify %d equal: %s; %s",
		fullBefore.Done, fullBefore.Total, fullBefore.Bytes, e.FullRunsKey, fcp[e.FullRunsKey], opsAtKill, opsAtKill-opsBefore,
		e.ResumesKey, Checkpoint(t, inc)[e.ResumesKey], inc.Counters.Ops, writes, v.Counters.Done, v.Message, found)
}
