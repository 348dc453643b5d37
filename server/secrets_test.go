package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/server"
	"github.com/ferrymigrate/ferry/sqlite"
)

// TestNoAnswerHasAPassword: endpoints and jobs whose passwords sit in the
// password field and inside connection strings (options.uri) are read
// through every dialect (native, Atlas, OMS, DCS) with a read-only key;
// no answer and no log line holds a password.
func TestNoAnswerHasAPassword(t *testing.T) {
	const (
		pwField = "FieldPw-9f3a1c"
		pwURI   = "UriPw-77b2e0"
		pwDSN   = "DsnPw-c0ffee"
	)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	box, err := ferry.NewAESBox([]byte(ferry.RandomHex(16)))
	if err != nil {
		t.Fatal(err)
	}
	st := ferry.SealStore(db, box)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := ferry.NewService(st, ferry.NewRegistry(), logger)
	srv, err := server.New(server.Config{Service: svc, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "org")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := svc.CreateProject(sys, org.ID, "proj")
	if err != nil {
		t.Fatal(err)
	}
	ro, roPriv, err := svc.CreateAPIKey(sys, org.ID, proj.ID, ferry.RoleGroupReadOnly, "read only")
	if err != nil {
		t.Fatal(err)
	}
	uri := "mongodb://admin:" + pwURI + "@127.0.0.1:27017,127.0.0.2:27017/admin?replicaSet=rs0&tlsCertificateKeyFilePassword=" + pwURI
	eps := []*ferry.Endpoint{
		{Name: "mongo", Kind: ferry.KindMongoDB, Addrs: []string{"127.0.0.1:27017"}, Username: "admin", Password: pwField, Options: map[string]string{"uri": uri}},
		{Name: "mysql", Kind: ferry.KindMySQL, Addrs: []string{"127.0.0.1:3306"}, Username: "root", Password: pwField, Options: map[string]string{"dsn": "root:" + pwDSN + "@tcp(127.0.0.1:3306)/shop"}},
		{Name: "redis", Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:6379"}, Password: pwField, Options: map[string]string{"url": "redis://:" + pwURI + "@127.0.0.1:6379/0"}},
	}
	for _, e := range eps {
		e.ProjectID = proj.ID
		if err := svc.CreateEndpoint(sys, e); err != nil {
			t.Fatal(err)
		}
	}
	// One job per dialect, stored as its dialect creates it (no engine runs here).
	now := time.Now().UTC()
	var ids []string
	for _, j := range []struct {
		dialect string
		ep      *ferry.Endpoint
	}{{"atlas", eps[0]}, {"oms", eps[1]}, {"dcs", eps[2]}, {"native", eps[0]}} {
		m := &ferry.Migration{ID: ferry.NewID(), ProjectID: proj.ID, Name: "job-" + j.dialect, Engine: j.ep.Kind, Dialect: j.dialect,
			Source: *j.ep, Target: *j.ep, Modes: ferry.Modes{Full: true}, State: ferry.StateRunning, CreatedAt: now, UpdatedAt: now,
			Options: ferry.Options{Extra: map[string]string{"backup_s3_secret_key": pwField}}}
		m.InitSteps()
		m.CurrentStep = m.Steps[0].Name
		if err := st.CreateMigration(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}

	get := func(path string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	check := func(what string, code int, body string) {
		t.Helper()
		for _, pw := range []string{pwField, pwURI, pwDSN} {
			if strings.Contains(body, pw) {
				t.Errorf("%s (%d) answers a password: %s", what, code, body)
			}
		}
		if code != 200 {
			t.Logf("%s: %d %.200s", what, code, body)
		}
	}
	p := proj.ID
	answered := map[string]int{} // dialect: 200 answers
	sweep := func(pub, priv string) {
		t.Helper()
		basic := func(dialect, path string) {
			t.Helper()
			req, _ := http.NewRequest("GET", ts.URL+path, nil)
			req.SetBasicAuth(pub, priv)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			check(path, res.StatusCode, string(b))
			if res.StatusCode == 200 {
				answered[dialect]++
			}
		}
		basic("native", "/api/v1/projects/"+p+"/endpoints")
		basic("native", "/api/v1/projects/"+p+"/migrations")
		basic("oms", "/api/omsp/v2/migrations?projectId="+p)
		for _, e := range eps {
			basic("native", "/api/v1/projects/"+p+"/endpoints/"+e.Name)
		}
		for _, id := range ids {
			basic("native", "/api/v1/projects/"+p+"/migrations/"+id)
			basic("oms", "/api/omsp/v2/migrations/"+id+"?projectId="+p)
			basic("oms", "/api/omsp/v2/migrations/"+id+"/progress?projectId="+p)
			basic("oms", "/api/omsp/v2/migrations/"+id+"/steps?projectId="+p)
		}
		// Atlas: a bearer token (its keys speak Digest).
		tok, _, err := svc.IssueToken(ctx, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/api/atlas/v2/groups/" + p, "/api/atlas/v2/groups/" + p + "/liveMigrations"} {
			code, body := get(path, map[string]string{"Authorization": "Bearer " + tok})
			check("atlas "+path, code, body)
		}
		for _, id := range ids {
			code, body := get("/api/atlas/v2/groups/"+p+"/liveMigrations/"+id, map[string]string{"Authorization": "Bearer " + tok})
			check("atlas liveMigration "+id, code, body)
			if code == 200 {
				answered["atlas"]++
			}
		}
		// DCS: an IAM token.
		var iam bytes.Buffer
		json.NewEncoder(&iam).Encode(map[string]any{"auth": map[string]any{
			"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{"name": pub, "password": priv}}},
			"scope":    map[string]any{"project": map[string]any{"id": p}}}})
		res, err := http.Post(ts.URL+"/v3/auth/tokens", "application/json", &iam)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		dcsTok := res.Header.Get("X-Subject-Token")
		if dcsTok == "" {
			t.Fatalf("no DCS token: %d", res.StatusCode)
		}
		dcsPaths := []string{"/v2/" + p + "/migration-tasks"}
		for _, id := range ids {
			dcsPaths = append(dcsPaths, "/v2/"+p+"/migration-task/"+id, "/v2/"+p+"/migration-task/"+id+"/stats")
		}
		for _, path := range dcsPaths {
			code, body := get(path, map[string]string{"X-Auth-Token": dcsTok})
			check("dcs "+path, code, body)
			if code == 200 && strings.Contains(path, "/migration-task/") {
				answered["dcs"]++
			}
		}
	}
	sweep(ro.PublicKey, roPriv)
	owner, ownerPriv, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "owner")
	if err != nil {
		t.Fatal(err)
	}
	sweep(owner.PublicKey, ownerPriv)
	// Each dialect showed its job (not only errors).
	for _, d := range []string{"native", "atlas", "oms", "dcs"} {
		if answered[d] == 0 {
			t.Errorf("no %s view of a job answered 200: the check saw only errors", d)
		}
	}
	for _, pw := range []string{pwField, pwURI, pwDSN} {
		if strings.Contains(logs.String(), pw) {
			t.Errorf("the log holds a password: %s", logs.String())
		}
	}
}
