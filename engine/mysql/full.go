package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymigrate/ferry"
)

// The full copy and its resume
//
// A fresh full copy takes one consistent snapshot: FLUSH TABLES WITH READ
// LOCK, N connections each START TRANSACTION WITH CONSISTENT SNAPSHOT, the
// binlog position of that instant (MariaDB: the Binlog_snapshot_file/_position
// status of a snapshot connection; MySQL: SHOW MASTER STATUS under the lock),
// UNLOCK TABLES. Every table is read in those transactions, split into key
// ranges of about ChunkRows rows (value ranges for an integer key,
// load_chunks.go) that N workers copy in parallel, each chunk streamed from
// its snapshot read into one LOAD DATA LOCAL INFILE ... REPLACE on the
// target (load_data.go; multi-row REPLACEs where the target refuses it).
// Plain secondary keys are dropped for the load and built per table once
// it is copied (load_index.go). The checkpoint holds that first position (Snapshot) and, per
// table, the key up to which every chunk is copied (UpTo: the contiguous
// prefix of finished chunks) or Done.
//
// A resumed full copy cannot reopen the old snapshot: it takes a new one at
// a later position P2 and copies what is left from there. This is correct
// because the incremental step always starts at the FIRST snapshot's
// position P1 and applies row changes idempotently with full row images
// (REPLACE of the after image, delete by key): for every key, the target
// ends at the state after the last change to that key after P1, or, if the
// key did not change after P1, at its snapshot value, which is the same in
// both snapshots. Rows of a partly copied chunk from the first snapshot are
// overwritten by the re-copy or fixed by the changes replayed from P1.
//
// Key-less tables are not idempotent under replay (their changes are applied
// as a multiset): an unfinished key-less table is emptied on the target and
// copied again whole under the new snapshot, and the checkpoint records that
// snapshot's position for it (Since): the incremental step skips that
// table's changes up to Since. Without an incremental step there is nothing
// to replay, so every unfinished table is emptied and copied again whole.
// Tables created on the source after P1 are not copied by a resumed full
// step: they arrive with their CREATE TABLE from the binlog.
type fullCheckpoint struct {
	Snapshot  pos                    `json:"snapshot"`
	Snapshots int                    `json:"snapshots"`
	Tables    map[string]*tableState `json:"tables"`
	Rows      int64                  `json:"rows"`
	Bytes     int64                  `json:"bytes"`
	Done      bool                   `json:"done,omitempty"`
}

type tableState struct {
	Done bool     `json:"done,omitempty"`
	UpTo []string `json:"upTo,omitempty"`
	Rows int64    `json:"rows"`
	// Since: the target's copy of this table already holds every change up
	// to this position (a key-less table copied again under a later snapshot).
	Since *pos `json:"since,omitempty"`
	// Deferred: secondary keys dropped on the target for the load, to
	// create once the table is copied (load_index.go).
	Deferred []string `json:"deferred,omitempty"`
}

// snapshot is a set of connections reading one consistent snapshot.
type snapshot struct {
	conns []*sql.Conn
	pos   pos
	fast  bool // lined up by FTWRL
}

func (s *snapshot) close() {
	for _, c := range s.conns {
		_, _ = c.ExecContext(context.Background(), "ROLLBACK")
		c.Close()
	}
}

