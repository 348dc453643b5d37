// Package postgres is ferry's shared store: a ferry.Store in PostgreSQL
// (pgx/v5, pgxpool), what several `ferry agent` processes use when one
// machine is not enough.
//
// Update methods lock the row (SELECT ... FOR UPDATE) for their
// read-modify-write; claims pick the oldest claimable row with SELECT ...
// FOR UPDATE SKIP LOCKED, so concurrent agents never wait on each other's
// candidate and never take the same job. Schema migrations are embedded and
// applied on Open under a transaction-scoped advisory lock, so agents that
// start together apply each migration exactly once.
//
// Beyond the ferry.Store contract, the same promises as package sqlite
// (pinned by package storetest): Create methods fill a missing ID and
// CreatedAt (and Version 1) on the value passed in; DeleteProject deletes
// what the project holds; DeleteAPIKey deletes the key's tokens;
// DeletePipeline deletes its runs. An Update's fn must not write the same
// row through the store (it would wait on its own row lock).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"embed"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/storeutil"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key that serializes schema migrations
// ("ferry" in ASCII, then "schema").
const migrationLock int64 = 0x6665727279_736368

// DB is a ferry.Store on PostgreSQL.
type DB struct {
	pool *pgxpool.Pool
}

var _ ferry.Store = (*DB)(nil)

// DefaultMaxConns is the pool size when the URL does not set pool_max_conns.
const DefaultMaxConns = 10

// Open connects to the database at url (postgres://user:pass@host:port/db?...,
// pgxpool parameters such as pool_max_conns allowed), applies the schema
// migrations it lacks and returns the store.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Pool returns the connection pool.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// SchemaVersion returns the highest schema migration applied.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	return v, nil
}

