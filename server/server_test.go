package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/sqlite"
)

// testEngine is a test-only redis engine; no agent runs here: the test
// moves jobs through the store where an agent would.
type testEngine struct{}

func (testEngine) Kind() ferry.EngineKind       { return ferry.KindRedis }
func (testEngine) Check(*ferry.Migration) error { return nil }
func (testEngine) RunStep(context.Context, *ferry.Migration, ferry.StepName, ferry.StepRuntime) error {
	return nil
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testMetricsToken = "metrics-token-for-tests"

type env struct {
	srv      *Server
	ts       *httptest.Server
	svc      *ferry.Service
	db       *sqlite.DB
	logs     *syncBuffer
	proj     *ferry.Project
	pub      string
	priv     string
	released chan struct{}
}

func setup(t *testing.T, limits ...httpauth.Limits) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := ferry.NewRegistry()
	reg.Register(testEngine{})
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := ferry.NewService(db, reg, logger)
	e := &env{svc: svc, db: db, logs: logs, released: make(chan struct{})}
	var lim httpauth.Limits
	if len(limits) > 0 {
		lim = limits[0]
	}
	srv, err := New(Config{Service: svc, Logger: logger, Limits: lim, MetricsToken: testMetricsToken, Mount: map[string]http.Handler{
		"GET /test/panic": http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom: secret internals") }),
		"GET /test/slow": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "slow done")
		}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(e.ts.Close)
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "default")
	if err != nil {
		t.Fatal(err)
	}
	if e.proj, err = svc.CreateProject(sys, org.ID, "default"); err != nil {
		t.Fatal(err)
	}
	k, priv, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "")
	if err != nil {
		t.Fatal(err)
	}
	e.pub, e.priv = k.PublicKey, priv
	return e
}

