package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleRendersJobFields renders, in Chromium, job fields the
// integration test cannot produce on demand: readiness reasons, cutover
// evidence, a multi-line error, a field the console does not know yet and
// a finished job that still carries a cutover deadline. The API here is a
// fixture answering fixed JSON: this tests the page, not ferry.
func TestConsoleRendersJobFields(t *testing.T) {
	page, err := os.ReadFile("console.html")
	if err != nil {
		t.Fatal(err)
	}
	const project = "6b0000000000000000000001"
	deadline := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	step := func(name, state string, c map[string]any) map[string]any {
		return map[string]any{"name": name, "state": state, "progress": 100, "counters": c}
	}
	waiting := map[string]any{
		"id": "6b0000000000000000000002", "projectId": project, "name": "orders", "engine": "mysql", "state": "running",
		"currentStep": "incremental", "lagSeconds": 12, "readyForCutover": false, "cutoverDeadline": deadline,
		"source": map[string]any{"kind": "mysql", "addrs": []string{"10.0.0.1:3306"}}, "target": map[string]any{"kind": "mysql", "addrs": []string{"10.0.0.2:3306"}},
		"readiness": []any{
			map[string]any{"reason": "LAG_ABOVE_THRESHOLD", "message": "lag 12 s is above the 5 s threshold"},
			map[string]any{"reason": "WRITES_NOT_BLOCKED", "message": "the source still takes writes"},
		},
		"somethingNew": map[string]any{"shards": 3},
		"steps": []any{step("full", "done", map[string]any{"done": 1000, "total": 1000, "unit": "rows", "ratePerSec": 500}),
			map[string]any{"name": "incremental", "state": "running", "progress": 0, "counters": map[string]any{"done": 40, "ops": 40, "unit": "events"}}},
		"createdAt": "2026-12-01T08:00:00Z", "updatedAt": "2026-12-01T09:00:00Z",
	}
	failed := map[string]any{
		"id": "6b0000000000000000000003", "projectId": project, "name": "cache", "engine": "redis", "state": "failed",
		"cutoverDeadline": deadline, "error": "cutover: the target did not catch up\nsource offset 1234, target offset 1200\nafter 30s",
		"source": map[string]any{"kind": "redis", "addrs": []string{"10.0.0.3:6379"}}, "target": map[string]any{"kind": "redis", "addrs": []string{"10.0.0.4:6379"}},
		"cutover":   map[string]any{"evidence": map[string]any{"clientPause": "WRITE", "sourceOffset": 1234, "targetOffset": 1200, "pausedAt": "2026-12-01T09:30:00Z"}},
		"steps":     []any{step("full", "done", map[string]any{"done": 10, "total": 10, "unit": "keys"})},
		"createdAt": "2026-12-01T08:00:00Z", "updatedAt": "2026-12-01T09:30:00Z", "finishedAt": "2026-12-01T09:30:00Z",
	}
	copying := map[string]any{
		"id": "6b0000000000000000000004", "projectId": project, "name": "users", "engine": "mongodb", "state": "running",
		"currentStep": "full", "progress": 25,
		"source": map[string]any{"kind": "mongodb", "addrs": []string{"10.0.0.5:27017"}}, "target": map[string]any{"kind": "mongodb", "addrs": []string{"10.0.0.6:27017"}},
		"steps":     []any{map[string]any{"name": "full", "state": "running", "progress": 25, "counters": map[string]any{"done": 250, "total": 1000, "unit": "documents", "ratePerSec": 50}}},
		"createdAt": "2026-12-01T08:00:00Z", "updatedAt": "2026-12-01T09:00:00Z",
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	answer := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
				w.WriteHeader(401)
				w.Write([]byte(`{"error":{"code":"unauthorized","message":"no credentials"}}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(v)
		}
	}
	mux.Handle("GET /api/v1/projects", answer(map[string]any{"items": []any{map[string]any{"id": project, "name": "prod"}}, "total": 1}))
	mux.Handle("GET /api/v1/projects/"+project+"/migrations", answer(map[string]any{"items": []any{waiting, failed, copying}, "total": 3}))
	mux.Handle("GET /api/v1/projects/"+project+"/migrations/"+waiting["id"].(string), answer(waiting))
	mux.Handle("GET /api/v1/projects/"+project+"/migrations/"+failed["id"].(string), answer(failed))
	mux.Handle("GET /api/v1/projects/"+project+"/migrations/"+copying["id"].(string), answer(copying))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	ctx := browser(t, time.Minute)
	run(t, ctx, "log in",
		chromedp.Navigate(ts.URL+"/"),
		chromedp.SendKeys("#pub", "pub", chromedp.ByID),
		chromedp.SendKeys("#priv", "priv", chromedp.ByID),
		chromedp.Click("#connect", chromedp.ByID),
		chromedp.WaitVisible("#list", chromedp.ByID),
		chromedp.WaitNotVisible("#login", chromedp.ByID))

	// The list: a finished job shows no deadline; a running one does.
	waitFor(t, ctx, "three rows", `document.querySelectorAll("tr.job").length === 3`, 10*time.Second)
	if s := text(t, ctx, `tr.job[data-id="6b0000000000000000000003"] td:nth-child(7)`); s != "" {
		t.Errorf("the failed job's cutover cell is %q, want empty", s)
	}
	if s := text(t, ctx, `tr.job[data-id="6b0000000000000000000002"] td:nth-child(7)`); !strings.HasPrefix(s, "by ") {
		t.Errorf("the running job's cutover cell is %q, want its deadline", s)
	}
	// The error is one line; the rest opens on demand.
	if s := text(t, ctx, `tr.job[data-id="6b0000000000000000000003"] details.error summary`); s != "cutover: the target did not catch up" {
		t.Errorf("compact error %q", s)
	}

	// Readiness reasons and an unknown field.
	run(t, ctx, "open the waiting job", chromedp.Navigate(ts.URL+"/#/projects/"+project+"/migrations/6b0000000000000000000002"))
	waitFor(t, ctx, "readiness reasons", `!!document.querySelector("#d-readiness")`, 10*time.Second)
	if s := text(t, ctx, "#d-readiness"); !strings.Contains(s, "LAG_ABOVE_THRESHOLD — lag 12 s is above the 5 s threshold") || !strings.Contains(s, "WRITES_NOT_BLOCKED") {
		t.Errorf("readiness %q", s)
	}
	if s := text(t, ctx, "#d-ready"); s != "Not ready for cutover yet" {
		t.Errorf("ready line %q", s)
	}
	if s := text(t, ctx, "#d-other"); !strings.Contains(s, "somethingNew") || !strings.Contains(s, "shards") {
		t.Errorf("unknown field panel %q", s)
	}
	if s := text(t, ctx, "#d-rate"); s != "—" {
		t.Errorf("rate of the incremental step without a rate: %q", s)
	}
	if s := text(t, ctx, "#d-ops"); s != "40" {
		t.Errorf("changes applied %q", s)
	}

	// Rate and ETA of a copy: 750 documents to go at 50/s.
	run(t, ctx, "open the copying job", chromedp.Navigate(ts.URL+"/#/projects/"+project+"/migrations/6b0000000000000000000004"))
	waitFor(t, ctx, "the copying job", `(document.querySelector("#d-head h2") || {innerText: ""}).innerText.startsWith("users")`, 10*time.Second)
	if s := text(t, ctx, "#d-rate"); s != "50 documents/s" {
		t.Errorf("rate %q", s)
	}
	if s := text(t, ctx, "#d-eta"); !strings.HasPrefix(s, "15s") || !strings.Contains(s, "(") || strings.Contains(s, "T") {
		t.Errorf("ETA %q, want 15s and the local time it ends", s)
	}

	// Cutover evidence, a finished job without deadline, the error.
	run(t, ctx, "open the failed job", chromedp.Navigate(ts.URL+"/#/projects/"+project+"/migrations/6b0000000000000000000003"))
	waitFor(t, ctx, "cutover evidence", `!!document.querySelector("#d-cutover")`, 10*time.Second)
	ev := text(t, ctx, "#d-cutover")
	for _, want := range []string{"evidence", "clientPause", "WRITE", "sourceOffset", "1,234", "pausedAt"} {
		if !strings.Contains(ev, want) {
			t.Errorf("cutover evidence %q lacks %q", ev, want)
		}
	}
	if strings.Contains(ev, "2026-12-01T09:30:00Z") {
		t.Errorf("evidence time shown as ISO, want local: %q", ev)
	}
	if s := text(t, ctx, "#d-deadline"); s != "—" {
		t.Errorf("a failed job shows cutover deadline %q", s)
	}
	if s := text(t, ctx, "#d-error summary"); s != "cutover: the target did not catch up" {
		t.Errorf("error summary %q", s)
	}
	// The actions a failed job allows.
	var disabled map[string]bool
	run(t, ctx, "buttons", chromedp.Evaluate(`Object.fromEntries([...document.querySelectorAll("#d-actions button")].map(b => [b.dataset.act, b.disabled]))`, &disabled))
	want := map[string]bool{"pause": true, "resume": true, "verify": false, "cutover": true, "extend": true, "release": false}
	for k, v := range want {
		if disabled[k] != v {
			t.Errorf("button %s disabled=%v, want %v (all: %v)", k, disabled[k], v, disabled)
		}
	}
}
