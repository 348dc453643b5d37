package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
)

// TestParallelApplyConflictingWrites runs the incremental step with 4
// apply workers while 4 application connections hammer a few hot rows of
// several tables in multi-table transactions: the same rows updated over
// and over, primary keys deleted and inserted again, keys changed (an
// integer key and a string key of a case-insensitive collation), a unique
// secondary key moved from row to row, and a key-less table. Midway the
// step is stopped and resumed (by GTID, from its low watermark and the
// target's markers). At the end the target holds exactly the source's rows.
func TestParallelApplyConflictingWrites(t *testing.T) {
	srcS := testharness.StartMariaDBServer(t, testharness.MariaDBOptions{ServerID: 21})
	dstS := testharness.StartMariaDBServer(t, testharness.MariaDBOptions{ServerID: 22})
	ctx := context.Background()
	m := &ferry.Migration{ID: "parallel0123456789abcdef", Engine: ferry.KindMySQL,
		Source: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{srcS.Addr}, Username: "root"},
		Target: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{dstS.Addr}, Username: "root"},
		Modes:  ferry.Modes{Incremental: true}}
	m.InitSteps()
	src, err := openDB(&m.Source, true, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := openDB(&m.Target, true, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	schema := []string{"CREATE DATABASE app",
		"CREATE TABLE app.a (id INT PRIMARY KEY, v INT NOT NULL, u INT NULL, UNIQUE KEY (u))",
		"CREATE TABLE app.b (id BIGINT PRIMARY KEY, n INT NOT NULL, note VARCHAR(40) NOT NULL)",
		"CREATE TABLE app.c (name VARCHAR(32) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT NOT NULL)",
		"CREATE TABLE app.nk (x INT, y INT)"}
	mustExec(t, src, schema...)
	mustExec(t, dst, schema...)
	var seedSQL []string
	for i := 1; i <= 20; i++ {
		seedSQL = append(seedSQL, fmt.Sprintf("INSERT INTO app.a VALUES (%d, 0, %d)", i, i), fmt.Sprintf("INSERT INTO app.b VALUES (%d, 0, '')", i),
			fmt.Sprintf("INSERT INTO app.c VALUES ('n%d', 0)", i))
	}
	mustExec(t, src, seedSQL...)
	mustExec(t, dst, seedSQL...)
	srv, err := detect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	p0, err := binlogPos(ctx, src, srv, "source")
	if err != nil {
		t.Fatal(err)
	}
	if p0.GTID == "" {
		t.Fatalf("the source reports no GTID position at %s", p0)
	}

	e := New(nil)
	e.ApplyWorkers, e.BatchRows = 4, 50
	// Spread the transactions over every worker (the default fills one
	// worker's queue first): the conflicts are between workers then.
	defer func(f int) { schedFill = f }(schedFill)
	schedFill = 1
	b, _ := json.Marshal(incrCheckpoint{Pos: p0, EventTime: time.Now().Unix()})
	rt := &fakeRT{cp: b}
	start := func() (context.CancelFunc, chan error) {
		c, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.incremental(c, m, rt) }()
		return cancel, done
	}
	cancel, done := start()

	// The applications.
	var stop atomic.Bool
	var txns, failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			for !stop.Load() {
				if err := appTxn(ctx, src, r, w); err != nil {
					failed.Add(1) // a deadlock between the applications: rolled back
					continue
				}
				txns.Add(1)
			}
		}(w)
	}
	time.Sleep(1500 * time.Millisecond)
	// Stop the step mid-stream and resume it.
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("incremental returned %v", err)
	}
	cp1 := rt.incr(t)
	cancel, done = start()
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	end, err := binlogPos(ctx, src, srv, "source")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for rt.incr(t).Pos.compare(end) < 0 {
		select {
		case err := <-done:
			t.Fatalf("incremental ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not reach %s: %s", end, rt.Checkpoint())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("incremental returned %v", err)
	}
	cp := rt.incr(t)
	for _, q := range []string{
		"SELECT id, v, COALESCE(u, -1) FROM app.a ORDER BY id",
		"SELECT id, n, note FROM app.b ORDER BY id",
		"SELECT name, v FROM app.c ORDER BY name",
		"SELECT x, y, COUNT(*) FROM app.nk GROUP BY x, y ORDER BY x, y",
	} {
		a, b := rowsOf(t, src, q), rowsOf(t, dst, q)
		if a != b {
			t.Fatalf("%s differs:\nsource %s\ntarget %s", q, a, b)
		}
	}
	if cp.Resumes != 2 || cp.Ops < 1000 || !strings.Contains(rt.log.String(), "by=GTID") {
		t.Fatalf("checkpoint %s; log:\n%s", rt.Checkpoint(), rt.log.String())
	}
	if cp.Pos.GTID == "" || cp1.Pos.GTID == "" {
		t.Fatalf("no GTID in the checkpoints: %s / %+v", rt.Checkpoint(), cp1.Pos)
	}
	mk, err := readMarker(ctx, dst, m.ID)
	if err != nil || mk.Pos.IsZero() {
		t.Fatalf("target marker %+v %v", mk, err)
	}
	var workerRows int
	if err := dst.QueryRow("SELECT COUNT(*) FROM ferry_meta.checkpoint WHERE job_id LIKE ?", m.ID+"#%").Scan(&workerRows); err != nil || workerRows < 2 {
		t.Fatalf("%d worker marker rows on the target (%v): the transactions were not spread over the workers", workerRows, err)
	}
	t.Logf("%d application transactions (%d rolled back by deadlocks); applied %d changes in %d transactions over %d workers; stopped at %s, resumed by GTID; final %s gtid %s",
		txns.Load(), failed.Load(), cp.Ops, cp.Txns, workerRows, cp1.Pos, cp.Pos, cp.Pos.GTID)
}

