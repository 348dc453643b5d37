package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrymigrate/ferry"
)

// job is the agent's live view of one claimed migration.
type job struct {
	a   *Agent
	log *slog.Logger

	mu      sync.Mutex
	m       *ferry.Migration // last stored copy
	step    ferry.StepName   // step running now
	pending pendingProgress
	cutover chan struct{}
	cutOnce sync.Once
}

// pendingProgress is what a step reported since the last flush.
type pendingProgress struct {
	set       bool
	counters  ferry.Counters
	percent   float64
	msg       *string
	lag       *time.Duration
	appliedAt *time.Time
	cutover   []func(c *ferry.CutoverInfo) // cutover record updates (ferry.CutoverRecorder)
}

func (a *Agent) runMigration(ctx context.Context, m *ferry.Migration) {
	j := &job{a: a, m: m, cutover: make(chan struct{}), log: a.log.With("migration", m.ID, "engine", m.Engine)}
	j.log.Info("claimed migration", "state", m.State, "step", m.CurrentStep, "hosts", m.Hosts)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a.mu.Lock()
	a.jobs[m.ID] = cancel
	a.mu.Unlock()
	if m.State == ferry.StateCuttingOver {
		j.cutOnce.Do(func() { close(j.cutover) })
	}
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(a.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := j.flush(ctx, nil); err != nil {
					cancel(err)
					return
				}
			}
		}
	}()
	err := j.run(ctx)
	cancel(nil)
	<-hbDone
	if a.dead.Load() {
		return
	}
	cause := context.Cause(ctx)
	switch {
	case err == nil:
	case errors.Is(err, errLeaseLost) || errors.Is(cause, errLeaseLost):
		j.log.Warn("lease lost; another agent owns the job now")
	case errors.Is(err, errStopped) || errors.Is(cause, errStopped):
		j.finishStop()
	case a.stopping.Load() && (errors.Is(err, errShutdown) || errors.Is(cause, errShutdown)):
		j.handBack()
	default:
		j.fail(err)
	}
}

// run executes the remaining steps in order.
func (j *job) run(ctx context.Context) error {
	eng, err := j.a.cfg.Registry.Engine(j.m.Engine)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		j.mu.Lock()
		if i >= len(j.m.Steps) {
			j.mu.Unlock()
			break
		}
		st := j.m.Steps[i]
		j.mu.Unlock()
		if st.State == ferry.StepDone {
			continue
		}
		if err := j.beginStep(ctx, st.Name); err != nil {
			return err
		}
		j.mu.Lock()
		rt := &stepRuntime{j: j, name: st.Name, checkpoint: st.Checkpoint}
		mcopy := *j.m
		j.mu.Unlock()
		j.log.Info("step started", "step", st.Name, "resume", len(st.Checkpoint) > 0)
		runStart := time.Now()
		err := eng.RunStep(ctx, &mcopy, st.Name, rt)
		if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
			return c
		}
		if err != nil {
			return &stepError{step: st.Name, err: err}
		}
		if err := j.endStep(ctx, st.Name); err != nil {
			return err
		}
		j.log.Info("step done", j.stepDoneAttrs(st.Name, time.Since(runStart))...)
	}
	released, releaseErr := j.releaseSource(ctx, eng)
	_, err = j.update(ctx, func(m *ferry.Migration, now time.Time) error {
		m.CurrentStep = ""
		m.Error = ""
		if m.Cutover != nil && released {
			m.Cutover.SourceReleasedAt = &now
		}
		if m.Cutover != nil && releaseErr != nil {
			m.Cutover.Notes = append(m.Cutover.Notes, "releaseSourceAfterCutover: the source's write block could not be lifted ("+ferry.ErrorMessage(releaseErr)+"): run release-source")
		}
		return m.Transition(ferry.StateCompleted, now)
	})
	if err == nil {
		j.log.Info("migration completed")
	}
	return err
}