func takeSnapshot(ctx context.Context, src *sql.DB, srv server, n int) (*snapshot, error) {
	s := &snapshot{}
	lock, err := src.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	_, _ = lock.ExecContext(ctx, "SET SESSION lock_wait_timeout = 30")
	locked := true
	if _, err := lock.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		if !srv.MariaDB {
			return nil, &ferry.Error{Code: ferry.EINVALID, Field: "source.username", Reason: "SOURCE_PRIVILEGES",
				Message: fmt.Sprintf("FLUSH TABLES WITH READ LOCK failed (%v): a consistent snapshot with its binlog position needs it on MySQL", err),
				Advice:  "GRANT RELOAD ON *.* to the source user"}
		}
		locked, n = false, 1 // MariaDB's snapshot status is exact for one connection
	}
	unlock := func() {
		if locked {
			_, _ = lock.ExecContext(context.Background(), "UNLOCK TABLES")
			locked = false
		}
	}
	defer unlock()
	for i := 0; i < n; i++ {
		c, err := src.Conn(ctx)
		if err != nil {
			s.close()
			return nil, err
		}
		s.conns = append(s.conns, c)
		if _, err := c.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
			s.close()
			return nil, err
		}
		if _, err := c.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
			s.close()
			return nil, fmt.Errorf("start snapshot: %w", err)
		}
	}
	if srv.MariaDB {
		rows, err := s.conns[0].QueryContext(ctx, "SHOW STATUS LIKE 'binlog_snapshot%'")
		if err != nil {
			s.close()
			return nil, fmt.Errorf("binlog snapshot position: %w", err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				s.close()
				return nil, err
			}
			switch strings.ToLower(k) {
			case "binlog_snapshot_file":
				s.pos.File = v
			case "binlog_snapshot_position":
				p, _ := strconv.ParseUint(v, 10, 32)
				s.pos.Pos = uint32(p)
			}
		}
		rows.Close()
		if s.pos.File == "" {
			s.close()
			return nil, &ferry.Error{Code: ferry.EINVALID, Field: "source", Reason: "BINLOG_OFF", Message: "the source writes no binary log: no snapshot position",
				Advice: "start the source with log_bin, binlog_format=ROW, binlog_row_image=FULL"}
		}
		var g sql.NullString
		if err := s.conns[0].QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", s.pos.File, s.pos.Pos).Scan(&g); err == nil {
			s.pos.GTID = g.String
		}
	} else {
		p, err := masterPos(ctx, src, srv)
		if err != nil {
			s.close()
			return nil, err
		}
		s.pos = p
	}
	s.fast = locked
	unlock()
	return s, nil
}

