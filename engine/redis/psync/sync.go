package psync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
	"github.com/ferrymigrate/ferry/engine/redis/rdb"
	"github.com/ferrymigrate/ferry/engine/redis/writer"
)

// session is a live replication link and the writer it feeds.
type session struct {
	l  *kit.Link
	w  *writer.Writer
	cp checkpoint
	// base is the master offset at which the command stream began, start
	// the link reader's byte count there.
	base, start int64
}

// sessionTTL bounds how long a link handed from the full step waits for the
// incremental step on this agent.
const sessionTTL = time.Minute

// Close closes the link and the writer (kit.Parked).
func (s *session) Close() {
	if s == nil {
		return
	}
	s.l.Close()
	if s.w != nil {
		_ = s.w.Close()
	}
}

// flushTarget empties the target dbs the job writes to, before a full sync
// is repeated over ferry's own partial copy (only when the job owns the
// target: conflict policy fail, checked empty by the precheck).
func flushTarget(ctx context.Context, m *ferry.Migration, f *kit.Filter, srcKeys map[int]int64) error {
	if m.Options.Conflict == ferry.ConflictReplace {
		return nil
	}
	dbs := map[int]bool{}
	for db := range srcKeys {
		if t, ok := f.DB(db); ok {
			dbs[t] = true
		}
	}
	if m.Target.Cluster {
		c := kit.Client(&m.Target, 0)
		defer c.Close()
		return c.(*goredis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error {
			return n.FlushDB(ctx).Err()
		})
	}
	for db := range dbs {
		c := kit.Client(&m.Target, db)
		err := c.FlushDB(ctx).Err()
		c.Close()
		if err != nil {
			return fmt.Errorf("flush target db %d before a new full sync: %w", db, err)
		}
	}
	return nil
}

// full runs the full step: PSYNC ? -1, the RDB parsed as it streams in and
// written to the target. The link stays open for the incremental step.
func (e *Mode) full(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := kit.NewFilter(m)
	if err != nil {
		return err
	}
	var prev checkpoint
	if raw := rt.Checkpoint(); len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &prev); err != nil {
			return fmt.Errorf("bad redis checkpoint: %w", err)
		}
	}
	src := kit.Client(&m.Source, 0)
	keys, err := kit.Keyspace(ctx, src)
	src.Close()
	if err != nil {
		return fmt.Errorf("source INFO keyspace: %w", err)
	}
	restarted := prev.Started || prev.ReplID != ""
	if restarted {
		rt.Message("an earlier full sync was interrupted: emptying the target and starting the full sync again")
		if err := flushTarget(ctx, m, f, keys); err != nil {
			return err
		}
	}
	// Record that a full sync is under way before writing anything, so a
	// sync killed midway is known to have left a partial copy.
	begun := checkpoint{Started: true, FullResyncs: prev.FullResyncs + 1, PartialResyncs: prev.PartialResyncs}
	b, _ := json.Marshal(begun)
	if err := rt.Save(ctx, b); err != nil {
		return err
	}
	s, err := e.openFull(ctx, m, rt, f, keys, restarted)
	if err != nil {
		return err
	}
	s.cp.FullResyncs, s.cp.PartialResyncs = begun.FullResyncs, begun.PartialResyncs
	b, _ = json.Marshal(s.cp)
	if err := rt.Save(ctx, b); err != nil {
		s.Close()
		return err
	}
	if m.Modes.Incremental {
		e.Links.Park(m.ID, s, sessionTTL)
	} else {
		s.Close()
	}
	return nil
}

