package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
)

// ---------------------------------------------------------------------------
// Scanning.

type scanUnit struct{ node, db int }

func (u scanUnit) less(v scanUnit) bool {
	return u.node < v.node || (u.node == v.node && u.db < v.db)
}

// units lists what a pass scans, with the number of keys in it.
func (sc *scanner) units(ctx context.Context) ([]scanUnit, int64, error) {
	var us []scanUnit
	var total int64
	for i := range sc.src.nodes {
		keys, err := kit.Keyspace(ctx, sc.src.node(i, 0))
		if err != nil {
			return nil, 0, fmt.Errorf("source INFO keyspace on %s: %w", sc.src.nodes[i], err)
		}
		var dbs []int
		for db, n := range keys {
			if _, ok := sc.f.DB(db); ok && (!sc.src.cluster || db == 0) {
				dbs = append(dbs, db)
				total += n
			}
		}
		sort.Ints(dbs)
		for _, db := range dbs {
			us = append(us, scanUnit{i, db})
		}
	}
	return us, total, nil
}

// scanMatch is the SCAN MATCH pattern that pre-filters keys: the include
// prefix when there is exactly one.
func (sc *scanner) scanMatch() string {
	prefix, ok := sc.f.OnlyPrefix()
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, r := range prefix {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String() + "*"
}

var errNotificationsLost = errors.New("keyspace notifications lost")

// pass scans every unit from the checkpoint's position (from the start
// when fromStart), copying every key. between is called after each batch
// with the position to continue from.
func (sc *scanner) pass(ctx context.Context, fromStart bool, between func(pos scanUnit, cursor uint64) error) error {
	us, total, err := sc.units(ctx)
	if err != nil {
		return err
	}
	sc.total = total
	start, cursor0 := scanUnit{}, uint64(0)
	if !fromStart {
		start, cursor0 = scanUnit{sc.cp.Node, sc.cp.DB}, sc.cp.Cursor
	}
	match := sc.scanMatch()
	for _, u := range us {
		if u.less(start) {
			continue
		}
		cursor := uint64(0)
		if u == start {
			cursor = cursor0
		}
		c := sc.src.node(u.node, u.db)
		for {
			keys, next, err := c.Scan(ctx, cursor, match, int64(sc.opts.Count)).Result()
			if err != nil {
				return fmt.Errorf("source SCAN db %d on %s: %w", u.db, sc.src.nodes[u.node], err)
			}
			if err := sc.copyKeys(ctx, u.db, keys); err != nil {
				return err
			}
			cursor = next
			pos := u
			if cursor == 0 {
				pos = scanUnit{u.node, u.db + 1}
			}
			if err := between(pos, cursor); err != nil {
				return err
			}
			if cursor == 0 {
				break
			}
		}
	}
	return nil
}

// drain copies up to max queued changes (all when max <= 0).
func (sc *scanner) drain(ctx context.Context, q *changeQueue, max int) (int, error) {
	n := 0
	for max <= 0 || n < max {
		batch := q.take(sc.opts.Count)
		if len(batch) == 0 {
			break
		}
		if sc.inflight.IsZero() {
			sc.inflight = batch[0].at
		}
		sc.unflushed = append(sc.unflushed, batch...)
		byDB := map[int][]string{}
		var order []int
		for _, e := range batch {
			if _, ok := byDB[e.k.db]; !ok {
				order = append(order, e.k.db)
			}
			byDB[e.k.db] = append(byDB[e.k.db], e.k.key)
		}
		for _, db := range order {
			if err := sc.copyKeys(ctx, db, byDB[db]); err != nil {
				return n, err
			}
		}
		n += len(batch)
	}
	return n, nil
}

// reconcile removes from the target the keys (of the job's dbs and key
// filters) that no longer exist on the source, after changes were lost.
// It is skipped with conflict policy replace: the target may hold keys of
// its own there.
func (sc *scanner) reconcile(ctx context.Context) error {
	if sc.m.Options.Conflict == ferry.ConflictReplace {
		sc.notes = append(sc.notes, "conflict policy replace: keys deleted from the source while notifications were lost may remain on the target")
		return nil
	}
	if err := sc.flush(ctx); err != nil {
		return err
	}
	dst := kit.Client(&sc.m.Target, 0)
	defer dst.Close()
	tkeys, err := kit.Keyspace(ctx, dst)
	if err != nil {
		return fmt.Errorf("target INFO keyspace: %w", err)
	}
	var removed int64
	check := func(tdb int, keys []string) error {
		keys = sc.keep(keys)
		dbs := sc.sourceDBsOf(tdb)
		if len(keys) == 0 || len(dbs) == 0 {
			return nil
		}
		found := make([]bool, len(keys))
		for _, db := range dbs {
			pipe := sc.src.reader(db).Pipeline()
			cmds := make([]*goredis.IntCmd, len(keys))
			for i, k := range keys {
				cmds[i] = pipe.Exists(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("source EXISTS: %w", err)
			}
			for i, c := range cmds {
				if c.Val() > 0 {
					found[i] = true
				}
			}
		}
		for i, k := range keys {
			if !found[i] {
				removed++
				if err := sc.del(tdb, k); err != nil {
					return err
				}
			}
		}
		return nil
	}
	scanAll := func(c *goredis.Client, tdb int) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, "", int64(sc.opts.Count)).Result()
			if err != nil {
				return fmt.Errorf("target SCAN db %d: %w", tdb, err)
			}
			if err := check(tdb, keys); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := dst.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return scanAll(n, 0) })
	} else {
		var tdbs []int
		for db := range tkeys {
			tdbs = append(tdbs, db)
		}
		sort.Ints(tdbs)
		for _, tdb := range tdbs {
			c := kit.Client(&sc.m.Target, tdb).(*goredis.Client)
			err = scanAll(c, tdb)
			c.Close()
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	if err := sc.flush(ctx); err != nil {
		return err
	}
	if removed > 0 {
		sc.notes = append(sc.notes, fmt.Sprintf("%d keys gone from the source removed from the target", removed))
	}
	return nil
}

func (sc *scanner) saveCheckpoint(ctx context.Context) error {
	sc.cp.Mode = string(config.ModeScan)
	b, err := json.Marshal(sc.cp)
	if err != nil {
		return err
	}
	return sc.rt.Save(ctx, b)
}

func (sc *scanner) fullProgress(started time.Time, final bool) {
	c := ferry.Counters{Done: sc.cp.Done, Total: sc.total, Bytes: sc.cp.Bytes, Unit: "keys"}
	if c.Total < c.Done {
		c.Total = c.Done
	}
	if el := time.Since(started).Seconds(); el > 0 {
		c.RatePerSec = float64(sc.keysThisRun) / el
	}
	pct := 100.0
	if !final {
		pct = 0
		if c.Total > 0 {
			pct = min(99.9, 100*float64(c.Done)/float64(c.Total))
		}
	}
	sc.rt.Progress(c, pct)
}

// oldestPending is the arrival time of the oldest change not yet copied.
func (sc *scanner) oldestPending(q *changeQueue) (time.Time, bool) {
	if !sc.inflight.IsZero() {
		return sc.inflight, true
	}
	return q.oldest()
}

// rescan subscribes again and copies everything, after notifications were
// lost; keys gone from the source are then removed from the target.
func (sc *scanner) rescan(ctx context.Context, sess *scanSession, why error) error {
	sc.rescansNow++
	if sc.rescansNow > maxRescans {
		return fmt.Errorf("keyspace notifications keep being lost (%v): gave up after %d rescans", why, maxRescans)
	}
	sc.cp.Rescans++
	began := time.Now()
	sc.rt.Message(fmt.Sprintf("scan mode: %v; keyspace notifications cannot tell what changed meanwhile, so ferry subscribes again and rescans every db (keys gone from the source are then removed from the target)", why))
	if err := sess.subscribe(ctx, sc); err != nil {
		return err
	}
	sess.dirty = why.Error() // until the rescan completes
	sc.unflushed, sc.inflight = sc.unflushed[:0], began
	lastLag := time.Now()
	err := sc.pass(ctx, true, func(scanUnit, uint64) error {
		if err := sess.lostNow(); err != nil {
			return fmt.Errorf("%w: %v", errNotificationsLost, err)
		}
		if time.Since(lastLag) >= time.Second {
			lastLag = time.Now()
			sc.rt.Lag(time.Since(began), began)
		}
		return nil
	})
	if err == nil {
		err = sc.reconcile(ctx)
	}
	if err == nil {
		err = sc.flush(ctx)
	}
	if errors.Is(err, errNotificationsLost) {
		return sc.rescan(ctx, sess, err)
	}
	if err != nil {
		return err
	}
	sess.dirty = ""
	return nil
}
