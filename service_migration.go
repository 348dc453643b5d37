package ferry

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CreateMigration validates and stores a new job. With start it is queued
// for an agent at once (Atlas, DCS); without, it waits in StateCreated for
// StartMigration (OMS). Endpoints given by Name only are resolved from the
// project's registered endpoints.
func (s *Service) CreateMigration(ctx context.Context, m *Migration, start bool) error {
	if _, err := s.Authorize(ctx, m.ProjectID, AccessWrite); err != nil {
		return err
	}
	if err := s.resolveEndpoints(ctx, m); err != nil {
		return err
	}
	if m.Engine == "" {
		m.Engine = m.Target.Kind
	}
	if err := m.Validate(); err != nil {
		return err
	}
	eng, err := s.Registry.Engine(m.Engine)
	if err != nil {
		return err
	}
	if err := eng.Check(m); err != nil {
		return err
	}
	now := s.now()
	m.ID = NewID()
	if m.Name == "" {
		m.Name = string(m.Engine) + "-" + m.ID[18:]
	}
	if m.Options.ResumeMode == "" {
		m.Options.ResumeMode = ResumeAuto
	}
	if m.Importance == "" {
		m.Importance = "MEDIUM"
	}
	m.State = StateCreated
	m.InitSteps()
	m.CurrentStep = m.Steps[0].Name
	m.CreatedAt, m.UpdatedAt = now, now
	m.Lease, m.LagSeconds, m.ReadyForCutover, m.CutoverDeadline = nil, nil, false, nil
	if start {
		if err := m.Transition(StateRunning, now); err != nil {
			return err
		}
	}
	if err := s.Store.CreateMigration(ctx, m); err != nil {
		return err
	}
	s.Logger.Info("migration created", "migration", m)
	return nil
}

// overlayEndpoint returns the registered endpoint reg with the connection
// settings a request gave alongside the endpoint's name applied on top:
// credentials, TLS and options (a dialect may let a job carry its own
// credentials for a registered cluster, as Atlas's live migration does).
func overlayEndpoint(reg, given Endpoint) Endpoint {
	out := reg
	if given.Username != "" {
		out.Username = given.Username
	}
	if given.Password != "" {
		out.Password = given.Password
	}
	if given.TLS {
		out.TLS = true
	}
	if given.TLSSkipVerify {
		out.TLSSkipVerify = true
	}
	if given.CACertPEM != "" {
		out.CACertPEM = given.CACertPEM
	}
	if len(given.Options) > 0 {
		o := make(map[string]string, len(reg.Options)+len(given.Options))
		for k, v := range reg.Options {
			o[k] = v
		}
		for k, v := range given.Options {
			o[k] = v
		}
		out.Options = o
	}
	return out
}

// GetMigration returns a job the caller can read at level need.
func (s *Service) GetMigration(ctx context.Context, projectID, id string, need Access) (*Migration, error) {
	if _, err := s.Authorize(ctx, projectID, need); err != nil {
		return nil, err
	}
	return s.getMigration(ctx, projectID, id)
}

func (s *Service) getMigration(ctx context.Context, projectID, id string) (*Migration, error) {
	notFound := &Error{Code: ENOTFOUND, Reason: "MIGRATION_NOT_FOUND", Message: fmt.Sprintf("no migration with id %s in project %s", id, projectID)}
	m, err := s.Store.GetMigration(ctx, id)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil, notFound
		}
		return nil, err
	}
	if m.ProjectID != projectID || m.State == StateDeleted {
		return nil, notFound
	}
	return m, nil
}

// ListMigrations lists a project's jobs (deleted ones excluded unless asked).
func (s *Service) ListMigrations(ctx context.Context, f MigrationFilter, need Access) ([]*Migration, int, error) {
	if _, err := s.Authorize(ctx, f.ProjectID, need); err != nil {
		return nil, 0, err
	}
	if len(f.States) == 0 {
		for st := range transitions {
			if st != StateDeleted {
				f.States = append(f.States, st)
			}
		}
	}
	return s.Store.ListMigrations(ctx, f)
}

// updateMigration authorizes, loads and changes a job atomically.
func (s *Service) updateMigration(ctx context.Context, projectID, id string, fn func(m *Migration, now time.Time) error) (*Migration, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	if _, err := s.getMigration(ctx, projectID, id); err != nil {
		return nil, err
	}
	return s.Store.UpdateMigration(ctx, id, func(m *Migration) error { return fn(m, s.now()) })
}

