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
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
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
		if opts.SampleLimit > 0 && len(rep.Samples) < opts.SampleLimit {
			rep.Samples = append(rep.Samples, d)
		}
	}
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

// scanKeys calls fn with batches of the keys of c (every master of a
// cluster).
func scanKeys(ctx context.Context, c redis.UniversalClient, count int, fn func([]string) error) error {
	scan := func(ctx context.Context, n redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := n.Scan(ctx, cursor, "", int64(count)).Result()
			if err != nil {
				return fmt.Errorf("verify: SCAN: %w", err)
			}
			if len(keys) > 0 {
				if err := fn(keys); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		// Masters are scanned concurrently: fn serializes itself.
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return scan(ctx, m)
		})
	}
	return scan(ctx, c)
}

func (v *verifier) filter(keys []string) []string {
	if v.opts.KeyFilter == nil {
		return keys
	}
	out := keys[:0]
	for _, k := range keys {
		if v.opts.KeyFilter([]byte(k)) {
			out = append(out, k)
		}
	}
	return out
}

// pool runs jobs on Options.Workers goroutines; the first error stops it.
type pool struct {
	jobs chan func() error
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
}

func newPool(n int) *pool {
	p := &pool{jobs: make(chan func() error, n)}
	for i := 0; i < n; i++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				if p.failed() != nil {
					continue
				}
				if err := j(); err != nil {
					p.mu.Lock()
					if p.err == nil {
						p.err = err
					}
					p.mu.Unlock()
				}
			}
		}()
	}
	return p
}

func (p *pool) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// submit queues a job; it returns the pool's first error, if any.
func (p *pool) submit(j func() error) error {
	if err := p.failed(); err != nil {
		return err
	}
	p.jobs <- j
	return nil
}

func (p *pool) wait() error {
	close(p.jobs)
	p.wg.Wait()
	return p.err
}

func (v *verifier) scanDB(ctx context.Context, db int) error {
	src, closeSrc, err := forDB(v.src, db)
	if err != nil {
		return err
	}
	defer closeSrc()
	dst, closeDst, err := forDB(v.dst, db)
	if err != nil {
		return err
	}
	defer closeDst()
	p := newPool(v.opts.Workers)
	var mu sync.Mutex // scan callbacks of several cluster masters
	// Source keys.
	err = scanKeys(ctx, src, v.opts.ScanCount, func(keys []string) error {
		mu.Lock()
		defer mu.Unlock()
		keys = v.filter(keys)
		if len(keys) == 0 {
			return nil
		}
		v.addChecked(db, len(keys))
		return p.submit(func() error { return v.compareBatch(ctx, db, src, dst, keys) })
	})
	if err == nil {
		// Target keys absent from the source.
		err = scanKeys(ctx, dst, v.opts.ScanCount, func(keys []string) error {
			mu.Lock()
			defer mu.Unlock()
			keys = v.filter(keys)
			if len(keys) == 0 {
				return nil
			}
			return p.submit(func() error { return v.extras(ctx, db, src, dst, keys) })
		})
	}
	if perr := p.wait(); err == nil {
		err = perr
	}
	return err
}

// extras compares the target keys that the source does not have.
func (v *verifier) extras(ctx context.Context, db int, src, dst redis.UniversalClient, keys []string) error {
	cmds, err := pipe(ctx, src, func(p redis.Pipeliner) {
		for _, k := range keys {
			p.Exists(ctx, k)
		}
	})
	if err != nil {
		return err
	}
	var extra []string
	for i, c := range cmds {
		if c.(*redis.IntCmd).Val() == 0 {
			extra = append(extra, keys[i])
		}
	}
	if len(extra) == 0 {
		return nil
	}
	v.addChecked(db, len(extra))
	return v.compareBatch(ctx, db, src, dst, extra)
}

func (v *verifier) addChecked(db, n int) {
	v.mu.Lock()
	v.checked[db] += int64(n)
	v.mu.Unlock()
}

