package redis

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
	"github.com/ferrymigrate/ferry/engine/redis/rdb"
	"github.com/ferrymigrate/ferry/engine/redis/writer"
)

// session is a live replication link and the writer it feeds.
type session struct {
	l  *link
	w  *writer.Writer
	cp checkpoint
	// base is the master offset at which the command stream began, start
	// the link reader's byte count there.
	base, start int64
	expire      *time.Timer
}

func (s *session) close() {
	if s == nil {
		return
	}
	if s.expire != nil {
		s.expire.Stop()
	}
	s.l.close()
	if s.w != nil {
		_ = s.w.Close()
	}
}

// sessionTTL bounds how long a link handed from the full step waits for the
// incremental step on this agent.
const sessionTTL = time.Minute

func (e *Engine) putSession(id string, s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.sessions[id]; old != nil {
		old.close()
	}
	e.sessions[id] = s
	s.expire = time.AfterFunc(sessionTTL, func() {
		e.mu.Lock()
		if e.sessions[id] == s {
			delete(e.sessions, id)
			s.close()
		}
		e.mu.Unlock()
	})
}

func (e *Engine) takeSession(id string) *session {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sessions[id]
	delete(e.sessions, id)
	if s != nil && s.expire != nil {
		s.expire.Stop()
	}
	return s
}

func (e *Engine) dropSession(id string) { e.takeSession(id).close() }

// flushTarget empties the target dbs the job writes to, before a full sync
// is repeated over ferry's own partial copy (only when the job owns the
// target: conflict policy fail, checked empty by the precheck).
func flushTarget(ctx context.Context, m *ferry.Migration, f *filter, srcKeys map[int]int64) error {
	if m.Options.Conflict == ferry.ConflictReplace {
		return nil
	}
	dbs := map[int]bool{}
	for db := range srcKeys {
		if t, ok := f.db(db); ok {
			dbs[t] = true
		}
	}
	if m.Target.Cluster {
		c := client(&m.Target, 0)
		defer c.Close()
		return c.(*goredis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error {
			return n.FlushDB(ctx).Err()
		})
	}
	for db := range dbs {
		c := client(&m.Target, db)
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
func (e *Engine) full(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	var prev checkpoint
	if raw := rt.Checkpoint(); len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &prev); err != nil {
			return fmt.Errorf("bad redis checkpoint: %w", err)
		}
	}
	src := client(&m.Source, 0)
	keys, err := keyspace(ctx, src)
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
		s.close()
		return err
	}
	if m.Modes.Incremental {
		e.putSession(m.ID, s)
	} else {
		s.close()
	}
	return nil
}

// openFull dials, asks for a full sync and applies the RDB.
func (e *Engine) openFull(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime, f *filter, keys map[int]int64, replace bool) (*session, error) {
	w, err := newWriter(ctx, m, e.WriterConns)
	if err != nil {
		return nil, err
	}
	l, err := dialLink(ctx, &m.Source, m.Source.Addrs[0], m.Options.BandwidthLimitMB)
	if err != nil {
		w.Close()
		return nil, err
	}
	s := &session{l: l, w: w}
	res, err := l.handshake("?", -1)
	if err == nil && !res.Full {
		err = errors.New("the source answered PSYNC ? -1 without a full resync")
	}
	if err != nil {
		s.close()
		return nil, err
	}
	if err := s.receiveRDB(ctx, m, rt, f, keys, replace || m.Options.Conflict == ferry.ConflictReplace); err != nil {
		s.close()
		return nil, err
	}
	s.cp = checkpoint{ReplID: res.ReplID, Offset: res.Offset, FullResyncs: 1}
	s.base, s.start = res.Offset, l.r.Offset()
	return s, nil
}

