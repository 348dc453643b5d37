package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"
)

// Secondary indexes after the load
//
// A fresh full copy drops the plain secondary keys (KEY ..., not PRIMARY,
// UNIQUE, FULLTEXT or SPATIAL) of each target table of at least
// deferIndexMinRows estimated rows, and creates them again, in their
// original order, in one ALTER TABLE as soon as the table's last chunk is
// copied, while the other tables are still being copied: one sorted build
// per index instead of an insert into each index per row. Tables with
// foreign keys (either side) or FULLTEXT/SPATIAL keys keep their indexes.
//
// The definitions (SHOW CREATE TABLE's lines) are saved in the checkpoint
// (tableState.Deferred) before the indexes are dropped, and cleared once
// they are built, so a copy killed at any point creates them exactly once:
// a resumed copy builds the ones the target lacks (an ALTER TABLE is
// atomic), including for tables already copied whose build had not ended.
// The full step ends (and the incremental and verify steps begin) only
// once every index is back, with SHOW CREATE TABLE as on the source.
const deferIndexMinRows = 10000

var (
	reSecondaryKey = regexp.MustCompile("^KEY\\s+`((?:[^`]|``)+)`")
	reOtherKey     = regexp.MustCompile("^(FULLTEXT|SPATIAL|VECTOR)\\s+(KEY|INDEX)")
)

// deferrableKeys returns the definitions of t's plain secondary keys on the
// target if they may be built after the load (nil otherwise).
func deferrableKeys(ctx context.Context, dst *sql.DB, t *table) ([]string, error) {
	if t.EstRows < deferIndexMinRows {
		return nil, nil
	}
	var name, stmt string
	if err := dst.QueryRowContext(ctx, "SHOW CREATE TABLE "+t.dst()).Scan(&name, &stmt); err != nil {
		return nil, fmt.Errorf("SHOW CREATE TABLE %s on the target: %w", t.dst(), err)
	}
	if strings.Contains(stmt, "FOREIGN KEY") {
		return nil, nil
	}
	var keys []string
	for _, l := range strings.Split(stmt, "\n") {
		l = strings.TrimSuffix(strings.TrimSpace(l), ",")
		if reOtherKey.MatchString(l) {
			return nil, nil
		}
		if reSecondaryKey.MatchString(l) {
			keys = append(keys, l)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	var refs int
	if err := dst.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?",
		t.TDB, t.TName).Scan(&refs); err != nil {
		return nil, fmt.Errorf("foreign keys to %s on the target: %w", t.dst(), err)
	}
	if refs > 0 {
		return nil, nil
	}
	return keys, nil
}

func keyName(def string) string {
	m := reSecondaryKey.FindStringSubmatch(def)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "``", "`")
}

// dropDeferred drops the deferred keys of t on the target (those it has).
func dropDeferred(ctx context.Context, dst *sql.DB, t *table, defs []string) error {
	have, err := targetIndexes(ctx, dst, t)
	if err != nil {
		return err
	}
	var drops []string
	for _, d := range defs {
		if n := keyName(d); have[strings.ToLower(n)] {
			drops = append(drops, "DROP INDEX "+quote(n))
		}
	}
	if len(drops) == 0 {
		return nil
	}
	if _, err := dst.ExecContext(ctx, "ALTER TABLE "+t.dst()+" "+strings.Join(drops, ", ")); err != nil {
		return fmt.Errorf("drop the secondary indexes of %s for the load: %w", t.dst(), err)
	}
	return nil
}

// buildDeferred creates the deferred keys of t the target lacks, in order.
func buildDeferred(ctx context.Context, dst *sql.DB, t *table, defs []string) error {
	have, err := targetIndexes(ctx, dst, t)
	if err != nil {
		return err
	}
	var adds []string
	for _, d := range defs {
		if !have[strings.ToLower(keyName(d))] {
			adds = append(adds, "ADD "+d)
		}
	}
	if len(adds) == 0 {
		return nil
	}
	if _, err := dst.ExecContext(ctx, "ALTER TABLE "+t.dst()+" "+strings.Join(adds, ", ")); err != nil {
		var me *gomysql.MySQLError
		if errors.As(err, &me) && me.Number == 1061 { // duplicate key name: built meanwhile
			return nil
		}
		return fmt.Errorf("create the secondary indexes of %s after the load: %w", t.dst(), err)
	}
	return nil
}

func targetIndexes(ctx context.Context, dst *sql.DB, t *table) (map[string]bool, error) {
	rows, err := dst.QueryContext(ctx, "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", t.TDB, t.TName)
	if err != nil {
		return nil, fmt.Errorf("indexes of %s on the target: %w", t.dst(), err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		have[strings.ToLower(n)] = true
	}
	return have, rows.Err()
}

// indexBuilder builds the deferred indexes of tables as they finish.
func (c *copier) buildIndexes(ctx context.Context, in <-chan *tableRun) error {
	for tr := range in {
		c.mu.Lock()
		defs := tr.st.Deferred
		c.mu.Unlock()
		if len(defs) == 0 {
			continue
		}
		c.building.Store(tr.t.id())
		if err := buildDeferred(ctx, c.dst, tr.t, defs); err != nil {
			return err
		}
		c.building.Store("")
		c.mu.Lock()
		tr.st.Deferred = nil
		c.mu.Unlock()
		if err := c.save(ctx); err != nil {
			return err
		}
	}
	return nil
}
