package ferry

import (
	"context"
	"fmt"
	"time"
)

// This file holds the job controls some vendors' APIs have beyond create /
// pause / resume / cutover: two-phase creation (a draft configured later),
// restart of a stopped or failed job, batch stop and restart, a stop that
// waits until the data path has stopped, settings changes, and the rollback
// of a cutover.

// Draft reports whether m is a draft: created without endpoints and modes,
// waiting for ConfigureMigration (DCS's online migration "instance").
func (m *Migration) Draft() bool { return m.State == StateCreated && len(m.Steps) == 0 }

// CreateDraftMigration stores a job that has a name, an engine and labels
// but no endpoints or modes yet: a draft (Draft), which no agent runs and
// StartMigration refuses until ConfigureMigration completes it.
func (s *Service) CreateDraftMigration(ctx context.Context, m *Migration) error {
	if _, err := s.Authorize(ctx, m.ProjectID, AccessWrite); err != nil {
		return err
	}
	if !m.Engine.Valid() {
		return FieldError("engine", "unknown engine %q (one of redis, mysql, mongodb)", m.Engine)
	}
	if _, err := s.Registry.Engine(m.Engine); err != nil {
		return err
	}
	now := s.now()
	m.ID = NewID()
	if m.Name == "" {
		m.Name = string(m.Engine) + "-" + m.ID[18:]
	}
	if m.Importance == "" {
		m.Importance = "MEDIUM"
	}
	m.State = StateCreated
	m.Steps, m.CurrentStep = nil, ""
	m.CreatedAt, m.UpdatedAt = now, now
	m.Lease, m.LagSeconds, m.ReadyForCutover, m.CutoverDeadline = nil, nil, false, nil
	if err := s.Store.CreateMigration(ctx, m); err != nil {
		return err
	}
	s.Logger.Info("draft migration created", "migration", m)
	return nil
}

// resolveEndpoints replaces endpoints given by name (or id) only with the
// project's registered endpoints, keeping the connection settings given
// with the name on top.
func (s *Service) resolveEndpoints(ctx context.Context, m *Migration) error {
	for _, side := range []struct {
		field string
		e     *Endpoint
	}{{"source", &m.Source}, {"target", &m.Target}} {
		if side.e.Name != "" && len(side.e.Addrs) == 0 {
			reg, err := s.GetEndpoint(ctx, m.ProjectID, side.e.Name)
			if err != nil {
				if ErrorCode(err) == ENOTFOUND {
					return &Error{Code: EINVALID, Field: side.field + ".clusterName", Reason: "CLUSTER_NOT_FOUND", Message: fmt.Sprintf("no endpoint named %q in project %s", side.e.Name, m.ProjectID)}
				}
				return err
			}
			*side.e = overlayEndpoint(*reg, *side.e)
		}
	}
	return nil
}

