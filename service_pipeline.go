package ferry

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// validationRuntime runs a precheck outside any job: nothing to persist.
type validationRuntime struct{ logger *slog.Logger }

func (r *validationRuntime) Checkpoint() json.RawMessage                 { return nil }
func (r *validationRuntime) Progress(Counters, float64)                  {}
func (r *validationRuntime) Lag(time.Duration, time.Time)                {}
func (r *validationRuntime) Message(string)                              {}
func (r *validationRuntime) Save(context.Context, json.RawMessage) error { return nil }
func (r *validationRuntime) Cutover() <-chan struct{}                    { return nil }
func (r *validationRuntime) Logger() *slog.Logger                        { return r.logger }
func (r *validationRuntime) AgentID() string                             { return "validation" }

// NextRun returns when a periodic pipeline runs next after t.
func NextRun(freq string, t time.Time) (time.Time, bool) {
	switch freq {
	case "HOURLY":
		return t.Add(time.Hour), true
	case "DAILY":
		return t.AddDate(0, 0, 1), true
	case "WEEKLY":
		return t.AddDate(0, 0, 7), true
	case "MONTHLY":
		return t.AddDate(0, 1, 0), true
	case "YEARLY":
		return t.AddDate(1, 0, 0), true
	}
	return time.Time{}, false
}

func (s *Service) validatePipeline(ctx context.Context, p *Pipeline) error {
	if !ValidPipelineName(p.Name) {
		return FieldError("name", "must match ^[^/\\\\ \"$]{1,64}$")
	}
	if err := ValidateName("name", p.Name); err != nil {
		return err
	}
	switch p.Source.Type {
	case SourcePeriodic, SourceOnDemand:
	default:
		return FieldError("source.type", "must be PERIODIC_CPS or ON_DEMAND_CPS")
	}
	if p.Source.ClusterName == "" {
		return FieldError("source.clusterName", "is required (the name of an endpoint registered in the project)")
	}
	if p.Source.DatabaseName == "" || p.Source.CollectionName == "" {
		return FieldError("source.collectionName", "databaseName and collectionName are required")
	}
	if p.Sink.Type == "" {
		p.Sink.Type = "DLS"
	}
	if p.Sink.Type != "DLS" {
		return FieldError("sink.type", "must be DLS")
	}
	seen := map[int]bool{}
	for i, f := range p.Sink.PartitionFields {
		if f.FieldName == "" {
			return FieldError(fmt.Sprintf("sink.partitionFields[%d].fieldName", i), "is required")
		}
		if seen[f.Order] {
			return FieldError(fmt.Sprintf("sink.partitionFields[%d].order", i), "order %d is used twice", f.Order)
		}
		seen[f.Order] = true
	}
	for i, t := range p.Transformations {
		if t.Type != "EXCLUDE" || t.Field == "" {
			return FieldError(fmt.Sprintf("transformations[%d]", i), "must be {field, type: EXCLUDE}")
		}
	}
	if err := resolveSchedule(p); err != nil {
		return err
	}
	if p.Source.Type == SourcePeriodic {
		if _, ok := NextRun(p.BackupFrequencyType, time.Time{}); !ok {
			return FieldError("backupFrequencyType", "must be HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY for a periodic pipeline")
		}
	} else if p.BackupFrequencyType == "" {
		p.BackupFrequencyType = "ON_DEMAND"
	}
	if p.DatasetRetentionPolicy != nil {
		if err := p.DatasetRetentionPolicy.Validate("datasetRetentionPolicy"); err != nil {
			return err
		}
	}
	src, err := s.GetEndpoint(ctx, p.ProjectID, p.Source.ClusterName)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return &Error{Code: EINVALID, Field: "source.clusterName", Reason: "CLUSTER_NOT_FOUND", Message: fmt.Sprintf("no endpoint named %q in project %s", p.Source.ClusterName, p.ProjectID)}
		}
		return err
	}
	exp, err := s.Registry.Exporter(src.Kind)
	if err != nil {
		return err
	}
	return exp.Check(p, src)
}

// CreatePipeline validates and stores a pipeline (ACTIVE).
func (s *Service) CreatePipeline(ctx context.Context, p *Pipeline) error {
	if _, err := s.Authorize(ctx, p.ProjectID, AccessWrite); err != nil {
		return err
	}
	if err := s.validatePipeline(ctx, p); err != nil {
		return err
	}
	now := s.now()
	p.ID = NewID()
	p.State = PipelineActive
	p.CreatedAt, p.UpdatedAt = now, now
	if p.DatasetRetentionPolicy != nil {
		p.DatasetRetentionPolicy.LastModifiedDate = now
	}
	if p.Source.Type == SourcePeriodic {
		next, _ := NextRun(p.BackupFrequencyType, now)
		p.NextRunAt = &next
	}
	if err := s.Store.CreatePipeline(ctx, p); err != nil {
		if ErrorCode(err) == ECONFLICT {
			return &Error{Code: ECONFLICT, Reason: "DUPLICATE_PIPELINE_NAME", Field: "name", Message: fmt.Sprintf("a pipeline named %q already exists in the project", p.Name)}
		}
		return err
	}
	return nil
}

