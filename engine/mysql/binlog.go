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
	"regexp"
	"strconv"
	"strings"
	"time"

	gomysqlpkg "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/ferrymigrate/ferry"
)

// incrCheckpoint is what the incremental step persists.
type incrCheckpoint struct {
	// Pos is where the stream resumes: the end of the last applied source
	// transaction.
	Pos pos `json:"pos"`
	// EventTime is the source timestamp (unix seconds) of the last applied
	// event.
	EventTime int64 `json:"eventTime"`
	Ops       int64 `json:"ops"`
	Txns      int64 `json:"txns"`
	DDLs      int64 `json:"ddls,omitempty"`
	// Since: per source table, changes up to this position are already in
	// the target (from the full step's checkpoint).
	Since map[string]pos `json:"since,omitempty"`
	// Resumes counts restarts of the stream from a checkpoint.
	Resumes int `json:"resumes,omitempty"`
	// FromMarker counts resumes that started from the target's marker,
	// ahead of the stored checkpoint.
	FromMarker int `json:"fromMarker,omitempty"`
	// Guarded counts the transactions and DDL statements of the job's other
	// direction that the loop guard skipped.
	Guarded int64 `json:"guarded,omitempty"`
}

// fromMarker moves the checkpoint to the written side's marker when that is
// ahead: the changes up to it are there (they were committed with it).
func (cp *incrCheckpoint) fromMarker(rt ferry.StepRuntime, mk marker, side string) {
	if mk.Pos.IsZero() || mk.Pos.compare(cp.Pos) <= 0 {
		return
	}
	rt.Logger().Info("resuming from the "+side+"'s marker", "checkpoint", cp.Pos.String(), "marker", mk.Pos.String())
	cp.Pos, cp.EventTime = mk.Pos, mk.EventTime
	if mk.Ops > cp.Ops {
		cp.Ops = mk.Ops
	}
	cp.FromMarker++
}

// syncer is one run of the incremental step.
//
// The same code runs both directions: forward (incremental: the source's
// binlog applied to the target) and reverse (reverse_incremental: the
// target's binlog applied to the source). In the syncer, "src" is always
// the side whose binlog is read and "dst" the side written to.
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
	ap      *applier
	cp      *incrCheckpoint
	tables  map[string]*table // by read-side db.table; nil entries: not moved

	// loop guard: markerID names this direction's marker row and DDL tag;
	// guardID the other direction's, whose transactions and DDL are skipped.
	markerID, guardID string
	skipTx            bool   // the open transaction is the other direction's
	guardThread       uint32 // the connection of the other direction's DDL
	txOps             int    // row changes of the open source transaction staged

	// stream state
	file      string
	readPos   pos  // end of the last event read
	inTx      bool // inside a source transaction
	lastGTID  string
	pendPos   pos   // end of the last source transaction in the open target transaction
	pendTime  int64 // its event time
	pendTxns  int64
	pendOps   int64
	dirty     bool // pendPos not yet committed
	applied   bool // something was applied in this run
	lastSave  time.Time
	lastEvent int64
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
	dst, err := openDB(&m.Target, true, 2)
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
	// Exactly once: the target's marker is committed with the rows; when
	// it is ahead of the stored checkpoint, the rows up to it are there.
	mk, err := readMarker(ctx, dst, markerID(m, false))
	if err != nil {
		return fmt.Errorf("read %s.checkpoint on the target: %w", metaDB, err)
	}
	cp.fromMarker(rt, mk, "target")
	s := &syncer{e: e, m: m, rt: rt, log: rt.Logger(), f: f, ep: &m.Source, src: src, dst: dst, srcSrv: srcSrv, cp: cp,
		ap: newApplier(dst, m.ID, !srcSrv.MariaDB, e.batchRows()), tables: map[string]*table{},
		markerID: markerID(m, false), guardID: markerID(m, true)}
	s.ap.guard = m.Modes.ReverseIncremental
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
	bs, streamer, first, err := s.open(ctx, cfg, start)
	if err != nil {
		return err
	}
	defer bs.Close()
	s.file, s.readPos, s.pendPos, s.pendTime = start.File, start, start, s.cp.EventTime
	s.lastGTID = start.GTID
	s.log.Info("binlog stream started", "side", side, "pos", start.String(), "serverId", cfg.ServerID, "flavor", cfg.Flavor)
	if s.reverse {
		s.rt.Message(fmt.Sprintf("reverse sync: applying the target's changes to the source, from the target's binlog position %s", start))
	} else {
		s.rt.Message(fmt.Sprintf("replicating the binlog from %s", start))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs := make(chan evOrErr, 256)
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
	defer s.ap.rollback()
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
			p, err := masterPos(ctx, s.src, s.srcSrv)
			if err != nil {
				return fmt.Errorf("cutover: %w", err)
			}
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
			// Commit when the stream pauses or the transaction grew large.
			if s.dirty && !s.inTx && (len(evs) == 0 || s.pendOps >= 5000 || s.pendTxns >= 2000) {
				if err := s.commit(ctx); err != nil {
					return err
				}
			}
			continue
		case <-tick.C:
		}
		if s.dirty && !s.inTx {
			if err := s.commit(ctx); err != nil {
				return err
			}
		}
		if !s.inTx && !s.dirty && len(evs) == 0 {
			// Nothing pending: what was read is applied.
			if s.readPos.compare(s.cp.Pos) > 0 {
				s.cp.Pos = s.readPos
			}
		}
		if time.Since(s.lastSave) >= time.Second {
			if err := s.save(ctx, startRun, startOps); err != nil {
				return err
			}
		}
		if cutTarget != nil && !s.inTx && !s.dirty && s.cp.Pos.compare(*cutTarget) >= 0 {
			s.cp.EventTime = time.Now().Unix()
			s.rt.Lag(0, time.Now())
			if err := s.save(ctx, startRun, startOps); err != nil {
				return err
			}
			s.rt.Message(fmt.Sprintf("cutover: the target holds every change up to the source's position %s (%d changes in %d transactions, %d DDL applied)", cutTarget, s.cp.Ops, s.cp.Txns, s.cp.DDLs))
			return nil
		}
	}
}

