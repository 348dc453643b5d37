package verify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

type meta struct {
	typ string
	exp int64 // absolute expiry in ms; -1 none; -2 missing
}

func (v *verifier) metas(ctx context.Context, c redis.UniversalClient, keys []string) ([]meta, error) {
	for {
		noExpT := v.noExpT.Load()
		now := time.Now().UnixMilli()
		cmds, err := pipe(ctx, c, func(p redis.Pipeliner) {
			for _, k := range keys {
				p.Type(ctx, k)
				if noExpT {
					p.PTTL(ctx, k)
				} else {
					p.Do(ctx, "PEXPIRETIME", k)
				}
			}
		})
		if err != nil {
			return nil, err
		}
		out := make([]meta, len(keys))
		retry := false
		for i := range keys {
			tc, ec := cmds[2*i].(*redis.StatusCmd), cmds[2*i+1]
			if err := tc.Err(); err != nil {
				return nil, fmt.Errorf("verify: TYPE %q: %w", keys[i], err)
			}
			out[i].typ = tc.Val()
			if noExpT {
				d := ec.(*redis.DurationCmd)
				if d.Err() != nil {
					return nil, fmt.Errorf("verify: PTTL %q: %w", keys[i], d.Err())
				}
				switch ms := d.Val(); ms {
				case -1, -2: // go-redis reports PTTL's -1 and -2 as such
					out[i].exp = int64(ms)
				default:
					out[i].exp = now + ms.Milliseconds()
				}
				continue
			}
			n, err := ec.(*redis.Cmd).Int64()
			if err != nil {
				if strings.Contains(strings.ToLower(err.Error()), "unknown command") {
					v.noExpT.Store(true)
					retry = true
					break
				}
				return nil, fmt.Errorf("verify: PEXPIRETIME %q: %w", keys[i], err)
			}
			out[i].exp = n
		}
		if !retry {
			return out, nil
		}
	}
}

// compareBatch compares keys and updates the pending differences.
func (v *verifier) compareBatch(ctx context.Context, db int, src, dst redis.UniversalClient, keys []string) error {
	var ms [2][]meta
	cl := [2]redis.UniversalClient{src, dst}
	if err := both(func(s int) (err error) { ms[s], err = v.metas(ctx, cl[s], keys); return }); err != nil {
		return err
	}
	diffs := make([]*Diff, len(keys))
	var same []int
	for i, k := range keys {
		a, b := ms[0][i], ms[1][i]
		switch {
		case a.typ == "none" && b.typ == "none":
		case b.typ == "none":
			diffs[i] = &Diff{DB: db, Key: k, Kind: Missing, Detail: "not on the target (source type " + a.typ + ")"}
		case a.typ == "none":
			diffs[i] = &Diff{DB: db, Key: k, Kind: Extra, Detail: "only on the target (type " + b.typ + ")"}
		case a.typ != b.typ:
			diffs[i] = &Diff{DB: db, Key: k, Kind: Type, Detail: fmt.Sprintf("type %s on the source, %s on the target", a.typ, b.typ)}
		default:
			if d := v.ttlDiff(a.exp, b.exp); d != "" {
				diffs[i] = &Diff{DB: db, Key: k, Kind: TTL, Detail: d}
			}
			same = append(same, i)
		}
	}
	if len(same) > 0 {
		if err := v.compareValues(ctx, db, src, dst, keys, ms[0], same, diffs); err != nil {
			return err
		}
	}
	v.mu.Lock()
	for i, k := range keys {
		dk := dbKey{db, k}
		if diffs[i] == nil {
			delete(v.pending, dk)
		} else {
			v.pending[dk] = *diffs[i]
		}
	}
	v.mu.Unlock()
	return nil
}

func (v *verifier) ttlDiff(a, b int64) string {
	switch {
	case a < 0 && b < 0:
		return ""
	case a < 0:
		return fmt.Sprintf("no expiry on the source, expires at %d ms on the target", b)
	case b < 0:
		return fmt.Sprintf("expires at %d ms on the source, no expiry on the target", a)
	}
	d := a - b
	if d < 0 {
		d = -d
	}
	if time.Duration(d)*time.Millisecond > v.opts.TTLTolerance {
		return fmt.Sprintf("expires at %d ms on the source, %d ms on the target (%d ms apart)", a, b, d)
	}
	return ""
}

var sizeCmd = map[string]string{
	"string": "STRLEN", "list": "LLEN", "set": "SCARD", "hash": "HLEN", "zset": "ZCARD", "stream": "XLEN",
}

const bigString = 1 << 20