// openFull dials, asks for a full sync and applies the RDB.
func (e *Mode) openFull(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime, f *kit.Filter, keys map[int]int64, replace bool) (*session, error) {
	w, err := kit.NewWriter(ctx, m, e.WriterConns)
	if err != nil {
		return nil, err
	}
	l, err := kit.DialLink(ctx, &m.Source, m.Source.Addrs[0], m.Options.BandwidthLimitMB)
	if err != nil {
		w.Close()
		return nil, err
	}
	s := &session{l: l, w: w}
	res, err := l.Handshake("?", -1)
	if err == nil && !res.Full {
		err = errors.New("the source answered PSYNC ? -1 without a full resync")
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.receiveRDB(ctx, m, rt, f, keys, replace || m.Options.Conflict == ferry.ConflictReplace); err != nil {
		s.Close()
		return nil, err
	}
	s.cp = checkpoint{ReplID: res.ReplID, Offset: res.Offset, FullResyncs: 1}
	s.base, s.start = res.Offset, l.R.Offset()
	return s, nil
}

// receiveRDB parses the RDB from the link as it arrives and writes it.
func (s *session) receiveRDB(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime, f *kit.Filter, keys map[int]int64, replace bool) error {
	stop := context.AfterFunc(ctx, func() { _ = s.l.Conn.SetDeadline(time.Now()) })
	defer stop()
	// The master may take a while to produce the RDB (BGSAVE): it sends
	// newlines meanwhile, which ReadRDBPreamble skips.
	pre, err := s.l.R.ReadRDBPreamble()
	if err != nil {
		return fmt.Errorf("read RDB preamble: %w", err)
	}
	var total int64
	for db, n := range keys {
		if _, ok := f.DB(db); ok {
			total += n
		}
	}
	begin := s.l.R.Offset()
	started := time.Now()
	last := started
	ap := &kit.RDBApplier{W: s.w, F: f, Replace: replace}
	report := func() {
		done := ap.Keys.Load() + ap.Skipped.Load()
		c := ferry.Counters{Done: ap.Keys.Load(), Total: total, Bytes: s.l.R.Offset() - begin, Unit: "keys"}
		if pre.Size > 0 {
			c.BytesTotal = pre.Size
		}
		if el := time.Since(started).Seconds(); el > 0 {
			c.RatePerSec = float64(ap.Keys.Load()) / el
		}
		pct := 0.0
		switch {
		case c.BytesTotal > 0:
			pct = 100 * float64(c.Bytes) / float64(c.BytesTotal)
		case total > 0:
			pct = 100 * float64(done) / float64(total)
		}
		if pct > 99.9 {
			pct = 99.9
		}
		rt.Progress(c, pct)
	}
	ap.OnKey = func() {
		if n := ap.Keys.Load(); n%1024 == 0 {
			if now := time.Now(); now.Sub(last) > 250*time.Millisecond {
				last = now
				report()
			}
		}
	}
	rt.Message(fmt.Sprintf("receiving the source's RDB (%s) and writing it to the target", describePreamble(pre.Size)))
	info, err := rdb.ParseOptions(s.l.R, ap, rdb.Options{CaptureRaw: true, MaxRawBytes: kit.MaxRestoreBytes})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("RDB from the source: %w", err)
	}
	if pre.Diskless() {
		if err := s.l.R.ReadEOFMark(pre.EOFMark); err != nil {
			return fmt.Errorf("end of diskless RDB: %w", err)
		}
	} else if got := s.l.R.Offset() - begin; got != pre.Size {
		return fmt.Errorf("RDB announced %d bytes but the parser consumed %d", pre.Size, got)
	}
	if err := s.w.Flush(ctx); err != nil {
		return fmt.Errorf("write to target: %w", err)
	}
	c := ferry.Counters{Done: ap.Keys.Load(), Total: total, Bytes: s.l.R.Offset() - begin, BytesTotal: pre.Size, Unit: "keys"}
	if c.Total < c.Done {
		c.Total = c.Done
	}
	if c.BytesTotal < c.Bytes {
		c.BytesTotal = c.Bytes
	}
	if el := time.Since(started).Seconds(); el > 0 {
		c.RatePerSec = float64(c.Done) / el
	}
	rt.Progress(c, 100)
	rt.Message(fmt.Sprintf("full sync done: %d keys (%d filtered out), %d functions, RDB v%d of %d bytes in %s",
		ap.Keys.Load(), ap.Skipped.Load(), info.Functions, info.Version, info.Bytes, time.Since(started).Round(time.Millisecond)))
	return nil
}

func describePreamble(size int64) string {
	if size < 0 {
		return "diskless"
	}
	return strconv.FormatInt(size, 10) + " bytes"
}

// streamBatch is a run of commands read from the link, copied out of the
// reader's buffer, with the master offset after each.
type streamBatch struct {
	cmds [][][]byte
	offs []int64
	err  error
}

