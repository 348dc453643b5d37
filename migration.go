package ferry

import (
	"encoding/json"
	"log/slog"
	"time"
)

// State is a job's state in ferry's one state machine. Each API dialect maps
// it (with the current step) to its vendor's enum.
type State string

const (
	StateCreated     State = "created"      // stored, not started
	StateRunning     State = "running"      // an agent runs (or will claim) its steps
	StatePaused      State = "paused"       // stopped by the user; resumable from its checkpoint
	StateCuttingOver State = "cutting_over" // the user asked for cutover; the agent finishes sync
	StateCompleted   State = "completed"
	StateFailed      State = "failed"
	StateExpired     State = "expired"   // ready for cutover but nobody cut over before the deadline
	StateReleasing   State = "releasing" // resources are being freed
	StateReleased    State = "released"
	StateDeleted     State = "deleted"
)

// Active reports whether an agent should be running the job.
func (s State) Active() bool { return s == StateRunning || s == StateCuttingOver }

// Terminal reports whether the job's data path has ended for good.
func (s State) Terminal() bool {
	switch s {
	case StateCompleted, StateFailed, StateExpired, StateReleased, StateDeleted:
		return true
	}
	return false
}

// transitions is the state machine: from -> allowed targets.
var transitions = map[State][]State{
	StateCreated:     {StateRunning, StateDeleted, StateReleasing, StateFailed},
	StateRunning:     {StatePaused, StateCuttingOver, StateCompleted, StateFailed, StateExpired, StateReleasing},
	StatePaused:      {StateRunning, StateReleasing, StateDeleted, StateFailed},
	StateCuttingOver: {StateCompleted, StateFailed, StatePaused, StateRunning, StateReleasing}, // releasing: only once cut over (reverse sync runs until release)
	StateCompleted:   {StateReleasing, StateDeleted},
	StateFailed:      {StateRunning, StateReleasing, StateDeleted},
	StateExpired:     {StateReleasing, StateDeleted},
	StateReleasing:   {StateReleased, StateFailed},
	StateReleased:    {StateDeleted},
	StateDeleted:     {},
}

// CanTransition reports whether from -> to is legal.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// StepName names a step of a migration job.
type StepName string

const (
	StepPrecheck           StepName = "precheck"
	StepSchema             StepName = "schema"
	StepFull               StepName = "full"
	StepIncremental        StepName = "incremental"
	StepCutover            StepName = "cutover"
	StepVerify             StepName = "verify"
	StepReverseIncremental StepName = "reverse_incremental"
)

// StepOrder is the order steps run in. The incremental step runs until the
// user cuts over; the reverse incremental step runs until the user releases
// the job.
var StepOrder = []StepName{StepPrecheck, StepSchema, StepFull, StepIncremental, StepCutover, StepVerify, StepReverseIncremental}

// StepState is a step's state.
type StepState string

const (
	StepPending StepState = "pending"
	StepRunning StepState = "running"
	StepDone    StepState = "done"
	StepFailed  StepState = "failed"
)

// Counters are a step's progress numbers. Units depend on the engine (keys,
// rows, documents); Done/Total drive the percentage.
type Counters struct {
	Done       int64   `json:"done"`
	Total      int64   `json:"total"`
	Bytes      int64   `json:"bytes,omitempty"`
	BytesTotal int64   `json:"bytesTotal,omitempty"`
	Ops        int64   `json:"ops,omitempty"`       // changes applied (incremental)
	Errors     int64   `json:"errors,omitempty"`    // rows/keys that failed
	Missing    int64   `json:"missing,omitempty"`   // verification
	Extra      int64   `json:"extra,omitempty"`     // verification
	Different  int64   `json:"different,omitempty"` // verification
	LagBytes   int64   `json:"lagBytes,omitempty"`
	RatePerSec float64 `json:"ratePerSec,omitempty"`
	Unit       string  `json:"unit,omitempty"` // "keys", "rows", "documents"
}

