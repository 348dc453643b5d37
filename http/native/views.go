package native

import (
	"time"

	"github.com/ferrymigrate/ferry"
)

// The views are the native API's JSON shapes. They are built from the model
// field by field so that no secret (endpoint passwords, secret options, key
// hashes, engine checkpoints) can reach a response by accident.

type apiKeyView struct {
	ID          string     `json:"id"`
	OrgID       string     `json:"orgId"`
	ProjectID   string     `json:"projectId,omitempty"`
	PublicKey   string     `json:"publicKey"`
	Role        ferry.Role `json:"role"`
	Description string     `json:"description,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
}

func viewAPIKey(k *ferry.APIKey) apiKeyView {
	return apiKeyView{ID: k.ID, OrgID: k.OrgID, ProjectID: k.ProjectID, PublicKey: k.PublicKey, Role: k.Role, Description: k.Description, CreatedAt: k.CreatedAt}
}

// apiKeyCreated is the only answer that carries a private key.
type apiKeyCreated struct {
	apiKeyView
	PrivateKey string `json:"privateKey"`
}

type endpointView struct {
	ID            string            `json:"id,omitempty"`
	ProjectID     string            `json:"projectId,omitempty"`
	Name          string            `json:"name,omitempty"`
	Kind          ferry.EngineKind  `json:"kind"`
	Addrs         []string          `json:"addrs"`
	Username      string            `json:"username,omitempty"`
	HasPassword   bool              `json:"hasPassword"`
	Database      string            `json:"database,omitempty"`
	TLS           bool              `json:"tls"`
	TLSSkipVerify bool              `json:"tlsSkipVerify"`
	CACertPEM     string            `json:"caCertPem,omitempty"`
	Cluster       bool              `json:"cluster"`
	Options       map[string]string `json:"options,omitempty"`
	CreatedAt     *time.Time        `json:"createdAt,omitempty"`
}

func viewEndpoint(e *ferry.Endpoint) endpointView {
	r := e.Redacted()
	v := endpointView{ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, Kind: r.Kind, Addrs: r.Addrs, Username: r.Username,
		HasPassword: e.HasPassword(), Database: r.Database, TLS: r.TLS, TLSSkipVerify: r.TLSSkipVerify, CACertPEM: r.CACertPEM,
		Cluster: r.Cluster, Options: r.Options}
	if v.Addrs == nil {
		v.Addrs = []string{}
	}
	if !r.CreatedAt.IsZero() {
		t := r.CreatedAt
		v.CreatedAt = &t
	}
	return v
}

// endpointInput is an endpoint in a request: registered (POST endpoints) or
// inline in a job, where {"name": "..."} alone refers to a registered one.
type endpointInput struct {
	Name          string            `json:"name"`
	Kind          ferry.EngineKind  `json:"kind"`
	Addrs         []string          `json:"addrs"`
	Username      string            `json:"username"`
	Password      string            `json:"password"`
	Database      string            `json:"database"`
	TLS           bool              `json:"tls"`
	TLSSkipVerify bool              `json:"tlsSkipVerify"`
	CACertPEM     string            `json:"caCertPem"`
	Cluster       bool              `json:"cluster"`
	Options       map[string]string `json:"options"`
}

// endpointPatch is the body of PATCH …/endpoints/{endpoint}: only the
// fields given change ("password": "" clears the password).
type endpointPatch struct {
	Name          *string           `json:"name"`
	Kind          *ferry.EngineKind `json:"kind"`
	Addrs         []string          `json:"addrs"`
	Username      *string           `json:"username"`
	Password      *string           `json:"password"`
	Database      *string           `json:"database"`
	TLS           *bool             `json:"tls"`
	TLSSkipVerify *bool             `json:"tlsSkipVerify"`
	CACertPEM     *string           `json:"caCertPem"`
	Cluster       *bool             `json:"cluster"`
	Options       map[string]string `json:"options"`
}

func (in endpointInput) model(projectID string) ferry.Endpoint {
	return ferry.Endpoint{ProjectID: projectID, Name: in.Name, Kind: in.Kind, Addrs: in.Addrs, Username: in.Username,
		Password: in.Password, Database: in.Database, TLS: in.TLS, TLSSkipVerify: in.TLSSkipVerify, CACertPEM: in.CACertPEM,
		Cluster: in.Cluster, Options: in.Options}
}

type stepView struct {
	Name           ferry.StepName  `json:"name"`
	State          ferry.StepState `json:"state"`
	Progress       float64         `json:"progress"`
	Counters       ferry.Counters  `json:"counters"`
	HasCheckpoint  bool            `json:"hasCheckpoint"`
	CheckpointTime *time.Time      `json:"checkpointTime,omitempty"`
	Message        string          `json:"message,omitempty"`
	StartedAt      *time.Time      `json:"startedAt,omitempty"`
	FinishedAt     *time.Time      `json:"finishedAt,omitempty"`
}

type migrationView struct {
	ID              string            `json:"id"`
	ProjectID       string            `json:"projectId"`
	Name            string            `json:"name"`
	Description     string            `json:"description,omitempty"`
	Engine          ferry.EngineKind  `json:"engine"`
	Source          endpointView      `json:"source"`
	Target          endpointView      `json:"target"`
	Modes           ferry.Modes       `json:"modes"`
	Options         ferry.Options     `json:"options"`
	Importance      string            `json:"importance,omitempty"`
	Dialect         string            `json:"dialect,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	State           ferry.State       `json:"state"`
	CurrentStep     ferry.StepName    `json:"currentStep,omitempty"`
	Progress        float64           `json:"progress"`
	Steps           []stepView        `json:"steps"`
	LagSeconds      *int64            `json:"lagSeconds,omitempty"`
	ReadyForCutover bool              `json:"readyForCutover"`
	Readiness       ferry.Readiness   `json:"readiness"`
	CutoverDeadline *time.Time        `json:"cutoverDeadline,omitempty"`
	Cutover         *cutoverView      `json:"cutover,omitempty"`
	Error           string            `json:"error,omitempty"`
	Hosts           []string          `json:"hosts"`
	Lease           *ferry.Lease      `json:"lease,omitempty"`
	Attempts        int               `json:"attempts"`
	CreatedAt       time.Time         `json:"createdAt"`
	UpdatedAt       time.Time         `json:"updatedAt"`
	StartedAt       *time.Time        `json:"startedAt,omitempty"`
	FinishedAt      *time.Time        `json:"finishedAt,omitempty"`
	ReleasedAt      *time.Time        `json:"releasedAt,omitempty"`
	Version         int64             `json:"version"`
}

