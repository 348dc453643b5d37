package verify

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// chunk is one key range (lo, hi] of a table (nil bounds are open); a
// key-less table, or one absent on a side, is a single chunk.
type chunk struct {
	t      *tableInfo
	lo, hi []any
}

// diffRec is a difference found in a chunk; count > 1 for rows of a
// key-less table present several times more on one side.
type diffRec struct {
	found
	count int64
	hash  []byte // key-less rows: the 128-bit row hash
}

// both runs fs on the source and fd on the target at the same time.
func both(fs, fd func() error) error {
	ch := make(chan error, 1)
	go func() { ch <- fd() }()
	err := fs()
	if e := <-ch; err == nil {
		err = e
	}
	return err
}

// checksum compares a chunk's count and hash on both sides; srcRows is the
// source's count.
func (s *session) checksum(ctx context.Context, c *chunk) (same bool, srcRows int64, err error) {
	t := c.t
	if !t.srcExists || !t.dstExists {
		conn, q := s.src, t.srcQ
		if !t.srcExists {
			conn, q = s.dst, t.dstQ
		}
		var n int64
		if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+q).Scan(&n); err != nil {
			return false, 0, fmt.Errorf("verify: count %s: %w", q, err)
		}
		if t.srcExists {
			srcRows = n
		}
		return n == 0, srcRows, nil
	}
	var where string
	var args []any
	agg := "BIT_XOR"
	if t.key == nil {
		where, agg = "1 = 1", "SUM" // a multiset: duplicates must not cancel out
	} else {
		where, args = t.rangeWhere(c.lo, c.hi)
	}
	var sc, dc int64
	var sh, dh string
	query := func(conn *sql.Conn, table, hash string, n *int64, h *string) func() error {
		return func() error {
			q := fmt.Sprintf("SELECT COUNT(*), CAST(COALESCE(%s(%s), 0) AS CHAR) FROM %s WHERE %s", agg, h64(hash), table, where)
			if err := conn.QueryRowContext(ctx, q, args...).Scan(n, h); err != nil {
				return fmt.Errorf("verify: checksum %s: %w", table, err)
			}
			return nil
		}
	}
	if err := both(query(s.src, t.srcQ, t.srcHash, &sc, &sh), query(s.dst, t.dstQ, t.dstHash, &dc, &dh)); err != nil {
		return false, 0, err
	}
	return sc == dc && sh == dh, sc, nil
}

// absentDiff reports the rows of a table that exists on one side only.
func (s *session) absentDiff(ctx context.Context, t *tableInfo) ([]*diffRec, error) {
	same, n, err := s.checksum(ctx, &chunk{t: t})
	if err != nil || same {
		return nil, err
	}
	d := &diffRec{found: found{Diff: Diff{Table: t.name, Kind: Missing,
		Detail: fmt.Sprintf("table %s.%s does not exist on the target: all %d source rows are missing", t.t.DstDB, t.t.DstName, n)}, t: t}, count: n}
	if !t.srcExists {
		if err := s.dst.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.dstQ).Scan(&n); err != nil {
			return nil, err
		}
		d.Kind, d.count = Extra, n
		d.Detail = fmt.Sprintf("table %s.%s does not exist on the source: all %d target rows are extra", t.t.DstDB, t.t.DstName, n)
	}
	return []*diffRec{d}, nil
}

type rowRec struct {
	key  []any
	hash string
}

// readRows reads the key and 128-bit hash of every row of the chunk on one
// side.
func readRows(ctx context.Context, conn *sql.Conn, t *tableInfo, table, hash string, c *chunk) (map[string]rowRec, error) {
	where, args := t.rangeWhere(c.lo, c.hi)
	q := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s", t.keySel(), hash, table, where)
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("verify: read rows of %s: %w", table, err)
	}
	defer rows.Close()
	raw := make([]sql.RawBytes, len(t.key)+1)
	dest := make([]any, len(raw))
	for i := range raw {
		dest[i] = &raw[i]
	}
	out := map[string]rowRec{}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		key, err := t.params(raw[:len(t.key)])
		if err != nil {
			return nil, err
		}
		out[keyID(key)] = rowRec{key: key, hash: string(raw[len(t.key)])}
	}
	return out, rows.Err()
}

