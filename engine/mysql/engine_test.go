package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	"github.com/ferrymigrate/ferry/engine/enginetest"
	mysqlengine "github.com/ferrymigrate/ferry/engine/mysql"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/sqlite"
)

func TestMain(m *testing.M) { testharness.Main(m) }

func logger(t testing.TB) *slog.Logger {
	if os.Getenv("FERRY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type env struct {
	t        *testing.T
	store    ferry.Store
	svc      *ferry.Service
	reg      *ferry.Registry
	eng      *mysqlengine.Engine
	ctx      context.Context
	proj     *ferry.Project
	src, dst *testharness.MariaDBServer
	srcDB    *sql.DB
	dstDB    *sql.DB
}

func openSQL(t testing.TB, dsn string) *sql.DB {
	db, err := sql.Open("mysql", dsn+"?multiStatements=true&time_zone=%27%2B05%3A30%27")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t}
	// One after the other: mariadb-install-db runs were seen to fail when
	// started together on this 2-core machine.
	e.src = testharness.StartMariaDBServer(t, testharness.MariaDBOptions{ServerID: 1})
	e.dst = testharness.StartMariaDBServer(t, testharness.MariaDBOptions{ServerID: 2})
	e.srcDB, e.dstDB = openSQL(t, e.src.DSN), openSQL(t, e.dst.DSN)
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.store = db
	e.reg = ferry.NewRegistry()
	e.eng = mysqlengine.New(logger(t))
	e.eng.ChunkRows, e.eng.BatchRows = 1000, 200
	e.reg.Register(e.eng)
	e.svc = ferry.NewService(db, e.reg, logger(t))
	e.ctx = ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	org, err := e.svc.CreateOrg(e.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if e.proj, err = e.svc.CreateProject(e.ctx, org.ID, "prod"); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) agent(id string) *agent.Agent {
	a := agent.New(agent.Config{ID: id, Store: e.store, Registry: e.reg, Service: e.svc, Logger: logger(e.t),
		LeaseTTL: 2 * time.Second, PollInterval: 50 * time.Millisecond, RetryBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return a
}

func endpoint(s *testharness.MariaDBServer) ferry.Endpoint {
	return ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{s.Addr}, Username: "root"}
}

func (e *env) create(modes ferry.Modes, opts ferry.Options) *ferry.Migration {
	e.t.Helper()
	m := &ferry.Migration{ProjectID: e.proj.ID, Engine: ferry.KindMySQL, Source: endpoint(e.src), Target: endpoint(e.dst), Modes: modes, Options: opts}
	if err := e.svc.CreateMigration(e.ctx, m, true); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) wait(id, what string, timeout time.Duration, cond func(m *ferry.Migration) bool) *ferry.Migration {
	e.t.Helper()
	return waitFor(e.t, e.store, id, what, timeout, cond)
}

func waitFor(t *testing.T, store ferry.Store, id, what string, timeout time.Duration, cond func(m *ferry.Migration) bool) *ferry.Migration {
	t.Helper()
	return enginetest.WaitFor(t, store, id, what, timeout, cond)
}

func exec1(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%.200s: %v", s, err)
		}
	}
}

// schemaSQL is the source's schema: every common column type.
const schemaSQL = `
CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE TABLE shop.types (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d DECIMAL(65,30), d2 DECIMAL(10,2) UNSIGNED,
  f FLOAT, dbl DOUBLE,
  c CHAR(10), vc VARCHAR(200), tx TEXT, ltx LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  lat VARCHAR(20) CHARACTER SET latin1,
  bl BLOB, vb VARBINARY(64), bn BINARY(4),
  dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(3), yr YEAR,
  j JSON, en ENUM('small','medium','large'), st SET('a','b','c','d'),
  b1 BIT(1), b64 BIT(64),
  gen INT AS (i + 1) VIRTUAL
) ENGINE=InnoDB;
CREATE TABLE shop.composite (
  region VARCHAR(20) NOT NULL, id BIGINT NOT NULL, seq SMALLINT UNSIGNED NOT NULL, qty INT, note VARCHAR(50),
  PRIMARY KEY (region, id, seq), KEY (qty)
) ENGINE=InnoDB;
CREATE TABLE shop.nokey (x INT, y VARCHAR(10), z DOUBLE) ENGINE=InnoDB;
CREATE TABLE shop.big (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100) NOT NULL, n INT NOT NULL, KEY (n)) ENGINE=InnoDB;
CREATE TABLE shop.ukey (code VARCHAR(20) NOT NULL, val INT, UNIQUE KEY (code)) ENGINE=InnoDB;
CREATE VIEW shop.big_even AS SELECT id, v FROM shop.big WHERE n % 2 = 0;
CREATE DATABASE extra;
CREATE TABLE extra.items (id INT PRIMARY KEY, name VARCHAR(20));
INSERT INTO extra.items VALUES (1,'one'),(2,'two');
CREATE DATABASE skipme;
CREATE TABLE skipme.t (id INT PRIMARY KEY);
INSERT INTO skipme.t VALUES (1);
`