// Step is one step of a job with its progress and checkpoint.
type Step struct {
	Name     StepName  `json:"name"`
	State    StepState `json:"state"`
	Progress float64   `json:"progress"` // percent 0..100
	Counters Counters  `json:"counters"`
	// Checkpoint is the engine's opaque resume point for this step.
	Checkpoint json.RawMessage `json:"checkpoint,omitempty"`
	// CheckpointTime is the source time the checkpoint corresponds to (for
	// incremental steps: the timestamp of the last applied change).
	CheckpointTime *time.Time `json:"checkpointTime,omitempty"`
	Message        string     `json:"message,omitempty"`
	StartedAt      *time.Time `json:"startedAt,omitempty"`
	FinishedAt     *time.Time `json:"finishedAt,omitempty"`
}

// Modes says which steps a job runs.
type Modes struct {
	Schema             bool `json:"schema"`
	Full               bool `json:"full"`
	Incremental        bool `json:"incremental"`
	ReverseIncremental bool `json:"reverseIncremental"`
	Verify             bool `json:"verify"`
}

// ResumeMode: what happens when a job's data path breaks.
type ResumeMode string

const (
	ResumeAuto   ResumeMode = "auto"   // retry by itself from the checkpoint
	ResumeManual ResumeMode = "manual" // fail; the user restarts it
)

// Filters select what a job moves. Names are engine-specific (db numbers or
// names, tables, collections, key patterns).
type Filters struct {
	IncludeDBs    []string          `json:"includeDbs,omitempty"`
	ExcludeDBs    []string          `json:"excludeDbs,omitempty"`
	IncludeTables []string          `json:"includeTables,omitempty"` // "db.table" or "db.collection", globs allowed
	ExcludeTables []string          `json:"excludeTables,omitempty"`
	IncludeKeys   []string          `json:"includeKeys,omitempty"` // Redis key prefixes or regexes
	ExcludeKeys   []string          `json:"excludeKeys,omitempty"`
	Renames       map[string]string `json:"renames,omitempty"` // source name -> target name
}

// ConflictPolicy: what to do with data already on the target.
type ConflictPolicy string

const (
	ConflictFail    ConflictPolicy = "fail"
	ConflictReplace ConflictPolicy = "replace"
	ConflictSkip    ConflictPolicy = "skip"
)

// Options are a job's tunables.
type Options struct {
	BandwidthLimitMB int            `json:"bandwidthLimitMb,omitempty"`
	ResumeMode       ResumeMode     `json:"resumeMode,omitempty"`
	Filters          Filters        `json:"filters,omitzero"`
	Conflict         ConflictPolicy `json:"conflict,omitempty"`
	// DropTarget empties the target's included namespaces before copying.
	DropTarget bool `json:"dropTarget,omitempty"`
	// Parallelism of the full copy and the apply; 0 lets the engine choose.
	Parallelism int `json:"parallelism,omitempty"`
	// CutoverLagSeconds: readyForCutover once lag stays at or below it.
	CutoverLagSeconds int `json:"cutoverLagSeconds,omitempty"`
	// ReleaseSourceAfterCutover lifts the write block cutover put on the
	// source (Redis pause, MySQL read_only) when the job completes, after
	// verification, instead of leaving it until release-source.
	ReleaseSourceAfterCutover bool `json:"releaseSourceAfterCutover,omitempty"`
	// Extra carries engine-specific settings, whose keys each engine
	// defines (the Redis engine's: package engine/redis/config).
	Extra map[string]string `json:"extra,omitempty"`
}

// CutoverWindow is how long a job stays ready for cutover before it expires.
const CutoverWindow = 120 * time.Hour