// cutoverView is the job's cutover record with the source's state now.
type cutoverView struct {
	ferry.CutoverInfo
	// SourceState: writable, write_paused (Redis) or read_only (MySQL), as
	// far as ferry's own block goes.
	SourceState string `json:"sourceState"`
	// Summary says in one sentence what the cutover left on the source.
	Summary string `json:"summary,omitempty"`
}

func viewMigration(m *ferry.Migration) migrationView {
	v := migrationView{ID: m.ID, ProjectID: m.ProjectID, Name: m.Name, Description: m.Description, Engine: m.Engine,
		Source: viewEndpoint(&m.Source), Target: viewEndpoint(&m.Target), Modes: m.Modes, Options: redactOptions(m.Options),
		Importance: m.Importance, Dialect: m.Dialect, Labels: m.Labels, State: m.State, CurrentStep: m.CurrentStep,
		Progress: m.Progress(), LagSeconds: m.LagSeconds, ReadyForCutover: m.ReadyForCutover, CutoverDeadline: m.CutoverDeadline,
		Error: m.Error, Hosts: m.Hosts, Lease: m.Lease, Attempts: m.Attempts, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
		StartedAt: m.StartedAt, FinishedAt: m.FinishedAt, ReleasedAt: m.ReleasedAt, Version: m.Version}
	now := time.Now()
	v.Readiness = m.Readiness(now)
	if v.Readiness.Reasons == nil {
		v.Readiness.Reasons = []ferry.ReadinessReason{}
	}
	if m.Cutover != nil {
		v.Cutover = &cutoverView{CutoverInfo: *m.Cutover, SourceState: m.Cutover.SourceState(now), Summary: m.Cutover.Summary(now)}
	}
	v.Steps = make([]stepView, 0, len(m.Steps))
	for _, s := range m.Steps {
		v.Steps = append(v.Steps, stepView{Name: s.Name, State: s.State, Progress: s.Progress, Counters: s.Counters,
			HasCheckpoint: len(s.Checkpoint) > 0 && string(s.Checkpoint) != "null", CheckpointTime: s.CheckpointTime,
			Message: s.Message, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt})
	}
	if v.Hosts == nil {
		v.Hosts = []string{}
	}
	return v
}