// compareValues compares the values of keys[same] (same type on both
// sides), setting diffs[i] for those that differ (a value difference
// replaces a TTL one).
func (v *verifier) compareValues(ctx context.Context, db int, src, dst redis.UniversalClient, keys []string, m []meta, same []int, diffs []*Diff) error {
	cl := [2]redis.UniversalClient{src, dst}
	set := func(i int, kind Kind, detail string) {
		diffs[i] = &Diff{DB: db, Key: keys[i], Kind: kind, Detail: detail}
	}
	// Sizes.
	var sized []int
	for _, i := range same {
		if _, ok := sizeCmd[m[i].typ]; ok {
			sized = append(sized, i)
		}
	}
	sizes, err := readSizes(ctx, cl, keys, m, sized)
	if err != nil {
		return err
	}
	var small, big []int
	for j, i := range sized {
		if sizes[0][j] != sizes[1][j] {
			set(i, Value, fmt.Sprintf("%s %d on the source, %d on the target", lenName(m[i].typ), sizes[0][j], sizes[1][j]))
			continue
		}
		switch {
		case m[i].typ == "stream":
			big = append(big, i)
		case m[i].typ == "string" && sizes[0][j] > bigString:
			big = append(big, i)
		case m[i].typ != "string" && sizes[0][j] > int64(v.opts.Chunk):
			big = append(big, i)
		default:
			small = append(small, i)
		}
	}
	// Small values: read whole, in one pipeline per side.
	if len(small) > 0 {
		if err := compareSmall(ctx, cl, keys, m, small, set); err != nil {
			return err
		}
	}
	// Big keys, streams and other types: one at a time, in chunks.
	for _, i := range big {
		kind, d, err := v.compareBig(ctx, src, dst, keys[i], m[i].typ)
		if err != nil {
			if isWrongType(err) {
				set(i, Type, "type changed during the compare")
				continue
			}
			return err
		}
		if d != "" {
			set(i, kind, d)
		}
	}
	// Module or unknown types: DUMP payloads.
	return compareDumps(ctx, cl, keys, m, same, set)
}

func isWrongType(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")
}

func lenName(typ string) string {
	switch typ {
	case "string":
		return "length"
	case "stream":
		return "XLEN"
	}
	return "cardinality"
}

// readSizes reads the size (sizeCmd) of keys[sized] on both sides; -1 for a
// key whose type changed meanwhile.
func readSizes(ctx context.Context, cl [2]redis.UniversalClient, keys []string, m []meta, sized []int) ([2][]int64, error) {
	var sizes [2][]int64
	err := both(func(s int) error {
		cmds, err := pipe(ctx, cl[s], func(p redis.Pipeliner) {
			for _, i := range sized {
				p.Do(ctx, sizeCmd[m[i].typ], keys[i])
			}
		})
		if err != nil {
			return err
		}
		sizes[s] = make([]int64, len(sized))
		for j, c := range cmds {
			n, err := c.(*redis.Cmd).Int64()
			if err != nil && err != redis.Nil {
				if isWrongType(err) {
					n = -1 // changed type meanwhile: differs now, re-checked later
				} else {
					return fmt.Errorf("verify: %s %q: %w", sizeCmd[m[sized[j]].typ], keys[sized[j]], err)
				}
			}
			sizes[s][j] = n
		}
		return nil
	})
	return sizes, err
}

// compareSmall compares keys[small], read whole in one pipeline per side.
func compareSmall(ctx context.Context, cl [2]redis.UniversalClient, keys []string, m []meta, small []int, set func(int, Kind, string)) error {
	var vals [2][]redis.Cmder
	err := both(func(s int) (err error) {
		vals[s], err = pipe(ctx, cl[s], func(p redis.Pipeliner) {
			for _, i := range small {
				k := keys[i]
				switch m[i].typ {
				case "string":
					p.Get(ctx, k)
				case "list":
					p.LRange(ctx, k, 0, -1)
				case "set":
					p.SMembers(ctx, k)
				case "hash":
					p.HGetAll(ctx, k)
				case "zset":
					p.ZRangeWithScores(ctx, k, 0, -1)
				}
			}
		})
		return err
	})
	if err != nil {
		return err
	}
	for j, i := range small {
		a, b := vals[0][j], vals[1][j]
		if ea, eb := a.Err(), b.Err(); (ea != nil && ea != redis.Nil) || (eb != nil && eb != redis.Nil) {
			if isWrongType(ea) || isWrongType(eb) {
				set(i, Type, "type changed during the compare")
				continue
			}
			return fmt.Errorf("verify: reading %q: %v %v", keys[i], ea, eb)
		}
		if d := diffSmall(m[i].typ, a, b); d != "" {
			set(i, Value, d)
		}
	}
	return nil
}

// compareDumps compares the DUMP payloads of the keys[same] of module or
// unknown types (those without a sizeCmd).
func compareDumps(ctx context.Context, cl [2]redis.UniversalClient, keys []string, m []meta, same []int, set func(int, Kind, string)) error {
	for _, i := range same {
		if _, ok := sizeCmd[m[i].typ]; ok {
			continue
		}
		var dumps [2]string
		err := both(func(s int) error {
			d, err := cl[s].Dump(ctx, keys[i]).Result()
			if err != nil && err != redis.Nil {
				return fmt.Errorf("verify: DUMP %q: %w", keys[i], err)
			}
			dumps[s] = d
			return nil
		})
		if err != nil {
			return err
		}
		if dumps[0] != dumps[1] {
			set(i, Value, fmt.Sprintf("%s: DUMP payloads differ (%d and %d bytes)", m[i].typ, len(dumps[0]), len(dumps[1])))
		}
	}
	return nil
}
