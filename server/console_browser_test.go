package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	redisengine "github.com/ferrymigrate/ferry/engine/redis"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/server"
	"github.com/ferrymigrate/ferry/sqlite"
)

// consoleEnv is ferry served in-process (sqlite store, the Redis engine, one
// agent, the HTTP server) with two redis-servers to migrate between.
type consoleEnv struct {
	t          *testing.T
	url        string
	pub, priv  string
	projectID  string
	src, dst   *goredis.Client
	srcAddr    string
	dstAddr    string
	httpClient *http.Client
}

func testLogger() *slog.Logger {
	if os.Getenv("FERRY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newConsoleEnv(t *testing.T) *consoleEnv {
	t.Helper()
	e := &consoleEnv{t: t, httpClient: &http.Client{Timeout: 10 * time.Second}}
	e.srcAddr = testharness.StartRedis(t, "--enable-debug-command", "yes")
	e.dstAddr = testharness.StartRedis(t, "--enable-debug-command", "yes")
	e.src = goredis.NewClient(&goredis.Options{Addr: e.srcAddr})
	e.dst = goredis.NewClient(&goredis.Options{Addr: e.dstAddr})
	t.Cleanup(func() { e.src.Close(); e.dst.Close() })

	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := testLogger()
	reg := ferry.NewRegistry()
	reg.Register(redisengine.New(log))
	svc := ferry.NewService(db, reg, log)
	srv, err := server.New(server.Config{Service: svc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e.url = ts.URL

	a := agent.New(agent.Config{ID: "console-agent", Store: db, Registry: reg, Service: svc, Logger: log,
		LeaseTTL: 2 * time.Second, PollInterval: 50 * time.Millisecond, RetryBackoff: 100 * time.Millisecond, MaxAttempts: 2})
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(actx) }()
	t.Cleanup(func() { cancel(); <-done })

	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "acme")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := svc.CreateProject(sys, org.ID, "prod")
	if err != nil {
		t.Fatal(err)
	}
	e.projectID = proj.ID
	k, priv, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "console test")
	if err != nil {
		t.Fatal(err)
	}
	e.pub, e.priv = k.PublicKey, priv
	return e
}

// call is a native API request with the key pair (what a script would do).
func (e *consoleEnv) call(method, path string, body any) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	req.SetBasicAuth(e.pub, e.priv)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.httpClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		e.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return m
}

func (e *consoleEnv) migration(id string) map[string]any {
	return e.call("GET", "/api/v1/projects/"+e.projectID+"/migrations/"+id, nil)
}

func digest(t *testing.T, c *goredis.Client) string {
	t.Helper()
	s, err := c.Do(context.Background(), "DEBUG", "DIGEST").Text()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// browser starts a headless Chromium with the flags these machines need.
// The test fails at its end if the page threw or logged an error (a script
// error, a Content-Security-Policy violation); failed requests are the
// test's business.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	bin := testharness.Chromium(t)
	// The profile is not a t.TempDir: Chromium's helper processes may still
	// write to it for a moment after the browser is gone, so its removal is
	// retried (registered first, so it runs after the browser is stopped).
	dataDir, err := os.MkdirTemp("", "ferry-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50 && os.RemoveAll(dataDir) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(dataDir),
		chromedp.WindowSize(1280, 1000),
		chromedp.Env("TZ=Europe/Berlin"),
	}
	// chromedp may log from its goroutines after the test ended: drop those.
	var logMu sync.Mutex
	ended := false
	t.Cleanup(func() { logMu.Lock(); ended = true; logMu.Unlock() })
	logf := func(format string, v ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		if !ended {
			t.Logf(format, v...)
		}
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	var mu sync.Mutex
	var pageErrors []string
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Error()
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.LevelError && ev.Entry.Source != cdplog.SourceNetwork {
				msg = fmt.Sprintf("%s: %s", ev.Entry.Source, ev.Entry.Text)
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				msg = "console.error"
			}
		}
		if msg != "" {
			mu.Lock()
			pageErrors = append(pageErrors, msg)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range pageErrors {
			t.Errorf("the page reported an error: %s", e)
		}
	})
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	return ctx
}