// GetPipeline returns a project's pipeline by name.
func (s *Service) GetPipeline(ctx context.Context, projectID, name string) (*Pipeline, error) {
	if _, err := s.Authorize(ctx, projectID, AccessRead); err != nil {
		return nil, err
	}
	return s.getPipeline(ctx, projectID, name)
}

func (s *Service) getPipeline(ctx context.Context, projectID, name string) (*Pipeline, error) {
	p, err := s.Store.GetPipelineByName(ctx, projectID, name)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil, &Error{Code: ENOTFOUND, Reason: "PIPELINE_NOT_FOUND", Message: fmt.Sprintf("no pipeline named %q in project %s", name, projectID)}
		}
		return nil, err
	}
	return p, nil
}

// ListPipelines lists a project's pipelines.
func (s *Service) ListPipelines(ctx context.Context, projectID string) ([]*Pipeline, error) {
	if _, err := s.Authorize(ctx, projectID, AccessRead); err != nil {
		return nil, err
	}
	return s.Store.ListPipelines(ctx, projectID)
}

// UpdatePipeline applies a partial change (PATCH) to a pipeline: fn edits a
// copy; the result is validated before it is stored.
func (s *Service) UpdatePipeline(ctx context.Context, projectID, name string, fn func(p *Pipeline) error) (*Pipeline, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	cur, err := s.getPipeline(ctx, projectID, name)
	if err != nil {
		return nil, err
	}
	return s.Store.UpdatePipeline(ctx, cur.ID, func(p *Pipeline) error {
		before := p.DatasetRetentionPolicy
		var beforeCopy *RetentionPolicy
		if before != nil {
			c := *before
			beforeCopy = &c
		}
		if err := fn(p); err != nil {
			return err
		}
		p.ID, p.ProjectID = cur.ID, cur.ProjectID
		if p.Name != cur.Name {
			return FieldError("name", "a pipeline cannot be renamed")
		}
		if err := s.validatePipeline(ctx, p); err != nil {
			return err
		}
		now := s.now()
		if r := p.DatasetRetentionPolicy; r != nil && (beforeCopy == nil || beforeCopy.Units != r.Units || beforeCopy.Value != r.Value) {
			r.LastModifiedDate = now
		}
		if p.Source.Type == SourcePeriodic && (p.NextRunAt == nil || p.BackupFrequencyType != cur.BackupFrequencyType) {
			next, _ := NextRun(p.BackupFrequencyType, now)
			p.NextRunAt = &next
		} else if p.Source.Type != SourcePeriodic {
			p.NextRunAt = nil
		}
		return nil
	})
}

// SetPipelineState pauses (PAUSED) or resumes (ACTIVE) a pipeline.
func (s *Service) SetPipelineState(ctx context.Context, projectID, name, state string) (*Pipeline, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	cur, err := s.getPipeline(ctx, projectID, name)
	if err != nil {
		return nil, err
	}
	return s.Store.UpdatePipeline(ctx, cur.ID, func(p *Pipeline) error {
		p.State = state
		return nil
	})
}

// DeletePipeline deletes a pipeline with no run in progress.
func (s *Service) DeletePipeline(ctx context.Context, projectID, name string) error {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return err
	}
	p, err := s.getPipeline(ctx, projectID, name)
	if err != nil {
		return err
	}
	runs, _, err := s.Store.ListRuns(ctx, RunFilter{PipelineID: p.ID, States: []string{RunPending, RunInProgress}})
	if err != nil {
		return err
	}
	if len(runs) > 0 {
		return &Error{Code: ECONFLICT, Reason: "PIPELINE_RUN_IN_PROGRESS", Message: fmt.Sprintf("pipeline %q has a run in progress", name)}
	}
	return s.Store.DeletePipeline(ctx, p.ID)
}