// recheck compares again every key still different.
func (v *verifier) recheck(ctx context.Context) error {
	byDB := map[int][]string{}
	for k := range v.pending {
		byDB[k.db] = append(byDB[k.db], k.key)
	}
	for db, keys := range byDB {
		src, closeSrc, err := forDB(v.src, db)
		if err != nil {
			return err
		}
		dst, closeDst, err := forDB(v.dst, db)
		if err != nil {
			closeSrc()
			return err
		}
		p := newPool(v.opts.Workers)
		for i := 0; i < len(keys); i += v.opts.ScanCount {
			batch := keys[i:min(i+v.opts.ScanCount, len(keys))]
			if p.submit(func() error { return v.compareBatch(ctx, db, src, dst, batch) }) != nil {
				break
			}
		}
		if err := p.wait(); err != nil {
			closeSrc()
			closeDst()
			return err
		}
		closeSrc()
		closeDst()
	}
	return nil
}

// pipe runs the commands queued by fill in one pipeline; it returns the
// commands (each with its own result or error) and only fails on errors
// other than error replies and nil replies.
func pipe(ctx context.Context, c redis.UniversalClient, fill func(redis.Pipeliner)) ([]redis.Cmder, error) {
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error { fill(p); return nil })
	if err != nil && !isReplyErr(err) {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return cmds, nil
}

func isReplyErr(err error) bool {
	if err == nil || err == redis.Nil {
		return true
	}
	var re redis.Error
	return errors.As(err, &re)
}

// both runs f on the source and on the target concurrently.
func both(f func(side int) error) error {
	var wg sync.WaitGroup
	var errs [2]error
	wg.Add(1)
	go func() { defer wg.Done(); errs[1] = f(1) }()
	errs[0] = f(0)
	wg.Wait()
	return errors.Join(errs[0], errs[1])
}

type meta struct {
	typ string
	exp int64 // absolute expiry in ms; -1 none; -2 missing
}

func (v *verifier) metas(ctx context.Context, c redis.UniversalClient, keys []string) ([]meta, error) {
	for {
		noExpT := v.noExpT.Load()
		now := time.Now().UnixMilli()
		cmds, err := pipe(ctx, c, func(p redis.Pipeliner) {
			for _, k := range keys {
				p.Type(ctx, k)
				if noExpT {
					p.PTTL(ctx, k)
				} else {
					p.Do(ctx, "PEXPIRETIME", k)
				}
			}
		})
		if err != nil {
			return nil, err
		}
		out := make([]meta, len(keys))
		retry := false
		for i := range keys {
			tc, ec := cmds[2*i].(*redis.StatusCmd), cmds[2*i+1]
			if err := tc.Err(); err != nil {
				return nil, fmt.Errorf("verify: TYPE %q: %w", keys[i], err)
			}
			out[i].typ = tc.Val()
			if noExpT {
				d := ec.(*redis.DurationCmd)
				if d.Err() != nil {
					return nil, fmt.Errorf("verify: PTTL %q: %w", keys[i], d.Err())
				}
				switch ms := d.Val(); ms {
				case -1, -2: // go-redis reports PTTL's -1 and -2 as such
					out[i].exp = int64(ms)
				default:
					out[i].exp = now + ms.Milliseconds()
				}
				continue
			}
			n, err := ec.(*redis.Cmd).Int64()
			if err != nil {
				if strings.Contains(strings.ToLower(err.Error()), "unknown command") {
					v.noExpT.Store(true)
					retry = true
					break
				}
				return nil, fmt.Errorf("verify: PEXPIRETIME %q: %w", keys[i], err)
			}
			out[i].exp = n
		}
		if !retry {
			return out, nil
		}
	}
}

// compareBatch compares keys and updates the pending differences.
func (v *verifier) compareBatch(ctx context.Context, db int, src, dst redis.UniversalClient, keys []string) error {
	var ms [2][]meta
	cl := [2]redis.UniversalClient{src, dst}
	if err := both(func(s int) (err error) { ms[s], err = v.metas(ctx, cl[s], keys); return }); err != nil {
		return err
	}
	diffs := make([]*Diff, len(keys))
	var same []int
	for i, k := range keys {
		a, b := ms[0][i], ms[1][i]
		switch {
		case a.typ == "none" && b.typ == "none":
		case b.typ == "none":
			diffs[i] = &Diff{DB: db, Key: k, Kind: Missing, Detail: "not on the target (source type " + a.typ + ")"}
		case a.typ == "none":
			diffs[i] = &Diff{DB: db, Key: k, Kind: Extra, Detail: "only on the target (type " + b.typ + ")"}
		case a.typ != b.typ:
			diffs[i] = &Diff{DB: db, Key: k, Kind: Type, Detail: fmt.Sprintf("type %s on the source, %s on the target", a.typ, b.typ)}
		default:
			if d := v.ttlDiff(a.exp, b.exp); d != "" {
				diffs[i] = &Diff{DB: db, Key: k, Kind: TTL, Detail: d}
			}
			same = append(same, i)
		}
	}
	if len(same) > 0 {
		if err := v.compareValues(ctx, db, src, dst, keys, ms[0], same, diffs); err != nil {
			return err
		}
	}
	v.mu.Lock()
	for i, k := range keys {
		dk := dbKey{db, k}
		if diffs[i] == nil {
			delete(v.pending, dk)
		} else {
			v.pending[dk] = *diffs[i]
		}
	}
	v.mu.Unlock()
	return nil
}

