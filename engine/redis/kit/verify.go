package kit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/verify"
)

// Verify is the verification step of the online modes: it compares source
// and target key by key; any difference left after the re-check rounds
// fails the step with the numbers.
func Verify(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := NewFilter(m)
	if err != nil {
		return err
	}
	if f.Remaps() {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "VERIFY_NOT_AVAILABLE", Message: "verification of a job that remaps dbs is not built yet"}
	}
	src := Client(&m.Source, 0)
	defer src.Close()
	dst := Client(&m.Target, 0)
	defer dst.Close()
	opts := verify.Options{KeyFilter: func(k []byte) bool {
		// ferry's own offset marker on the target is not data.
		return !strings.HasPrefix(string(k), MarkerPrefix) && f.Key(k)
	}}
	if f.DBsFiltered() {
		keys, err := Keyspace(ctx, src)
		if err != nil {
			return fmt.Errorf("source INFO keyspace: %w", err)
		}
		for db := range keys {
			if _, ok := f.DB(db); ok {
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
