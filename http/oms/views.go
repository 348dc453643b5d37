package oms

import (
	"encoding/json"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/ferrymigrate/ferry"
)

// Status maps a job state to OMS's project status:
//
//	created -> INIT; running, cutting_over -> RUNNING; paused -> SUSPEND;
//	failed -> FAILED; completed, expired -> FINISHED; releasing -> RELEASING;
//	released -> RELEASED; deleted -> DELETED.
func Status(s ferry.State) string {
	switch s {
	case ferry.StateCreated:
		return "INIT"
	case ferry.StateRunning, ferry.StateCuttingOver:
		return "RUNNING"
	case ferry.StatePaused:
		return "SUSPEND"
	case ferry.StateFailed:
		return "FAILED"
	case ferry.StateCompleted, ferry.StateExpired:
		return "FINISHED"
	case ferry.StateReleasing:
		return "RELEASING"
	case ferry.StateReleased:
		return "RELEASED"
	case ferry.StateDeleted:
		return "DELETED"
	}
	return "INIT"
}

// statesOf is the inverse of Status, for list filters.
var statesOf = map[string][]ferry.State{
	"INIT":      {ferry.StateCreated},
	"RUNNING":   {ferry.StateRunning, ferry.StateCuttingOver},
	"SUSPEND":   {ferry.StatePaused},
	"FAILED":    {ferry.StateFailed},
	"FINISHED":  {ferry.StateCompleted, ferry.StateExpired},
	"RELEASING": {ferry.StateReleasing},
	"RELEASED":  {ferry.StateReleased},
	"DELETED":   {ferry.StateDeleted},
}

// StepName maps a ferry step to OMS V3's step name (the naming the seed's
// PRE_CHECK belongs to): precheck PRE_CHECK, schema STRUCT_MIGRATION, full
// FULL_MIGRATION, incremental INCR_SYNC, cutover APP_SWITCH (OMS's forward
// switch), verify FULL_VALIDATION, reverse_incremental REVERSE_INCR_SYNC.
func StepName(n ferry.StepName) string {
	switch n {
	case ferry.StepPrecheck:
		return "PRE_CHECK"
	case ferry.StepSchema:
		return "STRUCT_MIGRATION"
	case ferry.StepFull:
		return "FULL_MIGRATION"
	case ferry.StepIncremental:
		return "INCR_SYNC"
	case ferry.StepCutover:
		return "APP_SWITCH"
	case ferry.StepVerify:
		return "FULL_VALIDATION"
	case ferry.StepReverseIncremental:
		return "REVERSE_INCR_SYNC"
	}
	return string(n)
}

var stepDescriptions = map[ferry.StepName]string{
	ferry.StepPrecheck:           "Pre-check",
	ferry.StepSchema:             "Schema migration",
	ferry.StepFull:               "Full migration",
	ferry.StepIncremental:        "Incremental synchronization",
	ferry.StepCutover:            "Forward switchover",
	ferry.StepVerify:             "Full verification",
	ferry.StepReverseIncremental: "Reverse incremental synchronization",
}

// CurrentStep is the seed's currentStep: the job's current step, except that
// full verification is not reported (the seed: "excluding full
// verification"): while verification runs the step before it is reported.
func CurrentStep(m *ferry.Migration) string {
	cur := m.CurrentStep
	if cur == ferry.StepVerify {
		cur = ""
		for _, s := range m.Steps {
			if s.Name == ferry.StepVerify {
				break
			}
			cur = s.Name
		}
	}
	if cur == "" {
		return ""
	}
	return StepName(cur)
}

// StepStatus maps a step's state to OMS's step status (INIT, RUNNING,
// MONITORING, SUSPEND, FINISHED, FAILED): a running sync step is MONITORING
// (OMS's word for continuous incremental sync); a running step of a paused
// job is SUSPEND.
func StepStatus(m *ferry.Migration, s *ferry.Step) string {
	switch s.State {
	case ferry.StepDone:
		return "FINISHED"
	case ferry.StepFailed:
		return "FAILED"
	case ferry.StepRunning:
		if m.State == ferry.StatePaused {
			return "SUSPEND"
		}
		if s.Name == ferry.StepIncremental || s.Name == ferry.StepReverseIncremental {
			return "MONITORING"
		}
		return "RUNNING"
	}
	return "INIT"
}

// percent turns a step's progress into OMS's int 0..100 (floored, so 100
// means done).
func percent(p float64) int {
	if math.IsNaN(p) || p <= 0 {
		return 0
	}
	if p >= 100 {
		return 100
	}
	return int(math.Floor(p))
}