// migrate applies the migrations the database lacks in one transaction that
// holds an advisory lock, so concurrent first starts do not race.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := storeutil.LoadMigrations(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	err = db.tx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("advisory lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		for _, v := range vs {
			applied[v] = true
		}
		for _, m := range ms {
			if applied[m.Version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("record migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// tx runs fn in a transaction and commits it. An error from fn rolls back
// and is returned as it is.
func (db *DB) tx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// snapshot is the transaction mode of reads that need one snapshot.
var snapshot = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// uniqueViolation returns the constraint err broke when it is a unique
// violation.
func uniqueViolation(err error) (string, bool) {
	var e *pgconn.PgError
	if errors.As(err, &e) && e.Code == "23505" {
		return e.ConstraintName, true
	}
	return "", false
}

func placeholders(from, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(from+i)
	}
	return strings.Join(ps, ", ")
}

// insert writes a new row for v.
func insert[T any](ctx context.Context, q querier, t *storeutil.Table[T], v *T) error {
	vals, err := t.Values(v)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	_, err = q.Exec(ctx, "INSERT INTO "+t.Name+" ("+strings.Join(t.Cols, ", ")+") VALUES ("+placeholders(1, len(t.Cols))+")", vals...)
	if c, ok := uniqueViolation(err); ok {
		return t.Dup(v, storeutil.IsNameConstraint(c), err)
	} else if err != nil {
		return fmt.Errorf("postgres: insert %s: %w", t.Kind, err)
	}
	return nil
}

// store rewrites v's existing row.
func store[T any](ctx context.Context, q querier, t *storeutil.Table[T], v *T) error {
	vals, err := t.Values(v)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	set := make([]string, 0, len(t.Cols)-1)
	for i, c := range t.Cols[1:] {
		set = append(set, c+" = $"+strconv.Itoa(i+2))
	}
	_, err = q.Exec(ctx, "UPDATE "+t.Name+" SET "+strings.Join(set, ", ")+" WHERE "+t.Key()+" = $1", vals...)
	if c, ok := uniqueViolation(err); ok {
		return t.Dup(v, storeutil.IsNameConstraint(c), err)
	} else if err != nil {
		return fmt.Errorf("postgres: update %s: %w", t.Kind, err)
	}
	return nil
}

// scanRow decodes a row read with t.ReadCols().
func scanRow[T any](t *storeutil.Table[T], row pgx.Row) (*T, error) {
	var data []byte
	extra := make([]string, len(t.Extra))
	dest := []any{&data}
	for i := range extra {
		dest = append(dest, &extra[i])
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	v, err := t.Decode(data, extra)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", t.Kind, err)
	}
	return v, nil
}

// one returns the first row matching cond (which may end in ORDER BY and
// locking clauses), or nil when there is none.
func one[T any](ctx context.Context, q querier, t *storeutil.Table[T], cond string, args ...any) (*T, error) {
	v, err := scanRow(t, q.QueryRow(ctx, "SELECT "+t.ReadCols()+" FROM "+t.Name+" WHERE "+cond, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("postgres: get %s: %w", t.Kind, err)
	}
	return v, nil
}

// get returns the row with key id, or ENOTFOUND; lock adds a locking clause.
func get[T any](ctx context.Context, q querier, t *storeutil.Table[T], id, lock string) (*T, error) {
	v, err := one(ctx, q, t, t.Key()+" = $1"+lock, id)
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

// arg adds an argument and returns its placeholder.
func (f *filter) arg(v any) string {
	f.args = append(f.args, v)
	return "$" + strconv.Itoa(len(f.args))
}

// eq adds col = v.
func (f *filter) eq(col string, v any) { f.conds = append(f.conds, col+" = "+f.arg(v)) }

func (f *filter) add(cond string) { f.conds = append(f.conds, cond) }

func (f *filter) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// list returns the rows matching f in order, paged, and how many match
// (-1 unless withTotal).
func list[T any](ctx context.Context, q querier, t *storeutil.Table[T], f *filter, order string, offset, limit int, withTotal bool) ([]*T, int, error) {
	total := -1
	if withTotal {
		if err := q.QueryRow(ctx, "SELECT COUNT(*) FROM "+t.Name+f.where(), f.args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("postgres: count %s: %w", t.Name, err)
		}
	}
	off, lim := storeutil.Page(offset, limit)
	n := len(f.args)
	args := append(append([]any(nil), f.args...), storeutil.Limit(lim), off)
	rows, err := q.Query(ctx, "SELECT "+t.ReadCols()+" FROM "+t.Name+f.where()+
		" ORDER BY "+order+" LIMIT $"+strconv.Itoa(n+1)+"::bigint OFFSET $"+strconv.Itoa(n+2)+"::bigint", args...)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list %s: %w", t.Name, err)
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		v, err := scanRow(t, rows)
		if err != nil {
			return nil, 0, fmt.Errorf("postgres: list %s: %w", t.Name, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("postgres: list %s: %w", t.Name, err)
	}
	return out, total, nil
}

// listAll returns every row matching f in order.
func listAll[T any](ctx context.Context, db *DB, t *storeutil.Table[T], f *filter, order string) ([]*T, error) {
	out, _, err := list(ctx, db.pool, t, f, order, 0, 0, false)
	return out, err
}

// page returns a page of the rows matching f and their total, in one snapshot.
func page[T any](ctx context.Context, db *DB, t *storeutil.Table[T], f *filter, order string, offset, limit int) ([]*T, int, error) {
	var out []*T
	var total int
	err := db.tx(ctx, snapshot, func(tx pgx.Tx) error {
		var err error
		out, total, err = list(ctx, tx, t, f, order, offset, limit, true)
		return err
	})
	return out, total, err
}

// update locks the row with key id, runs fn on it and stores the result.
func update[T any](ctx context.Context, db *DB, t *storeutil.Table[T], id string, fn func(*T) error) (*T, error) {
	var out *T
	err := db.tx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		v, err := get(ctx, tx, t, id, " FOR UPDATE")
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

// claim locks the oldest row in one of states whose lease is missing or
// expired before now, skipping rows other claimers hold, applies set and
// stores it.
func claim[T any](ctx context.Context, db *DB, t *storeutil.Table[T], states []string, agentID string, now time.Time, ttl time.Duration, set func(*T)) (*T, error) {
	if err := storeutil.CheckClaim(agentID, ttl); err != nil {
		return nil, err
	}
	var out *T
	err := db.tx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		v, err := one(ctx, tx, t, `state = ANY($1) AND (lease_expires IS NULL OR lease_expires < $2)
			ORDER BY created_at, id COLLATE "C" LIMIT 1 FOR UPDATE SKIP LOCKED`, states, storeutil.Nanos(now))
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
	tag, err := q.Exec(ctx, "DELETE FROM "+table+" WHERE "+key+" = $1", id)
	if err != nil {
		return fmt.Errorf("postgres: delete %s: %w", kind, err)
	}
	if tag.RowsAffected() == 0 {
		return storeutil.NotFound(kind, id)
	}
	return nil
}