// receiveRDB parses the RDB from the link as it arrives and writes it.
func (s *session) receiveRDB(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime, f *filter, keys map[int]int64, replace bool) error {
	stop := context.AfterFunc(ctx, func() { _ = s.l.conn.SetDeadline(time.Now()) })
	defer stop()
	// The master may take a while to produce the RDB (BGSAVE): it sends
	// newlines meanwhile, which ReadRDBPreamble skips.
	pre, err := s.l.r.ReadRDBPreamble()
	if err != nil {
		return fmt.Errorf("read RDB preamble: %w", err)
	}
	var total int64
	for db, n := range keys {
		if _, ok := f.db(db); ok {
			total += n
		}
	}
	begin := s.l.r.Offset()
	started := time.Now()
	last := started
	ap := &rdbApplier{w: s.w, f: f, replace: replace}
	report := func() {
		done := ap.keys.Load() + ap.skipped.Load()
		c := ferry.Counters{Done: ap.keys.Load(), Total: total, Bytes: s.l.r.Offset() - begin, Unit: "keys"}
		if pre.Size > 0 {
			c.BytesTotal = pre.Size
		}
		if el := time.Since(started).Seconds(); el > 0 {
			c.RatePerSec = float64(ap.keys.Load()) / el
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
	ap.onKey = func() {
		if n := ap.keys.Load(); n%1024 == 0 {
			if now := time.Now(); now.Sub(last) > 250*time.Millisecond {
				last = now
				report()
			}
		}
	}
	rt.Message(fmt.Sprintf("receiving the source's RDB (%s) and writing it to the target", describePreamble(pre.Size)))
	info, err := rdb.ParseOptions(s.l.r, ap, rdb.Options{CaptureRaw: true, MaxRawBytes: maxRestoreBytes})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("RDB from the source: %w", err)
	}
	if pre.Diskless() {
		if err := s.l.r.ReadEOFMark(pre.EOFMark); err != nil {
			return fmt.Errorf("end of diskless RDB: %w", err)
		}
	} else if got := s.l.r.Offset() - begin; got != pre.Size {
		return fmt.Errorf("RDB announced %d bytes but the parser consumed %d", pre.Size, got)
	}
	if err := s.w.Flush(ctx); err != nil {
		return fmt.Errorf("write to target: %w", err)
	}
	c := ferry.Counters{Done: ap.keys.Load(), Total: total, Bytes: s.l.r.Offset() - begin, BytesTotal: pre.Size, Unit: "keys"}
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
		ap.keys.Load(), ap.skipped.Load(), info.Functions, info.Version, info.Bytes, time.Since(started).Round(time.Millisecond)))
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
			args, err := s.l.r.ReadCommand()
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
			b.offs = append(b.offs, s.base+(s.l.r.Offset()-s.start))
			if s.l.r.Buffered() == 0 || len(b.cmds) >= 1024 || size >= 1<<20 {
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
func (e *Engine) incremental(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	s := e.takeSession(m.ID)
	if s == nil {
		if s, err = e.resume(ctx, m, rt, f); err != nil {
			return err
		}
	}
	defer s.close()
	ctl := client(&m.Source, 0)
	defer ctl.Close()
	ap, err := e.streamApplier(ctx, m, s)
	if err != nil {
		return err
	}
	defer ap.Close()

	batches := make(chan *streamBatch, 64)
	done := make(chan struct{})
	defer close(done)
	stop := context.AfterFunc(ctx, func() { _ = s.l.conn.SetDeadline(time.Now()) })
	defer stop()
	go s.reader(batches, done)

	consumed := s.cp.Offset // master offset of the last byte read and handed to the writer
	applied := s.cp.Offset  // ... and acknowledged by the target
	ops := s.cp.Ops
	db := 0
	var cutoverAt int64 = -1
	cutover := rt.Cutover()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	caught := time.Now() // the latest time at which ferry had applied everything the source had
	var samples []sample
	started, startOps, startOffset := time.Now(), ops, applied
	touched := map[dbKey]bool{} // streams whose consumer groups the stream changed
	inTx := false

	sync := func(final bool) error {
		// Sample the source's offset before flushing, so "applied >= M"
		// means ferry holds everything the source had at that moment.
		now := time.Now()
		mo, merr := masterOffset(ctx, ctl)
		ap.Advance(consumed)
		got, err := ap.Flush(ctx)
		if err != nil {
			return err
		}
		applied = got
		s.cp.Offset, s.cp.Ops = applied, ops
		b, _ := json.Marshal(s.cp)
		if err := rt.Save(ctx, b); err != nil {
			return err
		}
		if err := s.l.ack(applied); err != nil && !final {
			return fmt.Errorf("REPLCONF ACK: %w", err)
		}
		if merr == nil {
			samples = append(samples, sample{now, mo})
		}
		for len(samples) > 0 && samples[0].off <= applied {
			caught = samples[0].t
			samples = samples[1:]
		}
		lag := time.Since(caught)
		var lagBytes int64
		if merr == nil {
			lagBytes = max(mo-applied, 0)
		}
		if final || (merr == nil && applied >= mo) {
			lag, caught = 0, now
		}
		rt.Lag(lag, caught)
		rate := 0.0
		if el := time.Since(started).Seconds(); el > 0 {
			rate = float64(ops-startOps) / el
		}
		rt.Progress(ferry.Counters{Ops: ops, Done: ops, Bytes: applied - startOffset, LagBytes: lagBytes, RatePerSec: rate, Unit: "commands"}, 0)
		return nil
	}

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := sync(false); err != nil {
				return err
			}
		case <-cutover:
			cutover = nil
			at, err := pauseSource(ctx, ctl, m)
			if err != nil {
				return err
			}
			cutoverAt = at
			recordPause(rt, m, time.Now(), fmt.Sprintf("offset %d", at))
			rt.Message(fmt.Sprintf("cutover: source writes paused at offset %d; draining", at))
		case b, ok := <-batches:
			if !ok {
				return errors.New("replication link closed")
			}
			for i, args := range b.cmds {
				consumed = b.offs[i]
				if len(args) == 0 {
					continue
				}
				name := strings.ToUpper(string(args[0]))
				switch name {
				case "SELECT":
					if len(args) > 1 {
						db, _ = strconv.Atoi(string(args[1]))
					}
					ap.Advance(consumed)
					continue
				case "PING":
					ap.Advance(consumed)
					continue
				case "REPLCONF":
					if len(args) > 1 && strings.EqualFold(string(args[1]), "GETACK") {
						if err := s.l.ack(applied); err != nil {
							return fmt.Errorf("REPLCONF ACK: %w", err)
						}
					}
					ap.Advance(consumed)
					continue
				case "MULTI":
					inTx = true
				case "EXEC", "DISCARD":
					inTx = false
				}
				tdb, ok := f.db(db)
				if !ok || (len(args) > 1 && f.keysFiltered() && !isKeyless(name) && !f.key(args[1])) {
					ap.Advance(consumed)
					continue
				}
				if err := ap.Do(tdb, consumed, args, inTx); err != nil {
					return fmt.Errorf("write to target: %w", err)
				}
				if name[0] == 'X' && len(args) > 1 && streamGroupCommand(name) {
					k := streamKey(name, args)
					if k != "" {
						touched[dbKey{db, tdb, k}] = true
					}
				}
				ops++
			}
			if b.err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("replication link: %w", b.err)
			}
		}
		if cutoverAt >= 0 && consumed >= cutoverAt {
			if err := sync(true); err != nil {
				return err
			}
			if err := repairStreamGroups(ctx, m, touched); err != nil {
				return err
			}
			if !m.Target.Cluster {
				if err := deleteMarker(ctx, &m.Target, m.ID); err != nil {
					return fmt.Errorf("cutover: delete the offset marker: %w", err)
				}
			}
			recordDrained(rt, fmt.Sprintf("offset %d", applied))
			rt.Message(fmt.Sprintf("cutover: applied everything up to the source's final offset %d (%d commands)", applied, ops))
			return nil
		}
	}
}