// reader reads the command stream into batches until the link fails.
func (s *session) reader(out chan<- *streamBatch, done <-chan struct{}) {
	defer close(out)
	for {
		b := &streamBatch{}
		size := 0
		for {
			args, err := s.l.R.ReadCommand()
			if err != nil {
				b.err = err
				break
			}
			cp := make([][]byte, len(args))
			for i, a := range args {
				cp[i] = append([]byte(nil), a...)
				size += len(a)
			}
			b.cmds = append(b.cmds, cp)
			b.offs = append(b.offs, s.base+(s.l.R.Offset()-s.start))
			if s.l.R.Buffered() == 0 || len(b.cmds) >= 1024 || size >= 1<<20 {
				break
			}
		}
		select {
		case out <- b:
		case <-done:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// incremental applies the command stream until cutover.
func (e *Mode) incremental(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := kit.NewFilter(m)
	if err != nil {
		return err
	}
	s := e.takeSession(m.ID)
	if s == nil {
		if s, err = e.resume(ctx, m, rt, f); err != nil {
			return err
		}
	}
	defer s.Close()
	ctl := kit.Client(&m.Source, 0)
	defer ctl.Close()
	ap, err := e.streamApplier(ctx, m, s)
	if err != nil {
		return err
	}
	defer ap.Close()

	batches := make(chan *streamBatch, 64)
	done := make(chan struct{})
	defer close(done)
	stop := context.AfterFunc(ctx, func() { _ = s.l.Conn.SetDeadline(time.Now()) })
	defer stop()
	go s.reader(batches, done)

	st := &streamRun{m: m, rt: rt, s: s, f: f, ap: ap, ctl: ctl,
		consumed: s.cp.Offset, applied: s.cp.Offset, ops: s.cp.Ops, cutoverAt: -1,
		caught: time.Now(), started: time.Now(), touched: map[dbKey]bool{}}
	st.startOps, st.startOffset = st.ops, st.applied
	cutover := rt.Cutover()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := st.sync(ctx, false); err != nil {
				return err
			}
		case <-cutover:
			cutover = nil
			at, err := kit.PauseSource(ctx, ctl, m)
			if err != nil {
				return err
			}
			st.cutoverAt = at
			kit.RecordPause(rt, m, time.Now(), fmt.Sprintf("offset %d", at))
			rt.Message(fmt.Sprintf("cutover: source writes paused at offset %d; draining", at))
		case b, ok := <-batches:
			if !ok {
				return errors.New("replication link closed")
			}
			if err := st.apply(b); err != nil {
				return err
			}
			if b.err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("replication link: %w", b.err)
			}
		}
		if st.cutoverAt >= 0 && st.consumed >= st.cutoverAt {
			return st.finish(ctx)
		}
	}
}

// streamRun is the state of one incremental step.
type streamRun struct {
	m   *ferry.Migration
	rt  ferry.StepRuntime
	s   *session
	f   *kit.Filter
	ap  streamApplier
	ctl goredis.UniversalClient

	consumed  int64 // master offset of the last byte read and handed to the writer
	applied   int64 // ... and acknowledged by the target
	ops       int64
	db        int
	inTx      bool
	cutoverAt int64     // the source's offset when its writes were paused; -1 before cutover
	caught    time.Time // the latest time at which ferry had applied everything the source had
	samples   []sample
	touched   map[dbKey]bool // streams whose consumer groups the stream changed

	started               time.Time
	startOps, startOffset int64
}

// sync flushes the target, saves the checkpoint, acknowledges the source
// and reports lag and progress.
func (st *streamRun) sync(ctx context.Context, final bool) error {
	// Sample the source's offset before flushing, so "applied >= M"
	// means ferry holds everything the source had at that moment.
	now := time.Now()
	mo, merr := kit.MasterOffset(ctx, st.ctl)
	st.ap.Advance(st.consumed)
	got, err := st.ap.Flush(ctx)
	if err != nil {
		return err
	}
	st.applied = got
	st.s.cp.Offset, st.s.cp.Ops = st.applied, st.ops
	b, _ := json.Marshal(st.s.cp)
	if err := st.rt.Save(ctx, b); err != nil {
		return err
	}
	if err := st.s.l.Ack(st.applied); err != nil && !final {
		return fmt.Errorf("REPLCONF ACK: %w", err)
	}
	if merr == nil {
		st.samples = append(st.samples, sample{now, mo})
	}
	for len(st.samples) > 0 && st.samples[0].off <= st.applied {
		st.caught = st.samples[0].t
		st.samples = st.samples[1:]
	}
	lag := time.Since(st.caught)
	var lagBytes int64
	if merr == nil {
		lagBytes = max(mo-st.applied, 0)
	}
	if final || (merr == nil && st.applied >= mo) {
		lag, st.caught = 0, now
	}
	st.rt.Lag(lag, st.caught)
	rate := 0.0
	if el := time.Since(st.started).Seconds(); el > 0 {
		rate = float64(st.ops-st.startOps) / el
	}
	st.rt.Progress(ferry.Counters{Ops: st.ops, Done: st.ops, Bytes: st.applied - st.startOffset, LagBytes: lagBytes, RatePerSec: rate, Unit: "commands"}, 0)
	return nil
}

