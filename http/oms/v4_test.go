package oms

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

var (
	v4WrapperKeys  = []string{"success", "errorDetail", "code", "message", "advice", "requestId", "pageNumber", "pageSize", "totalCount", "cost", "data"}
	v4ProgressKeys = []string{"projectId", "status", "alarmLevel", "enableIncrSync", "currentStep", "incrSyncCheckpoint", "enableStructTransfer",
		"enableFullTransfer", "structTransferProgress", "fullTransferProgress", "enableReverseIncrTransfer", "reverseIncrTransferCheckpoint"}
)

// v4 calls POST /api/v2?Action=action (plus extra query) with body.
func (e *env) v4(action, query string, k key, body any) resp {
	e.t.Helper()
	path := V4Path + "?Action=" + action
	if query != "" {
		path += "&" + query
	}
	return e.do("POST", path, k, body)
}

func assertV4Success(t *testing.T, r resp, paged bool) any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	assertKeys(t, r.body, v4WrapperKeys...)
	b := r.body
	if b["success"] != true || b["errorDetail"] != nil || b["code"] != nil || b["message"] != nil || b["advice"] != nil {
		t.Fatalf("V4 success wrapper: %s", r.raw)
	}
	if id, _ := b["requestId"].(string); !uuidRE.MatchString(id) {
		t.Fatalf("requestId %q", b["requestId"])
	}
	if c, _ := b["cost"].(string); !costRE.MatchString(c) {
		t.Fatalf("cost %q", b["cost"])
	}
	if !paged && (b["pageNumber"] != nil || b["pageSize"] != nil || b["totalCount"] != nil) {
		t.Fatalf("page fields of a non-list answer: %s", r.raw)
	}
	return b["data"]
}

func assertV4Error(t *testing.T, r resp, status int, code, detailCode, msgPart string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	assertKeys(t, r.body, v4WrapperKeys...)
	b := r.body
	msg, _ := b["message"].(string)
	if b["success"] != false || b["code"] != code || b["data"] != nil || !strings.Contains(msg, msgPart) {
		t.Fatalf("V4 error wrapper (want code %s, message with %q): %s", code, msgPart, r.raw)
	}
	d, ok := b["errorDetail"].(map[string]any)
	if !ok || d["code"] != detailCode || d["level"] != "ERROR" || d["message"] != msg {
		t.Fatalf("errorDetail (want %s): %s", detailCode, r.raw)
	}
	if _, ok := b["advice"].(string); !ok {
		t.Fatalf("advice is not a string: %s", r.raw)
	}
}

// registerMySQL registers a MySQL endpoint in project and returns its id.
func (e *env) registerMySQL(projectID, name string) string {
	e.t.Helper()
	ep := &ferry.Endpoint{ProjectID: projectID, Name: name, Kind: ferry.KindMySQL, Addrs: []string{"10.0.0.9:3306"}, Username: "root", Password: srcPassword}
	if err := e.svc.CreateEndpoint(ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal), ep); err != nil {
		e.t.Fatal(err)
	}
	return ep.ID
}

func v4CreateBody(src, sink, name string) map[string]any {
	return map[string]any{
		"name": name, "type": "MIGRATION", "labelIds": []string{"l_1"},
		"sourceEndpointId": src, "sinkEndpointId": sink,
		"transferMapping": map[string]any{"mode": "SPECIFIC",
			"databases": []any{map[string]any{"name": "shop", "mappedName": "shop2", "tables": []any{map[string]any{"name": "orders", "mappedName": "orders2"}}}}},
		"commonTransferConfig": map[string]any{"tableCategory": "ALL"},
		"enableStructTransfer": true, "structTransferConfig": map[string]any{"deferIndexCreation": false},
		"enableFullTransfer": true, "enableFullVerify": true,
		"fullTransferConfig": map[string]any{"readWorkerNum": 4, "writeWorkerNum": 6, "allowDestTableNotEmpty": true, "fullTransferSpeedMode": "NORMAL"},
		"enableIncrTransfer": true, "enableReverseIncrTransfer": false,
		"incrTransferConfig": map[string]any{"recordTypeWhiteList": []string{"INSERT", "UPDATE", "DELETE"}, "incrSyncConcurrency": 2},
	}
}

