package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/sqlite"
)

type cancelKey struct{}

// cancelStore is a store whose GetProject acts as a client disconnecting
// mid-query does: the request's context is canceled and the store returns
// the wrapped context error.
type cancelStore struct{ ferry.Store }

func (s cancelStore) GetProject(ctx context.Context, id string) (*ferry.Project, error) {
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
		return nil, fmt.Errorf("sqlite: get project %s: %w", id, ctx.Err())
	}
	return s.Store.GetProject(ctx, id)
}

// TestClientCancelIsNotAnError: a request whose client goes away while it is
// served is answered 499 (in the dialect's body, for the log), logged
// without "internal error" or any error-level record.
func TestClientCancelIsNotAnError(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := ferry.NewService(cancelStore{db}, ferry.NewRegistry(), logger)
	srv, err := New(Config{Service: svc, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, _ := svc.CreateOrg(sys, "o")
	proj, err := svc.CreateProject(sys, org.ID, "p")
	if err != nil {
		t.Fatal(err)
	}
	k, priv, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "")
	if err != nil {
		t.Fatal(err)
	}
	p := proj.ID
	for _, c := range []struct{ dialect, path, field string }{
		{"native", "/api/v1/projects/" + p, "error"},
		{"atlas", "/api/atlas/v2/groups/" + p, "errorCode"},
		{"oms", "/api/omsp/v2/migrations?projectId=" + p, "code"},
		{"dcs", "/v2/" + p + "/migration-tasks", "error_code"},
	} {
		rctx, cancel := context.WithCancel(ctx)
		rctx = context.WithValue(rctx, cancelKey{}, cancel)
		r := httptest.NewRequest("GET", c.path, nil).WithContext(rctx)
		r.SetBasicAuth(k.PublicKey, priv)
		rec := httptest.NewRecorder()
		before := len(logs.String())
		srv.Handler().ServeHTTP(rec, r)
		cancel()
		var body map[string]any
		if rec.Code != 499 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body[c.field] == nil {
			t.Errorf("%s: %d %s, want 499 with %q", c.dialect, rec.Code, rec.Body.String(), c.field)
		}
		if l := logs.String()[before:]; strings.Contains(l, "internal error") || strings.Contains(l, `"level":"ERROR"`) || strings.Contains(l, `"level":"WARN"`) {
			t.Errorf("%s: a canceled request was logged as a fault:\n%s", c.dialect, l)
		}
	}
}