func (v *verifier) ttlDiff(a, b int64) string {
	switch {
	case a < 0 && b < 0:
		return ""
	case a < 0:
		return fmt.Sprintf("no expiry on the source, expires at %d ms on the target", b)
	case b < 0:
		return fmt.Sprintf("expires at %d ms on the source, no expiry on the target", a)
	}
	d := a - b
	if d < 0 {
		d = -d
	}
	if time.Duration(d)*time.Millisecond > v.opts.TTLTolerance {
		return fmt.Sprintf("expires at %d ms on the source, %d ms on the target (%d ms apart)", a, b, d)
	}
	return ""
}

var sizeCmd = map[string]string{
	"string": "STRLEN", "list": "LLEN", "set": "SCARD", "hash": "HLEN", "zset": "ZCARD", "stream": "XLEN",
}

const bigString = 1 << 20

// compareValues compares the values of keys[same] (same type on both
// sides), setting diffs[i] for those that differ (a value difference
// replaces a TTL one).
func (v *verifier) compareValues(ctx context.Context, db int, src, dst redis.UniversalClient, keys []string, m []meta, same []int, diffs []*Diff) error {
	cl := [2]redis.UniversalClient{src, dst}
	set := func(i int, kind Kind, detail string) {
		diffs[i] = &Diff{DB: db, Key: keys[i], Kind: kind, Detail: detail}
	}
	// Sizes.
	var sized []int
	for _, i := range same {
		if _, ok := sizeCmd[m[i].typ]; ok {
			sized = append(sized, i)
		}
	}
	var sizes [2][]int64
	err := both(func(s int) error {
		cmds, err := pipe(ctx, cl[s], func(p redis.Pipeliner) {
			for _, i := range sized {
				p.Do(ctx, sizeCmd[m[i].typ], keys[i])
			}
		})
		if err != nil {
			return err
		}
		sizes[s] = make([]int64, len(sized))
		for j, c := range cmds {
			n, err := c.(*redis.Cmd).Int64()
			if err != nil && err != redis.Nil {
				if isWrongType(err) {
					n = -1 // changed type meanwhile: differs now, re-checked later
				} else {
					return fmt.Errorf("verify: %s %q: %w", sizeCmd[m[sized[j]].typ], keys[sized[j]], err)
				}
			}
			sizes[s][j] = n
		}
		return nil
	})
	if err != nil {
		return err
	}
	var small, big []int
	for j, i := range sized {
		if sizes[0][j] != sizes[1][j] {
			set(i, Value, fmt.Sprintf("%s %d on the source, %d on the target", lenName(m[i].typ), sizes[0][j], sizes[1][j]))
			continue
		}
		switch {
		case m[i].typ == "stream":
			big = append(big, i)
		case m[i].typ == "string" && sizes[0][j] > bigString:
			big = append(big, i)
		case m[i].typ != "string" && sizes[0][j] > int64(v.opts.Chunk):
			big = append(big, i)
		default:
			small = append(small, i)
		}
	}
	// Small values: read whole, in one pipeline per side.
	if len(small) > 0 {
		var vals [2][]redis.Cmder
		err := both(func(s int) (err error) {
			vals[s], err = pipe(ctx, cl[s], func(p redis.Pipeliner) {
				for _, i := range small {
					k := keys[i]
					switch m[i].typ {
					case "string":
						p.Get(ctx, k)
					case "list":
						p.LRange(ctx, k, 0, -1)
					case "set":
						p.SMembers(ctx, k)
					case "hash":
						p.HGetAll(ctx, k)
					case "zset":
						p.ZRangeWithScores(ctx, k, 0, -1)
					}
				}
			})
			return err
		})
		if err != nil {
			return err
		}
		for j, i := range small {
			a, b := vals[0][j], vals[1][j]
			if ea, eb := a.Err(), b.Err(); (ea != nil && ea != redis.Nil) || (eb != nil && eb != redis.Nil) {
				if isWrongType(ea) || isWrongType(eb) {
					set(i, Type, "type changed during the compare")
					continue
				}
				return fmt.Errorf("verify: reading %q: %v %v", keys[i], ea, eb)
			}
			if d := diffSmall(m[i].typ, a, b); d != "" {
				set(i, Value, d)
			}
		}
	}
	// Big keys, streams and other types: one at a time, in chunks.
	for _, i := range big {
		kind, d, err := v.compareBig(ctx, src, dst, keys[i], m[i].typ)
		if err != nil {
			if isWrongType(err) {
				set(i, Type, "type changed during the compare")
				continue
			}
			return err
		}
		if d != "" {
			set(i, kind, d)
		}
	}
	for _, i := range same {
		if _, ok := sizeCmd[m[i].typ]; ok {
			continue
		}
		// Module or unknown type: DUMP payloads.
		var dumps [2]string
		err := both(func(s int) error {
			d, err := cl[s].Dump(ctx, keys[i]).Result()
			if err != nil && err != redis.Nil {
				return fmt.Errorf("verify: DUMP %q: %w", keys[i], err)
			}
			dumps[s] = d
			return nil
		})
		if err != nil {
			return err
		}
		if dumps[0] != dumps[1] {
			set(i, Value, fmt.Sprintf("%s: DUMP payloads differ (%d and %d bytes)", m[i].typ, len(dumps[0]), len(dumps[1])))
		}
	}
	return nil
}

