package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/server"
	"github.com/ferrymigrate/ferry/sqlite"
)

// TestBadNamesRefusedByEveryDialect: a name with "..", a slash, a NUL or a
// bidi override is refused by the core on every create path, and each
// dialect answers 400 in its own error body naming the field.
func TestBadNamesRefusedByEveryDialect(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := ferry.NewService(db, ferry.NewRegistry(), nil)
	srv, err := server.New(server.Config{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, _ := svc.CreateOrg(sys, "org")
	proj, _ := svc.CreateProject(sys, org.ID, "proj")
	k, priv, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.CreateEndpoint(sys, &ferry.Endpoint{ProjectID: proj.ID, Name: "Cluster0", Kind: ferry.KindMongoDB, Addrs: []string{"127.0.0.1:27017"}}); err != nil {
		t.Fatal(err)
	}
	bearer, _, err := svc.IssueToken(ctx, k.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	var iam bytes.Buffer
	json.NewEncoder(&iam).Encode(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{"name": k.PublicKey, "password": priv}}},
		"scope":    map[string]any{"project": map[string]any{"id": proj.ID}}}})
	res, err := http.Post(ts.URL+"/v3/auth/tokens", "application/json", &iam)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	dcsToken := res.Header.Get("X-Subject-Token")

	post := func(method, path string, body any, auth func(*http.Request)) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		auth(req)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(out)
	}
	basic := func(r *http.Request) { r.SetBasicAuth(k.PublicKey, priv) }
	tok := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+bearer) }
	dcs := func(r *http.Request) { r.Header.Set("X-Auth-Token", dcsToken) }
	p := proj.ID
	for _, bad := range []string{"e/../../../../X", "..", "a\x00b", "evil\u202Etxt.exe"} {
		for _, tc := range []struct {
			dialect, method, path string
			body                  any
			auth                  func(*http.Request)
			want                  string // a piece of the dialect's error body
		}{
			{"native endpoint", "POST", "/api/v1/projects/" + p + "/endpoints",
				map[string]any{"name": bad, "kind": "redis", "addrs": []string{"127.0.0.1:6379"}}, basic, `"field":"name","reason":"INVALID_NAME"`},
			{"native endpoint rename", "PATCH", "/api/v1/projects/" + p + "/endpoints/Cluster0",
				map[string]any{"name": bad}, basic, `"field":"name","reason":"INVALID_NAME"`},
			{"native project", "POST", "/api/v1/projects", map[string]any{"name": bad, "orgId": org.ID}, basic, `"field":"name","reason":"INVALID_NAME"`},
			{"native migration", "POST", "/api/v1/projects/" + p + "/migrations",
				map[string]any{"name": bad, "engine": "redis", "source": map[string]any{"kind": "redis", "addrs": []string{"127.0.0.1:1"}},
					"target": map[string]any{"kind": "redis", "addrs": []string{"127.0.0.1:2"}}}, basic, `"field":"name","reason":"INVALID_NAME"`},
			{"atlas pipeline", "POST", "/api/atlas/v2/groups/" + p + "/pipelines",
				map[string]any{"name": bad, "source": map[string]any{"type": "ON_DEMAND_CPS", "clusterName": "Cluster0", "databaseName": "d", "collectionName": "c"},
					"sink": map[string]any{"type": "DLS"}}, tok, `"field":"name"`},
			{"oms migration", "POST", "/api/omsp/v2/migrations",
				map[string]any{"projectId": p, "name": bad, "type": "MIGRATION", "enableFullMigration": true,
					"source": map[string]any{"type": "MYSQL", "host": "127.0.0.1", "port": 3306, "userName": "root"},
					"sink":   map[string]any{"type": "MYSQL", "host": "127.0.0.1", "port": 3307, "userName": "root"}}, basic, `"success":false,"code":"PARAM_ERROR","message":"name: `},
			{"dcs task", "POST", "/v2/" + p + "/migration-task",
				map[string]any{"task_name": bad, "migration_type": "online_migration", "migration_method": "full_amount_migration",
					"source_instance": map[string]any{"addrs": "127.0.0.1:6379"}, "target_instance": map[string]any{"addrs": "127.0.0.1:6380"}}, dcs, `{"error_msg":"name: `},
		} {
			code, body := post(tc.method, tc.path, tc.body, tc.auth)
			if code != 400 || !strings.Contains(body, tc.want) {
				t.Errorf("%s named %q: %d %s, want 400 with %s", tc.dialect, bad, code, body, tc.want)
			}
		}
	}
	if eps, _ := svc.ListEndpoints(sys, p); len(eps) != 1 {
		t.Errorf("%d endpoints stored, want only Cluster0", len(eps))
	}
}
