package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
)

// metaDB holds ferry's bookkeeping on the side ferry writes to: the applied
// binlog position of each job and direction (see apply.go): on the target
// for incremental sync (job_id = the job's id), on the source for reverse
// incremental sync (job_id = the job's id + "/reverse"), with the number of
// changes applied up to it (ops). txn_seq and
// ddl_thread are the loop guard's (see the package documentation): txn_seq
// is bumped first thing in every transaction ferry applies in a job with
// reverse sync, ddl_thread names the connection of ferry's next DDL.
const metaDB = "ferry_meta"

// metaColumns are ferry_meta.checkpoint's columns added after its first
// version, in order (they are added to tables made by an older ferry).
var metaColumns = []string{"txn_seq BIGINT UNSIGNED NOT NULL DEFAULT 0", "ddl_thread BIGINT UNSIGNED NOT NULL DEFAULT 0", "ops BIGINT UNSIGNED NOT NULL DEFAULT 0"}

// Positions of the loop guard's columns in ferry_meta.checkpoint's rows.
const (
	metaColJobID     = 0
	metaColDDLThread = 7
)

func ensureMeta(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(metaDB)); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+qname(metaDB, "checkpoint")+` (
		job_id VARCHAR(64) NOT NULL PRIMARY KEY,
		binlog_file VARCHAR(255) NOT NULL,
		binlog_pos BIGINT UNSIGNED NOT NULL,
		gtid TEXT NULL,
		event_time BIGINT NOT NULL,
		updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
		`+strings.Join(metaColumns, ",\n\t\t")+`
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`); err != nil {
		return err
	}
	// Tables made by a ferry before the loop guard lack its columns.
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'checkpoint'", metaDB).Scan(&n); err != nil {
		return err
	}
	for i := n - 6; i >= 0 && i < len(metaColumns); i++ {
		if _, err := db.ExecContext(ctx, "ALTER TABLE "+qname(metaDB, "checkpoint")+" ADD COLUMN "+metaColumns[i]); err != nil {
			return err
		}
	}
	return nil
}

func sysVar(ctx context.Context, db *sql.DB, name string) (string, error) {
	var v sql.NullString
	err := db.QueryRowContext(ctx, "SELECT @@GLOBAL."+name).Scan(&v)
	return v.String, err
}

// grants returns the privileges of the current user, upper-cased, joined.
func grants(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var all []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return "", err
		}
		all = append(all, strings.ToUpper(g))
	}
	return strings.Join(all, "\n"), rows.Err()
}

func hasPriv(g string, names ...string) bool {
	if strings.Contains(g, "ALL PRIVILEGES ON *.*") {
		return true
	}
	for _, n := range names {
		if strings.Contains(g, n) {
			return true
		}
	}
	return false
}