// keyPred builds "key > (vals)" (op ">") or "key <= (vals)" (op "<=") for
// a table's key, expanded so that the optimizer uses a range on the key.
func keyPred(t *table, op string, vals []any) (string, []any) {
	var ors []string
	var args []any
	n := len(t.Key)
	for i := 0; i < n; i++ {
		var ands []string
		for j := 0; j < i; j++ {
			c := &t.Cols[t.Key[j]]
			ands = append(ands, quote(c.Name)+" = "+param(c))
			args = append(args, vals[j])
		}
		c := &t.Cols[t.Key[i]]
		o := op
		if op == "<=" {
			o = "<"
			if i == n-1 {
				o = "<="
			}
		}
		ands = append(ands, quote(c.Name)+" "+o+" "+param(c))
		args = append(args, vals[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// param is a placeholder that compares like the column does.
func param(c *column) string {
	switch {
	case stringish(c) && c.Charset != "" && c.Collation != "":
		return "CONVERT(CAST(? AS BINARY) USING " + c.Charset + ") COLLATE " + c.Collation
	case stringish(c):
		return "CAST(? AS BINARY)"
	case c.DataType == "decimal":
		return "CAST(? AS DECIMAL(65,30))"
	}
	return "?"
}

func keyCols(t *table) string {
	var s []string
	for _, k := range t.Key {
		s = append(s, quote(t.Cols[k].Name))
	}
	return strings.Join(s, ", ")
}

func selectCols(t *table) string {
	var s []string
	for _, i := range t.written() {
		s = append(s, quote(t.Cols[i].Name))
	}
	return strings.Join(s, ", ")
}

func forceIndex(t *table) string {
	return " FORCE INDEX (" + quote(t.KeyName) + ")"
}

// tableRun is a table being copied.
type tableRun struct {
	t        *table
	st       *tableState
	lastSeq  int // set when the producer has emitted every chunk (-1 before)
	next     int // next seq not yet in the contiguous finished prefix
	finished map[int]chunkDone
	live     atomic.Int64 // rows copied in this run (for progress)
	spec     *loadSpec    // the LOAD DATA path (nil: multi-row REPLACEs)
	indexed  bool         // handed to the index builder
}

type chunkDone struct {
	hi   []any
	rows int64
}

type chunk struct {
	tr     *tableRun
	seq    int
	lo, hi []any // nil: unbounded
	whole  bool
}

type copier struct {
	e       *Engine
	m       *ferry.Migration
	rt      ferry.StepRuntime
	src     *sql.DB
	dst     *sql.DB
	srcSrv  server
	snap    *snapshot
	mu      sync.Mutex
	cp      *fullCheckpoint
	runs    []*tableRun
	rows    atomic.Int64 // rows copied in this run
	bytes   atomic.Int64
	limiter *limiter
	locks   []*sync.Mutex // one per snapshot connection
	// load: chunks go by LOAD DATA LOCAL INFILE (load_data.go), each
	// worker on its own target connection.
	load     bool
	dstMySQL bool        // the target is MySQL (not MariaDB)
	noBinlog bool        // the load's target sessions run with sql_log_bin = 0
	noLoad   atomic.Bool // the target refused a LOAD DATA LOCAL
	// idx takes the tables whose deferred indexes are to be built;
	// building is the table being indexed ("" when none).
	idx      chan *tableRun
	building atomic.Value
	pending  []*tableRun // copied tables whose indexes are still to build
}

func (e *Engine) full(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	cp, err := decodeJSON[fullCheckpoint](rt.Checkpoint())
	if err != nil {
		return err
	}
	if cp != nil && cp.Done {
		return nil
	}
	par := m.Options.Parallelism
	if par <= 0 {
		par = 4
	}
	src, err := openDB(&m.Source, false, par+1)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openDB(&m.Target, true, par)
	if err != nil {
		return err
	}
	defer dst.Close()
	srcSrv, err := detect(ctx, src)
	if err != nil {
		return unreachable("source", &m.Source, err)
	}
	if err := ensureMeta(ctx, dst); err != nil {
		return fmt.Errorf("target %s: %w", metaDB, err)
	}
	rt.Message("taking a consistent snapshot of the source")
	snap, err := takeSnapshot(ctx, src, srcSrv, par+1)
	if err != nil {
		return err
	}
	defer snap.close()
	all, err := listTables(ctx, src, f)
	if err != nil {
		return err
	}
	resume := cp != nil
	if !resume {
		cp = &fullCheckpoint{Snapshot: snap.pos, Tables: map[string]*tableState{}}
	}
	cp.Snapshots++
	c := &copier{e: e, m: m, rt: rt, src: src, dst: dst, srcSrv: srcSrv, snap: snap, cp: cp, limiter: newLimiter(m.Options.BandwidthLimitMB)}
	if err := c.loadSettings(ctx); err != nil {
		return err
	}
	for _, t := range all {
		if t.View {
			continue
		}
		st := cp.Tables[t.id()]
		if st == nil {
			if resume {
				continue // created after the first snapshot: arrives from the binlog
			}
			st = &tableState{}
			cp.Tables[t.id()] = st
		}
		if st.Done {
			if len(st.Deferred) > 0 {
				c.pending = append(c.pending, &tableRun{t: t, st: st, lastSeq: 0, next: 1, finished: map[int]chunkDone{}})
			}
			continue
		}
		// The table may be missing on the target (created on the source after
		// the schema step, or no schema step).
		if stmt, err := createTableSQL(ctx, src, t); err != nil {
			return err
		} else if _, err := createDatabases(ctx, src, dst, f, []*table{t}); err != nil {
			return err
		} else if _, err := dst.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create %s on the target: %w", t.dst(), err)
		}
		restart := !resume && m.Options.DropTarget && !m.Modes.Schema
		if resume && (t.keyless() || !m.Modes.Incremental) {
			restart = true
			st.UpTo, st.Rows = nil, 0
			if t.keyless() && m.Modes.Incremental {
				p := snap.pos
				st.Since = &p
			}
		}
		if restart {
			if _, err := dst.ExecContext(ctx, "TRUNCATE TABLE "+t.dst()); err != nil {
				return fmt.Errorf("empty %s on the target: %w", t.dst(), err)
			}
		}
		if !resume {
			defs, err := deferrableKeys(ctx, dst, t)
			if err != nil {
				return err
			}
			st.Deferred = defs
		}
		tr := &tableRun{t: t, st: st, lastSeq: -1, finished: map[int]chunkDone{}}
		if c.load {
			tr.spec = newLoadSpec(t, !t.keyless(), c.dstMySQL)
		}
		c.runs = append(c.runs, tr)
	}
	if err := c.save(ctx); err != nil {
		return err
	}
	if !resume {
		// Saved first: a copy killed from here on still builds them.
		for _, tr := range c.runs {
			if len(tr.st.Deferred) > 0 {
				if err := dropDeferred(ctx, dst, tr.t, tr.st.Deferred); err != nil {
					return err
				}
			}
		}
	}
	how := "lined up by FLUSH TABLES WITH READ LOCK"
	if !snap.fast {
		how = "one connection (no RELOAD privilege)"
	}
	rt.Logger().Info("full copy snapshot", "pos", snap.pos.String(), "gtid", snap.pos.GTID, "tables", len(c.runs), "resume", resume, "conns", len(snap.conns))
	rt.Message(fmt.Sprintf("snapshot at %s (%s, %s); copying %d tables", snap.pos, snap.pos.GTID, how, len(c.runs)))
	start := time.Now()
	if err := c.run(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	cp.Done = true
	c.mu.Unlock()
	if err := c.save(ctx); err != nil {
		return err
	}
	el := time.Since(start)
	rows := c.rows.Load()
	rate := float64(rows) / el.Seconds()
	rt.Progress(ferry.Counters{Done: cp.Rows, Total: cp.Rows, Bytes: cp.Bytes, Unit: "rows", RatePerSec: rate}, 100)
	rt.Message(fmt.Sprintf("full copy done: %d tables, %d rows (%.1f MB) in %s, %.0f rows/s, %s; snapshot %s", len(cp.Tables), cp.Rows, float64(cp.Bytes)/1e6, el.Round(time.Millisecond), rate, c.method(), cp.Snapshot))
	return nil
}

func (c *copier) save(ctx context.Context) error {
	c.mu.Lock()
	b, err := json.Marshal(c.cp)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.rt.Save(ctx, b)
}

func (c *copier) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := make(chan chunk, len(c.snap.conns))
	c.locks = make([]*sync.Mutex, len(c.snap.conns))
	for i := range c.locks {
		c.locks[i] = &sync.Mutex{}
	}
	c.building.Store("")
	c.idx = make(chan *tableRun, len(c.runs)+len(c.pending))
	for _, tr := range c.pending {
		tr.indexed = true
		c.idx <- tr
	}
	idxDone := make(chan error, 1)
	go func() {
		err := c.buildIndexes(ctx, c.idx)
		if err != nil {
			cancel(err)
			for range c.idx {
			}
		}
		idxDone <- err
	}()
	var wg sync.WaitGroup
	// The producer walks key ranges on the first snapshot connection; each
	// worker reads on its own snapshot connection.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(chunks)
		if err := c.produce(ctx, c.snap.conns[0], chunks); err != nil {
			cancel(err)
		}
	}()
	workers, locks := c.snap.conns[1:], c.locks[1:]
	if len(workers) == 0 {
		// One connection: the producer and the one worker take turns.
		workers, locks = c.snap.conns, c.locks
	}
	for i := range workers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var dconn *sql.Conn
			if c.load {
				var err error
				if dconn, err = c.loadConn(ctx); err != nil {
					cancel(err)
					return
				}
				defer dconn.Close()
			}
			for ch := range chunks {
				locks[i].Lock()
				err := c.copy(ctx, workers[i], dconn, ch)
				locks[i].Unlock()
				if err != nil {
					cancel(err)
					return
				}
			}
		}(i)
	}
	done := make(chan struct{})
	var repErr error
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.report(time.Since(start))
				if err := c.save(ctx); err != nil {
					repErr = err
					cancel(err)
					return
				}
			}
		}
	}()
	wg.Wait()
	if ctx.Err() == nil {
		c.mu.Lock()
		for _, tr := range c.runs {
			c.checkDone(tr)
		}
		c.mu.Unlock()
	}
	close(c.idx)
	idxErr := <-idxDone
	cause := context.Cause(ctx)
	cancel(nil)
	<-done
	if cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if repErr != nil {
		return repErr
	}
	if idxErr != nil {
		return idxErr
	}
	if cause != nil {
		return cause
	}
	c.report(0)
	return nil
}

