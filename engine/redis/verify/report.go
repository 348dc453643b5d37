package verify

import (
	"fmt"
	"sort"
	"time"
)

// Kind classifies a difference.
type Kind string

const (
	Missing Kind = "missing" // on the source, not on the target
	Extra   Kind = "extra"   // on the target only
	Type    Kind = "type"    // different types
	Value   Kind = "value"   // different value (string, elements, members, scores, entries)
	TTL     Kind = "ttl"     // expiry absent on one side or further apart than the tolerance
	Stream  Kind = "stream"  // stream metadata, consumer groups, pending entries or consumers
)

// Diff is one key that differs.
type Diff struct {
	DB     int
	Key    string
	Kind   Kind
	Detail string
}

// DBReport holds the counts of one db.
type DBReport struct {
	Checked   int64
	Missing   int64
	Extra     int64
	Different int64
}

// Report is the outcome of Compare. Missing, Extra and Different count keys
// still different after the last round (Different: type, value, TTL or
// stream differences).
type Report struct {
	Checked   int64
	Missing   int64
	Extra     int64
	Different int64
	ByKind    map[Kind]int64
	DBs       map[int]*DBReport
	Samples   []Diff
	Rounds    int // rounds run
	Duration  time.Duration
}

// Equal reports whether nothing differs.
func (r *Report) Equal() bool { return r.Missing == 0 && r.Extra == 0 && r.Different == 0 }

func (r *Report) String() string {
	return fmt.Sprintf("checked %d keys in %d round(s): %d missing, %d extra, %d different", r.Checked, r.Rounds, r.Missing, r.Extra, r.Different)
}

// fill adds the checked counts and the differences still pending to rep:
// per db, per kind, and the first Options.SampleLimit samples in (db, key)
// order.
func (v *verifier) fill(rep *Report) {
	for db, n := range v.checked {
		if rep.DBs[db] == nil {
			rep.DBs[db] = &DBReport{}
		}
		rep.DBs[db].Checked = n
		rep.Checked += n
	}
	diffs := make([]Diff, 0, len(v.pending))
	for _, d := range v.pending {
		diffs = append(diffs, d)
	}
	sort.Slice(diffs, func(i, j int) bool {
		if diffs[i].DB != diffs[j].DB {
			return diffs[i].DB < diffs[j].DB
		}
		return diffs[i].Key < diffs[j].Key
	})
	for _, d := range diffs {
		dr := rep.DBs[d.DB]
		if dr == nil {
			dr = &DBReport{}
			rep.DBs[d.DB] = dr
		}
		rep.ByKind[d.Kind]++
		switch d.Kind {
		case Missing:
			rep.Missing++
			dr.Missing++
		case Extra:
			rep.Extra++
			dr.Extra++
		default:
			rep.Different++
			dr.Different++
		}
		if v.opts.SampleLimit > 0 && len(rep.Samples) < v.opts.SampleLimit {
			rep.Samples = append(rep.Samples, d)
		}
	}
}