// precheck checks both sides before anything is written.
func (e *Engine) precheck(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
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
	srcSrv, err := detect(ctx, src)
	if err != nil {
		return unreachable("source", &m.Source, err)
	}
	dstSrv, err := detect(ctx, dst)
	if err != nil {
		return unreachable("target", &m.Target, err)
	}
	var notes []string
	if m.Modes.Incremental {
		if err := checkReplication(ctx, src, "source", &notes); err != nil {
			return err
		}
		if err := checkBinlog(ctx, src, "source"); err != nil {
			return err
		}
	}
	if blk, err := writeBlock(m); err != nil {
		return err
	} else if blk == writeBlockReadOnl && m.Modes.Incremental {
		if err := checkWriteBlockPrivilege(ctx, src); err != nil {
			return err
		}
		notes = append(notes, "cutover makes the source read-only (SET GLOBAL read_only=ON) and leaves it so until release-source; users with SUPER / READ_ONLY ADMIN are not blocked")
	}
	if m.Modes.ReverseIncremental {
		// Reverse sync reads the target's binlog and writes on the source.
		if err := checkReplication(ctx, dst, "target", nil); err != nil {
			return err
		}
		if err := checkBinlog(ctx, dst, "target"); err != nil {
			return err
		}
		if err := ensureMeta(ctx, src); err != nil {
			return &ferry.Error{Code: ferry.EINVALID, Field: "source.username", Reason: "SOURCE_PRIVILEGES",
				Message: fmt.Sprintf("reverse incremental sync writes on the source, but the source user cannot: %v", err),
				Advice:  "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON the migrated databases and ALL ON " + metaDB + ".* TO the source user, or create the job without reverse incremental sync"}
		}
		if g, err := grants(ctx, src); err == nil && !hasPriv(g, "INSERT") {
			return &ferry.Error{Code: ferry.EINVALID, Field: "source.username", Reason: "SOURCE_PRIVILEGES",
				Message: "reverse incremental sync writes the target's changes on the source, but the source user has no INSERT privilege",
				Advice:  "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON the migrated databases TO the source user"}
		}
		if srcSrv.MariaDB != dstSrv.MariaDB {
			notes = append(notes, "reverse incremental sync writes the "+dstSrv.Flavor()+" target's changes to the "+srcSrv.Flavor()+" source: types specific to one flavor may be refused")
		}
	}
	// A verification-only job (Modes{Verify}) reads both sides and writes
	// nothing: the target may hold rows, and ferry_meta is not created.
	writes := m.Modes.Schema || m.Modes.Full || m.Modes.Incremental
	if writes {
		// A real write on the target proves the privileges and prepares
		// ferry's bookkeeping table.
		if err := ensureMeta(ctx, dst); err != nil {
			return &ferry.Error{Code: ferry.EINVALID, Field: "target.username", Reason: "TARGET_PRIVILEGES",
				Message: fmt.Sprintf("cannot write on the target: %v", err),
				Advice:  "GRANT ALL PRIVILEGES ON the migrated databases and on " + metaDB + ".* TO the user ferry connects as (CREATE, INSERT, UPDATE, DELETE, DROP, ALTER, INDEX, CREATE VIEW)"}
		}
	}
	tables, err := listTables(ctx, src, f)
	if err != nil {
		return err
	}
	var keyless, base []string
	var rowsTotal int64
	nb := 0
	for _, t := range tables {
		if t.View {
			continue
		}
		nb++
		rowsTotal += t.EstRows
		if t.keyless() {
			keyless = append(keyless, t.id())
		}
		base = append(base, t.id())
	}
	if len(keyless) > 0 {
		notes = append(notes, fmt.Sprintf("%d tables have no primary or unique key (%s): each is copied as one scan and changes are applied as a multiset (delete or update one matching row); add a primary key for parallel copy and faster sync", len(keyless), strings.Join(first(keyless, 5), ", ")))
	}
	if m.Options.Conflict != ferry.ConflictReplace && !m.Options.DropTarget && (m.Modes.Full || m.Modes.Schema) {
		var busy []string
		for _, t := range tables {
			if t.View {
				continue
			}
			var one int
			err := dst.QueryRowContext(ctx, "SELECT 1 FROM "+t.dst()+" LIMIT 1").Scan(&one)
			if err == nil {
				busy = append(busy, t.dst())
			}
		}
		if len(busy) > 0 {
			return &ferry.Error{Code: ferry.EINVALID, Field: "target", Reason: "TARGET_NOT_EMPTY",
				Message: fmt.Sprintf("%d target tables already hold rows (%s)", len(busy), strings.Join(first(busy, 5), ", ")),
				Advice:  "empty them, set options.dropTarget, or choose conflict policy replace (source rows overwrite rows with the same key)"}
		}
	}
	if srcSrv.MariaDB != dstSrv.MariaDB {
		notes = append(notes, fmt.Sprintf("source is %s and target %s: table options and types specific to one flavor may be refused", srcSrv.Flavor(), dstSrv.Flavor()))
	}
	if tz, _ := sysVar(ctx, src, "time_zone"); tz != "" && tz != "SYSTEM" && tz != "+00:00" {
		notes = append(notes, "TIMESTAMP values move in UTC whatever the servers' time_zone ("+tz+" on the source)")
	}
	msg := fmt.Sprintf("source %s %s, target %s %s; %d tables (~%d rows) and %d views to move", srcSrv.Flavor(), srcSrv.Version, dstSrv.Flavor(), dstSrv.Version, nb, rowsTotal, len(tables)-nb)
	if !writes {
		msg = fmt.Sprintf("source %s %s, target %s %s; %d tables (~%d rows) to verify (verification only: ferry reads both sides and writes nothing)", srcSrv.Flavor(), srcSrv.Version, dstSrv.Flavor(), dstSrv.Version, nb, rowsTotal)
	}
	if m.Modes.ReverseIncremental {
		msg += "; after cutover the target's changes flow back to the source from the target's binlog (ferry's own transactions are recognised by their " + metaDB + ".checkpoint marker and skipped)"
	}
	if len(notes) > 0 {
		msg += "; warnings: " + strings.Join(notes, "; ")
	}
	rt.Message(msg)
	rt.Progress(ferry.Counters{Done: 1, Total: 1}, 100)
	return nil
}

