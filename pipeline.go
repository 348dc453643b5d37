package ferry

import (
	"regexp"
	"time"
)

// Pipeline states.
const (
	PipelineActive = "ACTIVE"
	PipelinePaused = "PAUSED"
)

// Pipeline source types (Atlas names).
const (
	SourcePeriodic = "PERIODIC_CPS"
	SourceOnDemand = "ON_DEMAND_CPS"
)

// Backup frequencies of a periodic pipeline.
var Frequencies = []string{"HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY", "ON_DEMAND"}

var pipelineNamePattern = regexp.MustCompile(`^[^/\\ "$]{1,64}$`)

// ValidPipelineName reports whether name matches Atlas's pipeline name pattern.
func ValidPipelineName(name string) bool { return pipelineNamePattern.MatchString(name) }

// RetentionPolicy says how long a run's dataset is kept.
type RetentionPolicy struct {
	Units            string    `json:"units"` // DAYS, WEEKS, MONTHS
	Value            int       `json:"value"`
	LastModifiedDate time.Time `json:"lastModifiedDate,omitzero"`
}

// Validate checks the policy.
func (r *RetentionPolicy) Validate(field string) error {
	switch r.Units {
	case "DAYS", "WEEKS", "MONTHS":
	default:
		return FieldError(field+".units", "must be DAYS, WEEKS or MONTHS")
	}
	if r.Value <= 0 {
		return FieldError(field+".value", "must be positive")
	}
	return nil
}

// DeletionDate returns from + the policy.
func (r RetentionPolicy) DeletionDate(from time.Time) time.Time {
	switch r.Units {
	case "WEEKS":
		return from.AddDate(0, 0, 7*r.Value)
	case "MONTHS":
		return from.AddDate(0, r.Value, 0)
	}
	return from.AddDate(0, 0, r.Value)
}

// PipelineSource is what a pipeline snapshots: a collection or a table of a
// registered endpoint ("cluster").
type PipelineSource struct {
	Type           string `json:"type"`        // PERIODIC_CPS or ON_DEMAND_CPS
	ClusterName    string `json:"clusterName"` // a registered endpoint's name
	DatabaseName   string `json:"databaseName"`
	CollectionName string `json:"collectionName"`
	GroupID        string `json:"groupId,omitempty"`
	PolicyItemID   string `json:"policyItemId,omitempty"`
}

// PartitionField is one ordered partition field of a dataset.
type PartitionField struct {
	FieldName string `json:"fieldName"`
	Order     int    `json:"order"`
}

// PipelineSink is where datasets go.
type PipelineSink struct {
	Type             string           `json:"type"` // DLS
	MetadataProvider string           `json:"metadataProvider,omitempty"`
	MetadataRegion   string           `json:"metadataRegion,omitempty"`
	PartitionFields  []PartitionField `json:"partitionFields,omitempty"`
	// Location is a local directory or s3://bucket/prefix; empty: the data dir.
	Location string `json:"location,omitempty"`
}

// Transformation changes documents on export.
type Transformation struct {
	Field string `json:"field"`
	Type  string `json:"type"` // EXCLUDE
}

// Pipeline exports snapshots of a source as datasets.
type Pipeline struct {
	ID                     string           `json:"id"`
	ProjectID              string           `json:"projectId"`
	Name                   string           `json:"name"`
	State                  string           `json:"state"`
	Source                 PipelineSource   `json:"source"`
	Sink                   PipelineSink     `json:"sink"`
	Transformations        []Transformation `json:"transformations,omitempty"`
	BackupFrequencyType    string           `json:"backupFrequencyType,omitempty"`
	DatasetRetentionPolicy *RetentionPolicy `json:"datasetRetentionPolicy,omitempty"`
	NextRunAt              *time.Time       `json:"nextRunAt,omitempty"`
	CreatedAt              time.Time        `json:"createdAt"`
	UpdatedAt              time.Time        `json:"updatedAt"`
	Version                int64            `json:"version"`
}

// Run states and phases (Atlas names).
const (
	RunPending        = "PENDING"
	RunInProgress     = "IN_PROGRESS"
	RunDone           = "DONE"
	RunFailed         = "FAILED"
	RunDatasetDeleted = "DATASET_DELETED"

	PhaseSnapshot  = "SNAPSHOT"
	PhaseExport    = "EXPORT"
	PhaseIngestion = "INGESTION"
)

// RunStats are a run's live export counters.
type RunStats struct {
	BytesExported int64 `json:"bytesExported"`
	NumDocs       int64 `json:"numDocs"`
}

// PipelineRun is one export of a pipeline.
type PipelineRun struct {
	ID                     string           `json:"id"`
	ProjectID              string           `json:"projectId"`
	PipelineID             string           `json:"pipelineId"`
	PipelineName           string           `json:"pipelineName"`
	State                  string           `json:"state"`
	Phase                  string           `json:"phase"`
	BackupFrequencyType    string           `json:"backupFrequencyType,omitempty"`
	SnapshotID             string           `json:"snapshotId,omitempty"`
	DatasetName            string           `json:"datasetName,omitempty"`
	DatasetRetentionPolicy *RetentionPolicy `json:"datasetRetentionPolicy,omitempty"`
	ScheduledDeletionDate  *time.Time       `json:"scheduledDeletionDate,omitempty"`
	Stats                  RunStats         `json:"stats"`
	Checkpoint             []byte           `json:"checkpoint,omitempty"`
	Error                  string           `json:"error,omitempty"`
	Hosts                  []string         `json:"hosts,omitempty"`
	Lease                  *Lease           `json:"lease,omitempty"`
	CreatedAt              time.Time        `json:"createdAt"`
	UpdatedAt              time.Time        `json:"updatedAt"`
	Version                int64            `json:"version"`
}

// RunFilter selects runs in a list.
type RunFilter struct {
	ProjectID     string
	PipelineID    string
	States        []string
	CreatedBefore *time.Time
	Offset        int
	Limit         int
}

// Validation is an Atlas-style pre-flight check of a would-be migration.
type Validation struct {
	ID            string    `json:"id"`
	ProjectID     string    `json:"projectId"`
	SourceGroupID string    `json:"sourceGroupId,omitempty"`
	Status        string    `json:"status"` // PENDING, SUCCESS, FAILED
	Errors        []string  `json:"errors,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
}
