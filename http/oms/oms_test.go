package oms

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

const (
	srcPassword  = "S3cret-src-pw!"
	sinkPassword = "S3cret-sink-pw!"
)

var (
	wrapperKeys = []string{"success", "code", "message", "advice", "requestId", "pageNumber", "pageSize", "totalCount", "cost", "data"}
	errorKeys   = append(append([]string{}, wrapperKeys...), "errorDetail")
	progressKey = []string{"status", "importance", "enableStructMigration", "enableFullMigration", "enableIncrSync", "enableReverseIncrSync",
		"currentStep", "structMigrationProgress", "fullMigrationProgress", "incrSyncCheckpoint", "reverseIncrSyncCheckpoint"}
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	costRE = regexp.MustCompile(`^[0-9]+ ms$`)
)

func createBody(projectID string) map[string]any {
	b := map[string]any{
		"name":                  "orders-to-ob",
		"description":           "orders",
		"type":                  "MIGRATION",
		"importance":            "HIGH",
		"source":                map[string]any{"type": "MYSQL", "host": "10.0.0.1", "port": 3306, "userName": "root", "password": srcPassword, "database": "shop"},
		"sink":                  map[string]any{"type": "OB_MYSQL", "host": "10.0.0.2", "port": 2881, "userName": "admin", "password": sinkPassword},
		"enableStructMigration": true,
		"enableFullMigration":   true,
		"enableIncrSync":        true,
		"enableReverseIncrSync": true,
		"enableFullVerify":      true,
		"transferMapping": map[string]any{
			"mode":      "SPECIFIC",
			"databases": []any{map[string]any{"name": "shop", "mappedName": "shop2", "tables": []any{map[string]any{"name": "orders"}}}},
		},
	}
	if projectID != "" {
		b["projectId"] = projectID
	}
	return b
}

// assertSuccess checks the wrapper of a success answer field by field.
func assertSuccess(t *testing.T, r resp, paged bool) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	assertKeys(t, r.body, wrapperKeys...)
	b := r.body
	if b["success"] != true || b["code"] != "success" || b["message"] != "success" || b["advice"] != "" {
		t.Fatalf("wrapper: %s", r.raw)
	}
	if id, _ := b["requestId"].(string); !uuidRE.MatchString(id) || r.header.Get(RequestIDHeader) != id {
		t.Fatalf("requestId %q, header %q", b["requestId"], r.header.Get(RequestIDHeader))
	}
	if c, _ := b["cost"].(string); !costRE.MatchString(c) {
		t.Fatalf("cost %q", b["cost"])
	}
	if !paged && (b["pageNumber"] != nil || b["pageSize"] != nil || b["totalCount"] != nil) {
		t.Fatalf("page fields of a non-list answer: %s", r.raw)
	}
}

// assertError checks an error answer field by field.
func assertError(t *testing.T, r resp, status int, code, detailCode, msgPart string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	assertKeys(t, r.body, errorKeys...)
	b := r.body
	if b["success"] != false || b["code"] != code || b["data"] != nil || b["pageNumber"] != nil || b["pageSize"] != nil || b["totalCount"] != nil {
		t.Fatalf("wrapper: %s", r.raw)
	}
	msg, _ := b["message"].(string)
	if !strings.Contains(msg, msgPart) {
		t.Fatalf("message %q does not contain %q", msg, msgPart)
	}
	if id, _ := b["requestId"].(string); !uuidRE.MatchString(id) || r.header.Get(RequestIDHeader) != id {
		t.Fatalf("requestId %q, header %q", b["requestId"], r.header.Get(RequestIDHeader))
	}
	if c, _ := b["cost"].(string); !costRE.MatchString(c) {
		t.Fatalf("cost %q", b["cost"])
	}
	d, ok := b["errorDetail"].(map[string]any)
	if !ok || d["code"] != detailCode || d["level"] != "ERROR" || d["message"] != msg {
		t.Fatalf("errorDetail: %s", r.raw)
	}
	if _, ok := b["advice"].(string); !ok {
		t.Fatalf("advice is not a string: %s", r.raw)
	}
}

func (e *env) create(k key, projectID string) string {
	e.t.Helper()
	r := e.do("POST", "/api/omsp/v2/migrations", k, createBody(projectID))
	assertSuccess(e.t, r, false)
	id, _ := r.body["data"].(string)
	if !ferry.ValidID(id) {
		e.t.Fatalf("data = %v, want the new id", r.body["data"])
	}
	return id
}

