package scan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
)

// ---------------------------------------------------------------------------
// Steps.

// scanFull runs the full step of the scan mode.
// release ends a step's hold on the session: what was taken from its queue
// and not copied goes back, and a step that failed parks the session for
// its retry while it still covers every change (else closes it).
func (e *Mode) release(id string, sess *scanSession, sc *scanner, err error) {
	sess.q.requeue(sc.unflushed)
	if err != nil && sess.broken() == nil {
		e.Links.Park(id, sess, scanSessionTTL)
	} else if err != nil {
		sess.Close()
	}
}

func (e *Mode) scanFull(ctx context.Context, m *ferry.Migration, o *config.Scan, rt ferry.StepRuntime) (err error) {
	prev, err := readScanCheckpoint(rt.Checkpoint())
	if err != nil {
		return err
	}
	sc, err := e.newScanner(ctx, m, o, rt)
	if err != nil {
		return err
	}
	defer sc.close()
	sess := e.takeSession(m.ID)
	resume := prev != nil && sess != nil && sess.id == prev.Session && sess.broken() == nil
	if prev != nil {
		sc.cp = *prev
	}
	sc.cp.Mode = string(config.ModeScan)
	switch {
	case resume:
		rt.Message(fmt.Sprintf("scan mode: resuming the full scan at db %d, cursor %d (the keyspace notification subscription of the interrupted run is still alive)", prev.DB, prev.Cursor))
	case prev != nil:
		sess.Close()
		sess = nil
		sc.cp = scanCheckpoint{Mode: string(config.ModeScan), Reconcile: true, NotifyOriginal: prev.NotifyOriginal, Rescans: prev.Rescans + 1}
		rt.Message("scan mode: an earlier full scan was interrupted and the keyspace notifications of that time are lost, so the scan starts over (keys deleted meanwhile are removed from the target at its end)")
	}
	if sess == nil {
		sess = &scanSession{q: newChangeQueue(sc.opts.MaxPending)}
		if err := sess.subscribe(ctx, sc); err != nil {
			return err
		}
	}
	defer func() { e.release(m.ID, sess, sc, err) }()
	if sess.id != "" {
		sc.cp.Session = sess.id
	}
	if err := sc.copyFunctions(ctx); err != nil {
		return err
	}
	if !resume {
		rt.Message(fmt.Sprintf("scan mode: keyspace notifications subscribed on %d source node(s); scanning every included db and copying keys by DUMP/RESTORE (%s)", len(sc.src.nodes), weakNote))
	}
	started := time.Now()
	lastSave, lastCheck := time.Now(), time.Now()
	between := func(pos scanUnit, cursor uint64) error {
		if sess.q.len() >= 4*sc.opts.Count {
			// Keep the queue short: copy what changed meanwhile now.
			if _, err := sc.drain(ctx, sess.q, 0); err != nil {
				return err
			}
		}
		if err := sess.broken(); err != nil && sess.id != "" {
			return fmt.Errorf("%w: %v", errNotificationsLost, err)
		}
		if time.Since(lastCheck) >= 5*time.Second && sess.id != "" {
			lastCheck = time.Now()
			if err := sess.check(ctx, sc.src); err != nil {
				return fmt.Errorf("%w: %v", errNotificationsLost, err)
			}
		}
		if time.Since(lastSave) >= 500*time.Millisecond || (cursor == 0 && time.Since(lastSave) >= 100*time.Millisecond) {
			lastSave = time.Now()
			if err := sc.flush(ctx); err != nil {
				return err
			}
			sc.cp.Node, sc.cp.DB, sc.cp.Cursor = pos.node, pos.db, cursor
			sc.cp.Done, sc.cp.Bytes = sc.doneBase+sc.keys, sc.bytesBase+sc.bytes
			sc.keysThisRun = sc.keys
			if err := sc.saveCheckpoint(ctx); err != nil {
				return err
			}
			sc.fullProgress(started, false)
		}
		return nil
	}
	sc.doneBase, sc.bytesBase = sc.cp.Done, sc.cp.Bytes
	fromStart := !resume
	for !(resume && prev.Complete) {
		err := sc.pass(ctx, fromStart, between)
		if err == nil {
			break
		}
		if !errors.Is(err, errNotificationsLost) {
			return err
		}
		sc.rescansNow++
		if sc.rescansNow > maxRescans {
			return fmt.Errorf("%v; gave up after %d restarts of the scan", err, maxRescans)
		}
		rt.Message(fmt.Sprintf("scan mode: %v: subscribing again and starting the scan over (keys deleted meanwhile are removed from the target at its end)", err))
		if err := sess.subscribe(ctx, sc); err != nil {
			return err
		}
		sc.cp.Session, sc.cp.Reconcile, sc.cp.Rescans = sess.id, true, sc.cp.Rescans+1
		sc.keys, sc.bytes, sc.doneBase, sc.bytesBase = 0, 0, 0, 0
		fromStart = true
	}
	if sc.cp.Reconcile {
		if err := sc.reconcile(ctx); err != nil {
			return err
		}
		sc.cp.Reconcile = false
	}
	if err := sc.flush(ctx); err != nil {
		return err
	}
	if !m.Modes.Incremental {
		// No incremental step: copy what changed during the scan once.
		if sess.id != "" {
			if err := sess.check(ctx, sc.src); err != nil {
				sc.notes = append(sc.notes, "changes during the scan may be missing ("+err.Error()+")")
			}
			if _, err := sc.drain(ctx, sess.q, 0); err != nil {
				return err
			}
			if err := sc.flush(ctx); err != nil {
				return err
			}
		}
		sc.restoreNotifications(ctx)
	}
	sc.cp.Complete = true
	sc.cp.Done, sc.cp.Bytes = sc.doneBase+sc.keys, sc.bytesBase+sc.bytes
	sc.keysThisRun = sc.keys
	if err := sc.saveCheckpoint(ctx); err != nil {
		return err
	}
	sc.fullProgress(started, true)
	rt.Message(sc.fullSummary(m.Modes.Incremental, sess.q, started))
	if m.Modes.Incremental && sess.id != "" {
		e.Links.Park(m.ID, sess, scanSessionTTL)
	} else {
		sess.Close()
	}
	return nil
}

