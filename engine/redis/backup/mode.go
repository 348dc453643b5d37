// Package backup is the Redis engine's backup_import mode: the job's RDB
// and AOF files (or a Redis 7 multi-part AOF, from a local directory, a
// bucket or a backup ferry took itself with Config.Create) are read as
// streams, in order, by the same RDB parser and writer as the online
// modes, and verified by parsing the RDB files again and looking every key
// up on the target.
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
