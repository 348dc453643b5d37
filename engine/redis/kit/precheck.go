package kit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
)

// Precheck checks both sides before anything is written: reachability and
// credentials, versions, the source's role, and (conflict policy fail) that
// the target dbs the job writes to are empty.
func Precheck(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	f, err := NewFilter(m)
	if err != nil {
		return err
	}
	src := Client(&m.Source, 0)
	defer src.Close()
	if err := src.Ping(ctx).Err(); err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Field: "source", Reason: "SOURCE_UNREACHABLE",
			Message: fmt.Sprintf("cannot reach the source %s: %v", m.Source.Addrs[0], err), Advice: "check the address, the password and that ferry's host may connect"}
	}
	srcVer, _ := InfoField(ctx, src, "server", "redis_version")
	dst := Client(&m.Target, 0)
	defer dst.Close()
	if err := dst.Ping(ctx).Err(); err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Field: "target", Reason: "TARGET_UNREACHABLE",
			Message: fmt.Sprintf("cannot reach the target %s: %v", m.Target.Addrs[0], err), Advice: "check the address, the password and that ferry's host may connect"}
	}
	dstVer, _ := InfoField(ctx, dst, "server", "redis_version")
	srcKeys, err := Keyspace(ctx, src)
	if err != nil {
		return fmt.Errorf("source INFO keyspace: %w", err)
	}
	var notes []string
	if m.Target.Cluster {
		for db, n := range srcKeys {
			if t, ok := f.DB(db); ok && t != 0 {
				return ferry.FieldError("options.filters.renames", "the source has %d keys in db %d but a Redis Cluster target has only db 0: remap it", n, db)
			}
		}
	}
	if m.Options.Conflict != ferry.ConflictReplace && (m.Modes.Full || m.Modes.Incremental) {
		dstKeys, err := Keyspace(ctx, dst)
		if err != nil {
			return fmt.Errorf("target INFO keyspace: %w", err)
		}
		used := map[int]bool{}
		for db := range srcKeys {
			if t, ok := f.DB(db); ok {
				used[t] = true
			}
		}
		var busy []string
		for db, n := range dstKeys {
			if n > 0 && (used[db] || len(srcKeys) == 0) {
				busy = append(busy, fmt.Sprintf("db%d: %d keys", db, n))
			}
		}
		sort.Strings(busy)
		if len(busy) > 0 {
			return &ferry.Error{Code: ferry.EINVALID, Field: "target", Reason: "TARGET_NOT_EMPTY",
				Message: "the target already holds keys where the migration would write (" + strings.Join(busy, ", ") + ")",
				Advice:  "empty those dbs on the target, or choose conflict policy replace"}
		}
	}
	if srcVer != "" && dstVer != "" && VersionLess(dstVer, srcVer) {
		notes = append(notes, fmt.Sprintf("the target (%s) is older than the source (%s): streams and module values are moved by RESTORE and may be refused", dstVer, srcVer))
	}
	var total int64
	for db, n := range srcKeys {
		if _, ok := f.DB(db); ok {
			total += n
		}
	}
	msg := fmt.Sprintf("source redis %s with %d keys to move, target redis %s", srcVer, total, dstVer)
	if len(notes) > 0 {
		msg += "; " + strings.Join(notes, "; ")
	}
	rt.Message(msg)
	rt.Progress(ferry.Counters{Done: 1, Total: 1}, 100)
	return nil
}

// CheckCommon refuses, without network, what no mode of the Redis engine
// does: a schema step, reverse incremental sync, conflict policy skip.
func CheckCommon(m *ferry.Migration) error {
	if m.Modes.Schema {
		return ferry.FieldError("modes.schema", "Redis has no schema step")
	}
	if m.Modes.ReverseIncremental {
		return ferry.FieldError("modes.reverseIncremental", "reverse incremental sync is not available for Redis")
	}
	if m.Options.Conflict == ferry.ConflictSkip {
		return ferry.FieldError("options.conflict", "conflict policy skip is not built yet for Redis: use fail (empty target) or replace")
	}
	return nil
}