// apply hands a batch of the stream's commands to the target, following
// SELECT, answering GETACK and filtering dbs and keys.
func (st *streamRun) apply(b *streamBatch) error {
	f, ap := st.f, st.ap
	for i, args := range b.cmds {
		st.consumed = b.offs[i]
		if len(args) == 0 {
			continue
		}
		name := strings.ToUpper(string(args[0]))
		switch name {
		case "SELECT":
			if len(args) > 1 {
				st.db, _ = strconv.Atoi(string(args[1]))
			}
			ap.Advance(st.consumed)
			continue
		case "PING":
			ap.Advance(st.consumed)
			continue
		case "REPLCONF":
			if len(args) > 1 && strings.EqualFold(string(args[1]), "GETACK") {
				if err := st.s.l.Ack(st.applied); err != nil {
					return fmt.Errorf("REPLCONF ACK: %w", err)
				}
			}
			ap.Advance(st.consumed)
			continue
		case "MULTI":
			st.inTx = true
		case "EXEC", "DISCARD":
			st.inTx = false
		}
		tdb, ok := f.DB(st.db)
		if !ok || (len(args) > 1 && f.KeysFiltered() && !kit.IsKeyless(name) && !f.Key(args[1])) {
			ap.Advance(st.consumed)
			continue
		}
		if err := ap.Do(tdb, st.consumed, args, st.inTx); err != nil {
			return fmt.Errorf("write to target: %w", err)
		}
		if name[0] == 'X' && len(args) > 1 && streamGroupCommand(name) {
			if k := streamKey(name, args); k != "" {
				st.touched[dbKey{st.db, tdb, k}] = true
			}
		}
		st.ops++
	}
	return nil
}

// finish ends the step once everything up to the source's final offset is
// read: the last flush, the consumer groups repaired, the marker deleted.
func (st *streamRun) finish(ctx context.Context) error {
	m := st.m
	if err := st.sync(ctx, true); err != nil {
		return err
	}
	if err := repairStreamGroups(ctx, m, st.touched); err != nil {
		return err
	}
	if !m.Target.Cluster {
		if err := deleteMarker(ctx, &m.Target, m.ID); err != nil {
			return fmt.Errorf("cutover: delete the offset marker: %w", err)
		}
	}
	kit.RecordDrained(st.rt, fmt.Sprintf("offset %d", st.applied))
	st.rt.Message(fmt.Sprintf("cutover: applied everything up to the source's final offset %d (%d commands)", st.applied, st.ops))
	return nil
}

type sample struct {
	t   time.Time
	off int64
}