// TriggerRun queues an on-demand run of a pipeline. snapshotID, if given,
// must name one of the pipeline's available snapshots (ListSnapshots): the
// run exports that snapshot's data again; without it the run takes a new
// snapshot. retention overrides the pipeline's policy.
func (s *Service) TriggerRun(ctx context.Context, projectID, name, snapshotID string, retention *RetentionPolicy) (*PipelineRun, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	p, err := s.getPipeline(ctx, projectID, name)
	if err != nil {
		return nil, err
	}
	if p.State != PipelineActive {
		return nil, &Error{Code: ECONFLICT, Reason: "PIPELINE_PAUSED", Message: fmt.Sprintf("pipeline %q is paused; resume it first", name)}
	}
	if snapshotID != "" {
		if !ValidID(snapshotID) {
			return nil, FieldError("snapshotId", "must be a 24-hex id")
		}
		snaps, err := s.ListSnapshots(ctx, projectID, name, nil)
		if err != nil {
			return nil, err
		}
		found := false
		for _, sn := range snaps {
			found = found || sn.ID == snapshotID
		}
		if !found {
			return nil, &Error{Code: ENOTFOUND, Field: "snapshotId", Reason: "SNAPSHOT_NOT_FOUND",
				Message: fmt.Sprintf("no available snapshot %s for pipeline %q", snapshotID, name),
				Advice:  "take a snapshot id from GET .../pipelines/{pipelineName}/availableSnapshots, or trigger without one for a new snapshot"}
		}
	}
	if retention != nil {
		if err := retention.Validate("datasetRetentionPolicy"); err != nil {
			return nil, err
		}
	}
	return s.newRun(ctx, p, "ON_DEMAND", snapshotID, retention)
}

