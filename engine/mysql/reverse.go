package mysql

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferrymigrate/ferry"
)

// reverse is the reverse incremental step (REVERSE_INCR_SYNC): after
// cutover the applications write to the target, and ferry brings those
// changes back to the source from the target's binlog, so that the source
// stays a place to roll back to. It is the incremental step with the sides
// swapped (same reader, parallel appliers, DDL handling and checkpoint
// markers, the marker rows "<job>/reverse" and "<job>/reverse#<n>" in
// ferry_meta.checkpoint on the SOURCE) and
// the job's filter inverted (renamed databases and tables map back). It
// starts at the target position the cutover step recorded and runs until
// the job is released (ctx ends: returning ctx.Err() then is normal).
//
// The loop guard keeps ferry from reading its own writes back (see the
// package documentation): every transaction ferry applies in a job with
// reverse sync starts by bumping its direction's marker row, and every DDL
// statement it applies carries a tag comment; each direction's reader
// skips whole transactions and statements that carry the other direction's
// marks. The reverse reader so skips the forward sync's and the cutover
// step's writes on the target, and anything that would read the source's
// binlog for this job skips the reverse sync's writes there.
func (e *Engine) reverse(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	// The reading side is the target (its binlog, and values come back raw
	// as on a source session); the written side is the source.
	rd, err := openDB(&m.Target, false, 1)
	if err != nil {
		return err
	}
	defer rd.Close()
	wr, err := openDB(&m.Source, true, e.applyWorkers()+1)
	if err != nil {
		return err
	}
	defer wr.Close()
	rdSrv, err := detect(ctx, rd)
	if err != nil {
		return unreachable("target", &m.Target, err)
	}
	if _, err := detect(ctx, wr); err != nil {
		return unreachable("source", &m.Source, err)
	}
	if err := ensureMeta(ctx, wr); err != nil {
		return fmt.Errorf("source %s: %w", metaDB, err)
	}
	cp, err := decodeJSON[incrCheckpoint](rt.Checkpoint())
	if err != nil {
		return err
	}
	if cp == nil {
		cp = &incrCheckpoint{}
		var cut *cutoverCheckpoint
		if s := m.Step(ferry.StepCutover); s != nil {
			if cut, err = decodeJSON[cutoverCheckpoint](s.Checkpoint); err != nil {
				return err
			}
		}
		if cut != nil && cut.TargetPos != nil {
			cp.Pos = *cut.TargetPos
		} else {
			// No position from the cutover step (a job cut over by an older
			// ferry): from now on.
			if cp.Pos, err = binlogPos(ctx, rd, rdSrv, "target"); err != nil {
				return err
			}
			rt.Logger().Warn("no target position recorded at cutover: reverse sync starts at the target's current position", "pos", cp.Pos.String())
		}
		cp.EventTime = time.Now().Unix()
	} else {
		cp.Resumes++
	}
	id := markerID(m, true)
	mk, err := readMarker(ctx, wr, id)
	if err != nil {
		return fmt.Errorf("read %s.checkpoint on the source: %w", metaDB, err)
	}
	cp.fromMarker(rt, mk, "source")
	s := &syncer{e: e, m: m, rt: rt, log: rt.Logger(), f: f.reversed(), ep: &m.Target, reverse: true, src: rd, dst: wr, srcSrv: rdSrv, cp: cp,
		tables: map[string]*table{}, uniq: map[*table][][]int{}, workers: e.applyWorkers(), batch: e.batchRows(),
		json: !rdSrv.MariaDB, side: "source", guard: true, markerID: id, guardID: markerID(m, false)}
	b, _ := json.Marshal(cp)
	if err := rt.Save(ctx, b); err != nil {
		return err
	}
	return s.run(ctx)
}
