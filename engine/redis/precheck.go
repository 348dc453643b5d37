package redis

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/verify"
)

// precheck checks both sides before anything is written: reachability and
// credentials, versions, the source's role, and (conflict policy fail) that
// the target dbs the job writes to are empty.
func (e *Engine) precheck(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	src := client(&m.Source, 0)
	defer src.Close()
	if err := src.Ping(ctx).Err(); err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Field: "source", Reason: "SOURCE_UNREACHABLE",
			Message: fmt.Sprintf("cannot reach the source %s: %v", m.Source.Addrs[0], err), Advice: "check the address, the password and that ferry's host may connect"}
	}
	srcVer, _ := infoField(ctx, src, "server", "redis_version")
	dst := client(&m.Target, 0)
	defer dst.Close()
	if err := dst.Ping(ctx).Err(); err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Field: "target", Reason: "TARGET_UNREACHABLE",
			Message: fmt.Sprintf("cannot reach the target %s: %v", m.Target.Addrs[0], err), Advice: "check the address, the password and that ferry's host may connect"}
	}
	dstVer, _ := infoField(ctx, dst, "server", "redis_version")
	srcKeys, err := keyspace(ctx, src)
	if err != nil {
		return fmt.Errorf("source INFO keyspace: %w", err)
	}
	var notes []string
	if m.Target.Cluster {
		for db, n := range srcKeys {
			if t, ok := f.db(db); ok && t != 0 {
				return ferry.FieldError("options.filters.renames", "the source has %d keys in db %d but a Redis Cluster target has only db 0: remap it", n, db)
			}
		}
	}
	if m.Options.Conflict != ferry.ConflictReplace && (m.Modes.Full || m.Modes.Incremental) {
		dstKeys, err := keyspace(ctx, dst)
		if err != nil {
			return fmt.Errorf("target INFO keyspace: %w", err)
		}
		used := map[int]bool{}
		for db := range srcKeys {
			if t, ok := f.db(db); ok {
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
	if srcVer != "" && dstVer != "" && versionLess(dstVer, srcVer) {
		notes = append(notes, fmt.Sprintf("the target (%s) is older than the source (%s): streams and module values are moved by RESTORE and may be refused", dstVer, srcVer))
	}
	var total int64
	for db, n := range srcKeys {
		if _, ok := f.db(db); ok {
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

// versionLess compares dotted versions numerically.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		var x, y int
		fmt.Sscan(pa[i], &x)
		fmt.Sscan(pb[i], &y)
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}

// verify compares source and target key by key; any difference left after
// the re-check rounds fails the step with the numbers.
func (e *Engine) verify(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	for from, to := range f.remap {
		if from != to {
			return &ferry.Error{Code: ferry.EINVALID, Reason: "VERIFY_NOT_AVAILABLE", Message: "verification of a job that remaps dbs is not built yet"}
		}
	}
	src := client(&m.Source, 0)
	defer src.Close()
	dst := client(&m.Target, 0)
	defer dst.Close()
	opts := verify.Options{KeyFilter: func(k []byte) bool {
		// ferry's own offset marker on the target is not data.
		return !strings.HasPrefix(string(k), markerPrefix) && f.key(k)
	}}
	if f.incDB != nil || f.excDB != nil {
		keys, err := keyspace(ctx, src)
		if err != nil {
			return fmt.Errorf("source INFO keyspace: %w", err)
		}
		for db := range keys {
			if _, ok := f.db(db); ok {
				opts.DBs = append(opts.DBs, db)
			}
		}
		sort.Ints(opts.DBs)
		if len(opts.DBs) == 0 {
			rt.Message("nothing to verify: no included db has keys")
			return nil
		}
	}
	rt.Message("comparing source and target key by key")
	opts.OnRound = func(round, pending int) {
		rt.Message(fmt.Sprintf("verification round %d: %d keys still different", round, pending))
	}
	rep, err := verify.Compare(ctx, src, dst, opts)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	rt.Progress(ferry.Counters{Done: rep.Checked, Total: rep.Checked, Missing: rep.Missing, Extra: rep.Extra, Different: rep.Different, Unit: "keys"}, 100)
	if !rep.Equal() {
		var ex []string
		for i, d := range rep.Samples {
			if i == 5 {
				break
			}
			ex = append(ex, fmt.Sprintf("db%d %q %s: %s", d.DB, d.Key, d.Kind, d.Detail))
		}
		return &ferry.Error{Code: ferry.EINVALID, Reason: "VERIFY_FAILED",
			Message: fmt.Sprintf("target differs from source: %d missing, %d extra, %d different of %d keys checked (e.g. %s)", rep.Missing, rep.Extra, rep.Different, rep.Checked, strings.Join(ex, "; ")),
			Advice:  "look at the keys named; a source written to during verification can cause this: verify again after cutover"}
	}
	rt.Message(fmt.Sprintf("verified: %d keys equal on both sides (0 missing, 0 extra, 0 different) in %d rounds, %s", rep.Checked, rep.Rounds, rep.Duration.Round(time.Millisecond)))
	return nil
}