// stepDoneAttrs are the attributes of a "step done" line: the step's
// counters and how long it took (this run, and since it first started when
// it was resumed from a checkpoint).
func (j *job) stepDoneAttrs(name ferry.StepName, run time.Duration) []any {
	j.mu.Lock()
	defer j.mu.Unlock()
	attrs := []any{"step", name, "duration", run.Round(time.Millisecond)}
	s := j.m.Step(name)
	if s == nil {
		return attrs
	}
	if s.StartedAt != nil && s.FinishedAt != nil {
		if total := s.FinishedAt.Sub(*s.StartedAt).Round(time.Millisecond); total > run.Round(time.Millisecond) {
			attrs = append(attrs, "totalDuration", total)
		}
	}
	c := s.Counters
	attrs = append(attrs, "done", c.Done)
	if c.Total > 0 {
		attrs = append(attrs, "total", c.Total)
	}
	if c.Unit != "" {
		attrs = append(attrs, "unit", c.Unit)
	}
	for _, kv := range []struct {
		k string
		v int64
	}{{"bytes", c.Bytes}, {"ops", c.Ops}, {"errors", c.Errors}, {"missing", c.Missing}, {"extra", c.Extra}, {"different", c.Different}} {
		if kv.v != 0 {
			attrs = append(attrs, kv.k, kv.v)
		}
	}
	if c.RatePerSec > 0 {
		attrs = append(attrs, "ratePerSec", int64(c.RatePerSec))
	}
	return attrs
}

// releaseSource lifts the source's write block at the end of a job whose
// options ask for it (options.releaseSourceAfterCutover); a failure is
// recorded, not fatal: the target is complete.
func (j *job) releaseSource(ctx context.Context, eng ferry.Engine) (bool, error) {
	j.mu.Lock()
	m := *j.m
	j.mu.Unlock()
	if !m.Options.ReleaseSourceAfterCutover || !m.Cutover.SourceBlocked(j.a.now()) {
		return false, nil
	}
	rel, ok := eng.(ferry.SourceReleaser)
	if !ok {
		return false, nil
	}
	if err := rel.ReleaseSource(ctx, &m); err != nil {
		j.log.Warn("could not lift the source's write block after cutover", "err", err)
		return false, err
	}
	j.log.Info("source's write block lifted after cutover (releaseSourceAfterCutover)")
	return true, nil
}

type stepError struct {
	step ferry.StepName
	err  error
}

