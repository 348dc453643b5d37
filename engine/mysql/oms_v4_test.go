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

// TestOMSV4ProjectEndToEnd drives a migration project through the OMS V4
// OpenAPI (POST /api/v2?Action=...) with plain HTTP, as the V4 docs
// describe it, against real MariaDB servers: CreateProject from registered
// endpoints with an ORG key (no ferry project named anywhere),
// StartProject, DescribeProjectProgress until the data has moved and
// incremental sync runs with a fresh checkpoint, StopProject and
// ResumeProject while a writer runs, cutover, FINISHED, target equals
// source.
func TestOMSV4ProjectEndToEnd(t *testing.T) {
	e := newEnv(t)
	seed(t, e.srcDB, 5000)
	org, err := e.svc.CreateOrg(e.ctx, "oms-v4-org")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := e.svc.CreateProject(e.ctx, org.ID, "oms-v4")
	if err != nil {
		t.Fatal(err)
	}
	key, priv, err := e.svc.CreateAPIKey(e.ctx, org.ID, "", ferry.RoleOrgOwner, "oms v4 test")
	if err != nil {
		t.Fatal(err)
	}
	src, sink := endpoint(e.src), endpoint(e.dst)
	src.ProjectID, src.Name = proj.ID, "src"
	sink.ProjectID, sink.Name = proj.ID, "sink"
	for _, ep := range []*ferry.Endpoint{&src, &sink} {
		if err := e.svc.CreateEndpoint(e.ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(oms.New(e.svc, httpauth.New(e.svc), logger(t)))
	t.Cleanup(srv.Close)
	call := func(action string, body any) any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", srv.URL+"/api/v2?Action="+action, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(key.PublicKey, priv)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil || res.StatusCode != 200 || out["success"] != true || out["code"] != nil {
			t.Fatalf("%s: %d %s", action, res.StatusCode, raw)
		}
		return out["data"]
	}

	created := call("CreateProject", map[string]any{
		"name": "shop-to-mariadb", "type": "MIGRATION",
		"sourceEndpointId": src.ID, "sinkEndpointId": sink.ID,
		"transferMapping":      map[string]any{"mode": "SPECIFIC", "databases": []any{map[string]any{"name": "shop"}}},
		"enableStructTransfer": true, "enableFullTransfer": true, "enableIncrTransfer": true, "enableFullVerify": true,
		"fullTransferConfig": map[string]any{"readWorkerNum": 4, "writeWorkerNum": 4},
	}).(map[string]any)
	id := created["id"].(string)
	progress := func() map[string]any {
		return call("DescribeProjectProgress", map[string]any{"id": id}).(map[string]any)
	}
	if p := progress(); p["status"] != "INIT" || p["projectId"] != id {
		t.Fatalf("before StartProject: %v", p)
	}
	e.agent("oms-v4-agent")
	call("StartProject", map[string]any{"id": id})
	w := startWriter(t, e.srcDB, 7)
	waitProgress := func(what string, cond func(p map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			p := progress()
			if cond(p) {
				return p
			}
			if p["status"] == "FAILED" || time.Now().After(deadline) {
				m, _ := e.store.GetMigration(e.ctx, id)
				b, _ := json.MarshalIndent(m, "", " ")
				t.Fatalf("waiting for %s: progress %v; migration %s", what, p, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	seenFull := false
	p := waitProgress("incremental sync", func(p map[string]any) bool {
		if f, _ := p["fullTransferProgress"].(float64); f > 0 && f < 100 {
			seenFull = true
		}
		cp, _ := p["incrSyncCheckpoint"].(float64)
		return p["status"] == "RUNNING" && p["currentStep"] == "INCR_TRANSFER" && p["structTransferProgress"] == 100.0 &&
			p["fullTransferProgress"] == 100.0 && cp > float64(time.Now().Add(-10*time.Second).Unix())
	})
	t.Logf("V4 progress while syncing (full copy seen in between: %v): %v", seenFull, p)

	// StopProject suspends; ResumeProject continues from the checkpoint.
	call("StopProject", map[string]any{"id": id})
	waitProgress("SUSPEND", func(p map[string]any) bool { return p["status"] == "SUSPEND" })
	call("ResumeProject", map[string]any{"id": id})
	waitProgress("RUNNING again", func(p map[string]any) bool {
		cp, _ := p["incrSyncCheckpoint"].(float64)
		return p["status"] == "RUNNING" && p["currentStep"] == "INCR_TRANSFER" && cp > float64(time.Now().Add(-10*time.Second).Unix())
	})
	w.halt(t)

	steps := call("DescribeProjectSteps", map[string]any{"id": id}).([]any)
	byName := map[string]map[string]any{}
	for _, s := range steps {
		sm := s.(map[string]any)
		byName[sm["name"].(string)] = sm
	}
	if byName["FULL_TRANSFER"]["status"] != "FINISHED" || byName["STRUCT_TRANSFER"]["status"] != "FINISHED" || byName["INCR_TRANSFER"]["status"] != "MONITORING" {
		t.Fatalf("steps %v", steps)
	}
	if n := byName["FULL_TRANSFER"]["stepInfo"].(map[string]any)["processedRecords"].(float64); n < 5000 {
		t.Fatalf("full transfer processed %v records, want at least the 5000 seeded", n)
	}
	if _, err := e.svc.CutoverMigration(e.ctx, proj.ID, id); err != nil {
		t.Fatal(err)
	}
	p = waitProgress("FINISHED", func(p map[string]any) bool { return p["status"] == "FINISHED" })
	t.Logf("V4 progress after cutover: %v", p)
	compareDumps(t, dump(t, e.src, "shop"), dump(t, e.dst, "shop"))
	d := call("DescribeProject", map[string]any{"id": id}).(map[string]any)
	if d["status"] != "FINISHED" || d["sourceConnectInfo"].(map[string]any)["endpointId"] != src.ID {
		t.Fatalf("DescribeProject %v", d)
	}
	list := call("ListProjects", map[string]any{"statuses": []string{"FINISHED"}}).([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != id {
		t.Fatalf("ListProjects FINISHED: %v", list)
	}
	call("ReleaseProject", map[string]any{"id": id})
}
