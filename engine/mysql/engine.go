// Package mysql is ferry's MySQL-family engine: MySQL or MariaDB (and
// targets that speak the protocol) to the same.
//
// Steps:
//
//   - precheck: connectivity, privileges, binlog settings (ROW, FULL row
//     image), key-less tables, non-empty target tables, flavor and versions.
//   - schema: databases, tables (SHOW CREATE TABLE replayed) and views, with
//     include/exclude filters and renames.
//   - full: one consistent snapshot taken by N connections under a brief
//     FLUSH TABLES WITH READ LOCK, with the binlog position that matches it;
//     tables split into key ranges copied in parallel, each chunk streamed
//     into LOAD DATA LOCAL INFILE ... REPLACE (multi-row REPLACEs where the
//     target refuses it), plain secondary keys built after each table's
//     load; resumable per chunk (see full.go for the resume design).
//   - incremental: binlog replication from the snapshot's position with
//     go-mysql's BinlogSyncer; whole source transactions applied in
//     parallel by ApplyWorkers connections, scheduled by their (table,
//     unique key) values so that changes to one key keep the source's order
//     (apply_sched.go); row images written idempotently by key; the low
//     watermark position (and MariaDB GTID, used to resume) written to
//     ferry_meta.checkpoint on the target in the same transactions as the
//     rows; key-less tables and DDL applied alone, in order; cutover drains
//     to the source's position at cutover time.
//   - cutover: records the target's binlog position (for reverse sync),
//     carries AUTO_INCREMENT counters over and removes ferry's marker row
//     on the target.
//   - verify: chunk checksums on both sides (verify.go). A job of Modes{Verify}
//     alone (ferry's on-demand verification) runs only precheck and verify
//     and writes nothing on either side.
//   - reverse_incremental: after cutover (and verify), the target's binlog
//     applied to the source from the position recorded at cutover until the
//     job is released (reverse.go).
//
// # Loop guard
//
// Reverse sync must never bring ferry's own writes on the target back to
// the source (nor, symmetrically, would anything reading the source's
// binlog for the job take the reverse sync's writes forward again). The
// guard is a marker row, not a server_id: a session server_id needs SUPER
// (BINLOG ADMIN) on MariaDB and does not exist on MySQL, while the marker
// needs nothing beyond the writes ferry does anyway and survives any
// binlog filter or relay.
//
//   - Row changes: in a job with reverse sync, the appliers of each
//     direction start every transaction they write with an upsert of their
//     own row of the direction in ferry_meta.checkpoint (job_id = "<job>"
//     forward, on the target, "<job>/reverse" reverse, on the source, and
//     "#<n>" after either for apply worker n; txn_seq = txn_seq + 1), and
//     end it with the checkpoint position on that same row. So the
//     first row event of each of ferry's transactions names job and
//     direction, and the reader of the other direction, seeing it, skips the
//     whole transaction (nothing of it has been staged yet) while still
//     advancing its position past it. Markers of other jobs are not
//     matched: a chain A→B, B→C of two jobs moves B's changes on.
//   - DDL: every statement ferry applies (and the cutover step's ALTER TABLE
//     ... AUTO_INCREMENT) starts with the comment "/* ferry:<marker id> */",
//     kept in the binlog; the other direction's reader skips statements
//     carrying it.
//
// The incremental and reverse checkpoints count what the guard skipped
// (guarded).
package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/ferrymigrate/ferry"
)

// Engine implements ferry.Engine for the MySQL family.
type Engine struct {
	Logger *slog.Logger
	// ChunkRows is the number of rows of one full-copy chunk (default 10000).
	ChunkRows int
	// BatchRows bounds the rows of one multi-row statement (default 500).
	BatchRows int
	// ApplyWorkers is the number of connections that apply the binlog in
	// parallel in the incremental steps (default 8).
	ApplyWorkers int
}

// New returns the MySQL-family engine.
func New(logger *slog.Logger) *Engine {
	if logger == nil {
		logger = slog.Default()
	}
	return &Engine{Logger: logger}
}

var _ ferry.Engine = (*Engine)(nil)

// Kind is mysql.
func (e *Engine) Kind() ferry.EngineKind { return ferry.KindMySQL }

func (e *Engine) chunkRows() int {
	if e.ChunkRows > 0 {
		return e.ChunkRows
	}
	return 10000
}