// resume reopens the link from a checkpoint: a partial resync when the
// source's backlog still holds the next byte, else a full resync.
func (e *Mode) resume(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime, f *kit.Filter) (*session, error) {
	cp, err := readCheckpoint(rt.Checkpoint())
	if err != nil {
		return nil, err
	}
	if cp == nil {
		if full := m.Step(ferry.StepFull); full != nil {
			if cp, err = readCheckpoint(full.Checkpoint); err != nil {
				return nil, err
			}
		}
	}
	if cp == nil {
		return nil, &ferry.Error{Code: ferry.EINVALID, Message: "incremental sync has no replication checkpoint to start from", Advice: "run the migration with full sync enabled"}
	}
	if !m.Target.Cluster {
		// The target may hold commands applied after the last checkpoint
		// (the agent was killed between two saves): its marker says.
		mk, err := readMarker(ctx, &m.Target, m.ID, cp.ReplID)
		if err != nil {
			return nil, err
		}
		if mk > cp.Offset {
			cp.Offset = mk
		}
	}
	l, err := kit.DialLink(ctx, &m.Source, m.Source.Addrs[0], m.Options.BandwidthLimitMB)
	if err != nil {
		return nil, err
	}
	res, err := l.Handshake(cp.ReplID, cp.Offset)
	if err != nil {
		l.Close()
		return nil, err
	}
	w, err := kit.NewWriter(ctx, m, e.WriterConns)
	if err != nil {
		l.Close()
		return nil, err
	}
	s := &session{l: l, w: w, cp: *cp}
	if !res.Full {
		s.cp.PartialResyncs++
		s.cp.ReplID = res.ReplID
		s.base, s.start = cp.Offset, l.R.Offset()
		rt.Message(fmt.Sprintf("resumed by partial resync from offset %d", cp.Offset+1))
		return s, nil
	}
	rt.Message(fmt.Sprintf("the source's backlog no longer holds offset %d: full resync", cp.Offset+1))
	src := kit.Client(&m.Source, 0)
	keys, err := kit.Keyspace(ctx, src)
	src.Close()
	if err == nil {
		err = flushTarget(ctx, m, f, keys)
	}
	if err == nil {
		err = s.receiveRDB(ctx, m, rt, f, keys, true)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	s.cp.ReplID, s.cp.Offset = res.ReplID, res.Offset
	s.cp.FullResyncs++
	s.base, s.start = res.Offset, l.R.Offset()
	return s, nil
}

type dbKey struct {
	srcDB, dstDB int
	key          string
}

// streamGroupCommand reports the stream commands that change a consumer
// group's state.
func streamGroupCommand(name string) bool {
	switch name {
	case "XGROUP", "XCLAIM", "XAUTOCLAIM", "XREADGROUP", "XACK", "XSETID":
		return true
	}
	return false
}

func streamKey(name string, args [][]byte) string {
	if name == "XGROUP" {
		if len(args) > 2 {
			return string(args[2])
		}
		return ""
	}
	return string(args[1])
}

// repairStreamGroups copies the consumer groups' entries-read counters of
// the streams the command stream touched. Redis 7.0 propagates XREADGROUP
// as XCLAIM ... LASTID, which moves last-delivered-id but not entries-read,
// so a replica (and so ferry's target) would otherwise report it unknown.
// At cutover the source's writes are paused, so the values are final.
func repairStreamGroups(ctx context.Context, m *ferry.Migration, touched map[dbKey]bool) error {
	if len(touched) == 0 {
		return nil
	}
	for k := range touched {
		src := kit.Client(&m.Source, k.srcDB)
		groups, err := src.XInfoGroups(ctx, k.key).Result()
		src.Close()
		if err != nil {
			if err == goredis.Nil || strings.Contains(err.Error(), "no such key") {
				continue
			}
			return fmt.Errorf("cutover: XINFO GROUPS %q on the source: %w", k.key, err)
		}
		dst := kit.Client(&m.Target, k.dstDB)
		for _, g := range groups {
			args := []any{"XGROUP", "SETID", k.key, g.Name, g.LastDeliveredID}
			if g.EntriesRead > 0 || g.Lag == 0 {
				args = append(args, "ENTRIESREAD", g.EntriesRead)
			}
			if err := dst.Do(ctx, args...).Err(); err != nil {
				dst.Close()
				return fmt.Errorf("cutover: XGROUP SETID %q %q on the target: %w", k.key, g.Name, err)
			}
		}
		dst.Close()
	}
	return nil
}

// streamApplier applies the command stream; Flush returns the source
// offset the target holds.
type streamApplier interface {
	Do(db int, off int64, args [][]byte, inTx bool) error
	Advance(off int64)
	Flush(ctx context.Context) (int64, error)
	Close() error
}

// streamApplier picks exactly-once transactional batches with an offset
// marker for a standalone target, and the parallel writer for a cluster
// (where a batch cannot span slots; there a killed agent's resume may
// re-apply the commands since the last checkpoint).
func (e *Mode) streamApplier(ctx context.Context, m *ferry.Migration, s *session) (streamApplier, error) {
	if m.Target.Cluster {
		return &writerApplier{w: s.w, off: s.cp.Offset}, nil
	}
	tx, err := newTxApplier(ctx, &m.Target, m.ID, s.cp.ReplID, s.cp.Offset)
	if err != nil {
		return nil, err
	}
	tx.lastOff = s.cp.Offset
	return tx, nil
}

// writerApplier adapts the parallel writer (cluster targets).
type writerApplier struct {
	w   *writer.Writer
	off int64
}

func (a *writerApplier) Do(db int, off int64, args [][]byte, inTx bool) error {
	a.off = off
	return a.w.Do(db, args...)
}
func (a *writerApplier) Advance(off int64) { a.off = max(a.off, off) }
func (a *writerApplier) Flush(ctx context.Context) (int64, error) {
	if err := a.w.Flush(ctx); err != nil {
		return 0, fmt.Errorf("write to target: %w", err)
	}
	return a.off, nil
}
func (a *writerApplier) Close() error { return nil }
