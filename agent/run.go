package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrymigrate/ferry"
)

// runJob is the agent's live view of one claimed pipeline run.
type runJob struct {
	a     *Agent
	log   *slog.Logger
	id    string
	mu    sync.Mutex
	phase string
	stats *ferry.RunStats
	snap  *[2]string
	// kick asks the heartbeat loop to flush now (a phase or snapshot
	// change, so that watchers see SNAPSHOT, EXPORT and INGESTION as they
	// happen, not a heartbeat later).
	kick chan struct{}
}

// runProgressEvery is how often a running export's stats are flushed (at
// most; the lease is renewed with them).
const runProgressEvery = 250 * time.Millisecond

func (a *Agent) runPipelineRun(ctx context.Context, r *ferry.PipelineRun) {
	rj := &runJob{a: a, id: r.ID, log: a.log.With("pipelineRun", r.ID, "pipeline", r.PipelineName), kick: make(chan struct{}, 1)}
	rj.log.Info("claimed pipeline run", "state", r.State, "phase", r.Phase)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	err := rj.start(ctx)
	var exp ferry.Exporter
	var p *ferry.Pipeline
	var src *ferry.Endpoint
	if err == nil {
		p, err = a.cfg.Store.GetPipeline(ctx, r.PipelineID)
	}
	if err == nil {
		src, err = a.cfg.Store.GetEndpointByName(ctx, r.ProjectID, p.Source.ClusterName)
	}
	if err == nil {
		exp, err = a.cfg.Registry.Exporter(src.Kind)
	}
	if err != nil {
		rj.finish(err)
		return
	}
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(min(a.cfg.Heartbeat, runProgressEvery))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-rj.kick:
			case <-t.C:
			}
			if err := rj.flush(ctx, nil); err != nil {
				cancel(err)
				return
			}
		}
	}()
	fresh, gerr := a.cfg.Store.GetRun(ctx, r.ID)
	if gerr == nil {
		r = fresh
	}
	err = exp.Export(ctx, p, src, r, rj)
	if c := context.Cause(ctx); c != nil && ctx.Err() != nil && err != nil {
		err = c
	}
	cancel(nil)
	<-hbDone
	if a.dead.Load() {
		return
	}
	rj.finish(err)
}

func (rj *runJob) update(ctx context.Context, fn func(r *ferry.PipelineRun, now time.Time) error) error {
	if rj.a.dead.Load() {
		return errKilled
	}
	_, err := rj.a.cfg.Store.UpdateRun(ctx, rj.id, func(r *ferry.PipelineRun) error {
		if r.Lease == nil || r.Lease.AgentID != rj.a.cfg.ID {
			return errLeaseLost
		}
		return fn(r, rj.a.now())
	})
	return err
}

func (rj *runJob) start(ctx context.Context) error {
	return rj.update(ctx, func(r *ferry.PipelineRun, now time.Time) error {
		r.State = ferry.RunInProgress
		r.Error = ""
		return nil
	})
}

func (rj *runJob) flush(ctx context.Context, checkpoint []byte) error {
	rj.mu.Lock()
	phase, stats, snap := rj.phase, rj.stats, rj.snap
	rj.stats, rj.snap = nil, nil
	rj.mu.Unlock()
	return rj.update(ctx, func(r *ferry.PipelineRun, now time.Time) error {
		if phase != "" {
			r.Phase = phase
		}
		if stats != nil {
			r.Stats = *stats
		}
		if snap != nil {
			r.SnapshotID, r.DatasetName = snap[0], snap[1]
		}
		if checkpoint != nil {
			r.Checkpoint = checkpoint
		}
		if r.Lease != nil {
			r.Lease.ExpiresAt = now.Add(rj.a.cfg.LeaseTTL)
		}
		return nil
	})
}

func (rj *runJob) finish(err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if errors.Is(err, errLeaseLost) {
		rj.log.Warn("lease lost; another agent owns the run now")
		return
	}
	if err != nil && rj.a.stopping.Load() && errors.Is(err, errShutdown) {
		// A graceful shutdown is not the run's failure: give the lease
		// back; the next agent discards what this one staged and exports
		// again.
		if uerr := rj.update(ctx, func(r *ferry.PipelineRun, now time.Time) error {
			r.Lease = nil
			return nil
		}); uerr != nil {
			rj.log.Warn("hand the run back", "err", uerr)
			return
		}
		rj.log.Info("agent shutting down: pipeline run handed back")
		return
	}
	if ferr := rj.flush(ctx, nil); ferr != nil && !errors.Is(ferr, errLeaseLost) {
		rj.log.Warn("final flush", "err", ferr)
	}
	uerr := rj.update(ctx, func(r *ferry.PipelineRun, now time.Time) error {
		r.Lease = nil
		if err != nil {
			r.State = ferry.RunFailed
			r.Error = trimError(err)
			return nil
		}
		r.State = ferry.RunDone
		return nil
	})
	if uerr != nil {
		rj.log.Error("record run result", "err", uerr)
		return
	}
	if err != nil {
		rj.log.Error("pipeline run failed", "err", err)
	} else {
		rj.log.Info("pipeline run done")
	}
}

func trimError(err error) string {
	if fe := ferry.AsError(err); fe != nil {
		return ferry.RedactText(fe.Message)
	}
	s := ferry.RedactText(err.Error()) // it may quote a connection string
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}

// ferry.RunRuntime

func (rj *runJob) Phase(phase string) {
	rj.mu.Lock()
	changed := rj.phase != phase
	rj.phase = phase
	rj.mu.Unlock()
	if changed {
		rj.poke()
	}
}

func (rj *runJob) poke() {
	select {
	case rj.kick <- struct{}{}:
	default:
	}
}

func (rj *runJob) Stats(s ferry.RunStats) {
	rj.mu.Lock()
	rj.stats = &s
	rj.mu.Unlock()
}

func (rj *runJob) SetSnapshot(snapshotID, datasetName string) {
	rj.mu.Lock()
	rj.snap = &[2]string{snapshotID, datasetName}
	rj.mu.Unlock()
	rj.poke()
}

func (rj *runJob) Save(ctx context.Context, checkpoint []byte) error {
	if checkpoint == nil {
		checkpoint = []byte{}
	}
	return rj.flush(ctx, checkpoint)
}

func (rj *runJob) Logger() *slog.Logger { return rj.log }
