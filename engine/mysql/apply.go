package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// applier writes row changes to one connection of the written side, in
// target transactions that each hold one or more whole source transactions
// (a worker's group, see apply_sched.go) and end with an upsert of the
// applier's row in ferry_meta.checkpoint recording the low watermark: the
// binlog position at or below which every source transaction is applied.
// After a kill, the highest position any of the job's rows records says
// how far the target surely got; the stream resumes there.
//
// Statements:
//   - keyed tables whose key compares byte for byte (collapsible): the
//     changes of a target transaction collapse to the last image of each
//     key, written as one DELETE ... WHERE key IN (...) for the keys whose
//     last change is a delete, then multi-row REPLACEs of the last after
//     images (a key's update that changes the key deletes the old key);
//   - other keyed tables: consecutive changes of one kind batched in
//     order (REPLACE ... VALUES (...),(...); DELETE ... WHERE key IN);
//   - key-less tables: INSERT for inserts; deletes and updates change one
//     matching row each (... WHERE every column <=> its old value LIMIT 1).
type applier struct {
	db        *sql.DB
	jobID     string // the applier's marker row (markerID, or markerID#worker)
	mysqlJSON bool
	tx        *sql.Tx
	conn      *sql.Conn // when set, transactions run on this connection
	// guard: every transaction starts by bumping the marker row's txn_seq,
	// so that its first row event names the job and direction (the loop
	// guard of reverse sync; see the package documentation).
	guard bool
	side  string // "target", or "source" for reverse sync (for messages)

	// the open ordered batch
	kind  string // "replace", "insert", "delete"
	t     *table
	rows  [][]any
	bytes int

	// collapsed changes of collapsible tables, by table
	coll      map[*table]*collapsed
	collOrder []*table

	ops     int64 // changes in the open transaction
	maxRows int
	stmts   int64 // statements run (for the logs)
	// upsert: tables whose only unique key is the one ferry writes by:
	// their row images are written with INSERT ... ON DUPLICATE KEY UPDATE
	// (an update in place) rather than REPLACE (a delete and an insert,
	// secondary indexes included). With another unique key, REPLACE stays:
	// it also removes a row that holds the image's unique value.
	upsert map[*table]bool
}

// collapsed holds the last change of each key of one table.
type collapsed struct {
	last  map[string]int // exact key -> index in ops
	ops   []collOp
	bytes int
}

type collOp struct {
	del  bool
	key  []any // key arguments
	vals []any // written columns' arguments (not del)
}

func newApplier(db *sql.DB, jobID string, mysqlJSON bool, maxRows int) *applier {
	return &applier{db: db, jobID: jobID, mysqlJSON: mysqlJSON, maxRows: maxRows, side: "target", coll: map[*table]*collapsed{}, upsert: map[*table]bool{}}
}

func (a *applier) begin(ctx context.Context) error {
	if a.tx != nil {
		return nil
	}
	var tx *sql.Tx
	var err error
	if a.conn != nil {
		tx, err = a.conn.BeginTx(ctx, nil)
	} else {
		tx, err = a.db.BeginTx(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf(a.side+": begin: %w", err)
	}
	a.tx = tx
	if a.guard {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+qname(metaDB, "checkpoint")+" (job_id, binlog_file, binlog_pos, event_time, txn_seq) VALUES (?, '', 0, 0, 1)"+
			" ON DUPLICATE KEY UPDATE txn_seq = txn_seq + 1", a.jobID); err != nil {
			_ = tx.Rollback()
			a.tx = nil
			return fmt.Errorf("write the transaction's %s.checkpoint marker: %w", metaDB, err)
		}
	}
	return nil
}

// rollback abandons the open transaction (the stream restarts from the
// last committed position).
func (a *applier) rollback() {
	if a.tx != nil {
		_ = a.tx.Rollback()
		a.tx = nil
	}
	a.rows, a.t, a.kind, a.bytes, a.ops = nil, nil, "", 0, 0
	a.coll, a.collOrder = map[*table]*collapsed{}, nil
}

// args converts a binlog row into the written columns' arguments.
func (a *applier) args(t *table, row []any) []any {
	w := t.written()
	out := make([]any, len(w))
	for i, ci := range w {
		out[i] = binlogArg(&t.Cols[ci], row[ci], a.mysqlJSON)
	}
	return out
}

