// Package redis is ferry's Redis engine: Redis to Redis (standalone or
// Cluster target). It parses a job's options once (package config) and
// hands each step to the job's mode: psync (replication, the default),
// scan (SCAN and keyspace notifications, for sources that forbid PSYNC) or
// backup (RDB/AOF file import). What the modes share is package kit; the
// RDB parser, the RESP codec, the target writer and the key-by-key
// verifier are packages rdb, resp, writer and verify.
package redis

import (
	"context"
	"log/slog"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/backup"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
	"github.com/ferrymigrate/ferry/engine/redis/psync"
	"github.com/ferrymigrate/ferry/engine/redis/scan"
)

// Engine implements ferry.Engine for Redis.
type Engine struct {
	Logger *slog.Logger
	// WriterConns is the number of pipelined connections to the target
	// (0: the writer's default).
	WriterConns int
	// Backups says where backup files are imported from and where
	// `ferry backups create` keeps its backups (backup_import mode).
	Backups backup.Config

	// links are the live links parked between two steps of a job (a
	// replication session, a keyspace subscription), of every mode.
	links kit.Parking
}

// New returns the Redis engine.
func New(logger *slog.Logger) *Engine {
	if logger == nil {
		logger = slog.Default()
	}
	return &Engine{Logger: logger}
}

var (
	_ ferry.Engine         = (*Engine)(nil)
	_ ferry.OptionLister   = (*Engine)(nil)
	_ ferry.CutoverPlanner = (*Engine)(nil)
	_ ferry.SourceReleaser = (*Engine)(nil)
)

// Kind is redis.
func (e *Engine) Kind() ferry.EngineKind { return ferry.KindRedis }

// mode is what each mode's package provides.
type mode interface {
	Check(m *ferry.Migration, o *config.Options) error
	RunStep(ctx context.Context, m *ferry.Migration, o *config.Options, step ferry.StepName, rt ferry.StepRuntime) error
}

// mode returns the runner of a job's mode.
func (e *Engine) mode(o *config.Options) mode {
	d := kit.Deps{Logger: e.Logger, WriterConns: e.WriterConns, Links: &e.links}
	switch o.Mode {
	case config.ModeScan:
		return &scan.Mode{Deps: d}
	case config.ModeBackupImport:
		return &backup.Mode{Deps: d, Config: &e.Backups}
	}
	return &psync.Mode{Deps: d}
}

// Check validates a job for this engine without touching the network.
func (e *Engine) Check(m *ferry.Migration) error {
	o, err := config.Parse(m)
	if err != nil {
		return err
	}
	return e.mode(o).Check(m, o)
}

// RunStep runs one step of a job.
func (e *Engine) RunStep(ctx context.Context, m *ferry.Migration, step ferry.StepName, rt ferry.StepRuntime) error {
	o, err := config.Parse(m)
	if err != nil {
		return err
	}
	return e.mode(o).RunStep(ctx, m, o, step, rt)
}

// KnownOptions lists the Options.Extra keys the Redis engine reads
// (ferry.OptionLister).
func (e *Engine) KnownOptions() []ferry.OptionSpec { return config.Specs() }

// CutoverPlan says what cutover does to the source (ferry.CutoverPlanner).
func (e *Engine) CutoverPlan(m *ferry.Migration) string { return kit.CutoverPlan(m) }

// ReleaseSource lifts the write pause cutover put on the source (CLIENT
// UNPAUSE on it, on every master of a cluster source); ferry.SourceReleaser.
func (e *Engine) ReleaseSource(ctx context.Context, m *ferry.Migration) error {
	return kit.ReleaseSource(ctx, m)
}