// StartMigration queues a created (or failed, for a retry) job.
func (s *Service) StartMigration(ctx context.Context, projectID, id string) (*Migration, error) {
	return s.updateMigration(ctx, projectID, id, func(m *Migration, now time.Time) error {
		if m.State != StateCreated && m.State != StateFailed {
			return &Error{Code: ECONFLICT, Reason: "ILLEGAL_STATE_TRANSITION", Message: fmt.Sprintf("migration %s is %s; only a created or failed migration can be started", m.ID, m.State)}
		}
		if m.Draft() {
			return &Error{Code: ECONFLICT, Reason: "NOT_CONFIGURED", Message: fmt.Sprintf("migration %s is a draft without endpoints; configure it first", m.ID)}
		}
		if m.State == StateFailed {
			// A retry resumes the failed step from its checkpoint.
			for i := range m.Steps {
				if m.Steps[i].State == StepFailed {
					m.Steps[i].State = StepPending
				}
			}
			m.Attempts = 0
			m.FinishedAt = nil
		}
		return m.Transition(StateRunning, now)
	})
}

// PauseMigration stops a running job; its agent stops at once and the job
// resumes from its checkpoint on ResumeMigration.
func (s *Service) PauseMigration(ctx context.Context, projectID, id string) (*Migration, error) {
	return s.updateMigration(ctx, projectID, id, func(m *Migration, now time.Time) error {
		return m.Transition(StatePaused, now)
	})
}

// ResumeMigration queues a paused job again.
func (s *Service) ResumeMigration(ctx context.Context, projectID, id string) (*Migration, error) {
	return s.updateMigration(ctx, projectID, id, func(m *Migration, now time.Time) error {
		if m.State != StatePaused {
			return &Error{Code: ECONFLICT, Reason: "ILLEGAL_STATE_TRANSITION", Message: fmt.Sprintf("migration %s is %s; only a paused migration can be resumed", m.ID, m.State)}
		}
		return m.Transition(StateRunning, now)
	})
}

// CutoverMigration asks the agent to finish sync and complete the job. It
// is legal only while the incremental step runs.
func (s *Service) CutoverMigration(ctx context.Context, projectID, id string) (*Migration, error) {
	return s.updateMigration(ctx, projectID, id, func(m *Migration, now time.Time) error {
		if m.State == StateCuttingOver {
			return nil
		}
		if m.State != StateRunning || m.CurrentStep != StepIncremental {
			return m.cutoverRefusal(now)
		}
		if err := m.Transition(StateCuttingOver, now); err != nil {
			return err
		}
		if m.Cutover == nil {
			m.Cutover = &CutoverInfo{}
		}
		m.Cutover.RequestedAt = &now
		if eng, err := s.Registry.Engine(m.Engine); err == nil {
			if p, ok := eng.(CutoverPlanner); ok {
				if plan := p.CutoverPlan(m); plan != "" {
					m.Cutover.Notes = []string{plan}
				}
			}
		}
		return nil
	})
}

// ExtendCutover pushes the cutover deadline out.
func (s *Service) ExtendCutover(ctx context.Context, projectID, id string, d time.Duration) (*Migration, error) {
	if d <= 0 || d > CutoverWindow {
		return nil, FieldError("hours", "must be between 1 and 120 hours")
	}
	return s.updateMigration(ctx, projectID, id, func(m *Migration, now time.Time) error {
		return m.ExtendCutover(d, now)
	})
}

// ReleaseMigration ends a job and frees what it holds: a running job goes
// through releasing (its agent stops it), others go straight to released.
// A job that is cutting over can be released once its cutover step is done
// (reverse incremental sync runs until the job is released).
func (s *Service) ReleaseMigration(ctx context.Context, projectID, id string) (*Migration, error) {
	return s.updateMigration(ctx, projectID, id, func(m *Migration, now time.Time) error {
		if m.State == StateReleasing || m.State == StateReleased {
			return nil
		}
		if m.State == StateCuttingOver && !m.CutOver() {
			return &Error{Code: ECONFLICT, Reason: "ILLEGAL_STATE_TRANSITION", Message: "migration " + m.ID + " is cutting over; release it after cutover"}
		}
		leased := m.Lease != nil && m.Lease.ExpiresAt.After(now)
		if err := m.Transition(StateReleasing, now); err != nil {
			return err
		}
		if !leased {
			return m.Transition(StateReleased, now)
		}
		return nil
	})
}