func (a *applier) keyArgs(t *table, row []any) []any {
	out := make([]any, len(t.Key))
	for i, ci := range t.Key {
		out[i] = binlogArg(&t.Cols[ci], row[ci], a.mysqlJSON)
	}
	return out
}

// exactKey is the identity of a key value of a collapsible table.
func exactKey(t *table, row []any) string {
	var sb strings.Builder
	for i, ci := range t.Key {
		if i > 0 {
			sb.WriteByte(0)
		}
		if row[ci] == nil {
			sb.WriteString("\x01N")
			continue
		}
		writeKeyValue(&sb, row[ci], false)
	}
	return sb.String()
}

func (a *applier) collapse(ctx context.Context, t *table, row []any, op collOp) error {
	c := a.coll[t]
	if c == nil {
		c = &collapsed{last: map[string]int{}}
		a.coll[t] = c
		a.collOrder = append(a.collOrder, t)
	}
	k := exactKey(t, row)
	for _, v := range op.vals {
		c.bytes += argBytes(v)
	}
	if i, ok := c.last[k]; ok {
		c.ops[i] = op
	} else {
		c.last[k] = len(c.ops)
		c.ops = append(c.ops, op)
	}
	a.ops++
	if len(c.ops) >= 4*a.maxRows || c.bytes >= 2*maxBatchBytes {
		return a.flushTable(ctx, t)
	}
	return nil
}

func (a *applier) add(ctx context.Context, kind string, t *table, vals []any) error {
	if a.kind != kind || a.t != t {
		if err := a.flushBatch(ctx); err != nil {
			return err
		}
		a.kind, a.t = kind, t
	}
	a.rows = append(a.rows, vals)
	for _, v := range vals {
		a.bytes += argBytes(v)
	}
	a.ops++
	if len(a.rows) >= a.maxRows || a.bytes >= maxBatchBytes {
		return a.flushBatch(ctx)
	}
	return nil
}

// apply stages one change.
func (a *applier) apply(ctx context.Context, c *change) error {
	if c.upsert {
		a.upsert[c.t] = true
	}
	switch c.kind {
	case 'i':
		return a.insert(ctx, c.t, c.before)
	case 'u':
		return a.update(ctx, c.t, c.before, c.after)
	default:
		return a.delete(ctx, c.t, c.before)
	}
}

// insert applies an inserted row.
func (a *applier) insert(ctx context.Context, t *table, row []any) error {
	if t.keyless() {
		return a.add(ctx, "insert", t, a.args(t, row))
	}
	if collapsible(t) {
		return a.collapse(ctx, t, row, collOp{key: a.keyArgs(t, row), vals: a.args(t, row)})
	}
	return a.add(ctx, "replace", t, a.args(t, row))
}

// update applies an update from before to after.
func (a *applier) update(ctx context.Context, t *table, before, after []any) error {
	if t.keyless() {
		if err := a.flushBatch(ctx); err != nil {
			return err
		}
		a.ops++
		return a.keylessUpdate(ctx, t, before, after)
	}
	kb, ka := a.keyArgs(t, before), a.keyArgs(t, after)
	if collapsible(t) {
		if !sameKey(kb, ka) {
			if err := a.collapse(ctx, t, before, collOp{del: true, key: kb}); err != nil {
				return err
			}
			a.ops--
		}
		return a.collapse(ctx, t, after, collOp{key: ka, vals: a.args(t, after)})
	}
	if !sameKey(kb, ka) {
		if err := a.add(ctx, "delete", t, kb); err != nil {
			return err
		}
		a.ops--
	}
	return a.add(ctx, "replace", t, a.args(t, after))
}

// delete applies a deleted row.
func (a *applier) delete(ctx context.Context, t *table, row []any) error {
	if t.keyless() {
		if err := a.flushBatch(ctx); err != nil {
			return err
		}
		if err := a.begin(ctx); err != nil {
			return err
		}
		a.ops++
		q, args := a.matchOne(t, row)
		a.stmts++
		_, err := a.tx.ExecContext(ctx, "DELETE FROM "+t.dst()+" WHERE "+q+" LIMIT 1", args...)
		if err != nil {
			return fmt.Errorf(a.side+": delete from %s: %w", t.dst(), err)
		}
		return nil
	}
	if collapsible(t) {
		return a.collapse(ctx, t, row, collOp{del: true, key: a.keyArgs(t, row)})
	}
	return a.add(ctx, "delete", t, a.keyArgs(t, row))
}