func (c *copier) report(el time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var total, done int64
	var parts []string
	inRun := map[string]bool{}
	for _, tr := range c.runs {
		inRun[tr.t.id()] = true
		r := tr.st.Rows + tr.live.Load()
		est := tr.t.EstRows
		if tr.st.Done {
			parts = append(parts, fmt.Sprintf("%s done (%d rows)", tr.t.id(), tr.st.Rows))
			est = tr.st.Rows
		} else if r > 0 || tr.next > 0 {
			parts = append(parts, fmt.Sprintf("%s %d/~%d rows", tr.t.id(), r, est))
		}
		if est < r {
			est = r
		}
		total += est
		done += r
	}
	for id, st := range c.cp.Tables {
		if !inRun[id] {
			total += st.Rows
			done += st.Rows
		}
	}
	pct := 100.0
	if total > 0 {
		pct = float64(done) * 100 / float64(total)
	}
	if pct > 99.9 && !c.cp.Done {
		pct = 99.9
	}
	var rate float64
	if el > 0 {
		rate = float64(c.rows.Load()) / el.Seconds()
	}
	c.rt.Progress(ferry.Counters{Done: done, Total: total, Bytes: c.cp.Bytes, Unit: "rows", RatePerSec: rate}, pct)
	sort.Strings(parts)
	if len(parts) > 8 {
		parts = append(parts[:8], fmt.Sprintf("%d more", len(parts)-8))
	}
	if b, _ := c.building.Load().(string); b != "" {
		parts = append(parts, "creating the secondary indexes of "+b)
	}
	if len(parts) > 0 {
		c.rt.Message(fmt.Sprintf("copying %d tables from snapshot %s: %s; %.0f rows/s", len(c.runs), c.cp.Snapshot, strings.Join(parts, ", "), rate))
	}
}

