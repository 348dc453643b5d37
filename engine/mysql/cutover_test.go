package mysql_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/http/native"
)

// nativeAPI serves the native API of e's service and calls it as an
// organization owner.
type nativeAPI struct {
	t         *testing.T
	url       string
	pub, priv string
	base      string
}

func (e *env) native() *nativeAPI {
	e.t.Helper()
	k, priv, err := e.svc.CreateAPIKey(e.ctx, e.proj.OrgID, "", ferry.RoleOrgOwner, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(native.New(e.svc, httpauth.New(e.svc), logger(e.t)))
	e.t.Cleanup(srv.Close)
	return &nativeAPI{t: e.t, url: srv.URL, pub: k.PublicKey, priv: priv, base: "/api/v1/projects/" + e.proj.ID + "/migrations/"}
}

func (a *nativeAPI) call(method, path string) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+a.base+path, nil)
	req.SetBasicAuth(a.pub, a.priv)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		a.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return res.StatusCode, m
}

func reasonCodes(v map[string]any) []string {
	var out []string
	r, _ := v["readiness"].(map[string]any)
	rs, _ := r["reasons"].([]any)
	for _, x := range rs {
		out = append(out, x.(map[string]any)["code"].(string))
	}
	return out
}

// appWriter inserts rows into app.events as an application user without
// SUPER / READ_ONLY ADMIN, one autocommit INSERT after the other, and
// keeps the ids of the inserts the server acknowledged.
type appWriter struct {
	db       *sql.DB
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	acked    []int64
	refused  atomic.Int64 // error 1290: the server runs with read_only
	otherErr atomic.Value
}