func isWrongType(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")
}

func lenName(typ string) string {
	switch typ {
	case "string":
		return "length"
	case "stream":
		return "XLEN"
	}
	return "cardinality"
}

// q quotes a value for a message, shortened.
func q(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "..."
	}
	return strconv.Quote(s)
}

func diffSmall(typ string, a, b redis.Cmder) string {
	switch typ {
	case "string":
		x, y := a.(*redis.StringCmd).Val(), b.(*redis.StringCmd).Val()
		if x != y {
			return fmt.Sprintf("string %s on the source, %s on the target", q(x), q(y))
		}
	case "list":
		return diffList(a.(*redis.StringSliceCmd).Val(), b.(*redis.StringSliceCmd).Val(), 0)
	case "set":
		x, y := a.(*redis.StringSliceCmd).Val(), b.(*redis.StringSliceCmd).Val()
		sort.Strings(x)
		sort.Strings(y)
		for j := range x {
			if j >= len(y) || x[j] != y[j] {
				return diffSetMembers(x, y)
			}
		}
		if len(x) != len(y) {
			return diffSetMembers(x, y)
		}
	case "hash":
		x, y := a.(*redis.MapStringStringCmd).Val(), b.(*redis.MapStringStringCmd).Val()
		for f, vx := range x {
			vy, ok := y[f]
			if !ok {
				return fmt.Sprintf("field %s missing on the target", q(f))
			}
			if vx != vy {
				return fmt.Sprintf("field %s: %s on the source, %s on the target", q(f), q(vx), q(vy))
			}
		}
		for f := range y {
			if _, ok := x[f]; !ok {
				return fmt.Sprintf("field %s only on the target", q(f))
			}
		}
	case "zset":
		return diffZ(a.(*redis.ZSliceCmd).Val(), b.(*redis.ZSliceCmd).Val(), 0)
	}
	return ""
}

func diffList(x, y []string, offset int64) string {
	for j := range x {
		if j >= len(y) {
			return fmt.Sprintf("list element %d missing on the target", offset+int64(j))
		}
		if x[j] != y[j] {
			return fmt.Sprintf("list element %d: %s on the source, %s on the target", offset+int64(j), q(x[j]), q(y[j]))
		}
	}
	if len(y) > len(x) {
		return fmt.Sprintf("list element %d only on the target", offset+int64(len(x)))
	}
	return ""
}

