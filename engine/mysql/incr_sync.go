package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	gomysqlpkg "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferrymigrate/ferry"
)

// syncer is one run of the incremental step.
//
// The same code runs both directions: forward (incremental: the source's
// binlog applied to the target) and reverse (reverse_incremental: the
// target's binlog applied to the source). In the syncer, "src" is always
// the side whose binlog is read and "dst" the side written to.
//
// One goroutine reads the stream, cuts it into source transactions and
// dispatches them to the apply workers (apply_sched.go, apply_workers.go);
// it follows their completion to advance the low watermark, the position
// it checkpoints.
type syncer struct {
	e       *Engine
	m       *ferry.Migration
	rt      ferry.StepRuntime
	log     *slog.Logger
	f       *filter
	ep      *ferry.Endpoint // the endpoint whose binlog is read
	reverse bool
	src     *sql.DB
	dst     *sql.DB
	srcSrv  server
	cp      *incrCheckpoint
	tables  map[string]*table // by read-side db.table; nil entries: not moved
	uniq    map[*table][][]int
	workers int
	batch   int
	json    bool // the read side is MySQL (JSON values come as text)
	side    string

	// loop guard: markerID names this direction's marker row and DDL tag;
	// guardID the other direction's, whose transactions and DDL are skipped.
	markerID, guardID string
	guard             bool   // write the loop guard's marks
	skipTx            bool   // the open transaction is the other direction's
	guardThread       uint32 // the connection of the other direction's DDL
	txOps             int    // row changes of the open source transaction staged

	// stream state
	file     string
	readPos  pos  // end of the last event read
	inTx     bool // inside a source transaction
	lastGTID string
	gtid     gtidPos // MariaDB: the GTID position after the last event read
	cur      *txn    // the open source transaction
	applied  bool    // something was applied in this run
	lastSave time.Time
	lastEv   int64

	// apply
	pool   *pool
	sch    *sched
	trk    tracker
	wm     watermark // every transaction at or below wm.pos is applied
	wmRecv time.Time // when the reader read the watermark's transaction
	marked pos       // the position last written to the main marker row
	lastMk time.Time
	big    *applier // the open large transaction's (see stream)
}

// gtidPos is a MariaDB GTID position: the last GTID of each domain.
type gtidPos map[uint32]string

func parseGTIDPos(s string) gtidPos {
	g := gtidPos{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		x, err := gomysqlpkg.ParseMariadbGTID(part)
		if err != nil {
			return nil
		}
		if x.SequenceNumber == 0 {
			continue // nothing of the domain yet (it prints as "")
		}
		g[x.DomainID] = x.String()
	}
	return g
}