// rowDiff reads a differing chunk row by row on both sides and names the
// keys missing, extra or different.
func (s *session) rowDiff(ctx context.Context, c *chunk) ([]*diffRec, error) {
	t := c.t
	if !t.srcExists || !t.dstExists {
		return s.absentDiff(ctx, t)
	}
	var src, dst map[string]rowRec
	err := both(func() (err error) {
		src, err = readRows(ctx, s.src, t, t.srcQ, t.srcHash, c)
		return err
	}, func() (err error) {
		dst, err = readRows(ctx, s.dst, t, t.dstQ, t.dstHash, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []*diffRec
	add := func(r rowRec, k Kind, detail string) {
		out = append(out, &diffRec{found: found{Diff: Diff{Table: t.name, Key: t.keyString(r.key), Kind: k, Detail: detail}, t: t, key: r.key}})
	}
	for id, r := range src {
		d, ok := dst[id]
		switch {
		case !ok:
			add(r, Missing, "on the source, not on the target")
		case d.hash != r.hash:
			add(r, Different, "row values differ")
		}
		delete(dst, id)
	}
	for _, r := range dst {
		add(r, Extra, "on the target, not on the source")
	}
	return out, nil
}

// multisetDiff compares a key-less table as a multiset: both sides grouped
// by 128-bit row hash with counts, merged in hash order.
func (s *session) multisetDiff(ctx context.Context, t *tableInfo, sampleLimit int) ([]*diffRec, error) {
	if !t.srcExists || !t.dstExists {
		return s.absentDiff(ctx, t)
	}
	open := func(conn *sql.Conn, table, hash string) (*sql.Rows, error) {
		q := fmt.Sprintf("SELECT UNHEX(%s) AS h, COUNT(*) FROM %s GROUP BY h ORDER BY h", hash, table)
		rows, err := conn.QueryContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("verify: group the rows of %s: %w", table, err)
		}
		return rows, nil
	}
	var sr, dr *sql.Rows
	err := both(func() (err error) {
		sr, err = open(s.src, t.srcQ, t.srcHash)
		return err
	}, func() (err error) {
		dr, err = open(s.dst, t.dstQ, t.dstHash)
		return err
	})
	if sr != nil {
		defer sr.Close()
	}
	if dr != nil {
		defer dr.Close()
	}
	if err != nil {
		return nil, err
	}
	type group struct {
		h []byte
		n int64
	}
	next := func(rows *sql.Rows) (*group, error) {
		if !rows.Next() {
			return nil, rows.Err()
		}
		var g group
		if err := rows.Scan(&g.h, &g.n); err != nil {
			return nil, err
		}
		return &g, nil
	}
	var out []*diffRec
	onlySrc := map[string]bool{} // sample hashes to render, by side
	onlyDst := map[string]bool{}
	emit := func(h []byte, sn, dn int64) {
		d := &diffRec{found: found{Diff: Diff{Table: t.name, Key: fmt.Sprintf("row md5 %x", h),
			Detail: fmt.Sprintf("%d on the source, %d on the target", sn, dn)}, t: t}, hash: h}
		if sn > dn {
			d.Kind, d.count = Missing, sn-dn
		} else {
			d.Kind, d.count = Extra, dn-sn
		}
		out = append(out, d)
		if len(onlySrc)+len(onlyDst) < sampleLimit {
			if sn > 0 {
				onlySrc[string(h)] = true
			} else {
				onlyDst[string(h)] = true
			}
		}
	}
	a, err := next(sr)
	if err != nil {
		return nil, err
	}
	b, err := next(dr)
	if err != nil {
		return nil, err
	}
	for a != nil || b != nil {
		switch {
		case b == nil || (a != nil && bytes.Compare(a.h, b.h) < 0):
			emit(a.h, a.n, 0)
			if a, err = next(sr); err != nil {
				return nil, err
			}
		case a == nil || bytes.Compare(a.h, b.h) > 0:
			emit(b.h, 0, b.n)
			if b, err = next(dr); err != nil {
				return nil, err
			}
		default:
			if a.n != b.n {
				emit(a.h, a.n, b.n)
			}
			if a, err = next(sr); err != nil {
				return nil, err
			}
			if b, err = next(dr); err != nil {
				return nil, err
			}
		}
	}
	// Render the sampled rows: "(v1, v2, ...)".
	rendered := map[string]string{}
	for _, side := range []struct {
		conn        *sql.Conn
		table, hash string
		want        map[string]bool
		srcCols     bool
	}{{s.src, t.srcQ, t.srcHash, onlySrc, true}, {s.dst, t.dstQ, t.dstHash, onlyDst, false}} {
		if len(side.want) == 0 {
			continue
		}
		var disp []string
		for _, p := range t.pairs {
			c := p[1]
			if side.srcCols {
				c = p[0]
			}
			disp = append(disp, c.display())
		}
		var args []any
		for h := range side.want {
			args = append(args, []byte(h))
		}
		q := fmt.Sprintf("SELECT UNHEX(%s) AS h, %s FROM %s WHERE UNHEX(%s) IN (%s)", side.hash, strings.Join(disp, ", "), side.table, side.hash,
			strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", "))
		rows, err := side.conn.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("verify: render rows of %s: %w", side.table, err)
		}
		vals := make([]sql.NullString, len(disp)+1)
		dest := make([]any, len(vals))
		for i := range vals {
			dest[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return nil, err
			}
			parts := make([]string, len(disp))
			for i, v := range vals[1:] {
				parts[i] = "NULL"
				if v.Valid {
					parts[i] = v.String
				}
			}
			rendered[vals[0].String] = "(" + strings.Join(parts, ", ") + ")"
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	for _, d := range out {
		if r, ok := rendered[string(d.hash)]; ok {
			d.Detail = d.Key + ": " + d.Detail
			d.Key = r
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// columnDiff names the columns of a row that differ, with both values.
func (s *session) columnDiff(ctx context.Context, t *tableInfo, key []any) string {
	var conds []string
	var args []any
	for i, k := range t.key {
		conds = append(conds, quoteIdent(k.name)+" = "+k.placeholder())
		args = append(args, key[i])
	}
	where := strings.Join(conds, " AND ")
	type vals struct {
		tok, disp []sql.NullString
	}
	get := func(conn *sql.Conn, table string, side int, out *vals) func() error {
		return func() error {
			var sel []string
			for _, p := range t.pairs {
				sel = append(sel, p[side].token())
			}
			for _, p := range t.pairs {
				sel = append(sel, p[side].display())
			}
			q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(sel, ", "), table, where)
			v := make([]sql.NullString, 2*len(t.pairs))
			dest := make([]any, len(v))
			for i := range v {
				dest[i] = &v[i]
			}
			if err := conn.QueryRowContext(ctx, q, args...).Scan(dest...); err != nil {
				return err
			}
			out.tok, out.disp = v[:len(t.pairs)], v[len(t.pairs):]
			return nil
		}
	}
	var sv, dv vals
	if err := both(get(s.src, t.srcQ, 0, &sv), get(s.dst, t.dstQ, 1, &dv)); err != nil {
		return "row values differ (could not read the row again: " + err.Error() + ")"
	}
	show := func(v sql.NullString) string {
		if !v.Valid {
			return "NULL"
		}
		return fmt.Sprintf("%q", v.String)
	}
	var parts []string
	for i, p := range t.pairs {
		if sv.tok[i] != dv.tok[i] {
			parts = append(parts, fmt.Sprintf("%s: source %s, target %s", p[0].name, show(sv.disp[i]), show(dv.disp[i])))
		}
	}
	if len(parts) == 0 {
		return "row values differed in the last round (equal when read again)"
	}
	return strings.Join(parts, "; ")
}