func stepPercent(m *ferry.Migration, n ferry.StepName) int {
	if s := m.Step(n); s != nil {
		return percent(s.Progress)
	}
	return 0
}

// checkpoint is a sync step's checkpoint in unix seconds; 0 when the job has
// no such step or the step has no checkpoint yet.
func checkpoint(m *ferry.Migration, n ferry.StepName) int64 {
	if s := m.Step(n); s != nil && s.CheckpointTime != nil {
		return s.CheckpointTime.Unix()
	}
	return 0
}

// progressView is the seed's data object, field for field.
type progressView struct {
	Status                    string `json:"status"`
	Importance                string `json:"importance"`
	EnableStructMigration     bool   `json:"enableStructMigration"`
	EnableFullMigration       bool   `json:"enableFullMigration"`
	EnableIncrSync            bool   `json:"enableIncrSync"`
	EnableReverseIncrSync     bool   `json:"enableReverseIncrSync"`
	CurrentStep               string `json:"currentStep"`
	StructMigrationProgress   int    `json:"structMigrationProgress"`
	FullMigrationProgress     int    `json:"fullMigrationProgress"`
	IncrSyncCheckpoint        int64  `json:"incrSyncCheckpoint"`
	ReverseIncrSyncCheckpoint int64  `json:"reverseIncrSyncCheckpoint"`
}

func progressOf(m *ferry.Migration) progressView {
	return progressView{
		Status:                    Status(m.State),
		Importance:                importance(m),
		EnableStructMigration:     m.Modes.Schema,
		EnableFullMigration:       m.Modes.Full,
		EnableIncrSync:            m.Modes.Incremental,
		EnableReverseIncrSync:     m.Modes.ReverseIncremental,
		CurrentStep:               CurrentStep(m),
		StructMigrationProgress:   stepPercent(m, ferry.StepSchema),
		FullMigrationProgress:     stepPercent(m, ferry.StepFull),
		IncrSyncCheckpoint:        checkpoint(m, ferry.StepIncremental),
		ReverseIncrSyncCheckpoint: checkpoint(m, ferry.StepReverseIncremental),
	}
}

func importance(m *ferry.Migration) string {
	if m.Importance == "" {
		return "MEDIUM"
	}
	return m.Importance
}

// timeLayout is OMS's time format: UTC+0, no zone suffix.
const timeLayout = "2006-01-02T15:04:05"

func omsTime(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := t.UTC().Format(timeLayout)
	return &s
}