func (g gtidPos) String() string {
	if len(g) == 0 {
		return ""
	}
	out := make([]string, 0, len(g))
	for _, v := range g {
		out = append(out, v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (e *Engine) applyWorkers() int {
	if e.ApplyWorkers > 0 {
		return e.ApplyWorkers
	}
	return 8
}

// incremental replicates the binlog until cutover.
func (e *Engine) incremental(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	src, err := openDB(&m.Source, false, 1)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openDB(&m.Target, true, e.applyWorkers()+1)
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
	cp, err := decodeJSON[incrCheckpoint](rt.Checkpoint())
	if err != nil {
		return err
	}
	if cp == nil {
		cp = &incrCheckpoint{}
		full, err := decodeJSON[fullCheckpoint](nil)
		if s := m.Step(ferry.StepFull); s != nil {
			full, err = decodeJSON[fullCheckpoint](s.Checkpoint)
		}
		if err != nil {
			return err
		}
		if full != nil && !full.Snapshot.IsZero() {
			cp.Pos = full.Snapshot
			for id, st := range full.Tables {
				if st.Since != nil {
					if cp.Since == nil {
						cp.Since = map[string]pos{}
					}
					cp.Since[id] = *st.Since
				}
			}
		} else {
			if cp.Pos, err = masterPos(ctx, src, srcSrv); err != nil {
				return err
			}
		}
		cp.EventTime = time.Now().Unix()
	} else {
		cp.Resumes++
	}
	// Exactly once: the target's marker rows are committed with the rows;
	// when one is ahead of the stored checkpoint, the rows up to it are
	// there.
	mk, err := readMarker(ctx, dst, markerID(m, false))
	if err != nil {
		return fmt.Errorf("read %s.checkpoint on the target: %w", metaDB, err)
	}
	cp.fromMarker(rt, mk, "target")
	s := &syncer{e: e, m: m, rt: rt, log: rt.Logger(), f: f, ep: &m.Source, src: src, dst: dst, srcSrv: srcSrv, cp: cp,
		tables: map[string]*table{}, uniq: map[*table][][]int{}, workers: e.applyWorkers(), batch: e.batchRows(),
		json: !srcSrv.MariaDB, side: "target", guard: m.Modes.ReverseIncremental,
		markerID: markerID(m, false), guardID: markerID(m, true)}
	b, _ := json.Marshal(cp)
	if err := rt.Save(ctx, b); err != nil {
		return err
	}
	return s.run(ctx)
}

type evOrErr struct {
	ev  *replication.BinlogEvent
	err error
}

func (s *syncer) run(ctx context.Context) error {
	side := "source"
	if s.reverse {
		side = "target"
	}
	host, portS, err := net.SplitHostPort(s.ep.Addrs[0])
	if err != nil {
		return ferry.FieldError(side+".addrs", "bad address %q", s.ep.Addrs[0])
	}
	port, _ := strconv.Atoi(portS)
	cfg := replication.BinlogSyncerConfig{
		ServerID:                serverID(s.markerID),
		Flavor:                  s.srcSrv.Flavor(),
		Host:                    host,
		Port:                    uint16(port),
		User:                    s.ep.Username,
		Password:                s.ep.Password,
		Charset:                 "utf8mb4",
		TLSConfig:               tlsConfig(s.ep),
		HeartbeatPeriod:         time.Second,
		ReadTimeout:             30 * time.Second,
		TimestampStringLocation: time.UTC,
		MaxReconnectAttempts:    3,
		Logger:                  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	start := s.cp.Pos
	bs, streamer, first, how, err := s.open(ctx, cfg, start)
	if err != nil {
		return err
	}
	defer bs.Close()
	s.file, s.readPos = start.File, start
	s.lastGTID = start.GTID
	if s.srcSrv.MariaDB {
		s.gtid = parseGTIDPos(start.GTID)
	}
	s.wm = watermark{pos: start, eventTime: s.cp.EventTime, ops: s.cp.Ops}
	s.marked = start
	s.log.Info("binlog stream started", "side", side, "pos", start.String(), "gtid", start.GTID, "by", how, "serverId", cfg.ServerID, "flavor", cfg.Flavor, "workers", s.workers)
	if s.reverse {
		s.rt.Message(fmt.Sprintf("reverse sync: applying the target's changes to the source, from the target's binlog position %s", start))
	} else {
		s.rt.Message(fmt.Sprintf("replicating the binlog from %s", start))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.sch = newSched(s.workers, workerQueue, schedFill)
	s.pool = startPool(ctx, s.workers, func(n int) *applier {
		ap := newApplier(s.dst, workerID(s.markerID, n), s.json, s.batch)
		ap.guard, ap.side = s.guard, s.side
		return ap
	})
	defer s.pool.stop()
	defer func() {
		if s.big != nil {
			s.big.rollback()
		}
		for _, w := range s.pool.workers {
			s.log.Info("apply worker", "worker", w.n, "commits", w.groups.Load(), "deadlockRetries", w.retries.Load())
		}
	}()
	s.publish()
	evs := make(chan evOrErr, 1024)
	evs <- evOrErr{first, nil}
	go func() {
		for {
			ev, err := streamer.GetEvent(ctx)
			select {
			case evs <- evOrErr{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var cutTarget *pos
	cutover := s.rt.Cutover()
	if s.reverse {
		// Reverse sync runs until the job is released (ctx ends); the job
		// has been cut over already.
		cutover = nil
	}
	startRun := time.Now()
	startOps := s.cp.Ops
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cutover:
			cutover = nil
			block, err := writeBlock(s.m)
			if err != nil {
				return err
			}
			blockedAt := time.Now()
			if block == writeBlockReadOnl {
				if err := blockWrites(ctx, s.src); err != nil {
					return err
				}
				s.log.Info("cutover: source made read-only")
			}
			p, err := masterPos(ctx, s.src, s.srcSrv)
			if err != nil {
				return fmt.Errorf("cutover: %w", err)
			}
			recordCutoverStart(s.rt, block, blockedAt, p)
			cutTarget = &p
			s.log.Info("cutover: draining to the source's position", "target", p.String(), "at", s.readPos.String())
			s.rt.Message(fmt.Sprintf("cutover: applying up to the source's position %s", p))
		case x := <-evs:
			if x.err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("binlog stream: %w", x.err)
			}
			if err := s.handle(ctx, x.ev); err != nil {
				return err
			}
			continue
		case d := <-s.pool.done:
			if err := s.completed(d); err != nil {
				return err
			}
			continue
		case <-tick.C:
		}
		if !s.inTx && s.cur == nil && s.trk.pending() == 0 && len(evs) == 0 {
			// Nothing pending: what was read is applied.
			if s.readPos.compare(s.wm.pos) > 0 {
				s.wm.pos = s.readPos
				s.cp.Pos = s.wm.pos
				s.publish()
			}
		}
		if s.trk.pending() == 0 && s.wm.pos != s.marked && (time.Since(s.lastMk) >= time.Second || cutTarget != nil) {
			if err := s.writeMark(ctx); err != nil {
				return err
			}
		}
		if time.Since(s.lastSave) >= time.Second {
			if err := s.save(ctx, startRun, startOps); err != nil {
				return err
			}
		}
		if cutTarget != nil && !s.inTx && s.cur == nil && s.trk.pending() == 0 && s.cp.Pos.compare(*cutTarget) >= 0 {
			if s.wm.pos != s.marked {
				if err := s.writeMark(ctx); err != nil {
					return err
				}
			}
			s.cp.EventTime = time.Now().Unix()
			s.rt.Lag(0, time.Now())
			if err := s.save(ctx, startRun, startOps); err != nil {
				return err
			}
			recordDrained(s.rt, s.cp.Pos)
			s.rt.Message(fmt.Sprintf("cutover: the target holds every change up to the source's position %s (%d changes in %d transactions, %d DDL applied)", cutTarget, s.cp.Ops, s.cp.Txns, s.cp.DDLs))
			return nil
		}
	}
}

// open starts the binlog stream at start (by its GTID position on MariaDB
// when it has one, else by file and position) and reads its first event.
// A restarted step's previous connection can stay registered on the server
// under the same server_id for a moment after it closed (MariaDB refuses
// the new one with error 4052 until the old dump thread notices): it
// retries for a while then.
func (s *syncer) open(ctx context.Context, cfg replication.BinlogSyncerConfig, start pos) (*replication.BinlogSyncer, *replication.BinlogStreamer, *replication.BinlogEvent, string, error) {
	byGTID := s.srcSrv.MariaDB && len(parseGTIDPos(start.GTID)) > 0
	for attempt := 0; ; attempt++ {
		bs := replication.NewBinlogSyncer(cfg)
		var streamer *replication.BinlogStreamer
		var err error
		how := "file position"
		if byGTID {
			how = "GTID"
			var g gomysqlpkg.GTIDSet
			if g, err = gomysqlpkg.ParseMariadbGTIDSet(parseGTIDPos(start.GTID).String()); err == nil {
				streamer, err = bs.StartSyncGTID(g)
			}
		} else {
			streamer, err = bs.StartSync(gomysqlpkg.Position{Name: start.File, Pos: start.Pos})
		}
		if err != nil {
			bs.Close()
			return nil, nil, nil, "", fmt.Errorf("start binlog stream at %s: %w", start, err)
		}
		first, err := streamer.GetEvent(ctx)
		if err == nil {
			return bs, streamer, first, how, nil
		}
		bs.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, "", ctx.Err()
		}
		var me *gomysqlpkg.MyError
		sameID := (errors.As(err, &me) && me.Code == 4052) || strings.Contains(err.Error(), "same server_uuid/server_id")
		if !sameID && byGTID && !start.IsZero() {
			// The GTID position is not usable on this server (purged,
			// another domain layout): fall back to the file position.
			s.log.Warn("cannot resume the binlog stream by GTID; resuming by file position", "gtid", start.GTID, "pos", start.String(), "err", err)
			byGTID = false
			continue
		}
		if !sameID || attempt >= 30 {
			return nil, nil, nil, "", fmt.Errorf("binlog stream: %w", err)
		}
		if attempt == 0 {
			s.log.Info("the server still holds this job's previous binlog connection; waiting for it to go", "serverId", cfg.ServerID)
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return nil, nil, nil, "", ctx.Err()
		}
	}
}

func (s *syncer) save(ctx context.Context, startRun time.Time, startOps int64) error {
	s.lastSave = time.Now()
	b, err := json.Marshal(s.cp)
	if err != nil {
		return err
	}
	rate := float64(s.cp.Ops-startOps) / time.Since(startRun).Seconds()
	s.rt.Progress(ferry.Counters{Ops: s.cp.Ops, Done: s.cp.Ops, Unit: "rows", RatePerSec: rate}, 0)
	return s.rt.Save(ctx, b)
}

// publish hands the watermark to the workers (they record it with each
// commit).
func (s *syncer) publish() {
	w := s.wm
	s.pool.wm.Store(&w)
}

// writeMark records the watermark in the direction's own marker row (when
// the workers are idle: they record it with each commit otherwise). With
// the loop guard, the write bumps txn_seq like every transaction of ferry.
func (s *syncer) writeMark(ctx context.Context) error {
	inc := 0
	if s.guard {
		inc = 1
	}
	if _, err := s.dst.ExecContext(ctx, "INSERT INTO "+qname(metaDB, "checkpoint")+" (job_id, binlog_file, binlog_pos, gtid, event_time, ops, txn_seq) VALUES (?, ?, ?, ?, ?, ?, ?)"+
		" ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file), binlog_pos = VALUES(binlog_pos), gtid = VALUES(gtid), event_time = VALUES(event_time), ops = VALUES(ops), txn_seq = txn_seq + ?",
		s.markerID, s.wm.pos.File, s.wm.pos.Pos, s.wm.pos.GTID, s.wm.eventTime, s.wm.ops, inc, inc); err != nil {
		return fmt.Errorf(s.side+": write %s.checkpoint: %w", metaDB, err)
	}
	s.marked, s.lastMk = s.wm.pos, time.Now()
	return nil
}

// dispatch hands a source transaction to a worker, waiting for in-flight
// transactions to complete while it conflicts with two workers' (or is a
// barrier).
func (s *syncer) dispatch(ctx context.Context, t *txn) error {
	s.trk.push(t)
	if !t.applied {
		t.done = true
		s.advance()
		return nil
	}
	for {
		if w := s.sch.place(t); w >= 0 {
			s.sch.assign(t, w)
			s.pool.workers[w].in <- t // never blocks: the scheduler bounds each queue
			s.applied = true
			return nil
		}
		select {
		case d := <-s.pool.done:
			if err := s.completed(d); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// drain waits until every dispatched transaction is applied.
func (s *syncer) drain(ctx context.Context) error {
	for s.sch.total > 0 {
		select {
		case d := <-s.pool.done:
			if err := s.completed(d); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// completed records a worker's committed group.
func (s *syncer) completed(d doneMsg) error {
	if d.err != nil {
		return d.err
	}
	for _, t := range d.txns {
		t.done = true
		s.sch.finish(t, d.worker)
	}
	s.advance()
	return nil
}

// advance moves the watermark over the transactions done in order.
func (s *syncer) advance() {
	moved := false
	s.trk.advance(func(t *txn) {
		moved = true
		s.wm.pos, s.wm.eventTime, s.wmRecv = t.end, t.eventTime, t.recv
		s.wm.ops += t.ops
		s.cp.Ops += t.ops
		if t.guarded {
			s.cp.Guarded++
		} else if t.applied {
			s.cp.Txns++
		}
	})
	if !moved {
		return
	}
	s.cp.Pos, s.cp.EventTime = s.wm.pos, s.wm.eventTime
	s.publish()
	at := time.Unix(s.wm.eventTime, 0)
	s.rt.Lag(lagOf(at, s.wmRecv, time.Now()), at)
}

// lagOf estimates the lag of a change stamped at (the binlog's timestamps
// are whole seconds) and read from the stream at recv: the change
// happened within the second after at and no later than ferry read it, so
// its time is taken as the middle of that second, or recv when earlier
// (the estimate is within half a second of the truth when the clocks
// agree; now - at alone would add half a second on average).
func lagOf(at, recv, now time.Time) time.Duration {
	t := at.Add(500 * time.Millisecond)
	if !recv.IsZero() && recv.Before(t) {
		t = recv
	}
	if lag := now.Sub(t); lag > 0 {
		return lag
	}
	return 0
}

func (s *syncer) table(ctx context.Context, db, name string) (*table, error) {
	id := db + "." + name
	if t, ok := s.tables[id]; ok {
		return t, nil
	}
	if !s.f.table(db, name) {
		s.tables[id] = nil
		return nil, nil
	}
	t := &table{DB: db, Name: name}
	t.TDB, t.TName = s.f.target(db, name)
	// The target's copy has the table's shape at this point of the stream
	// (DDL is applied in order).
	probe := &table{DB: t.TDB, Name: t.TName}
	if err := loadColumns(ctx, s.dst, map[string]*table{probe.DB + "." + probe.Name: probe}); err != nil {
		return nil, err
	}
	if len(probe.Cols) == 0 {
		from, to := s.sides()
		return nil, &ferry.Error{Code: ferry.EINVALID, Reason: strings.ToUpper(to) + "_TABLE_MISSING",
			Message: fmt.Sprintf("the %s's binlog changes %s but the %s has no table %s", from, id, to, t.dst()),
			Advice:  "run the job with the schema step, or create the table on the " + to}
	}
	t.Cols, t.Key, t.KeyName = probe.Cols, probe.Key, probe.KeyName
	uniq, err := uniqueKeys(ctx, s.dst, t)
	if err != nil {
		return nil, err
	}
	s.uniq[t] = uniq
	s.tables[id] = t
	return t, nil
}

// uniqueKeys lists the column indexes of each unique index of t's target
// table (the primary key included).
func uniqueKeys(ctx context.Context, db *sql.DB, t *table) ([][]int, error) {
	rows, err := db.QueryContext(ctx, "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX", t.TDB, t.TName)
	if err != nil {
		return nil, fmt.Errorf("list the unique keys of %s: %w", t.dst(), err)
	}
	defer rows.Close()
	col := map[string]int{}
	for i, c := range t.Cols {
		col[strings.ToLower(c.Name)] = i
	}
	var out [][]int
	last := "\x00"
	for rows.Next() {
		var idx, c string
		if err := rows.Scan(&idx, &c); err != nil {
			return nil, err
		}
		i, ok := col[strings.ToLower(c)]
		if !ok {
			continue
		}
		if idx != last {
			out = append(out, nil)
			last = idx
		}
		out[len(out)-1] = append(out[len(out)-1], i)
	}
	return out, rows.Err()
}

func (s *syncer) handle(ctx context.Context, ev *replication.BinlogEvent) error {
	h := ev.Header
	end := pos{File: s.file, Pos: h.LogPos, GTID: s.gtidNow()}
	if h.Timestamp != 0 {
		s.lastEv = int64(h.Timestamp)
	}
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
		if p := (pos{File: s.file, Pos: uint32(e.Position), GTID: s.gtidNow()}); p.compare(s.readPos) > 0 {
			s.readPos = p
		}
		return nil
	case *replication.MariadbGTIDEvent:
		s.lastGTID = e.GTID.String()
		if s.gtid != nil {
			s.gtid[e.GTID.DomainID] = s.lastGTID
		}
		s.inTx = !e.IsStandalone()
		s.skipTx, s.txOps = false, 0
		s.cur = &txn{}
	case *replication.GTIDEvent:
		if g, err := e.GTIDNext(); err == nil {
			s.lastGTID = g.String()
		}
		s.skipTx, s.txOps = false, 0
		s.cur = &txn{}
	case *replication.QueryEvent:
		q := strings.TrimSpace(string(e.Query))
		switch strings.ToUpper(q) {
		case "BEGIN":
			s.inTx = true
			s.skipTx, s.txOps = false, 0
			if s.cur == nil {
				s.cur = &txn{}
			}
		case "COMMIT":
			if err := s.endTx(ctx, end); err != nil {
				return err
			}
		default:
			if err := s.query(ctx, string(e.Schema), q, end, e.SlaveProxyID); err != nil {
				return err
			}
			s.inTx = false
		}
	case *replication.XIDEvent:
		if err := s.endTx(ctx, end); err != nil {
			return err
		}
	case *replication.RowsEvent:
		if err := s.rows(ctx, h, e, end); err != nil {
			return err
		}
	case *replication.HeartbeatEvent:
		if !s.inTx && s.cur == nil && s.trk.pending() == 0 {
			now := time.Now()
			s.cp.EventTime = now.Unix()
			s.rt.Lag(0, now)
		}
		return nil
	}
	if h.LogPos != 0 && end.compare(s.readPos) > 0 {
		s.readPos = end
	}
	return nil
}

// gtidNow is the GTID state after the last event read: MariaDB's GTID
// position, or MySQL's last GTID.
func (s *syncer) gtidNow() string {
	if s.gtid != nil {
		return s.gtid.String()
	}
	return s.lastGTID
}

func (s *syncer) endTx(ctx context.Context, end pos) error {
	t := s.cur
	if t == nil {
		t = &txn{}
	}
	s.cur = nil
	if s.skipTx {
		t.guarded = true
		t.changes, t.ops, t.applied = nil, 0, false
		s.skipTx = false
	}
	s.txOps = 0
	s.inTx = false
	t.end, t.eventTime, t.recv = end, s.lastEv, time.Now()
	if s.big != nil {
		// A large transaction applied as it was read: it commits with its
		// own end as the marker (nothing else is in flight).
		if err := s.stream(ctx, t); err != nil {
			return err
		}
		ap := s.big
		s.big = nil
		if err := ap.commit(ctx, t.end, t.eventTime, s.wm.ops+t.ops); err != nil {
			ap.rollback()
			return err
		}
		t.changes, t.keys = nil, nil
		t.done = true
		s.trk.push(t)
		s.advance()
		s.marked = t.end
		return nil
	}
	if t.applied {
		t.keys = t.keys[:0]
		for i := range t.changes {
			c := &t.changes[i]
			if c.t.keyless() {
				t.barrier = true
			}
			t.keys = conflictKeys(t.keys, c.t, s.uniq[c.t], c)
		}
	}
	return s.dispatch(ctx, t)
}

func (s *syncer) rows(ctx context.Context, h *replication.EventHeader, e *replication.RowsEvent, end pos) error {
	if e.Table == nil {
		return nil
	}
	db, name := string(e.Table.Schema), string(e.Table.Table)
	if db == metaDB && name == "checkpoint" {
		return s.guardRows(e)
	}
	if s.skipTx {
		return nil // a transaction of the job's other direction
	}
	t, err := s.table(ctx, db, name)
	if err != nil || t == nil {
		return err
	}
	if since, ok := s.cp.Since[t.id()]; ok {
		if end.compare(since) <= 0 {
			return nil // already in the target's copy of this key-less table
		}
	}
	for _, r := range e.Rows {
		if len(r) != len(t.Cols) {
			return &ferry.Error{Code: ferry.EINVALID, Reason: "SCHEMA_MISMATCH",
				Message: fmt.Sprintf("a binlog row of %s has %d columns but the target's %s has %d", t.id(), len(r), t.dst(), len(t.Cols)),
				Advice:  "the table was altered outside the binlog ferry reads: make the target's table match the source's"}
		}
	}
	if s.cur == nil {
		s.cur = &txn{}
	}
	c := s.cur
	up := !t.keyless() && len(s.uniq[t]) <= 1
	switch h.EventType {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2:
		for _, r := range e.Rows {
			c.changes = append(c.changes, change{t: t, kind: 'i', before: r, upsert: up})
		}
		c.ops += int64(len(e.Rows))
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2:
		for i := 0; i+1 < len(e.Rows); i += 2 {
			c.changes = append(c.changes, change{t: t, kind: 'u', before: e.Rows[i], after: e.Rows[i+1], upsert: up})
		}
		c.ops += int64(len(e.Rows) / 2)
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2:
		for _, r := range e.Rows {
			c.changes = append(c.changes, change{t: t, kind: 'd', before: r, upsert: up})
		}
		c.ops += int64(len(e.Rows))
	default:
		return &ferry.Error{Code: ferry.EINVALID, Reason: "UNSUPPORTED_EVENT", Message: fmt.Sprintf("binlog event %s on %s is not supported", h.EventType, t.id())}
	}
	c.applied = true
	s.txOps += len(e.Rows)
	if len(c.changes) >= bigTxn {
		if err := s.stream(ctx, c); err != nil {
			return err
		}
	}
	if !s.inTx {
		// A row event outside a transaction (a non-transactional engine
		// without BEGIN): it is its own transaction.
		return s.endTx(ctx, end)
	}
	return nil
}

// bigTxn is the size (row changes) from which a source transaction is not
// held in memory: it is applied alone, as it is read, in one target
// transaction.
const bigTxn = 20000

// stream switches the open source transaction to being applied as it is
// read: the workers drain, then its changes go through one applier on the
// reader's goroutine (in order: key-less tables are exact too).
func (s *syncer) stream(ctx context.Context, c *txn) error {
	if s.big == nil {
		if err := s.drain(ctx); err != nil {
			return err
		}
		s.big = newApplier(s.dst, s.markerID, s.json, s.batch)
		s.big.guard, s.big.side = s.guard, s.side
		s.applied = true
	}
	for i := range c.changes {
		if err := s.big.apply(ctx, &c.changes[i]); err != nil {
			return err
		}
	}
	c.changes = c.changes[:0]
	return nil
}

// guardRows is the loop guard's check of a row event of
// ferry_meta.checkpoint: a transaction that writes a marker row of the
// job's other direction (its own row or a worker's) is that direction's
// own write (ferry's appliers bump their row first thing in every
// transaction of a job with reverse sync) and is skipped whole.
func (s *syncer) guardRows(e *replication.RowsEvent) error {
	found := false
	for _, r := range e.Rows {
		if len(r) <= metaColJobID || !ownRow(r[metaColJobID], s.guardID) {
			continue
		}
		found = true
		if len(r) > metaColDDLThread {
			// An update's after image comes last: the connection of the
			// other direction's next DDL.
			if th := uint32(toUint(r[metaColDDLThread])); th != 0 || sameID(r[metaColJobID], s.guardID) {
				s.guardThread = th
			}
		}
	}
	switch {
	case !found:
		return nil
	case !s.inTx:
		s.cp.Guarded++
	case s.txOps > 0:
		return &ferry.Error{Code: ferry.EINVALID, Reason: "LOOP_GUARD",
			Message: fmt.Sprintf("a transaction in the binlog writes ferry's marker %q after %d row changes: it is ferry's own write but its changes were not recognised in time", s.guardID, s.txOps),
			Advice:  "a ferry older than the loop guard wrote it; resume the job from a position after that transaction"}
	default:
		s.skipTx = true
	}
	return nil
}

func ownRow(v any, id string) bool {
	switch x := v.(type) {
	case string:
		return isOwnRow(x, id)
	case []byte:
		return isOwnRow(string(x), id)
	}
	return false
}