func (e *Engine) batchRows() int {
	if e.BatchRows > 0 {
		return e.BatchRows
	}
	return 500
}

// Check validates a job for this engine without touching the network.
func (e *Engine) Check(m *ferry.Migration) error {
	if err := m.ValidateSource(); err != nil {
		return err
	}
	if m.Modes.ReverseIncremental && !m.Modes.Incremental {
		return ferry.FieldError("modes.reverseIncremental", "reverse incremental sync follows incremental sync and cutover: enable incremental sync too")
	}
	if len(m.Source.Addrs) != 1 {
		return ferry.FieldError("source.addrs", "give the one MySQL server to read from (host:port)")
	}
	if len(m.Target.Addrs) != 1 {
		return ferry.FieldError("target.addrs", "give the one MySQL server to write to (host:port)")
	}
	if m.Options.Conflict == ferry.ConflictSkip {
		return ferry.FieldError("options.conflict", "conflict policy skip is not built yet for MySQL: use fail (empty target tables) or replace")
	}
	if _, err := newFilter(m); err != nil {
		return err
	}
	if _, err := writeBlock(m); err != nil {
		return err
	}
	return nil
}

// RunStep runs one step of a job.
func (e *Engine) RunStep(ctx context.Context, m *ferry.Migration, step ferry.StepName, rt ferry.StepRuntime) error {
	switch step {
	case ferry.StepPrecheck:
		return e.precheck(ctx, m, rt)
	case ferry.StepSchema:
		return e.schema(ctx, m, rt)
	case ferry.StepFull:
		return e.full(ctx, m, rt)
	case ferry.StepIncremental:
		return e.incremental(ctx, m, rt)
	case ferry.StepCutover:
		return e.cutover(ctx, m, rt)
	case ferry.StepVerify:
		return e.verify(ctx, m, rt)
	case ferry.StepReverseIncremental:
		return e.reverse(ctx, m, rt)
	}
	return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("the mysql engine has no step %s", step)}
}

// tlsConfigs registered with the driver, by endpoint.
var tlsMu sync.Mutex

func tlsName(ep *ferry.Endpoint) (string, error) {
	if !ep.TLS {
		return "", nil
	}
	if ep.CACertPEM == "" && !ep.TLSSkipVerify {
		return "true", nil
	}
	h := fnv.New64a()
	h.Write([]byte(ep.CACertPEM))
	fmt.Fprint(h, ep.TLSSkipVerify, ep.Addrs)
	name := fmt.Sprintf("ferry-%x", h.Sum64())
	cfg := &tls.Config{InsecureSkipVerify: ep.TLSSkipVerify}
	if ep.CACertPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(ep.CACertPEM)) {
			return "", ferry.FieldError("caCertPem", "no certificate in the PEM")
		}
		cfg.RootCAs = pool
	}
	tlsMu.Lock()
	defer tlsMu.Unlock()
	if err := gomysql.RegisterTLSConfig(name, cfg); err != nil {
		return "", err
	}
	return name, nil
}

func tlsConfig(ep *ferry.Endpoint) *tls.Config {
	if !ep.TLS {
		return nil
	}
	cfg := &tls.Config{InsecureSkipVerify: ep.TLSSkipVerify}
	if ep.CACertPEM != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(ep.CACertPEM))
		cfg.RootCAs = pool
	}
	if h, _, ok := strings.Cut(ep.Addrs[0], ":"); ok {
		cfg.ServerName = h
	}
	return cfg
}

// Session settings. Both sides talk in UTC so TIMESTAMP values move as
// they are stored; the target's sql_mode allows zero dates and keeps an
// explicit 0 in an AUTO_INCREMENT column; foreign keys are not checked (rows
// arrive in key order, not in dependency order).
const (
	targetSQLMode = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"
)

