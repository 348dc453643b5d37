// Package backup is the Redis engine's backup_import mode: the job's files
// (RDB files, AOF files, AOF files with an RDB preamble, Redis 7 multi-part
// AOF directories, from a local directory, a bucket or a backup ferry took
// itself) are read as streams, in order, with the same RDB parser and the
// same writer as the online modes: an RDB's keys become commands
// (kit.RDBApplier), an AOF's commands are applied as they are (SELECT
// followed, MULTI/EXEC kept). Steps: precheck (files readable, target
// reachable, target dbs empty unless conflict policy replace), full (the
// import), verify (the RDB files parsed again, every key looked up on the
// target). Config.Create takes the backups (`ferry backups create`).
package backup

import (
	"context"
	"fmt"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
)

// Mode runs the steps of backup imports.
type Mode struct {
	kit.Deps
	// Config says where files are imported from and where ferry's own
	// backups are.
	Config *Config
}

// Check validates a backup import without touching the network. A backup
// import reads no source server: its source endpoint is not checked.
func (e *Mode) Check(m *ferry.Migration, o *config.Options) error {
	if !m.Modes.Full {
		return ferry.FieldError("modes.full", "a backup import is a full migration: enable full")
	}
	if m.Modes.Incremental {
		return ferry.FieldError("modes.incremental", "a backup import has no incremental sync (migration_method full_amount_migration)")
	}
	if err := kit.CheckCommon(m); err != nil {
		return err
	}
	if o.Backup.Dir != "" {
		if err := e.Config.dirAllowed(o.Backup.Dir); err != nil {
			return err
		}
	}
	if _, err := kit.NewFilter(m); err != nil {
		return err
	}
	return nil
}

// RunStep runs one step of a backup import.
func (e *Mode) RunStep(ctx context.Context, m *ferry.Migration, o *config.Options, step ferry.StepName, rt ferry.StepRuntime) error {
	switch step {
	case ferry.StepPrecheck:
		return e.importPrecheck(ctx, m, &o.Backup, rt)
	case ferry.StepFull:
		return e.importFull(ctx, m, &o.Backup, rt)
	case ferry.StepVerify:
		return e.importVerify(ctx, m, &o.Backup, rt)
	}
	return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("a redis backup import has no step %s", step)}
}
