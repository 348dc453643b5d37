// Package sqlite is ferry's embedded store: a ferry.Store in one SQLite file
// (modernc.org/sqlite, pure Go), what `ferry serve` uses on a single machine.
//
// The database runs in WAL mode. Every write goes through one connection
// whose transactions begin IMMEDIATE, so read-modify-write updates and
// claims are serialized in this process and across processes sharing the
// file (busy_timeout makes the others wait); reads use a separate pool of
// read-only connections and see committed snapshots.
//
// Beyond the ferry.Store contract: Create methods fill a missing ID and
// CreatedAt (and set Version to 1 where there is one) on the value passed
// in; DeleteProject also deletes what the project holds (endpoints,
// migrations, pipelines and their runs, validations, project API keys and
// their tokens); DeleteAPIKey deletes the key's tokens; DeletePipeline
// deletes its runs. An Update's fn must not call the store's write methods
// (the writer connection is held while fn runs).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/storeutil"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a ferry.Store on a SQLite file.
type DB struct {
	w    *sql.DB // the single writer connection
	r    *sql.DB // read-only connections (w itself for ":memory:")
	path string
}

var _ ferry.Store = (*DB)(nil)

const busyTimeoutMS = 10000

// Open opens (creating it if needed) the SQLite database at path, applies
// the schema migrations it lacks and returns the store. path is a file name;
// ":memory:" gives a private in-memory database (one connection).
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: database path %q must not contain '?' or '#'", path)
	}
	db := &DB{path: path}
	memory := path == ":memory:"
	if !memory {
		if err := restrictFiles(path, true); err != nil {
			return nil, err
		}
	}
	q := "?_busy_timeout=" + strconv.Itoa(busyTimeoutMS) + "&_fk=1&_txlock=immediate"
	if !memory {
		q += "&_journal=WAL&_sync=NORMAL"
	}
	w, err := sql.Open("sqlite", path+q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	db.w, db.r = w, w
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if !memory {
		r, err := sql.Open("sqlite", path+"?_busy_timeout="+strconv.Itoa(busyTimeoutMS)+"&_fk=1&_txlock=deferred&_query_only=1")
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
		}
		n := max(4, runtime.GOMAXPROCS(0))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		if err := r.PingContext(ctx); err != nil {
			r.Close()
			w.Close()
			return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
		}
		db.r = r
		// The WAL and shared-memory files exist now: readable by the owner only.
		if err := restrictFiles(path, false); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// restrictFiles makes the database file (created if create and missing)
// and its -wal, -shm and -journal files readable by their owner only: they
// hold API key hashes and the jobs' endpoints. SQLite creates the -wal and
// -shm files with the database file's mode.
func restrictFiles(path string, create bool) error {
	if create {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		f.Close()
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		st, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("sqlite: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("sqlite: restrict %s to its owner: %w", p, err)
			}
		}
	}
	return nil
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Close closes the database.
func (db *DB) Close() error {
	var err error
	if db.r != db.w {
		err = db.r.Close()
	}
	return errors.Join(err, db.w.Close())
}

// SchemaVersion returns the highest schema migration applied.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	return v, nil
}

// migrate applies the schema migrations the database lacks, each in its own
// IMMEDIATE transaction, so processes opening the file at once apply each
// migration exactly once.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := storeutil.LoadMigrations(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		err := db.write(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: apply migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// write runs fn in an IMMEDIATE transaction on the writer connection and
// commits it. An error from fn rolls back and is returned as it is.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// read runs fn in a read transaction (one snapshot) on the reader pool.
func (db *DB) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin read: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	return fn(tx)
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// uniqueViolation returns the driver's message when err broke a UNIQUE or
// PRIMARY KEY constraint.
func uniqueViolation(err error) (string, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return e.Error(), true
	}
	return "", false
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// insert writes a new row for v.
func insert[T any](ctx context.Context, q querier, t *storeutil.Table[T], v *T) error {
	vals, err := t.Values(v)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	_, err = q.ExecContext(ctx, "INSERT INTO "+t.Name+" ("+strings.Join(t.Cols, ", ")+") VALUES ("+placeholders(len(t.Cols))+")", vals...)
	if msg, ok := uniqueViolation(err); ok {
		return t.Dup(v, storeutil.IsNameConstraint(msg), err)
	} else if err != nil {
		return fmt.Errorf("sqlite: insert %s: %w", t.Kind, err)
	}
	return nil
}

// store rewrites v's existing row.
func store[T any](ctx context.Context, q querier, t *storeutil.Table[T], v *T) error {
	vals, err := t.Values(v)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	set := make([]string, 0, len(t.Cols)-1)
	for _, c := range t.Cols[1:] {
		set = append(set, c+" = ?")
	}
	args := append(vals[1:len(vals):len(vals)], vals[0])
	_, err = q.ExecContext(ctx, "UPDATE "+t.Name+" SET "+strings.Join(set, ", ")+" WHERE "+t.Key()+" = ?", args...)
	if msg, ok := uniqueViolation(err); ok {
		return t.Dup(v, storeutil.IsNameConstraint(msg), err)
	} else if err != nil {
		return fmt.Errorf("sqlite: update %s: %w", t.Kind, err)
	}
	return nil
}