// typesRows are edge values of every type (the session time zone is
// +05:30: TIMESTAMPs must move as instants).
const typesRows = `
SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION';
INSERT INTO shop.types (id,ti,tiu,si,siu,mi,miu,i,iu,bi,biu,d,d2,f,dbl,c,vc,tx,ltx,lat,bl,vb,bn,dt,dtm,ts,tm,yr,j,en,st,b1,b64) VALUES
(1,-128,255,-32768,65535,-8388608,16777215,-2147483648,4294967295,-9223372036854775808,18446744073709551615,
 '-99999999999999999999999999999999999.999999999999999999999999999999','12345678.91',
 3.14159274,1.7976931348623157e308,'abc','héllo 🎉 wörld','text 🚀',REPEAT('long😀',500),'caf\xe9',
 0x00FF00FF80,0x00,0xFFFF0000,'2024-02-29','2024-02-29 23:59:59.999999','2024-03-31 01:30:00.123456','-838:59:59.000',2155,
 '{"a": [1, 2.5, "x"], "b": {"c": null}}','large','a,c,d',b'1',b'1111111111111111111111111111111111111111111111111111111111111111'),
(2,0,0,0,0,0,0,0,0,0,0,'0.000000000000000000000000000001','0.00',1.17549435e-38,4.9e-324,'','','','','',
 '','','\0\0\0\0','0000-00-00','0000-00-00 00:00:00.000000','1970-01-01 05:30:01.000000','00:00:00.000',0,'[]','small','',b'0',b'0'),
(3,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL),
(4,127,1,32767,1,8388607,1,2147483647,1,9223372036854775807,9223372036854775808,'99999999999999999999999999999999999.999999999999999999999999999999','99999999.99',
 -3.4028235e38,-2.2250738585072014e-308,'  pad  ','trailing  ','line1\nline2\r\n\ttab\\back''quote"dq','\0nul','\xff',
 0xFFFFFFFFFF,0x0000,0x01020304,'1000-01-01','1000-01-01 00:00:00.000001','2038-01-19 08:44:07.999999','838:59:59.999',1901,
 '{"emoji": "\\ud83d\\ude00", "n": 1e300}','medium','a,b,c,d',b'1',b'1000000000000000000000000000000000000000000000000000000000000001'),
(5,1,2,3,4,5,6,7,8,9,10,'0.1','0.10',0.1,0.1,'NULL','NULL','NULL','NULL','NULL',
 'NULL','NULL','NULL','2000-01-00','2000-00-00 10:00:00.5','2000-01-01 00:00:00','-00:00:01.5',1999,'null','','',b'0',b'101');
`

func seed(t *testing.T, db *sql.DB, bigRows int) {
	exec1(t, db, schemaSQL, typesRows)
	var sb strings.Builder
	for i := 0; i < bigRows; i++ {
		if i%1000 == 0 {
			if sb.Len() > 0 {
				exec1(t, db, sb.String())
			}
			sb.Reset()
			sb.WriteString("INSERT INTO shop.big (v, n) VALUES ")
		} else {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "('row %d ✓ %s', %d)", i, strings.Repeat("x", i%40), i)
	}
	exec1(t, db, sb.String())
	sb.Reset()
	sb.WriteString("INSERT INTO shop.composite VALUES ")
	for i := 0; i < 3000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "('%s', %d, %d, %d, 'n%d')", []string{"eu", "us", "ÄSIA", "af"}[i%4], i/7, i%7, i, i)
	}
	exec1(t, db, sb.String())
	exec1(t, db, "INSERT INTO shop.nokey VALUES (1,'a',0.5),(1,'a',0.5),(1,'a',0.5),(2,NULL,NULL),(2,'',NULL),(3,'b',1e-300)")
	exec1(t, db, "INSERT INTO shop.ukey VALUES ('k1',1),('k2',2),('k3',3)")
}