type sample struct {
	t   time.Time
	off int64
}

// isKeyless reports commands of the stream whose first argument is not a key.
func isKeyless(name string) bool {
	switch name {
	case "FLUSHDB", "FLUSHALL", "MULTI", "EXEC", "DISCARD", "SWAPDB", "FUNCTION", "SCRIPT", "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO", "PUBLISH", "SPUBLISH":
		return true
	}
	return false
}

func masterOffset(ctx context.Context, c goredis.UniversalClient) (int64, error) {
	v, err := infoField(ctx, c, "replication", "master_repl_offset")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// pauseSource pauses the source's writes for cutover and returns the
// master offset that then holds every write.
func pauseSource(ctx context.Context, c goredis.UniversalClient, m *ferry.Migration) (int64, error) {
	sec := pauseSeconds(m)
	if err := c.Do(ctx, "CLIENT", "PAUSE", strconv.Itoa(sec*1000), "WRITE").Err(); err != nil {
		return 0, fmt.Errorf("cutover: CLIENT PAUSE WRITE on the source: %w", err)
	}
	off, err := masterOffset(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("cutover: source offset: %w", err)
	}
	return off, nil
}

// pauseSeconds is how long cutover pauses the source's writes:
// options.extra.cutover_pause_seconds, 300 by default.
func pauseSeconds(m *ferry.Migration) int {
	if v, err := strconv.Atoi(m.Options.Extra["cutover_pause_seconds"]); err == nil && v > 0 {
		return v
	}
	return 300
}

// recordPause reports the source's write pause to the job's cutover record.
func recordPause(rt ferry.StepRuntime, m *ferry.Migration, at time.Time, pos string) {
	until := at.Add(time.Duration(pauseSeconds(m)) * time.Second)
	ferry.RecordCutover(rt, func(c *ferry.CutoverInfo) {
		c.SourceWriteBlock = ferry.WriteBlockClientPause
		if c.SourceBlockedAt == nil || c.SourceReleasedAt != nil { // a resumed cutover pauses again: keep the first time
			c.SourceBlockedAt = &at
		}
		c.SourceBlockedUntil, c.SourceReleasedAt = &until, nil
		c.SourcePosition = pos
		c.Notes = []string{fmt.Sprintf("the source's writes are paused (CLIENT PAUSE WRITE for %d s, until %s): clients writing to it wait; switch them to the target, or lift the pause with release-source", pauseSeconds(m), until.UTC().Format(time.RFC3339))}
	})
}

// CutoverPlan says what cutover does to the source (ferry.CutoverPlanner).
func (e *Engine) CutoverPlan(m *ferry.Migration) string {
	if m.Options.Extra["mode"] == ModeScan && m.Options.Extra["cutover_pause"] == "none" {
		return "cutover does not pause the source's writes (cutover_pause=none): stop the application's writes before cutting over"
	}
	if m.Options.ReleaseSourceAfterCutover {
		return fmt.Sprintf("cutover pauses the source's writes (CLIENT PAUSE WRITE for %d s) while it drains and verifies, and lifts the pause when the job completes (releaseSourceAfterCutover): writes to the source after that are not migrated", pauseSeconds(m))
	}
	return fmt.Sprintf("cutover pauses the source's writes (CLIENT PAUSE WRITE for %d s) and leaves them paused after the target has every change: switch the clients to the target, or lift the pause with release-source", pauseSeconds(m))
}

// recordDrained reports the position the target holds every change up to.
func recordDrained(rt ferry.StepRuntime, pos string) {
	now := time.Now()
	ferry.RecordCutover(rt, func(c *ferry.CutoverInfo) {
		c.DrainedPosition, c.DrainedAt = pos, &now
	})
}

// ReleaseSource lifts the write pause cutover put on the source (CLIENT
// UNPAUSE on it, on every master of a cluster source); ferry.SourceReleaser.
func (e *Engine) ReleaseSource(ctx context.Context, m *ferry.Migration) error {
	c := client(&m.Source, 0)
	defer c.Close()
	unpause := func(ctx context.Context, c goredis.UniversalClient) error {
		return c.Do(ctx, "CLIENT", "UNPAUSE").Err()
	}
	var err error
	if cc, ok := c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return unpause(ctx, n) })
	} else {
		err = unpause(ctx, c)
	}
	if err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "SOURCE_RELEASE_FAILED",
			Message: fmt.Sprintf("CLIENT UNPAUSE on the source %s: %v", strings.Join(m.Source.Addrs, ","), err),
			Advice:  "run CLIENT UNPAUSE on the source yourself (Redis 6.2 or newer), or wait for the pause to end"}
	}
	return nil
}

