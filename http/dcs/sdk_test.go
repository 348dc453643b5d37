package dcs

// Tests that drive ferry with Huawei Cloud's Go SDK unchanged
// (github.com/huaweicloud/huaweicloud-sdk-go-v3, services/dcs/v2): AK/SK
// basic credentials (the SDK signs every request with SDK-HMAC-SHA256), the
// endpoint set to the test server's http://127.0.0.1:port, the project id
// of the credentials filling {project_id} as DCS does. No transport hook.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	dcssdk "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dcs/v2"
	dcsmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dcs/v2/model"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	redisengine "github.com/ferrymigrate/ferry/engine/redis"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/sqlite"
)

func TestMain(m *testing.M) { testharness.Main(m) }

// sdkEnv is a real service (SQLite store, Redis engine, one agent) behind
// an httptest server, and a group-owner key of one project.
type sdkEnv struct {
	t        *testing.T
	dbPath   string
	store    *sqlite.DB
	svc      *ferry.Service
	srv      *httptest.Server
	proj     *ferry.Project
	pub      string
	priv     string
	ctx      context.Context // system principal
	mu       sync.Mutex
	lastCall map[string]time.Time
}

func newSDKEnv(t *testing.T) *sdkEnv {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "ferry.db")
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := ferry.NewRegistry()
	reg.Register(redisengine.New(logger))
	svc := ferry.NewService(db, reg, logger)
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "acme")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := svc.CreateProject(sys, org.ID, "cache")
	if err != nil {
		t.Fatal(err)
	}
	k, priv, err := svc.CreateAPIKey(sys, org.ID, proj.ID, ferry.RoleGroupOwner, "sdk")
	if err != nil {
		t.Fatal(err)
	}
	e := &sdkEnv{t: t, dbPath: dbPath, store: db, svc: svc, proj: proj, pub: k.PublicKey, priv: priv, ctx: sys, lastCall: map[string]time.Time{}}
	e.srv = httptest.NewServer(New(svc, httpauth.New(svc), logger))
	t.Cleanup(e.srv.Close)
	a := agent.New(agent.Config{ID: "agent-1", Store: db, Registry: reg, Service: svc, Logger: logger,
		LeaseTTL: 2 * time.Second, PollInterval: 50 * time.Millisecond, RetryBackoff: 200 * time.Millisecond})
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(actx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// client is the SDK's DCS client with AK/SK credentials, pointed at the
// test server.
func (e *sdkEnv) client(ak, sk string) *dcssdk.DcsClient {
	e.t.Helper()
	cred, err := basic.NewCredentialsBuilder().WithAk(ak).WithSk(sk).WithProjectId(e.proj.ID).SafeBuild()
	if err != nil {
		e.t.Fatal(err)
	}
	hc, err := dcssdk.DcsClientBuilder().
		WithEndpoints([]string{e.srv.URL}). // "http://127.0.0.1:port": an endpoint starting with http is kept as is
		WithCredential(cred).
		WithHttpConfig(config.DefaultHttpConfig().WithTimeout(90 * time.Second)).
		SafeBuild()
	if err != nil {
		e.t.Fatal(err)
	}
	return dcssdk.NewDcsClient(hc)
}

// spaced waits so that two identical calls of one operation are at least a
// second apart: X-Sdk-Date has one-second resolution, so identical requests
// within a second carry the same signature, which ferry's replay guard
// refuses.
func (e *sdkEnv) spaced(op string) {
	e.mu.Lock()
	last := e.lastCall[op]
	e.mu.Unlock()
	if d := time.Until(last.Add(1100 * time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
	e.mu.Lock()
	e.lastCall[op] = time.Now()
	e.mu.Unlock()
}

// wait polls the store (not the API, to keep signatures unique) until cond.
func (e *sdkEnv) wait(id, what string, timeout time.Duration, cond func(m *ferry.Migration) bool) *ferry.Migration {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var m *ferry.Migration
	for time.Now().Before(deadline) {
		var err error
		if m, err = e.store.GetMigration(context.Background(), id); err != nil {
			e.t.Fatal(err)
		}
		if cond(m) {
			return m
		}
		if m.State == ferry.StateFailed && !strings.Contains(what, "fail") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("waiting for %s: state %s step %s error %q", what, m.State, m.CurrentStep, m.Error)
	return nil
}

func syncing(m *ferry.Migration) bool {
	return m.State == ferry.StateRunning && m.CurrentStep == ferry.StepIncremental && m.ReadyForCutover
}

func sdkError(t *testing.T, err error, status int, code, msgPart string) {
	t.Helper()
	var se *sdkerr.ServiceResponseError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want a ServiceResponseError %d %s", err, err, status, code)
	}
	if se.StatusCode != status || se.ErrorCode != code || !strings.Contains(se.ErrorMessage, msgPart) {
		t.Fatalf("error %d %s %q, want %d %s containing %q", se.StatusCode, se.ErrorCode, se.ErrorMessage, status, code, msgPart)
	}
}

func ptr[T any](v T) *T { return &v }

func val[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

func TestSDKLifecycle(t *testing.T) {
	e := newSDKEnv(t)
	src := testharness.StartRedis(t)
	dst := testharness.StartRedis(t)
	dst2 := testharness.StartRedis(t)
	srcC := goredis.NewClient(&goredis.Options{Addr: src})
	defer srcC.Close()
	for i := 0; i < 200; i++ {
		if err := srcC.Set(context.Background(), fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c := e.client(e.pub, e.priv)

	// create
	cr, err := c.CreateMigrationTask(&dcsmodel.CreateMigrationTaskRequest{Body: &dcsmodel.CreateMigrationTaskBody{
		TaskName:        "sdk-task",
		Description:     ptr("moved by the SDK"),
		MigrationType:   dcsmodel.GetCreateMigrationTaskBodyMigrationTypeEnum().ONLINE_MIGRATION,
		MigrationMethod: dcsmodel.GetCreateMigrationTaskBodyMigrationMethodEnum().INCREMENTAL_MIGRATION,
		NetworkType:     ptr(dcsmodel.GetCreateMigrationTaskBodyNetworkTypeEnum().VPC),
		SourceInstance:  &dcsmodel.SourceInstanceBody{Addrs: src, Name: ptr("self-built")},
		TargetInstance:  &dcsmodel.TargetInstanceBody{Addrs: ptr(dst), Name: ptr("target")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	id := val(cr.Id)
	if cr.HttpStatusCode != 200 || !ferry.ValidID(id) || val(cr.Name) != "sdk-task" || cr.Status == nil {
		t.Fatalf("create: %+v", cr)
	}

	// list: every field of the SDK's model
	lr, err := c.ListMigrationTask(&dcsmodel.ListMigrationTaskRequest{Offset: ptr(int32(0)), Limit: ptr(int32(10)), Name: ptr("sdk")})
	if err != nil {
		t.Fatal(err)
	}
	if val(lr.Count) != 1 || lr.MigrationTasks == nil || len(*lr.MigrationTasks) != 1 {
		t.Fatalf("list: %+v", lr)
	}
	it := (*lr.MigrationTasks)[0]
	if val(it.TaskId) != id || val(it.Description) != "moved by the SDK" || val(it.ResumeMode) != "auto" || val(it.Version) != ferry.Version ||
		it.SupportedFeatures == nil || strings.Join(*it.SupportedFeatures, ",") != "exchange_ip" || val(it.DataSource) != src ||
		val(it.TargetInstanceAddrs) != dst || val(it.SourceInstanceName) != "self-built" || val(it.ErrorMessage) != "" || it.ReleasedAt != nil {
		t.Fatalf("list item: %+v", it)
	}

	// show
	sr, err := c.ShowMigrationTask(&dcsmodel.ShowMigrationTaskRequest{TaskId: id})
	if err != nil {
		t.Fatal(err)
	}
	if val(sr.TaskId) != id || val(sr.TaskName) != "sdk-task" || sr.SourceInstance == nil || sr.SourceInstance.Addrs != src ||
		sr.TargetInstance == nil || val(sr.TargetInstance.Addrs) != dst || sr.SourceInstance.Password != nil || sr.MigrationMethod == nil ||
		sr.MigrationMethod.Value() != "incremental_migration" || val(sr.Version) != ferry.Version {
		t.Fatalf("show: %+v", sr)
	}

	e.wait(id, "incremental sync", 60*time.Second, syncing)

	// stats
	st, err := c.ShowMigrationTaskStats(&dcsmodel.ShowMigrationTaskStatsRequest{TaskId: id})
	if err != nil {
		t.Fatal(err)
	}
	if !val(st.IsMigrating) || val(st.FullMigrationProgress) != "100" || val(st.SourceDbsize) != "200" || val(st.TargetDbsize) != "200" {
		t.Fatalf("stats: %+v", st)
	}

	// stop: TERMINATED, restartable
	stop, err := c.StopMigrationTask(&dcsmodel.StopMigrationTaskRequest{TaskId: id})
	if err != nil {
		t.Fatal(err)
	}
	if stop.Status == nil || stop.Status.Value() != "TERMINATED" || val(stop.TaskId) != id {
		t.Fatalf("stop: %+v", stop)
	}
	e.wait(id, "the agent to stop", 30*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StatePaused && m.Lease == nil })

	// batch restart: the stopped task restarts; an unknown one fails alone
	unknown := "0123456789abcdef01234567"
	br, err := c.BatchRestartOnlineMigrationTasks(&dcsmodel.BatchRestartOnlineMigrationTasksRequest{Body: &dcsmodel.BatchRestartOnlineMigrationTasksBody{MigrationTasks: []string{id, unknown}}})
	if err != nil {
		t.Fatal(err)
	}
	if br.MigrationTasks == nil || len(*br.MigrationTasks) != 2 {
		t.Fatalf("batch restart: %+v", br)
	}
	r0, r1 := (*br.MigrationTasks)[0], (*br.MigrationTasks)[1]
	if r0.Result.Value() != "SUCCESS" || val(r0.TaskId) != id || r0.ErrorCode != nil ||
		r1.Result.Value() != "FAILED" || val(r1.TaskId) != unknown || val(r1.ErrorCode) != CodeNotFound || !strings.Contains(val(r1.ErrorMsg), "does not exist") {
		t.Fatalf("batch restart results: %+v / %+v", r0, r1)
	}
	e.wait(id, "sync after restart", 60*time.Second, syncing)

	// batch stop
	bs, err := c.BatchStopMigrationTasks(&dcsmodel.BatchStopMigrationTasksRequest{Body: &dcsmodel.BatchStopMigrationTasksBody{MigrationTasks: []string{id, unknown}}})
	if err != nil {
		t.Fatal(err)
	}
	if bs.MigrationTasks == nil || len(*bs.MigrationTasks) != 2 || (*bs.MigrationTasks)[0].Result.Value() != "SUCCESS" || (*bs.MigrationTasks)[1].Result.Value() != "FAILED" ||
		val((*bs.MigrationTasks)[1].ErrorCode) != CodeNotFound {
		t.Fatalf("batch stop: %+v", bs)
	}
	if m := e.wait(id, "stopped", 30*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StatePaused && m.Lease == nil }); Status(m) != "TERMINATED" {
		t.Fatalf("status %s", Status(m))
	}
	// exchange-ip on a stopped task: a DCS state error
	_, err = c.ExchangeInstanceIp(&dcsmodel.ExchangeInstanceIpRequest{TaskId: id, Body: &dcsmodel.IpExchangeRequest{ExchangedIp: []string{"127.0.0.1"}}})
	sdkError(t, err, 400, CodeStateConflict, "the job is paused")

	// restart again, change the resume mode
	e.spaced("batch-restart")
	if _, err := c.BatchRestartOnlineMigrationTasks(&dcsmodel.BatchRestartOnlineMigrationTasksRequest{Body: &dcsmodel.BatchRestartOnlineMigrationTasksBody{MigrationTasks: []string{id}}}); err != nil {
		t.Fatal(err)
	}
	up, err := c.UpdateMigrationTask(&dcsmodel.UpdateMigrationTaskRequest{TaskId: id, Body: &dcsmodel.MigrationUpdateRequestEntity{ResumeMode: ptr("manual")}})
	if err != nil || up.HttpStatusCode != 204 {
		t.Fatalf("update: %+v %v", up, err)
	}
	e.spaced("show")
	if sr, err := c.ShowMigrationTask(&dcsmodel.ShowMigrationTaskRequest{TaskId: id}); err != nil || val(sr.ResumeMode) != "manual" {
		t.Fatalf("show after update: %+v %v", sr, err)
	}
	e.wait(id, "sync after the second restart", 60*time.Second, syncing)

	// exchange-ip: ferry's cutover
	ex, err := c.ExchangeInstanceIp(&dcsmodel.ExchangeInstanceIpRequest{TaskId: id, Body: &dcsmodel.IpExchangeRequest{ExchangedIp: []string{"127.0.0.1"}}})
	if err != nil || ex.HttpStatusCode != 204 {
		t.Fatalf("exchange-ip: %+v %v", ex, err)
	}
	m := e.wait(id, "completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	if v := m.Step(ferry.StepVerify).Counters; v.Done != 200 || v.Missing+v.Extra+v.Different != 0 {
		t.Fatalf("verify: %+v", v)
	}
	e.spaced("show")
	if sr, err := c.ShowMigrationTask(&dcsmodel.ShowMigrationTaskRequest{TaskId: id}); err != nil || sr.Status == nil || sr.Status.Value() != "SUCCESS" {
		t.Fatalf("show after exchange: %+v %v", sr, err)
	}
	// rollback-ip: Redis has no reverse sync
	_, err = c.RollbackExchangeInstanceIp(&dcsmodel.RollbackExchangeInstanceIpRequest{TaskId: id})
	sdkError(t, err, 501, CodeNotImplemented, "Redis engine has no reverse sync")

	// logs
	logs, err := c.ListMigrationTaskLogs(&dcsmodel.ListMigrationTaskLogsRequest{TaskId: id, Limit: ptr(int32(100))})
	if err != nil {
		t.Fatal(err)
	}
	if logs.MigrationLogs == nil || int(val(logs.LogNum)) != len(*logs.MigrationLogs) || val(logs.LogNum) < 5 {
		t.Fatalf("logs: %+v", logs)
	}
	var codes []string
	for _, l := range *logs.MigrationLogs {
		if _, err := time.Parse(logTime, val(l.CreatedAt)); err != nil || l.LogLevel == nil {
			t.Fatalf("log entry %+v", l)
		}
		codes = append(codes, val(l.LogCode))
	}
	if joined := strings.Join(codes, ","); !strings.HasPrefix(joined, "CREATED,STARTED,") || !strings.HasSuffix(joined, "COMPLETED") || !strings.Contains(joined, "STEP_DONE") {
		t.Fatalf("log codes %s", joined)
	}
	el, err := c.ListMigrationTaskLogs(&dcsmodel.ListMigrationTaskLogsRequest{TaskId: id, LogLevel: ptr("ERROR")})
	if err != nil || val(el.LogNum) != 0 {
		t.Fatalf("error logs: %+v %v", el, err)
	}

	// A second task whose target is given as a DCS instance id: the id of
	// a registered ferry endpoint. sync-stop answers once the agent stopped.
	ep := &ferry.Endpoint{ProjectID: e.proj.ID, Name: "registered-target", Kind: ferry.KindRedis, Addrs: []string{dst2}}
	if err := e.svc.CreateEndpoint(e.ctx, ep); err != nil {
		t.Fatal(err)
	}
	e.spaced("create")
	cr2, err := c.CreateMigrationTask(&dcsmodel.CreateMigrationTaskRequest{Body: &dcsmodel.CreateMigrationTaskBody{
		TaskName:        "by-id",
		MigrationType:   dcsmodel.GetCreateMigrationTaskBodyMigrationTypeEnum().ONLINE_MIGRATION,
		MigrationMethod: dcsmodel.GetCreateMigrationTaskBodyMigrationMethodEnum().INCREMENTAL_MIGRATION,
		SourceInstance:  &dcsmodel.SourceInstanceBody{Addrs: src},
		TargetInstance:  &dcsmodel.TargetInstanceBody{Id: ep.ID},
	}})
	if err != nil {
		t.Fatal(err)
	}
	id2 := val(cr2.Id)
	if m2 := e.wait(id2, "second task syncing", 60*time.Second, syncing); strings.Join(m2.Target.Addrs, ",") != dst2 {
		t.Fatalf("target %v, want the registered endpoint %s", m2.Target.Addrs, dst2)
	}
	ss, err := c.StopMigrationTaskSync(&dcsmodel.StopMigrationTaskSyncRequest{TaskId: id2})
	if err != nil || ss.HttpStatusCode != 204 {
		t.Fatalf("sync-stop: %+v %v", ss, err)
	}
	if m2, err := e.store.GetMigration(context.Background(), id2); err != nil || m2.State != ferry.StatePaused || m2.Lease != nil {
		t.Fatalf("after sync-stop: %+v %v", m2, err)
	}

	// delete both
	dr, err := c.DeleteMigrationTask(&dcsmodel.DeleteMigrationTaskRequest{Body: &dcsmodel.DeleteMigrateTaskRequest{TaskIdList: []string{id, id2}}})
	if err != nil || dr.TaskIdList == nil || strings.Join(*dr.TaskIdList, ",") != id+","+id2 {
		t.Fatalf("delete: %+v %v", dr, err)
	}
	e.spaced("show")
	_, err = c.ShowMigrationTask(&dcsmodel.ShowMigrationTaskRequest{TaskId: id})
	sdkError(t, err, 404, CodeNotFound, "does not exist")

	// A wrong SK through the SDK: 401 in DCS's body.
	_, err = e.client(e.pub, strings.Repeat("0", len(e.priv))).ListMigrationTask(&dcsmodel.ListMigrationTaskRequest{})
	sdkError(t, err, 401, CodeUnauthorized, "signature does not match")
}
