package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// applier writes row changes to the target exactly once.
//
// Changes go into a target transaction that holds one or more whole source
// transactions; it commits together with an upsert of the job's row in
// ferry_meta.checkpoint recording the binlog position after the last source
// transaction in it. After a kill the target's row says exactly how far the
// target got, so the stream resumes there and no change is applied twice
// (this matters for key-less tables, whose changes are applied as a
// multiset; keyed changes are idempotent anyway: REPLACE of the full after
// image, delete by key).
//
// Consecutive changes of one kind to one table are batched into one
// statement: REPLACE ... VALUES (...),(...) for inserts and updates of
// keyed tables, DELETE ... WHERE key IN (...) for deletes, INSERT for
// key-less inserts; key-less deletes and updates change one matching row
// each (... WHERE every column <=> its old value LIMIT 1).
type applier struct {
	db        *sql.DB
	jobID     string // the marker row's job_id (markerID)
	mysqlJSON bool
	tx        *sql.Tx
	// guard: every transaction starts by bumping the marker row's txn_seq,
	// so that its first row event names the job and direction (the loop
	// guard of reverse sync; see the package documentation).
	guard bool
	side  string // "target", or "source" for reverse sync (for messages)

	// the open batch
	kind  string // "replace", "insert", "delete"
	t     *table
	rows  [][]any
	bytes int

	ops     int64 // changes in the open transaction
	maxRows int
}

func newApplier(db *sql.DB, jobID string, mysqlJSON bool, maxRows int) *applier {
	return &applier{db: db, jobID: jobID, mysqlJSON: mysqlJSON, maxRows: maxRows, side: "target"}
}

func (a *applier) begin(ctx context.Context) error {
	if a.tx != nil {
		return nil
	}
	tx, err := a.db.BeginTx(ctx, nil)
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

// insert applies an inserted row.
func (a *applier) insert(ctx context.Context, t *table, row []any) error {
	if t.keyless() {
		return a.add(ctx, "insert", t, a.args(t, row))
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
	if !sameKey(kb, ka) {
		if err := a.add(ctx, "delete", t, kb); err != nil {
			return err
		}
	}
	return a.add(ctx, "replace", t, a.args(t, after))
}

// delete applies a deleted row.
func (a *applier) delete(ctx context.Context, t *table, row []any) error {
	if t.keyless() {
		if err := a.flushBatch(ctx); err != nil {
			return err
		}
		a.ops++
		q, args := a.matchOne(t, row)
		_, err := a.tx.ExecContext(ctx, "DELETE FROM "+t.dst()+" WHERE "+q+" LIMIT 1", args...)
		if err != nil {
			return fmt.Errorf(a.side+": delete from %s: %w", t.dst(), err)
		}
		return nil
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
	var sets []string
	var args []any
	for _, ci := range t.written() {
		c := &t.Cols[ci]
		sets = append(sets, quote(c.Name)+" = ?")
		args = append(args, binlogArg(c, after[ci], a.mysqlJSON))
	}
	q, wargs := a.matchOne(t, before)
	_, err := a.tx.ExecContext(ctx, "UPDATE "+t.dst()+" SET "+strings.Join(sets, ", ")+" WHERE "+q+" LIMIT 1", append(args, wargs...)...)
	if err != nil {
		return fmt.Errorf(a.side+": update %s: %w", t.dst(), err)
	}
	return nil
}

func (a *applier) flushBatch(ctx context.Context) error {
	if len(a.rows) == 0 {
		a.kind, a.t = "", nil
		return nil
	}
	if err := a.begin(ctx); err != nil {
		return err
	}
	t := a.t
	var q string
	var args []any
	switch a.kind {
	case "replace", "insert":
		var names []string
		for _, i := range t.written() {
			names = append(names, quote(t.Cols[i].Name))
		}
		verb := "REPLACE INTO "
		if a.kind == "insert" {
			verb = "INSERT INTO "
		}
		q, args = multiRow(verb+t.dst()+" ("+strings.Join(names, ", ")+") VALUES ", a.rows)
	case "delete":
		var sb strings.Builder
		sb.WriteString("DELETE FROM " + t.dst() + " WHERE (" + keyCols(t) + ") IN (")
		for i, r := range a.rows {
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
	if _, err := a.tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf(a.side+": %s %s: %w", a.kind, t.dst(), err)
	}
	a.rows, a.bytes = a.rows[:0], 0
	a.kind, a.t = "", nil
	return nil
}

// commit writes the open batch and the position marker (with the total of
// changes applied, ops) and commits.
func (a *applier) commit(ctx context.Context, p pos, eventTime, ops int64) error {
	if err := a.flushBatch(ctx); err != nil {
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

// marker is what a job's row in ferry_meta.checkpoint records.
type marker struct {
	Pos       pos
	EventTime int64
	Ops       int64
}

// readMarker returns the position a side's marker records for a job (and
// direction).
func readMarker(ctx context.Context, db *sql.DB, jobID string) (marker, error) {
	var mk marker
	var g sql.NullString
	err := db.QueryRowContext(ctx, "SELECT binlog_file, binlog_pos, gtid, event_time, ops FROM "+qname(metaDB, "checkpoint")+" WHERE job_id = ?", jobID).Scan(&mk.Pos.File, &mk.Pos.Pos, &g, &mk.EventTime, &mk.Ops)
	if err == sql.ErrNoRows {
		return marker{}, nil
	}
	mk.Pos.GTID = g.String
	return mk, err
}