// dsn builds a go-sql-driver DSN for an endpoint.
//   - source: values come back raw in each column's character set
//     (character_set_results=binary) so that they can be written back byte
//     for byte as _binary literals.
//   - target: statements are built by the driver's interpolation.
func dsn(ep *ferry.Endpoint, target bool) (string, error) {
	cfg := gomysql.NewConfig()
	cfg.User = ep.Username
	cfg.Passwd = ep.Password
	cfg.Net = "tcp"
	cfg.Addr = ep.Addrs[0]
	cfg.Timeout = 10 * time.Second
	cfg.ReadTimeout = 10 * time.Minute
	cfg.WriteTimeout = 10 * time.Minute
	cfg.Collation = "utf8mb4_general_ci"
	cfg.MaxAllowedPacket = 0 // ask the server
	name, err := tlsName(ep)
	if err != nil {
		return "", err
	}
	cfg.TLSConfig = name
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	if target {
		cfg.InterpolateParams = true
		cfg.Params["sql_mode"] = "'" + targetSQLMode + "'"
		cfg.Params["foreign_key_checks"] = "0"
	} else {
		cfg.Params["character_set_results"] = "binary"
	}
	return cfg.FormatDSN(), nil
}

func openDB(ep *ferry.Endpoint, target bool, conns int) (*sql.DB, error) {
	d, err := dsn(ep, target)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("mysql", d)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns + 2)
	db.SetMaxIdleConns(conns + 2)
	db.SetConnMaxIdleTime(time.Minute)
	return db, nil
}

// server describes one side.
type server struct {
	Version string
	MariaDB bool
}

func (s server) Flavor() string {
	if s.MariaDB {
		return "mariadb"
	}
	return "mysql"
}

func detect(ctx context.Context, db *sql.DB) (server, error) {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return server{}, err
	}
	return server{Version: v, MariaDB: strings.Contains(strings.ToLower(v), "mariadb")}, nil
}

func unreachable(side string, ep *ferry.Endpoint, err error) error {
	return &ferry.Error{Code: ferry.EINVALID, Field: side, Reason: strings.ToUpper(side) + "_UNREACHABLE",
		Message: fmt.Sprintf("cannot connect to the %s %s: %v", side, ep.Addrs[0], err),
		Advice:  "check the address, user and password and that ferry's host may connect"}
}

// pos is a binlog position: the file and the offset of the next event.
type pos struct {
	File string `json:"file"`
	Pos  uint32 `json:"pos"`
	GTID string `json:"gtid,omitempty"`
}

func (p pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Pos) }

func (p pos) IsZero() bool { return p.File == "" }

// fileSeq is the numeric suffix of a binlog file name.
func fileSeq(f string) int64 {
	i := strings.LastIndexByte(f, '.')
	n, _ := strconv.ParseInt(f[i+1:], 10, 64)
	return n
}

// compare orders positions of one server's binlog.
func (p pos) compare(q pos) int {
	a, b := fileSeq(p.File), fileSeq(q.File)
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case p.Pos < q.Pos:
		return -1
	case p.Pos > q.Pos:
		return 1
	}
	return 0
}

// masterPos reads the source's current binlog position.
func masterPos(ctx context.Context, db *sql.DB, srv server) (pos, error) {
	return binlogPos(ctx, db, srv, "source")
}

// binlogPos reads a side's current binlog position.
func binlogPos(ctx context.Context, db *sql.DB, srv server, side string) (pos, error) {
	rows, err := db.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return pos{}, fmt.Errorf("SHOW MASTER STATUS: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return pos{}, &ferry.Error{Code: ferry.EINVALID, Field: side, Reason: "BINLOG_OFF",
			Message: "the " + side + " writes no binary log", Advice: "start the " + side + " with log_bin, binlog_format=ROW and binlog_row_image=FULL"}
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return pos{}, err
	}
	p := pos{File: string(vals[0])}
	n, _ := strconv.ParseUint(string(vals[1]), 10, 32)
	p.Pos = uint32(n)
	if len(cols) >= 5 && !srv.MariaDB {
		p.GTID = strings.ReplaceAll(string(vals[4]), "\n", "")
	}
	rows.Close()
	if srv.MariaDB {
		var g sql.NullString
		if err := db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", p.File, p.Pos).Scan(&g); err == nil {
			p.GTID = g.String
		}
	}
	return p, nil
}

// quote quotes an identifier.
func quote(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func qname(db, t string) string { return quote(db) + "." + quote(t) }

// serverID derives the replica server id ferry uses for a job's binlog link.
func serverID(jobID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(jobID))
	return 1<<30 | h.Sum32()>>2
}

func decodeJSON[T any](raw json.RawMessage) (*T, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("bad mysql checkpoint: %w", err)
	}
	return &v, nil
}
