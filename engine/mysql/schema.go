package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
)

// column is one column of a table.
type column struct {
	Name       string
	DataType   string // int, varchar, decimal, json, ...
	ColumnType string // int(10) unsigned, enum('a','b'), ...
	Unsigned   bool
	Generated  bool // virtual or stored generated: never written
	Nullable   bool
	Charset    string
	Collation  string
}

// table is one table that moves, with where it goes.
type table struct {
	DB, Name   string // source
	TDB, TName string // target
	View       bool
	Cols       []column
	Key        []int // the primary key (or a unique key of NOT NULL columns); nil: key-less
	KeyName    string
	EstRows    int64
	AvgRowLen  int64
	AutoInc    sql.NullInt64
}

func (t *table) id() string     { return t.DB + "." + t.Name }
func (t *table) src() string    { return qname(t.DB, t.Name) }
func (t *table) dst() string    { return qname(t.TDB, t.TName) }
func (t *table) keyless() bool  { return len(t.Key) == 0 }
func (t *table) String() string { return t.id() }

// written are the columns ferry writes (generated columns are computed by
// the target).
func (t *table) written() []int {
	var out []int
	for i, c := range t.Cols {
		if !c.Generated {
			out = append(out, i)
		}
	}
	return out
}

// listTables lists the tables and views of a server that the filter lets
// through, with their columns and keys.
func listTables(ctx context.Context, db *sql.DB, f *filter) ([]*table, error) {
	rows, err := db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, COALESCE(TABLE_ROWS,0), COALESCE(AVG_ROW_LENGTH,0), AUTO_INCREMENT
		FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN ('mysql','information_schema','performance_schema','sys','`+metaDB+`')
		ORDER BY TABLE_SCHEMA, TABLE_NAME`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var out []*table
	byID := map[string]*table{}
	for rows.Next() {
		var t table
		var typ string
		if err := rows.Scan(&t.DB, &t.Name, &typ, &t.EstRows, &t.AvgRowLen, &t.AutoInc); err != nil {
			rows.Close()
			return nil, err
		}
		if !f.table(t.DB, t.Name) {
			continue
		}
		switch typ {
		case "VIEW":
			t.View = true
		case "SEQUENCE":
			continue
		}
		t.TDB, t.TName = f.target(t.DB, t.Name)
		out = append(out, &t)
		byID[t.id()] = &t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	if err := loadColumns(ctx, db, byID); err != nil {
		return nil, err
	}
	return out, nil
}

// loadColumns fills in the columns and keys of tables (by db.name).
func loadColumns(ctx context.Context, db *sql.DB, byID map[string]*table) error {
	dbs := map[string]bool{}
	for _, t := range byID {
		dbs[t.DB] = true
		t.Cols, t.Key, t.KeyName = nil, nil, ""
	}
	var in []string
	var args []any
	for d := range dbs {
		in = append(in, "?")
		args = append(args, d)
	}
	cond := "TABLE_SCHEMA IN (" + strings.Join(in, ",") + ")"
	rows, err := db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COALESCE(EXTRA,''),
		COALESCE(CHARACTER_SET_NAME,''), COALESCE(COLLATION_NAME,'') FROM information_schema.COLUMNS WHERE `+cond+` ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`, args...)
	if err != nil {
		return fmt.Errorf("list columns: %w", err)
	}
	for rows.Next() {
		var d, tn, null, extra string
		var c column
		if err := rows.Scan(&d, &tn, &c.Name, &c.DataType, &c.ColumnType, &null, &extra, &c.Charset, &c.Collation); err != nil {
			rows.Close()
			return err
		}
		t := byID[d+"."+tn]
		if t == nil {
			continue
		}
		c.DataType = strings.ToLower(c.DataType)
		c.Unsigned = strings.Contains(strings.ToLower(c.ColumnType), "unsigned")
		c.Nullable = null == "YES"
		ex := strings.ToUpper(extra)
		c.Generated = strings.Contains(ex, "GENERATED") && !strings.Contains(ex, "DEFAULT_GENERATED")
		t.Cols = append(t.Cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// Keys: the primary key, else the first unique key whose columns are
	// all NOT NULL.
	rows, err = db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, COALESCE(NULLABLE,'')
		FROM information_schema.STATISTICS WHERE `+cond+` ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`, args...)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	type idx struct {
		cols     []string
		nullable bool
	}
	keys := map[string]map[string]*idx{}
	for rows.Next() {
		var d, tn, name, col, null string
		var nonUnique, seq int
		if err := rows.Scan(&d, &tn, &name, &nonUnique, &seq, &col, &null); err != nil {
			rows.Close()
			return err
		}
		if nonUnique != 0 {
			continue
		}
		id := d + "." + tn
		if keys[id] == nil {
			keys[id] = map[string]*idx{}
		}
		k := keys[id][name]
		if k == nil {
			k = &idx{}
			keys[id][name] = k
		}
		k.cols = append(k.cols, col)
		if null == "YES" {
			k.nullable = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for id, ks := range keys {
		t := byID[id]
		if t == nil {
			continue
		}
		var names []string
		for n := range ks {
			names = append(names, n)
		}
		sort.Strings(names)
		pick := ""
		if _, ok := ks["PRIMARY"]; ok {
			pick = "PRIMARY"
		} else {
			for _, n := range names {
				if !ks[n].nullable {
					pick = n
					break
				}
			}
		}
		if pick == "" {
			continue
		}
		t.KeyName = pick
		for _, cn := range ks[pick].cols {
			for i, c := range t.Cols {
				if strings.EqualFold(c.Name, cn) {
					t.Key = append(t.Key, i)
				}
			}
		}
		if len(t.Key) != len(ks[pick].cols) {
			t.Key, t.KeyName = nil, ""
		}
	}
	return nil
}

var (
	reCreateTable = regexp.MustCompile("(?is)^CREATE\\s+(TEMPORARY\\s+)?TABLE\\s+`(?:[^`]|``)+`(?:\\.`(?:[^`]|``)+`)?")
	reCreateView  = regexp.MustCompile("(?is)^CREATE\\s+(.*?)VIEW\\s+`(?:[^`]|``)+`(?:\\.`(?:[^`]|``)+`)?")
	reDefiner     = regexp.MustCompile("DEFINER=`(?:[^`]|``)*`@`(?:[^`]|``)*`\\s*")
)

// createDatabases creates the target databases of tables.
func createDatabases(ctx context.Context, src, dst *sql.DB, f *filter, tables []*table) (int, error) {
	seen := map[string]bool{}
	n := 0
	for _, t := range tables {
		if seen[t.TDB] {
			continue
		}
		seen[t.TDB] = true
		var cs, coll string
		if err := src.QueryRowContext(ctx, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", t.DB).Scan(&cs, &coll); err != nil {
			return n, fmt.Errorf("database %s: %w", t.DB, err)
		}
		if _, err := dst.ExecContext(ctx, fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET %s COLLATE %s", quote(t.TDB), cs, coll)); err != nil {
			return n, fmt.Errorf("create database %s on the target: %w", t.TDB, err)
		}
		n++
	}
	return n, nil
}

// createTableSQL returns the statement that creates t on the target.
func createTableSQL(ctx context.Context, src *sql.DB, t *table) (string, error) {
	var name, stmt string
	if err := src.QueryRowContext(ctx, "SHOW CREATE TABLE "+t.src()).Scan(&name, &stmt); err != nil {
		return "", fmt.Errorf("SHOW CREATE TABLE %s: %w", t.id(), err)
	}
	loc := reCreateTable.FindStringIndex(stmt)
	if loc == nil {
		return "", fmt.Errorf("SHOW CREATE TABLE %s: unexpected answer %.80q", t.id(), stmt)
	}
	return "CREATE TABLE IF NOT EXISTS " + t.dst() + stmt[loc[1]:], nil
}

func createViewSQL(ctx context.Context, src *sql.DB, f *filter, t *table) (string, error) {
	var name, stmt, cs, coll string
	if err := src.QueryRowContext(ctx, "SHOW CREATE VIEW "+t.src()).Scan(&name, &stmt, &cs, &coll); err != nil {
		return "", fmt.Errorf("SHOW CREATE VIEW %s: %w", t.id(), err)
	}
	stmt = reDefiner.ReplaceAllString(stmt, "")
	loc := reCreateView.FindStringSubmatchIndex(stmt)
	if loc == nil {
		return "", fmt.Errorf("SHOW CREATE VIEW %s: unexpected answer %.80q", t.id(), stmt)
	}
	opts := stmt[loc[2]:loc[3]]
	body := stmt[loc[1]:]
	for from, to := range f.dbRen {
		body = strings.ReplaceAll(body, quote(from)+".", quote(to)+".")
	}
	return "CREATE OR REPLACE " + opts + "VIEW " + t.dst() + body, nil
}

// schema is the STRUCT_MIGRATION step: databases, tables, then views. It is
// idempotent (IF NOT EXISTS / OR REPLACE), so a resumed step just runs again.
func (e *Engine) schema(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	src, err := openDB(&m.Source, false, 1)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openDB(&m.Target, true, 1)
	if err != nil {
		return err
	}
	defer dst.Close()
	tables, err := listTables(ctx, src, f)
	if err != nil {
		return err
	}
	var base, views []*table
	for _, t := range tables {
		if t.View {
			views = append(views, t)
		} else {
			base = append(base, t)
		}
	}
	dbCount := map[string]bool{}
	for _, t := range tables {
		dbCount[t.TDB] = true
	}
	total := int64(len(dbCount) + len(tables))
	var done int64
	report := func(what string) {
		pct := 100.0
		if total > 0 {
			pct = float64(done) * 100 / float64(total)
		}
		rt.Progress(ferry.Counters{Done: done, Total: total, Unit: "objects"}, pct)
		rt.Message(what)
	}
	report("creating databases")
	n, err := createDatabases(ctx, src, dst, f, tables)
	done += int64(n)
	if err != nil {
		return err
	}
	for _, t := range base {
		if m.Options.DropTarget {
			if _, err := dst.ExecContext(ctx, "DROP TABLE IF EXISTS "+t.dst()); err != nil {
				return fmt.Errorf("drop %s on the target: %w", t.dst(), err)
			}
		}
		stmt, err := createTableSQL(ctx, src, t)
		if err != nil {
			return err
		}
		if _, err := dst.ExecContext(ctx, stmt); err != nil {
			return &ferry.Error{Code: ferry.EINVALID, Reason: "CREATE_TABLE_FAILED",
				Message: fmt.Sprintf("creating table %s on the target failed: %v", t.dst(), err),
				Advice:  "check the target's version and settings (engines, charsets), or create the table by hand and run without the schema step"}
		}
		done++
		report(fmt.Sprintf("table %s created as %s", t.id(), t.dst()))
	}
	// Views may depend on views: retry the ones that fail while some succeed.
	pending := views
	for len(pending) > 0 {
		var failed []*table
		var lastErr error
		for _, t := range pending {
			stmt, err := createViewSQL(ctx, src, f, t)
			if err != nil {
				return err
			}
			if _, err := dst.ExecContext(ctx, stmt); err != nil {
				failed, lastErr = append(failed, t), fmt.Errorf("view %s: %w", t.dst(), err)
				continue
			}
			done++
			report(fmt.Sprintf("view %s created", t.dst()))
		}
		if len(failed) == len(pending) {
			return &ferry.Error{Code: ferry.EINVALID, Reason: "CREATE_VIEW_FAILED", Message: lastErr.Error(),
				Advice: "a view may reference a table the filters exclude: include it, or exclude the view"}
		}
		pending = failed
	}
	rt.Progress(ferry.Counters{Done: done, Total: total, Unit: "objects"}, 100)
	rt.Message(fmt.Sprintf("schema migrated: %d databases, %d tables, %d views", len(dbCount), len(base), len(views)))
	_ = time.Now
	return nil
}
