package ferry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Snapshot is a snapshot point of a pipeline: the read point of a run that
// published its dataset. The dataset keeps the data as of that point, so a
// later run triggered with the snapshot's id exports exactly that data
// again (into a dataset of its own), as Atlas exports a backup snapshot.
// A snapshot is available while its dataset is.
type Snapshot struct {
	ID            string     `json:"id"`
	RunID         string     `json:"runId"`
	DatasetName   string     `json:"datasetName"`
	FrequencyType string     `json:"frequencyType"` // the run's: ON_DEMAND, HOURLY, ...
	CreatedAt     time.Time  `json:"createdAt"`
	ExpiresAt     *time.Time `json:"expiresAt,omitempty"`
	Docs          int64      `json:"docs"`
	Bytes         int64      `json:"bytes"`
}

// ListSnapshots returns a pipeline's available snapshot points, newest
// first; completedAfter, if set, keeps those taken after it.
func (s *Service) ListSnapshots(ctx context.Context, projectID, name string, completedAfter *time.Time) ([]Snapshot, error) {
	if _, err := s.Authorize(ctx, projectID, AccessRead); err != nil {
		return nil, err
	}
	p, err := s.getPipeline(ctx, projectID, name)
	if err != nil {
		return nil, err
	}
	runs, _, err := s.Store.ListRuns(ctx, RunFilter{ProjectID: projectID, PipelineID: p.ID, States: []string{RunDone}})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Snapshot
	for _, r := range runs {
		if r.SnapshotID == "" || r.DatasetName == "" || seen[r.SnapshotID] {
			continue
		}
		at := r.CreatedAt
		if t, ok := datasetTime(r.DatasetName); ok {
			at = t
		}
		if completedAfter != nil && !at.After(*completedAfter) {
			continue
		}
		// Runs that re-exported a snapshot carry its id: the snapshot is
		// listed once, by its newest dataset.
		seen[r.SnapshotID] = true
		out = append(out, Snapshot{ID: r.SnapshotID, RunID: r.ID, DatasetName: r.DatasetName, FrequencyType: r.BackupFrequencyType,
			CreatedAt: at, ExpiresAt: r.ScheduledDeletionDate, Docs: r.Stats.NumDocs, Bytes: r.Stats.BytesExported})
	}
	return out, nil
}

// datasetTime reads the snapshot time a dataset name ends with
// (...$20060102T150405Z).
func datasetTime(name string) (time.Time, bool) {
	i := strings.LastIndexByte(name, '$')
	if i < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T150405Z", name[i+1:])
	return t, err == nil
}

// Schedule is a backup schedule policy item a periodic pipeline can use as
// its source (Atlas's DiskBackupApiPolicyItem): ferry's own schedules, one
// per frequency, with ids stable per project.
type Schedule struct {
	ID                string `json:"id"`
	FrequencyType     string `json:"frequencyType"` // hourly, daily, weekly, monthly, yearly
	FrequencyInterval int    `json:"frequencyInterval"`
	RetentionUnit     string `json:"retentionUnit"` // days, weeks, months, years
	RetentionValue    int    `json:"retentionValue"`
}

// Frequency is the schedule's pipeline backupFrequencyType (HOURLY, ...).
func (s Schedule) Frequency() string { return strings.ToUpper(s.FrequencyType) }

// defaultScheduleRetention is how long each schedule keeps its snapshots
// when the pipeline sets no dataset retention.
var defaultScheduleRetention = map[string][2]any{
	"HOURLY": {"days", 2}, "DAILY": {"days", 7}, "WEEKLY": {"weeks", 4}, "MONTHLY": {"months", 12}, "YEARLY": {"years", 1},
}

// Schedules returns the schedules of project projectID; a dataset
// retention policy, if given, is what each keeps.
func Schedules(projectID string, retention *RetentionPolicy) []Schedule {
	var out []Schedule
	for _, f := range []string{"HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"} {
		h := sha256.Sum256([]byte("ferry-schedule:" + projectID + ":" + f))
		d := defaultScheduleRetention[f]
		s := Schedule{ID: hex.EncodeToString(h[:12]), FrequencyType: strings.ToLower(f), FrequencyInterval: 1,
			RetentionUnit: d[0].(string), RetentionValue: d[1].(int)}
		if retention != nil && retention.Value > 0 {
			s.RetentionUnit, s.RetentionValue = strings.ToLower(retention.Units), retention.Value
		}
		out = append(out, s)
	}
	return out
}

// ScheduleByID finds a schedule of project projectID by its id.
func ScheduleByID(projectID, id string) (Schedule, bool) {
	for _, s := range Schedules(projectID, nil) {
		if s.ID == id {
			return s, true
		}
	}
	return Schedule{}, false
}

// ListSchedules returns the schedules a pipeline can use as its source.
func (s *Service) ListSchedules(ctx context.Context, projectID, name string) ([]Schedule, error) {
	if _, err := s.Authorize(ctx, projectID, AccessRead); err != nil {
		return nil, err
	}
	p, err := s.getPipeline(ctx, projectID, name)
	if err != nil {
		return nil, err
	}
	return Schedules(projectID, p.DatasetRetentionPolicy), nil
}

// resolveSchedule ties a periodic pipeline's policyItemId and
// backupFrequencyType together: a policy item sets the frequency; a
// frequency alone gets its schedule's policy item.
func resolveSchedule(p *Pipeline) error {
	if p.Source.Type != SourcePeriodic {
		if p.Source.PolicyItemID != "" {
			return FieldError("source.policyItemId", "is for PERIODIC_CPS sources only")
		}
		return nil
	}
	if p.Source.PolicyItemID != "" {
		sc, ok := ScheduleByID(p.ProjectID, p.Source.PolicyItemID)
		if !ok {
			return &Error{Code: EINVALID, Field: "source.policyItemId", Reason: "INVALID_POLICY_ITEM",
				Message: fmt.Sprintf("%s is not a schedule of this project", p.Source.PolicyItemID),
				Advice:  "take a policy item id from GET .../pipelines/{pipelineName}/availableSchedules"}
		}
		if p.BackupFrequencyType != "" && p.BackupFrequencyType != sc.Frequency() {
			return FieldError("backupFrequencyType", "%s differs from the policy item's frequency %s", p.BackupFrequencyType, sc.Frequency())
		}
		p.BackupFrequencyType = sc.Frequency()
		return nil
	}
	for _, sc := range Schedules(p.ProjectID, nil) {
		if sc.Frequency() == p.BackupFrequencyType {
			p.Source.PolicyItemID = sc.ID
		}
	}
	return nil
}
