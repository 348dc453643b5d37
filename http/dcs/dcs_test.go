package dcs

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	dcsmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dcs/v2/model"

	"github.com/ferrymigrate/ferry"
)

const (
	srcPassword = "DCStest123-src"
	dstPassword = "DCStest123-dst"
)

var seedTaskKeys = []string{"task_id", "task_name", "description", "status", "migration_type", "migration_method", "ecs_tenant_private_ip",
	"backup_files", "network_type", "source_instance", "target_instance", "created_at", "updated_at", "released_at", "version",
	"resume_mode", "supported_features", "tenant_vpc_id", "tenant_subnet_id", "tenant_security_group_id", "bandwidth_limit_mb", "task_status"}

var instanceKeys = []string{"addrs", "task_status", "id", "ip", "port", "name", "proxy_multi_db", "db"}

var dcsTimeRE = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d$`)

func onlineBody(method string) map[string]any {
	return map[string]any{
		"task_name":          "migration1",
		"description":        "cache move",
		"migration_type":     "online_migration",
		"migration_method":   method,
		"resume_mode":        "manual",
		"bandwidth_limit_mb": "100",
		"network_type":       "vpc",
		"tenant_vpc_id":      "vpc-1",
		"tenant_subnet_id":   "subnet-1",
		"source_instance":    map[string]any{"addrs": "192.168.1.2:6379", "password": srcPassword, "id": "86157b69-src", "name": "dcs-test", "db": "0"},
		"target_instance":    map[string]any{"addrs": "192.168.1.3:6379,192.168.1.4:6379", "password": dstPassword, "id": "86157b69-dst", "name": "test-instance", "proxy_multi_db": true},
	}
}

func backupBody() map[string]any {
	return map[string]any{
		"task_name":        "import1",
		"migration_type":   "backupfile_import",
		"migration_method": "full_amount_migration",
		"backup_files": map[string]any{"file_source": "self_build_obs", "bucket_name": "my-bucket",
			"files": []any{map[string]any{"file_name": "dump.rdb", "size": 1024, "update_at": "2024-01-02 03:04:05"}}},
		"target_instance": map[string]any{"addrs": "10.0.0.9:6379", "password": dstPassword},
	}
}

// assertError checks a DCS error body field by field.
func assertError(t *testing.T, r resp, status int, code, msgPart string, ext *string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	assertKeys(t, r.body, "error_msg", "error_code", "error_ext_msg")
	if r.body["error_code"] != code {
		t.Fatalf("error_code %v, want %s: %s", r.body["error_code"], code, r.raw)
	}
	if len(code) > 9 {
		t.Fatalf("error_code %q is longer than the seed's 9 characters", code)
	}
	if msg, _ := r.body["error_msg"].(string); !strings.Contains(msg, msgPart) {
		t.Fatalf("error_msg %q does not contain %q", msg, msgPart)
	}
	if ext == nil {
		if r.body["error_ext_msg"] != nil {
			t.Fatalf("error_ext_msg should be null: %s", r.raw)
		}
	} else if r.body["error_ext_msg"] != *ext {
		t.Fatalf("error_ext_msg %v, want %q", r.body["error_ext_msg"], *ext)
	}
}

func str(s string) *string { return &s }

func (e *env) taskPath(projectID string, rest string) string {
	return "/v2/" + projectID + rest
}

func (e *env) create(a auth, projectID string, body map[string]any) string {
	e.t.Helper()
	r := e.do("POST", "/v2/"+projectID+"/migration-task", a, body)
	if r.status != 200 {
		e.t.Fatalf("create: %d %s", r.status, r.raw)
	}
	assertKeys(e.t, r.body, "id", "name", "status")
	id, _ := r.body["id"].(string)
	if !ferry.ValidID(id) || r.body["name"] != body["task_name"] {
		e.t.Fatalf("create answer: %s", r.raw)
	}
	return id
}

func (e *env) update(id string, fn func(m *ferry.Migration)) {
	e.t.Helper()
	if _, err := e.store.UpdateMigration(context.Background(), id, func(m *ferry.Migration) error { fn(m); return nil }); err != nil {
		e.t.Fatal(err)
	}
}

func TestIAMToken(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v3/auth/tokens", auth{}, tokenBody(e.groupA.pub, e.groupA.priv, ""))
	if r.status != 201 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	tok := r.header.Get(SubjectTokenHeader)
	if !strings.HasPrefix(tok, "ferry_") {
		t.Fatalf("X-Subject-Token %q", tok)
	}
	assertKeys(t, r.body, "token")
	tv := r.body["token"].(map[string]any)
	assertKeys(t, tv, "methods", "expires_at", "issued_at", "user", "roles", "project", "catalog")
	issued, err1 := time.Parse(iamTime, tv["issued_at"].(string))
	expires, err2 := time.Parse(iamTime, tv["expires_at"].(string))
	if err1 != nil || err2 != nil || expires.Sub(issued) != e.svc.TokenTTL {
		t.Fatalf("times: %v %v", tv["issued_at"], tv["expires_at"])
	}
	user := tv["user"].(map[string]any)
	if user["name"] != e.groupA.pub || user["domain"].(map[string]any)["id"] != e.org.ID {
		t.Fatalf("user: %v", user)
	}
	if p := tv["project"].(map[string]any); p["id"] != e.projA.ID || p["name"] != "a" {
		t.Fatalf("project: %v", p)
	}
	if roles := tv["roles"].([]any); len(roles) != 1 || roles[0].(map[string]any)["name"] != "GROUP_OWNER" {
		t.Fatalf("roles: %v", roles)
	}
	// The token works as X-Auth-Token.
	r = e.do("GET", "/v2/"+e.projA.ID+"/migration-tasks", auth{token: tok}, nil)
	if r.status != 200 {
		t.Fatalf("with token: %d %s", r.status, r.raw)
	}
	// An ORG key scoped to a project of its org; to a project it cannot see.
	r = e.do("POST", "/v3/auth/tokens", auth{}, tokenBody(e.orgOwner.pub, e.orgOwner.priv, e.projB.ID))
	if r.status != 201 || r.body["token"].(map[string]any)["project"].(map[string]any)["id"] != e.projB.ID {
		t.Fatalf("scoped: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v3/auth/tokens", auth{}, tokenBody(e.orgOwner.pub, e.orgOwner.priv, ""))
	if _, ok := r.body["token"].(map[string]any)["project"]; r.status != 201 || ok {
		t.Fatalf("unscoped org token: %d %s", r.status, r.raw)
	}
	assertError(t, e.do("POST", "/v3/auth/tokens", auth{}, tokenBody(e.otherOrg.pub, e.otherOrg.priv, e.projA.ID)), 404, CodeNotFound, "no project with id", nil)
	assertError(t, e.do("POST", "/v3/auth/tokens", auth{}, tokenBody(e.groupA.pub, "wrong", "")), 401, CodeUnauthorized, "The username or password is wrong.", nil)
	assertError(t, e.do("POST", "/v3/auth/tokens", auth{}, tokenBody("", "", "")), 400, CodeInvalidParam, "auth.identity.password.user: name", nil)
	assertError(t, e.do("POST", "/v3/auth/tokens", auth{}, `{"auth":{"identity":{"methods":["token"]}}}`), 400, CodeInvalidParam, `auth.identity.methods: must contain "password"`, nil)
	assertError(t, e.do("POST", "/v3/auth/tokens", auth{}, tokenBody(e.groupA.pub, e.groupA.priv, "xyz")), 400, CodeInvalidProjectID, "Invalid project ID format", nil)
	assertError(t, e.do("POST", "/v3/auth/tokens", auth{}, `{"auth":`), 400, CodeInvalidParam, "truncated JSON", nil)
	assertError(t, e.do("GET", "/v3/auth/tokens", auth{}, nil), 405, CodeMethodNotAllowed, "GET is not allowed", nil)
	e.assertNoSecret(e.groupA.priv)
	e.assertNoSecret(e.orgOwner.priv)
}

func TestCreateWithoutEngineIsClear400(t *testing.T) {
	e := newEnv(t) // no engine registered: the real situation today
	r := e.do("POST", "/v2/"+e.projA.ID+"/migration-task", e.token(e.groupA), onlineBody("incremental_migration"))
	assertError(t, r, 400, CodeEngineNotBuilt, "engine: the redis migration engine is not built", str("use an engine that is available, or a newer ferry"))
	e.assertNoSecret(srcPassword)
	e.assertNoSecret(dstPassword)
}

func TestShowEverySeedFieldWithoutPasswords(t *testing.T) {
	e := newEnv(t, ferry.KindRedis)
	a := e.token(e.groupA)
	id := e.create(a, e.projA.ID, onlineBody("incremental_migration"))
	r := e.do("GET", "/v2/"+e.projA.ID+"/migration-task/"+id, a, nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	assertKeys(t, r.body, seedTaskKeys...)
	b := r.body
	want := map[string]any{"task_id": id, "task_name": "migration1", "description": "cache move", "status": "FULLMIGRATING",
		"migration_type": "online_migration", "migration_method": "incremental_migration", "ecs_tenant_private_ip": "", "backup_files": nil,
		"network_type": "vpc", "released_at": nil, "version": ferry.Version, "resume_mode": "manual", "tenant_vpc_id": "vpc-1",
		"tenant_subnet_id": "subnet-1", "tenant_security_group_id": "", "bandwidth_limit_mb": "100", "task_status": "FULLMIGRATING"}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("%s = %#v, want %#v", k, b[k], v)
		}
	}
	if f, ok := b["supported_features"].([]any); !ok || len(f) != 1 || f[0] != "exchange_ip" {
		t.Errorf("supported_features: %#v", b["supported_features"])
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if s, _ := b[k].(string); !dcsTimeRE.MatchString(s) {
			t.Errorf("%s = %#v", k, b[k])
		}
	}
	src := b["source_instance"].(map[string]any)
	assertKeys(t, src, instanceKeys...)
	wantSrc := map[string]any{"addrs": "192.168.1.2:6379", "task_status": "RUNNING", "id": "86157b69-src", "ip": "192.168.1.2", "port": "6379", "name": "dcs-test", "proxy_multi_db": false, "db": "0"}
	for k, v := range wantSrc {
		if src[k] != v {
			t.Errorf("source_instance.%s = %#v, want %#v", k, src[k], v)
		}
	}
	dst := b["target_instance"].(map[string]any)
	assertKeys(t, dst, instanceKeys...)
	if dst["addrs"] != "192.168.1.3:6379,192.168.1.4:6379" || dst["ip"] != "192.168.1.3" || dst["proxy_multi_db"] != true || dst["name"] != "test-instance" || dst["db"] != "" {
		t.Errorf("target_instance: %v", dst)
	}
	// The job got the DCS request right.
	m, err := e.store.GetMigration(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != ferry.StateRunning || !m.Modes.Full || !m.Modes.Incremental || m.Options.BandwidthLimitMB != 100 || m.Options.ResumeMode != ferry.ResumeManual ||
		m.Source.Password != srcPassword || m.Target.Password != dstPassword || len(m.Target.Addrs) != 2 || m.Source.Database != "0" || m.Dialect != "dcs" {
		t.Fatalf("job: %+v", m)
	}
	e.assertNoSecret(srcPassword)
	e.assertNoSecret(dstPassword)
}

func TestStatusMapsEveryState(t *testing.T) {
	e := newEnv(t, ferry.KindRedis)
	a := e.token(e.groupA)
	online := e.create(a, e.projA.ID, onlineBody("incremental_migration"))
	backup := e.create(a, e.projA.ID, backupBody())
	releasedAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		id    string
		state ferry.State
		step  ferry.StepName
		want  string
	}{
		{online, ferry.StateCreated, ferry.StepPrecheck, "RUNNING"},
		{online, ferry.StateRunning, ferry.StepPrecheck, "FULLMIGRATING"},
		{online, ferry.StateRunning, ferry.StepFull, "FULLMIGRATING"},
		{online, ferry.StateRunning, ferry.StepIncremental, "INCRMIGEATING"},
		{online, ferry.StateRunning, ferry.StepCutover, "MIGRATING"},
		{online, ferry.StateRunning, ferry.StepVerify, "MIGRATING"},
		{online, ferry.StateCuttingOver, ferry.StepCutover, "MIGRATING"},
		{online, ferry.StatePaused, ferry.StepIncremental, "TERMINATED"},
		{online, ferry.StateExpired, ferry.StepIncremental, "TERMINATED"},
		{online, ferry.StateReleasing, ferry.StepIncremental, "TERMINATING"},
		{online, ferry.StateCompleted, ferry.StepCutover, "SUCCESS"},
		{online, ferry.StateFailed, ferry.StepPrecheck, "FAILED"},
		{online, ferry.StateFailed, ferry.StepFull, "MIGRATION_FAILED"},
		{online, ferry.StateReleased, ferry.StepIncremental, "RELEASED"},
		{backup, ferry.StateRunning, ferry.StepFull, "MIGRATING"},
		{backup, ferry.StateCompleted, ferry.StepFull, "SUCCESS"},
	}
	for _, c := range cases {
		t.Run(string(c.state)+"/"+string(c.step), func(t *testing.T) {
			e.update(c.id, func(m *ferry.Migration) {
				m.State, m.CurrentStep = c.state, c.step
				if c.state == ferry.StateReleased {
					m.ReleasedAt = &releasedAt
				}
			})
			r := e.do("GET", "/v2/"+e.projA.ID+"/migration-task/"+c.id, a, nil)
			if r.status != 200 || r.body["status"] != c.want || r.body["task_status"] != c.want {
				t.Fatalf("status %v, want %s: %s", r.body["status"], c.want, r.raw)
			}
			if c.state == ferry.StateReleased && r.body["released_at"] != "2026/01/02 03:04:05" {
				t.Fatalf("released_at: %v", r.body["released_at"])
			}
			wantInst := "RUNNING"
			if !c.state.Active() {
				wantInst = c.want
			}
			if ti := r.body["target_instance"].(map[string]any); ti["task_status"] != wantInst {
				t.Fatalf("target task_status %v, want %s", ti["task_status"], wantInst)
			}
		})
	}
	if got := Status(&ferry.Migration{State: ferry.StateDeleted}); got != "RELEASED" {
		t.Fatalf("deleted: %s", got)
	}
	e.assertNoSecret(dstPassword)
}

func TestBackupImport(t *testing.T) {
	e := newEnv(t, ferry.KindRedis)
	a := e.token(e.groupA)
	id := e.create(a, e.projA.ID, backupBody())
	r := e.do("GET", "/v2/"+e.projA.ID+"/migration-task/"+id, a, nil)
	assertKeys(t, r.body, seedTaskKeys...)
	if r.body["status"] != "MIGRATING" || r.body["migration_type"] != "backupfile_import" || r.body["migration_method"] != "full_amount_migration" || r.body["source_instance"] != nil || r.body["bandwidth_limit_mb"] != "" {
		t.Fatalf("backup task: %s", r.raw)
	}
	bf := r.body["backup_files"].(map[string]any)
	assertKeys(t, bf, "file_source", "bucket_name", "files", "backup_id")
	files := bf["files"].([]any)
	if bf["file_source"] != "self_build_obs" || bf["bucket_name"] != "my-bucket" || bf["backup_id"] != "" || len(files) != 1 {
		t.Fatalf("backup_files: %v", bf)
	}
	f := files[0].(map[string]any)
	assertKeys(t, f, "file_name", "size", "update_at")
	if f["file_name"] != "dump.rdb" || f["size"] != "1024" || f["update_at"] != "2024-01-02 03:04:05" {
		t.Fatalf("file: %v", f)
	}
	m, _ := e.store.GetMigration(context.Background(), id)
	if m.Options.Extra["mode"] != "backup_import" || m.Options.Extra["backup_bucket"] != "my-bucket" || m.Modes.Incremental {
		t.Fatalf("job: %+v", m.Options)
	}
	list := e.do("GET", "/v2/"+e.projA.ID+"/migration-tasks", a, nil)
	if item := list.body["migration_tasks"].([]any)[0].(map[string]any); item["data_source"] != "my-bucket" {
		t.Fatalf("list item: %v", item)
	}
	e.assertNoSecret(dstPassword)
}

func TestListPagesAndFilters(t *testing.T) {
	e := newEnv(t, ferry.KindRedis, ferry.KindMySQL)
	a := e.token(e.groupA)
	var ids []string
	for _, n := range []string{"alpha", "beta", "alphabet"} {
		b := onlineBody("full_amount_migration")
		b["task_name"] = n
		ids = append(ids, e.create(a, e.projA.ID, b))
	}
	e.create(e.token(e.orgOwner), e.projB.ID, onlineBody("full_amount_migration"))
	// A MySQL job in the same project is no DCS task.
	my := &ferry.Migration{ProjectID: e.projA.ID, Engine: ferry.KindMySQL,
		Source: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{"h:3306"}}, Target: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{"h:3307"}}, Modes: ferry.Modes{Full: true}}
	if err := e.svc.CreateMigration(ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal), my, false); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/v2/"+e.projA.ID+"/migration-tasks?offset=1&limit=1", a, nil)
	assertKeys(t, r.body, "count", "migration_tasks")
	items := r.body["migration_tasks"].([]any)
	if r.body["count"] != 3.0 || len(items) != 1 {
		t.Fatalf("page: %s", r.raw)
	}
	item := items[0].(map[string]any)
	// Every field of the SDK's MigrationTaskList, and no other.
	assertKeys(t, item, jsonTags(reflect.TypeOf(dcsmodel.MigrationTaskList{}))...)
	if item["description"] != "cache move" || item["resume_mode"] != "manual" || item["version"] != ferry.Version || item["error_message"] != "" ||
		item["released_at"] != nil || item["source_instance_status"] != "RUNNING" || item["target_instance_status"] != "RUNNING" {
		t.Fatalf("item: %s", r.raw)
	}
	if item["task_id"] != ids[1] || item["task_name"] != "beta" || item["status"] != "FULLMIGRATING" || item["data_source"] != "192.168.1.2:6379" ||
		item["source_instance_name"] != "dcs-test" || item["source_instance_id"] != "86157b69-src" || item["target_instance_addrs"] != "192.168.1.3:6379,192.168.1.4:6379" ||
		item["target_instance_id"] != "86157b69-dst" || item["migration_method"] != "full_amount_migration" {
		t.Fatalf("item: %v", item)
	}
	r = e.do("GET", "/v2/"+e.projA.ID+"/migration-tasks?name=ALPHA&limit=1&offset=1", a, nil)
	if r.body["count"] != 2.0 || len(r.body["migration_tasks"].([]any)) != 1 || r.body["migration_tasks"].([]any)[0].(map[string]any)["task_name"] != "alphabet" {
		t.Fatalf("name filter: %s", r.raw)
	}
	assertError(t, e.do("GET", "/v2/"+e.projA.ID+"/migration-tasks?limit=0", a, nil), 400, CodeInvalidParam, "limit: must be an integer between 1 and 1000", nil)
	assertError(t, e.do("GET", "/v2/"+e.projA.ID+"/migration-tasks?offset=-1", a, nil), 400, CodeInvalidParam, "offset", nil)
	assertError(t, e.do("GET", "/v2/"+e.projA.ID+"/migration-task/"+my.ID, a, nil), 404, CodeNotFound, "The migration task "+my.ID+" does not exist.", nil)
	e.assertNoSecret(srcPassword)
}

func TestStopStatsDelete(t *testing.T) {
	e := newEnv(t, ferry.KindRedis)
	a := e.token(e.groupA)
	p := "/v2/" + e.projA.ID
	id1 := e.create(a, e.projA.ID, onlineBody("incremental_migration"))
	id2 := e.create(a, e.projA.ID, onlineBody("incremental_migration"))

	// Stats of a syncing task.
	lag := int64(3)
	e.update(id1, func(m *ferry.Migration) {
		m.CurrentStep, m.LagSeconds = ferry.StepIncremental, &lag
		f := m.Step(ferry.StepFull)
		f.State, f.Progress = ferry.StepDone, 100
		f.Counters = ferry.Counters{Done: 990, Total: 1000, Bytes: 5 << 20, BytesTotal: 6 << 20, Unit: "keys"}
		i := m.Step(ferry.StepIncremental)
		i.State, i.Counters = ferry.StepRunning, ferry.Counters{Ops: 12345, Bytes: 777, LagBytes: 64, RatePerSec: 1234.567}
	})
	r := e.do("GET", p+"/migration-task/"+id1+"/stats", a, nil)
	assertKeys(t, r.body, "full_migration_progress", "offset", "source_dbsize", "target_dbsize", "target_input_kbps", "target_ops", "is_migrating",
		"keys_migrated", "keys_total", "bytes_migrated", "bytes_total", "commands_applied", "lag_seconds", "lag_bytes")
	want := map[string]any{"full_migration_progress": "100", "offset": "777", "source_dbsize": "1000", "target_dbsize": "990", "target_input_kbps": nil,
		"target_ops": "1234.57", "is_migrating": true, "keys_migrated": 990.0, "keys_total": 1000.0, "bytes_migrated": float64(5 << 20),
		"bytes_total": float64(6 << 20), "commands_applied": 12345.0, "lag_seconds": 3.0, "lag_bytes": 64.0}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("stats %s = %#v, want %#v", k, r.body[k], v)
		}
	}

	// After cutover the stats say the source stays write-paused.
	until := time.Now().Add(5 * time.Minute).UTC()
	e.update(id1, func(m *ferry.Migration) {
		at := time.Now()
		m.Cutover = &ferry.CutoverInfo{SourceWriteBlock: ferry.WriteBlockClientPause, SourceBlockedAt: &at, SourceBlockedUntil: &until}
	})
	r = e.do("GET", p+"/migration-task/"+id1+"/stats", a, nil)
	if r.body["source_state"] != "write_paused" || r.body["source_paused_until"] != *dcsTime(&until) || !strings.Contains(fmt.Sprint(r.body["cutover_summary"]), "release-source") {
		t.Errorf("stats after cutover: %v", r.body)
	}

	// Stop -> TERMINATED, answering the task.
	r = e.do("POST", p+"/migration-task/"+id1+"/stop", a, nil)
	if r.status != 200 || r.body["status"] != "TERMINATED" || r.body["task_id"] != id1 {
		t.Fatalf("stop: %d %s", r.status, r.raw)
	}
	assertKeys(t, r.body, seedTaskKeys...)
	r = e.do("GET", p+"/migration-task/"+id1+"/stats", a, nil)
	if r.body["is_migrating"] != false || r.body["target_ops"] != "0" || r.body["lag_seconds"] != nil {
		t.Fatalf("stats after stop: %s", r.raw)
	}
	// Stopping a completed task is not allowed in its state.
	id3 := e.create(a, e.projA.ID, onlineBody("full_amount_migration"))
	e.update(id3, func(m *ferry.Migration) { m.State = ferry.StateCompleted })
	assertError(t, e.do("POST", p+"/migration-task/"+id3+"/stop", a, nil), 400, CodeStateConflict, "cannot go from completed to paused", nil)

	// Deleting a running task alone fails; in a batch with a stopped one, only the stopped one goes.
	body := map[string]any{"task_id_list": []any{id2}}
	assertError(t, e.do("DELETE", p+"/migration-tasks/delete", a, body), 400, CodeStateConflict, "stop or release it before deleting it", str("pause or release the migration first"))
	body = map[string]any{"task_id_list": []any{id1, id2, id1}}
	r = e.do("DELETE", p+"/migration-tasks/delete", a, body)
	assertKeys(t, r.body, "task_id_list")
	if l := r.body["task_id_list"].([]any); r.status != 200 || len(l) != 1 || l[0] != id1 {
		t.Fatalf("batch delete: %d %s", r.status, r.raw)
	}
	assertError(t, e.do("GET", p+"/migration-task/"+id1, a, nil), 404, CodeNotFound, "does not exist", nil)
	// The alias path; unknown ids.
	r = e.do("DELETE", p+"/migration-tasks", a, map[string]any{"task_id_list": []any{id3}})
	if r.status != 200 || r.body["task_id_list"].([]any)[0] != id3 {
		t.Fatalf("alias delete: %d %s", r.status, r.raw)
	}
	assertError(t, e.do("DELETE", p+"/migration-tasks/delete", a, map[string]any{"task_id_list": []any{"0123456789abcdef01234567"}}), 404, CodeNotFound, "does not exist", nil)
	assertError(t, e.do("DELETE", p+"/migration-tasks/delete", a, map[string]any{"task_id_list": []any{}}), 400, CodeInvalidParam, "task_id_list: is mandatory", nil)
	assertError(t, e.do("DELETE", p+"/migration-tasks/delete", a, map[string]any{"task_id_list": "x"}), 400, CodeInvalidParam, "task_id_list: invalid type", nil)
	// Read-only keys may not delete.
	assertError(t, e.do("DELETE", p+"/migration-tasks/delete", e.token(e.groupReadA), map[string]any{"task_id_list": []any{id2}}), 403, CodeForbidden, "cannot do this", nil)
	e.assertNoSecret(srcPassword)
	e.assertNoSecret(dstPassword)
}

func TestErrorsAndTenancy(t *testing.T) {
	e := newEnv(t, ferry.KindRedis)
	a := e.token(e.groupA)
	id := e.create(a, e.projA.ID, onlineBody("incremental_migration"))
	idB := e.create(e.token(e.orgOwner), e.projB.ID, onlineBody("incremental_migration"))
	show := func(proj, task string) string { return "/v2/" + proj + "/migration-task/" + task }

	assertError(t, e.do("GET", show("254d2280acb74d36a8b839746bcd7352", id), a, nil), 400, CodeInvalidProjectID, `Invalid project ID format: "254d2280acb74d36a8b839746bcd7352"`, nil)
	assertError(t, e.do("GET", "/v2/nope/migration-tasks", auth{}, nil), 400, CodeInvalidProjectID, "Invalid project ID format", nil)
	r := e.do("GET", show(e.projA.ID, id), auth{}, nil)
	assertError(t, r, 401, CodeUnauthorized, "credentials are required", nil)
	if r.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("DCS sends no challenge: %v", r.header)
	}
	assertError(t, e.do("GET", show(e.projA.ID, id), auth{token: "ferry_bogus"}, nil), 401, CodeUnauthorized, "invalid or expired token", nil)
	// Basic credentials work too.
	if r := e.do("GET", show(e.projA.ID, id), auth{basic: e.groupA}, nil); r.status != 200 {
		t.Fatalf("basic: %d %s", r.status, r.raw)
	}
	// Another project's task through this project; another project the key cannot see; another org.
	assertError(t, e.do("GET", show(e.projA.ID, idB), a, nil), 404, CodeNotFound, "The migration task "+idB+" does not exist.", nil)
	assertError(t, e.do("GET", show(e.projB.ID, idB), a, nil), 404, CodeNotFound, "no project with id "+e.projB.ID, nil)
	assertError(t, e.do("GET", show(e.projA.ID, id), e.token(e.otherOrg), nil), 404, CodeNotFound, "no project with id", nil)
	if r := e.do("GET", show(e.projB.ID, idB), e.token(e.orgRead), nil); r.status != 200 {
		t.Fatalf("org read: %d %s", r.status, r.raw)
	}
	// Read-only keys read, do not write.
	ro := e.token(e.groupReadA)
	if r := e.do("GET", show(e.projA.ID, id)+"/stats", ro, nil); r.status != 200 {
		t.Fatalf("ro stats: %d %s", r.status, r.raw)
	}
	assertError(t, e.do("POST", show(e.projA.ID, id)+"/stop", ro, nil), 403, CodeForbidden, "cannot do this in project", nil)
	assertError(t, e.do("POST", "/v2/"+e.projA.ID+"/migration-task", ro, onlineBody("full_amount_migration")), 403, CodeForbidden, "cannot do this", nil)
	assertError(t, e.do("GET", show(e.projA.ID, "0123456789abcdef01234567"), a, nil), 404, CodeNotFound, "The migration task 0123456789abcdef01234567 does not exist.", nil)
	assertError(t, e.do("GET", "/v2/"+e.projA.ID+"/instances", a, nil), 404, CodeNoSuchAPI, "API not found: GET /v2/", nil)
	r = e.do("PATCH", show(e.projA.ID, id), a, nil)
	assertError(t, r, 405, CodeMethodNotAllowed, "PATCH is not allowed", nil)
	if r.header.Get("Allow") != "GET, PUT" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	e.assertNoSecret(srcPassword)
	e.assertNoSecret(dstPassword)
}

func TestCreateBadRequests(t *testing.T) {
	e := newEnv(t, ferry.KindRedis)
	a := e.token(e.groupA)
	post := func(body any) resp { return e.do("POST", "/v2/"+e.projA.ID+"/migration-task", a, body) }
	with := func(base map[string]any, mut func(b map[string]any)) map[string]any { mut(base); return base }
	cases := []struct {
		name string
		r    resp
		msg  string
	}{
		{"malformed", post(`{"task_name":`), "truncated JSON"},
		{"syntax", post(`{"task_name" 1}`), "not in JSON format"},
		{"array", post(`[]`), "must be a JSON object"},
		{"empty", post(""), "Empty request body."},
		{"trailing", post(`{} 1`), "data after the JSON value"},
		{"no name", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { delete(b, "task_name") })), "task_name: is mandatory."},
		{"bad type", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { b["migration_type"] = "offline" })), `migration_type: unknown value "offline"`},
		{"no method", post(with(onlineBody("x"), func(b map[string]any) { delete(b, "migration_method") })), "migration_method: is mandatory"},
		{"bad method", post(onlineBody("half")), `migration_method: unknown value "half"`},
		{"bad resume", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { b["resume_mode"] = "sometimes" })), `resume_mode: unknown value "sometimes"`},
		{"bad network", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { b["network_type"] = "lan" })), `network_type: unknown value "lan"`},
		{"bad bandwidth", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { b["bandwidth_limit_mb"] = "-3" })), "bandwidth_limit_mb: must be a non-negative integer"},
		{"bandwidth type", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { b["bandwidth_limit_mb"] = true })), "bandwidth_limit_mb: invalid type"},
		{"no source", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { delete(b, "source_instance") })), "source_instance: is mandatory for online_migration."},
		{"bad addr", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { b["source_instance"].(map[string]any)["addrs"] = "nohostport" })), `source_instance.addrs: bad address "nohostport"`},
		{"bad db", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { b["source_instance"].(map[string]any)["db"] = "zero" })), `source_instance.db: must be a Redis database number`},
		{"no target", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { delete(b, "target_instance") })), "target_instance: is mandatory."},
		{"unknown target", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { b["target_instance"] = map[string]any{"id": "not-registered"} })), `no endpoint named "not-registered"`},
		{"target type", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { b["target_instance"] = "x" })), "target_instance: invalid type"},
		{"incremental import", post(with(backupBody(), func(b map[string]any) { b["migration_method"] = "incremental_migration" })), "migration_method: a backup file import is a full_amount_migration."},
		{"no files", post(with(backupBody(), func(b map[string]any) { delete(b, "backup_files") })), "backup_files: is mandatory for backupfile_import."},
		{"no bucket", post(with(backupBody(), func(b map[string]any) { b["backup_files"].(map[string]any)["bucket_name"] = "" })), "backup_files.bucket_name: is mandatory"},
		{"bad source", post(with(backupBody(), func(b map[string]any) { b["backup_files"].(map[string]any)["file_source"] = "ftp" })), `backup_files.file_source: unknown value "ftp"`},
		{"bad size", post(with(backupBody(), func(b map[string]any) {
			b["backup_files"].(map[string]any)["files"] = []any{map[string]any{"file_name": "a", "size": "big"}}
		})), `backup_files.files[0].size`},
		{"files on online", post(with(onlineBody("full_amount_migration"), func(b map[string]any) { b["backup_files"] = backupBody()["backup_files"] })), "backup_files: is only for migration_type backupfile_import."},
		{"text", func() resp {
			req, _ := http.NewRequest("POST", e.srv.URL+"/v2/"+e.projA.ID+"/migration-task", strings.NewReader("x"))
			req.Header.Set("Content-Type", "text/plain")
			req.Header.Set("X-Auth-Token", a.token)
			return e.send(req)
		}(), "must be JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { assertError(t, c.r, 400, CodeInvalidParam, c.msg, nil) })
	}
	e.assertNoSecret(srcPassword)
	e.assertNoSecret(dstPassword)
}

func TestRegisteredInstancesAndIPPort(t *testing.T) {
	e := newEnv(t, ferry.KindRedis)
	a := e.token(e.groupA)
	ctx := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	if err := e.svc.CreateEndpoint(ctx, &ferry.Endpoint{ProjectID: e.projA.ID, Name: "cache-prod", Kind: ferry.KindRedis, Addrs: []string{"10.1.1.1:6379"}, Password: "registered-pw"}); err != nil {
		t.Fatal(err)
	}
	b := onlineBody("full_amount_migration")
	b["source_instance"] = map[string]any{"ip": "10.2.2.2", "port": 6380, "password": srcPassword}
	b["target_instance"] = map[string]any{"id": "cache-prod"}
	id := e.create(a, e.projA.ID, b)
	r := e.do("GET", "/v2/"+e.projA.ID+"/migration-task/"+id, a, nil)
	src, dst := r.body["source_instance"].(map[string]any), r.body["target_instance"].(map[string]any)
	if src["addrs"] != "10.2.2.2:6380" || src["port"] != "6380" || dst["addrs"] != "10.1.1.1:6379" || dst["id"] != "cache-prod" {
		t.Fatalf("instances: %s", r.raw)
	}
	e.assertNoSecret("registered-pw")
	e.assertNoSecret(srcPassword)
}

func TestStatusOfEveryErrorCode(t *testing.T) {
	cases := []struct {
		code, reason string
		status       int
		want         string
	}{
		{ferry.EINVALID, "", 400, CodeInvalidParam}, {ferry.EINVALID, "INVALID_PROJECT_ID", 400, CodeInvalidProjectID},
		{ferry.EINVALID, "ENGINE_NOT_AVAILABLE", 400, CodeEngineNotBuilt}, {ferry.ECONFLICT, "", 400, CodeStateConflict},
		{ferry.EUNAUTHORIZED, "", 401, CodeUnauthorized}, {ferry.EFORBIDDEN, "", 403, CodeForbidden}, {ferry.ENOTFOUND, "", 404, CodeNotFound},
		{ferry.ENOTFOUND, "NO_SUCH_API", 404, CodeNoSuchAPI}, {ferry.ERATELIMIT, "", 429, CodeTooManyRequests},
		{ferry.ENOTIMPLEMENTED, "", 501, CodeNotImplemented}, {ferry.EINTERNAL, "", 500, CodeInternal}, {"other", "", 500, CodeInternal},
	}
	for _, c := range cases {
		if st, code := StatusOf(c.code, c.reason); st != c.status || code != c.want {
			t.Errorf("%s/%s: %d %s, want %d %s", c.code, c.reason, st, code, c.status, c.want)
		}
	}
	if got := truncate(strings.Repeat("é", 600), 1024); len(got) != 1024 || !strings.HasSuffix(got, "é") {
		t.Fatalf("truncate: %d", len(got))
	}
	if got := truncate("a"+strings.Repeat("é", 600), 1024); len(got) != 1023 {
		t.Fatalf("truncate mid-rune: %d", len(got))
	}
}

// jsonTags returns the JSON names of a struct type's fields.
func jsonTags(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}
