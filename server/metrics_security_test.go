package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

// TestMetricsNeedToken: /metrics shows every tenant's jobs, so the API
// listener serves it only with the bearer token; with no token configured it
// is off there; a separate metrics handler serves it (token optional).
func TestMetricsNeedToken(t *testing.T) {
	e := setup(t)
	for _, c := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"no credentials", nil, 401},
		{"wrong token", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"an API key", map[string]string{"Authorization": "Basic " + basic(e.pub, e.priv)}, 401},
		{"the token", map[string]string{"Authorization": "Bearer " + testMetricsToken}, 200},
	} {
		st, hdr, body := e.get(t, "/metrics", c.hdr)
		if st != c.want {
			t.Errorf("%s: %d, want %d", c.name, st, c.want)
		}
		if st == 401 && (strings.Contains(body, e.proj.ID) || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer ")) {
			t.Errorf("%s: 401 %q %q", c.name, hdr.Get("WWW-Authenticate"), body)
		}
	}

	// No token, API listener: off.
	srv, err := New(Config{Service: e.svc})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 401 || strings.Contains(rec.Body.String(), "ferry_") {
		t.Errorf("no token configured: %d %.200s", rec.Code, rec.Body.String())
	}
	// A separate listener: not on the API handler, served by MetricsHandler.
	srv, err = New(Config{Service: e.svc, SeparateMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code == 200 || strings.Contains(rec.Body.String(), "ferry_") {
		t.Errorf("separate metrics: the API handler answered /metrics %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "ferry_store_up 1") {
		t.Errorf("separate metrics handler: %d %.200s", rec.Code, rec.Body.String())
	}
}

// TestMetricsRouteLabelsBounded sends unauthenticated requests to thousands
// of distinct paths under every dialect and outside them: the HTTP series
// stay a handful, labelled by route pattern, never by a path segment.
func TestMetricsRouteLabelsBounded(t *testing.T) {
	e := setup(t)
	h := e.srv.Handler()
	size := func() int {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.Header.Set("Authorization", "Bearer "+testMetricsToken)
		h.ServeHTTP(rec, r)
		return rec.Body.Len()
	}
	before := size()
	paths := []string{
		"/api/v1/projects/%s/migrations", "/api/v1/x%s", "/api/atlas/v2/groups/%s/pipelines/p%s",
		"/api/atlas/v2/nothing/%s", "/api/omsp/v2/migrations/%s/progress", "/api/omsp/v2/zz%s",
		"/v2/%s/migration-tasks", "/v2/%s/anything/%s", "/v3/auth/%s", "/n%s/o", "/%s",
	}
	const n = 5000
	for i := range n {
		seg := fmt.Sprintf("tenant-%d-secret", i)
		p := paths[i%len(paths)]
		path := strings.ReplaceAll(p, "%s", seg)
		for _, m := range []string{"GET", "DELETE"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(m, path, nil))
		}
	}
	after := size()
	t.Logf("/metrics: %d bytes before, %d after %d requests to distinct paths", before, after, 2*n)
	fams := gather(t, e.srv)
	series := fams["ferry_http_requests_total"].GetMetric()
	if len(series) > 60 {
		t.Errorf("%d request series after %d distinct paths", len(series), n)
	}
	for _, m := range series {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "tenant-") {
				t.Fatalf("a path segment became a label: %s=%q", l.GetName(), l.GetValue())
			}
		}
	}
	if after > before+64<<10 {
		t.Errorf("/metrics grew from %d to %d bytes", before, after)
	}
}

// TestMetricsDropEndedJobs: a job that ended more than an hour ago has no
// per-job series any more (it is still counted); one that ended recently
// keeps them.
func TestMetricsDropEndedJobs(t *testing.T) {
	e := setup(t)
	ctx := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	end := func(name string, ago time.Duration) *ferry.Migration {
		m := &ferry.Migration{ProjectID: e.proj.ID, Name: name, Engine: ferry.KindRedis,
			Source: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"10.0.0.1:6379"}},
			Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"10.0.0.2:6379"}},
			Modes:  ferry.Modes{Full: true}}
		if err := e.svc.CreateMigration(ctx, m, false); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-ago)
		if _, err := e.db.UpdateMigration(ctx, m.ID, func(m *ferry.Migration) error {
			m.State, m.FinishedAt = ferry.StateFailed, &at
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	old := end("old-job", 2*time.Hour)
	recent := end("recent-job", 10*time.Minute)
	fams := gather(t, e.srv)
	if _, ok := value(t, fams, "ferry_migration_step_progress_percent", map[string]string{"migration": old.ID}); ok {
		t.Error("a job ended two hours ago still has step series")
	}
	if _, ok := value(t, fams, "ferry_migration_ready_for_cutover", map[string]string{"migration": old.ID}); ok {
		t.Error("a job ended two hours ago still has job series")
	}
	if _, ok := value(t, fams, "ferry_migration_ready_for_cutover", map[string]string{"migration": recent.ID}); !ok {
		t.Error("a job ended ten minutes ago lost its series")
	}
	if got, _ := value(t, fams, "ferry_migrations", map[string]string{"engine": "redis", "state": string(ferry.StateFailed)}); got != 2 {
		t.Errorf("ferry_migrations{failed} = %v, want 2", got)
	}
}