// waitFor polls a JavaScript expression in the page until it is true.
func waitFor(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	var ok bool
	if err := chromedp.Run(ctx, chromedp.Poll(expr, &ok, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		var page string
		_ = chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate(`document.querySelector("main").innerText`, &page))
		t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, expr, err, page)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	if err := chromedp.Run(ctx, chromedp.Text(sel, &s, chromedp.ByQuery)); err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// click clicks sel, again if the page re-rendered it in between (the lists
// refresh every 2 s).
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	var err error
	for range 3 {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = chromedp.Run(cctx, chromedp.Click(sel, chromedp.ByQuery))
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

// selectValue picks an option of a <select> the way a user does (the
// change event fires).
func selectValue(id, v string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`(() => { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event("change")); return true })()`, id, v), nil)
}

func stateIs(s string) string {
	return fmt.Sprintf(`(document.querySelector("#d-state") || {}).innerText === %q`, s)
}

// TestConsoleDrivesRedisCutover clicks through a real Redis migration in
// Chromium: log in, filter the list, open the job, pause and resume it,
// extend its cutover deadline, cut over (confirming), check the target
// equals the source, verify on demand and release it.
func TestConsoleDrivesRedisCutover(t *testing.T) {
	e := newConsoleEnv(t)
	ctx := browser(t, 4*time.Minute)
	bg := context.Background()

	// Keys written before the sync.
	pipe := e.src.Pipeline()
	for i := 0; i < 3000; i++ {
		pipe.Set(bg, fmt.Sprintf("pre:%d", i), strings.Repeat("v", i%200), 0)
	}
	for i := 0; i < 50; i++ {
		pipe.HSet(bg, "pre:hash", fmt.Sprintf("f%d", i), i)
		pipe.RPush(bg, "pre:list", i)
		pipe.ZAdd(bg, "pre:zset", goredis.Z{Score: float64(i), Member: fmt.Sprint(i)})
	}
	pipe.Set(bg, "pre:ttl", "x", time.Hour)
	if _, err := pipe.Exec(bg); err != nil {
		t.Fatal(err)
	}

	// A job that cannot work (nothing listens on its source): the list
	// shows its error compactly.
	bad := e.call("POST", "/api/v1/projects/"+e.projectID+"/migrations", map[string]any{
		"name": "broken-source", "engine": "redis", "start": true,
		"source": map[string]any{"kind": "redis", "addrs": []string{"127.0.0.1:1"}},
		"target": map[string]any{"kind": "redis", "addrs": []string{e.dstAddr}},
		"modes":  map[string]any{"full": true},
	})
	m := e.call("POST", "/api/v1/projects/"+e.projectID+"/migrations", map[string]any{
		"name": "sessions-cache", "engine": "redis", "start": true,
		"source": map[string]any{"kind": "redis", "addrs": []string{e.srcAddr}},
		"target": map[string]any{"kind": "redis", "addrs": []string{e.dstAddr}},
		"modes":  map[string]any{"full": true, "incremental": true},
	})
	id := m["id"].(string)

	// The application keeps writing during the whole sync.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				written = i
				return
			default:
			}
			p := e.src.Pipeline()
			p.Set(bg, fmt.Sprintf("live:%d", i), i, 0)
			p.HIncrBy(bg, "live:counter", "n", 1)
			if i%10 == 0 {
				p.Del(bg, fmt.Sprintf("pre:%d", i))
			}
			if _, err := p.Exec(bg); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	stopWriting := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopWriting()

	// Log in: the form goes away once connected.
	run(t, ctx, "open the console and log in",
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible("#login", chromedp.ByID),
		chromedp.SendKeys("#pub", e.pub, chromedp.ByID),
		chromedp.SendKeys("#priv", e.priv, chromedp.ByID),
		chromedp.Click("#connect", chromedp.ByID),
		chromedp.WaitVisible("#list", chromedp.ByID),
		chromedp.WaitNotVisible("#login", chromedp.ByID),
	)
	waitFor(t, ctx, "the login form to go", `document.getElementById("login").hidden && !document.getElementById("logout").hidden`, 10*time.Second)
	row := fmt.Sprintf(`tr.job[data-id=%q]`, id)
	waitFor(t, ctx, "the job in the list", fmt.Sprintf(`!!document.querySelector(%q)`, row), 10*time.Second)

	// The broken job fails and shows its error in the list, compactly.
	badRow := fmt.Sprintf(`tr.job[data-id=%q]`, bad["id"].(string))
	waitFor(t, ctx, "the broken job to fail", fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText.includes("failed")`, badRow), 60*time.Second)
	if s := text(t, ctx, badRow+" .err, "+badRow+" details.error summary"); s == "" || len(s) > 200 {
		t.Errorf("the failed job's error in the list is %q (want a short line)", s)
	}

	// Filters: by state and by engine.
	run(t, ctx, "filter state=failed", selectValue("f-state", "failed"))
	waitFor(t, ctx, "only failed jobs", fmt.Sprintf(`!document.querySelector(%q) && !!document.querySelector(%q)`, row, badRow), 10*time.Second)
	run(t, ctx, "filter state=any engine=mysql", selectValue("f-state", ""), selectValue("f-engine", "mysql"))
	waitFor(t, ctx, "no redis jobs", fmt.Sprintf(`!document.querySelector(%q) && document.getElementById("jobs").innerText.includes("match the filters")`, row), 10*time.Second)
	run(t, ctx, "filter engine=redis", selectValue("f-engine", "redis"))
	waitFor(t, ctx, "the redis job again", fmt.Sprintf(`!!document.querySelector(%q)`, row), 10*time.Second)

	// Open the detail page.
	click(t, ctx, row+" td:nth-child(2)")
	run(t, ctx, "open the job", chromedp.WaitVisible("#detail", chromedp.ByID))
	waitFor(t, ctx, "ready for cutover", `(document.querySelector("#d-ready") || {}).innerText === "Ready for cutover"`, 90*time.Second)
	waitFor(t, ctx, "only the actions a running job allows", `document.getElementById("act-resume").disabled && !document.getElementById("act-pause").disabled && !document.getElementById("act-cutover").disabled`, 5*time.Second)
	if s := text(t, ctx, "#d-copied"); !strings.HasSuffix(s, "keys") || s == "0 keys" {
		t.Errorf("copied card %q", s)
	}
	// Changes applied by the incremental sync show up.
	waitFor(t, ctx, "changes applied", `parseInt(document.querySelector("#d-ops").innerText.replace(/\D/g, "")) > 0`, 30*time.Second)
	// Times read as local times, not ISO strings.
	if s := text(t, ctx, "#d-deadline time"); s == "" || strings.Contains(s, "T") && strings.Contains(s, "Z") {
		t.Errorf("cutover deadline shown as %q", s)
	}
	waitFor(t, ctx, "a lag chart", `!!document.querySelector("#lag-chart polyline")`, 20*time.Second)
	// A reload keeps the session (no login form) and the lag history.
	var points int
	run(t, ctx, "count lag samples", chromedp.Evaluate(`document.querySelector("#lag-chart polyline").getAttribute("points").split(" ").length`, &points))
	run(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible("#detail", chromedp.ByID), chromedp.WaitNotVisible("#login", chromedp.ByID))
	waitFor(t, ctx, "the lag chart after the reload", fmt.Sprintf(`!!document.querySelector("#lag-chart polyline") && document.querySelector("#lag-chart polyline").getAttribute("points").split(" ").length >= %d`, points), 5*time.Second)

	// Pause and resume.
	run(t, ctx, "pause", chromedp.Click("#act-pause", chromedp.ByID))
	waitFor(t, ctx, "paused", stateIs("paused"), 20*time.Second)
	if got := e.migration(id)["state"]; got != "paused" {
		t.Fatalf("after pause the API says %v", got)
	}
	waitFor(t, ctx, "resume enabled", `!document.getElementById("act-resume").disabled`, 5*time.Second)
	run(t, ctx, "resume", chromedp.Click("#act-resume", chromedp.ByID))
	waitFor(t, ctx, "running again", stateIs("running"), 20*time.Second)
	waitFor(t, ctx, "ready for cutover again", `(document.querySelector("#d-ready") || {}).innerText === "Ready for cutover"`, 90*time.Second)

	// Extend the cutover deadline by 24 hours.
	before, err := time.Parse(time.RFC3339Nano, e.migration(id)["cutoverDeadline"].(string))
	if err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "extend by 24h",
		chromedp.SetValue("#extend-hours", "24", chromedp.ByID),
		chromedp.Click("#act-extend", chromedp.ByID))
	waitFor(t, ctx, "the extend result", `(document.querySelector("#act-result") || {innerText: ""}).innerText.startsWith("Cutover deadline now")`, 10*time.Second)
	after, err := time.Parse(time.RFC3339Nano, e.migration(id)["cutoverDeadline"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Sub(before); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("extend moved the deadline by %v (from %v to %v), want 24h", d, before, after)
	}

	if dir := os.Getenv("FERRY_SCREENSHOT_DIR"); dir != "" {
		time.Sleep(6 * time.Second) // a few more lag samples
		var png []byte
		run(t, ctx, "screenshot", chromedp.EmulateViewport(1200, 900), chromedp.FullScreenshot(&png, 100))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "console-detail.png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}

	// The application stops writing; cut over, confirming in the dialog.
	stopWriting()
	run(t, ctx, "cut over", chromedp.Click("#act-cutover", chromedp.ByID), chromedp.WaitVisible("#confirm-yes", chromedp.ByID))
	if s := text(t, ctx, "#confirm-title"); s != "Cut over?" {
		t.Errorf("confirmation title %q", s)
	}
	// Cancelling does nothing.
	run(t, ctx, "cancel", chromedp.Click("#confirm-no", chromedp.ByID), chromedp.WaitNotVisible("#confirm-yes", chromedp.ByID))
	if got := e.migration(id)["state"]; got != "running" {
		t.Fatalf("after a cancelled cutover the job is %v", got)
	}
	run(t, ctx, "cut over and confirm",
		chromedp.Click("#act-cutover", chromedp.ByID),
		chromedp.WaitVisible("#confirm-yes", chromedp.ByID),
		chromedp.Click("#confirm-yes", chromedp.ByID))
	waitFor(t, ctx, "completed", stateIs("completed"), 60*time.Second)
	// A finished job shows no cutover deadline.
	waitFor(t, ctx, "no deadline", `document.querySelector("#d-deadline").innerText === "—"`, 5*time.Second)

	// The target equals the source.
	if a, b := digest(t, e.src), digest(t, e.dst); a != b {
		t.Fatalf("DEBUG DIGEST differs after cutover: source %s target %s", a, b)
	}
	if n, err := e.dst.HGet(bg, "live:counter", "n").Int(); err != nil || n != written {
		t.Fatalf("target live:counter = %d (%v), want %d writes", n, err, written)
	}
	final := e.migration(id)
	var ops float64
	for _, s := range final["steps"].([]any) {
		st := s.(map[string]any)
		if st["name"] == "incremental" {
			ops = st["counters"].(map[string]any)["ops"].(float64)
		}
	}
	shown, _ := strconv.Atoi(strings.ReplaceAll(strings.ReplaceAll(text(t, ctx, "#d-ops"), ",", ""), ".", ""))
	if ops == 0 || float64(shown) != ops {
		t.Errorf("changes applied: page shows %d, API says %v", shown, ops)
	}

	// Verify on demand: a verification job that finds no difference.
	run(t, ctx, "verify", chromedp.Click("#act-verify", chromedp.ByID))
	waitFor(t, ctx, "a verification job", `!!document.querySelector("#d-verifies tr[data-id]")`, 10*time.Second)
	waitFor(t, ctx, "verification completed", `document.querySelector("#d-verifies tr[data-id] .state").innerText === "completed"`, 60*time.Second)
	if s := text(t, ctx, "#d-verifies tr[data-id] td:nth-child(4)"); s != "0 / 0 / 0" {
		t.Errorf("verification found missing / extra / different = %s", s)
	}

	// Release, confirming.
	run(t, ctx, "release",
		chromedp.Click("#act-release", chromedp.ByID),
		chromedp.WaitVisible("#confirm-yes", chromedp.ByID),
		chromedp.Click("#confirm-yes", chromedp.ByID))
	waitFor(t, ctx, "released", stateIs("released"), 20*time.Second)
	if got := e.migration(id)["state"]; got != "released" {
		t.Fatalf("after release the API says %v", got)
	}
	t.Logf("migrated %d keys written before and %d application writes during the sync; %v changes applied", 3000, written, ops)
}