// ConfigureMigration completes a draft: fn sets its endpoints, modes and
// options on a copy; the result is checked like a new job (endpoints
// resolved, Validate, the engine's Check) and, when it passes, stored with
// its steps and queued for an agent. A job that is not a draft is
// ECONFLICT.
func (s *Service) ConfigureMigration(ctx context.Context, projectID, id string, fn func(m *Migration) error) (*Migration, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	cur, err := s.getMigration(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	if !cur.Draft() {
		return nil, &Error{Code: ECONFLICT, Reason: "ALREADY_CONFIGURED", Message: fmt.Sprintf("migration %s is %s and already configured; only a draft can be configured", id, cur.State)}
	}
	// Check the configuration on a copy before the store's update, so a
	// bad one changes nothing.
	probe := *cur
	probe.Labels = copyLabels(cur.Labels)
	probe.Options.Extra = copyLabels(cur.Options.Extra)
	if err := fn(&probe); err != nil {
		return nil, err
	}
	if err := s.resolveEndpoints(ctx, &probe); err != nil {
		return nil, err
	}
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	eng, err := s.Registry.Engine(probe.Engine)
	if err != nil {
		return nil, err
	}
	if err := eng.Check(&probe); err != nil {
		return nil, err
	}
	if probe.Options.ResumeMode == "" {
		probe.Options.ResumeMode = ResumeAuto
	}
	m, err := s.Store.UpdateMigration(ctx, id, func(m *Migration) error {
		if !m.Draft() {
			return &Error{Code: ECONFLICT, Reason: "ALREADY_CONFIGURED", Message: fmt.Sprintf("migration %s was configured meanwhile", id)}
		}
		m.Source, m.Target, m.Modes, m.Options, m.Labels = probe.Source, probe.Target, probe.Modes, probe.Options, probe.Labels
		if probe.Name != "" {
			m.Name = probe.Name
		}
		m.Description = probe.Description
		m.InitSteps()
		m.CurrentStep = m.Steps[0].Name
		return m.Transition(StateRunning, s.now())
	})
	if err != nil {
		return nil, err
	}
	s.Logger.Info("migration configured", "migration", m)
	return m, nil
}

func copyLabels(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// RestartMigration starts a stopped job again: a paused job resumes from
// its checkpoint; a failed one retries its failed step from its checkpoint
// (StartMigration). Other states are ECONFLICT.
func (s *Service) RestartMigration(ctx context.Context, projectID, id string) (*Migration, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	m, err := s.getMigration(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	switch {
	case m.State == StatePaused:
		return s.ResumeMigration(ctx, projectID, id)
	case m.State == StateFailed && len(m.Steps) > 0:
		return s.StartMigration(ctx, projectID, id)
	}
	return nil, &Error{Code: ECONFLICT, Reason: "ILLEGAL_STATE_TRANSITION", Message: fmt.Sprintf("migration %s is %s; only a stopped (paused) or failed migration can be restarted", id, m.State)}
}

// BatchResult is the outcome of one job of a batch operation.
type BatchResult struct {
	ID        string
	Migration *Migration // the job after the operation, when it succeeded
	Err       error
}

// batch runs op on each id (duplicates once, in order). Jobs of another
// engine than engine (when given) are not found, as one vendor's API sees
// only its engine's jobs.
func (s *Service) batch(ctx context.Context, projectID string, ids []string, engine EngineKind, op func(ctx context.Context, projectID, id string) (*Migration, error)) ([]BatchResult, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []BatchResult
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		r := BatchResult{ID: id}
		m, err := s.getMigration(ctx, projectID, id)
		if err == nil && engine != "" && m.Engine != engine {
			err = &Error{Code: ENOTFOUND, Reason: "MIGRATION_NOT_FOUND", Message: fmt.Sprintf("no %s migration with id %s in project %s", engine, id, projectID)}
		}
		if err == nil {
			m, err = op(ctx, projectID, id)
		}
		r.Migration, r.Err = m, err
		out = append(out, r)
	}
	return out, nil
}

// PauseMigrations pauses each job of ids, one result per distinct id.
func (s *Service) PauseMigrations(ctx context.Context, projectID string, ids []string, engine EngineKind) ([]BatchResult, error) {
	return s.batch(ctx, projectID, ids, engine, s.PauseMigration)
}

// RestartMigrations restarts each job of ids (RestartMigration), one result
// per distinct id.
func (s *Service) RestartMigrations(ctx context.Context, projectID string, ids []string, engine EngineKind) ([]BatchResult, error) {
	return s.batch(ctx, projectID, ids, engine, s.RestartMigration)
}

// StopWaitPoll is how often StopMigrationAndWait looks at the job.
var StopWaitPoll = 100 * time.Millisecond

// StopMigrationAndWait pauses a job and returns once its agent has stopped
// the data path and given the job back (or its lease ran out), so nothing
// more is written to the target when it returns. When ctx ends first it
// answers ECONFLICT STOP_PENDING (the job stays paused; its agent still
// stops it).
func (s *Service) StopMigrationAndWait(ctx context.Context, projectID, id string) (*Migration, error) {
	m, err := s.PauseMigration(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	t := time.NewTicker(StopWaitPoll)
	defer t.Stop()
	for {
		if m.State != StatePaused {
			// Failed or released meanwhile: the data path has stopped too
			// once no agent holds the job.
			if m.Lease == nil {
				return m, nil
			}
		}
		if m.Lease == nil || !m.Lease.ExpiresAt.After(s.now()) {
			return m, nil
		}
		agentID := m.Lease.AgentID
		pending := func() error {
			return &Error{Code: ECONFLICT, Reason: "STOP_PENDING", Message: fmt.Sprintf("migration %s is paused but its agent %s has not stopped yet (%v)", id, agentID, ctx.Err()),
				Advice: "the agent stops it shortly; look at the migration again"}
		}
		select {
		case <-ctx.Done():
			return nil, pending()
		case <-t.C:
		}
		if m, err = s.getMigration(ctx, projectID, id); err != nil {
			if ctx.Err() != nil {
				return nil, pending()
			}
			return nil, err
		}
	}
}

// MigrationPatch changes a job's settings; nil fields stay as they are.
type MigrationPatch struct {
	Description      *string
	ResumeMode       *ResumeMode
	BandwidthLimitMB *int
}

// UpdateMigration applies patch to a job that has not ended. An agent
// running the job picks the change up when it next loads the job (resume
// mode: on the next failure; bandwidth: when a step starts).
func (s *Service) UpdateMigration(ctx context.Context, projectID, id string, patch MigrationPatch) (*Migration, error) {
	if patch.ResumeMode != nil {
		switch *patch.ResumeMode {
		case ResumeAuto, ResumeManual:
		default:
			return nil, FieldError("resumeMode", "must be auto or manual, not %q", *patch.ResumeMode)
		}
	}
	if patch.BandwidthLimitMB != nil && *patch.BandwidthLimitMB < 0 {
		return nil, FieldError("bandwidthLimitMb", "must not be negative")
	}
	return s.updateMigration(ctx, projectID, id, func(m *Migration, now time.Time) error {
		if m.State.Terminal() || m.State == StateReleasing {
			return &Error{Code: ECONFLICT, Reason: "MIGRATION_ENDED", Message: fmt.Sprintf("migration %s is %s; its settings can no longer change", m.ID, m.State)}
		}
		if patch.Description != nil {
			m.Description = *patch.Description
		}
		if patch.ResumeMode != nil {
			m.Options.ResumeMode = *patch.ResumeMode
		}
		if patch.BandwidthLimitMB != nil {
			m.Options.BandwidthLimitMB = *patch.BandwidthLimitMB
		}
		m.UpdatedAt = now
		return nil
	})
}

// RollbackCutover undoes a cutover: the application goes back to the
// source. It needs reverse sync (target -> source), which keeps the source
// current after cutover; the job must be cut over with its reverse
// incremental step running, and rolling back ends the job (released: the
// reverse sync stops; the source is the database again). A job without
// reverse sync cannot be rolled back: ENOTIMPLEMENTED naming why.
func (s *Service) RollbackCutover(ctx context.Context, projectID, id string) (*Migration, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	m, err := s.getMigration(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	if !m.Modes.ReverseIncremental {
		msg := fmt.Sprintf("migration %s runs no reverse sync (target -> source), so its cutover cannot be rolled back: writes made to the target after cutover exist only there", id)
		if m.Engine == KindRedis {
			msg = fmt.Sprintf("migration %s cannot be rolled back: ferry's Redis engine has no reverse sync (target -> source), so writes made to the target after cutover exist only there; the source still holds the data as of cutover", id)
		}
		return nil, &Error{Code: ENOTIMPLEMENTED, Reason: "ROLLBACK_NOT_AVAILABLE", Message: msg,
			Advice: "point the application back at the source yourself, knowing it lacks the writes made since cutover"}
	}
	rev := m.Step(StepReverseIncremental)
	if !m.CutOver() || rev == nil || rev.State != StepRunning {
		return nil, &Error{Code: ECONFLICT, Reason: "ROLLBACK_NOT_ALLOWED", Message: fmt.Sprintf("migration %s is %s in step %s; a rollback is possible once it is cut over and reverse sync runs", id, m.State, m.CurrentStep)}
	}
	return s.ReleaseMigration(ctx, projectID, id)
}