func sameKey(a, b []any) bool {
	for i := range a {
		if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
			return false
		}
		if x, ok := a[i].([]byte); ok {
			y, _ := b[i].([]byte)
			if string(x) != string(y) {
				return false
			}
		}
	}
	return true
}

// whereParam is a placeholder comparing column c with arg v like the
// column compares (an integer for ENUM/SET is an index or bitmask).
func whereParam(c *column, v any) string {
	switch v.(type) {
	case int64, uint64, int, int32:
		return "?"
	}
	return param(c)
}

// matchOne is "every written column <=> its value" for a key-less row.
func (a *applier) matchOne(t *table, row []any) (string, []any) {
	var conds []string
	var args []any
	for _, ci := range t.written() {
		c := &t.Cols[ci]
		v := binlogArg(c, row[ci], a.mysqlJSON)
		conds = append(conds, quote(c.Name)+" <=> "+whereParam(c, v))
		args = append(args, v)
	}
	return strings.Join(conds, " AND "), args
}

func (a *applier) keylessUpdate(ctx context.Context, t *table, before, after []any) error {
	if err := a.begin(ctx); err != nil {
		return err
	}
	var sets []string
	var args []any
	for _, ci := range t.written() {
		c := &t.Cols[ci]
		sets = append(sets, quote(c.Name)+" = ?")
		args = append(args, binlogArg(c, after[ci], a.mysqlJSON))
	}
	q, wargs := a.matchOne(t, before)
	a.stmts++
	_, err := a.tx.ExecContext(ctx, "UPDATE "+t.dst()+" SET "+strings.Join(sets, ", ")+" WHERE "+q+" LIMIT 1", append(args, wargs...)...)
	if err != nil {
		return fmt.Errorf(a.side+": update %s: %w", t.dst(), err)
	}
	return nil
}

func (a *applier) exec(ctx context.Context, kind string, t *table, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if err := a.begin(ctx); err != nil {
		return err
	}
	var q string
	var args []any
	switch kind {
	case "replace", "insert":
		var names []string
		for _, i := range t.written() {
			names = append(names, quote(t.Cols[i].Name))
		}
		verb := "REPLACE INTO "
		if kind == "insert" || a.upsert[t] {
			verb = "INSERT INTO "
		}
		q, args = multiRow(verb+t.dst()+" ("+strings.Join(names, ", ")+") VALUES ", rows)
		if kind == "replace" && a.upsert[t] {
			q += onDupUpdate(t)
		}
	case "delete":
		var sb strings.Builder
		sb.WriteString("DELETE FROM " + t.dst() + " WHERE (" + keyCols(t) + ") IN (")
		for i, r := range rows {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteByte('(')
			for j, v := range r {
				if j > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(whereParam(&t.Cols[t.Key[j]], v))
			}
			sb.WriteByte(')')
			args = append(args, r...)
		}
		sb.WriteByte(')')
		q = sb.String()
	}
	a.stmts++
	if _, err := a.tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf(a.side+": %s %s: %w", kind, t.dst(), err)
	}
	return nil
}

func (a *applier) flushBatch(ctx context.Context) error {
	if len(a.rows) == 0 {
		a.kind, a.t = "", nil
		return nil
	}
	if err := a.exec(ctx, a.kind, a.t, a.rows); err != nil {
		return err
	}
	a.rows, a.bytes = a.rows[:0], 0
	a.kind, a.t = "", nil
	return nil
}

// flushTable writes the collapsed changes of t: deletes first, then the
// last images in chunks.
func (a *applier) flushTable(ctx context.Context, t *table) error {
	c := a.coll[t]
	if c == nil || len(c.ops) == 0 {
		return nil
	}
	var dels, reps [][]any
	for _, op := range c.ops {
		if op.del {
			dels = append(dels, op.key)
		} else {
			reps = append(reps, op.vals)
		}
	}
	for len(dels) > 0 {
		n := min(len(dels), a.maxRows)
		if err := a.exec(ctx, "delete", t, dels[:n]); err != nil {
			return err
		}
		dels = dels[n:]
	}
	for len(reps) > 0 {
		n, bytes := 0, 0
		for n < len(reps) && n < a.maxRows && bytes < maxBatchBytes {
			for _, v := range reps[n] {
				bytes += argBytes(v)
			}
			n++
		}
		if err := a.exec(ctx, "replace", t, reps[:n]); err != nil {
			return err
		}
		reps = reps[n:]
	}
	clear(c.last)
	c.ops, c.bytes = c.ops[:0], 0
	return nil
}