func (e *stepError) Error() string { return string(e.step) + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// update applies fn to the stored job if this agent still holds its lease.
func (j *job) update(ctx context.Context, fn func(m *ferry.Migration, now time.Time) error) (*ferry.Migration, error) {
	if j.a.dead.Load() {
		return nil, errKilled
	}
	m, err := j.a.cfg.Store.UpdateMigration(ctx, j.m.ID, func(m *ferry.Migration) error {
		if m.Lease == nil || m.Lease.AgentID != j.a.cfg.ID {
			return errLeaseLost
		}
		return fn(m, j.a.now())
	})
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	j.m = m
	j.mu.Unlock()
	return m, nil
}

func (j *job) beginStep(ctx context.Context, name ferry.StepName) error {
	j.mu.Lock()
	j.step = name
	j.pending = pendingProgress{}
	j.mu.Unlock()
	m, err := j.update(ctx, func(m *ferry.Migration, now time.Time) error {
		s := m.Step(name)
		s.State = ferry.StepRunning
		if s.StartedAt == nil {
			s.StartedAt = &now
		}
		m.CurrentStep = name
		// The lag of a sync step is unknown until the step reports it: a
		// lag kept from before (a resumed or taken-over job) must not make
		// the job ready for cutover with a backlog still unapplied.
		m.LagSeconds = nil
		m.UpdateReadinessWithin(now, j.a.cfg.CutoverWindow)
		return nil
	})
	if err != nil {
		return err
	}
	return j.observe(m)
}

func (j *job) endStep(ctx context.Context, name ferry.StepName) error {
	_, err := j.flushWith(ctx, func(m *ferry.Migration, now time.Time) error {
		s := m.Step(name)
		s.State = ferry.StepDone
		s.Progress = 100
		s.FinishedAt = &now
		if name == ferry.StepIncremental || name == ferry.StepReverseIncremental {
			m.LagSeconds = nil
		}
		if name == ferry.StepVerify {
			m.RecordVerification(now)
		}
		return nil
	})
	return err
}

// flush writes pending progress, renews the lease and reacts to what the
// user asked for meanwhile (pause, cutover, release) and to the deadline.
func (j *job) flush(ctx context.Context, checkpoint json.RawMessage) error {
	m, err := j.flushWith(ctx, func(m *ferry.Migration, now time.Time) error {
		if checkpoint != nil {
			m.Step(j.currentStep()).Checkpoint = checkpoint
		}
		return nil
	})
	if err == nil && m == nil && checkpoint != nil {
		return errors.New("checkpoint not saved: the store did not answer")
	}
	return err
}

func (j *job) currentStep() ferry.StepName {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.step
}

func (j *job) flushWith(ctx context.Context, extra func(m *ferry.Migration, now time.Time) error) (*ferry.Migration, error) {
	j.mu.Lock()
	p := j.pending
	j.pending.set, j.pending.msg, j.pending.lag, j.pending.appliedAt, j.pending.cutover = false, nil, nil, nil, nil
	name := j.step
	j.mu.Unlock()
	m, err := j.update(ctx, func(m *ferry.Migration, now time.Time) error {
		s := m.Step(name)
		if s != nil {
			if p.set {
				s.Counters = p.counters
				s.Progress = clampPercent(p.percent)
			}
			if p.msg != nil {
				s.Message = *p.msg
			}
			if p.appliedAt != nil {
				t := p.appliedAt.UTC()
				s.CheckpointTime = &t
			}
			if p.lag != nil && (name == ferry.StepIncremental || name == ferry.StepReverseIncremental) {
				sec := int64(p.lag.Round(time.Second) / time.Second)
				if sec < 0 {
					sec = 0
				}
				m.LagSeconds = &sec
			}
		}
		if len(p.cutover) > 0 {
			if m.Cutover == nil {
				m.Cutover = &ferry.CutoverInfo{}
			}
			for _, fn := range p.cutover {
				fn(m.Cutover)
			}
		}
		if extra != nil {
			if err := extra(m, now); err != nil {
				return err
			}
		}
		if m.Lease != nil {
			m.Lease.ExpiresAt = now.Add(j.a.cfg.LeaseTTL)
		}
		m.UpdateReadinessWithin(now, j.a.cfg.CutoverWindow)
		if m.State == ferry.StateRunning && m.CutoverDeadline != nil && now.After(*m.CutoverDeadline) && !m.CutOver() {
			j.log.Warn("cutover window passed; migration expired", "deadline", m.CutoverDeadline)
			return m.Transition(ferry.StateExpired, now)
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errLeaseLost) && !errors.Is(err, errKilled) && ctx.Err() == nil {
			// A store hiccup: keep the progress for the next flush.
			j.mu.Lock()
			if !j.pending.set && p.set {
				j.pending = p
			} else if len(p.cutover) > 0 {
				j.pending.cutover = append(p.cutover, j.pending.cutover...)
			}
			j.mu.Unlock()
			j.log.Warn("heartbeat failed", "err", err)
			return nil, nil
		}
		return nil, err
	}
	return m, j.observe(m)
}

// observe reacts to the stored state.
func (j *job) observe(m *ferry.Migration) error {
	switch m.State {
	case ferry.StateRunning:
		return nil
	case ferry.StateCuttingOver:
		j.cutOnce.Do(func() {
			j.log.Info("cutover requested")
			close(j.cutover)
		})
		return nil
	}
	return errStopped
}

// finishStop completes a stop the user asked for: a releasing job becomes
// released; a paused one gives its lease back.
func (j *job) finishStop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := j.a.cfg.Store.UpdateMigration(ctx, j.m.ID, func(m *ferry.Migration) error {
		now := j.a.now()
		if m.State == ferry.StateReleasing {
			return m.Transition(ferry.StateReleased, now)
		}
		if m.Lease != nil && m.Lease.AgentID == j.a.cfg.ID {
			m.Lease = nil
		}
		return nil
	})
	if err != nil {
		j.log.Warn("finish stop", "err", err)
	}
	j.log.Info("job stopped", "state", j.m.State)
}

// handBack gives the lease of a job back when the agent shuts down
// gracefully: the job stays as it is (no failure, no attempt counted) and
// any agent may claim it at once and resume from its checkpoint.
func (j *job) handBack() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := j.a.cfg.Store.UpdateMigration(ctx, j.m.ID, func(m *ferry.Migration) error {
		if m.Lease != nil && m.Lease.AgentID == j.a.cfg.ID {
			m.Lease = nil
		}
		return nil
	}); err != nil {
		j.log.Warn("hand the job back", "err", err)
		return
	}
	j.log.Info("agent shutting down: migration handed back at its checkpoint")
}