func (e *env) update(id string, fn func(m *ferry.Migration)) {
	e.t.Helper()
	if _, err := e.store.UpdateMigration(context.Background(), id, func(m *ferry.Migration) error { fn(m); return nil }); err != nil {
		e.t.Fatal(err)
	}
}

func TestCreateWithoutEngineIsParamError(t *testing.T) {
	e := newEnv(t) // no engine registered: the real situation today
	r := e.do("POST", "/api/omsp/v2/migrations", e.groupA, createBody(""))
	assertError(t, r, 400, CodeParamError, "ENGINE_NOT_AVAILABLE", "engine: the mysql migration engine is not built")
	if r.body["advice"] == "" {
		t.Fatalf("advice missing: %s", r.raw)
	}
	if d := r.body["errorDetail"].(map[string]any); d["field"] != "engine" || d["proposal"] != r.body["advice"] {
		t.Fatalf("errorDetail: %s", r.raw)
	}
	e.assertNoSecret(srcPassword)
}

func TestProgressMapsEveryStateAndStep(t *testing.T) {
	e := newEnv(t, ferry.KindMySQL)
	id := e.create(e.groupA, "")
	path := "/api/omsp/v2/migrations/" + id + "/progress"

	// Just created: the seed's own sample (INIT, PRE_CHECK).
	r := e.do("GET", path, e.groupA, nil)
	assertSuccess(t, r, false)
	assertKeys(t, r.body["data"], progressKey...)
	want := map[string]any{"status": "INIT", "importance": "HIGH", "enableStructMigration": true, "enableFullMigration": true,
		"enableIncrSync": true, "enableReverseIncrSync": true, "currentStep": "PRE_CHECK", "structMigrationProgress": 0.0,
		"fullMigrationProgress": 0.0, "incrSyncCheckpoint": 0.0, "reverseIncrSyncCheckpoint": 0.0}
	for k, v := range want {
		if got := r.body["data"].(map[string]any)[k]; got != v {
			t.Fatalf("%s = %#v, want %#v (%s)", k, got, v, r.raw)
		}
	}

	incrAt := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	revAt := time.Date(2026, 11, 2, 8, 30, 0, 0, time.UTC)
	cases := []struct {
		state      ferry.State
		step       ferry.StepName
		wantStatus string
		wantStep   string
	}{
		{ferry.StateCreated, ferry.StepPrecheck, "INIT", "PRE_CHECK"},
		{ferry.StateRunning, ferry.StepPrecheck, "RUNNING", "PRE_CHECK"},
		{ferry.StateRunning, ferry.StepSchema, "RUNNING", "STRUCT_MIGRATION"},
		{ferry.StateRunning, ferry.StepFull, "RUNNING", "FULL_MIGRATION"},
		{ferry.StateRunning, ferry.StepIncremental, "RUNNING", "INCR_SYNC"},
		{ferry.StateCuttingOver, ferry.StepCutover, "RUNNING", "APP_SWITCH"},
		// Full verification is never the current step: the step before it is.
		{ferry.StateRunning, ferry.StepVerify, "RUNNING", "APP_SWITCH"},
		{ferry.StateRunning, ferry.StepReverseIncremental, "RUNNING", "REVERSE_INCR_SYNC"},
		{ferry.StatePaused, ferry.StepFull, "SUSPEND", "FULL_MIGRATION"},
		{ferry.StateFailed, ferry.StepSchema, "FAILED", "STRUCT_MIGRATION"},
		{ferry.StateCompleted, ferry.StepReverseIncremental, "FINISHED", "REVERSE_INCR_SYNC"},
		{ferry.StateExpired, ferry.StepIncremental, "FINISHED", "INCR_SYNC"},
		{ferry.StateReleasing, ferry.StepIncremental, "RELEASING", "INCR_SYNC"},
		{ferry.StateReleased, ferry.StepIncremental, "RELEASED", "INCR_SYNC"},
	}
	for _, c := range cases {
		t.Run(string(c.state)+"/"+string(c.step), func(t *testing.T) {
			e.update(id, func(m *ferry.Migration) {
				m.State, m.CurrentStep = c.state, c.step
				m.Step(ferry.StepSchema).Progress = 42.7
				m.Step(ferry.StepFull).Progress = 99.99
				m.Step(ferry.StepIncremental).CheckpointTime = &incrAt
				m.Step(ferry.StepReverseIncremental).CheckpointTime = &revAt
			})
			r := e.do("GET", path, e.groupA, nil)
			assertSuccess(t, r, false)
			assertKeys(t, r.body["data"], progressKey...)
			d := r.body["data"].(map[string]any)
			if d["status"] != c.wantStatus || d["currentStep"] != c.wantStep {
				t.Fatalf("status %v step %v, want %s %s", d["status"], d["currentStep"], c.wantStatus, c.wantStep)
			}
			if d["structMigrationProgress"] != 42.0 || d["fullMigrationProgress"] != 99.0 {
				t.Fatalf("progress: %s", r.raw)
			}
			if d["incrSyncCheckpoint"] != float64(incrAt.Unix()) || d["reverseIncrSyncCheckpoint"] != float64(revAt.Unix()) {
				t.Fatalf("checkpoints: %s", r.raw)
			}
		})
	}

	// Done steps report 100; a deleted job is gone.
	e.update(id, func(m *ferry.Migration) { m.Step(ferry.StepFull).Progress = 100 })
	if r := e.do("GET", path, e.groupA, nil); r.body["data"].(map[string]any)["fullMigrationProgress"] != 100.0 {
		t.Fatalf("full 100: %s", r.raw)
	}
	e.update(id, func(m *ferry.Migration) { m.State = ferry.StateDeleted })
	assertError(t, e.do("GET", path, e.groupA, nil), 404, CodeNotFound, "MIGRATION_NOT_FOUND", "no migration with id "+id)
	if Status(ferry.StateDeleted) != "DELETED" {
		t.Fatal("deleted must map to DELETED")
	}
	e.assertNoSecret(srcPassword)
	e.assertNoSecret(sinkPassword)
}