// produce emits each table's chunks in key order.
func (c *copier) produce(ctx context.Context, conn *sql.Conn, out chan<- chunk) error {
	for _, tr := range c.runs {
		t := tr.t
		if t.keyless() {
			select {
			case out <- chunk{tr: tr, seq: 0, whole: true}:
			case <-ctx.Done():
				return ctx.Err()
			}
			c.mu.Lock()
			tr.lastSeq = 0
			c.checkDone(tr)
			c.mu.Unlock()
			continue
		}
		lo, err := decodeKey(tr.st.UpTo)
		if err != nil {
			return err
		}
		if last, ok, err := c.produceRanges(ctx, conn, tr, lo, out); err != nil {
			return err
		} else if ok {
			c.mu.Lock()
			tr.lastSeq = last
			c.checkDone(tr)
			c.mu.Unlock()
			continue
		}
		seq := 0
		for {
			q := "SELECT " + keyCols(t) + " FROM " + t.src() + forceIndex(t)
			var args []any
			if lo != nil {
				p, a := keyPred(t, ">", lo)
				q += " WHERE " + p
				args = a
			}
			q += " ORDER BY " + keyCols(t) + " LIMIT 1 OFFSET " + strconv.Itoa(c.e.chunkRows()-1)
			c.locks[0].Lock()
			hi, err := scanOne(ctx, conn, q, args, len(t.Key))
			c.locks[0].Unlock()
			if err != nil {
				return fmt.Errorf("split %s: %w", t.id(), err)
			}
			select {
			case out <- chunk{tr: tr, seq: seq, lo: lo, hi: hi}:
			case <-ctx.Done():
				return ctx.Err()
			}
			if hi == nil {
				break
			}
			lo = hi
			seq++
		}
		c.mu.Lock()
		tr.lastSeq = seq
		c.checkDone(tr)
		c.mu.Unlock()
	}
	return nil
}

// scanOne reads one row by the binary protocol; nil when there is none.
func scanOne(ctx context.Context, conn *sql.Conn, q string, args []any, n int) ([]any, error) {
	st, err := conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	return vals, rows.Err()
}

// copy copies one chunk from the snapshot to the target: by LOAD DATA
// when it can, else by multi-row REPLACEs.
func (c *copier) copy(ctx context.Context, conn, dconn *sql.Conn, ch chunk) error {
	if dconn != nil && ch.tr.spec != nil && !c.noLoad.Load() {
		n, err := c.loadChunk(ctx, conn, dconn, ch)
		if err == nil {
			ch.tr.live.Add(-n)
			c.finishChunk(ch, n)
			return nil
		}
		if !errors.Is(err, errNoLoadData) {
			return err
		}
	}
	return c.copyChunk(ctx, conn, ch)
}

// copyChunk copies one chunk from the snapshot to the target.
func (c *copier) copyChunk(ctx context.Context, conn *sql.Conn, ch chunk) error {
	t := ch.tr.t
	q := "SELECT " + selectCols(t) + " FROM " + t.src()
	var args []any
	var where []string
	if !ch.whole {
		q += forceIndex(t)
		if ch.lo != nil {
			p, a := keyPred(t, ">", ch.lo)
			where, args = append(where, p), append(args, a...)
		}
		if ch.hi != nil {
			p, a := keyPred(t, "<=", ch.hi)
			where, args = append(where, p), append(args, a...)
		}
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	st, err := conn.PrepareContext(ctx, q)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.id(), err)
	}
	defer st.Close()
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.id(), err)
	}
	defer rows.Close()
	w := newBatchWriter(c, t, !t.keyless())
	cols := t.written()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	mysqlJSON := !c.srcSrv.MariaDB
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read %s: %w", t.id(), err)
		}
		row := make([]any, len(cols))
		for i, ci := range cols {
			row[i] = fullArg(&t.Cols[ci], vals[i], mysqlJSON)
		}
		if err := w.add(ctx, row); err != nil {
			return err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", t.id(), err)
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	ch.tr.live.Add(-n)
	c.finishChunk(ch, n)
	return nil
}

