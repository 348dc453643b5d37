package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
)

// fakeRT is a StepRuntime that keeps what a step reports.
type fakeRT struct {
	mu      sync.Mutex
	log     lockedBuf
	cp      json.RawMessage
	saves   int
	applied time.Time
	msg     string
}

func (r *fakeRT) Checkpoint() json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cp
}
func (r *fakeRT) Progress(ferry.Counters, float64) {}
func (r *fakeRT) Lag(_ time.Duration, at time.Time) {
	r.mu.Lock()
	r.applied = at
	r.mu.Unlock()
}
func (r *fakeRT) Message(msg string) {
	r.mu.Lock()
	r.msg = msg
	r.mu.Unlock()
}
func (r *fakeRT) Save(_ context.Context, cp json.RawMessage) error {
	r.mu.Lock()
	r.cp, r.saves = append(json.RawMessage(nil), cp...), r.saves+1
	r.mu.Unlock()
	return nil
}
func (r *fakeRT) Cutover() <-chan struct{} { return nil }
func (r *fakeRT) Logger() *slog.Logger     { return slog.New(slog.NewTextHandler(&r.log, nil)) }

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
func (r *fakeRT) AgentID() string { return "test" }

func (r *fakeRT) incr(t *testing.T) *incrCheckpoint {
	t.Helper()
	cp, err := decodeJSON[incrCheckpoint](r.Checkpoint())
	if err != nil || cp == nil {
		t.Fatalf("checkpoint %s: %v", r.Checkpoint(), err)
	}
	return cp
}

func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%.200s: %v", s, err)
		}
	}
}