// writer runs transactions on the source until stopped.
type writer struct {
	db      *sql.DB
	stop    chan struct{}
	done    chan struct{}
	n       atomic.Int64
	err     atomic.Value
	withCol atomic.Bool // the ALTER TABLE ADD COLUMN happened
}

func startWriter(t *testing.T, db *sql.DB, seed int64) *writer {
	w := &writer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		r := rand.New(rand.NewSource(seed))
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			if err := w.txn(r, i); err != nil {
				w.err.Store(err)
				return
			}
			w.n.Add(1)
			time.Sleep(time.Duration(r.Intn(3)) * time.Millisecond)
		}
	}()
	t.Cleanup(func() { w.halt(t) })
	return w
}

func (w *writer) txn(r *rand.Rand, i int) error {
	ctx := context.Background()
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ex := func(q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		return nil
	}
	id := r.Intn(20000) + 1
	steps := []func() error{
		func() error {
			return ex("INSERT INTO shop.big (v, n) VALUES (?, ?)", fmt.Sprintf("live %d 💡", i), i)
		},
		func() error { return ex("UPDATE shop.big SET v = CONCAT(v, '+'), n = n + 1 WHERE id = ?", id) },
		func() error { return ex("DELETE FROM shop.big WHERE id = ?", id+7) },
		func() error { return ex("UPDATE IGNORE shop.big SET id = id + 1000000 WHERE id = ?", id+3) }, // a key change
		func() error {
			return ex("INSERT INTO shop.composite VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE qty = qty + 1, note = CONCAT(note, '!')",
				[]string{"eu", "us", "ÄSIA", "af"}[i%4], r.Intn(500), r.Intn(8), i, fmt.Sprint("w", i))
		},
		func() error {
			return ex("DELETE FROM shop.composite WHERE region = 'af' AND id = ? AND seq = ?", r.Intn(500), r.Intn(7))
		},
		func() error {
			return ex("INSERT INTO shop.nokey VALUES (?, ?, ?)", i%5, fmt.Sprint("k", i%3), float64(i)/3)
		},
		func() error { return ex("DELETE FROM shop.nokey WHERE x = ? LIMIT 1", i%5) },
		func() error { return ex("UPDATE shop.nokey SET z = z * 2 WHERE x = ? LIMIT 1", (i+1)%5) },
		func() error {
			return ex("UPDATE shop.types SET f = ?, dbl = ?, ts = NOW(6), dtm = ?, vc = ?, j = JSON_OBJECT('i', ?), b64 = ?, st = 'b,d', biu = 18446744073709551615 - ? WHERE id = ?",
				float32(r.NormFloat64()), r.NormFloat64()*1e10, "2001-02-03 04:05:06.789", fmt.Sprint("ü", i, "😀"), i, uint64(r.Int63())<<1|1, i, 1+r.Intn(2))
		},
		func() error { return ex("REPLACE INTO shop.ukey VALUES (?, ?)", fmt.Sprint("k", r.Intn(6)), i) },
	}
	if w.withCol.Load() {
		steps = append(steps, func() error {
			return ex("UPDATE shop.big SET added = ? WHERE id = ?", fmt.Sprint("added ", i), r.Intn(20000)+1)
		})
	}
	for k := 0; k < 1+r.Intn(4); k++ {
		if err := steps[r.Intn(len(steps))](); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (w *writer) halt(t testing.TB) int64 {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	if err, _ := w.err.Load().(error); err != nil {
		t.Errorf("writer: %v", err)
	}
	return w.n.Load()
}

// dump runs mysqldump of a database.
func dump(t testing.TB, s *testharness.MariaDBServer, db string, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("mariadb-dump")
	if err != nil {
		bin = "mysqldump"
	}
	args := append([]string{"--no-defaults", "-h127.0.0.1", fmt.Sprintf("-P%d", s.Port), "-uroot", "--skip-dump-date", "--compact", "--hex-blob",
		"--order-by-primary", "--skip-extended-insert", "--routines=false", "--triggers=false"}, extra...)
	args = append(args, db)
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("mysqldump %s: %v: %s", db, err, errb.String())
	}
	return out.String()
}

func compareDumps(t *testing.T, a, b string) {
	t.Helper()
	if a == b {
		return
	}
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			t.Fatalf("dumps differ at line %d (of %d/%d):\nsource: %.400s\ntarget: %.400s", i+1, len(al), len(bl), x, y)
		}
	}
}