// resume reopens the link from a checkpoint: a partial resync when the
// source's backlog still holds the next byte, else a full resync.
func (e *Engine) resume(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime, f *filter) (*session, error) {
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
	l, err := dialLink(ctx, &m.Source, m.Source.Addrs[0], m.Options.BandwidthLimitMB)
	if err != nil {
		return nil, err
	}
	res, err := l.handshake(cp.ReplID, cp.Offset)
	if err != nil {
		l.close()
		return nil, err
	}
	w, err := newWriter(ctx, m, e.WriterConns)
	if err != nil {
		l.close()
		return nil, err
	}
	s := &session{l: l, w: w, cp: *cp}
	if !res.Full {
		s.cp.PartialResyncs++
		s.cp.ReplID = res.ReplID
		s.base, s.start = cp.Offset, l.r.Offset()
		rt.Message(fmt.Sprintf("resumed by partial resync from offset %d", cp.Offset+1))
		return s, nil
	}
	rt.Message(fmt.Sprintf("the source's backlog no longer holds offset %d: full resync", cp.Offset+1))
	src := client(&m.Source, 0)
	keys, err := keyspace(ctx, src)
	src.Close()
	if err == nil {
		err = flushTarget(ctx, m, f, keys)
	}
	if err == nil {
		err = s.receiveRDB(ctx, m, rt, f, keys, true)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	s.cp.ReplID, s.cp.Offset = res.ReplID, res.Offset
	s.cp.FullResyncs++
	s.base, s.start = res.Offset, l.r.Offset()
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
		src := client(&m.Source, k.srcDB)
		groups, err := src.XInfoGroups(ctx, k.key).Result()
		src.Close()
		if err != nil {
			if err == goredis.Nil || strings.Contains(err.Error(), "no such key") {
				continue
			}
			return fmt.Errorf("cutover: XINFO GROUPS %q on the source: %w", k.key, err)
		}
		dst := client(&m.Target, k.dstDB)
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
func (e *Engine) streamApplier(ctx context.Context, m *ferry.Migration, s *session) (streamApplier, error) {
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