func diffSetMembers(x, y []string) string {
	ym := make(map[string]bool, len(y))
	for _, s := range y {
		ym[s] = true
	}
	for _, s := range x {
		if !ym[s] {
			return fmt.Sprintf("member %s missing on the target", q(s))
		}
	}
	xm := make(map[string]bool, len(x))
	for _, s := range x {
		xm[s] = true
	}
	for _, s := range y {
		if !xm[s] {
			return fmt.Sprintf("member %s only on the target", q(s))
		}
	}
	return "members differ"
}

func zmember(z redis.Z) string {
	switch m := z.Member.(type) {
	case string:
		return m
	case []byte:
		return string(m)
	}
	return fmt.Sprint(z.Member)
}

// diffZ compares zset ranges: members in order and scores bit for bit.
func diffZ(x, y []redis.Z, offset int64) string {
	for j := range x {
		if j >= len(y) {
			return fmt.Sprintf("zset rank %d missing on the target", offset+int64(j))
		}
		mx, my := zmember(x[j]), zmember(y[j])
		if mx != my {
			return fmt.Sprintf("zset rank %d: member %s on the source, %s on the target", offset+int64(j), q(mx), q(my))
		}
		if math.Float64bits(x[j].Score) != math.Float64bits(y[j].Score) {
			return fmt.Sprintf("zset member %s: score %s on the source, %s on the target", q(mx),
				strconv.FormatFloat(x[j].Score, 'g', -1, 64), strconv.FormatFloat(y[j].Score, 'g', -1, 64))
		}
	}
	if len(y) > len(x) {
		return fmt.Sprintf("zset rank %d only on the target", offset+int64(len(x)))
	}
	return ""
}

// compareBig compares one big key (or a stream) in chunks.
func (v *verifier) compareBig(ctx context.Context, src, dst redis.UniversalClient, key, typ string) (Kind, string, error) {
	cl := [2]redis.UniversalClient{src, dst}
	chunk := int64(v.opts.Chunk)
	switch typ {
	case "string":
		for off := int64(0); ; off += bigString {
			var parts [2]string
			err := both(func(s int) (err error) {
				parts[s], err = cl[s].GetRange(ctx, key, off, off+bigString-1).Result()
				return
			})
			if err != nil {
				return "", "", err
			}
			if parts[0] != parts[1] {
				return Value, fmt.Sprintf("string differs within bytes %d-%d", off, off+bigString-1), nil
			}
			if len(parts[0]) < bigString {
				return "", "", nil
			}
		}
	case "list":
		for off := int64(0); ; off += chunk {
			var parts [2][]string
			err := both(func(s int) (err error) {
				parts[s], err = cl[s].LRange(ctx, key, off, off+chunk-1).Result()
				return
			})
			if err != nil {
				return "", "", err
			}
			if d := diffList(parts[0], parts[1], off); d != "" {
				return Value, d, nil
			}
			if int64(len(parts[0])) < chunk {
				return "", "", nil
			}
		}
	case "zset":
		for off := int64(0); ; off += chunk {
			var parts [2][]redis.Z
			err := both(func(s int) (err error) {
				parts[s], err = cl[s].ZRangeWithScores(ctx, key, off, off+chunk-1).Result()
				return
			})
			if err != nil {
				return "", "", err
			}
			if d := diffZ(parts[0], parts[1], off); d != "" {
				return Value, d, nil
			}
			if int64(len(parts[0])) < chunk {
				return "", "", nil
			}
		}
	case "set":
		// Same cardinality (checked) and every source member on the target.
		var cursor uint64
		for {
			members, next, err := src.SScan(ctx, key, cursor, "", chunk).Result()
			if err != nil {
				return "", "", err
			}
			if len(members) > 0 {
				args := make([]any, len(members))
				for i, m := range members {
					args[i] = m
				}
				in, err := dst.SMIsMember(ctx, key, args...).Result()
				if err != nil {
					return "", "", err
				}
				for i, ok := range in {
					if !ok {
						return Value, fmt.Sprintf("member %s missing on the target", q(members[i])), nil
					}
				}
			}
			if next == 0 {
				return "", "", nil
			}
			cursor = next
		}
	case "hash":
		var cursor uint64
		for {
			kv, next, err := src.HScan(ctx, key, cursor, "", chunk).Result()
			if err != nil {
				return "", "", err
			}
			if len(kv) > 0 {
				fields := make([]string, 0, len(kv)/2)
				for i := 0; i+1 < len(kv); i += 2 {
					fields = append(fields, kv[i])
				}
				vals, err := dst.HMGet(ctx, key, fields...).Result()
				if err != nil {
					return "", "", err
				}
				for i, f := range fields {
					s, ok := vals[i].(string)
					if !ok {
						return Value, fmt.Sprintf("field %s missing on the target", q(f)), nil
					}
					if s != kv[2*i+1] {
						return Value, fmt.Sprintf("field %s: %s on the source, %s on the target", q(f), q(kv[2*i+1]), q(s)), nil
					}
				}
			}
			if next == 0 {
				return "", "", nil
			}
			cursor = next
		}
	case "stream":
		return v.compareStream(ctx, src, dst, key)
	}
	return "", "", nil
}

