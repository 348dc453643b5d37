package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/server"
	"github.com/ferrymigrate/ferry/sqlite"
)

// testEngine is a test-only redis engine; the test drives jobs through the
// store where an agent would.
type testEngine struct{}

func (testEngine) Kind() ferry.EngineKind       { return ferry.KindRedis }
func (testEngine) Check(*ferry.Migration) error { return nil }
func (testEngine) RunStep(context.Context, *ferry.Migration, ferry.StepName, ferry.StepRuntime) error {
	return nil
}

type testServer struct {
	url     string
	dataDir string
	db      *sqlite.DB
}

// startServer runs the HTTP service over <dataDir>/ferry.db, the store the
// admin commands open with --data-dir.
func startServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := ferry.NewRegistry()
	reg.Register(testEngine{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{Service: ferry.NewService(db, reg, log), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &testServer{url: ts.URL, dataDir: dir, db: db}
}

// ferryCmd runs the CLI in-process.
func ferryCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}

func TestCLIAgainstAServer(t *testing.T) {
	for _, k := range []string{"FERRY_SERVER", "FERRY_PUBLIC_KEY", "FERRY_PRIVATE_KEY", "FERRY_PROJECT", "FERRY_DATA_DIR", "FERRY_STORE", "FERRY_JSON"} {
		t.Setenv(k, "")
	}
	ts := startServer(t)
	dd := "--data-dir=" + ts.dataDir

	// Administration on the store.
	code, out, errOut := ferryCmd(t, "orgs", "list", dd, "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("orgs list: %d %q %s", code, out, errOut)
	}
	code, out, errOut = ferryCmd(t, "orgs", "create", "acme", dd, "--json")
	if code != 0 {
		t.Fatalf("orgs create: %d %s", code, errOut)
	}
	var org map[string]any
	mustJSON(t, out, &org)
	if org["name"] != "acme" || !ferry.ValidID(org["id"].(string)) {
		t.Fatalf("org %v", org)
	}
	code, out, errOut = ferryCmd(t, "keys", "create", "--role", "ORG_OWNER", dd, "--json")
	if code != 0 {
		t.Fatalf("keys create: %d %s", code, errOut)
	}
	var key map[string]any
	mustJSON(t, out, &key)
	pub, priv := key["publicKey"].(string), key["privateKey"].(string)
	if key["role"] != "ORG_OWNER" || key["orgId"] != org["id"] || pub == "" || len(priv) < 32 {
		t.Fatalf("key %v", key)
	}
	// Human output shows the pair once too.
	code, out, _ = ferryCmd(t, "keys", "create", "--role", "ORG_READ_ONLY", dd)
	if code != 0 || !strings.Contains(out, "public key:") || !strings.Contains(out, "private key:") {
		t.Fatalf("keys create (human): %d %s", code, out)
	}
	// Listing keys never shows a private key.
	code, out, _ = ferryCmd(t, "keys", "list", dd, "--json")
	if code != 0 || strings.Contains(out, priv) || strings.Contains(strings.ToLower(out), "private") || strings.Contains(out, "Hash") {
		t.Fatalf("keys list: %d %s", code, out)
	}
	code, _, errOut = ferryCmd(t, "keys", "create", "--role", "KING", dd)
	if code != 1 || !strings.Contains(errOut, "unknown role") {
		t.Errorf("bad role: %d %s", code, errOut)
	}

	// Client commands over the native API.
	auth := []string{"--server", ts.url, "--public-key", pub, "--private-key", priv}
	cmd := func(args ...string) (int, string, string) { return ferryCmd(t, append(args, auth...)...) }
	code, out, errOut = cmd("projects", "create", "alpha", "--json")
	if code != 0 {
		t.Fatalf("projects create: %d %s", code, errOut)
	}
	var proj map[string]any
	mustJSON(t, out, &proj)
	pid := proj["id"].(string)
	if proj["name"] != "alpha" || proj["orgId"] != org["id"] {
		t.Fatalf("project %v", proj)
	}
	code, out, _ = cmd("projects", "list", "--json")
	var plist map[string]any
	mustJSON(t, out, &plist)
	if code != 0 || plist["total"] != 1.0 || plist["items"].([]any)[0].(map[string]any)["id"] != pid {
		t.Fatalf("projects list: %d %s", code, out)
	}
	code, out, _ = cmd("projects", "list")
	if code != 0 || !strings.Contains(out, pid) || !strings.Contains(out, "alpha") || !strings.HasPrefix(out, "ID") {
		t.Errorf("projects list (table): %s", out)
	}
	code, out, _ = cmd("projects", "get", pid)
	if code != 0 || !strings.Contains(out, "alpha") {
		t.Errorf("projects get: %d %s", code, out)
	}

	// Endpoints: the password goes in, never comes out.
	code, out, errOut = cmd("endpoints", "create", "--project", pid, "--name", "src", "--kind", "redis", "--addr", "10.0.0.1:6379", "--password", "hunter2-pw", "--json")
	if code != 0 || strings.Contains(out, "hunter2-pw") || !strings.Contains(out, `"hasPassword": true`) {
		t.Fatalf("endpoints create: %d %s %s", code, out, errOut)
	}
	code, out, _ = cmd("endpoints", "get", "src", "--project", pid)
	if code != 0 || strings.Contains(out, "hunter2-pw") || !strings.Contains(out, "set") {
		t.Errorf("endpoints get: %d %s", code, out)
	}
	// Update sends only the flags given: the password stays.
	code, out, errOut = cmd("endpoints", "update", "src", "--project", pid, "--addr", "10.0.0.7:6390", "--json")
	if code != 0 || !strings.Contains(out, "10.0.0.7:6390") || !strings.Contains(out, `"hasPassword": true`) {
		t.Errorf("endpoints update: %d %s %s", code, out, errOut)
	}
	if code, _, errOut = cmd("endpoints", "update", "src", "--project", pid); code == 0 || !strings.Contains(errOut, "nothing to change") {
		t.Errorf("endpoints update without a change: %d %s", code, errOut)
	}
	code, out, errOut = cmd("projects", "rename", pid, "alpha-renamed")
	if code != 0 || !strings.Contains(out, "alpha-renamed") {
		t.Errorf("projects rename: %d %s %s", code, out, errOut)
	}

	// Migrations with the test engine; an engine that is not built fails clearly.
	code, _, errOut = cmd("migrations", "create", "--project", pid, "--source", "mysql://root@10.0.0.1:3306", "--target", "mysql://root@10.0.0.2:3306")
	if code != 1 || !strings.Contains(errOut, "ENGINE_NOT_AVAILABLE") || !strings.Contains(errOut, "not built") {
		t.Errorf("mysql migration: %d %s", code, errOut)
	}
	code, out, errOut = cmd("migrations", "create", "--project", pid, "--name", "orders", "--source", "src",
		"--target", "redis://:tgt-secret@10.0.0.2:6380/0", "--modes", "full,incremental", "--json")
	if code != 0 {
		t.Fatalf("migrations create: %d %s", code, errOut)
	}
	var mg map[string]any
	mustJSON(t, out, &mg)
	mid := mg["id"].(string)
	if mg["state"] != "running" || mg["engine"] != "redis" || mg["name"] != "orders" || strings.Contains(out, "tgt-secret") || strings.Contains(out, "hunter2-pw") {
		t.Fatalf("migration %s", out)
	}
	if tgt := mg["target"].(map[string]any); tgt["hasPassword"] != true || tgt["database"] != "0" {
		t.Errorf("target %v", tgt)
	}
	code, out, _ = cmd("migrations", "get", mid, "--project", pid, "--json")
	var got map[string]any
	mustJSON(t, out, &got)
	if code != 0 || got["id"] != mid || len(got["steps"].([]any)) != 4 {
		t.Errorf("migrations get: %d %s", code, out)
	}
	code, out, _ = cmd("migrations", "list", "--project", pid, "--json", "--state", "running")
	var mlist map[string]any
	mustJSON(t, out, &mlist)
	if code != 0 || mlist["total"] != 1.0 || mlist["items"].([]any)[0].(map[string]any)["id"] != mid {
		t.Errorf("migrations list: %d %s", code, out)
	}
	code, out, _ = cmd("migrations", "list", "--project", pid, "--json", "--state", "completed")
	mustJSON(t, out, &mlist)
	if code != 0 || mlist["total"] != 0.0 {
		t.Errorf("migrations list completed: %d %s", code, out)
	}
	code, out, _ = cmd("migrations", "get", mid, "--project", pid)
	if code != 0 || !strings.Contains(out, "orders") || !strings.Contains(out, "precheck") || !strings.Contains(out, "password set") {
		t.Errorf("migrations get (human): %s", out)
	}
	code, _, errOut = cmd("migrations", "cutover", mid, "--project", pid)
	if code != 1 || !strings.Contains(errOut, "CUTOVER_NOT_ALLOWED") {
		t.Errorf("early cutover: %d %s", code, errOut)
	}
	code, out, _ = cmd("migrations", "pause", mid, "--project", pid)
	if code != 0 || !strings.Contains(out, "paused") {
		t.Errorf("pause: %d %s", code, out)
	}
	code, out, _ = cmd("migrations", "resume", mid, "--project", pid)
	if code != 0 || !strings.Contains(out, "running") {
		t.Errorf("resume: %d %s", code, out)
	}

	// watch: live bars while "an agent" moves the job to completion.
	go driveToCompletion(t, ts.db, mid)
	code, out, errOut = cmd("migrations", "watch", mid, "--project", pid, "--progress", "bars", "--interval", "100ms")
	if code != 0 {
		t.Fatalf("watch: %d %s %s", code, out, errOut)
	}
	for _, want := range []string{"migration " + mid + " completed", "full", "incremental", "10,000/10,000 keys", "[", "]", "ready for cutover"} {
		if !strings.Contains(out, want) {
			t.Errorf("watch output lacks %q:\n%s", want, out)
		}
	}

	// The line mode (no terminal) and JSON lines of an ended job return at once.
	code, out, _ = cmd("migrations", "watch", mid, "--project", pid, "--progress", "lines")
	if code != 0 || !strings.Contains(out, "orders · completed") || !strings.Contains(out, "10,000/10,000 keys") {
		t.Errorf("watch lines: %d %s", code, out)
	}
	code, out, _ = cmd("migrations", "watch", mid, "--project", pid, "--json")
	var last map[string]any
	mustJSON(t, strings.TrimSpace(out), &last)
	if code != 0 || last["state"] != "completed" || last["id"] != mid {
		t.Errorf("watch json: %d %s", code, out)
	}

	// Credentials from <data-dir>/credentials.json and the environment.
	if err := writeCredentials(credentialsPath(ts.dataDir), credentials{Server: ts.url, OrgID: org["id"].(string), ProjectID: pid, PublicKey: pub, PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = ferryCmd(t, "migrations", "list", dd)
	if code != 0 || !strings.Contains(out, mid) || !strings.Contains(out, "completed") {
		t.Errorf("with credentials.json: %d %s %s", code, out, errOut)
	}
	t.Setenv("FERRY_SERVER", ts.url)
	t.Setenv("FERRY_PUBLIC_KEY", pub)
	t.Setenv("FERRY_PRIVATE_KEY", priv)
	t.Setenv("FERRY_PROJECT", pid)
	code, out, errOut = ferryCmd(t, "migrations", "get", mid, "--data-dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "completed") {
		t.Errorf("with FERRY_* env: %d %s %s", code, out, errOut)
	}
	t.Setenv("FERRY_PRIVATE_KEY", "wrong")
	code, _, errOut = ferryCmd(t, "projects", "list", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "HTTP 401") {
		t.Errorf("bad key: %d %s", code, errOut)
	}
	t.Setenv("FERRY_PUBLIC_KEY", "")
	t.Setenv("FERRY_PRIVATE_KEY", "")
	code, _, errOut = ferryCmd(t, "projects", "list", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "no API key") {
		t.Errorf("no key: %d %s", code, errOut)
	}

	// Usage errors.
	if code, _, _ := ferryCmd(t, "nope"); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
	if code, _, _ := ferryCmd(t, "migrations", "get"); code != 2 {
		t.Errorf("missing argument: %d", code)
	}
	if code, out, _ := ferryCmd(t, "version"); code != 0 || out != "ferry "+ferry.Version+"\n" {
		t.Errorf("version: %d %q", code, out)
	}
}

// driveToCompletion moves a job through its steps in the store, as an
// agent would, with counters the watch shows.
func driveToCompletion(t *testing.T, db *sqlite.DB, id string) {
	ctx := context.Background()
	update := func(fn func(m *ferry.Migration)) {
		time.Sleep(150 * time.Millisecond)
		if _, err := db.UpdateMigration(ctx, id, func(m *ferry.Migration) error { fn(m); return nil }); err != nil {
			t.Error(err)
		}
	}
	now := time.Now().UTC()
	update(func(m *ferry.Migration) {
		m.Step(ferry.StepPrecheck).State = ferry.StepDone
		m.Step(ferry.StepPrecheck).Progress = 100
		m.CurrentStep = ferry.StepFull
		s := m.Step(ferry.StepFull)
		s.State, s.Progress, s.Counters = ferry.StepRunning, 25, ferry.Counters{Done: 2500, Total: 10000, Unit: "keys"}
	})
	update(func(m *ferry.Migration) {
		s := m.Step(ferry.StepFull)
		s.Progress, s.Counters = 60, ferry.Counters{Done: 6000, Total: 10000, Unit: "keys", Bytes: 1 << 20}
	})
	update(func(m *ferry.Migration) {
		s := m.Step(ferry.StepFull)
		s.State, s.Progress, s.Counters = ferry.StepDone, 100, ferry.Counters{Done: 10000, Total: 10000, Unit: "keys", Bytes: 2 << 20}
		m.CurrentStep = ferry.StepIncremental
		inc := m.Step(ferry.StepIncremental)
		inc.State, inc.Counters = ferry.StepRunning, ferry.Counters{Ops: 40, Unit: "keys"}
		lag := int64(1)
		m.LagSeconds = &lag
		m.UpdateReadiness(now)
	})
	update(func(m *ferry.Migration) {
		for i := range m.Steps {
			m.Steps[i].State, m.Steps[i].Progress = ferry.StepDone, 100
		}
		m.CurrentStep = ferry.StepCutover
		if err := m.Transition(ferry.StateCompleted, time.Now().UTC()); err != nil {
			t.Error(err)
		}
	})
}

func TestParseEndpoint(t *testing.T) {
	e, err := parseEndpoint("rediss://app:p%40ss@h1:6379,h2:6380/2?cluster=true&mode=scan")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"kind": "redis", "tls": true, "username": "app", "password": "p@ss", "addrs": []string{"h1:6379", "h2:6380"},
		"database": "2", "cluster": true, "options": map[string]string{"mode": "scan"}}
	gotJSON, _ := json.Marshal(e)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("got %s\nwant %s", gotJSON, wantJSON)
	}
	if e, _ := parseEndpoint("registered"); len(e) != 1 || e["name"] != "registered" {
		t.Errorf("name %v", e)
	}
	if _, err := parseEndpoint("oracle://x:1"); err == nil {
		t.Errorf("oracle accepted")
	}
	if got := redactURL("postgres://u:secret@h/db"); got != "postgres://u:******@h/db" {
		t.Errorf("redact %q", got)
	}
}

// TestServeBinary builds ferry, runs `ferry serve` on a random port with a
// fresh data dir and uses the credentials it bootstraps.
func TestServeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), "FERRY_STORE=", "FERRY_ADDR=", "FERRY_DATA_DIR=")
	var logs bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	})

	// credentials.json appears once the store is bootstrapped.
	credPath := filepath.Join(dataDir, "credentials.json")
	var cr *credentials
	deadline := time.Now().Add(30 * time.Second)
	for {
		if cr, err = readCredentials(credPath); err == nil && cr.Server != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no credentials.json: %v", err)
		}
		select {
		case err := <-exited:
			t.Fatalf("ferry serve exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	st, err := os.Stat(credPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("credentials.json mode %v %v", st.Mode().Perm(), err)
	}
	if cr.PublicKey == "" || len(cr.PrivateKey) < 32 || !ferry.ValidID(cr.ProjectID) || !ferry.ValidID(cr.OrgID) || cr.Role != "ORG_OWNER" ||
		!strings.HasPrefix(cr.Server, "http://127.0.0.1:") || strings.HasSuffix(cr.Server, ":0") {
		t.Fatalf("credentials %+v", *cr)
	}
	// /healthz, then the key against the native API.
	for {
		res, err := http.Get(cr.Server + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", cr.Server+"/api/v1/projects", nil)
	req.SetBasicAuth(cr.PublicKey, cr.PrivateKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var l map[string]any
	err = json.NewDecoder(res.Body).Decode(&l)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || l["total"] != 1.0 {
		t.Fatalf("projects: %d %v %v", res.StatusCode, l, err)
	}
	p := l["items"].([]any)[0].(map[string]any)
	if p["id"] != cr.ProjectID || p["name"] != "default" || p["orgId"] != cr.OrgID {
		t.Errorf("project %v", p)
	}
	// The mongodb engine is built in: a job is accepted (its precheck then
	// fails on the unreachable addresses, in the background).
	body := `{"source":{"kind":"mongodb","addrs":["127.0.0.1:1"]},"target":{"kind":"mongodb","addrs":["127.0.0.1:2"]},"start":true}`
	req, _ = http.NewRequest("POST", cr.Server+"/api/v1/projects/"+cr.ProjectID+"/migrations", strings.NewReader(body))
	req.SetBasicAuth(cr.PublicKey, cr.PrivateKey)
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 || !strings.Contains(string(b), "mongodb") {
		t.Errorf("create job: %d %s", res.StatusCode, b)
	}

	// /metrics needs the token ferry serve wrote to <data-dir>/metrics-token.
	res, err = http.Get(cr.Server + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("/metrics without the token: %d", res.StatusCode)
	}
	tokPath := filepath.Join(dataDir, "metrics-token")
	tokBytes, err := os.ReadFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(tokPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("metrics-token mode %v %v", st.Mode().Perm(), err)
	}
	metricsToken := strings.TrimSpace(string(tokBytes))
	req, _ = http.NewRequest("GET", cr.Server+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "ferry_store_up 1") {
		t.Errorf("/metrics with the token: %d %.200s", res.StatusCode, b)
	}

	// SIGTERM stops it cleanly.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("ferry serve exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ferry serve did not stop")
	}
	<-logDone
	out := logs.String()
	if strings.Contains(out, cr.PrivateKey) {
		t.Errorf("the private key was logged")
	}
	if strings.Contains(out, metricsToken) {
		t.Errorf("the metrics token was logged")
	}
	for _, want := range []string{credPath, cr.PublicKey, "ferry serving", "ferry stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestMetricsTokenOf: the /metrics token comes from the flag, else the
// file; with neither, none on a separate listener, else a random token
// kept in <data-dir>/metrics-token across restarts.
func TestMetricsTokenOf(t *testing.T) {
	dir := t.TempDir()
	if tok, _, err := metricsTokenOf("flag-token", "", "", dir); err != nil || tok != "flag-token" {
		t.Errorf("flag: %q %v", tok, err)
	}
	if tok, _, err := metricsTokenOf("", "", "127.0.0.1:9090", dir); err != nil || tok != "" {
		t.Errorf("separate listener: %q %v", tok, err)
	}
	tok, path, err := metricsTokenOf("", "", "", dir)
	if err != nil || len(tok) < 32 || path != filepath.Join(dir, "metrics-token") {
		t.Fatalf("generated: %q %q %v", tok, path, err)
	}
	if again, _, err := metricsTokenOf("", "", "", dir); err != nil || again != tok {
		t.Errorf("second start: %q %v, want the same token", again, err)
	}
	file := filepath.Join(dir, "given")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := metricsTokenOf("", file, "127.0.0.1:9090", dir); err != nil || got != "from-file" {
		t.Errorf("file: %q %v", got, err)
	}
	if _, _, err := metricsTokenOf("", filepath.Join(dir, "missing"), "", dir); err == nil {
		t.Error("a missing --metrics-token-file is not an error")
	}
}

func TestActionLine(t *testing.T) {
	for _, tc := range []struct {
		state, step, want string
	}{
		{"running", "precheck", "migration m1: running (step precheck)"},
		{"cutting_over", "incremental", "migration m1: cutting_over (step incremental)"},
		{"released", "", "migration m1: released"},
	} {
		if got := actionLine(&migration{ID: "m1", State: tc.state, CurrentStep: tc.step}); got != tc.want {
			t.Errorf("%s/%q: got %q, want %q", tc.state, tc.step, got, tc.want)
		}
	}
}

// TestPipelinesCreateNeedsItsFlags: without its flags (or --file) the
// command names what is missing and sends nothing.
func TestPipelinesCreateNeedsItsFlags(t *testing.T) {
	for _, k := range []string{"FERRY_NAME", "FERRY_CLUSTER", "FERRY_DATABASE", "FERRY_COLLECTION", "FERRY_FILE", "FERRY_SERVER"} {
		t.Setenv(k, "")
	}
	var out, errOut strings.Builder
	// The server named does not exist: reaching it would be another error.
	code := run([]string{"pipelines", "create", "--name", "p1", "--server", "http://127.0.0.1:1"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--cluster, --database, --collection required") || strings.Contains(errOut.String(), "connect") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}