// Lease is an agent's claim on a job.
type Lease struct {
	AgentID   string    `json:"agentId"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Migration is a migration job.
type Migration struct {
	ID          string     `json:"id"`
	ProjectID   string     `json:"projectId"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Engine      EngineKind `json:"engine"`
	Source      Endpoint   `json:"source"`
	Target      Endpoint   `json:"target"`
	Modes       Modes      `json:"modes"`
	Options     Options    `json:"options"`
	// Importance is OMS's alert level: HIGH, MEDIUM, LOW, IGNORE.
	Importance string `json:"importance,omitempty"`
	// Dialect is the API that created the job ("native", "atlas", "oms",
	// "dcs"); Labels keep that dialect's own request fields it must echo.
	Dialect string            `json:"dialect,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`

	State       State    `json:"state"`
	Steps       []Step   `json:"steps"`
	CurrentStep StepName `json:"currentStep,omitempty"`
	// LagSeconds is set only while a sync step runs.
	LagSeconds      *int64     `json:"lagSeconds,omitempty"`
	ReadyForCutover bool       `json:"readyForCutover"`
	CutoverDeadline *time.Time `json:"cutoverDeadline,omitempty"`
	Error           string     `json:"error,omitempty"`
	// Cutover is the record of the job's cutover (set when it is asked for).
	Cutover *CutoverInfo `json:"cutover,omitempty"`
	// Hosts are the agents that have run the job (newest last).
	Hosts []string `json:"hosts,omitempty"`
	Lease *Lease   `json:"lease,omitempty"`
	// Attempts counts automatic restarts after failures.
	Attempts int `json:"attempts,omitempty"`

	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	ReleasedAt *time.Time `json:"releasedAt,omitempty"`
	// Version increases with every stored change.
	Version int64 `json:"version"`
}

// LogValue keeps secrets out of logs.
func (m *Migration) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", m.ID), slog.String("engine", string(m.Engine)), slog.String("state", string(m.State)), slog.String("step", string(m.CurrentStep)))
}

// Redacted returns a deep-enough copy without secrets, for APIs.
func (m *Migration) Redacted() *Migration {
	c := *m
	c.Source = m.Source.Redacted()
	c.Target = m.Target.Redacted()
	c.Steps = append([]Step(nil), m.Steps...)
	if m.Cutover != nil {
		ci := *m.Cutover
		ci.Notes = append([]string(nil), m.Cutover.Notes...)
		c.Cutover = &ci
	}
	return &c
}

// Step returns the job's step called name, or nil when the job does not run it.
func (m *Migration) Step(name StepName) *Step {
	for i := range m.Steps {
		if m.Steps[i].Name == name {
			return &m.Steps[i]
		}
	}
	return nil
}

// InitSteps lays out the steps the modes ask for, all pending.
func (m *Migration) InitSteps() {
	m.Steps = m.Steps[:0]
	for _, n := range StepOrder {
		on := false
		switch n {
		case StepPrecheck:
			on = true
		case StepSchema:
			on = m.Modes.Schema
		case StepFull:
			on = m.Modes.Full
		case StepIncremental:
			on = m.Modes.Incremental
		case StepCutover:
			on = m.Modes.Incremental
		case StepVerify:
			on = m.Modes.Verify
		case StepReverseIncremental:
			on = m.Modes.ReverseIncremental
		}
		if on {
			m.Steps = append(m.Steps, Step{Name: n, State: StepPending})
		}
	}
}

// Transition moves the job to state to, or returns an ECONFLICT error naming
// the illegal transition.
func (m *Migration) Transition(to State, now time.Time) error {
	if m.State == to {
		return nil
	}
	if !CanTransition(m.State, to) {
		return &Error{Code: ECONFLICT, Reason: "ILLEGAL_STATE_TRANSITION",
			Message: "migration " + m.ID + " cannot go from " + string(m.State) + " to " + string(to)}
	}
	m.State = to
	switch to {
	case StateRunning:
		if m.StartedAt == nil {
			m.StartedAt = &now
		}
		m.Error = ""
	case StateCompleted, StateFailed, StateExpired:
		m.FinishedAt = &now
		m.Lease = nil
		m.LagSeconds = nil
		m.ReadyForCutover = false
	case StatePaused:
		// The lease stays with the agent running the job until that agent
		// notices the pause and gives it back: resuming before then must not
		// let a second agent start the job beside the first.
	case StateReleased:
		m.ReleasedAt = &now
		m.Lease = nil
	}
	if !to.Active() || to == StateRunning {
		// Paused, stopped or (re)started: the lag is measured anew, and
		// readyForCutover follows it.
		m.LagSeconds = nil
		m.ReadyForCutover = false
	}
	m.UpdatedAt = now
	return nil
}

// CutOver reports whether the job's cutover step is done (it may still run
// verification or reverse incremental sync).
func (m *Migration) CutOver() bool {
	s := m.Step(StepCutover)
	return s != nil && s.State == StepDone
}

