// Package verify compares a source and a target MySQL-family database
// (MySQL, MariaDB, and servers that speak the protocol) table by table and
// says, with numbers, whether they are equal.
//
// # Method
//
// Tables with a primary key (or a unique key on NOT NULL columns) are
// compared in chunks of the source's key order: the source's key is walked
// ChunkRows at a time (ORDER BY key LIMIT 1 OFFSET n-1 after the last
// bound), and for every key range (lo, hi] both sides compute
//
//	SELECT COUNT(*), BIT_XOR(h) FROM t WHERE key > lo AND key <= hi
//
// where h is a 64-bit row hash (see below). Composite keys use the
// row-value comparison (a,b) > (x,y), written out as
// a > x OR (a = x AND b > y) because MariaDB's range optimizer does not use
// an index for row constructors. The first range has no lower bound and the
// last none above, so rows the target has outside the source's key span are
// seen too. Chunks whose count or hash differ are re-read row by row (key and
// 128-bit row hash, on both sides) to name exactly which keys are missing
// from the target, extra on it, or different.
//
// Tables without such a key are compared as multisets: COUNT(*) and SUM(h)
// of the whole table (a sum, not a XOR, so that duplicate rows do not cancel
// out); when those differ, both sides are grouped by their 128-bit row hash
// with counts, streamed in hash order and merged.
//
// # Row hash
//
// A row is serialized as the concatenation of one token per column, in the
// source's column order. Numbers and temporal values, whose text never holds
// a comma, give v ',' (NULL: N,); strings, whose bytes may be anything, are
// length-prefixed: LENGTH(v) ':' v (NULL: N). Knowing the column types, the
// serialization reads back one way only, so two rows serialize alike only if
// every column does: NULL and the empty string differ (N versus 0:), and no value can bleed
// into its neighbour (unlike CONCAT_WS('#', ...), where ('a#','b') and
// ('a','#b') are alike). v is chosen per type so that equal values give
// equal bytes and different values different bytes:
//
//   - integers, DECIMAL, YEAR: their decimal text (DECIMAL with its full
//     scale, so 1.000000000000000000000000000001 keeps its last digit);
//   - DOUBLE: the server's text, which is the shortest text that reads back
//     as the same double (MariaDB, MySQL 8), hence one text per double;
//   - FLOAT: widened to DOUBLE (exact: f * 1e0) and printed likewise,
//     because a FLOAT's own text has 6 digits and would hide its last bits;
//   - BIT: CAST(b AS UNSIGNED);
//   - DATE, DATETIME, TIMESTAMP, TIME: their text with the column's
//     fractional digits, on sessions with time_zone='+00:00' on both sides,
//     so TIMESTAMPs compare as instants whatever the servers' zones; zero
//     dates print as such (an empty sql_mode on both sessions);
//   - CHAR, VARCHAR, ENUM, SET and other text: the value's bytes in utf8mb4
//     (converted when the column has another character set), as a binary
//     string: compared byte for byte, not by collation ('a' and 'A' differ,
//     and so do 'a' and 'a ');
//   - BINARY, VARBINARY and spatial values: their raw bytes (the whole
//     serialization is a binary string, so no character-set conversion
//     touches them, which is what HEX() would otherwise be needed for);
//   - TEXT, BLOB and JSON (MariaDB's JSON is text: its exact text is
//     compared): LENGTH and MD5 of the value, which keeps the row's
//     serialization within max_allowed_packet whatever the column sizes.
//
// h is the first 64 bits of MD5(serialization). MD5 rather than CRC32: a
// BIT_XOR of CRC32s is linear over GF(2), so for example two rows of the
// same length swapping a value cancel out in the XOR; MD5 is not linear,
// and 64 bits with the count leave a chance of about 2^-64 that a differing
// chunk hashes alike. Row-level reads compare the full 128-bit MD5.
//
// # Rows that change during the compare
//
// The compare runs in rounds: round 1 checks every chunk; chunks that differ
// are checked again in the next round after RecheckDelay (a live sync may
// have caught up), and only chunks still different in the last round are
// read row by row and reported.
//
// Connections: every query runs on a connection of its own taken from the
// given *sql.DB, with time_zone, sql_mode and the character set set for the
// compare; those connections are closed afterwards, never returned to the
// pool with changed session settings.
package verify

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Table names a table on both sides. DstDB and DstName default to SrcDB and
// SrcName.
type Table struct {
	SrcDB, SrcName string
	DstDB, DstName string
}