// redactOptions blanks engine options whose name says they are secret
// (backup bucket credentials and the like) and hides the credentials of
// connection strings (ferry.RedactOptions, shared by every view).
func redactOptions(o ferry.Options) ferry.Options {
	o.Extra = ferry.RedactOptions(o.Extra)
	return o
}

// jobSpec is a would-be job: the body of POST .../validations, and with
// start, of POST .../migrations.
type jobSpec struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Engine      ferry.EngineKind  `json:"engine"`
	Source      endpointInput     `json:"source"`
	Target      endpointInput     `json:"target"`
	Modes       *ferry.Modes      `json:"modes"`
	Options     ferry.Options     `json:"options"`
	Importance  string            `json:"importance"`
	Labels      map[string]string `json:"labels"`
}

// migrationInput is the body of POST .../migrations.
type migrationInput struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Engine      ferry.EngineKind  `json:"engine"`
	Source      endpointInput     `json:"source"`
	Target      endpointInput     `json:"target"`
	Modes       *ferry.Modes      `json:"modes"`
	Options     ferry.Options     `json:"options"`
	Importance  string            `json:"importance"`
	Labels      map[string]string `json:"labels"`
	// Start queues the job for an agent at once; without it the job waits
	// in state created for POST .../start.
	Start bool `json:"start"`
}

func (in migrationInput) model(projectID string) *ferry.Migration {
	return jobSpec{Name: in.Name, Description: in.Description, Engine: in.Engine, Source: in.Source, Target: in.Target,
		Modes: in.Modes, Options: in.Options, Importance: in.Importance, Labels: in.Labels}.model(projectID)
}

// DefaultModes are the modes of a job whose request names none.
var DefaultModes = ferry.Modes{Full: true, Incremental: true}

func (in jobSpec) model(projectID string) *ferry.Migration {
	m := &ferry.Migration{ProjectID: projectID, Name: in.Name, Description: in.Description, Engine: in.Engine,
		Source: in.Source.model(""), Target: in.Target.model(""), Options: in.Options, Importance: in.Importance,
		Labels: in.Labels, Dialect: "native"}
	// Inline endpoints belong to no project; registered ones are resolved
	// by name by the service.
	if in.Modes != nil {
		m.Modes = *in.Modes
	} else {
		m.Modes = DefaultModes
	}
	return m
}

// runView is a pipeline run without its engine checkpoint.
func viewRun(r *ferry.PipelineRun) ferry.PipelineRun {
	c := *r
	c.Checkpoint = nil
	if c.Hosts == nil {
		c.Hosts = []string{}
	}
	return c
}

// pipelineInput is the body of POST .../pipelines.
type pipelineInput struct {
	Name                   string                 `json:"name"`
	Source                 ferry.PipelineSource   `json:"source"`
	Sink                   ferry.PipelineSink     `json:"sink"`
	Transformations        []ferry.Transformation `json:"transformations"`
	BackupFrequencyType    string                 `json:"backupFrequencyType"`
	DatasetRetentionPolicy *ferry.RetentionPolicy `json:"datasetRetentionPolicy"`
}

// pipelinePatch is the body of PATCH .../pipelines/{name}: only the fields
// present change.
type pipelinePatch struct {
	Name                   *string                 `json:"name"`
	Source                 *ferry.PipelineSource   `json:"source"`
	Sink                   *ferry.PipelineSink     `json:"sink"`
	Transformations        *[]ferry.Transformation `json:"transformations"`
	BackupFrequencyType    *string                 `json:"backupFrequencyType"`
	DatasetRetentionPolicy *ferry.RetentionPolicy  `json:"datasetRetentionPolicy"`
}

func (pt pipelinePatch) apply(p *ferry.Pipeline) {
	if pt.Name != nil {
		p.Name = *pt.Name
	}
	if pt.Source != nil {
		p.Source = *pt.Source
	}
	if pt.Sink != nil {
		p.Sink = *pt.Sink
	}
	if pt.Transformations != nil {
		p.Transformations = *pt.Transformations
	}
	if pt.BackupFrequencyType != nil {
		p.BackupFrequencyType = *pt.BackupFrequencyType
	}
	if pt.DatasetRetentionPolicy != nil {
		c := *pt.DatasetRetentionPolicy
		p.DatasetRetentionPolicy = &c
	}
}
