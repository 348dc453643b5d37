package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/ferrymigrate/ferry"
)

// The cutover write block (options.extra.cutover_write_block).
//
// By default cutover does not stop the source's writes: ferry reads the
// source's binlog position when cutover is asked for and drains to it, so a
// row written to the source after that is not on the target. With
// cutover_write_block=read_only ferry runs SET GLOBAL read_only=ON on the
// source first (it waits for the transactions that are committing, then
// refuses every write of users without SUPER / READ_ONLY ADMIN with error
// 1290), reads the final position after it, drains to it, and leaves the
// source read-only after cutover until `release-source` (SET GLOBAL
// read_only=OFF) or someone resets it.
//
// read_only is chosen over FLUSH TABLES WITH READ LOCK because FTWRL holds
// only while the connection that took it stays open: it would end with the
// agent's step (or a killed agent), and writes queued behind it would then
// commit on the source and be lost for the target. read_only is global and
// outlives the agent. What it does not block: users with SUPER (READ_ONLY
// ADMIN on MariaDB 10.11+) and replication threads; give the applications
// users without them. Setting it needs SUPER (or READ_ONLY ADMIN), which
// the precheck tests.
const (
	optWriteBlock     = "cutover_write_block"
	writeBlockNone    = "none"
	writeBlockReadOnl = "read_only"
)

// writeBlock returns the job's cutover write block ("none" or "read_only").
func writeBlock(m *ferry.Migration) (string, error) {
	switch v := m.Options.Extra[optWriteBlock]; v {
	case "", writeBlockNone:
		return writeBlockNone, nil
	case writeBlockReadOnl:
		if m.Modes.ReverseIncremental {
			return "", ferry.FieldError("options.extra."+optWriteBlock, "read_only cannot be combined with reverse incremental sync, which writes the target's changes back to the source after cutover")
		}
		return writeBlockReadOnl, nil
	default:
		return "", ferry.FieldError("options.extra."+optWriteBlock, "must be none (cutover does not stop the source's writes) or read_only (SET GLOBAL read_only=ON on the source from cutover until release-source), got %q", v)
	}
}

// checkWriteBlockPrivilege tests that the source lets ferry set read_only:
// it sets the variable to the value it has (a no-op that needs the same
// privilege).
func checkWriteBlockPrivilege(ctx context.Context, src *sql.DB) error {
	if _, err := src.ExecContext(ctx, "SET GLOBAL read_only = @@GLOBAL.read_only"); err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Field: "options.extra." + optWriteBlock, Reason: "WRITE_BLOCK_REFUSED",
			Message: fmt.Sprintf("the source refuses SET GLOBAL read_only: %v", err),
			Advice:  "give ferry's source user SUPER (or READ_ONLY ADMIN on MariaDB 10.11+), or cut over without a write block (cutover_write_block=none) after stopping the applications' writes yourself"}
	}
	return nil
}

// blockWrites makes the source read-only for cutover.
func blockWrites(ctx context.Context, src *sql.DB) error {
	if _, err := src.ExecContext(ctx, "SET GLOBAL read_only = ON"); err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "WRITE_BLOCK_REFUSED",
			Message: fmt.Sprintf("cutover: SET GLOBAL read_only=ON on the source: %v", err),
			Advice:  "give ferry's source user SUPER (or READ_ONLY ADMIN), or cut over without a write block"}
	}
	return nil
}

// ReleaseSource lifts the cutover's write block: SET GLOBAL read_only=OFF
// on the source (ferry.SourceReleaser).
func (e *Engine) ReleaseSource(ctx context.Context, m *ferry.Migration) error {
	src, err := openDB(&m.Source, false, 1)
	if err != nil {
		return err
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := src.ExecContext(ctx, "SET GLOBAL read_only = OFF"); err != nil {
		var me *gomysql.MySQLError
		msg := err.Error()
		if errors.As(err, &me) {
			msg = me.Message
		}
		return &ferry.Error{Code: ferry.EINVALID, Reason: "SOURCE_RELEASE_FAILED",
			Message: fmt.Sprintf("SET GLOBAL read_only=OFF on the source %s: %s", m.Source.Addrs[0], msg),
			Advice:  "run SET GLOBAL read_only=OFF on the source yourself"}
	}
	return nil
}

// recordCutoverStart reports the write block and the final position read
// once cutover was asked for.
func recordCutoverStart(rt ferry.StepRuntime, block string, blockedAt time.Time, final pos) {
	ferry.RecordCutover(rt, func(c *ferry.CutoverInfo) {
		c.SourcePosition = final.String()
		if final.GTID != "" {
			c.SourcePosition += " (gtid " + final.GTID + ")"
		}
		if block == writeBlockReadOnl {
			c.SourceWriteBlock = ferry.WriteBlockReadOnly
			if c.SourceBlockedAt == nil { // a resumed cutover blocks again: keep the first time
				c.SourceBlockedAt = &blockedAt
			}
			c.Notes = []string{"the source was made read-only (SET GLOBAL read_only=ON) before its final position was read, and stays so until release-source: writes by users without SUPER / READ_ONLY ADMIN fail with error 1290"}
		} else {
			c.SourceWriteBlock = ferry.WriteBlockNone
			c.Notes = []string{"cutover did not stop the source's writes (options.extra.cutover_write_block=none): a row written to the source after " + final.String() + " is not on the target; stop the applications' writes before cutting over, or use cutover_write_block=read_only"}
		}
	})
}

// recordDrained reports the position the target holds every change up to.
func recordDrained(rt ferry.StepRuntime, drained pos) {
	now := time.Now()
	ferry.RecordCutover(rt, func(c *ferry.CutoverInfo) {
		c.DrainedPosition, c.DrainedAt = drained.String(), &now
		if drained.GTID != "" {
			c.DrainedPosition += " (gtid " + drained.GTID + ")"
		}
	})
}

// CutoverPlan says what cutover does to the source (ferry.CutoverPlanner).
func (e *Engine) CutoverPlan(m *ferry.Migration) string {
	if b, _ := writeBlock(m); b == writeBlockReadOnl && m.Options.ReleaseSourceAfterCutover {
		return "cutover makes the source read-only (SET GLOBAL read_only=ON) before reading its final position, drains to it, verifies, and makes it writable again when the job completes (releaseSourceAfterCutover): writes after that are not migrated"
	} else if b == writeBlockReadOnl {
		return "cutover makes the source read-only (SET GLOBAL read_only=ON) before reading its final position, drains to it, and leaves it read-only until release-source"
	}
	return "cutover does not stop the source's writes: it drains to the source's position at the cutover request; a row written to the source after it is not on the target (options.extra.cutover_write_block=read_only blocks them)"
}
