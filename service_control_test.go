package ferry_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/sqlite"
)

// idleEngine accepts every job and never runs one.
type idleEngine struct{ kind ferry.EngineKind }

func (e idleEngine) Kind() ferry.EngineKind         { return e.kind }
func (e idleEngine) Check(m *ferry.Migration) error { return nil }
func (e idleEngine) RunStep(ctx context.Context, m *ferry.Migration, step ferry.StepName, rt ferry.StepRuntime) error {
	<-ctx.Done()
	return ctx.Err()
}

type ctlEnv struct {
	t     *testing.T
	store *sqlite.DB
	svc   *ferry.Service
	ctx   context.Context
	proj  *ferry.Project
}

func newCtlEnv(t *testing.T) *ctlEnv {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := ferry.NewRegistry()
	reg.Register(idleEngine{ferry.KindRedis})
	reg.Register(idleEngine{ferry.KindMySQL})
	svc := ferry.NewService(db, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	org, err := svc.CreateOrg(ctx, "o")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := svc.CreateProject(ctx, org.ID, "p")
	if err != nil {
		t.Fatal(err)
	}
	return &ctlEnv{t: t, store: db, svc: svc, ctx: ctx, proj: proj}
}

func (e *ctlEnv) job(kind ferry.EngineKind, modes ferry.Modes, set func(m *ferry.Migration)) *ferry.Migration {
	e.t.Helper()
	m := &ferry.Migration{ProjectID: e.proj.ID, Engine: kind,
		Source: ferry.Endpoint{Kind: kind, Addrs: []string{"127.0.0.1:1"}},
		Target: ferry.Endpoint{Kind: kind, Addrs: []string{"127.0.0.1:2"}}, Modes: modes}
	if err := e.svc.CreateMigration(e.ctx, m, true); err != nil {
		e.t.Fatal(err)
	}
	if set != nil {
		var err error
		if m, err = e.store.UpdateMigration(context.Background(), m.ID, func(m *ferry.Migration) error { set(m); return nil }); err != nil {
			e.t.Fatal(err)
		}
	}
	return m
}

func wantErr(t *testing.T, err error, code, reason string) {
	t.Helper()
	fe := ferry.AsError(err)
	if fe == nil || fe.Code != code || (reason != "" && fe.Reason != reason) {
		t.Fatalf("error %#v, want %s %s", err, code, reason)
	}
}

func TestDraftAndConfigure(t *testing.T) {
	e := newCtlEnv(t)
	d := &ferry.Migration{ProjectID: e.proj.ID, Name: "draft", Engine: ferry.KindRedis, Labels: map[string]string{"k": "v"}}
	if err := e.svc.CreateDraftMigration(e.ctx, d); err != nil {
		t.Fatal(err)
	}
	if !d.Draft() || d.State != ferry.StateCreated {
		t.Fatalf("draft: %+v", d)
	}
	_, err := e.svc.StartMigration(e.ctx, e.proj.ID, d.ID)
	wantErr(t, err, ferry.ECONFLICT, "NOT_CONFIGURED")
	// A bad configuration changes nothing.
	_, err = e.svc.ConfigureMigration(e.ctx, e.proj.ID, d.ID, func(m *ferry.Migration) error {
		m.Source = ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:1"}}
		m.Modes = ferry.Modes{Full: true}
		m.Labels["k"] = "changed"
		return nil
	})
	wantErr(t, err, ferry.EINVALID, "")
	if got, _ := e.store.GetMigration(context.Background(), d.ID); !got.Draft() || got.Labels["k"] != "v" {
		t.Fatalf("after a bad configuration: %+v", got)
	}
	// An unknown endpoint name is EINVALID too.
	_, err = e.svc.ConfigureMigration(e.ctx, e.proj.ID, d.ID, func(m *ferry.Migration) error {
		m.Source = ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:1"}}
		m.Target = ferry.Endpoint{Kind: ferry.KindRedis, Name: "nope"}
		m.Modes = ferry.Modes{Full: true}
		return nil
	})
	wantErr(t, err, ferry.EINVALID, "CLUSTER_NOT_FOUND")
	m, err := e.svc.ConfigureMigration(e.ctx, e.proj.ID, d.ID, func(m *ferry.Migration) error {
		m.Source = ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:1"}}
		m.Target = ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:2"}}
		m.Modes = ferry.Modes{Full: true, Incremental: true, Verify: true}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Draft() || m.State != ferry.StateRunning || m.CurrentStep != ferry.StepPrecheck || len(m.Steps) != 5 || m.Options.ResumeMode != ferry.ResumeAuto || m.Labels["k"] != "v" {
		t.Fatalf("configured: %+v", m)
	}
	_, err = e.svc.ConfigureMigration(e.ctx, e.proj.ID, d.ID, func(m *ferry.Migration) error { return nil })
	wantErr(t, err, ferry.ECONFLICT, "ALREADY_CONFIGURED")
	// A draft of an unknown engine is refused at once.
	wantErr(t, e.svc.CreateDraftMigration(e.ctx, &ferry.Migration{ProjectID: e.proj.ID, Engine: "cassandra"}), ferry.EINVALID, "")
}

func TestRestartMigration(t *testing.T) {
	e := newCtlEnv(t)
	for _, tc := range []struct {
		state ferry.State
		ok    bool
	}{
		{ferry.StatePaused, true},
		{ferry.StateFailed, true},
		{ferry.StateRunning, false},
		{ferry.StateCompleted, false},
		{ferry.StateExpired, false},
	} {
		m := e.job(ferry.KindRedis, ferry.Modes{Full: true}, func(m *ferry.Migration) {
			m.State = tc.state
			if tc.state == ferry.StateFailed {
				m.Steps[0].State = ferry.StepFailed
			}
		})
		got, err := e.svc.RestartMigration(e.ctx, e.proj.ID, m.ID)
		if tc.ok {
			if err != nil || got.State != ferry.StateRunning || got.Steps[0].State == ferry.StepFailed {
				t.Fatalf("%s: %+v %v", tc.state, got, err)
			}
			continue
		}
		wantErr(t, err, ferry.ECONFLICT, "ILLEGAL_STATE_TRANSITION")
	}
}

func TestBatchPauseAndRestart(t *testing.T) {
	e := newCtlEnv(t)
	a := e.job(ferry.KindRedis, ferry.Modes{Full: true}, nil)
	other := e.job(ferry.KindMySQL, ferry.Modes{Full: true}, nil)
	done := e.job(ferry.KindRedis, ferry.Modes{Full: true}, func(m *ferry.Migration) { m.State = ferry.StateCompleted })
	res, err := e.svc.PauseMigrations(e.ctx, e.proj.ID, []string{a.ID, "0123456789abcdef01234567", a.ID, other.ID, done.ID}, ferry.KindRedis)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("%d results, want 4 (duplicates once)", len(res))
	}
	if res[0].ID != a.ID || res[0].Err != nil || res[0].Migration.State != ferry.StatePaused {
		t.Fatalf("first: %+v", res[0])
	}
	wantErr(t, res[1].Err, ferry.ENOTFOUND, "MIGRATION_NOT_FOUND")
	wantErr(t, res[2].Err, ferry.ENOTFOUND, "MIGRATION_NOT_FOUND") // another engine's job
	wantErr(t, res[3].Err, ferry.ECONFLICT, "ILLEGAL_STATE_TRANSITION")
	res, err = e.svc.RestartMigrations(e.ctx, e.proj.ID, []string{a.ID, done.ID}, "")
	if err != nil || res[0].Err != nil || res[0].Migration.State != ferry.StateRunning || res[1].Err == nil {
		t.Fatalf("restart: %+v %v", res, err)
	}
}

func TestUpdateMigration(t *testing.T) {
	e := newCtlEnv(t)
	m := e.job(ferry.KindRedis, ferry.Modes{Full: true}, nil)
	bad := ferry.ResumeMode("sometimes")
	_, err := e.svc.UpdateMigration(e.ctx, e.proj.ID, m.ID, ferry.MigrationPatch{ResumeMode: &bad})
	wantErr(t, err, ferry.EINVALID, "")
	neg := -1
	_, err = e.svc.UpdateMigration(e.ctx, e.proj.ID, m.ID, ferry.MigrationPatch{BandwidthLimitMB: &neg})
	wantErr(t, err, ferry.EINVALID, "")
	manual, bw, desc := ferry.ResumeManual, 50, "d"
	got, err := e.svc.UpdateMigration(e.ctx, e.proj.ID, m.ID, ferry.MigrationPatch{ResumeMode: &manual, BandwidthLimitMB: &bw, Description: &desc})
	if err != nil || got.Options.ResumeMode != ferry.ResumeManual || got.Options.BandwidthLimitMB != 50 || got.Description != "d" {
		t.Fatalf("%+v %v", got, err)
	}
	done := e.job(ferry.KindRedis, ferry.Modes{Full: true}, func(m *ferry.Migration) { m.State = ferry.StateCompleted })
	_, err = e.svc.UpdateMigration(e.ctx, e.proj.ID, done.ID, ferry.MigrationPatch{ResumeMode: &manual})
	wantErr(t, err, ferry.ECONFLICT, "MIGRATION_ENDED")
}

func TestRollbackCutover(t *testing.T) {
	e := newCtlEnv(t)
	r := e.job(ferry.KindRedis, ferry.Modes{Full: true, Incremental: true}, func(m *ferry.Migration) { m.State = ferry.StateCompleted })
	_, err := e.svc.RollbackCutover(e.ctx, e.proj.ID, r.ID)
	wantErr(t, err, ferry.ENOTIMPLEMENTED, "ROLLBACK_NOT_AVAILABLE")
	if !strings.Contains(ferry.ErrorMessage(err), "Redis engine has no reverse sync") {
		t.Fatalf("message: %v", err)
	}
	rev := ferry.Modes{Full: true, Incremental: true, ReverseIncremental: true}
	notYet := e.job(ferry.KindMySQL, rev, nil)
	_, err = e.svc.RollbackCutover(e.ctx, e.proj.ID, notYet.ID)
	wantErr(t, err, ferry.ECONFLICT, "ROLLBACK_NOT_ALLOWED")
	cut := e.job(ferry.KindMySQL, rev, func(m *ferry.Migration) {
		m.State = ferry.StateCuttingOver
		for i := range m.Steps {
			m.Steps[i].State = ferry.StepDone
		}
		m.Step(ferry.StepReverseIncremental).State = ferry.StepRunning
		m.CurrentStep = ferry.StepReverseIncremental
	})
	got, err := e.svc.RollbackCutover(e.ctx, e.proj.ID, cut.ID)
	if err != nil || got.State != ferry.StateReleased {
		t.Fatalf("rollback: %+v %v", got, err)
	}
}

func TestStopMigrationAndWait(t *testing.T) {
	e := newCtlEnv(t)
	old := ferry.StopWaitPoll
	ferry.StopWaitPoll = 10 * time.Millisecond
	defer func() { ferry.StopWaitPoll = old }()
	lease := func(m *ferry.Migration) {
		m.Lease = &ferry.Lease{AgentID: "a1", ExpiresAt: time.Now().Add(time.Minute)}
	}
	m := e.job(ferry.KindRedis, ferry.Modes{Full: true}, lease)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = e.store.UpdateMigration(context.Background(), m.ID, func(m *ferry.Migration) error { m.Lease = nil; return nil })
	}()
	start := time.Now()
	got, err := e.svc.StopMigrationAndWait(e.ctx, e.proj.ID, m.ID)
	if err != nil || got.State != ferry.StatePaused || got.Lease != nil || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("%+v %v after %s", got, err, time.Since(start))
	}
	// An agent that never lets go: the wait ends with the context.
	m2 := e.job(ferry.KindRedis, ferry.Modes{Full: true}, lease)
	ctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
	defer cancel()
	_, err = e.svc.StopMigrationAndWait(ctx, e.proj.ID, m2.ID)
	if err == nil || !strings.Contains(err.Error(), "has not stopped yet") {
		t.Fatalf("err %v", err)
	}
}