// DeleteMigration marks a job deleted. A job an agent is running must be
// paused or released first.
func (s *Service) DeleteMigration(ctx context.Context, projectID, id string) error {
	_, err := s.updateMigration(ctx, projectID, id, func(m *Migration, now time.Time) error {
		if m.State.Active() || m.State == StateReleasing {
			return &Error{Code: ECONFLICT, Reason: "MIGRATION_RUNNING", Message: fmt.Sprintf("migration %s is %s; stop or release it before deleting it", m.ID, m.State),
				Advice: "pause or release the migration first"}
		}
		return m.Transition(StateDeleted, now)
	})
	return err
}

// VerifyMigration starts an on-demand verification of a job's source and
// target: a new job of the same engine, endpoints and filters that runs only
// the precheck and verification steps (it writes nothing), queued for an
// agent. It returns the new job, whose verify step reports the numbers.
func (s *Service) VerifyMigration(ctx context.Context, projectID, id string) (*Migration, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	src, err := s.getMigration(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	v := &Migration{ProjectID: projectID, Name: "verify-" + src.Name, Description: "on-demand verification of migration " + src.ID,
		Engine: src.Engine, Source: src.Source, Target: src.Target, Modes: Modes{Verify: true},
		Options: Options{Filters: src.Options.Filters, Extra: src.Options.Extra, Conflict: src.Options.Conflict},
		Dialect: "native", Labels: map[string]string{"verifies": src.ID}}
	if err := s.CreateMigration(ctx, v, true); err != nil {
		return nil, err
	}
	return v, nil
}

// CreateValidation runs an engine's precheck for a would-be job. Engines
// without a precheck answer with the not-built error of the registry.
func (s *Service) CreateValidation(ctx context.Context, m *Migration) (*Validation, error) {
	if _, err := s.Authorize(ctx, m.ProjectID, AccessWrite); err != nil {
		return nil, err
	}
	probe := *m
	probe.Modes = Modes{Full: true}
	if probe.Engine == "" {
		probe.Engine = probe.Target.Kind
	}
	// Resolve names and check everything CreateMigration checks, without storing.
	for _, e := range []*Endpoint{&probe.Source, &probe.Target} {
		if e.Name != "" && len(e.Addrs) == 0 {
			reg, err := s.GetEndpoint(ctx, m.ProjectID, e.Name)
			if err != nil {
				return nil, err
			}
			*e = overlayEndpoint(*reg, *e)
		}
	}
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	if err := probe.ValidateSource(); err != nil {
		return nil, err
	}
	eng, err := s.Registry.Engine(probe.Engine)
	if err != nil {
		return nil, err
	}
	v := &Validation{ID: NewID(), ProjectID: m.ProjectID, SourceGroupID: m.Labels["sourceGroupId"], Status: "PENDING", CreatedAt: s.now()}
	if err := s.Store.CreateValidation(ctx, v); err != nil {
		return nil, err
	}
	go s.runValidation(v.ID, eng, &probe)
	return v, nil
}

func (s *Service) runValidation(id string, eng Engine, m *Migration) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rt := &validationRuntime{logger: s.Logger}
	err := eng.RunStep(ctx, m, StepPrecheck, rt)
	_, uerr := s.Store.UpdateValidation(ctx, id, func(v *Validation) error {
		if err != nil {
			v.Status = "FAILED"
			v.Errors = append(v.Errors, RedactText(strings.TrimPrefix(ErrorMessage(err), "ferry ")))
			if ErrorCode(err) == EINTERNAL {
				v.Errors[len(v.Errors)-1] = err.Error()
			}
		} else {
			v.Status = "SUCCESS"
		}
		return nil
	})
	if uerr != nil {
		s.Logger.Error("store validation result", "validation", id, "err", uerr)
	}
}

// GetValidation returns a validation of the project.
func (s *Service) GetValidation(ctx context.Context, projectID, id string) (*Validation, error) {
	if _, err := s.Authorize(ctx, projectID, AccessRead); err != nil {
		return nil, err
	}
	v, err := s.Store.GetValidation(ctx, id)
	if err != nil || v.ProjectID != projectID {
		return nil, &Error{Code: ENOTFOUND, Reason: "VALIDATION_NOT_FOUND", Message: fmt.Sprintf("no validation with id %s in project %s", id, projectID)}
	}
	return v, nil
}
