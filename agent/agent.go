// Package agent runs ferry's jobs: a migration host that claims migrations
// and pipeline runs from the shared store with leases, runs their steps on
// the registered engines, heartbeats progress and checkpoints, and lets
// another agent take a job over when its lease expires.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/redislog"
)

// Config configures an agent.
type Config struct {
	// ID names the agent; it is what the Atlas dialect reports as a
	// migration host. Default: the hostname plus a random suffix.
	ID       string
	Hostname string
	Store    ferry.Store
	Registry *ferry.Registry
	Service  *ferry.Service
	Logger   *slog.Logger
	// LeaseTTL is how long a claim lasts without a heartbeat (default 15s).
	LeaseTTL time.Duration
	// Heartbeat is how often progress is flushed and the lease renewed
	// (default LeaseTTL/3).
	Heartbeat time.Duration
	// PollInterval is how often the agent looks for work (default 1s).
	PollInterval time.Duration
	// MaxJobs bounds concurrently running migrations (default 4).
	MaxJobs int
	// RetryBackoff is the pause before an automatic retry (default 5s).
	RetryBackoff time.Duration
	// MaxAttempts bounds automatic retries of a failing step (default 5).
	MaxAttempts int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// CutoverWindow is how long a job this agent runs stays ready for
	// cutover before it expires (default ferry.CutoverWindow, 120 hours;
	// tests shorten it).
	CutoverWindow time.Duration
}

// Agent is one migration host.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	dead   atomic.Bool
	mu     sync.Mutex
	jobs   map[string]context.CancelCauseFunc
	wg     sync.WaitGroup
	cancel context.CancelFunc
	// stopping is set when Run's context ends: the agent is shutting down
	// gracefully and hands its jobs back instead of failing them.
	stopping atomic.Bool
	jobsCtx  context.Context // parent of the jobs' contexts (Run)
}

var (
	errLeaseLost = errors.New("lease lost")
	errStopped   = errors.New("job stopped by request")
	errKilled    = errors.New("agent killed")
	// errShutdown cancels the jobs of an agent that stops gracefully.
	errShutdown = errors.New("agent shutting down")
)

// New returns an agent; Run starts it.
func New(cfg Config) *Agent {
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.ID == "" {
		cfg.ID = cfg.Hostname + "-" + ferry.RandomHex(3)
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = cfg.LeaseTTL / 3
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = 4
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 5 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CutoverWindow <= 0 {
		cfg.CutoverWindow = ferry.CutoverWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// The engines' go-redis clients log through the agent's logger.
	redislog.Install(cfg.Logger)
	return &Agent{cfg: cfg, log: cfg.Logger.With("agent", cfg.ID), jobs: map[string]context.CancelCauseFunc{}}
}

// ID returns the agent's id.
func (a *Agent) ID() string { return a.cfg.ID }

func (a *Agent) now() time.Time { return a.cfg.Now().UTC() }

// Running returns the ids of the jobs this agent runs now.
func (a *Agent) Running() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]string, 0, len(a.jobs))
	for id := range a.jobs {
		ids = append(ids, id)
	}
	return ids
}

// Run claims and runs work until ctx ends, then stops its jobs (their
// checkpoints stay; another agent or a restart resumes them) and returns.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	// Jobs do not end with ctx itself: on a graceful stop the agent first
	// marks itself stopping, then cancels them, so that they hand their
	// leases back instead of failing.
	jobsCtx, cancelJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelJobs(nil)
	a.mu.Lock()
	a.cancel = cancel
	a.jobsCtx = jobsCtx
	a.mu.Unlock()
	defer cancel()
	started := a.now()
	info := &ferry.AgentInfo{ID: a.cfg.ID, Hostname: a.cfg.Hostname, Version: ferry.Version, StartedAt: started}
	a.log.Info("agent started", "leaseTTL", a.cfg.LeaseTTL)
	t := time.NewTicker(a.cfg.PollInterval)
	defer t.Stop()
	var lastAnnounce time.Time
	for {
		if a.dead.Load() {
			break
		}
		now := a.now()
		if now.Sub(lastAnnounce) >= a.cfg.Heartbeat {
			info.LastSeen = now
			if err := a.cfg.Store.UpsertAgent(ctx, info); err != nil && ctx.Err() == nil {
				a.log.Warn("announce agent", "err", err)
			}
			lastAnnounce = now
			a.housekeeping(ctx)
		}
		a.claimWork(ctx)
		select {
		case <-ctx.Done():
		case <-t.C:
			continue
		}
		break
	}
	a.stopping.Store(true)
	cancelJobs(errShutdown)
	a.wg.Wait()
	a.log.Info("agent stopped")
	return nil
}

