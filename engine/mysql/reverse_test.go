package mysql_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

// binlogAt returns a server's binlog file and position.
func binlogAt(t *testing.T, db *sql.DB) (string, int64) {
	t.Helper()
	var file string
	var pos int64
	var doDB, ignoreDB sql.NullString
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		t.Fatal(err)
	}
	return file, pos
}

// rowEvents counts the row events a server logged since file:pos.
func rowEvents(t *testing.T, db *sql.DB, file string, pos int64) int {
	t.Helper()
	rows, err := db.Query(fmt.Sprintf("SHOW BINLOG EVENTS IN '%s' FROM %d", file, pos))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name, typ string
		var p, srvID, end int64
		var info sql.NullString
		if err := rows.Scan(&name, &p, &typ, &srvID, &end, &info); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(typ, "_rows_v1") || strings.HasSuffix(typ, "_rows_v2") { // not Annotate_rows
			n++
		}
	}
	return n
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

func queryString(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// TestReverseIncremental: a project with every step, created and watched
// through the OMS dialect. After cutover (and verification) the changes
// written to the target flow back to the source (inserts, updates, deletes,
// a multi-statement transaction, a key-less table, a renamed database, a
// DDL, a counter bumped five times, applied exactly five times); the
// source's own writes no longer go to the target, and nothing echoes (no
// row event on the target after the reverse sync applied, none on the
// source but the test's own). OMS's reverseIncrSyncCheckpoint advances;
// release through OMS ends the job RELEASED with both sides equal by
// mysqldump. Then on-demand verification (verify-only jobs): 0 differences
// and nothing written; after a planted difference the job FAILS with the
// numbers.
func TestReverseIncremental(t *testing.T) {
	e := newEnv(t)
	seed(t, e.srcDB, 5000)
	proj, call := newOMS(t, e)
	created := call("POST", "/api/omsp/v2/migrations", map[string]any{
		"name": "shop-and-back", "type": "MIGRATION",
		"source":                map[string]any{"type": "MARIADB", "host": "127.0.0.1", "port": e.src.Port, "userName": "root"},
		"sink":                  map[string]any{"type": "MARIADB", "host": "127.0.0.1", "port": e.dst.Port, "userName": "root"},
		"enableStructMigration": true, "enableFullMigration": true, "enableIncrSync": true, "enableFullVerify": true, "enableReverseIncrSync": true,
		"transferMapping": map[string]any{"mode": "SPECIFIC", "databases": []any{map[string]any{"name": "shop"}, map[string]any{"name": "extra", "mappedName": "extra2"}}},
	})
	id, _ := created["data"].(string)
	progress := func() map[string]any {
		return call("GET", "/api/omsp/v2/migrations/"+id+"/progress", nil)["data"].(map[string]any)
	}
	ag := e.agent("agent-1")
	start := time.Now()
	call("POST", "/api/omsp/v2/migrations/"+id+"/start", nil)
	w := startWriter(t, e.srcDB, 5)
	m := e.wait(id, "ready for cutover", 90*time.Second, func(m *ferry.Migration) bool {
		return m.ReadyForCutover && m.Step(ferry.StepIncremental).Counters.Ops > 20
	})
	w.halt(t)
	if _, err := e.svc.CutoverMigration(e.ctx, proj.ID, id); err != nil {
		t.Fatal(err)
	}
	m = e.wait(id, "reverse sync running", 90*time.Second, func(m *ferry.Migration) bool {
		s := m.Step(ferry.StepReverseIncremental)
		return m.CurrentStep == ferry.StepReverseIncremental && s.State == ferry.StepRunning && len(s.Checkpoint) > 0
	})
	cutAt := time.Now()
	if v := m.Step(ferry.StepVerify); v.State != ferry.StepDone || v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 {
		t.Fatalf("verify after cutover: %+v %s", v.Counters, v.Message)
	}
	if c := m.Step(ferry.StepCutover); !strings.Contains(c.Message, "flow back to the source") || checkpointOf(t, c)["targetPos"] == nil {
		t.Fatalf("cutover: %s %s", c.Message, c.Checkpoint)
	}
	if p := progress(); p["status"] != "RUNNING" || p["currentStep"] != "REVERSE_INCR_SYNC" || p["enableReverseIncrSync"] != true {
		t.Fatalf("OMS progress in reverse sync: %v", p)
	}
	steps := call("GET", "/api/omsp/v2/migrations/"+id+"/steps", nil)
	if b, _ := json.Marshal(steps["data"]); !strings.Contains(string(b), `"REVERSE_INCR_SYNC"`) || !strings.Contains(string(b), `"MONITORING"`) {
		t.Fatalf("OMS steps: %s", b)
	}

	// The applications now write to the target.
	k1 := queryString(t, e.dstDB, "SELECT val FROM shop.ukey WHERE code = 'k1'")
	wroteAt := time.Now()
	exec1(t, e.dstDB,
		"INSERT INTO shop.big (v, n) VALUES ('after cutover 1 🔁', -1), ('after cutover 2', -2)",
		"UPDATE shop.big SET v = CONCAT(v, ' (target)') WHERE id <= 5",
		"DELETE FROM shop.big WHERE id BETWEEN 10 AND 20",
		"BEGIN; INSERT INTO shop.composite VALUES ('zz', 1, 1, 1, 'txn'); UPDATE shop.types SET vc = 'target 🎯', dbl = -0.5, ts = '2030-01-02 03:04:05.678' WHERE id = 1; "+
			"DELETE FROM shop.composite WHERE region = 'eu' AND id < 3; INSERT INTO shop.nokey VALUES (42, 'rev', NULL), (42, 'rev', NULL); DELETE FROM shop.nokey WHERE x = 42 LIMIT 1; COMMIT",
		"INSERT INTO extra2.items VALUES (3, 'three')",
		"ALTER TABLE shop.big ADD COLUMN rev INT NULL",
		"UPDATE shop.big SET rev = id WHERE id <= 3")
	for i := 0; i < 5; i++ {
		exec1(t, e.dstDB, "UPDATE shop.ukey SET val = val + 1 WHERE code = 'k1'")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if dump(t, e.src, "shop") == dump(t, e.dst, "shop") &&
			dump(t, e.src, "extra", "--no-create-info") == dump(t, e.dst, "extra2", "--no-create-info") {
			break
		}
		if time.Now().After(deadline) {
			m, _ := e.store.GetMigration(e.ctx, id)
			b, _ := json.MarshalIndent(m.Step(ferry.StepReverseIncremental), "", " ")
			compareDumps(t, dump(t, e.src, "shop"), dump(t, e.dst, "shop"))
			t.Fatalf("the target's changes did not reach the source; reverse step %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	caughtUp := time.Since(wroteAt)
	want := atoi(k1)
	if got := queryString(t, e.srcDB, "SELECT val FROM shop.ukey WHERE code = 'k1'"); got != fmt.Sprint(want+5) {
		t.Fatalf("counter on the source = %s, want %d (5 increments applied exactly once)", got, want+5)
	}

	// Stop (SUSPEND) and resume through OMS while the target takes inserts
	// into a key-less table (applied as a multiset: a change applied twice
	// would show as a row too many): once at once (the agent's run goes on:
	// it must not be started a second time next to itself), once after the
	// agent stopped (the reverse sync resumes from its checkpoint, or from
	// the source's marker when that is ahead).
	for round, waitStop := range []bool{false, true} {
		nk0 := atoi(queryString(t, e.srcDB, "SELECT COUNT(*) FROM shop.nokey"))
		ins := make(chan error, 1)
		go func() {
			for i := 0; i < 300; i++ {
				if _, err := e.dstDB.Exec("INSERT INTO shop.nokey VALUES (?, 'resume', NULL)", i); err != nil {
					ins <- err
					return
				}
			}
			ins <- nil
		}()
		time.Sleep(30 * time.Millisecond)
		call("POST", "/api/omsp/v2/migrations/"+id+"/stop", nil)
		e.wait(id, "paused", 30*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StatePaused && m.Lease == nil })
		if p := progress(); p["status"] != "SUSPEND" {
			t.Fatalf("stopped: %v", p)
		}
		for deadline := time.Now().Add(10 * time.Second); waitStop && len(ag.Running()) > 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the agent did not stop the paused job")
			}
		}
		call("POST", "/api/omsp/v2/migrations/"+id+"/resume", nil)
		if err := <-ins; err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint(nk0 + 300)
		deadline := time.Now().Add(30 * time.Second)
		for queryString(t, e.srcDB, "SELECT COUNT(*) FROM shop.nokey") != want || queryString(t, e.dstDB, "SELECT COUNT(*) FROM shop.nokey") != want {
			if time.Now().After(deadline) {
				m, _ := e.store.GetMigration(e.ctx, id)
				t.Fatalf("round %d after stop/resume: source has %s key-less rows, target %s, want %s (%s, reverse checkpoint %s)", round, queryString(t, e.srcDB, "SELECT COUNT(*) FROM shop.nokey"),
					queryString(t, e.dstDB, "SELECT COUNT(*) FROM shop.nokey"), want, m.State, m.Step(ferry.StepReverseIncremental).Checkpoint)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		if got := queryString(t, e.srcDB, "SELECT COUNT(*) FROM shop.nokey"); got != want {
			t.Fatalf("round %d: after stop/resume the source has %s key-less rows, want %s", round, got, want)
		}
		if n := len(ag.Running()); n != 1 {
			t.Fatalf("round %d: the agent runs %d jobs", round, n)
		}
	}
	compareDumps(t, dump(t, e.src, "shop"), dump(t, e.dst, "shop"))

	// No loop, and the forward sync has ended: a quiet second on both sides
	// logs no row event; a write on the source stays there.
	time.Sleep(700 * time.Millisecond) // the reverse sync's last marker commit
	tf, tp := binlogAt(t, e.dstDB)
	sf, sp := binlogAt(t, e.srcDB)
	exec1(t, e.srcDB, "INSERT INTO shop.ukey VALUES ('source only', 0)")
	time.Sleep(1500 * time.Millisecond)
	if n := rowEvents(t, e.dstDB, tf, tp); n != 0 {
		t.Fatalf("the target logged %d row events after the reverse sync caught up (an echo, or forward sync still running)", n)
	}
	if n := rowEvents(t, e.srcDB, sf, sp); n != 1 {
		t.Fatalf("the source logged %d row events, want only the test's own insert", n)
	}
	if got := queryString(t, e.dstDB, "SELECT COUNT(*) FROM shop.ukey WHERE code = 'source only'"); got != "0" {
		t.Fatal("a write on the source after cutover reached the target")
	}
	exec1(t, e.srcDB, "DELETE FROM shop.ukey WHERE code = 'source only'")

	// OMS: the reverse checkpoint has passed the target's writes.
	var rcp float64
	deadline = time.Now().Add(10 * time.Second)
	for {
		p := progress()
		rcp, _ = p["reverseIncrSyncCheckpoint"].(float64)
		if rcp >= float64(wroteAt.Unix()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reverseIncrSyncCheckpoint %v did not pass the target's writes at %d: %v", rcp, wroteAt.Unix(), p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m, _ = e.store.GetMigration(e.ctx, id)
	rs := m.Step(ferry.StepReverseIncremental)
	cp := checkpointOf(t, rs)
	// The cutover step's own writes on the target (the marker's removal, an
	// AUTO_INCREMENT DDL and the marker transaction announcing it) were
	// skipped by the loop guard.
	if g, _ := cp["guarded"].(float64); g < 3 || rs.Counters.Ops < 638 || cp["resumes"] == nil || m.LagSeconds == nil {
		t.Fatalf("reverse step: guarded %v, %+v, lag %v; checkpoint %s", cp["guarded"], rs.Counters, m.LagSeconds, rs.Checkpoint)
	}
	t.Logf("reverse sync: %s; %d changes, %d DDL, %v of ferry's own skipped, resumed %v times (%v from the source's marker); the source caught up %s after the target's writes; reverseIncrSyncCheckpoint %d",
		rs.Message, rs.Counters.Ops, int(cp["ddls"].(float64)), cp["guarded"], cp["resumes"], cp["fromMarker"], caughtUp.Round(time.Millisecond), int64(rcp))

	// Release through OMS: the reverse step stops, the job is RELEASED.
	call("POST", "/api/omsp/v2/migrations/"+id+"/release", nil)
	deadline = time.Now().Add(30 * time.Second)
	for p := progress(); p["status"] != "RELEASED"; p = progress() {
		if time.Now().After(deadline) {
			t.Fatalf("after release: %v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	m, _ = e.store.GetMigration(e.ctx, id)
	if m.State != ferry.StateReleased || m.ReleasedAt == nil || m.Error != "" {
		t.Fatalf("released job: %s %v %q", m.State, m.ReleasedAt, m.Error)
	}
	compareDumps(t, dump(t, e.src, "shop"), dump(t, e.dst, "shop"))
	compareDumps(t, dump(t, e.src, "extra", "--no-create-info"), dump(t, e.dst, "extra2", "--no-create-info"))
	t.Logf("migration with reverse sync: released %s after start (cut over at %s)", time.Since(start).Round(time.Millisecond), cutAt.Sub(start).Round(time.Millisecond))

	// On-demand verification: a verify-only job over the same endpoints
	// (the target holds rows: its precheck does not mind) runs precheck and
	// verify only, writes nothing, and finds 0 differences.
	tf, tp = binlogAt(t, e.dstDB)
	sf, sp = binlogAt(t, e.srcDB)
	v, err := e.svc.VerifyMigration(e.ctx, proj.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	v = e.wait(v.ID, "verification completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	var names []string
	for _, s := range v.Steps {
		names = append(names, string(s.Name))
	}
	vs := v.Step(ferry.StepVerify)
	if strings.Join(names, ",") != "precheck,verify" || vs.Counters.Missing+vs.Counters.Extra+vs.Counters.Different != 0 || vs.Counters.Done < 5000 {
		t.Fatalf("verify-only job: steps %v, verify %+v %s", names, vs.Counters, vs.Message)
	}
	if !strings.Contains(v.Step(ferry.StepPrecheck).Message, "writes nothing") {
		t.Errorf("verify-only precheck: %s", v.Step(ferry.StepPrecheck).Message)
	}
	if n := rowEvents(t, e.dstDB, tf, tp) + rowEvents(t, e.srcDB, sf, sp); n != 0 {
		t.Fatalf("a verify-only job wrote: %d row events", n)
	}
	if f, p := binlogAt(t, e.dstDB); f != tf || p != tp {
		t.Fatalf("a verify-only job wrote on the target: binlog %s:%d -> %s:%d", tf, tp, f, p)
	}
	t.Logf("verify-only job: %s", vs.Message)

	// A planted difference on the target: one row changed, one gone, one more.
	exec1(t, e.dstDB, "UPDATE shop.big SET v = 'planted' WHERE id = 30", "DELETE FROM shop.big WHERE id = 31", "INSERT INTO shop.big (v, n) VALUES ('not on the source', 7)")
	v, err = e.svc.VerifyMigration(e.ctx, proj.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	v = e.wait(v.ID, "verification failed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateFailed })
	vs = v.Step(ferry.StepVerify)
	if vs.State != ferry.StepFailed || vs.Counters.Missing != 1 || vs.Counters.Extra != 1 || vs.Counters.Different != 1 ||
		!strings.Contains(v.Error, "1 missing, 1 extra, 1 different") {
		t.Fatalf("verify-only job after a planted difference: %s %+v: %s", vs.State, vs.Counters, v.Error)
	}
	t.Logf("verify-only job with a planted difference: %s", v.Error)
}