func (s *Service) newRun(ctx context.Context, p *Pipeline, freq, snapshotID string, retention *RetentionPolicy) (*PipelineRun, error) {
	now := s.now()
	r := &PipelineRun{ID: NewID(), ProjectID: p.ProjectID, PipelineID: p.ID, PipelineName: p.Name,
		State: RunPending, Phase: PhaseSnapshot, BackupFrequencyType: freq, SnapshotID: snapshotID,
		CreatedAt: now, UpdatedAt: now}
	if retention == nil && p.DatasetRetentionPolicy != nil {
		c := *p.DatasetRetentionPolicy
		retention = &c
	}
	if retention != nil {
		if retention.LastModifiedDate.IsZero() {
			retention.LastModifiedDate = now
		}
		r.DatasetRetentionPolicy = retention
		d := retention.DeletionDate(now)
		r.ScheduledDeletionDate = &d
	}
	if err := s.Store.CreateRun(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// SchedulePeriodicRuns creates the runs of periodic pipelines that are due
// at now. Agents call it on their loop.
func (s *Service) SchedulePeriodicRuns(ctx context.Context, projectIDs []string) (int, error) {
	n := 0
	for _, pid := range projectIDs {
		pipes, err := s.Store.ListPipelines(ctx, pid)
		if err != nil {
			return n, err
		}
		for _, p := range pipes {
			now := s.now()
			if p.State != PipelineActive || p.Source.Type != SourcePeriodic || p.NextRunAt == nil || p.NextRunAt.After(now) {
				continue
			}
			due := false
			if _, err := s.Store.UpdatePipeline(ctx, p.ID, func(q *Pipeline) error {
				if q.NextRunAt == nil || q.NextRunAt.After(now) {
					return nil
				}
				next, _ := NextRun(q.BackupFrequencyType, now)
				q.NextRunAt = &next
				due = true
				return nil
			}); err != nil {
				return n, err
			}
			if due {
				if _, err := s.newRun(ctx, p, p.BackupFrequencyType, "", nil); err != nil {
					return n, err
				}
				n++
			}
		}
	}
	return n, nil
}

// ListRuns lists a pipeline's runs, newest first.
func (s *Service) ListRuns(ctx context.Context, projectID, name string, offset, limit int) ([]*PipelineRun, int, error) {
	return s.ListRunsFiltered(ctx, projectID, name, RunFilter{Offset: offset, Limit: limit})
}

// ListRunsFiltered lists a pipeline's runs, newest first, narrowed by f's
// States and CreatedBefore and paged by its Offset and Limit (its project
// and pipeline are set from the arguments).
func (s *Service) ListRunsFiltered(ctx context.Context, projectID, name string, f RunFilter) ([]*PipelineRun, int, error) {
	if _, err := s.Authorize(ctx, projectID, AccessRead); err != nil {
		return nil, 0, err
	}
	p, err := s.getPipeline(ctx, projectID, name)
	if err != nil {
		return nil, 0, err
	}
	f.ProjectID, f.PipelineID = "", p.ID
	return s.Store.ListRuns(ctx, f)
}

// GetRun returns one run of a pipeline.
func (s *Service) GetRun(ctx context.Context, projectID, name, runID string) (*PipelineRun, error) {
	if _, err := s.Authorize(ctx, projectID, AccessRead); err != nil {
		return nil, err
	}
	return s.getRun(ctx, projectID, name, runID)
}

func (s *Service) getRun(ctx context.Context, projectID, name, runID string) (*PipelineRun, error) {
	if !ValidID(runID) {
		return nil, &Error{Code: EINVALID, Field: "pipelineRunId", Message: fmt.Sprintf("%q is not a valid 24-hex run id", runID)}
	}
	p, err := s.getPipeline(ctx, projectID, name)
	if err != nil {
		return nil, err
	}
	r, err := s.Store.GetRun(ctx, runID)
	if err != nil || r.PipelineID != p.ID {
		return nil, &Error{Code: ENOTFOUND, Reason: "PIPELINE_RUN_NOT_FOUND", Message: fmt.Sprintf("no run %s of pipeline %q", runID, name)}
	}
	return r, nil
}

// DeleteRunDataset deletes a finished run's dataset now; the run becomes
// DATASET_DELETED.
func (s *Service) DeleteRunDataset(ctx context.Context, projectID, name, runID string) (*PipelineRun, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	r, err := s.getRun(ctx, projectID, name, runID)
	if err != nil {
		return nil, err
	}
	switch r.State {
	case RunDatasetDeleted:
		return r, nil
	case RunPending, RunInProgress:
		return nil, &Error{Code: ECONFLICT, Reason: "PIPELINE_RUN_IN_PROGRESS", Message: "run " + runID + " is still in progress"}
	}
	return s.deleteDataset(ctx, r)
}

// deleteDataset removes a finished run's dataset and marks the run.
func (s *Service) deleteDataset(ctx context.Context, r *PipelineRun) (*PipelineRun, error) {
	if r.State == RunDone {
		p, err := s.Store.GetPipeline(ctx, r.PipelineID)
		if err != nil {
			return nil, fmt.Errorf("run %s: pipeline: %w", r.ID, err)
		}
		src, err := s.Store.GetEndpointByName(ctx, r.ProjectID, p.Source.ClusterName)
		if err != nil {
			return nil, fmt.Errorf("pipeline source: %w", err)
		}
		exp, err := s.Registry.Exporter(src.Kind)
		if err != nil {
			return nil, err
		}
		if err := exp.DeleteDataset(ctx, p, r); err != nil {
			return nil, fmt.Errorf("delete dataset %s: %w", r.DatasetName, err)
		}
	}
	return s.Store.UpdateRun(ctx, r.ID, func(r *PipelineRun) error {
		r.State = RunDatasetDeleted
		return nil
	})
}

// StagingDiscarder is an Exporter that can remove what the unpublished
// attempts of a run left in its sink (staging files, objects).
type StagingDiscarder interface {
	DiscardStaging(ctx context.Context, p *Pipeline, run *PipelineRun) error
}

// discardFailed removes what a failed run's last attempt left unpublished
// (its checkpoint names it), then forgets the checkpoint so that it is done
// once.
func (s *Service) discardFailed(ctx context.Context, r *PipelineRun) error {
	p, err := s.Store.GetPipeline(ctx, r.PipelineID)
	if err != nil {
		return fmt.Errorf("run %s: pipeline: %w", r.ID, err)
	}
	src, err := s.Store.GetEndpointByName(ctx, r.ProjectID, p.Source.ClusterName)
	if err != nil {
		return fmt.Errorf("pipeline source: %w", err)
	}
	exp, err := s.Registry.Exporter(src.Kind)
	if err != nil {
		return err
	}
	if d, ok := exp.(StagingDiscarder); ok {
		if err := d.DiscardStaging(ctx, p, r); err != nil {
			return err
		}
	}
	_, err = s.Store.UpdateRun(ctx, r.ID, func(r *PipelineRun) error {
		if r.State == RunFailed {
			r.Checkpoint = nil
		}
		return nil
	})
	return err
}

// ReapDatasets deletes the datasets of finished runs whose scheduled
// deletion date has passed, and what failed runs left unpublished. Agents
// call it on their loop.
func (s *Service) ReapDatasets(ctx context.Context) (int, error) {
	runs, _, err := s.Store.ListRuns(ctx, RunFilter{States: []string{RunDone, RunFailed}})
	if err != nil {
		return 0, err
	}
	now := s.now()
	n := 0
	for _, r := range runs {
		if r.State == RunFailed && len(r.Checkpoint) > 0 {
			if err := s.discardFailed(ctx, r); err != nil {
				s.Logger.Warn("discard a failed run's unpublished files", "pipelineRun", r.ID, "err", err)
			}
		}
		if r.ScheduledDeletionDate == nil || r.ScheduledDeletionDate.After(now) {
			continue
		}
		if _, err := s.deleteDataset(ctx, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