// equalReply compares two raw replies deeply.
func equalReply(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalReply(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[any]any:
		y, ok := b.(map[any]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, vx := range x {
			vy, ok := y[k]
			if !ok || !equalReply(vx, vy) {
				return false
			}
		}
		return true
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	default:
		return a == b
	}
}

// fields turns a RESP2 flat name/value array or a RESP3 map into a map.
func fields(v any) map[string]any {
	out := map[string]any{}
	switch x := v.(type) {
	case []any:
		for i := 0; i+1 < len(x); i += 2 {
			if k, ok := x[i].(string); ok {
				out[k] = x[i+1]
			}
		}
	case map[any]any:
		for k, val := range x {
			if ks, ok := k.(string); ok {
				out[ks] = val
			}
		}
	}
	return out
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return "(nil)"
	case string:
		return x
	case []byte:
		return string(x)
	default:
		return fmt.Sprint(x)
	}
}

func list(v any) []any {
	x, _ := v.([]any)
	return x
}

// compareStream compares a stream's entries (in chunks), its metadata, its
// consumer groups, their pending entries (in chunks) and consumers.
func (v *verifier) compareStream(ctx context.Context, src, dst redis.UniversalClient, key string) (Kind, string, error) {
	cl := [2]redis.UniversalClient{src, dst}
	chunk := v.opts.Chunk
	// Entries.
	start := "-"
	for {
		var parts [2][]any
		err := both(func(s int) error {
			r, err := cl[s].Do(ctx, "XRANGE", key, start, "+", "COUNT", chunk).Result()
			if err != nil && err != redis.Nil {
				return fmt.Errorf("verify: XRANGE %q: %w", key, err)
			}
			parts[s] = list(r)
			return nil
		})
		if err != nil {
			return "", "", err
		}
		for j := range parts[0] {
			if j >= len(parts[1]) {
				return Value, fmt.Sprintf("stream entry %s missing on the target", str(list(parts[0][j])[0])), nil
			}
			if !equalReply(parts[0][j], parts[1][j]) {
				return Value, fmt.Sprintf("stream entry %s on the source, %s on the target differ", str(list(parts[0][j])[0]), str(list(parts[1][j])[0])), nil
			}
		}
		if len(parts[1]) > len(parts[0]) {
			return Value, fmt.Sprintf("stream entry %s only on the target", str(list(parts[1][len(parts[0])])[0])), nil
		}
		if len(parts[0]) < chunk {
			break
		}
		start = "(" + str(list(parts[0][len(parts[0])-1])[0])
	}
	// Metadata, groups and consumers.
	var infos [2]map[string]any
	err := both(func(s int) error {
		r, err := cl[s].Do(ctx, "XINFO", "STREAM", key, "FULL", "COUNT", 1).Result()
		if err != nil {
			return fmt.Errorf("verify: XINFO STREAM %q FULL: %w", key, err)
		}
		infos[s] = fields(r)
		return nil
	})
	if err != nil {
		return "", "", err
	}
	for _, f := range []string{"length", "last-generated-id", "max-deleted-entry-id", "entries-added", "recorded-first-entry-id"} {
		if a, b := str(infos[0][f]), str(infos[1][f]); a != b {
			return Stream, fmt.Sprintf("%s %s on the source, %s on the target", f, a, b), nil
		}
	}
	ga, gb := list(infos[0]["groups"]), list(infos[1]["groups"])
	groups := func(l []any) (map[string]map[string]any, []string) {
		m := map[string]map[string]any{}
		var names []string
		for _, g := range l {
			gf := fields(g)
			n := str(gf["name"])
			m[n] = gf
			names = append(names, n)
		}
		sort.Strings(names)
		return m, names
	}
	gma, namesA := groups(ga)
	gmb, namesB := groups(gb)
	for _, n := range namesA {
		if _, ok := gmb[n]; !ok {
			return Stream, fmt.Sprintf("consumer group %s missing on the target", q(n)), nil
		}
	}
	for _, n := range namesB {
		if _, ok := gma[n]; !ok {
			return Stream, fmt.Sprintf("consumer group %s only on the target", q(n)), nil
		}
	}
	for _, n := range namesA {
		a, b := gma[n], gmb[n]
		for _, f := range []string{"last-delivered-id", "entries-read", "lag", "pel-count"} {
			if x, y := str(a[f]), str(b[f]); x != y {
				return Stream, fmt.Sprintf("group %s: %s %s on the source, %s on the target", q(n), f, x, y), nil
			}
		}
		consumers := func(l []any) map[string]string {
			m := map[string]string{}
			for _, c := range l {
				cf := fields(c)
				m[str(cf["name"])] = str(cf["pel-count"])
			}
			return m
		}
		ca, cb := consumers(list(a["consumers"])), consumers(list(b["consumers"]))
		for name, pa := range ca {
			pb, ok := cb[name]
			if !ok {
				return Stream, fmt.Sprintf("group %s: consumer %s missing on the target", q(n), q(name)), nil
			}
			if pa != pb {
				return Stream, fmt.Sprintf("group %s: consumer %s has %s pending entries on the source, %s on the target", q(n), q(name), pa, pb), nil
			}
		}
		for name := range cb {
			if _, ok := ca[name]; !ok {
				return Stream, fmt.Sprintf("group %s: consumer %s only on the target", q(n), q(name)), nil
			}
		}
		if d, err := v.comparePEL(ctx, cl, key, n); err != nil || d != "" {
			return Stream, d, err
		}
	}
	return "", "", nil
}