// fail records a step failure: retried automatically (after a backoff, by
// any agent) in resume mode auto for errors that may pass, else the job fails.
func (j *job) fail(err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var se *stepError
	stepName := j.currentStep()
	inner := err
	if errors.As(err, &se) {
		stepName = se.step
		inner = se.err
	}
	msg := inner.Error()
	if fe := ferry.AsError(inner); fe != nil {
		msg = fe.Message
		if fe.Advice != "" {
			msg += " (" + fe.Advice + ")"
		}
	}
	if se != nil {
		msg = string(se.step) + ": " + msg
	}
	retryable := ferry.ErrorCode(err) == ferry.EINTERNAL
	var retried bool
	j.mu.Lock()
	p := j.pending
	j.pending = pendingProgress{}
	j.mu.Unlock()
	_, uerr := j.update(ctx, func(m *ferry.Migration, now time.Time) error {
		// What the step reported before failing (a verification's numbers).
		if s := m.Step(stepName); s != nil && p.set {
			s.Counters = p.counters
			s.Progress = clampPercent(p.percent)
		}
		if len(p.cutover) > 0 {
			if m.Cutover == nil {
				m.Cutover = &ferry.CutoverInfo{}
			}
			for _, fn := range p.cutover {
				fn(m.Cutover)
			}
		}
		m.Error = ferry.RedactText(msg) // an engine error may quote a connection string
		if retryable && m.Options.ResumeMode != ferry.ResumeManual && m.Attempts < j.a.cfg.MaxAttempts && m.State.Active() {
			m.Attempts++
			retried = true
			// Anyone, this agent included, may claim it after the backoff.
			m.Lease = &ferry.Lease{AgentID: "", ExpiresAt: now.Add(j.a.cfg.RetryBackoff)}
			return nil
		}
		if s := m.Step(stepName); s != nil {
			s.State = ferry.StepFailed
			s.Message = msg
		}
		if stepName == ferry.StepVerify {
			m.RecordVerification(now)
		}
		return m.Transition(ferry.StateFailed, now)
	})
	if uerr != nil {
		j.log.Error("record failure", "err", uerr, "failure", msg)
		return
	}
	if retried {
		j.log.Warn("step failed; will retry from its checkpoint", "step", stepName, "err", msg, "backoff", j.a.cfg.RetryBackoff)
	} else {
		j.log.Error("migration failed", "step", stepName, "err", msg)
	}
}

func clampPercent(p float64) float64 {
	if p < 0 {
		return 0
	}
	if p > 100 {
		return 100
	}
	return p
}

// stepRuntime is the ferry.StepRuntime of one running step.
type stepRuntime struct {
	j          *job
	name       ferry.StepName
	checkpoint json.RawMessage
}

func (r *stepRuntime) Checkpoint() json.RawMessage { return r.checkpoint }

func (r *stepRuntime) Progress(c ferry.Counters, percent float64) {
	r.j.mu.Lock()
	r.j.pending.set, r.j.pending.counters, r.j.pending.percent = true, c, percent
	r.j.mu.Unlock()
}

func (r *stepRuntime) Lag(lag time.Duration, appliedAt time.Time) {
	r.j.mu.Lock()
	r.j.pending.lag, r.j.pending.appliedAt = &lag, &appliedAt
	r.j.mu.Unlock()
}

func (r *stepRuntime) Message(msg string) {
	r.j.mu.Lock()
	r.j.pending.msg = &msg
	r.j.mu.Unlock()
}

func (r *stepRuntime) Save(ctx context.Context, cp json.RawMessage) error {
	if cp == nil {
		cp = json.RawMessage("null")
	}
	if err := r.j.flush(ctx, cp); err != nil {
		return err
	}
	r.checkpoint = cp
	return nil
}

func (r *stepRuntime) Cutover() <-chan struct{} { return r.j.cutover }

// RecordCutover queues an update of the job's cutover record for the next
// flush (ferry.CutoverRecorder).
func (r *stepRuntime) RecordCutover(fn func(c *ferry.CutoverInfo)) {
	r.j.mu.Lock()
	r.j.pending.cutover = append(r.j.pending.cutover, fn)
	r.j.mu.Unlock()
}
func (r *stepRuntime) Logger() *slog.Logger { return r.j.log.With("step", r.name) }
func (r *stepRuntime) AgentID() string      { return r.j.a.cfg.ID }
