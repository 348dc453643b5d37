package ferry

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Engine moves one kind of data store. It runs a job's steps one at a time;
// the agent persists what it reports, so a step killed at any point resumes
// from its last saved checkpoint on whichever agent claims the job next.
//
// Precheck, cutover and verification are steps like the others
// (StepPrecheck, StepCutover, StepVerify). RunStep returns nil when the step
// is done. The incremental steps run until rt.Cutover() is closed (forward
// sync: drain to the source's final position, then return nil) or ctx ends.
type Engine interface {
	Kind() EngineKind
	// Check validates a job's modes and options for this engine without
	// touching the network (create time).
	Check(m *Migration) error
	RunStep(ctx context.Context, m *Migration, step StepName, rt StepRuntime) error
}

// StepRuntime is what a running step gets from the agent.
type StepRuntime interface {
	// Checkpoint is the step's last saved resume point; nil starts fresh.
	Checkpoint() json.RawMessage
	// Progress records counters and percent; the agent flushes them on its
	// next heartbeat.
	Progress(c Counters, percent float64)
	// Lag records the replication lag and the source time of the last
	// applied change (incremental steps).
	Lag(lag time.Duration, appliedAt time.Time)
	// Message sets the step's human-readable status line.
	Message(msg string)
	// Save durably persists a checkpoint with the current progress. It fails
	// if the agent lost its lease: the step must stop then.
	Save(ctx context.Context, checkpoint json.RawMessage) error
	// Cutover is closed when the user asked for cutover.
	Cutover() <-chan struct{}
	Logger() *slog.Logger
	// AgentID names the agent running the step.
	AgentID() string
}

// Exporter snapshots a source (collection or table) into a dataset for
// pipeline runs.
type Exporter interface {
	Kind() EngineKind
	Check(p *Pipeline, source *Endpoint) error
	// Export runs a run's SNAPSHOT, EXPORT and INGESTION phases, reporting
	// through rt; it publishes the dataset atomically at the end.
	Export(ctx context.Context, p *Pipeline, source *Endpoint, run *PipelineRun, rt RunRuntime) error
	// DeleteDataset removes a run's published dataset.
	DeleteDataset(ctx context.Context, p *Pipeline, run *PipelineRun) error
}

// RunRuntime is what a running export gets from the agent.
type RunRuntime interface {
	Phase(phase string)
	Stats(s RunStats)
	SetSnapshot(snapshotID, datasetName string)
	Save(ctx context.Context, checkpoint []byte) error
	Logger() *slog.Logger
}

// Registry holds the engines and exporters this process has built in.
type Registry struct {
	mu        sync.RWMutex
	engines   map[EngineKind]Engine
	exporters map[EngineKind]Exporter
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{engines: map[EngineKind]Engine{}, exporters: map[EngineKind]Exporter{}}
}

// Register adds an engine, replacing any of the same kind.
func (r *Registry) Register(e Engine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.engines[e.Kind()] = e
}

// RegisterExporter adds a pipeline exporter.
func (r *Registry) RegisterExporter(e Exporter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exporters[e.Kind()] = e
}

// Engine returns the engine for kind, or an EINVALID error saying it is not
// built yet.
func (r *Registry) Engine(kind EngineKind) (Engine, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e := r.engines[kind]; e != nil {
		return e, nil
	}
	if !kind.Valid() {
		return nil, FieldError("engine", "unknown engine %q", kind)
	}
	return nil, &Error{Code: EINVALID, Field: "engine", Reason: "ENGINE_NOT_AVAILABLE",
		Message: fmt.Sprintf("the %s migration engine is not built into this ferry yet (available: %v)", kind, r.kindsLocked()),
		Advice:  "use an engine that is available, or a newer ferry"}
}

// Exporter returns the exporter for kind, or an EINVALID error.
func (r *Registry) Exporter(kind EngineKind) (Exporter, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e := r.exporters[kind]; e != nil {
		return e, nil
	}
	return nil, &Error{Code: EINVALID, Field: "source", Reason: "EXPORTER_NOT_AVAILABLE",
		Message: fmt.Sprintf("pipelines from a %s source are not built into this ferry yet", kind)}
}

// Kinds lists the engine kinds registered.
func (r *Registry) Kinds() []EngineKind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.kindsLocked()
}

func (r *Registry) kindsLocked() []EngineKind {
	var ks []EngineKind
	for k := range r.engines {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}