// comparePEL compares a group's pending entries in chunks: id, consumer and
// delivery count (idle times naturally differ).
func (v *verifier) comparePEL(ctx context.Context, cl [2]redis.UniversalClient, key, group string) (string, error) {
	start := "-"
	for {
		var parts [2][]any
		err := both(func(s int) error {
			r, err := cl[s].Do(ctx, "XPENDING", key, group, start, "+", v.opts.Chunk).Result()
			if err != nil && err != redis.Nil {
				return fmt.Errorf("verify: XPENDING %q %q: %w", key, group, err)
			}
			parts[s] = list(r)
			return nil
		})
		if err != nil {
			return "", err
		}
		for j := range parts[0] {
			a := list(parts[0][j])
			if j >= len(parts[1]) {
				return fmt.Sprintf("group %s: pending entry %s missing on the target", q(group), str(a[0])), nil
			}
			b := list(parts[1][j])
			if len(a) < 4 || len(b) < 4 {
				return "", fmt.Errorf("verify: XPENDING %q %q: unexpected reply", key, group)
			}
			if str(a[0]) != str(b[0]) {
				return fmt.Sprintf("group %s: pending entry %s on the source, %s on the target", q(group), str(a[0]), str(b[0])), nil
			}
			if str(a[1]) != str(b[1]) {
				return fmt.Sprintf("group %s: pending entry %s owned by consumer %s on the source, %s on the target", q(group), str(a[0]), q(str(a[1])), q(str(b[1]))), nil
			}
			if str(a[3]) != str(b[3]) {
				return fmt.Sprintf("group %s: pending entry %s delivered %s times on the source, %s on the target", q(group), str(a[0]), str(a[3]), str(b[3])), nil
			}
		}
		if len(parts[1]) > len(parts[0]) {
			return fmt.Sprintf("group %s: pending entry %s only on the target", q(group), str(list(parts[1][len(parts[0])])[0])), nil
		}
		if len(parts[0]) < v.opts.Chunk {
			return "", nil
		}
		start = "(" + str(list(parts[0][len(parts[0])-1])[0])
	}
}
