package psync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/internal/redistest"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/http/native"
)

// TestCutoverLeavesSourcePaused: after cutover the source's writes stay
// paused; the cutover answer and the job say so; release-source lifts the
// pause and a write succeeds.
func TestCutoverLeavesSourcePaused(t *testing.T) {
	e := redistest.NewEnv(t)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		e.SrcC.Set(ctx, fmt.Sprintf("k:%d", i), i, 0)
	}
	m := e.Create(ferry.Modes{Full: true, Incremental: true, Verify: true}, ferry.Options{Extra: map[string]string{"cutover_pause_seconds": "240"}})
	e.Agent("agent-1")
	k, priv, err := e.Svc.CreateAPIKey(e.Ctx, e.Proj.OrgID, "", ferry.RoleOrgOwner, "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(native.New(e.Svc, httpauth.New(e.Svc), redistest.Logger(t)))
	t.Cleanup(srv.Close)
	call := func(method, path string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/api/v1/projects/"+e.Proj.ID+"/migrations/"+m.ID+path, nil)
		req.SetBasicAuth(k.PublicKey, priv)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: %s", method, path, b)
		}
		return res.StatusCode, v
	}
	e.Wait(m.ID, "ready for cutover", 60*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	// Nothing to release before cutover.
	if st, v := call("POST", "/release-source"); st != 409 {
		t.Fatalf("release-source before cutover: %d %v", st, v)
	}
	st, v := call("POST", "/cutover")
	c, _ := v["cutover"].(map[string]any)
	if st != 200 || c == nil || c["requestedAt"] == nil || !strings.Contains(fmt.Sprint(c["notes"]), "CLIENT PAUSE WRITE for 240 s") {
		t.Fatalf("cutover answer: %d %v", st, v)
	}
	e.Wait(m.ID, "completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	_, v = call("GET", "")
	c, _ = v["cutover"].(map[string]any)
	until, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(c["sourceBlockedUntil"]))
	blocked, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(c["sourceBlockedAt"]))
	if c["sourceWriteBlock"] != "client_pause_write" || c["sourceState"] != "write_paused" || until.Sub(blocked) != 240*time.Second ||
		!strings.HasPrefix(fmt.Sprint(c["sourcePosition"]), "offset ") || !strings.HasPrefix(fmt.Sprint(c["drainedPosition"]), "offset ") ||
		!strings.Contains(fmt.Sprint(c["summary"]), "stays write-paused") || c["verification"].(map[string]any)["state"] != "done" {
		t.Fatalf("cutover record after cutover: %v", c)
	}
	// The source is paused: a write waits.
	w := goredis.NewClient(&goredis.Options{Addr: e.Src, MaxRetries: -1})
	defer w.Close()
	tctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = w.Set(tctx, "after:cutover", 1, 0).Err()
	cancel()
	if err == nil {
		t.Fatal("a write to the source succeeded after cutover: the source is not paused")
	}
	st, v = call("POST", "/release-source")
	c, _ = v["cutover"].(map[string]any)
	if st != 200 || c["sourceState"] != "writable" || c["sourceReleasedAt"] == nil || !strings.Contains(fmt.Sprint(c["summary"]), "lifted") {
		t.Fatalf("release-source: %d %v", st, v)
	}
	w2 := goredis.NewClient(&goredis.Options{Addr: e.Src})
	defer w2.Close()
	tctx, cancel = context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := w2.Set(tctx, "after:release", 1, 0).Err(); err != nil {
		t.Fatalf("a write after release-source: %v", err)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	t.Logf("cutover record: %s", b)
}

// TestReleaseSourceAfterCutover: with options.releaseSourceAfterCutover the
// agent lifts the pause itself when the job completes.
func TestReleaseSourceAfterCutover(t *testing.T) {
	e := redistest.NewEnv(t)
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		e.SrcC.Set(ctx, fmt.Sprintf("k:%d", i), i, 0)
	}
	m := e.Create(ferry.Modes{Full: true, Incremental: true, Verify: true}, ferry.Options{ReleaseSourceAfterCutover: true})
	e.Agent("agent-1")
	e.Wait(m.ID, "ready for cutover", 60*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	cm, err := e.Svc.CutoverMigration(e.Ctx, e.Proj.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(cm.Cutover.Notes, " "), "lifts the pause when the job completes") {
		t.Fatalf("cutover answer notes: %v", cm.Cutover.Notes)
	}
	m = e.Wait(m.ID, "completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	c := m.Cutover
	if c == nil || c.SourceBlockedAt == nil || c.SourceReleasedAt == nil || c.SourceState(time.Now()) != ferry.SourceWritable ||
		c.Verification == nil || c.Verification.State != ferry.StepDone || c.Verification.Checked != 50 {
		t.Fatalf("cutover record %+v", c)
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := e.SrcC.Set(tctx, "after", 1, 0).Err(); err != nil {
		t.Fatalf("a write after the job completed: %v", err)
	}
}