func TestDetailAndStepsEchoTheRequestWithoutSecrets(t *testing.T) {
	e := newEnv(t, ferry.KindMySQL)
	id := e.create(e.orgOwner, e.projA.ID)
	r := e.do("GET", "/api/omsp/v2/migrations/"+id+"?projectId="+e.projA.ID, e.orgOwner, nil)
	assertSuccess(t, r, false)
	d := r.body["data"].(map[string]any)
	assertKeys(t, d, "id", "name", "description", "type", "status", "importance", "currentStep", "enableStructMigration",
		"enableFullMigration", "enableIncrSync", "enableReverseIncrSync", "enableFullVerify", "source", "sink", "transferMapping",
		"errorMessage", "gmtCreate", "gmtModified", "gmtStart", "gmtFinish", "steps")
	if d["id"] != id || d["name"] != "orders-to-ob" || d["type"] != "MIGRATION" || d["status"] != "INIT" || d["enableFullVerify"] != true || d["gmtStart"] != nil {
		t.Fatalf("detail: %s", r.raw)
	}
	if ok, _ := regexp.MatchString(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`, d["gmtCreate"].(string)); !ok {
		t.Fatalf("gmtCreate %v", d["gmtCreate"])
	}
	src := d["source"].(map[string]any)
	assertKeys(t, src, "type", "host", "port", "userName", "database", "tls", "endpointId")
	if src["type"] != "MYSQL" || src["host"] != "10.0.0.1" || src["port"] != 3306.0 || src["userName"] != "root" || src["database"] != "shop" {
		t.Fatalf("source: %v", src)
	}
	if sink := d["sink"].(map[string]any); sink["type"] != "OB_MYSQL" || sink["port"] != 2881.0 {
		t.Fatalf("sink: %v", sink)
	}
	tm := d["transferMapping"].(map[string]any)
	if tm["mode"] != "SPECIFIC" || tm["databases"].([]any)[0].(map[string]any)["mappedName"] != "shop2" {
		t.Fatalf("transferMapping: %v", tm)
	}
	// The mapping reached the job's filters.
	m, err := e.store.GetMigration(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(m.Options.Filters.IncludeTables, m.Options.Filters.Renames); got != "[shop.orders] map[shop:shop2 shop.orders:shop2.orders]" {
		t.Fatalf("filters: %s", got)
	}
	if m.Source.Password != srcPassword || m.Target.Password != sinkPassword || m.Source.Addrs[0] != "10.0.0.1:3306" {
		t.Fatal("the job must keep the credentials it was given")
	}

	// Steps.
	startAt := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	doneAt := startAt.Add(time.Minute)
	e.update(id, func(m *ferry.Migration) {
		m.State, m.CurrentStep = ferry.StateRunning, ferry.StepIncremental
		for i := range m.Steps {
			if m.Steps[i].Name == ferry.StepIncremental {
				break
			}
			m.Steps[i].State, m.Steps[i].Progress, m.Steps[i].StartedAt, m.Steps[i].FinishedAt = ferry.StepDone, 100, &startAt, &doneAt
		}
		s := m.Step(ferry.StepFull)
		s.Counters = ferry.Counters{Done: 1000, Total: 1000, Bytes: 4096, BytesTotal: 4096, Errors: 1, RatePerSec: 250.5, Unit: "rows"}
		inc := m.Step(ferry.StepIncremental)
		inc.State, inc.StartedAt, inc.CheckpointTime, inc.Message = ferry.StepRunning, &doneAt, &doneAt, "applying binlog"
		inc.Counters = ferry.Counters{Ops: 77, LagBytes: 12}
	})
	r = e.do("GET", "/api/omsp/v2/migrations/"+id+"/steps", e.groupA, nil)
	assertSuccess(t, r, false)
	steps := r.body["data"].([]any)
	names := []string{}
	for _, s := range steps {
		names = append(names, s.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "PRE_CHECK,STRUCT_MIGRATION,FULL_MIGRATION,INCR_SYNC,APP_SWITCH,FULL_VALIDATION,REVERSE_INCR_SYNC" {
		t.Fatalf("steps: %v", names)
	}
	full := steps[2].(map[string]any)
	assertKeys(t, full, "order", "name", "description", "status", "progress", "startTime", "finishTime", "extraInfo", "stepInfo")
	if full["order"] != 3.0 || full["status"] != "FINISHED" || full["progress"] != 100.0 || full["startTime"] != "2026-11-01T10:00:00" || full["finishTime"] != "2026-11-01T10:01:00" {
		t.Fatalf("full step: %v", full)
	}
	si := full["stepInfo"].(map[string]any)
	assertKeys(t, si, "processedRecords", "capacity", "transferredBytes", "totalBytes", "appliedChanges", "failedRecords", "inconsistencies",
		"missingRecords", "redundantRecords", "dstRps", "lagBytes", "unit", "incrTimestampCheckpoint")
	if si["processedRecords"] != 1000.0 || si["capacity"] != 1000.0 || si["transferredBytes"] != 4096.0 || si["failedRecords"] != 1.0 || si["dstRps"] != 250.5 || si["unit"] != "rows" {
		t.Fatalf("stepInfo: %v", si)
	}
	inc := steps[3].(map[string]any)
	if inc["status"] != "MONITORING" || inc["finishTime"] != nil || inc["stepInfo"].(map[string]any)["appliedChanges"] != 77.0 ||
		inc["stepInfo"].(map[string]any)["incrTimestampCheckpoint"] != float64(doneAt.Unix()) || inc["extraInfo"].(map[string]any)["message"] != "applying binlog" {
		t.Fatalf("incr step: %v", inc)
	}
	if s := steps[4].(map[string]any); s["status"] != "INIT" || s["startTime"] != nil {
		t.Fatalf("cutover step: %v", s)
	}
	// A paused job's running step is SUSPEND; a failed step carries its error.
	e.update(id, func(m *ferry.Migration) { m.State = ferry.StatePaused })
	if s := e.do("GET", "/api/omsp/v2/migrations/"+id+"/steps", e.groupA, nil).body["data"].([]any)[3].(map[string]any); s["status"] != "SUSPEND" {
		t.Fatalf("paused incr step: %v", s)
	}
	e.update(id, func(m *ferry.Migration) {
		m.State, m.Error = ferry.StateFailed, "binlog purged"
		m.Step(ferry.StepIncremental).State, m.Step(ferry.StepIncremental).Message = ferry.StepFailed, ""
	})
	s := e.do("GET", "/api/omsp/v2/migrations/"+id+"/steps", e.groupA, nil).body["data"].([]any)[3].(map[string]any)
	if s["status"] != "FAILED" || s["extraInfo"].(map[string]any)["errorMsg"] != "binlog purged" {
		t.Fatalf("failed step: %v", s)
	}
	e.assertNoSecret(srcPassword)
	e.assertNoSecret(sinkPassword)
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t, ferry.KindMySQL)
	id := e.create(e.groupA, "")
	base := "/api/omsp/v2/migrations/" + id
	status := func() string {
		t.Helper()
		r := e.do("GET", base+"/progress", e.groupA, nil)
		assertSuccess(t, r, false)
		return r.body["data"].(map[string]any)["status"].(string)
	}
	action := func(a string) {
		t.Helper()
		r := e.do("POST", base+"/"+a, e.groupA, nil)
		assertSuccess(t, r, false)
		if r.body["data"] != nil {
			t.Fatalf("%s data: %s", a, r.raw)
		}
	}
	// Stopping a project that never started is a conflict.
	assertError(t, e.do("POST", base+"/stop", e.groupA, nil), 409, CodeConflict, "ILLEGAL_STATE_TRANSITION", "cannot go from created to paused")
	action("start")
	if s := status(); s != "RUNNING" {
		t.Fatalf("after start: %s", s)
	}
	assertError(t, e.do("POST", base+"/start", e.groupA, nil), 409, CodeConflict, "ILLEGAL_STATE_TRANSITION", "only a created or failed migration can be started")
	assertError(t, e.do("DELETE", base, e.groupA, nil), 409, CodeConflict, "MIGRATION_RUNNING", "stop or release it before deleting it")
	action("stop")
	if s := status(); s != "SUSPEND" {
		t.Fatalf("after stop: %s", s)
	}
	action("resume")
	if s := status(); s != "RUNNING" {
		t.Fatalf("after resume: %s", s)
	}
	action("release")
	if s := status(); s != "RELEASED" {
		t.Fatalf("after release: %s", s)
	}
	r := e.do("DELETE", base, e.groupA, nil)
	assertSuccess(t, r, false)
	assertError(t, e.do("GET", base, e.groupA, nil), 404, CodeNotFound, "MIGRATION_NOT_FOUND", "no migration with id")
	e.assertNoSecret(srcPassword)
}

func TestListPages(t *testing.T) {
	e := newEnv(t, ferry.KindMySQL, ferry.KindRedis)
	ids := []string{e.create(e.groupA, ""), e.create(e.groupA, ""), e.create(e.groupA, "")}
	e.create(e.orgOwner, e.projB.ID) // another project
	// A Redis job of the same project is not an OMS project.
	redis := &ferry.Migration{ProjectID: e.projA.ID, Engine: ferry.KindRedis,
		Source: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"h:6379"}}, Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"h:6380"}},
		Modes: ferry.Modes{Full: true}}
	ctx := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	if err := e.svc.CreateMigration(ctx, redis, false); err != nil {
		t.Fatal(err)
	}
	e.update(ids[0], func(m *ferry.Migration) { m.State = ferry.StateRunning })

	r := e.do("GET", "/api/omsp/v2/migrations?pageSize=2&pageNumber=2", e.groupA, nil)
	assertSuccess(t, r, true)
	if r.body["pageNumber"] != 2.0 || r.body["pageSize"] != 2.0 || r.body["totalCount"] != 3.0 {
		t.Fatalf("page: %s", r.raw)
	}
	items := r.body["data"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["id"] != ids[2] {
		t.Fatalf("page 2: %s", r.raw)
	}
	if _, ok := items[0].(map[string]any)["steps"]; ok {
		t.Fatalf("list items carry no steps: %s", r.raw)
	}
	r = e.do("GET", "/api/omsp/v2/migrations", e.groupA, nil)
	if r.body["pageNumber"] != 1.0 || r.body["pageSize"] != float64(DefaultPageSize) || len(r.body["data"].([]any)) != 3 {
		t.Fatalf("defaults: %s", r.raw)
	}
	r = e.do("GET", "/api/omsp/v2/migrations?status=RUNNING,SUSPEND", e.groupA, nil)
	if r.body["totalCount"] != 1.0 || r.body["data"].([]any)[0].(map[string]any)["status"] != "RUNNING" {
		t.Fatalf("status filter: %s", r.raw)
	}
	r = e.do("GET", "/api/omsp/v2/migrations?status=INIT&status=FINISHED", e.groupA, nil)
	if r.body["totalCount"] != 2.0 {
		t.Fatalf("status filter: %s", r.raw)
	}
	assertError(t, e.do("GET", "/api/omsp/v2/migrations?status=BOGUS", e.groupA, nil), 400, CodeParamError, CodeParamError, `status: unknown status "BOGUS"`)
	assertError(t, e.do("GET", "/api/omsp/v2/migrations?pageSize=0", e.groupA, nil), 400, CodeParamError, CodeParamError, "pageSize: must be an integer between 1 and 100")
	assertError(t, e.do("GET", "/api/omsp/v2/migrations?pageNumber=x", e.groupA, nil), 400, CodeParamError, CodeParamError, "pageNumber")
	// The redis job is not reachable by id either.
	assertError(t, e.do("GET", "/api/omsp/v2/migrations/"+redis.ID+"/progress", e.groupA, nil), 404, CodeNotFound, "PROJECT_NOT_FOUND", "no migration project "+redis.ID)
}

func TestTenancyAndAuth(t *testing.T) {
	e := newEnv(t, ferry.KindMySQL)
	idA := e.create(e.groupA, "")
	idB := e.create(e.orgOwner, e.projB.ID)
	prog := func(id string) string { return "/api/omsp/v2/migrations/" + id + "/progress" }

	// OMS's projectId is the migration project's: an ORG key needs no
	// ferry project to read or act on it (the job knows its own).
	r0 := e.do("GET", prog(idA), e.orgOwner, nil)
	assertSuccess(t, r0, false)
	if r0.body["data"].(map[string]any)["status"] != "INIT" {
		t.Fatalf("progress with an ORG key: %s", r0.raw)
	}
	assertSuccess(t, e.do("GET", prog(idB), e.orgRead, nil), false)
	assertSuccess(t, e.do("GET", "/api/omsp/v2/migrations/"+idB+"/steps", e.orgRead, nil), false)
	assertError(t, e.do("GET", prog(idA), e.otherOrg, nil), 404, CodeNotFound, "MIGRATION_NOT_FOUND", "no migration with id "+idA)
	assertError(t, e.do("GET", prog(ferry.NewID()), e.orgOwner, nil), 404, CodeNotFound, "MIGRATION_NOT_FOUND", "no migration with id")
	assertError(t, e.do("POST", "/api/omsp/v2/migrations/"+idA+"/start", e.orgRead, nil), 403, CodeForbidden, "INSUFFICIENT_ROLE", "cannot do this in project")
	// An ORG key naming no project lists every project it can see.
	if l := e.do("GET", "/api/omsp/v2/migrations", e.orgRead, nil); l.status != 200 || l.body["totalCount"] != 2.0 {
		t.Fatalf("ORG list: %s", l.raw)
	}
	if l := e.do("GET", "/api/omsp/v2/migrations", e.otherOrg, nil); l.status != 200 || l.body["totalCount"] != 0.0 {
		t.Fatalf("other org list: %s", l.raw)
	}
	// Creating still needs the ferry project from an ORG key.
	assertError(t, e.do("POST", "/api/omsp/v2/migrations", e.orgOwner, createBody("")), 400, CodeParamError, "PROJECT_REQUIRED", "projectId")
	assertSuccess(t, e.do("GET", prog(idA)+"?projectId="+e.projA.ID, e.orgOwner, nil), false)
	assertSuccess(t, e.do("GET", prog(idA)+"?groupId="+e.projA.ID, e.orgRead, nil), false)
	assertError(t, e.do("GET", prog(idA)+"?projectId=nothex", e.orgOwner, nil), 400, CodeParamError, "INVALID_PROJECT_ID", `projectId: "nothex" is not a valid 24-hex ferry project id`)
	// Naming the wrong project of the same org: not found.
	assertError(t, e.do("GET", prog(idA)+"?projectId="+e.projB.ID, e.orgOwner, nil), 404, CodeNotFound, "MIGRATION_NOT_FOUND", "no migration with id "+idA)
	// A GROUP key of A cannot see B's project, by its own project or by naming B.
	assertError(t, e.do("GET", prog(idB), e.groupA, nil), 404, CodeNotFound, "MIGRATION_NOT_FOUND", "no migration with id "+idB)
	assertError(t, e.do("GET", prog(idB)+"?projectId="+e.projB.ID, e.groupA, nil), 404, CodeNotFound, "GROUP_NOT_FOUND", "no project with id "+e.projB.ID)
	// Another organization's key: 404, never 403.
	assertError(t, e.do("GET", prog(idA)+"?projectId="+e.projA.ID, e.otherOrg, nil), 404, CodeNotFound, "GROUP_NOT_FOUND", "no project with id "+e.projA.ID)
	assertError(t, e.do("POST", "/api/omsp/v2/migrations/"+idA+"/start?projectId="+e.projA.ID, e.otherOrg, nil), 404, CodeNotFound, "GROUP_NOT_FOUND", "no project")
	// Read-only keys read but do not write.
	assertSuccess(t, e.do("GET", prog(idA), e.groupReadA, nil), false)
	assertError(t, e.do("POST", "/api/omsp/v2/migrations/"+idA+"/start", e.groupReadA, nil), 403, CodeForbidden, "INSUFFICIENT_ROLE", "cannot do this in project")
	assertError(t, e.do("POST", "/api/omsp/v2/migrations", e.groupReadA, createBody("")), 403, CodeForbidden, "INSUFFICIENT_ROLE", "cannot do this")
	// No or bad credentials.
	r := e.do("GET", prog(idA), key{}, nil)
	assertError(t, r, 401, CodeUnauthorized, CodeUnauthorized, "credentials are required")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Digest ") {
		t.Fatalf("no Digest challenge: %v", r.header)
	}
	assertError(t, e.do("GET", prog(idA), key{e.groupA.pub, "wrong"}, nil), 401, CodeUnauthorized, CodeUnauthorized, "invalid API key")

	// Digest, as curl --digest does it.
	ch := r.header.Get("WWW-Authenticate")
	nonce := regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(ch)[1]
	uri := prog(idA)
	ha1 := md5hex(e.groupA.pub + ":" + ferry.DigestRealm + ":" + e.groupA.priv)
	ha2 := md5hex("GET:" + uri)
	response := md5hex(ha1 + ":" + nonce + ":00000001:abc:auth:" + ha2)
	req, _ := http.NewRequest("GET", e.srv.URL+uri, nil)
	req.Header.Set("Authorization", fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", qop=auth, nc=00000001, cnonce="abc", response="%s"`, e.groupA.pub, ferry.DigestRealm, nonce, uri, response))
	assertSuccess(t, e.send(req), false)
	// Bearer tokens work too.
	raw, _, err := e.svc.IssueToken(context.Background(), e.groupA.pub, e.groupA.priv)
	if err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("GET", e.srv.URL+uri, nil)
	req.Header.Set("Authorization", "Bearer "+raw)
	assertSuccess(t, e.send(req), false)
	e.assertNoSecret(e.groupA.priv)
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, ferry.KindMySQL)
	post := func(body any) resp { return e.do("POST", "/api/omsp/v2/migrations", e.groupA, body) }
	with := func(mut func(b map[string]any)) map[string]any { b := createBody(""); mut(b); return b }
	cases := []struct {
		name       string
		r          resp
		detailCode string
		msg        string
	}{
		{"malformed", post(`{"name":`), "MALFORMED_JSON", "truncated JSON body"},
		{"syntax", post(`{"name" "x"}`), "MALFORMED_JSON", "malformed JSON at byte"},
		{"not an object", post(`[1,2]`), "MALFORMED_JSON", "must be a JSON object"},
		{"trailing", post(`{"name":"x"} {}`), "MALFORMED_JSON", "unexpected data after the JSON body"},
		{"empty", post(""), "EMPTY_BODY", "a JSON request body is required"},
		{"wrong type", post(with(func(b map[string]any) { b["enableIncrSync"] = "yes" })), "INVALID_TYPE", "enableIncrSync: must be a boolean, not string"},
		{"wrong nested type", post(with(func(b map[string]any) { b["source"].(map[string]any)["port"] = "3306" })), "INVALID_TYPE", "source.port: must be a number, not string"},
		{"unknown source type", post(with(func(b map[string]any) { b["source"].(map[string]any)["type"] = "ORACLE" })), "UNSUPPORTED_DATASOURCE_TYPE", `source.type: unsupported data source type "ORACLE"`},
		{"no name", post(with(func(b map[string]any) { delete(b, "name") })), CodeParamError, "name: is required"},
		{"sync type", post(with(func(b map[string]any) { b["type"] = "SYNC" })), "UNSUPPORTED_PROJECT_TYPE", "type: SYNC"},
		{"bad importance", post(with(func(b map[string]any) { b["importance"] = "URGENT" })), CodeParamError, "importance: must be HIGH, MEDIUM, LOW or IGNORE"},
		{"bad port", post(with(func(b map[string]any) { b["sink"].(map[string]any)["port"] = 70000 })), CodeParamError, "sink.port: must be between 1 and 65535"},
		{"no sink", post(with(func(b map[string]any) { delete(b, "sink") })), CodeParamError, "sink: is required"},
		{"unknown endpoint", post(with(func(b map[string]any) { delete(b, "sink"); b["sinkEndpointId"] = "nope" })), "CLUSTER_NOT_FOUND", `no endpoint named "nope"`},
		{"nothing enabled", post(with(func(b map[string]any) {
			for _, k := range []string{"enableStructMigration", "enableFullMigration", "enableIncrSync", "enableReverseIncrSync", "enableFullVerify"} {
				b[k] = false
			}
		})), CodeParamError, "modes: enable at least one"},
		{"bad mapping mode", post(with(func(b map[string]any) { b["transferMapping"].(map[string]any)["mode"] = "ALL" })), CodeParamError, `transferMapping.mode: unknown mode "ALL"`},
		{"text body", func() resp {
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/omsp/v2/migrations", strings.NewReader("name=x"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(e.groupA.pub, e.groupA.priv)
			return e.send(req)
		}(), "UNSUPPORTED_MEDIA_TYPE", "the body must be JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { assertError(t, c.r, 400, CodeParamError, c.detailCode, c.msg) })
	}
	assertError(t, e.do("GET", "/api/omsp/v2/nothing", e.groupA, nil), 404, CodeNotFound, "NO_SUCH_API", "no OMS API GET /api/omsp/v2/nothing")
	r := e.do("PUT", "/api/omsp/v2/migrations/abc/progress", e.groupA, nil)
	assertError(t, r, 405, CodeMethodNotAllowed, "METHOD_NOT_ALLOWED", "PUT is not allowed")
	if r.header.Get("Allow") != "GET" {
		t.Fatalf("Allow: %q", r.header.Get("Allow"))
	}
	assertError(t, e.do("GET", "/api/omsp/v2/migrations/nothex/progress", e.groupA, nil), 404, CodeNotFound, "MIGRATION_NOT_FOUND", "no migration with id nothex")
	e.assertNoSecret(srcPassword)
	e.assertNoSecret(sinkPassword)
}