// appTxn is one application transaction over a few hot rows.
func appTxn(ctx context.Context, db *sql.DB, r *rand.Rand, w int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	id := 1 + r.Intn(20)
	stmts := []string{fmt.Sprintf("UPDATE app.a SET v = v + 1 WHERE id = %d", id),
		fmt.Sprintf("UPDATE app.b SET n = n + 1, note = '%d:%d' WHERE id = %d", w, r.Intn(1000), 1+r.Intn(20))}
	switch r.Intn(7) {
	case 0: // delete and insert the same key (sysbench's pattern)
		stmts = append(stmts, fmt.Sprintf("DELETE FROM app.b WHERE id = %d", id),
			fmt.Sprintf("INSERT INTO app.b VALUES (%d, %d, 'again')", id, r.Intn(100)))
	case 1: // move the unique value u to another row
		u := 1 + r.Intn(25)
		stmts = append(stmts, fmt.Sprintf("UPDATE app.a SET u = NULL WHERE u = %d", u),
			fmt.Sprintf("UPDATE app.a SET u = %d WHERE id = %d", u, id))
	case 2: // change an integer primary key back and forth
		stmts = append(stmts, fmt.Sprintf("UPDATE app.b SET id = IF(id > 1000, id - 1000, id + 1000) WHERE id IN (%d, %d)", id, id+1000))
	case 3: // change a case-insensitive string key (n5 <-> N5-x)
		stmts = append(stmts, fmt.Sprintf("UPDATE app.c SET name = IF(name = 'n%d', 'N%d-x', 'n%d'), v = v + 1 WHERE name IN ('n%d', 'n%d-x')", id, id, id, id, id))
	case 4: // the key-less table
		if r.Intn(2) == 0 {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO app.nk VALUES (%d, %d)", id%5, r.Intn(3)))
		} else {
			stmts = append(stmts, fmt.Sprintf("DELETE FROM app.nk WHERE x = %d LIMIT 1", id%5))
		}
	case 5: // several rows in one statement
		stmts = append(stmts, fmt.Sprintf("UPDATE app.a SET v = v + 10 WHERE id BETWEEN %d AND %d", id, id+4))
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func rowsOf(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var sb strings.Builder
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.Write(v)
		}
		sb.WriteByte('|')
	}
	return sb.String()
}