// flush writes everything staged.
func (a *applier) flush(ctx context.Context) error {
	if err := a.flushBatch(ctx); err != nil {
		return err
	}
	for _, t := range a.collOrder {
		if err := a.flushTable(ctx, t); err != nil {
			return err
		}
	}
	clear(a.coll)
	a.collOrder = a.collOrder[:0]
	return nil
}

// commit writes what is staged and the position marker (with the total of
// changes applied, ops) and commits.
func (a *applier) commit(ctx context.Context, p pos, eventTime, ops int64) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	if err := a.begin(ctx); err != nil {
		return err
	}
	if _, err := a.tx.ExecContext(ctx, "INSERT INTO "+qname(metaDB, "checkpoint")+" (job_id, binlog_file, binlog_pos, gtid, event_time, ops) VALUES (?, ?, ?, ?, ?, ?)"+
		" ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file), binlog_pos = VALUES(binlog_pos), gtid = VALUES(gtid), event_time = VALUES(event_time), ops = VALUES(ops)",
		a.jobID, p.File, p.Pos, p.GTID, eventTime, ops); err != nil {
		return fmt.Errorf(a.side+": write %s.checkpoint: %w", metaDB, err)
	}
	err := a.tx.Commit()
	a.tx = nil
	a.ops = 0
	if err != nil {
		return fmt.Errorf(a.side+": commit: %w", err)
	}
	return nil
}

// marker is what a job's rows in ferry_meta.checkpoint record.
type marker struct {
	Pos       pos
	EventTime int64
	Ops       int64
}

// readMarker returns the highest position the marker rows of a job (and
// direction) record: the direction's own row and its workers' rows
// ("<id>#<n>").
func readMarker(ctx context.Context, db *sql.DB, jobID string) (marker, error) {
	rows, err := db.QueryContext(ctx, "SELECT binlog_file, binlog_pos, gtid, event_time, ops FROM "+qname(metaDB, "checkpoint")+
		" WHERE job_id = ? OR (job_id >= ? AND job_id < ?)", jobID, jobID+"#", jobID+"$")
	if err != nil {
		return marker{}, err
	}
	defer rows.Close()
	var best marker
	for rows.Next() {
		var mk marker
		var g sql.NullString
		if err := rows.Scan(&mk.Pos.File, &mk.Pos.Pos, &g, &mk.EventTime, &mk.Ops); err != nil {
			return marker{}, err
		}
		mk.Pos.GTID = g.String
		if mk.Pos.IsZero() {
			continue
		}
		if best.Pos.IsZero() || mk.Pos.compare(best.Pos) > 0 {
			ops := max(best.Ops, mk.Ops)
			best = mk
			best.Ops = ops
		} else {
			best.Ops = max(best.Ops, mk.Ops)
		}
	}
	return best, rows.Err()
}

// workerID names worker n's marker row.
func workerID(id string, n int) string { return fmt.Sprintf("%s#%d", id, n) }

// isOwnRow reports whether a marker row's job_id belongs to the marker id
// (its own row or one of its workers').
func isOwnRow(jobID, id string) bool {
	return jobID == id || (strings.HasPrefix(jobID, id+"#") && len(jobID) > len(id)+1)
}

// onDupUpdate is the ON DUPLICATE KEY UPDATE clause that sets every
// written column to the inserted row's value.
func onDupUpdate(t *table) string {
	var sb strings.Builder
	sb.WriteString(" ON DUPLICATE KEY UPDATE ")
	for i, ci := range t.written() {
		if i > 0 {
			sb.WriteString(", ")
		}
		n := quote(t.Cols[ci].Name)
		sb.WriteString(n + " = VALUES(" + n + ")")
	}
	return sb.String()
}