func TestMigrationEndToEnd(t *testing.T) {
	e := newEnv(t)
	seed(t, e.srcDB, 20000)
	// Writes during the whole sync, from before the snapshot.
	w := startWriter(t, e.srcDB, 1)
	time.Sleep(100 * time.Millisecond)
	m := e.create(ferry.Modes{Schema: true, Full: true, Incremental: true, Verify: true}, ferry.Options{
		Parallelism: 3,
		Filters:     ferry.Filters{ExcludeDBs: []string{"skipme"}, Renames: map[string]string{"extra": "extra2"}},
	})
	e.agent("agent-1")
	m = e.wait(m.ID, "ready for cutover", 90*time.Second, func(m *ferry.Migration) bool {
		return m.ReadyForCutover && m.Step(ferry.StepIncremental).Counters.Ops > 50
	})
	full := m.Step(ferry.StepFull)
	if full.State != ferry.StepDone || full.Counters.Done < 20000 || full.Progress != 100 {
		t.Fatalf("full step %+v", full)
	}
	pre := m.Step(ferry.StepPrecheck)
	if !strings.Contains(pre.Message, "no primary or unique key") || !strings.Contains(pre.Message, "shop.nokey") {
		t.Errorf("precheck message does not warn of the key-less table: %s", pre.Message)
	}
	// DDL during incremental, then writes that use the new column.
	exec1(t, e.srcDB, "ALTER TABLE shop.big ADD COLUMN added VARCHAR(40) NULL DEFAULT 'dflt' AFTER v")
	w.withCol.Store(true)
	exec1(t, e.srcDB, "UPDATE shop.big SET added = 'after ddl' WHERE id <= 10")
	time.Sleep(700 * time.Millisecond)
	n := w.halt(t)
	exec1(t, e.srcDB, "INSERT INTO shop.nokey VALUES (9,'last',NULL),(9,'last',NULL)", "DELETE FROM shop.nokey WHERE x = 9 LIMIT 1")
	if _, err := e.svc.CutoverMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.wait(m.ID, "completed", 90*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	inc := m.Step(ferry.StepIncremental)
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 || v.Counters.Done < 20000 {
		t.Fatalf("verify %+v: %s", v.Counters, v.Message)
	}
	compareDumps(t, dump(t, e.src, "shop"), dump(t, e.dst, "shop"))
	compareDumps(t, dump(t, e.src, "extra", "--no-create-info"), dump(t, e.dst, "extra2", "--no-create-info"))
	var cnt int
	if err := e.dstDB.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('skipme','extra')").Scan(&cnt); err != nil || cnt != 0 {
		t.Fatalf("excluded/renamed databases on the target: %d (%v)", cnt, err)
	}
	// FLOAT bits: the widened double is the same on both sides.
	q := "SELECT GROUP_CONCAT(CAST(CAST(f AS DOUBLE) AS CHAR) ORDER BY id) FROM shop.types"
	var a, b string
	_ = e.srcDB.QueryRow(q).Scan(&a)
	_ = e.dstDB.QueryRow(q).Scan(&b)
	if a != b || a == "" {
		t.Fatalf("FLOAT values differ: %s vs %s", a, b)
	}
	t.Logf("full: %d rows in %s (%s); incremental: %d changes, %d app transactions; verify: %s",
		full.Counters.Done, full.FinishedAt.Sub(*full.StartedAt).Round(time.Millisecond), full.Message, inc.Counters.Ops, n, v.Message)
}

