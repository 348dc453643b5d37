package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ferrymigrate/ferry"
)

// incremental runs the continuous sync until cutover (then drains) or ctx
// ends.
func (e *Engine) incremental(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	log := rt.Logger()
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	cp, err := decodeJSON[incrCheckpoint](rt.Checkpoint())
	if err != nil {
		return err
	}
	src, err := connect(ctx, &m.Source, "source")
	if err != nil {
		return err
	}
	defer disconnect(src)
	dst, err := connect(ctx, &m.Target, "target")
	if err != nil {
		return err
	}
	defer disconnect(dst)
	ss, err := describe(ctx, src)
	if err != nil {
		return err
	}
	var or *oplogReader
	save := func() error {
		if or != nil && or.quirks {
			cp.Recent = or.lastApplied()
		}
		b, _ := json.Marshal(cp)
		return rt.Save(ctx, b)
	}
	if cp == nil {
		cp = &incrCheckpoint{}
		var full *fullCheckpoint
		if s := m.Step(ferry.StepFull); s != nil {
			if full, err = decodeJSON[fullCheckpoint](s.Checkpoint); err != nil {
				return err
			}
		}
		if full != nil && full.Reader != "" {
			cp.Reader, cp.TS, cp.Token = full.Reader, full.TS, full.Token
		} else {
			// No initial sync: start from now.
			probeReaders(ctx, src, &ss)
			if cp.Reader, err = pickReader(m, ss); err != nil {
				return err
			}
			rp := &fullCheckpoint{Reader: cp.Reader}
			if err := recordResumePoint(ctx, src, rp); err != nil {
				return err
			}
			cp.TS, cp.Token = rp.TS, rp.Token
		}
		if err := save(); err != nil {
			return err
		}
	} else {
		cp.Resumes++
		log.Info("continuous sync resumes from its checkpoint", "reader", cp.Reader, "ts", cp.TS, "ops", cp.Ops)
	}

	var r reader
	switch cp.Reader {
	case ReaderOplog:
		or = newOplogReader(src, f, cp.TS, ss.FerretDB, cp.Recent)
		r = or
	case ReaderChangeStream:
		r = newStreamReader(src, f, cp.Token)
	default:
		return fmt.Errorf("unknown reader %q in the checkpoint", cp.Reader)
	}
	defer r.close()
	ap := &applier{src: src, dst: dst, workers: e.applyWorkers(), log: log}

	readerName := map[string]string{ReaderOplog: "oplog", ReaderChangeStream: "change stream"}[cp.Reader]
	lastSave := time.Now()
	lastEvent := time.Now()
	var cutoverAt time.Time
	var lag time.Duration
	wall := cp.Wall
	if wall.IsZero() && !tsIsZero(cp.TS) {
		// Nothing applied yet: the sync is as old as its resume point.
		wall = time.Unix(int64(cp.TS.T), 0)
	}
	started := time.Now()
	var opsHere int64
	pr := &prober{every: e.probeEvery()}
	for {
		if cutoverAt.IsZero() {
			select {
			case <-rt.Cutover():
				cutoverAt = time.Now()
				log.Info("cutover requested: draining the continuous sync")
				at := posString(cp)
				ferry.RecordCutover(rt, func(c *ferry.CutoverInfo) {
					c.SourceWriteBlock = ferry.WriteBlockNone
					c.SourcePosition = at + " (when cutover was asked for)"
					c.Notes = []string{fmt.Sprintf("cutover does not stop the source's writes: ferry drains until no change arrives for %s; a change written to the source after that is not on the target", e.quiet())}
				})
			default:
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := r.next(ctx)
		if err != nil {
			if errors.Is(err, errResumeLost) {
				return lostResumeError()
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if len(res.changes) > 0 {
			// While the batch applies, the lag is the age of its oldest
			// change and keeps growing if the apply stalls.
			stopLag := keepLag(rt, res.first, wall, lag)
			err := ap.apply(ctx, res.changes)
			stopLag()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			}
			cp.Ops += int64(len(res.changes))
			opsHere += int64(len(res.changes))
		}
		if res.entries > 0 {
			lastEvent = time.Now()
		}
		cp.TS, cp.Token = res.pos.TS, res.pos.Token
		if !res.pos.Wall.IsZero() {
			wall = res.pos.Wall
			cp.Wall = wall
		}
		// Caught up only when the source is known to have nothing newer
		// than what was read and applied (an empty read alone proves
		// nothing): the probe, run beside the reading, confirms it for a
		// position; until then the lag is the age of the last change
		// applied, which keeps growing.
		pos := position{TS: cp.TS}
		if len(res.changes) == 0 {
			pr.start(ctx, r, pos)
		}
		caughtUp := false
		if pres, ok := pr.result(); ok && pres.err == nil {
			switch {
			case !pres.behind && pres.at.TS == pos.TS:
				caughtUp = true
			case pres.behind && !pres.oldest.IsZero() && pres.at.TS == pos.TS:
				lag = max(time.Since(pres.oldest), 0)
			}
		} else if ok && ctx.Err() == nil && pres.err != pr.warned {
			pr.warned = pres.err
			log.Warn("could not tell whether the continuous sync is caught up", "err", pres.err)
		}
		known := true
		switch {
		case caughtUp:
			lag = 0
		case len(res.changes) > 0 && !wall.IsZero():
			lag = max(time.Since(wall), 0)
		case !wall.IsZero():
			lag = max(time.Since(wall), lag)
		default:
			known = false // no position in time yet: no lag to report
		}
		if known {
			rt.Lag(lag, wall)
		}
		rate := float64(opsHere) / max(time.Since(started).Seconds(), 0.001)
		rt.Progress(ferry.Counters{Done: cp.Ops, Total: cp.Ops, Ops: cp.Ops, Unit: "changes", RatePerSec: rate}, 0)
		if time.Since(lastSave) >= e.saveEvery() {
			rt.Message(fmt.Sprintf("continuous sync by %s: %d changes applied (%d updates resolved by reading the source), lag %s, at %s",
				readerName, cp.Ops, ap.fetches, lag.Round(time.Second), posString(cp)))
			if err := save(); err != nil {
				return err
			}
			lastSave = time.Now()
		}
		if !cutoverAt.IsZero() && caughtUp && lag == 0 {
			quietSince := lastEvent
			if cutoverAt.After(quietSince) {
				quietSince = cutoverAt
			}
			if time.Since(quietSince) >= e.quiet() {
				rt.Lag(0, wall)
				rt.Message(fmt.Sprintf("continuous sync drained for cutover: %d changes applied, no change for %s, at %s", cp.Ops, e.quiet(), posString(cp)))
				drained, now := posString(cp), time.Now()
				ferry.RecordCutover(rt, func(c *ferry.CutoverInfo) { c.DrainedPosition, c.DrainedAt = drained, &now })
				return save()
			}
		}
	}
}

func posString(cp *incrCheckpoint) string {
	if cp.Reader == ReaderChangeStream {
		return "resume token " + bson.Raw(cp.Token).String()
	}
	return fmt.Sprintf("oplog ts %d.%d", cp.TS.T, cp.TS.I)
}

// keepLag reports, every lagTick until stopped, the lag of a batch being
// applied: the age of its oldest change (first), at least the lag known
// before it. appliedAt is the source time of the last change applied.
func keepLag(rt ferry.StepRuntime, first, appliedAt time.Time, before time.Duration) (stop func()) {
	report := func() {
		lag := before
		if !first.IsZero() {
			lag = max(lag, time.Since(first))
		}
		rt.Lag(lag, appliedAt)
	}
	report()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(lagTick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				report()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// lagTick is how often a stalled apply refreshes the lag it reports.
const lagTick = 250 * time.Millisecond

// prober runs reader.behind beside the reading loop, one probe at a time,
// at most every `every`, and keeps the last answer.
type prober struct {
	every   time.Duration
	running chan probeResult
	last    *probeResult
	ended   time.Time
	warned  error
}

type probeResult struct {
	at     position
	behind bool
	oldest time.Time
	err    error
}

// start begins a probe of position at unless one runs, the last one ended
// less than every ago, or the last answer is for at and said caught up
// (re-confirmed only every 5*every).
func (p *prober) start(ctx context.Context, r reader, at position) {
	if p.running != nil || time.Since(p.ended) < p.every {
		return
	}
	if l := p.last; l != nil && l.err == nil && !l.behind && l.at.TS == at.TS && time.Since(p.ended) < 5*p.every {
		return
	}
	ch := make(chan probeResult, 1)
	p.running = ch
	go func() {
		behind, oldest, err := r.behind(ctx, at)
		ch <- probeResult{at: at, behind: behind, oldest: oldest, err: err}
	}()
}

// result returns the last finished probe's answer.
func (p *prober) result() (probeResult, bool) {
	if p.running != nil {
		select {
		case res := <-p.running:
			p.running, p.last, p.ended = nil, &res, time.Now()
		default:
		}
	}
	if p.last == nil {
		return probeResult{}, false
	}
	return *p.last, true
}