func TestRegisteredEndpoints(t *testing.T) {
	e := newEnv(t, ferry.KindMySQL)
	ctx := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	for _, n := range []string{"src-db", "dst-db"} {
		if err := e.svc.CreateEndpoint(ctx, &ferry.Endpoint{ProjectID: e.projA.ID, Name: n, Kind: ferry.KindMySQL, Addrs: []string{n + ":3306"}, Username: "u", Password: "registered-pw"}); err != nil {
			t.Fatal(err)
		}
	}
	b := createBody("")
	delete(b, "source")
	delete(b, "sink")
	b["sourceEndpointId"], b["sinkEndpointId"] = "src-db", "dst-db"
	r := e.do("POST", "/api/omsp/v2/migrations", e.groupA, b)
	assertSuccess(t, r, false)
	d := e.do("GET", "/api/omsp/v2/migrations/"+r.body["data"].(string), e.groupA, nil).body["data"].(map[string]any)
	src := d["source"].(map[string]any)
	if src["host"] != "src-db" || src["port"] != 3306.0 || src["type"] != "MYSQL" || src["endpointId"] == "" {
		t.Fatalf("source: %v", src)
	}
	e.assertNoSecret("registered-pw")
}

func TestStatusCodesOfEveryErrorCode(t *testing.T) {
	cases := map[string][2]any{
		ferry.EINVALID: {400, CodeParamError}, ferry.EUNAUTHORIZED: {401, CodeUnauthorized}, ferry.EFORBIDDEN: {403, CodeForbidden},
		ferry.ENOTFOUND: {404, CodeNotFound}, ferry.ECONFLICT: {409, CodeConflict}, ferry.ERATELIMIT: {429, CodeTooManyRequests},
		ferry.ENOTIMPLEMENTED: {501, CodeNotImplemented}, ferry.EINTERNAL: {500, CodeInnerError}, "something else": {500, CodeInnerError},
	}
	for code, want := range cases {
		if st, c := StatusOf(code); st != want[0] || c != want[1] {
			t.Errorf("%s: %d %s, want %v", code, st, c, want)
		}
	}
}