// TestPrecheckFindings: a statement-format binlog and a non-empty target
// fail the precheck with a message and advice.
func TestPrecheckFindings(t *testing.T) {
	e := newEnv(t)
	exec1(t, e.srcDB, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
	exec1(t, e.dstDB, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (7)")
	e.agent("agent-1")
	m := e.create(ferry.Modes{Schema: true, Full: true, Incremental: true}, ferry.Options{ResumeMode: ferry.ResumeManual})
	m = e.wait(m.ID, "failed precheck (target not empty)", 30*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateFailed })
	if s := m.Step(ferry.StepPrecheck); s.State != ferry.StepFailed || !strings.Contains(s.Message, "already hold rows (`app`.`t`)") || !strings.Contains(s.Message, "conflict policy replace") {
		t.Fatalf("precheck: %+v", s)
	}
	exec1(t, e.srcDB, "SET GLOBAL binlog_format = 'STATEMENT'")
	m = e.create(ferry.Modes{Full: true, Incremental: true}, ferry.Options{ResumeMode: ferry.ResumeManual, Conflict: ferry.ConflictReplace})
	m = e.wait(m.ID, "failed precheck (binlog format)", 30*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateFailed })
	if s := m.Step(ferry.StepPrecheck); !strings.Contains(s.Message, "binlog_format is STATEMENT") || !strings.Contains(s.Message, "SET GLOBAL binlog_format=ROW") {
		t.Fatalf("precheck: %+v", s)
	}
	exec1(t, e.srcDB, "SET GLOBAL binlog_format = 'ROW'")
	// Reverse incremental reads the target's binlog: it must be ROW too.
	exec1(t, e.dstDB, "SET GLOBAL binlog_format = 'STATEMENT'")
	m = e.create(ferry.Modes{Full: true, Incremental: true, ReverseIncremental: true}, ferry.Options{ResumeMode: ferry.ResumeManual, Conflict: ferry.ConflictReplace})
	m = e.wait(m.ID, "failed precheck (target binlog format)", 30*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateFailed })
	if s := m.Step(ferry.StepPrecheck); !strings.Contains(s.Message, "the target's binlog_format is STATEMENT: reverse incremental sync reads it") || !strings.Contains(s.Message, "SET GLOBAL binlog_format=ROW") {
		t.Fatalf("precheck: %+v", s)
	}
	exec1(t, e.dstDB, "SET GLOBAL binlog_format = 'ROW'")
}

// TestIncrementalThroughput measures the apply rate of bulk changes: 60k
// inserts in 6 transactions, then 60k updates and 30k deletes.
func TestIncrementalThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("throughput measurement")
	}
	e := newEnv(t)
	exec1(t, e.srcDB, "CREATE DATABASE bench", "CREATE TABLE bench.t (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, KEY (k))",
		"CREATE TABLE bench.sb (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, KEY (k))",
		"INSERT INTO bench.sb SELECT seq, seq % 1000, REPEAT(CHAR(65 + seq % 26), 120), REPEAT('p', 60) FROM bench.seq_1_to_200000")
	m := e.create(ferry.Modes{Full: true, Incremental: true}, ferry.Options{})
	e.agent("agent-1")
	m = e.wait(m.ID, "ready", 60*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	t.Logf("full copy of 200000 sysbench-shaped rows: %s", m.Step(ferry.StepFull).Message)
	ops0 := m.Step(ferry.StepIncremental).Counters.Ops
	start := time.Now()
	for i := 0; i < 6; i++ {
		exec1(t, e.srcDB, fmt.Sprintf(`INSERT INTO bench.t SELECT seq, seq %% 1000, REPEAT(CHAR(65 + seq %% 26), 120), 'pad' FROM bench.seq_%d_to_%d`, i*10000+1, (i+1)*10000))
	}
	written := time.Since(start)
	const want = 60000
	m = e.wait(m.ID, "inserts applied", 120*time.Second, func(m *ferry.Migration) bool { return m.Step(ferry.StepIncremental).Counters.Ops-ops0 >= want })
	insEl := time.Since(start)
	start = time.Now()
	exec1(t, e.srcDB, "UPDATE bench.t SET k = k + 1, c = REVERSE(c)", "DELETE FROM bench.t WHERE id % 2 = 0")
	m = e.wait(m.ID, "updates applied", 120*time.Second, func(m *ferry.Migration) bool {
		return m.Step(ferry.StepIncremental).Counters.Ops-ops0 >= want+60000+30000
	})
	updEl := time.Since(start)
	if _, err := e.svc.CutoverMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	e.wait(m.ID, "completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	compareDumps(t, dump(t, e.src, "bench"), dump(t, e.dst, "bench"))
	t.Logf("incremental apply: %d inserts in %s (%.0f rows/s; the source wrote them in %s); 60000 updates + 30000 deletes in %s (%.0f rows/s)",
		want, insEl.Round(time.Millisecond), want/insEl.Seconds(), written.Round(time.Millisecond), updEl.Round(time.Millisecond), 90000/updEl.Seconds())
}
