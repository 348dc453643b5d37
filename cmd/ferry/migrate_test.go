package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	redisengine "github.com/ferrymigrate/ferry/engine/redis"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/server"
	"github.com/ferrymigrate/ferry/sqlite"
)

// TestMigrateJobFileRedis drives two real redis-servers with the CLI: a
// job file run to completion with --yes (precheck, sync, cutover,
// verification; the answer says the source stays paused), release-source,
// and a second job declined at the prompt, then paused: get shows why it
// is not ready, and cutover answers the advice.
func TestMigrateJobFileRedis(t *testing.T) {
	for _, k := range []string{"FERRY_SERVER", "FERRY_PUBLIC_KEY", "FERRY_PRIVATE_KEY", "FERRY_PROJECT", "FERRY_DATA_DIR", "FERRY_STORE", "FERRY_JSON"} {
		t.Setenv(k, "")
	}
	src, dst := testharness.StartRedis(t), testharness.StartRedis(t)
	srcC := goredis.NewClient(&goredis.Options{Addr: src})
	defer srcC.Close()
	ctx := context.Background()
	for i := range 500 {
		srcC.Set(ctx, fmt.Sprintf("k:%d", i), i, 0)
	}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := ferry.NewRegistry()
	reg.Register(redisengine.New(log))
	svc := ferry.NewService(db, reg, log)
	srv, err := server.New(server.Config{Service: svc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	a := agent.New(agent.Config{ID: "agent-1", Store: db, Registry: reg, Service: svc, Logger: log,
		LeaseTTL: 2 * time.Second, PollInterval: 50 * time.Millisecond})
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(actx) }()
	t.Cleanup(func() { cancel(); <-done })
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "acme")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := svc.CreateProject(sys, org.ID, "p")
	if err != nil {
		t.Fatal(err)
	}
	k, priv, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "cli")
	if err != nil {
		t.Fatal(err)
	}
	auth := []string{"--server", ts.URL, "--public-key", k.PublicKey, "--private-key", priv, "--project", proj.ID}
	cmd := func(args ...string) (int, string, string) { return ferryCmd(t, append(args, auth...)...) }

	dir := t.TempDir()
	job := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(job, []byte("name: cache-move\nsource: redis://"+src+"\ntarget:\n  kind: redis\n  addrs: ["+dst+"]\noptions:\n  cutover_pause_seconds: 120\n  conflict: replace\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := cmd("migrate", "-f", job, "--check"); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("--check: %d %s %s", code, out, errOut)
	}
	code, out, errOut := cmd("migrate", "-f", job, "--yes", "--interval", "100ms", "--ready-timeout", "2m")
	if code != 0 {
		t.Fatalf("migrate: %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("ferry migrate -f job.yaml --yes:\n%s", out)
	for _, want := range []string{"precheck: passed", "created and started", "ready for cutover", "cutover: cutover pauses the source's writes (CLIENT PAUSE WRITE for 120 s)",
		"Source write block", "client_pause_write", "stays write-paused", "Verification", "done: 500 keys checked, 0 missing, 0 extra, 0 different", "completed"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate output lacks %q:\n%s", want, out)
		}
	}
	ms, _, err := svc.ListMigrations(sys, ferry.MigrationFilter{ProjectID: proj.ID}, ferry.AccessRead)
	if err != nil || len(ms) != 1 {
		t.Fatalf("jobs: %v %v", ms, err)
	}
	m := ms[0]
	if !m.Modes.Verify || m.Options.Conflict != ferry.ConflictReplace || m.Options.Extra["cutover_pause_seconds"] != "120" {
		t.Fatalf("job from the file: modes %+v options %+v", m.Modes, m.Options)
	}
	// The source is paused until released.
	tctx, tcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = goredis.NewClient(&goredis.Options{Addr: src, MaxRetries: -1}).Set(tctx, "x", 1, 0).Err()
	tcancel()
	if err == nil {
		t.Fatal("the source took a write after cutover")
	}
	code, out, errOut = cmd("migrations", "release-source", m.ID)
	if code != 0 || !strings.Contains(out, "source: the source's write block was lifted") {
		t.Fatalf("release-source: %d %s %s", code, out, errOut)
	}
	if err := srcC.Set(ctx, "after-release", 1, 0).Err(); err != nil {
		t.Fatalf("write after release-source: %v", err)
	}

	// Declined at the prompt: the job keeps syncing.
	job2 := filepath.Join(dir, "job2.json")
	if err := os.WriteFile(job2, []byte(`{"name": "second", "source": "redis://`+src+`", "target": "redis://`+dst+`", "options": {"conflict": "replace"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin = strings.NewReader("n\n")
	t.Cleanup(func() { stdin = os.Stdin })
	code, out, errOut = cmd("migrate", "-f", job2, "--interval", "100ms", "--ready-timeout", "2m")
	if code != 0 || !strings.Contains(out, "Cut over now? [y/N]") || !strings.Contains(out, "not cut over: the job keeps syncing") {
		t.Fatalf("declined migrate: %d %s %s", code, out, errOut)
	}
	ms, _, _ = svc.ListMigrations(sys, ferry.MigrationFilter{ProjectID: proj.ID, States: []ferry.State{ferry.StateRunning}}, ferry.AccessRead)
	if len(ms) != 1 || ms[0].Name != "second" {
		t.Fatalf("running jobs: %v", ms)
	}
	id := ms[0].ID
	if code, out, _ = cmd("migrations", "pause", id); code != 0 || !strings.Contains(out, "paused") {
		t.Fatalf("pause: %d %s", code, out)
	}
	code, out, _ = cmd("migrations", "get", id)
	for _, want := range []string{"lag unknown (paused)", "Not ready because", "PAUSED", "resume it first"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("get of a paused job lacks %q:\n%s", want, out)
		}
	}
	code, _, errOut = cmd("migrations", "cutover", id)
	if code != 1 || !strings.Contains(errOut, "PAUSED") || !strings.Contains(errOut, "resume it first") {
		t.Errorf("cutover of a paused job: %d %s", code, errOut)
	}
	if code, _, _ = cmd("migrations", "release", id); code != 0 {
		t.Errorf("release: %d", code)
	}
}