// Options tunes a comparison. Zero values take the defaults.
type Options struct {
	// Tables to compare. Empty: every base table of Databases on either
	// side, by the same names.
	Tables []Table
	// Databases whose tables are compared when Tables is empty; empty: every
	// database of either side except the system ones (mysql,
	// information_schema, performance_schema, sys).
	Databases []string
	// ChunkRows is the number of source rows per checksum chunk (default
	// 10000).
	ChunkRows int
	// Rounds of comparison (default 3): round 1 checks every chunk, later
	// rounds re-check the chunks still different.
	Rounds int
	// RecheckDelay is the pause before each re-check round (default 1s).
	RecheckDelay time.Duration
	// Parallel is the number of chunks compared at a time (default 4); each
	// holds one connection to each side (the source one more, for the key
	// walk). It is lowered to fit the pools' SetMaxOpenConns.
	Parallel int
	// SampleLimit bounds Report.Samples (default 100; negative: none).
	SampleLimit int
	// OnProgress, when set, is called as round 1 advances with the source
	// rows checked so far and the estimated total (information_schema
	// TABLE_ROWS, raised to done when the estimate was short).
	OnProgress func(done, total int64)
	// OnRound, when set, is called after each round with the number of
	// chunks still different.
	OnRound func(round, pending int)
}