// checkReplication checks that the user of a side whose binlog ferry reads
// may do so.
func checkReplication(ctx context.Context, db *sql.DB, side string, notes *[]string) error {
	g, err := grants(ctx, db)
	if err != nil {
		return fmt.Errorf("%s SHOW GRANTS: %w", side, err)
	}
	what := "incremental sync"
	if side == "target" {
		what = "reverse incremental sync"
	}
	if !hasPriv(g, "REPLICATION SLAVE", "REPLICATION REPLICA", "REPLICATION SLAVE ADMIN") {
		return &ferry.Error{Code: ferry.EINVALID, Field: side + ".username", Reason: strings.ToUpper(side) + "_PRIVILEGES",
			Message: fmt.Sprintf("the %s user lacks REPLICATION SLAVE: %s cannot read the %s's binary log", side, what, side),
			Advice:  "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD ON *.* TO the user ferry connects as"}
	}
	if !hasPriv(g, "REPLICATION CLIENT", "BINLOG MONITOR", "SUPER") {
		return &ferry.Error{Code: ferry.EINVALID, Field: side + ".username", Reason: strings.ToUpper(side) + "_PRIVILEGES",
			Message: fmt.Sprintf("the %s user lacks REPLICATION CLIENT (BINLOG MONITOR on MariaDB): %s cannot read the binlog position", side, what),
			Advice:  "GRANT REPLICATION CLIENT, REPLICATION SLAVE, SELECT, RELOAD ON *.* TO the user ferry connects as"}
	}
	if notes != nil && !hasPriv(g, "RELOAD") {
		*notes = append(*notes, "the "+side+" user lacks RELOAD: the full copy cannot line up parallel snapshots with FLUSH TABLES WITH READ LOCK and will read with one connection")
	}
	return nil
}

// checkBinlog checks that a side writes the row-based binlog with full row
// images that ferry's binlog reader needs.
func checkBinlog(ctx context.Context, db *sql.DB, side string) error {
	logBin, err := sysVar(ctx, db, "log_bin")
	if err != nil {
		return fmt.Errorf("%s @@log_bin: %w", side, err)
	}
	format, _ := sysVar(ctx, db, "binlog_format")
	image, _ := sysVar(ctx, db, "binlog_row_image")
	what := "incremental sync reads it"
	if side == "target" {
		what = "reverse incremental sync reads it to bring the target's changes back to the source after cutover"
	}
	if logBin != "1" && !strings.EqualFold(logBin, "ON") {
		return &ferry.Error{Code: ferry.EINVALID, Field: side, Reason: "BINLOG_OFF",
			Message: fmt.Sprintf("the %s's binary log is off: %s", side, what),
			Advice:  "restart the " + side + " with log_bin=ON, binlog_format=ROW, binlog_row_image=FULL (and a server_id)"}
	}
	if !strings.EqualFold(format, "ROW") {
		return &ferry.Error{Code: ferry.EINVALID, Field: side, Reason: "BINLOG_FORMAT",
			Message: fmt.Sprintf("the %s's binlog_format is %s: %s and needs ROW", side, format, what),
			Advice:  "SET GLOBAL binlog_format=ROW (and in the server's configuration), then reconnect the applications so their sessions use it"}
	}
	if !strings.EqualFold(image, "FULL") {
		return &ferry.Error{Code: ferry.EINVALID, Field: side, Reason: "BINLOG_ROW_IMAGE",
			Message: fmt.Sprintf("the %s's binlog_row_image is %s: %s and needs FULL (whole rows, to apply changes idempotently)", side, image, what),
			Advice:  "SET GLOBAL binlog_row_image=FULL (and in the server's configuration)"}
	}
	return nil
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(append([]string{}, s[:n]...), fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}
