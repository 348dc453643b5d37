package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strconv"
)

// Chunks of a single-column integer key are value ranges: (lo, lo+step],
// step from the key's span and the table's estimated rows so that a chunk
// holds about ChunkRows rows, the last one unbounded. The key's MIN and MAX
// come from the snapshot (two index dives): no scan of the key to find
// each chunk's end, as LIMIT 1 OFFSET n does. The bounds are key values
// like the ones the OFFSET split finds (int64), so the checkpoint and its
// resume are the same. A chunk starts at the next key after the previous
// one's end (one more index dive), so gaps in the keys make no empty
// chunks; the step grows at most 1000-fold for sparse keys.

func intKey(t *table) bool {
	if len(t.Key) != 1 {
		return false
	}
	switch t.Cols[t.Key[0]].DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return true
	}
	return false
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// produceRanges emits t's chunks as value ranges from lo (nil: the start);
// ok is false when the key is not an integer in int64's range: the caller
// splits by OFFSET then. last is the last chunk's seq.
func (c *copier) produceRanges(ctx context.Context, conn *sql.Conn, tr *tableRun, lo []any, out chan<- chunk) (last int, ok bool, err error) {
	t := tr.t
	if !intKey(t) {
		return 0, false, nil
	}
	k := keyCols(t)
	c.locks[0].Lock()
	mm, err := scanOne(ctx, conn, "SELECT MIN("+k+"), MAX("+k+") FROM "+t.src(), nil, 2)
	c.locks[0].Unlock()
	if err != nil {
		return 0, false, fmt.Errorf("split %s: %w", t.id(), err)
	}
	var min, max int64
	if mm != nil && mm[0] != nil {
		var ok1, ok2 bool
		min, ok1 = asInt64(mm[0])
		max, ok2 = asInt64(mm[1])
		if !ok1 || !ok2 {
			return 0, false, nil
		}
	}
	var cur int64
	if lo != nil {
		v, ok := asInt64(lo[0])
		if !ok {
			return 0, false, nil
		}
		cur = v
	} else {
		cur = min
		if cur > math.MinInt64 {
			cur--
		}
	}
	rows := int64(c.e.chunkRows())
	step := rows
	if span := float64(max) - float64(min) + 1; t.EstRows > 0 && span > float64(t.EstRows) {
		step = int64(math.Min(float64(rows)*span/float64(t.EstRows), float64(rows)*1000))
	}
	seq := 0
	empty := mm == nil || mm[0] == nil
	for {
		if !empty && seq > 0 && cur < max {
			// Skip a gap in the keys: the next chunk starts at the next key.
			c.locks[0].Lock()
			nx, err := scanOne(ctx, conn, "SELECT MIN("+k+") FROM "+t.src()+" WHERE "+k+" > "+strconv.FormatInt(cur, 10), nil, 1)
			c.locks[0].Unlock()
			if err != nil {
				return 0, true, fmt.Errorf("split %s: %w", t.id(), err)
			}
			if nx != nil && nx[0] != nil {
				if n, ok := asInt64(nx[0]); ok && n-1 > cur {
					cur = n - 1
				}
			}
		}
		ch := chunk{tr: tr, seq: seq, lo: lo}
		if !empty && cur < max && uint64(max)-uint64(cur) > uint64(step) {
			ch.hi = []any{cur + step}
		}
		select {
		case out <- ch:
		case <-ctx.Done():
			return 0, true, ctx.Err()
		}
		if ch.hi == nil {
			return seq, true, nil
		}
		cur += step
		lo = ch.hi
		seq++
	}
}