func (e *env) get(t *testing.T, path string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.ts.URL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func TestHealthz(t *testing.T) {
	e := setup(t)
	st, hdr, body := e.get(t, "/healthz", nil)
	if st != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("healthz %d %s", st, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	if m["status"] != "ok" || m["store"] != "up" || m["version"] != ferry.Version || len(m) != 3 {
		t.Errorf("healthz %v", m)
	}
	// With the store gone, the check fails.
	e.db.Close()
	st, _, body = e.get(t, "/healthz", nil)
	if st != 503 || !strings.Contains(body, `"status":"unavailable"`) {
		t.Errorf("healthz with a closed store: %d %s", st, body)
	}
}

func TestPanicRecovery(t *testing.T) {
	e := setup(t)
	st, hdr, body := e.get(t, "/test/panic", nil)
	if st != 500 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("panic answered %d %s", st, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	errObj, _ := m["error"].(map[string]any)
	if len(m) != 1 || len(errObj) != 2 || errObj["code"] != "internal" || errObj["message"] != "Internal error." {
		t.Errorf("panic body %s", body)
	}
	if strings.Contains(body, "boom") {
		t.Errorf("the panic value leaked to the client")
	}
	if !strings.Contains(e.logs.String(), "boom: secret internals") {
		t.Errorf("the panic was not logged")
	}
	// The server still serves.
	if st, _, _ := e.get(t, "/healthz", nil); st != 200 {
		t.Errorf("after panic: %d", st)
	}
}

func TestRequestLogNeverHasCredentials(t *testing.T) {
	e := setup(t)
	tok, _, err := e.svc.IssueToken(context.Background(), e.pub, e.priv)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/projects?token=querysecret", strings.NewReader(`{"name":"body-secret-name"}`))
	req.SetBasicAuth(e.pub, e.priv)
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("create project %d", res.StatusCode)
	}
	logs := e.logs.String()
	var line map[string]any
	for l := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(l, `"msg":"http request"`) && strings.Contains(l, "/api/v1/projects") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil {
		t.Fatalf("no request log line in %s", logs)
	}
	if line["method"] != "POST" || line["path"] != "/api/v1/projects" || line["status"] != 201.0 || line["dialect"] != "native" {
		t.Errorf("log line %v", line)
	}
	for _, secret := range []string{e.priv, tok, "querysecret", "body-secret-name", "Basic ", "Authorization", "X-Auth-Token"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
}

func TestConsoleAndRouting(t *testing.T) {
	e := setup(t)
	st, hdr, body := e.get(t, "/", nil)
	if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(body, "<title>ferry console</title>") ||
		!strings.Contains(body, "/api/v1/projects") {
		t.Errorf("console %d %q", st, hdr.Get("Content-Type"))
	}
	if st, _, _ := e.get(t, "/nope", nil); st != 404 {
		t.Errorf("/nope %d", st)
	}
	// Each dialect answers its own paths (here: 401 without credentials,
	// or the dialect's own 400 for a malformed DCS project id).
	for path, want := range map[string]int{
		"/api/v1/projects":                          401,
		"/api/atlas/v2/groups":                      401,
		"/api/omsp/v2/migrations":                   401,
		"/v2/" + ferry.NewID() + "/migration-tasks": 401,
	} {
		if st, hdr, body := e.get(t, path, nil); st != want || !strings.Contains(hdr.Get("Content-Type"), "json") {
			t.Errorf("%s: %d %q %s", path, st, hdr.Get("Content-Type"), body)
		}
	}
}

// gather returns the metric families of the server's registry by name.
func gather(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mf := fams[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsFromTheStore(t *testing.T) {
	e := setup(t)
	ctx := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	newJob := func(name string, start bool) *ferry.Migration {
		m := &ferry.Migration{ProjectID: e.proj.ID, Name: name, Engine: ferry.KindRedis,
			Source: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"10.0.0.1:6379"}, Password: "pw-src"},
			Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"10.0.0.2:6379"}},
			Modes:  ferry.Modes{Full: true, Incremental: true}}
		if err := e.svc.CreateMigration(ctx, m, start); err != nil {
			t.Fatal(err)
		}
		return m
	}
	running := newJob("orders", true)
	newJob("users", true)
	newJob("later", false)
	deadline := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if _, err := e.db.UpdateMigration(ctx, running.ID, func(m *ferry.Migration) error {
		for i := range m.Steps {
			switch m.Steps[i].Name {
			case ferry.StepPrecheck:
				m.Steps[i].State, m.Steps[i].Progress = ferry.StepDone, 100
			case ferry.StepFull:
				m.Steps[i].State, m.Steps[i].Progress = ferry.StepDone, 100
				m.Steps[i].Counters = ferry.Counters{Done: 5000, Total: 5000, Bytes: 1 << 20, Unit: "keys"}
			case ferry.StepIncremental:
				m.Steps[i].State, m.Steps[i].Progress = ferry.StepRunning, 0
				m.Steps[i].Counters = ferry.Counters{Ops: 321, RatePerSec: 12.5, Unit: "keys"}
			}
		}
		m.CurrentStep = ferry.StepIncremental
		lag := int64(3)
		m.LagSeconds, m.ReadyForCutover, m.CutoverDeadline = &lag, true, &deadline
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.UpsertAgent(ctx, &ferry.AgentInfo{ID: "a1", Hostname: "h1", Version: "v", StartedAt: deadline, LastSeen: deadline}); err != nil {
		t.Fatal(err)
	}
	// Some API traffic for the HTTP metrics.
	for range 3 {
		if st, _, _ := e.get(t, "/api/v1/projects", map[string]string{"Authorization": "Basic " + basic(e.pub, e.priv)}); st != 200 {
			t.Fatalf("projects %d", st)
		}
	}
	e.get(t, "/api/v1/projects", nil) // 401

	fams := gather(t, e.srv)
	job := map[string]string{"migration": running.ID, "name": "orders", "engine": "redis", "project": e.proj.ID}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range job {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ferry_store_up", nil, 1},
		{"ferry_build_info", map[string]string{"version": ferry.Version}, 1},
		{"ferry_migrations", map[string]string{"engine": "redis", "state": "running"}, 2},
		{"ferry_migrations", map[string]string{"engine": "redis", "state": "created"}, 1},
		{"ferry_migrations", map[string]string{"engine": "mysql", "state": "running"}, 0},
		{"ferry_migration_step_progress_percent", with(map[string]string{"step": "full"}), 100},
		{"ferry_migration_step_progress_percent", with(map[string]string{"step": "incremental"}), 0},
		{"ferry_migration_step_running", with(map[string]string{"step": "incremental"}), 1},
		{"ferry_migration_step_units_done_total", with(map[string]string{"step": "full", "unit": "keys"}), 5000},
		{"ferry_migration_step_units", with(map[string]string{"step": "full", "unit": "keys"}), 5000},
		{"ferry_migration_step_bytes_total", with(map[string]string{"step": "full"}), 1 << 20},
		{"ferry_migration_step_ops_total", with(map[string]string{"step": "incremental"}), 321},
		{"ferry_migration_step_rate_per_second", with(map[string]string{"step": "incremental"}), 12.5},
		{"ferry_migration_lag_seconds", job, 3},
		{"ferry_migration_ready_for_cutover", job, 1},
		{"ferry_migration_cutover_deadline_timestamp_seconds", job, float64(deadline.Unix())},
		{"ferry_agents", nil, 1},
		{"ferry_agent_last_seen_timestamp_seconds", map[string]string{"agent": "a1", "hostname": "h1"}, float64(deadline.Unix())},
		{"ferry_pipeline_runs", map[string]string{"state": "PENDING"}, 0},
		{"ferry_http_requests_total", map[string]string{"dialect": "native", "route": "GET /api/v1/projects", "status": "200"}, 3},
		{"ferry_http_requests_total", map[string]string{"dialect": "native", "route": "GET /api/v1/projects", "status": "401"}, 1},
		{"ferry_http_request_duration_seconds", map[string]string{"dialect": "native", "route": "GET /api/v1/projects"}, 4},
	}
	for _, c := range checks {
		got, ok := value(t, fams, c.name, c.labels)
		if !ok {
			t.Errorf("%s%v: no sample", c.name, c.labels)
		} else if got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// A job with no lag has no lag series.
	if _, ok := value(t, fams, "ferry_migration_lag_seconds", map[string]string{"name": "users"}); ok {
		t.Errorf("lag series for a job without lag")
	}
	// The text exposition carries the same values.
	st, _, body := e.get(t, "/metrics", map[string]string{"Authorization": "Bearer " + testMetricsToken})
	if st != 200 {
		t.Fatalf("/metrics %d", st)
	}
	for _, want := range []string{
		`ferry_migrations{engine="redis",state="running"} 2`,
		`ferry_migration_lag_seconds{engine="redis",migration="` + running.ID + `",name="orders",project="` + e.proj.ID + `"} 3`,
		"# TYPE ferry_http_request_duration_seconds histogram",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "pw-src") {
		t.Errorf("a password reached /metrics")
	}
	// Progress changes are seen on the next scrape: metrics are not cached.
	if _, err := e.db.UpdateMigration(ctx, running.ID, func(m *ferry.Migration) error {
		lag := int64(9)
		m.LagSeconds = &lag
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := value(t, gather(t, e.srv), "ferry_migration_lag_seconds", job); got != 9 {
		t.Errorf("lag after update %v", got)
	}
	// A broken store reads as ferry_store_up 0, not as a failed scrape.
	e.db.Close()
	if got, ok := value(t, gather(t, e.srv), "ferry_store_up", nil); !ok || got != 0 {
		t.Errorf("ferry_store_up with a closed store = %v %v", got, ok)
	}
}

func basic(u, p string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(u, p)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func TestGracefulShutdown(t *testing.T) {
	e := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	// Wait until it serves.
	for i := 0; ; i++ {
		res, err := http.Get(url + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		res, err := http.Get(url + "/test/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		slow <- result{string(b), err}
	}()
	time.Sleep(100 * time.Millisecond) // the slow request is in flight
	cancel()
	r := <-slow
	if r.err != nil || r.body != "slow done" {
		t.Errorf("in-flight request: %q %v", r.body, r.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Errorf("still serving after shutdown")
	}
}