func (c *copier) finishChunk(ch chunk, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tr := ch.tr
	tr.finished[ch.seq] = chunkDone{hi: ch.hi, rows: n}
	for {
		d, ok := tr.finished[tr.next]
		if !ok {
			break
		}
		delete(tr.finished, tr.next)
		tr.st.Rows += d.rows
		c.cp.Rows += d.rows
		if d.hi != nil {
			tr.st.UpTo = encodeKey(d.hi)
		}
		tr.next++
	}
	c.checkDone(tr)
}

// checkDone marks a table copied once all its chunks are (c.mu held) and
// hands it to the index builder.
func (c *copier) checkDone(tr *tableRun) {
	if tr.lastSeq >= 0 && tr.next > tr.lastSeq {
		tr.st.Done = true
		tr.st.UpTo = nil
	}
	if tr.st.Done && !tr.indexed && len(tr.st.Deferred) > 0 {
		tr.indexed = true
		c.idx <- tr
	}
}

// batchWriter writes rows of one table in multi-row statements.
type batchWriter struct {
	c       *copier
	t       *table
	verb    string
	prefix  string
	rows    [][]any
	bytes   int
	maxRows int
}

const maxBatchBytes = 2 << 20

func newBatchWriter(c *copier, t *table, replace bool) *batchWriter {
	verb := "INSERT INTO "
	if replace {
		verb = "REPLACE INTO "
	}
	var names []string
	for _, i := range t.written() {
		names = append(names, quote(t.Cols[i].Name))
	}
	return &batchWriter{c: c, t: t, verb: verb, prefix: verb + t.dst() + " (" + strings.Join(names, ", ") + ") VALUES ", maxRows: c.e.batchRows()}
}

func (w *batchWriter) add(ctx context.Context, row []any) error {
	w.rows = append(w.rows, row)
	for _, v := range row {
		w.bytes += argBytes(v)
	}
	if len(w.rows) >= w.maxRows || w.bytes >= maxBatchBytes {
		return w.flush(ctx)
	}
	return nil
}

func (w *batchWriter) flush(ctx context.Context) error {
	if len(w.rows) == 0 {
		return nil
	}
	q, args := multiRow(w.prefix, w.rows)
	if _, err := w.c.dst.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("write %s: %w", w.t.dst(), err)
	}
	n := int64(len(w.rows))
	w.c.rows.Add(n)
	w.c.bytes.Add(int64(w.bytes))
	w.c.mu.Lock()
	w.c.cp.Bytes += int64(w.bytes)
	w.c.mu.Unlock()
	for _, tr := range w.c.runs {
		if tr.t == w.t {
			tr.live.Add(n)
		}
	}
	w.c.limiter.wait(ctx, w.bytes)
	w.rows, w.bytes = w.rows[:0], 0
	return nil
}

// multiRow builds "prefix (?,?),(?,?)" with its arguments.
func multiRow(prefix string, rows [][]any) (string, []any) {
	var sb strings.Builder
	sb.Grow(len(prefix) + len(rows)*len(rows[0])*2 + len(rows)*3)
	sb.WriteString(prefix)
	args := make([]any, 0, len(rows)*len(rows[0]))
	for i, r := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for j := range r {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteByte('?')
		}
		sb.WriteByte(')')
		args = append(args, r...)
	}
	return sb.String(), args
}

// limiter bounds the bytes written per second (Options.BandwidthLimitMB).
type limiter struct {
	perSec float64
	mu     sync.Mutex
	start  time.Time
	sent   float64
}

func newLimiter(mb int) *limiter {
	if mb <= 0 {
		return nil
	}
	return &limiter{perSec: float64(mb) * 1e6, start: time.Now()}
}

func (l *limiter) wait(ctx context.Context, n int) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.sent += float64(n)
	due := l.start.Add(time.Duration(l.sent / l.perSec * float64(time.Second)))
	l.mu.Unlock()
	if d := time.Until(due); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
}