func (o *Options) defaults() {
	if o.ChunkRows <= 0 {
		o.ChunkRows = 10000
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.RecheckDelay <= 0 {
		o.RecheckDelay = time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.SampleLimit == 0 {
		o.SampleLimit = 100
	}
}

// Kind classifies a difference.
type Kind string

const (
	Missing   Kind = "missing"   // on the source, not on the target
	Extra     Kind = "extra"     // on the target only
	Different Kind = "different" // same key, different values
)

// Diff is one row that differs. Key is the row's key as "col=value, ..."
// (binary values as 0x...); for a key-less table it is the row itself,
// "(v1, v2, ...)", and Detail gives its count on each side.
type Diff struct {
	Table  string // db.table of the source
	Key    string
	Kind   Kind
	Detail string
}

// TableReport holds the counts of one table.
type TableReport struct {
	Rows      int64 // source rows checked (round 1)
	Missing   int64
	Extra     int64
	Different int64
	// Chunks is the number of key ranges checked in round 1 (1 for a
	// key-less table); ChunksDiffering those still different at the end.
	Chunks          int64
	ChunksDiffering int64
	// Key is the key the table was chunked by; nil: compared as a multiset.
	Key []string
	// Schema lists differences of shape: a table or columns absent on one
	// side (rows are compared on the columns both sides have).
	Schema []string
}

// Report is the outcome of Compare. Missing, Extra and Different count rows
// still different after the last round.
type Report struct {
	Tables    int
	Rows      int64 // source rows checked
	Missing   int64
	Extra     int64
	Different int64
	// SchemaDiffs counts the tables whose shape differs (TableReport.Schema).
	SchemaDiffs int64
	ByTable     map[string]*TableReport // by db.table of the source
	Samples     []Diff
	Rounds      int // rounds run
	Duration    time.Duration
}

// Equal reports whether nothing differs.
func (r *Report) Equal() bool {
	return r.Missing == 0 && r.Extra == 0 && r.Different == 0 && r.SchemaDiffs == 0
}

func (r *Report) String() string {
	s := fmt.Sprintf("compared %d table(s), %d rows in %d round(s) in %s: %d missing, %d extra, %d different",
		r.Tables, r.Rows, r.Rounds, r.Duration.Round(time.Millisecond), r.Missing, r.Extra, r.Different)
	if r.SchemaDiffs > 0 {
		s += fmt.Sprintf(", %d table(s) of different shape", r.SchemaDiffs)
	}
	return s
}

// session is a pair of connections, one per side, with the compare's
// session settings.
type session struct {
	src, dst *sql.Conn
}

// sessionSQL makes values print alike on both sides: TIMESTAMPs in UTC, no
// sql_mode (zero dates read and compared as they are; no
// PAD_CHAR_TO_FULL_LENGTH, ANSI_QUOTES or NO_BACKSLASH_ESCAPES), strings in
// utf8mb4.
const sessionSQL = "SET NAMES utf8mb4, SESSION time_zone = '+00:00', SESSION sql_mode = ''"

func openConn(ctx context.Context, db *sql.DB, side string) (*sql.Conn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: connect to the %s: %w", side, err)
	}
	if _, err := c.ExecContext(ctx, sessionSQL); err != nil {
		discard(c)
		return nil, fmt.Errorf("verify: session settings on the %s: %w", side, err)
	}
	return c, nil
}

// discard closes c's underlying connection instead of returning it, with
// the compare's session settings, to the caller's pool.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}

type verifier struct {
	opts     Options
	src, dst *sql.DB
	tables   []*tableInfo
	sessions []*session
	walk     *sql.Conn // the source connection that walks keys

	done, total atomic.Int64
	progressMu  sync.Mutex

	mu      sync.Mutex
	pending []*chunk
	found   []*found
}

// found is one reported difference, with what is needed to detail it.
type found struct {
	Diff
	t   *tableInfo
	key []any // key values (keyed tables)
}

// Compare compares src and dst. See the package documentation.
func Compare(ctx context.Context, src, dst *sql.DB, opts Options) (*Report, error) {
	opts.defaults()
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v := &verifier{opts: opts, src: src, dst: dst}
	defer v.close()

	walk, err := openConn(ctx, src, "source")
	if err != nil {
		return nil, err
	}
	v.walk = walk
	dconn, err := openConn(ctx, dst, "target")
	if err != nil {
		return nil, err
	}
	tables, err := v.resolveTables(ctx, walk, dconn)
	if err != nil {
		discard(dconn)
		return nil, err
	}
	rep := &Report{ByTable: map[string]*TableReport{}, Tables: len(tables)}
	for _, t := range tables {
		if err := t.load(ctx, walk, dconn); err != nil {
			discard(dconn)
			return nil, err
		}
		rep.ByTable[t.name] = t.rep
		v.total.Add(t.estRows)
	}
	v.tables = tables

	// One session per worker, within the pools' connection limits.
	par := opts.Parallel
	if m := src.Stats().MaxOpenConnections; m > 0 && par > m-1 {
		if m < 2 {
			return nil, fmt.Errorf("verify: the source pool allows %d connection(s); the compare needs 2 (one walks the keys)", m)
		}
		par = m - 1
	}
	if m := dst.Stats().MaxOpenConnections; m > 0 && par > m {
		par = m
	}
	v.sessions = append(v.sessions, &session{dst: dconn})
	for i := 0; i < par; i++ {
		if i > 0 {
			d, err := openConn(ctx, dst, "target")
			if err != nil {
				return nil, err
			}
			v.sessions = append(v.sessions, &session{dst: d})
		}
		s, err := openConn(ctx, src, "source")
		if err != nil {
			return nil, err
		}
		v.sessions[i].src = s
	}

	// Round 1: every chunk of every table.
	if err := v.round(ctx, 1, v.walkAll); err != nil {
		return nil, err
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
		pending := v.pending
		v.pending = nil
		err := v.round(ctx, round, func(ctx context.Context, out chan<- *chunk) error {
			for _, c := range pending {
				select {
				case out <- c:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		rep.Rounds = round
		if opts.OnRound != nil {
			opts.OnRound(round, len(v.pending))
		}
	}
	if opts.OnProgress != nil {
		d := v.done.Load()
		opts.OnProgress(d, d)
	}

	// Counts and samples.
	sort.Slice(v.found, func(i, j int) bool {
		a, b := v.found[i], v.found[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Key < b.Key
	})
	for _, t := range tables {
		rep.Rows += t.rep.Rows
		rep.Missing += t.rep.Missing
		rep.Extra += t.rep.Extra
		rep.Different += t.rep.Different
		if len(t.rep.Schema) > 0 {
			rep.SchemaDiffs++
		}
	}
	if opts.SampleLimit > 0 {
		for _, f := range v.found {
			if len(rep.Samples) >= opts.SampleLimit {
				break
			}
			if f.Kind == Different && f.key != nil {
				f.Detail = v.sessions[0].columnDiff(ctx, f.t, f.key)
			}
			rep.Samples = append(rep.Samples, f.Diff)
		}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func (v *verifier) close() {
	if v.walk != nil {
		discard(v.walk)
	}
	for _, s := range v.sessions {
		if s.src != nil {
			discard(s.src)
		}
		if s.dst != nil {
			discard(s.dst)
		}
	}
}

// round feeds the chunks produced by feed to one worker per session; the
// last round reads differing chunks row by row.
func (v *verifier) round(ctx context.Context, round int, feed func(context.Context, chan<- *chunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	final := round >= v.opts.Rounds
	ch := make(chan *chunk, 2*len(v.sessions))
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	fail := func(err error) {
		errMu.Lock()
		if first == nil {
			first = err
		}
		errMu.Unlock()
		cancel()
	}
	for _, s := range v.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range ch {
				if ctx.Err() != nil {
					continue
				}
				if err := v.check(ctx, s, c, round, final); err != nil {
					fail(err)
				}
			}
		}()
	}
	err := feed(ctx, ch)
	close(ch)
	wg.Wait()
	if err != nil && first == nil && !errors.Is(err, context.Canceled) {
		first = err
	}
	if first == nil && err != nil {
		first = err
	}
	return first
}

// check compares one chunk; a chunk that differs is queued for the next
// round, or read row by row in the last one.
func (v *verifier) check(ctx context.Context, s *session, c *chunk, round int, final bool) error {
	same, srcRows, err := s.checksum(ctx, c)
	if err != nil {
		return err
	}
	if round == 1 {
		v.mu.Lock()
		c.t.rep.Rows += srcRows
		v.mu.Unlock()
		v.progress(srcRows)
	}
	if same {
		return nil
	}
	if !final {
		v.mu.Lock()
		v.pending = append(v.pending, c)
		v.mu.Unlock()
		return nil
	}
	var diffs []*diffRec
	if c.t.key == nil {
		diffs, err = s.multisetDiff(ctx, c.t, v.opts.SampleLimit)
	} else {
		diffs, err = s.rowDiff(ctx, c)
	}
	if err != nil {
		return err
	}
	if len(diffs) == 0 {
		return nil // changed back between the checksum and the read
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	c.t.rep.ChunksDiffering++
	for _, d := range diffs {
		n := int64(1)
		if d.count > 0 {
			n = d.count
		}
		switch d.Kind {
		case Missing:
			c.t.rep.Missing += n
		case Extra:
			c.t.rep.Extra += n
		default:
			c.t.rep.Different += n
		}
		// Keep only what the samples can use: memory stays bounded when
		// a whole table is missing.
		if v.opts.SampleLimit > 0 && len(v.found) < 4*v.opts.SampleLimit+1000 {
			v.found = append(v.found, &d.found)
		}
	}
	return nil
}

func (v *verifier) progress(n int64) {
	done := v.done.Add(n)
	if v.opts.OnProgress == nil {
		return
	}
	v.progressMu.Lock()
	defer v.progressMu.Unlock()
	total := v.total.Load()
	if total < done {
		total = done
	}
	v.opts.OnProgress(done, total)
}

// walkAll walks every table's key on the source and emits its chunks.
func (v *verifier) walkAll(ctx context.Context, out chan<- *chunk) error {
	for _, t := range v.tables {
		if err := v.walkTable(ctx, t, out); err != nil {
			return err
		}
	}
	return nil
}

func (v *verifier) walkTable(ctx context.Context, t *tableInfo, out chan<- *chunk) error {
	emit := func(c *chunk) error {
		v.mu.Lock()
		t.rep.Chunks++
		v.mu.Unlock()
		select {
		case out <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if t.key == nil || !t.srcExists || !t.dstExists {
		return emit(&chunk{t: t})
	}
	var lo []any
	seen := map[string]bool{}
	for {
		hi, err := t.boundary(ctx, v.walk, lo, v.opts.ChunkRows)
		if err != nil {
			return err
		}
		if hi != nil {
			// Bounds must advance; if a key type's comparison disagrees
			// with its order, end with the open range, which covers the
			// rest whatever the order (chunks may then overlap, never
			// leave a gap).
			id := keyID(hi)
			if seen[id] {
				hi = nil
			}
			seen[id] = true
		}
		if err := emit(&chunk{t: t, lo: lo, hi: hi}); err != nil {
			return err
		}
		if hi == nil {
			return nil
		}
		lo = hi
	}
}

// resolveTables lists the tables to compare.
func (v *verifier) resolveTables(ctx context.Context, src, dst *sql.Conn) ([]*tableInfo, error) {
	var out []*tableInfo
	if len(v.opts.Tables) > 0 {
		for _, t := range v.opts.Tables {
			if t.DstDB == "" {
				t.DstDB = t.SrcDB
			}
			if t.DstName == "" {
				t.DstName = t.SrcName
			}
			if t.SrcDB == "" || t.SrcName == "" {
				return nil, fmt.Errorf("verify: a table needs SrcDB and SrcName (got %+v)", t)
			}
			out = append(out, newTableInfo(t))
		}
		return out, nil
	}
	dbs := v.opts.Databases
	if len(dbs) == 0 {
		set := map[string]bool{}
		for _, c := range []*sql.Conn{src, dst} {
			names, err := userDatabases(ctx, c)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				set[n] = true
			}
		}
		for n := range set {
			dbs = append(dbs, n)
		}
		sort.Strings(dbs)
	}
	for _, db := range dbs {
		set := map[string]bool{}
		for _, c := range []*sql.Conn{src, dst} {
			names, err := baseTables(ctx, c, db)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				set[n] = true
			}
		}
		names := make([]string, 0, len(set))
		for n := range set {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, newTableInfo(Table{SrcDB: db, SrcName: n, DstDB: db, DstName: n}))
		}
	}
	return out, nil
}

var systemDBs = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

func userDatabases(ctx context.Context, c *sql.Conn) ([]string, error) {
	rows, err := c.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
	if err != nil {
		return nil, fmt.Errorf("verify: list databases: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		if !systemDBs[strings.ToLower(n)] {
			out = append(out, n)
		}
	}
	return out, rows.Err()
}

func baseTables(ctx context.Context, c *sql.Conn, db string) ([]string, error) {
	rows, err := c.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')", db)
	if err != nil {
		return nil, fmt.Errorf("verify: list the tables of %s: %w", db, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
