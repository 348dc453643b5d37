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
	started := time.Now()
	var opsHere int64
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
			if err := ap.apply(ctx, res.changes); err != nil {
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
		switch {
		case res.caughtUp:
			lag = 0
		case !wall.IsZero():
			lag = max(time.Since(wall), 0)
		}
		rt.Lag(lag, wall)
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
		if !cutoverAt.IsZero() && res.caughtUp && lag == 0 {
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