// TestV4EveryAction drives every served V4 action by plain HTTP as the OMS
// V4 docs describe them, with an ORG key that never names a ferry project.
func TestV4EveryAction(t *testing.T) {
	e := newEnv(t, ferry.KindMySQL)
	src, sink := e.registerMySQL(e.projA.ID, "src"), e.registerMySQL(e.projA.ID, "sink")

	// CreateProject: the tenant comes from the registered endpoint.
	data := assertV4Success(t, e.v4("CreateProject", "", e.orgOwner, v4CreateBody(src, sink, "orders-v4")), false)
	id, _ := data.(map[string]any)["id"].(string)
	if !ferry.ValidID(id) {
		t.Fatalf("CreateProject data %v", data)
	}
	m, err := e.store.GetMigration(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.ProjectID != e.projA.ID || m.Source.ID != src || m.Target.ID != sink || !m.Modes.Schema || !m.Modes.Full || !m.Modes.Verify || !m.Modes.Incremental ||
		m.Modes.ReverseIncremental || m.Options.Parallelism != 6 || m.Options.Conflict != ferry.ConflictReplace ||
		m.Options.Filters.Renames["shop.orders"] != "shop2.orders2" || len(m.Options.Filters.IncludeTables) != 1 || m.State != ferry.StateCreated {
		t.Fatalf("job from CreateProject: %+v", m)
	}

	// DescribeProjectProgress: V4's fields, field for field.
	p := assertV4Success(t, e.v4("DescribeProjectProgress", "", e.orgOwner, map[string]any{"id": id}), false)
	assertKeys(t, p, v4ProgressKeys...)
	pm := p.(map[string]any)
	if pm["projectId"] != id || pm["status"] != "INIT" || pm["alarmLevel"] != "MEDIUM" || pm["currentStep"] != "PRE_CHECK" ||
		pm["enableStructTransfer"] != true || pm["enableFullTransfer"] != true || pm["enableIncrSync"] != true || pm["enableReverseIncrTransfer"] != false ||
		pm["structTransferProgress"] != 0.0 || pm["fullTransferProgress"] != 0.0 {
		t.Fatalf("progress %v", pm)
	}
	// Progress reflects the steps as the job runs.
	cp := time.Now().Add(-3 * time.Second).UTC().Truncate(time.Second)
	e.update(id, func(m *ferry.Migration) {
		m.State, m.CurrentStep = ferry.StateRunning, ferry.StepIncremental
		m.Step(ferry.StepSchema).Progress, m.Step(ferry.StepSchema).State = 100, ferry.StepDone
		m.Step(ferry.StepFull).Progress, m.Step(ferry.StepFull).State = 100, ferry.StepDone
		m.Step(ferry.StepIncremental).State, m.Step(ferry.StepIncremental).CheckpointTime = ferry.StepRunning, &cp
	})
	pm = assertV4Success(t, e.v4("DescribeProjectProgress", "", e.orgRead, map[string]any{"id": id}), false).(map[string]any)
	if pm["status"] != "RUNNING" || pm["currentStep"] != "INCR_TRANSFER" || pm["structTransferProgress"] != 100.0 || pm["fullTransferProgress"] != 100.0 ||
		pm["incrSyncCheckpoint"] != float64(cp.Unix()) {
		t.Fatalf("running progress %v", pm)
	}

	// DescribeProjectSteps and DescribeProject.
	steps := assertV4Success(t, e.v4("DescribeProjectSteps", "", e.orgOwner, map[string]any{"id": id}), false).([]any)
	var names []string
	for _, s := range steps {
		sm := s.(map[string]any)
		assertKeys(t, sm, "order", "name", "description", "status", "extraInfo", "startTime", "finishTime", "progress", "stepInfo")
		names = append(names, sm["name"].(string)+"="+sm["status"].(string))
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "PRE_CHECK=") || !strings.Contains(got, "STRUCT_TRANSFER=FINISHED") ||
		!strings.Contains(got, "FULL_TRANSFER=FINISHED") || !strings.Contains(got, "INCR_TRANSFER=MONITORING") || !strings.Contains(got, "FULL_VERIFIER=") {
		t.Fatalf("steps %s", got)
	}
	d := assertV4Success(t, e.v4("DescribeProject", "", e.orgOwner, map[string]any{"id": id}), false).(map[string]any)
	if d["id"] != id || d["name"] != "orders-v4" || d["type"] != "MIGRATION" || d["status"] != "RUNNING" || d["enableFullVerify"] != true ||
		d["enableIncrTransfer"] != true || len(d["steps"].([]any)) != len(steps) || d["labels"].([]any)[0].(map[string]any)["id"] != "l_1" {
		t.Fatalf("DescribeProject %v", d)
	}
	if tm := d["transferMapping"].(map[string]any); tm["mode"] != "SPECIFIC" {
		t.Fatalf("transferMapping echo %v", tm)
	}
	if si := d["sourceConnectInfo"].(map[string]any); si["endpointId"] != src || si["endpointSide"] != "SOURCE" || si["ip"] != "10.0.0.9" || si["port"] != 3306.0 {
		t.Fatalf("sourceConnectInfo %v", si)
	}

	// Stop, Resume, Release, Delete: data null, state changes.
	state := func() ferry.State {
		m, err := e.store.GetMigration(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return m.State
	}
	if data := assertV4Success(t, e.v4("StopProject", "", e.orgOwner, map[string]any{"id": id}), false); data != nil || state() != ferry.StatePaused {
		t.Fatalf("StopProject: %v %s", data, state())
	}
	assertV4Success(t, e.v4("ResumeProject", "", e.orgOwner, map[string]any{"id": id}), false)
	if state() != ferry.StateRunning {
		t.Fatalf("after ResumeProject: %s", state())
	}
	assertV4Error(t, e.v4("DeleteProject", "", e.orgOwner, map[string]any{"id": id}), 409, CodeConflict, "MIGRATION_RUNNING", "stop or release it")
	assertV4Success(t, e.v4("ReleaseProject", "", e.orgOwner, map[string]any{"id": id}), false)
	if s := state(); s != ferry.StateReleased && s != ferry.StateReleasing {
		t.Fatalf("after ReleaseProject: %s", s)
	}
	if state() == ferry.StateReleasing {
		e.update(id, func(m *ferry.Migration) { m.State = ferry.StateReleased })
	}
	assertV4Success(t, e.v4("DeleteProject", "", e.orgOwner, map[string]any{"id": id}), false)
	assertV4Error(t, e.v4("DescribeProject", "", e.orgOwner, map[string]any{"id": id}), 404, CodeNotFound, "MIGRATION_NOT_FOUND", "no migration with id "+id)

	// StartProject on a new project (a GROUP key: its own project).
	data = assertV4Success(t, e.v4("CreateProject", "", e.groupA, v4CreateBody(src, sink, "second")), false)
	id2 := data.(map[string]any)["id"].(string)
	assertV4Success(t, e.v4("StartProject", "", e.groupA, map[string]any{"id": id2}), false)
	if m, _ := e.store.GetMigration(context.Background(), id2); m.State != ferry.StateRunning {
		t.Fatalf("after StartProject: %s", m.State)
	}
	// Read-only and foreign keys.
	assertV4Error(t, e.v4("StopProject", "", e.groupReadA, map[string]any{"id": id2}), 403, CodeForbidden, "INSUFFICIENT_ROLE", "cannot do this")
	assertV4Error(t, e.v4("DescribeProject", "", e.otherOrg, map[string]any{"id": id2}), 404, CodeNotFound, "MIGRATION_NOT_FOUND", "no migration with id")
	assertV4Error(t, e.v4("CreateProject", "", e.otherOrg, v4CreateBody(src, sink, "x")), 404, CodeNotFound, "ENDPOINT_NOT_FOUND", "no endpoint")
	e.assertNoSecret(srcPassword)
}

// TestV4BadRequests: wrong fields, wrong values, wrong Action, wrong method.
func TestV4BadRequests(t *testing.T) {
	e := newEnv(t, ferry.KindMySQL)
	src, sink := e.registerMySQL(e.projA.ID, "src"), e.registerMySQL(e.projA.ID, "sink")
	with := func(mut func(b map[string]any)) map[string]any {
		b := v4CreateBody(src, sink, "bad")
		mut(b)
		return b
	}
	cases := []struct {
		name, action string
		body         any
		status       int
		code, detail string
		msg          string
	}{
		{"unknown top-level field", "CreateProject", with(func(b map[string]any) { b["enableStructMigration"] = true }), 400, CodeParamError, "UNKNOWN_FIELD", `CreateProject has no field "enableStructMigration"`},
		{"unknown nested field", "CreateProject", with(func(b map[string]any) { b["fullTransferConfig"] = map[string]any{"workers": 3} }), 400, CodeParamError, "UNKNOWN_FIELD", `has no field "workers"`},
		{"V2 progress name", "DescribeProjectProgress", map[string]any{"id": "x", "projectId": "y"}, 400, CodeParamError, "UNKNOWN_FIELD", `DescribeProjectProgress has no field "projectId"`},
		{"wrong type", "CreateProject", with(func(b map[string]any) { b["enableFullTransfer"] = "yes" }), 400, CodeParamError, "INVALID_TYPE", "must be a boolean"},
		{"row filter", "CreateProject", with(func(b map[string]any) {
			b["transferMapping"] = map[string]any{"databases": []any{map[string]any{"name": "shop", "tables": []any{map[string]any{"name": "t", "whereClause": "id>1"}}}}}
		}), 501, CodeNotImplemented, "NOT_SUPPORTED", "transferMapping.databases[0].tables[0].whereClause: a row filter is not supported"},
		{"throttle", "CreateProject", with(func(b map[string]any) { b["fullTransferConfig"] = map[string]any{"throttleRps": 100} }), 501, CodeNotImplemented, "NOT_SUPPORTED", "fullTransferConfig.throttleRps"},
		{"start timestamp", "CreateProject", with(func(b map[string]any) { b["incrTransferConfig"] = map[string]any{"startTimestamp": "1689248064"} }), 501, CodeNotImplemented, "NOT_SUPPORTED", "incrTransferConfig.startTimestamp"},
		{"partial record types", "CreateProject", with(func(b map[string]any) {
			b["incrTransferConfig"] = map[string]any{"recordTypeWhiteList": []string{"INSERT"}}
		}), 501, CodeNotImplemented, "NOT_SUPPORTED", "recordTypeWhiteList"},
		{"sync project", "CreateProject", with(func(b map[string]any) { b["type"] = "SYNC" }), 400, CodeParamError, "UNSUPPORTED_PROJECT_TYPE", "SYNC"},
		{"no endpoints", "CreateProject", map[string]any{"name": "x", "enableFullTransfer": true}, 400, CodeParamError, "", "sourceEndpointId: is required"},
		{"unknown endpoint", "CreateProject", with(func(b map[string]any) { b["sinkEndpointId"] = ferry.NewID() }), 400, CodeParamError, "CLUSTER_NOT_FOUND", "no endpoint named"},
		{"nothing enabled", "CreateProject", with(func(b map[string]any) {
			b["enableStructTransfer"], b["enableFullTransfer"], b["enableIncrTransfer"], b["enableFullVerify"] = false, false, false, false
		}), 400, CodeParamError, "", "enable at least one"},
		{"id missing", "StartProject", map[string]any{}, 400, CodeParamError, "", "id: is required"},
		{"id of nothing", "StartProject", map[string]any{"id": ferry.NewID()}, 404, CodeNotFound, "MIGRATION_NOT_FOUND", "no migration with id"},
		{"id not a string", "DescribeProject", map[string]any{"id": 5}, 400, CodeParamError, "INVALID_TYPE", "id: must be a string"},
		{"malformed JSON", "ListProjects", `{"pageSize":`, 400, CodeParamError, "MALFORMED_JSON", "truncated"},
		{"trailing data", "ListProjects", `{} {}`, 400, CodeParamError, "MALFORMED_JSON", "unexpected data"},
		{"bad page size", "ListProjects", map[string]any{"pageSize": 1000}, 400, CodeParamError, "", "pageSize: must be between 1 and 100"},
		{"bad status", "ListProjects", map[string]any{"statuses": []string{"WORKING"}}, 400, CodeParamError, "", `statuses[0]: unknown status "WORKING"`},
		{"bad order", "ListProjects", map[string]any{"order": "up"}, 400, CodeParamError, "", "order: must be asc or desc"},
		{"unknown Action", "DescribeProjectMetrics", map[string]any{"id": "x"}, 400, CodeParamError, "INVALID_ACTION", `Action: unknown Action "DescribeProjectMetrics"`},
		{"empty Action", "", map[string]any{}, 400, CodeParamError, "INVALID_ACTION", "Action: the query parameter Action is required"},
		{"Action is case-sensitive", "startproject", map[string]any{}, 400, CodeParamError, "INVALID_ACTION", `unknown Action "startproject"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.v4(c.action, "", e.groupA, c.body)
			detail := c.detail
			if detail == "" {
				detail = r.body["errorDetail"].(map[string]any)["code"].(string)
			}
			assertV4Error(t, r, c.status, c.code, detail, c.msg)
		})
	}
	if r := e.v4("Foo", "", e.groupA, map[string]any{}); !strings.Contains(r.body["advice"].(string), "CreateProject, DeleteProject, DescribeProject") {
		t.Fatalf("advice lists the actions: %s", r.raw)
	}
	// Wrong method, no credentials.
	r := e.do("GET", V4Path+"?Action=ListProjects", e.groupA, nil)
	assertV4Error(t, r, 405, CodeMethodNotAllowed, "METHOD_NOT_ALLOWED", "GET is not allowed")
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	assertV4Error(t, e.v4("ListProjects", "", key{}, map[string]any{}), 401, CodeUnauthorized, CodeUnauthorized, "credentials")
	// A text body is refused.
	req, _ := http.NewRequest("POST", e.srv.URL+V4Path+"?Action=ListProjects", strings.NewReader("pageSize=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(e.groupA.pub, e.groupA.priv)
	assertV4Error(t, e.send(req), 400, CodeParamError, "UNSUPPORTED_MEDIA_TYPE", "must be JSON")
	// Nothing was created by any bad call.
	if jobs, _, _ := e.svc.ListVisibleMigrations(ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal), ferry.MigrationFilter{}, ferry.AccessRead); len(jobs) != 0 {
		t.Fatalf("%d jobs after bad calls", len(jobs))
	}
}

// TestV4ListProjectsPages: paging, sorting and filters over every project
// an ORG key can see.
func TestV4ListProjectsPages(t *testing.T) {
	e := newEnv(t, ferry.KindMySQL)
	srcA, sinkA := e.registerMySQL(e.projA.ID, "src"), e.registerMySQL(e.projA.ID, "sink")
	srcB, sinkB := e.registerMySQL(e.projB.ID, "src"), e.registerMySQL(e.projB.ID, "sink")
	var ids []string
	for i := 0; i < 7; i++ {
		src, sink := srcA, sinkA
		if i%2 == 1 {
			src, sink = srcB, sinkB
		}
		d := assertV4Success(t, e.v4("CreateProject", "", e.orgOwner, v4CreateBody(src, sink, fmt.Sprintf("p%d", i))), false)
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	e.update(ids[2], func(m *ferry.Migration) { m.State = ferry.StateRunning })
	list := func(k key, query string, body map[string]any) (names []string, r resp) {
		t.Helper()
		r = e.v4("ListProjects", query, k, body)
		for _, p := range assertV4Success(t, r, true).([]any) {
			names = append(names, p.(map[string]any)["name"].(string))
		}
		return names, r
	}
	pageOf := func(r resp) string {
		return fmt.Sprint(r.body["pageNumber"], "/", r.body["pageSize"], "/", r.body["totalCount"])
	}
	names, r := list(e.orgOwner, "", map[string]any{"pageNumber": 1, "pageSize": 3, "sortField": "name", "order": "asc"})
	if strings.Join(names, ",") != "p0,p1,p2" || pageOf(r) != "1/3/7" {
		t.Fatalf("page 1: %v %s", names, pageOf(r))
	}
	names, r = list(e.orgOwner, "", map[string]any{"pageNumber": 3, "pageSize": 3, "sortField": "name", "order": "asc"})
	if strings.Join(names, ",") != "p6" || pageOf(r) != "3/3/7" {
		t.Fatalf("page 3: %v %s", names, pageOf(r))
	}
	names, r = list(e.orgOwner, "", map[string]any{"pageNumber": 9, "pageSize": 3})
	if len(names) != 0 || pageOf(r) != "9/3/7" {
		t.Fatalf("page past the end: %v %s", names, pageOf(r))
	}
	// Default: newest first, page size 10; an empty body is an empty request.
	names, r = list(e.orgOwner, "", nil)
	if len(names) != 7 || names[0] != "p6" || names[6] != "p0" || pageOf(r) != "1/10/7" {
		t.Fatalf("default list: %v %s", names, pageOf(r))
	}
	// Filters.
	if names, _ = list(e.orgOwner, "", map[string]any{"statuses": []string{"RUNNING"}}); strings.Join(names, ",") != "p2" {
		t.Fatalf("statuses RUNNING: %v", names)
	}
	if names, _ = list(e.orgOwner, "", map[string]any{"searchKey": "P5"}); strings.Join(names, ",") != "p5" {
		t.Fatalf("searchKey: %v", names)
	}
	if names, _ = list(e.orgOwner, "", map[string]any{"types": []string{"SYNC"}}); len(names) != 0 {
		t.Fatalf("SYNC: %v", names)
	}
	if names, _ = list(e.orgOwner, "", map[string]any{"labelIds": []string{"l_1"}, "pageSize": 100}); len(names) != 7 {
		t.Fatalf("labelIds: %v", names)
	}
	if names, _ = list(e.orgOwner, "", map[string]any{"labelIds": []string{"l_2"}}); len(names) != 0 {
		t.Fatalf("labelIds l_2: %v", names)
	}
	// A GROUP key sees its project only; ?projectId= narrows an ORG key.
	if names, _ = list(e.groupA, "", map[string]any{"sortField": "name", "order": "asc"}); strings.Join(names, ",") != "p0,p2,p4,p6" {
		t.Fatalf("group A: %v", names)
	}
	if names, _ = list(e.orgOwner, "projectId="+e.projB.ID, map[string]any{"sortField": "name", "order": "asc"}); strings.Join(names, ",") != "p1,p3,p5" {
		t.Fatalf("projectId B: %v", names)
	}
	if names, _ = list(e.otherOrg, "", nil); len(names) != 0 {
		t.Fatalf("another org: %v", names)
	}
	// Connect infos only on request.
	_, r = list(e.orgOwner, "", map[string]any{"pageSize": 1, "needRelatedInfo": true})
	if p := r.body["data"].([]any)[0].(map[string]any); p["sourceConnectInfo"] == nil {
		t.Fatalf("needRelatedInfo: %s", r.raw)
	}
	_, r = list(e.orgOwner, "", map[string]any{"pageSize": 1})
	if p := r.body["data"].([]any)[0].(map[string]any); p["sourceConnectInfo"] != nil {
		t.Fatalf("without needRelatedInfo: %s", r.raw)
	}
	e.assertNoSecret(srcPassword)
}