// stepView is one item of the steps list (DescribeProjectSteps' shape).
type stepView struct {
	Order       int       `json:"order"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Status      string    `json:"status"`
	Progress    int       `json:"progress"`
	StartTime   *string   `json:"startTime"`
	FinishTime  *string   `json:"finishTime"`
	ExtraInfo   extraInfo `json:"extraInfo"`
	StepInfo    stepInfo  `json:"stepInfo"`
}

type extraInfo struct {
	ErrorMsg string `json:"errorMsg"`
	Message  string `json:"message"`
}

// stepInfo carries a step's counters under OMS-style names.
type stepInfo struct {
	ProcessedRecords        int64   `json:"processedRecords"`
	Capacity                int64   `json:"capacity"`
	TransferredBytes        int64   `json:"transferredBytes"`
	TotalBytes              int64   `json:"totalBytes"`
	AppliedChanges          int64   `json:"appliedChanges"`
	FailedRecords           int64   `json:"failedRecords"`
	Inconsistencies         int64   `json:"inconsistencies"`
	MissingRecords          int64   `json:"missingRecords"`
	RedundantRecords        int64   `json:"redundantRecords"`
	DstRps                  float64 `json:"dstRps"`
	LagBytes                int64   `json:"lagBytes"`
	Unit                    string  `json:"unit"`
	IncrTimestampCheckpoint int64   `json:"incrTimestampCheckpoint"`
}

func stepsOf(m *ferry.Migration) []stepView {
	out := make([]stepView, 0, len(m.Steps))
	for i := range m.Steps {
		s := &m.Steps[i]
		v := stepView{
			Order:       i + 1,
			Name:        StepName(s.Name),
			Description: stepDescriptions[s.Name],
			Status:      StepStatus(m, s),
			Progress:    percent(s.Progress),
			StartTime:   omsTime(s.StartedAt),
			FinishTime:  omsTime(s.FinishedAt),
			ExtraInfo:   extraInfo{Message: s.Message},
			StepInfo: stepInfo{
				ProcessedRecords: s.Counters.Done,
				Capacity:         s.Counters.Total,
				TransferredBytes: s.Counters.Bytes,
				TotalBytes:       s.Counters.BytesTotal,
				AppliedChanges:   s.Counters.Ops,
				FailedRecords:    s.Counters.Errors,
				Inconsistencies:  s.Counters.Different,
				MissingRecords:   s.Counters.Missing,
				RedundantRecords: s.Counters.Extra,
				DstRps:           s.Counters.RatePerSec,
				LagBytes:         s.Counters.LagBytes,
				Unit:             s.Counters.Unit,
			},
		}
		if s.CheckpointTime != nil {
			v.StepInfo.IncrTimestampCheckpoint = s.CheckpointTime.Unix()
		}
		if s.State == ferry.StepFailed {
			v.ExtraInfo.ErrorMsg = s.Message
			if v.ExtraInfo.ErrorMsg == "" {
				v.ExtraInfo.ErrorMsg = m.Error
			}
		}
		out = append(out, v)
	}
	return out
}

// endpointView is a data source without its password.
type endpointView struct {
	Type       string `json:"type"`
	Host       string `json:"host"`
	Port       int    `json:"port"`
	UserName   string `json:"userName"`
	Database   string `json:"database"`
	TLS        bool   `json:"tls"`
	EndpointID string `json:"endpointId"`
}

func endpointOf(e ferry.Endpoint, typ string) endpointView {
	if typ == "" {
		typ = "MYSQL"
	}
	v := endpointView{Type: typ, UserName: e.Username, Database: e.Database, TLS: e.TLS, EndpointID: e.ID}
	if len(e.Addrs) > 0 {
		host, port, err := net.SplitHostPort(e.Addrs[0])
		if err != nil {
			host = e.Addrs[0]
		}
		v.Host = host
		v.Port, _ = strconv.Atoi(port)
	}
	return v
}

// projectView is a migration project (list item and, with steps, detail).
type projectView struct {
	ID                    string          `json:"id"`
	Name                  string          `json:"name"`
	Description           string          `json:"description"`
	Type                  string          `json:"type"`
	Status                string          `json:"status"`
	Importance            string          `json:"importance"`
	CurrentStep           string          `json:"currentStep"`
	EnableStructMigration bool            `json:"enableStructMigration"`
	EnableFullMigration   bool            `json:"enableFullMigration"`
	EnableIncrSync        bool            `json:"enableIncrSync"`
	EnableReverseIncrSync bool            `json:"enableReverseIncrSync"`
	EnableFullVerify      bool            `json:"enableFullVerify"`
	Source                endpointView    `json:"source"`
	Sink                  endpointView    `json:"sink"`
	TransferMapping       json.RawMessage `json:"transferMapping"`
	ErrorMessage          string          `json:"errorMessage"`
	GmtCreate             *string         `json:"gmtCreate"`
	GmtModified           *string         `json:"gmtModified"`
	GmtStart              *string         `json:"gmtStart"`
	GmtFinish             *string         `json:"gmtFinish"`
	Steps                 []stepView      `json:"steps,omitempty"`
}

func projectOf(m *ferry.Migration, withSteps bool) projectView {
	v := projectView{
		ID:                    m.ID,
		Name:                  m.Name,
		Description:           m.Description,
		Type:                  "MIGRATION",
		Status:                Status(m.State),
		Importance:            importance(m),
		CurrentStep:           CurrentStep(m),
		EnableStructMigration: m.Modes.Schema,
		EnableFullMigration:   m.Modes.Full,
		EnableIncrSync:        m.Modes.Incremental,
		EnableReverseIncrSync: m.Modes.ReverseIncremental,
		EnableFullVerify:      m.Modes.Verify,
		Source:                endpointOf(m.Source, m.Labels[labelSourceType]),
		Sink:                  endpointOf(m.Target, m.Labels[labelSinkType]),
		TransferMapping:       json.RawMessage("null"),
		ErrorMessage:          m.Error,
		GmtCreate:             omsTime(&m.CreatedAt),
		GmtModified:           omsTime(&m.UpdatedAt),
		GmtStart:              omsTime(m.StartedAt),
		GmtFinish:             omsTime(m.FinishedAt),
	}
	if raw := m.Labels[labelTransferMapping]; raw != "" && json.Valid([]byte(raw)) {
		v.TransferMapping = json.RawMessage(raw)
	}
	if withSteps {
		v.Steps = stepsOf(m)
	}
	return v
}