// scanRow decodes the current row of rows (columns t.ReadCols()).
func scanRow[T any](t *storeutil.Table[T], scan func(dest ...any) error) (*T, error) {
	var data []byte
	extra := make([]string, len(t.Extra))
	dest := []any{&data}
	for i := range extra {
		dest = append(dest, &extra[i])
	}
	if err := scan(dest...); err != nil {
		return nil, err
	}
	v, err := t.Decode(data, extra)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", t.Kind, err)
	}
	return v, nil
}

// one returns the row matching where, or nil when there is none.
func one[T any](ctx context.Context, q querier, t *storeutil.Table[T], where string, args ...any) (*T, error) {
	row := q.QueryRowContext(ctx, "SELECT "+t.ReadCols()+" FROM "+t.Name+" WHERE "+where+" LIMIT 1", args...)
	v, err := scanRow(t, row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: get %s: %w", t.Kind, err)
	}
	return v, nil
}

// get returns the row with key id, or ENOTFOUND.
func get[T any](ctx context.Context, q querier, t *storeutil.Table[T], id string) (*T, error) {
	v, err := one(ctx, q, t, t.Key()+" = ?", id)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, storeutil.NotFound(t.Kind, id)
	}
	return v, nil
}

// filter is a WHERE clause under construction.
type filter struct {
	conds []string
	args  []any
}

func (f *filter) add(cond string, args ...any) {
	f.conds = append(f.conds, cond)
	f.args = append(f.args, args...)
}

func (f *filter) in(col string, vals []string) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	f.add(col+" IN ("+placeholders(len(vals))+")", args...)
}

func (f *filter) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// list returns the rows matching f in order, paged, and how many match.
// withTotal false skips the count (it is then -1).
func list[T any](ctx context.Context, q querier, t *storeutil.Table[T], f *filter, order string, offset, limit int, withTotal bool) ([]*T, int, error) {
	total := -1
	if withTotal {
		if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.Name+f.where(), f.args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("sqlite: count %s: %w", t.Name, err)
		}
	}
	off, lim := storeutil.Page(offset, limit)
	args := append(append([]any(nil), f.args...), lim, off)
	rows, err := q.QueryContext(ctx, "SELECT "+t.ReadCols()+" FROM "+t.Name+f.where()+" ORDER BY "+order+" LIMIT ? OFFSET ?", args...)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: list %s: %w", t.Name, err)
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		v, err := scanRow(t, rows.Scan)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: list %s: %w", t.Name, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: list %s: %w", t.Name, err)
	}
	return out, total, nil
}

// listAll returns every row matching f in order, in one snapshot.
func listAll[T any](ctx context.Context, db *DB, t *storeutil.Table[T], f *filter, order string) ([]*T, error) {
	var out []*T
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, _, err = list(ctx, tx, t, f, order, 0, 0, false)
		return err
	})
	return out, err
}

// page returns a page of the rows matching f and their total, in one snapshot.
func page[T any](ctx context.Context, db *DB, t *storeutil.Table[T], f *filter, order string, offset, limit int) ([]*T, int, error) {
	var out []*T
	var total int
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, total, err = list(ctx, tx, t, f, order, offset, limit, true)
		return err
	})
	return out, total, err
}

// update runs fn on the freshest copy of the row with key id and stores the
// result, all in one IMMEDIATE transaction.
func update[T any](ctx context.Context, db *DB, t *storeutil.Table[T], id string, fn func(*T) error) (*T, error) {
	var out *T
	err := db.write(ctx, func(tx *sql.Tx) error {
		v, err := get(ctx, tx, t, id)
		if err != nil {
			return err
		}
		old := *v
		if err := fn(v); err != nil {
			return err
		}
		t.Touch(v, &old, storeutil.Now())
		storeutil.UTC(v)
		if err := store(ctx, tx, t, v); err != nil {
			return err
		}
		out = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claim takes the oldest row in one of states whose lease is missing or
// expired before now, applies set and stores it.
func claim[T any](ctx context.Context, db *DB, t *storeutil.Table[T], states []string, agentID string, now time.Time, ttl time.Duration, set func(*T)) (*T, error) {
	if err := storeutil.CheckClaim(agentID, ttl); err != nil {
		return nil, err
	}
	var out *T
	err := db.write(ctx, func(tx *sql.Tx) error {
		f := &filter{}
		f.in("state", states)
		f.add("(lease_expires IS NULL OR lease_expires < ?)", storeutil.Nanos(now))
		v, err := one(ctx, tx, t, strings.Join(f.conds, " AND ")+" ORDER BY created_at, id", f.args...)
		if err != nil || v == nil {
			return err
		}
		old := *v
		set(v)
		t.Touch(v, &old, storeutil.Now())
		if err := store(ctx, tx, t, v); err != nil {
			return err
		}
		out = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// del deletes the row with key id, or returns ENOTFOUND.
func del(ctx context.Context, q querier, table, key, kind, id string) error {
	res, err := q.ExecContext(ctx, "DELETE FROM "+table+" WHERE "+key+" = ?", id)
	if err != nil {
		return fmt.Errorf("sqlite: delete %s: %w", kind, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: delete %s: %w", kind, err)
	}
	if n == 0 {
		return storeutil.NotFound(kind, id)
	}
	return nil
}