func query1(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// TestLoopGuard runs each direction over a binlog that holds the other
// direction's own writes (transactions with their leading marker, tagged
// DDL) interleaved with the applications' writes: the reader skips exactly
// ferry's writes, applies the rest, and counts what it skipped.
func TestLoopGuard(t *testing.T) {
	srcS := testharness.StartMariaDBServer(t, testharness.MariaDBOptions{ServerID: 11})
	dstS := testharness.StartMariaDBServer(t, testharness.MariaDBOptions{ServerID: 12})
	ctx := context.Background()
	m := &ferry.Migration{ID: "0123456789abcdef01234567", Engine: ferry.KindMySQL,
		Source: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{srcS.Addr}, Username: "root"},
		Target: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{dstS.Addr}, Username: "root"},
		Modes:  ferry.Modes{Incremental: true, ReverseIncremental: true}}
	m.InitSteps()
	src, err := openDB(&m.Source, true, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := openDB(&m.Target, true, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	// The applications' own connections (ferry's are recognised by their
	// connection id).
	app, err := openDB(&m.Target, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	schema := []string{"CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT NOT NULL)", "CREATE TABLE app.nk (x INT)", "CREATE TABLE app.gone (id INT PRIMARY KEY)"}
	mustExec(t, src, schema...)
	mustExec(t, dst, schema...)
	mustExec(t, src, "INSERT INTO app.t VALUES (1, 0)")
	mustExec(t, dst, "INSERT INTO app.t VALUES (1, 0)")
	if err := ensureMeta(ctx, dst); err != nil {
		t.Fatal(err)
	}
	srv, err := detect(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	p0, err := binlogPos(ctx, dst, srv, "target")
	if err != nil {
		t.Fatal(err)
	}

	// On the target: the forward sync's own writes (2 transactions and 2
	// DDL), between the applications' writes.
	fwd := newApplier(dst, markerID(m, false), false, 100)
	fwd.guard = true
	tb := &table{DB: "app", Name: "t", TDB: "app", TName: "t", Cols: []column{{Name: "id", DataType: "int"}, {Name: "v", DataType: "int"}}, Key: []int{0}}
	nk := &table{DB: "app", Name: "nk", TDB: "app", TName: "nk", Cols: []column{{Name: "x", DataType: "int"}}}
	forward := func(id int32) {
		t.Helper()
		if err := fwd.begin(ctx); err != nil {
			t.Fatal(err)
		}
		if err := fwd.insert(ctx, tb, []any{id, int32(-1)}); err != nil {
			t.Fatal(err)
		}
		if err := fwd.insert(ctx, nk, []any{int32(-1)}); err != nil {
			t.Fatal(err)
		}
		if err := fwd.commit(ctx, pos{File: "binlog.000001", Pos: uint32(id)}, time.Now().Unix(), 0); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, app, "INSERT INTO app.t VALUES (2, 0)")
	forward(100)
	mustExec(t, app, "UPDATE app.t SET v = v + 1 WHERE id = 1", "INSERT INTO app.nk VALUES (7)")
	forward(101)
	// DDL of the source applied by "forward" on the target.
	conn, err := dst.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, "ALTER TABLE app.t ADD INDEX ix_v (v)")
	if err := execDDL(ctx, conn, markerID(m, false), true, "ALTER TABLE app.t ADD INDEX ix_v (v)"); err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, "DROP TABLE app.gone")
	if err := execDDL(ctx, conn, markerID(m, false), true, "DROP TABLE app.gone"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	mustExec(t, app, "BEGIN", "UPDATE app.t SET v = v + 1 WHERE id = 1", "INSERT INTO app.t VALUES (3, 3)", "DELETE FROM app.t WHERE id = 2", "COMMIT")
	// A DDL of the applications comes back.
	mustExec(t, app, "ALTER TABLE app.nk ADD COLUMN y INT NULL", "INSERT INTO app.nk VALUES (8, 8)")
	var binlog strings.Builder
	rows, err := dst.Query("SHOW BINLOG EVENTS IN '" + p0.File + "'")
	if err == nil {
		for rows.Next() {
			var a, b, c, d, e any
			var info sql.NullString
			_ = rows.Scan(&a, &b, &c, &d, &e, &info)
			if strings.Contains(info.String, "ferry:") || strings.Contains(info.String, "DROP") {
				binlog.WriteString(info.String + "\n")
			}
		}
		rows.Close()
	}
	// The server rewrites DROP TABLE without the tag: the announcing
	// marker's ddl_thread covers it.
	if n := strings.Count(binlog.String(), "/* ferry:"+m.ID+" */"); n != 1 || !strings.Contains(binlog.String(), "generated by server") {
		t.Logf("the target's binlog keeps %d tagged DDL:\n%s", n, binlog.String())
	}

	// Reverse: from p0, what the applications wrote reaches the source,
	// ferry's forward writes do not.
	m.Step(ferry.StepCutover).Checkpoint, _ = json.Marshal(cutoverCheckpoint{TargetPos: &p0})
	srcSrv, _ := detect(ctx, src)
	s0, err := binlogPos(ctx, src, srcSrv, "source")
	if err != nil {
		t.Fatal(err)
	}
	e := New(nil)
	rt := &fakeRT{}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.reverse(rctx, m, rt) }()
	want := "1:2|3:3"
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := query1(t, src, "SELECT GROUP_CONCAT(CONCAT_WS(':', id, v) ORDER BY id SEPARATOR '|') FROM app.t")
		cols := query1(t, src, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'nk'")
		if got == want && cols == "2" && query1(t, src, "SELECT COUNT(*) FROM app.nk") == "2" {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("reverse ended: %v (source app.t %s)", err, got)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("source app.t = %q, want %q; app.nk has %s columns", got, want, cols)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let the last position commit
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("reverse returned %v, want context.Canceled on release", err)
	}
	if got := query1(t, src, "SELECT GROUP_CONCAT(x ORDER BY x) FROM app.nk"); got != "7,8" {
		t.Fatalf("source app.nk = %s: ferry's forward rows came back", got)
	}
	// Restarted at once, the step finds the server still holding its
	// previous binlog connection (MariaDB: error 4052) and waits for it.
	rctx, cancel = context.WithCancel(ctx)
	go func() { done <- e.reverse(rctx, m, rt) }()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("restarted reverse returned %v, want context.Canceled", err)
	}
	rcp := rt.incr(t)
	if rcp.Resumes != 1 {
		t.Fatalf("restarted reverse: %s", rt.Checkpoint())
	}
	if strings.Contains(rt.log.String(), "previous binlog connection") {
		t.Log("the restarted reverse step waited for the server to drop its previous binlog connection")
	}
	// 2 forward transactions, 2 DDL and the 2 marker transactions that
	// announced them.
	if rcp.Guarded != 6 {
		t.Fatalf("reverse guarded %d, want 6 (checkpoint %s)", rcp.Guarded, rt.Checkpoint())
	}
	// The reverse sync's transactions bump its own row or its workers'.
	seq := query1(t, src, "SELECT SUM(txn_seq) FROM ferry_meta.checkpoint WHERE job_id = '"+markerID(m, true)+"' OR job_id LIKE '"+markerID(m, true)+"#%'")
	if seq == "" || seq == "0" {
		t.Fatalf("source marker txn_seq = %q", seq)
	}
	t.Logf("reverse: %d changes in %d transactions, %d DDL applied; %d of ferry's own skipped; last applied at %s", rcp.Ops, rcp.Txns, rcp.DDLs, rcp.Guarded, rt.applied.Format(time.RFC3339))

	// Forward, symmetric: from s0 the source's binlog holds only the reverse
	// sync's writes (transactions with their "/reverse" marker and tagged
	// DDL): the forward reader skips them all and writes nothing but its
	// marker on the target.
	before := query1(t, dst, "SELECT GROUP_CONCAT(CONCAT_WS(':', id, v) ORDER BY id SEPARATOR '|') FROM app.t")
	nkBefore := query1(t, dst, "SELECT COUNT(*) FROM app.nk")
	fcp, _ := json.Marshal(incrCheckpoint{Pos: s0, EventTime: time.Now().Unix()})
	frt := &fakeRT{cp: fcp}
	fctx, fcancel := context.WithCancel(ctx)
	fdone := make(chan error, 1)
	go func() { fdone <- e.incremental(fctx, m, frt) }()
	s1, _ := binlogPos(ctx, src, srcSrv, "source")
	deadline = time.Now().Add(30 * time.Second)
	for {
		cp := frt.incr(t)
		if cp.Pos.compare(s1) >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forward did not reach %s: %s", s1, frt.Checkpoint())
		}
		time.Sleep(50 * time.Millisecond)
	}
	fcancel()
	if err := <-fdone; !errors.Is(err, context.Canceled) {
		t.Fatalf("forward returned %v", err)
	}
	fc := frt.incr(t)
	after := query1(t, dst, "SELECT GROUP_CONCAT(CONCAT_WS(':', id, v) ORDER BY id SEPARATOR '|') FROM app.t")
	if after != before || query1(t, dst, "SELECT COUNT(*) FROM app.nk") != nkBefore || fc.Ops != 0 || fc.DDLs != 0 {
		t.Fatalf("the reverse sync's writes went forward again: app.t %s -> %s, ops %d, ddl %d", before, after, fc.Ops, fc.DDLs)
	}
	// Every transaction the reverse sync wrote bumped txn_seq once.
	if want := seq + "+" + fmt.Sprint(rcp.DDLs); fmt.Sprintf("%d+%d", fc.Guarded-rcp.DDLs, rcp.DDLs) != want {
		t.Fatalf("forward guarded %d, want the reverse sync's %s transactions + %d DDL", fc.Guarded, seq, rcp.DDLs)
	}
	t.Logf("forward over the reverse sync's writes: %d skipped, 0 applied", fc.Guarded)
}