// fullSummary is the message that ends the full step: what was copied, what
// the incremental step has queued (incremental: it follows), and weakNote.
func (sc *scanner) fullSummary(incremental bool, q *changeQueue, started time.Time) string {
	msg := fmt.Sprintf("full scan done: %d keys copied (%d big keys in chunks, %d by type-specific commands, %d gone from the source) in %s",
		sc.cp.Done, sc.big, sc.viaCommands, sc.deleted, time.Since(started).Round(time.Millisecond))
	if incremental {
		msg += fmt.Sprintf("; %d changes queued by keyspace notifications for the incremental step", q.len())
	} else {
		msg += "; without incremental sync this is not a point-in-time copy"
	}
	if len(sc.notes) > 0 {
		msg += "; " + strings.Join(sc.notes, "; ")
	}
	return msg + " (" + weakNote + ")"
}

// scanIncremental runs the incremental step of the scan mode: it copies the
// keys the notifications name until cutover.
func (e *Mode) scanIncremental(ctx context.Context, m *ferry.Migration, o *config.Scan, rt ferry.StepRuntime) (err error) {
	cp, err := readScanCheckpoint(rt.Checkpoint())
	if err != nil {
		return err
	}
	if full := m.Step(ferry.StepFull); full != nil {
		if fcp, err := readScanCheckpoint(full.Checkpoint); err == nil && fcp != nil {
			if cp == nil {
				cp = &scanCheckpoint{Rescans: fcp.Rescans}
			}
			if cp.NotifyOriginal == nil {
				cp.NotifyOriginal = fcp.NotifyOriginal
			}
		}
	}
	sc, err := e.newScanner(ctx, m, o, rt)
	if err != nil {
		return err
	}
	defer sc.close()
	if cp != nil {
		sc.cp = *cp
	}
	sc.cp.Mode, sc.cp.Complete = string(config.ModeScan), false
	sess := e.takeSession(m.ID)
	if sess == nil {
		sess = &scanSession{q: newChangeQueue(sc.opts.MaxPending)}
	}
	defer func() { e.release(m.ID, sess, sc, err) }()
	if why := sess.broken(); why != nil {
		if len(sess.ns) == 0 {
			why = errors.New("no live keyspace notification subscription (the agent restarted, or the full step ran elsewhere)")
		}
		if err := sc.rescan(ctx, sess, why); err != nil {
			return err
		}
	}
	sc.cp.Session = sess.id
	if err := sc.saveCheckpoint(ctx); err != nil {
		return err
	}
	rt.Message(fmt.Sprintf("scan mode: copying again each key named by a keyspace notification, de-duplicated, in order (%s)", weakNote))
	ops := sc.cp.Ops
	started, startOps := time.Now(), ops
	lastSave := time.Now()
	report := func() {
		lag := time.Duration(0)
		if t, ok := sc.oldestPending(sess.q); ok {
			lag = time.Since(t)
		}
		rt.Lag(lag, time.Now().Add(-lag))
		rate := 0.0
		if el := time.Since(started).Seconds(); el > 0 {
			rate = float64(ops-startOps) / el
		}
		rt.Progress(ferry.Counters{Ops: ops, Done: ops, RatePerSec: rate, Unit: "keys"}, 0)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	cutover := rt.Cutover()
	for {
		if sess.q.len() > 0 {
			n, err := sc.drain(ctx, sess.q, 16*sc.opts.Count)
			ops += int64(n)
			if err != nil {
				return err
			}
			if err := sc.flush(ctx); err != nil {
				return err
			}
			sc.cp.Ops = ops
		}
		if sess.q.len() > 0 {
			sess.q.signal() // more is queued: come back at once
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cutover:
			n, err := sc.cutover(ctx, sess)
			ops += int64(n)
			if err != nil {
				return err
			}
			sc.cp.Ops = ops
			report()
			if err := sc.saveCheckpoint(ctx); err != nil {
				return err
			}
			msg := fmt.Sprintf("cutover: source writes paused, every key changed before the pause copied again (%d keys in this step, %d rescans)", ops, sc.cp.Rescans)
			if len(sc.notes) > 0 {
				msg += "; " + strings.Join(sc.notes, "; ")
			}
			rt.Message(msg)
			sess.Close()
			return nil
		case <-tick.C:
			if why := sess.check(ctx, sc.src); why != nil {
				if err := sc.rescan(ctx, sess, why); err != nil {
					return err
				}
				sc.cp.Session = sess.id
				rt.Message(fmt.Sprintf("scan mode: rescan done; copying again each key named by a keyspace notification (%s)", weakNote))
			} else {
				sc.rescansNow = 0
			}
			report()
			if time.Since(lastSave) >= 10*time.Second {
				lastSave = time.Now()
				sc.cp.Ops = ops
				if err := sc.saveCheckpoint(ctx); err != nil {
					return err
				}
			}
		case <-sess.q.wake:
		}
	}
}

// cutover pauses the source's writes, waits for every notification sent
// before the pause, and copies what is left.
func (sc *scanner) cutover(ctx context.Context, sess *scanSession) (int, error) {
	for i := 0; i < len(sc.src.nodes) && !sc.opts.NoPause; i++ {
		if _, err := kit.PauseSource(ctx, sc.src.node(i, 0), sc.m); err != nil {
			if isReplyError(errors.Unwrap(err)) {
				return 0, &ferry.Error{Code: ferry.EINVALID, Reason: "CUTOVER_PAUSE_REFUSED", Message: err.Error(),
					Advice: "the source refuses CLIENT PAUSE: stop the application's writes to the source yourself and run the job with options.extra.cutover_pause=none"}
			}
			return 0, err
		}
	}
	if !sc.opts.NoPause && len(sc.src.nodes) > 0 {
		kit.RecordPause(sc.rt, sc.m, time.Now(), "")
	}
	if sc.opts.NoPause {
		ferry.RecordCutover(sc.rt, func(c *ferry.CutoverInfo) {
			c.SourceWriteBlock = ferry.WriteBlockNone
			c.Notes = []string{"ferry did not pause the source's writes (cutover_pause=none): changes made on the source after the cutover began may be missing"}
		})
		sc.notes = append(sc.notes, "source writes were not paused by ferry (cutover_pause=none): changes made after the cutover began may be missing")
		sc.rt.Message("cutover: draining the keyspace notifications (cutover_pause=none: the application must have stopped writing)")
	} else {
		sc.rt.Message("cutover: source writes paused; draining the keyspace notifications")
	}
	for _, n := range sess.ns {
		if err := n.barrier(ctx, 30*time.Second); err != nil {
			return 0, fmt.Errorf("cutover: %w", err)
		}
	}
	if why := sess.check(ctx, sc.src); why != nil {
		// With the source paused a rescan converges.
		if err := sc.rescan(ctx, sess, why); err != nil {
			return 0, err
		}
	}
	n, err := sc.drain(ctx, sess.q, 0)
	if err != nil {
		return n, err
	}
	if err := sc.copyFunctions(ctx); err != nil {
		return n, err
	}
	if err := sc.flush(ctx); err != nil {
		return n, err
	}
	sc.restoreNotifications(ctx)
	sc.rt.Lag(0, time.Now())
	kit.RecordDrained(sc.rt, "every key changed before the pause")
	return n, nil
}