func startAppWriter(t *testing.T, db *sql.DB) *appWriter {
	w := &appWriter{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			res, err := db.Exec("INSERT INTO app.events (seq, payload) VALUES (?, ?)", i, fmt.Sprintf("row %d %s", i, strings.Repeat("x", i%40)))
			if err != nil {
				var me *gomysql.MySQLError
				if errors.As(err, &me) && me.Number == 1290 {
					w.refused.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				w.otherErr.Store(err)
				return
			}
			id, _ := res.LastInsertId()
			w.mu.Lock()
			w.acked = append(w.acked, id)
			w.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() { w.halt() })
	return w
}

func (w *appWriter) halt() int {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// tableSum is an independent row count and checksum of app.events.
func tableSum(t *testing.T, db *sql.DB) (n int64, sum string) {
	t.Helper()
	if err := db.QueryRow("SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', id, seq, payload))), 0) FROM app.events").Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	return n, sum
}

// TestCutoverWriteBlock: with cutover_write_block=read_only, an
// application writing continuously through cutover loses no acknowledged
// row: the source is made read-only before its final position is read,
// the target equals the source (ferry's verification and an independent
// count and checksum), the evidence is in the native GET of the job, and
// release-source makes the source writable again. On the way, a paused job
// shows the PAUSED reason and a cutover on it answers the advice.
func TestCutoverWriteBlock(t *testing.T) {
	e := newEnv(t)
	exec1(t, e.srcDB,
		"CREATE DATABASE app",
		"CREATE TABLE app.events (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, seq INT NOT NULL, payload VARCHAR(100) NOT NULL)",
		"INSERT INTO app.events (seq, payload) SELECT seq, CONCAT('seed ', seq) FROM app.seq_1_to_2000",
		"CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app-pw'", "CREATE USER 'app'@'localhost' IDENTIFIED BY 'app-pw'",
		"GRANT SELECT, INSERT ON app.* TO 'app'@'127.0.0.1'", "GRANT SELECT, INSERT ON app.* TO 'app'@'localhost'")
	appDB, err := sql.Open("mysql", "app:app-pw@tcp("+e.src.Addr+")/app")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { appDB.Close() })
	api := e.native()

	m := e.create(ferry.Modes{Schema: true, Full: true, Incremental: true, Verify: true}, ferry.Options{
		Filters: ferry.Filters{IncludeDBs: []string{"app"}},
		Extra:   map[string]string{"cutover_write_block": "read_only"},
	})
	e.agent("agent-1")
	w := startAppWriter(t, appDB)
	e.wait(m.ID, "ready for cutover", 90*time.Second, func(m *ferry.Migration) bool {
		return m.ReadyForCutover && m.Step(ferry.StepIncremental).Counters.Ops > 100
	})
	if pre := e.mustGet(m.ID).Step(ferry.StepPrecheck); !strings.Contains(pre.Message, "read-only") {
		t.Errorf("precheck does not mention the write block: %s", pre.Message)
	}

	// A paused job: PAUSED in the readiness, and a cutover says to resume.
	if _, err := e.svc.PauseMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	_, v := api.call("GET", m.ID)
	if codes := reasonCodes(v); len(codes) == 0 || codes[0] != ferry.ReasonPaused || v["readiness"].(map[string]any)["ready"] != false {
		t.Fatalf("paused job's readiness: %v", v["readiness"])
	}
	st, v := api.call("POST", m.ID+"/cutover")
	errBody, _ := v["error"].(map[string]any)
	if st != 409 || errBody == nil || !strings.Contains(fmt.Sprint(errBody["advice"]), "resume it first") || !strings.Contains(fmt.Sprint(errBody["message"]), "PAUSED") {
		t.Fatalf("cutover of a paused job: %d %v", st, v)
	}
	if _, err := e.svc.ResumeMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	e.wait(m.ID, "ready again", 90*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	_, v = api.call("GET", m.ID)
	if r := v["readiness"].(map[string]any); r["ready"] != true || len(reasonCodes(v)) != 0 {
		t.Fatalf("ready job's readiness: %v", r)
	}

	// Cutover while the application writes.
	before := func() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) }()
	if st, v := api.call("POST", m.ID+"/cutover"); st != 200 {
		t.Fatalf("cutover: %d %v", st, v)
	}
	m = e.wait(m.ID, "completed", 120*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	// The source is still read-only for the application.
	if _, err := appDB.Exec("INSERT INTO app.events (seq, payload) VALUES (-1, 'after cutover')"); err == nil || !strings.Contains(err.Error(), "1290") {
		t.Fatalf("an application write after cutover: %v, want error 1290 (read-only)", err)
	}
	// The writer keeps writing into the block: its writes are refused.
	for deadline := time.Now().Add(10 * time.Second); w.refused.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	acked := w.halt()
	if err, _ := w.otherErr.Load().(error); err != nil {
		t.Fatalf("application writer: %v", err)
	}
	if w.refused.Load() == 0 {
		t.Errorf("no application write was refused after cutover")
	}
	srcN, srcSum := tableSum(t, e.srcDB)
	dstN, dstSum := tableSum(t, e.dstDB)
	if srcN != int64(2000+acked) || dstN != srcN || dstSum != srcSum {
		t.Fatalf("rows: %d acknowledged + 2000 seeded, source %d (sum %s), target %d (sum %s)", acked, srcN, srcSum, dstN, dstSum)
	}
	var missing int
	w.mu.Lock()
	for _, id := range w.acked {
		var x int
		if err := e.dstDB.QueryRow("SELECT 1 FROM app.events WHERE id = ?", id).Scan(&x); err != nil {
			missing++
		}
	}
	w.mu.Unlock()
	if missing > 0 {
		t.Fatalf("%d acknowledged rows missing on the target", missing)
	}
	vs := m.Step(ferry.StepVerify)
	if vs.State != ferry.StepDone || vs.Counters.Missing+vs.Counters.Extra+vs.Counters.Different != 0 || vs.Counters.Done != srcN {
		t.Fatalf("verify: %+v %s", vs.Counters, vs.Message)
	}

	// The evidence, in the native GET.
	_, v = api.call("GET", m.ID)
	c, _ := v["cutover"].(map[string]any)
	ver, _ := c["verification"].(map[string]any)
	if c == nil || c["sourceWriteBlock"] != "read_only" || c["sourceState"] != "read_only" || c["sourceBlockedAt"] == nil || c["requestedAt"] == nil ||
		!strings.Contains(fmt.Sprint(c["sourcePosition"]), "bin") || c["drainedPosition"] == nil || c["drainedAt"] == nil ||
		ver == nil || ver["state"] != "done" || ver["checked"] != float64(srcN) || ver["missing"] != float64(0) || ver["different"] != float64(0) ||
		!strings.Contains(fmt.Sprint(c["summary"]), "read-only") {
		t.Fatalf("cutover evidence: %v", c)
	}
	ev, _ := json.MarshalIndent(c, "", "  ")
	t.Logf("rows acknowledged during the run: %d (before cutover %d, during/after %d), refused by read_only: %d; source %d rows, target %d rows, checksum %s\ncutover evidence: %s",
		acked, before, acked-before, w.refused.Load(), srcN, dstN, srcSum, ev)

	// release-source lifts the block.
	if st, v := api.call("POST", m.ID+"/release-source"); st != 200 || v["cutover"].(map[string]any)["sourceState"] != "writable" || v["cutover"].(map[string]any)["sourceReleasedAt"] == nil {
		t.Fatalf("release-source: %d %v", st, v)
	}
	if _, err := appDB.Exec("INSERT INTO app.events (seq, payload) VALUES (-2, 'after release')"); err != nil {
		t.Fatalf("an application write after release-source: %v", err)
	}
	// Released once: a second call answers the same job.
	if st, _ := api.call("POST", m.ID+"/release-source"); st != 200 {
		t.Fatalf("second release-source: %d", st)
	}
}

func (e *env) mustGet(id string) *ferry.Migration {
	e.t.Helper()
	m, err := e.store.GetMigration(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// TestCutoverWithoutWriteBlock: by default cutover does not stop the
// source's writes, and the cutover record says so; release-source has
// nothing to lift.
func TestCutoverWithoutWriteBlock(t *testing.T) {
	e := newEnv(t)
	exec1(t, e.srcDB, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1),(2),(3)")
	m := e.create(ferry.Modes{Schema: true, Full: true, Incremental: true}, ferry.Options{Filters: ferry.Filters{IncludeDBs: []string{"app"}}})
	e.agent("agent-1")
	e.wait(m.ID, "ready for cutover", 90*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	if _, err := e.svc.CutoverMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.wait(m.ID, "completed", 90*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	c := m.Cutover
	if c == nil || c.SourceWriteBlock != ferry.WriteBlockNone || c.SourcePosition == "" || c.DrainedPosition == "" || c.SourceBlockedAt != nil ||
		!strings.Contains(c.Summary(time.Now()), "did not stop the source's writes") {
		t.Fatalf("cutover record: %+v", c)
	}
	exec1(t, e.srcDB, "INSERT INTO app.t VALUES (4)") // the source takes writes
	if _, err := e.svc.ReleaseSource(e.ctx, e.proj.ID, m.ID); ferry.ErrorCode(err) != ferry.ECONFLICT {
		t.Fatalf("release-source without a block: %v", err)
	}
}