// Progress returns the overall percent done of the copy steps (schema, full),
// the figure a progress bar shows before sync.
func (m *Migration) Progress() float64 {
	var sum float64
	n := 0
	for _, s := range m.Steps {
		if s.Name == StepSchema || s.Name == StepFull {
			sum += s.Progress
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// UpdateReadiness recomputes ReadyForCutover and the cutover deadline from
// the lag: ready once the incremental step runs with lag at or below the
// threshold; the first time it becomes ready the 120-hour window starts.
func (m *Migration) UpdateReadiness(now time.Time) {
	m.UpdateReadinessWithin(now, CutoverWindow)
}

// UpdateReadinessWithin is UpdateReadiness with a cutover window of its
// own (an agent configured with a shorter window, for tests); window <= 0
// means CutoverWindow.
func (m *Migration) UpdateReadinessWithin(now time.Time, window time.Duration) {
	if window <= 0 {
		window = CutoverWindow
	}
	th := int64(m.Options.CutoverLagSeconds)
	if th <= 0 {
		th = 5
	}
	ready := m.State == StateRunning && m.CurrentStep == StepIncremental && m.LagSeconds != nil && *m.LagSeconds <= th
	if ready && m.CutoverDeadline == nil {
		d := now.Add(window)
		m.CutoverDeadline = &d
	}
	m.ReadyForCutover = ready
}

// ExtendCutover pushes the cutover deadline out by d from now (or from the
// current deadline, whichever is later).
func (m *Migration) ExtendCutover(d time.Duration, now time.Time) error {
	if m.CutoverDeadline == nil {
		return &Error{Code: ECONFLICT, Message: "migration is not ready for cutover; there is no deadline to extend"}
	}
	base := *m.CutoverDeadline
	if now.After(base) {
		base = now
	}
	t := base.Add(d)
	m.CutoverDeadline = &t
	return nil
}

// ValidateSource checks a job's source endpoint and that it is of the job's
// engine. It is the engine's Check that calls it, since not every job reads
// a source server (a Redis backup import reads files).
func (m *Migration) ValidateSource() error {
	if err := m.Source.Validate("source"); err != nil {
		return err
	}
	if m.Source.Kind != m.Engine {
		return FieldError("source.kind", "is %s but the job's engine is %s", m.Source.Kind, m.Engine)
	}
	return nil
}

// Validate checks a new job's static shape, but for its source, which the
// engine's Check validates (ValidateSource).
func (m *Migration) Validate() error {
	if m.ProjectID == "" || !ValidID(m.ProjectID) {
		return FieldError("projectId", "must be a 24-hex project id")
	}
	if m.Name != "" {
		if err := ValidateName("name", m.Name); err != nil {
			return err
		}
	}
	if !m.Engine.Valid() {
		return FieldError("engine", "unknown engine %q (one of redis, mysql, mongodb)", m.Engine)
	}
	if err := m.Target.Validate("target"); err != nil {
		return err
	}
	if m.Target.Kind != m.Engine {
		return FieldError("target.kind", "is %s but the job's engine is %s", m.Target.Kind, m.Engine)
	}
	if !m.Modes.Schema && !m.Modes.Full && !m.Modes.Incremental && !m.Modes.Verify {
		return FieldError("modes", "enable at least one of schema, full, incremental, verify")
	}
	if m.Modes.ReverseIncremental && !m.Modes.Incremental {
		return FieldError("modes.reverseIncremental", "needs incremental sync")
	}
	switch m.Options.ResumeMode {
	case "", ResumeAuto, ResumeManual:
	default:
		return FieldError("options.resumeMode", "must be auto or manual")
	}
	switch m.Options.Conflict {
	case "", ConflictFail, ConflictReplace, ConflictSkip:
	default:
		return FieldError("options.conflict", "must be fail, replace or skip")
	}
	if m.Options.BandwidthLimitMB < 0 {
		return FieldError("options.bandwidthLimitMb", "must not be negative")
	}
	switch m.Importance {
	case "", "HIGH", "MEDIUM", "LOW", "IGNORE":
	default:
		return FieldError("importance", "must be HIGH, MEDIUM, LOW or IGNORE")
	}
	return nil
}

// MigrationFilter selects jobs in a list.
type MigrationFilter struct {
	ProjectID string
	Engine    EngineKind
	States    []State
	Dialect   string
	Offset    int
	Limit     int // 0: no limit
}