func TestEvents(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { x := t0.Add(time.Duration(s) * time.Second); return &x }
	m := &ferry.Migration{Name: "n", Engine: ferry.KindRedis, State: ferry.StateFailed, Error: "boom", CreatedAt: t0, StartedAt: at(1), FinishedAt: at(9),
		Steps: []ferry.Step{
			{Name: ferry.StepPrecheck, State: ferry.StepDone, StartedAt: at(1), FinishedAt: at(2)},
			{Name: ferry.StepFull, State: ferry.StepDone, StartedAt: at(2), FinishedAt: at(5), Counters: ferry.Counters{Done: 10, Total: 10, Unit: "keys"}},
			{Name: ferry.StepIncremental, State: ferry.StepFailed, StartedAt: at(5), FinishedAt: at(8), Message: "link lost"},
			{Name: ferry.StepVerify, State: ferry.StepPending},
		}}
	var got []string
	for _, ev := range m.Events() {
		got = append(got, ev.Level+" "+ev.Code+" "+ev.Message)
	}
	want := []string{
		"INFO CREATED migration n (redis) created",
		"INFO STARTED migration started",
		"INFO STEP_STARTED step precheck started",
		"INFO STEP_DONE step precheck done",
		"INFO STEP_STARTED step full started",
		"INFO STEP_DONE step full done: 10 of 10 keys",
		"INFO STEP_STARTED step incremental started",
		"ERROR STEP_FAILED step incremental failed: link lost",
		"ERROR FAILED migration failed: boom",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
