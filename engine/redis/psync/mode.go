// Package psync is the Redis engine's default mode: ferry connects to the
// source as a replica (PSYNC), parses the RDB while it streams in and
// writes it to the target, then applies the command stream that follows,
// byte-offset exact, checkpointing the replication id and the applied
// offset so that a restarted job resumes by partial resync and falls back
// to a full sync only when the source's backlog no longer holds it.
// Cutover pauses the source's writes and drains to its final offset.
package psync

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
)

// Mode runs the steps of psync-mode jobs; its Links hold the sessions handed from the full step to the incremental step.
type Mode struct{ kit.Deps }

// Check validates a psync-mode job without touching the network.
func (e *Mode) Check(m *ferry.Migration, _ *config.Options) error {
	if err := m.ValidateSource(); err != nil {
		return err
	}
	if err := kit.CheckCommon(m); err != nil {
		return err
	}
	if m.Modes.Incremental && !m.Modes.Full {
		return ferry.FieldError("modes.incremental", "PSYNC incremental sync starts with a full sync: enable full too")
	}
	if m.Source.Cluster {
		return ferry.FieldError("source.cluster", "a Redis Cluster source is migrated one master at a time: create one job per master (cluster sources as one job are not built yet)")
	}
	if len(m.Source.Addrs) != 1 {
		return ferry.FieldError("source.addrs", "give the one master to replicate from")
	}
	if _, err := kit.NewFilter(m); err != nil {
		return err
	}
	return nil
}

// RunStep runs one step of a psync-mode job.
func (e *Mode) RunStep(ctx context.Context, m *ferry.Migration, _ *config.Options, step ferry.StepName, rt ferry.StepRuntime) error {
	switch step {
	case ferry.StepPrecheck:
		return kit.Precheck(ctx, m, rt)
	case ferry.StepFull:
		return e.full(ctx, m, rt)
	case ferry.StepIncremental:
		return e.incremental(ctx, m, rt)
	case ferry.StepCutover:
		e.Links.Drop(m.ID)
		rt.Message("the target holds every change applied up to the source's final offset; " + kit.PauseNote(m))
		return nil
	case ferry.StepVerify:
		return kit.Verify(ctx, m, rt)
	}
	return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("the redis engine has no step %s", step)}
}

// takeSession takes the session parked for a job (nil when none is).
func (e *Mode) takeSession(id string) *session {
	s, _ := e.Links.Take(id).(*session)
	return s
}

// checkpoint is what a psync-mode job persists.
type checkpoint struct {
	ReplID string `json:"replId"`
	// Offset is the source's replication offset of the last applied byte.
	Offset int64 `json:"offset"`
	// Resyncs count how the link was (re)established.
	PartialResyncs int   `json:"partialResyncs,omitempty"`
	FullResyncs    int   `json:"fullResyncs,omitempty"`
	Ops            int64 `json:"ops,omitempty"`
	// Started marks a full sync under way (the target holds a partial copy).
	Started bool `json:"started,omitempty"`
}

func readCheckpoint(raw json.RawMessage) (*checkpoint, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c checkpoint
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("bad redis checkpoint: %w", err)
	}
	if c.ReplID == "" {
		return nil, nil
	}
	return &c, nil
}
