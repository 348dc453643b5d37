// Package verify compares a source and a target Redis key by key and says,
// with numbers, whether they are equal.
//
// Equality is the fidelity bar of the migration (see SPEC.md, "Fidelity"):
//
//   - every db that has keys on either side (INFO keyspace), binary-safe keys;
//   - the type of each key, and its expiry compared as an absolute time
//     (PEXPIRETIME; PTTL plus the local clock on servers without it) within
//     Options.TTLTolerance;
//   - values exactly: strings byte for byte, lists element by element, sets
//     and hashes as sets, zsets member by member with scores compared bit for
//     bit as float64 (a score written with too few digits is a difference);
//   - streams: every entry (id, fields and values in order), the stream's
//     length, last-generated-id, max-deleted-entry-id, entries-added and
//     recorded-first-entry-id, and each consumer group's last-delivered-id,
//     entries-read, lag, pending entries (id, consumer, delivery count) and
//     consumers (name, pending count);
//   - other types (modules): DUMP payloads byte for byte.
//
// Big keys are compared in chunks (Options.Chunk elements or 1 MiB of a
// string at a time), so memory does not grow with the size of one key.
//
// The compare runs in rounds: round 1 scans both sides; keys that differ are
// checked again in the next round after Options.RecheckDelay, so keys that
// were changing while being compared (a live sync) converge; only keys still
// different in the last round are reported.
//
// Sources and targets may be standalone (*redis.Client: every db is reached
// through a client of its own, made from its options) or Redis Cluster
// (*redis.ClusterClient: db 0, every master scanned).
package verify

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options tunes a comparison. Zero values take the defaults.
type Options struct {
	// DBs to compare; empty: every db with keys on either side.
	DBs []int
	// Rounds of comparison (default 3): round 1 is the full scan, later
	// rounds re-check the keys still different.
	Rounds int
	// RecheckDelay is the pause before each re-check round (default 1s).
	RecheckDelay time.Duration
	// TTLTolerance is how far apart the absolute expiry times may be
	// (default 2s).
	TTLTolerance time.Duration
	// KeyFilter, when set, selects the keys to compare (on both sides).
	KeyFilter func(key []byte) bool
	// SampleLimit bounds Report.Samples (default 100; negative: none).
	SampleLimit int
	// ScanCount is the SCAN COUNT and the number of keys compared per
	// pipeline (default 500).
	ScanCount int
	// Chunk is the number of elements read at a time from big keys (default
	// 1000); keys up to this size are read whole in a pipeline.
	Chunk int
	// Workers is the number of batches compared concurrently (default 4).
	Workers int
	// OnRound, when set, is called after each round with the number of keys
	// still different.
	OnRound func(round, pending int)
}

func (o *Options) defaults() {
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.RecheckDelay <= 0 {
		o.RecheckDelay = time.Second
	}
	if o.TTLTolerance <= 0 {
		o.TTLTolerance = 2 * time.Second
	}
	if o.SampleLimit == 0 {
		o.SampleLimit = 100
	}
	if o.ScanCount <= 0 {
		o.ScanCount = 500
	}
	if o.Chunk <= 0 {
		o.Chunk = 1000
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
}

type dbKey struct {
	db  int
	key string
}

type verifier struct {
	opts     Options
	src, dst redis.UniversalClient
	noExpT   atomic.Bool // servers without PEXPIRETIME: use PTTL

	mu      sync.Mutex
	pending map[dbKey]Diff
	checked map[int]int64
}

// Compare compares src and dst. See the package documentation.
func Compare(ctx context.Context, src, dst redis.UniversalClient, opts Options) (*Report, error) {
	opts.defaults()
	start := time.Now()
	v := &verifier{opts: opts, src: src, dst: dst, pending: map[dbKey]Diff{}, checked: map[int]int64{}}
	dbs := opts.DBs
	if len(dbs) == 0 {
		var err error
		if dbs, err = keyspaceDBs(ctx, src, dst); err != nil {
			return nil, err
		}
	}
	rep := &Report{DBs: map[int]*DBReport{}, ByKind: map[Kind]int64{}}
	for _, db := range dbs {
		rep.DBs[db] = &DBReport{}
	}
	// Round 1: full scans.
	for _, db := range dbs {
		if err := v.scanDB(ctx, db); err != nil {
			return nil, err
		}
	}
	rep.Rounds = 1
	if opts.OnRound != nil {
		opts.OnRound(1, len(v.pending))
	}
	for round := 2; round <= opts.Rounds && len(v.pending) > 0; round++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(opts.RecheckDelay):
		}
		if err := v.recheck(ctx); err != nil {
			return nil, err
		}
		rep.Rounds = round
		if opts.OnRound != nil {
			opts.OnRound(round, len(v.pending))
		}
	}
	v.fill(rep)
	rep.Duration = time.Since(start)
	return rep, nil
}

// keyspaceDBs lists the dbs with keys on either side (INFO keyspace).
func keyspaceDBs(ctx context.Context, clients ...redis.UniversalClient) ([]int, error) {
	set := map[int]bool{}
	for _, c := range clients {
		if _, ok := c.(*redis.ClusterClient); ok {
			set[0] = true
			continue
		}
		info, err := c.Info(ctx, "keyspace").Result()
		if err != nil {
			return nil, fmt.Errorf("verify: INFO keyspace: %w", err)
		}
		for _, line := range strings.Split(info, "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "db") {
				continue
			}
			name, _, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			if n, err := strconv.Atoi(strings.TrimPrefix(name, "db")); err == nil {
				set[n] = true
			}
		}
	}
	out := make([]int, 0, len(set))
	for db := range set {
		out = append(out, db)
	}
	sort.Ints(out)
	return out, nil
}

// forDB returns a client bound to db.
func forDB(c redis.UniversalClient, db int) (redis.UniversalClient, func(), error) {
	switch x := c.(type) {
	case *redis.ClusterClient:
		if db != 0 {
			return nil, nil, fmt.Errorf("verify: a cluster has only db 0 (asked for db %d)", db)
		}
		return x, func() {}, nil
	case *redis.Client:
		o := *x.Options()
		if o.DB == db {
			return x, func() {}, nil
		}
		o.DB = db
		nc := redis.NewClient(&o)
		return nc, func() { nc.Close() }, nil
	default:
		if db != 0 {
			return nil, nil, fmt.Errorf("verify: cannot select db %d on a %T", db, c)
		}
		return c, func() {}, nil
	}
}