// Kill simulates a crash: every job stops at once and nothing more is
// written (no lease release, no final progress), as if the process died.
func (a *Agent) Kill() {
	a.dead.Store(true)
	a.mu.Lock()
	for _, c := range a.jobs {
		c(errKilled)
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

func (a *Agent) claimWork(ctx context.Context) {
	for ctx.Err() == nil && !a.dead.Load() {
		a.mu.Lock()
		n := len(a.jobs)
		a.mu.Unlock()
		if n >= a.cfg.MaxJobs {
			return
		}
		claimed := false
		m, err := a.cfg.Store.ClaimMigration(ctx, a.cfg.ID, a.now(), a.cfg.LeaseTTL)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("claim migration", "err", err)
			}
			return
		}
		if m != nil {
			claimed = true
			a.mu.Lock()
			_, running := a.jobs[m.ID]
			a.mu.Unlock()
			if running {
				// Paused and resumed before this agent's run of it noticed
				// the pause (the pause gives the lease up at once): that run
				// goes on (or, if it is stopping, gives the lease back and
				// the job is claimed again). A second run of one job would
				// apply its changes twice.
				a.log.Info("claimed a migration this agent still runs; keeping the running one", "migration", m.ID)
			} else {
				a.start(m.ID, func(jctx context.Context) { a.runMigration(jctx, m) })
			}
		}
		r, err := a.cfg.Store.ClaimRun(ctx, a.cfg.ID, a.now(), a.cfg.LeaseTTL)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("claim pipeline run", "err", err)
			}
			return
		}
		if r != nil {
			claimed = true
			a.start(r.ID, func(jctx context.Context) { a.runPipelineRun(jctx, r) })
		}
		if !claimed {
			return
		}
	}
}

func (a *Agent) start(id string, fn func(context.Context)) {
	jctx, cancel := context.WithCancelCause(a.jobsCtx)
	a.mu.Lock()
	a.jobs[id] = cancel
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.jobs, id)
			a.mu.Unlock()
			cancel(nil)
		}()
		defer func() {
			if p := recover(); p != nil {
				a.log.Error("job panicked", "job", id, "panic", fmt.Sprint(p))
			}
		}()
		fn(jctx)
	}()
}

// housekeeping schedules periodic pipeline runs and reaps expired datasets.
func (a *Agent) housekeeping(ctx context.Context) {
	if a.cfg.Service == nil || a.dead.Load() {
		return
	}
	projects, _, err := a.cfg.Store.ListProjects(ctx, ferry.ProjectFilter{})
	if err != nil {
		return
	}
	ids := make([]string, len(projects))
	for i, p := range projects {
		ids[i] = p.ID
	}
	if n, err := a.cfg.Service.SchedulePeriodicRuns(ctx, ids); err != nil && ctx.Err() == nil {
		a.log.Warn("schedule pipeline runs", "err", err)
	} else if n > 0 {
		a.log.Info("scheduled pipeline runs", "count", n)
	}
	if n, err := a.cfg.Service.ReapDatasets(ctx); err != nil && ctx.Err() == nil {
		a.log.Warn("reap datasets", "err", err)
	} else if n > 0 {
		a.log.Info("deleted expired datasets", "count", n)
	}
}