// open starts the binlog stream at start and reads its first event. A
// restarted step's previous connection can stay registered on the server
// under the same server_id for a moment after it closed (MariaDB refuses the
// new one with error 4052 until the old dump thread notices): it retries
// for a while then.
func (s *syncer) open(ctx context.Context, cfg replication.BinlogSyncerConfig, start pos) (*replication.BinlogSyncer, *replication.BinlogStreamer, *replication.BinlogEvent, error) {
	for attempt := 0; ; attempt++ {
		bs := replication.NewBinlogSyncer(cfg)
		streamer, err := bs.StartSync(gomysqlpkg.Position{Name: start.File, Pos: start.Pos})
		if err != nil {
			bs.Close()
			return nil, nil, nil, fmt.Errorf("start binlog stream at %s: %w", start, err)
		}
		first, err := streamer.GetEvent(ctx)
		if err == nil {
			return bs, streamer, first, nil
		}
		bs.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		var me *gomysqlpkg.MyError
		sameID := (errors.As(err, &me) && me.Code == 4052) || strings.Contains(err.Error(), "same server_uuid/server_id")
		if !sameID || attempt >= 30 {
			return nil, nil, nil, fmt.Errorf("binlog stream: %w", err)
		}
		if attempt == 0 {
			s.log.Info("the server still holds this job's previous binlog connection; waiting for it to go", "serverId", cfg.ServerID)
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
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

// commit commits the open target transaction with the position marker.
func (s *syncer) commit(ctx context.Context) error {
	if err := s.ap.commit(ctx, s.pendPos, s.pendTime, s.cp.Ops+s.pendOps); err != nil {
		return err
	}
	s.cp.Pos, s.cp.EventTime = s.pendPos, s.pendTime
	s.cp.Ops += s.pendOps
	s.cp.Txns += s.pendTxns
	s.pendOps, s.pendTxns, s.dirty = 0, 0, false
	now := time.Now()
	lag := now.Sub(time.Unix(s.pendTime, 0))
	if lag < 0 {
		lag = 0
	}
	s.rt.Lag(lag, time.Unix(s.pendTime, 0))
	return nil
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
	s.tables[id] = t
	return t, nil
}

func (s *syncer) handle(ctx context.Context, ev *replication.BinlogEvent) error {
	h := ev.Header
	end := pos{File: s.file, Pos: h.LogPos, GTID: s.lastGTID}
	if h.Timestamp != 0 {
		s.lastEvent = int64(h.Timestamp)
	}
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
		s.readPos = pos{File: s.file, Pos: uint32(e.Position), GTID: s.lastGTID}
		return nil
	case *replication.MariadbGTIDEvent:
		s.lastGTID = e.GTID.String()
		s.inTx = !e.IsStandalone()
		s.skipTx, s.txOps = false, 0
	case *replication.GTIDEvent:
		if g, err := e.GTIDNext(); err == nil {
			s.lastGTID = g.String()
		}
		s.skipTx, s.txOps = false, 0
	case *replication.QueryEvent:
		q := strings.TrimSpace(string(e.Query))
		switch strings.ToUpper(q) {
		case "BEGIN":
			s.inTx = true
			s.skipTx, s.txOps = false, 0
		case "COMMIT":
			s.endTx(end)
		default:
			if err := s.query(ctx, string(e.Schema), q, end, e.SlaveProxyID); err != nil {
				return err
			}
			s.inTx = false
		}
	case *replication.XIDEvent:
		end.GTID = s.lastGTID
		s.endTx(end)
	case *replication.RowsEvent:
		if err := s.rows(ctx, h, e, end); err != nil {
			return err
		}
	case *replication.HeartbeatEvent:
		if !s.inTx && !s.dirty {
			now := time.Now()
			s.cp.EventTime = now.Unix()
			s.rt.Lag(0, now)
		}
		return nil
	}
	if h.LogPos != 0 {
		s.readPos = end
	}
	return nil
}

func (s *syncer) endTx(end pos) {
	if s.skipTx {
		s.cp.Guarded++
		s.skipTx = false
	}
	s.txOps = 0
	s.inTx = false
	s.pendPos, s.pendTime = end, s.lastEvent
	s.pendTxns++
	s.dirty = true
}

func (s *syncer) rows(ctx context.Context, h *replication.EventHeader, e *replication.RowsEvent, end pos) error {
	if e.Table == nil {
		return nil
	}
	db, name := string(e.Table.Schema), string(e.Table.Table)
	if db == metaDB && name == "checkpoint" {
		return s.guard(e)
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
	if err := s.ap.begin(ctx); err != nil {
		return err
	}
	switch h.EventType {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2:
		for _, r := range e.Rows {
			if err := s.ap.insert(ctx, t, r); err != nil {
				return err
			}
		}
		s.pendOps += int64(len(e.Rows))
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2:
		for i := 0; i+1 < len(e.Rows); i += 2 {
			if err := s.ap.update(ctx, t, e.Rows[i], e.Rows[i+1]); err != nil {
				return err
			}
		}
		s.pendOps += int64(len(e.Rows) / 2)
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2:
		for _, r := range e.Rows {
			if err := s.ap.delete(ctx, t, r); err != nil {
				return err
			}
		}
		s.pendOps += int64(len(e.Rows))
	default:
		return &ferry.Error{Code: ferry.EINVALID, Reason: "UNSUPPORTED_EVENT", Message: fmt.Sprintf("binlog event %s on %s is not supported", h.EventType, t.id())}
	}
	s.txOps += len(e.Rows)
	s.applied = true
	return nil
}

// guard is the loop guard's check of a row event of ferry_meta.checkpoint:
// a transaction that writes the marker row of the job's other direction is
// that direction's own write (ferry's applier bumps the row first thing in
// every transaction of a job with reverse sync) and is skipped whole.
func (s *syncer) guard(e *replication.RowsEvent) error {
	found := false
	for _, r := range e.Rows {
		if len(r) <= metaColJobID || !sameID(r[metaColJobID], s.guardID) {
			continue
		}
		found = true
		if len(r) > metaColDDLThread {
			// An update's after image comes last: the connection of the
			// other direction's next DDL.
			s.guardThread = uint32(toUint(r[metaColDDLThread]))
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

func toUint(v any) uint64 {
	switch x := v.(type) {
	case int64:
		return uint64(x)
	case uint64:
		return x
	case int32:
		return uint64(uint32(x))
	case int:
		return uint64(x)
	}
	return 0
}

func sameID(v any, id string) bool {
	switch x := v.(type) {
	case string:
		return x == id
	case []byte:
		return string(x) == id
	}
	return false
}

// markerID names a job's marker row in ferry_meta.checkpoint, and the tag
// of the DDL it applies, for one direction.
func markerID(m *ferry.Migration, reverse bool) string {
	if reverse {
		return m.ID + "/reverse"
	}
	return m.ID
}

// ddlTag is the comment that leads every DDL statement ferry applies for a
// job and direction: the other direction's reader skips statements that
// carry it.
func ddlTag(id string) string { return "/* ferry:" + id + " */ " }

// execDDL runs a DDL statement as ferry's own for the marker id: tagged,
// and, with guard, announced first by a marker transaction on the same
// connection naming it (ddl_thread), so that the other direction's reader
// also recognises the statements the server logs rewritten without the
// tag (DROP TABLE ... /* generated by server */).
func execDDL(ctx context.Context, conn *sql.Conn, id string, guard bool, stmt string) error {
	if guard {
		if _, err := conn.ExecContext(ctx, "INSERT INTO "+qname(metaDB, "checkpoint")+" (job_id, binlog_file, binlog_pos, event_time, txn_seq, ddl_thread) VALUES (?, '', 0, 0, 1, CONNECTION_ID())"+
			" ON DUPLICATE KEY UPDATE txn_seq = txn_seq + 1, ddl_thread = CONNECTION_ID()", id); err != nil {
			return fmt.Errorf("announce the DDL in %s.checkpoint: %w", metaDB, err)
		}
	}
	_, err := conn.ExecContext(ctx, ddlTag(id)+stmt)
	return err
}

// DDL statements ferry recognizes, and the tables they touch.
var (
	ident      = "(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
	tname      = "(" + ident + "(?:\\s*\\.\\s*" + ident + ")?)"
	reComments = regexp.MustCompile(`(?s)^(\s*/\*.*?\*/\s*|\s*#[^\n]*\n|\s*--[^\n]*\n)*`)
	reDDL      = []*regexp.Regexp{
		regexp.MustCompile(`(?is)^ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?` + tname),
		regexp.MustCompile(`(?is)^CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?` + tname),
		regexp.MustCompile(`(?is)^TRUNCATE\s+(?:TABLE\s+)?` + tname),
		regexp.MustCompile(`(?is)^CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?` + ident + `\s+(?:USING\s+\w+\s+)?ON\s+` + tname),
		regexp.MustCompile(`(?is)^DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?` + ident + `\s+ON\s+` + tname),
	}
	reDropTable   = regexp.MustCompile(`(?is)^DROP\s+(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(.*)$`)
	reRenameTable = regexp.MustCompile(`(?is)^RENAME\s+TABLES?\s+(.*)$`)
	reDatabase    = regexp.MustCompile(`(?is)^(?:CREATE|DROP|ALTER)\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(` + ident + `)`)
	reView        = regexp.MustCompile(`(?is)^(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:ALGORITHM\s*=\s*\w+\s+)?(?:DEFINER\s*=\s*\S+\s+)?(?:SQL\s+SECURITY\s+\w+\s+)?VIEW|DROP\s+VIEW\s+(?:IF\s+EXISTS\s+)?|ALTER\s+(?:ALGORITHM\s*=\s*\w+\s+)?(?:DEFINER\s*=\s*\S+\s+)?(?:SQL\s+SECURITY\s+\w+\s+)?VIEW)\s*` + tname)
	reTempTable   = regexp.MustCompile(`(?is)^(CREATE|DROP)\s+(OR\s+REPLACE\s+)?TEMPORARY\s`)
	reIdentList   = regexp.MustCompile(tname)
	reAnyComment  = regexp.MustCompile(`(?s)/\*.*?\*/`)
)

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "`") && strings.HasSuffix(s, "`") && len(s) >= 2 {
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	}
	return s
}

// splitName splits "db.t" / "`db`.`t`" / "t" (default db def).
func splitName(s, def string) (string, string) {
	parts := regexp.MustCompile(`^(` + ident + `)\s*\.\s*(` + ident + `)$`).FindStringSubmatch(strings.TrimSpace(s))
	if parts != nil {
		return unquote(parts[1]), unquote(parts[2])
	}
	return def, unquote(s)
}

// query handles a statement of the binlog: DDL of moved tables is applied
// to the target in stream order.
func (s *syncer) query(ctx context.Context, schema, q string, end pos, thread uint32) error {
	if strings.Contains(q, strings.TrimSpace(ddlTag(s.guardID))) || (thread != 0 && thread == s.guardThread) {
		// DDL the job's other direction applied: tagged, or run on the
		// connection its marker announced (the server rewrites some
		// statements, DROP TABLE for one, without the tag).
		s.cp.Guarded++
		return s.idleTx(end)
	}
	stmt := strings.TrimSpace(reComments.ReplaceAllString(q, ""))
	// Names are read from the statement without its comments ("DROP TABLE
	// `t` /* generated by server */"); the statement runs as it was.
	parse := strings.TrimSpace(reAnyComment.ReplaceAllString(stmt, " "))
	if reTempTable.MatchString(parse) {
		return s.idleTx(end)
	}
	var refs [][2]string
	var dbStmt string
	if m := reDatabase.FindStringSubmatch(parse); m != nil {
		dbStmt = unquote(m[1])
	} else if m := reView.FindStringSubmatch(parse); m != nil {
		d, t := splitName(m[1], schema)
		refs = append(refs, [2]string{d, t})
	} else if m := reDropTable.FindStringSubmatch(parse); m != nil {
		for _, n := range reIdentList.FindAllString(m[1], -1) {
			d, t := splitName(n, schema)
			refs = append(refs, [2]string{d, t})
		}
	} else if m := reRenameTable.FindStringSubmatch(parse); m != nil {
		for _, pair := range strings.Split(m[1], ",") {
			for _, n := range regexp.MustCompile(`(?i)\s+TO\s+`).Split(pair, 2) {
				d, t := splitName(n, schema)
				refs = append(refs, [2]string{d, t})
			}
		}
	} else {
		found := false
		for _, re := range reDDL {
			if m := re.FindStringSubmatch(parse); m != nil {
				d, t := splitName(m[1], schema)
				refs = append(refs, [2]string{d, t})
				found = true
				break
			}
		}
		if !found {
			upper := strings.ToUpper(stmt)
			if strings.HasPrefix(upper, "INSERT") || strings.HasPrefix(upper, "UPDATE") || strings.HasPrefix(upper, "DELETE") || strings.HasPrefix(upper, "REPLACE") {
				if schema != "" && s.f.db(schema) {
					return &ferry.Error{Code: ferry.EINVALID, Reason: "STATEMENT_BINLOG",
						Message: fmt.Sprintf("the binlog holds a statement-based change in %s (%.100q): ferry applies row events only", schema, stmt),
						Advice:  "set binlog_format=ROW on the source (globally, and reconnect the applications)"}
				}
			}
			// Not DDL of a table (GRANT, CREATE USER, FLUSH, ...): skip.
			return s.idleTx(end)
		}
	}
	moved := false
	if dbStmt != "" {
		moved = s.f.db(dbStmt)
	}
	for _, r := range refs {
		if s.f.table(r[0], r[1]) {
			moved = true
		}
	}
	if !moved {
		return s.idleTx(end)
	}
	from, to := s.sides()
	for _, r := range refs {
		if s.f.tableRenamed(r[0], r[1]) {
			return &ferry.Error{Code: ferry.EINVALID, Reason: "DDL_ON_RENAMED_TABLE",
				Message: fmt.Sprintf("the %s ran DDL on %s.%s, which this job renames: %.200q", from, r[0], r[1], stmt),
				Advice:  "apply the same change to the " + to + "'s table by hand, then resume the job from a checkpoint after it (or move the table without a rename)"}
		}
	}
	// Apply what is pending first, then the DDL on its own.
	if s.dirty || s.ap.tx != nil {
		if err := s.commit(ctx); err != nil {
			return err
		}
	}
	out := stmt
	for from, to := range s.f.dbRen {
		out = strings.ReplaceAll(out, quote(from)+".", quote(to)+".")
		out = regexp.MustCompile(`(?i)(^|[\s(,])`+regexp.QuoteMeta(from)+`\.`).ReplaceAllString(out, "${1}"+quote(to)+".")
		if dbStmt == from {
			out = strings.Replace(out, quote(from), quote(to), 1)
			if !strings.Contains(out, quote(to)) {
				out = regexp.MustCompile(`\b`+regexp.QuoteMeta(from)+`\b`).ReplaceAllLiteralString(out, quote(to))
			}
		}
	}
	conn, err := s.dst.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if schema != "" && dbStmt == "" {
		if _, err := conn.ExecContext(ctx, "USE "+quote(s.f.targetDB(schema))); err != nil {
			return fmt.Errorf("%s: USE %s: %w", to, s.f.targetDB(schema), err)
		}
	}
	if err := execDDL(ctx, conn, s.markerID, s.ap.guard, out); err != nil {
		var me *gomysql.MySQLError
		tolerated := errors.As(err, &me) && !s.applied && alreadyApplied[me.Number]
		if !tolerated {
			return &ferry.Error{Code: ferry.EINVALID, Reason: "DDL_FAILED",
				Message: fmt.Sprintf("the %s refused the %s's DDL %.200q: %v", to, from, out, err),
				Advice:  "apply an equivalent change to the " + to + " by hand, then resume the job"}
		}
		s.log.Warn("DDL already applied before the restart", "ddl", out, "err", err)
	}
	s.applied = true
	s.cp.DDLs++
	s.tables = map[string]*table{} // re-read shapes from the target
	s.log.Info("applied DDL", "ddl", out, "pos", end.String())
	s.rt.Message(fmt.Sprintf("applied DDL at %s: %.120s", end, out))
	return s.idleTx(end)
}

// sides names the side whose binlog is read and the side written to.
func (s *syncer) sides() (from, to string) {
	if s.reverse {
		return "target", "source"
	}
	return "source", "target"
}

// alreadyApplied are errors a DDL gives when it ran before a kill whose
// position was not recorded yet.
var alreadyApplied = map[uint16]bool{1050: true, 1051: true, 1060: true, 1061: true, 1091: true, 1007: true, 1008: true, 1146: true, 1054: true}

// idleTx records a statement outside any row transaction as applied.
func (s *syncer) idleTx(end pos) error {
	s.pendPos, s.pendTime = end, s.lastEvent
	s.dirty = true
	return nil
}

// cutoverCheckpoint is what the cutover step persists.
type cutoverCheckpoint struct {
	// TargetPos is the target's binlog position when the forward stream had
	// drained (read first thing in the cutover step, before ferry's own
	// cutover writes): reverse incremental sync starts there.
	TargetPos *pos `json:"targetPos,omitempty"`
}

// cutover finishes the forward sync: it records the target's binlog
// position for reverse sync, carries AUTO_INCREMENT counters over (so new
// rows on the target do not reuse ids the source handed out) and removes
// the job's marker from the target. Its own writes carry the forward
// direction's marks (DDL tag; the marker row), so reverse sync skips them.
func (e *Engine) cutover(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	src, err := openDB(&m.Source, false, 1)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openDB(&m.Target, true, 1)
	if err != nil {
		return err
	}
	defer dst.Close()
	var targetPos *pos
	if m.Modes.ReverseIncremental {
		if err := ensureMeta(ctx, dst); err != nil {
			return fmt.Errorf("target %s: %w", metaDB, err)
		}
		cp, err := decodeJSON[cutoverCheckpoint](rt.Checkpoint())
		if err != nil {
			return err
		}
		if cp == nil || cp.TargetPos == nil {
			dstSrv, err := detect(ctx, dst)
			if err != nil {
				return unreachable("target", &m.Target, err)
			}
			p, err := binlogPos(ctx, dst, dstSrv, "target")
			if err != nil {
				return fmt.Errorf("cutover: the target's binlog position for reverse sync: %w", err)
			}
			cp = &cutoverCheckpoint{TargetPos: &p}
			b, _ := json.Marshal(cp)
			if err := rt.Save(ctx, b); err != nil {
				return err
			}
			rt.Logger().Info("cutover: reverse sync will start at the target's position", "pos", p.String(), "gtid", p.GTID)
		}
		targetPos = cp.TargetPos
	}
	tables, err := listTables(ctx, src, f)
	if err != nil {
		return err
	}
	conn, err := dst.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	n := 0
	for _, t := range tables {
		if t.View || !t.AutoInc.Valid {
			continue
		}
		if err := execDDL(ctx, conn, markerID(m, false), m.Modes.ReverseIncremental, fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d", t.dst(), t.AutoInc.Int64)); err != nil {
			return fmt.Errorf("target: AUTO_INCREMENT of %s: %w", t.dst(), err)
		}
		n++
	}
	if _, err := conn.ExecContext(ctx, "DELETE FROM "+qname(metaDB, "checkpoint")+" WHERE job_id = ?", markerID(m, false)); err != nil {
		var me *gomysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1146 {
			return fmt.Errorf("target: remove the marker: %w", err)
		}
	}
	rt.Progress(ferry.Counters{Done: 1, Total: 1}, 100)
	msg := fmt.Sprintf("cut over: the target holds every change up to the source's final position; AUTO_INCREMENT carried over on %d tables: switch the applications to the target", n)
	if targetPos != nil {
		msg += fmt.Sprintf("; the target's changes from its binlog position %s on flow back to the source", targetPos)
	}
	rt.Message(msg)
	return nil
}
