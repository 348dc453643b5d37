package mysql_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/http/oms"
)

// TestOMSProjectEndToEnd drives a migration project through the OMS dialect
// against real MariaDB servers: create, start, watch the seed's progress
// call show the real steps, percentages and checkpoint, cut over, FINISHED.
// omsCall calls the OMS dialect and returns the decoded wrapper; anything
// but a 200 with success true fails the test.
type omsCall func(method, path string, body any) map[string]any

// newOMS serves the OMS dialect over the env's service for a project of
// its own and returns that project and a client with its API key.
func newOMS(t *testing.T, e *env) (*ferry.Project, omsCall) {
	org, err := e.svc.CreateOrg(e.ctx, "oms-org")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := e.svc.CreateProject(e.ctx, org.ID, "oms")
	if err != nil {
		t.Fatal(err)
	}
	key, priv, err := e.svc.CreateAPIKey(e.ctx, org.ID, proj.ID, ferry.RoleGroupOwner, "oms test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(oms.New(e.svc, httpauth.New(e.svc), logger(t)))
	t.Cleanup(srv.Close)
	return proj, func(method, path string, body any) map[string]any {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		req.SetBasicAuth(key.PublicKey, priv)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil || res.StatusCode != 200 || out["success"] != true {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		return out
	}
}

func TestOMSProjectEndToEnd(t *testing.T) {
	e := newEnv(t)
	seed(t, e.srcDB, 5000)
	proj, call := newOMS(t, e)
	created := call("POST", "/api/omsp/v2/migrations", map[string]any{
		"name": "shop-to-mariadb", "type": "MIGRATION", "importance": "HIGH",
		"source":                map[string]any{"type": "MARIADB", "host": "127.0.0.1", "port": e.src.Port, "userName": "root"},
		"sink":                  map[string]any{"type": "MARIADB", "host": "127.0.0.1", "port": e.dst.Port, "userName": "root"},
		"enableStructMigration": true, "enableFullMigration": true, "enableIncrSync": true, "enableFullVerify": true,
		"transferMapping": map[string]any{"mode": "SPECIFIC", "databases": []any{map[string]any{"name": "shop"}}},
	})
	id, _ := created["data"].(string)
	progress := func() map[string]any {
		return call("GET", "/api/omsp/v2/migrations/"+id+"/progress", nil)["data"].(map[string]any)
	}
	if p := progress(); p["status"] != "INIT" || p["currentStep"] != "PRE_CHECK" {
		t.Fatalf("before start: %v", p)
	}
	e.agent("oms-agent")
	call("POST", "/api/omsp/v2/migrations/"+id+"/start", nil)
	w := startWriter(t, e.srcDB, 3)
	var p map[string]any
	deadline := time.Now().Add(60 * time.Second)
	for {
		p = progress()
		cp, _ := p["incrSyncCheckpoint"].(float64)
		if p["status"] == "RUNNING" && p["currentStep"] == "INCR_SYNC" && p["fullMigrationProgress"] == 100.0 && p["structMigrationProgress"] == 100.0 &&
			cp > float64(time.Now().Add(-10*time.Second).Unix()) {
			break
		}
		if p["status"] == "FAILED" || time.Now().After(deadline) {
			m, _ := e.store.GetMigration(e.ctx, id)
			b, _ := json.MarshalIndent(m, "", " ")
			t.Fatalf("progress %v; migration %s", p, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("OMS progress while syncing: %v", p)
	w.halt(t)
	if _, err := e.svc.CutoverMigration(e.ctx, proj.ID, id); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for p = progress(); p["status"] != "FINISHED"; p = progress() {
		if p["status"] == "FAILED" || time.Now().After(deadline) {
			m, _ := e.store.GetMigration(e.ctx, id)
			b, _ := json.MarshalIndent(m, "", " ")
			t.Fatalf("progress %v; migration %s", p, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p["fullMigrationProgress"] != 100.0 || p["incrSyncCheckpoint"].(float64) == 0 {
		t.Fatalf("finished: %v", p)
	}
	steps := call("GET", "/api/omsp/v2/migrations/"+id+"/steps", nil)
	t.Logf("OMS progress after cutover: %v", p)
	b, _ := json.Marshal(steps["data"])
	t.Logf("steps: %.1500s", b)
	compareDumps(t, dump(t, e.src, "shop"), dump(t, e.dst, "shop"))
}
