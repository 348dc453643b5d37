package dcs

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
)

// The routes of the DCS v2 SDK beyond the seed: the two-step online
// migration (create a migration "instance", then configure it), batch stop
// and restart, settings change, the IP exchange (cutover) and its rollback,
// the synchronous stop and the task log.

// noContent is the status of DCS's answers without a body.
const noContent = http.StatusNoContent

// onlineCreateRequest is DCS's CreateOnlineMigrationTaskBody.
type onlineCreateRequest struct {
	Name            string `json:"name"`
	Description     string `json:"description"`
	VpcID           string `json:"vpc_id"`
	SubnetID        string `json:"subnet_id"`
	SecurityGroupID string `json:"security_group_id"`
}

// onlineCreateResponse is DCS's CreateOnlineMigrationTaskResponse.
type onlineCreateResponse struct {
	InstanceID string `json:"instance_id"`
}

// createOnline creates an online migration task without endpoints: a
// ferry draft job, configured by setOnline. DCS creates an ECS for it in
// the tenant's VPC; ferry's agents need none, so the network ids are only
// kept for echo.
func (h *handler) createOnline(ctx context.Context, r *http.Request) (int, any, error) {
	var req onlineCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if strings.TrimSpace(req.Name) == "" {
		return 0, nil, ferry.FieldError("name", "is mandatory.")
	}
	if len(req.Name) > 64 {
		return 0, nil, ferry.FieldError("name", "must be at most 64 characters.")
	}
	m := &ferry.Migration{ProjectID: r.PathValue("project_id"), Name: req.Name, Description: req.Description, Engine: ferry.KindRedis, Dialect: "dcs",
		Labels: map[string]string{labelMigrationType: typeOnline}}
	for k, v := range map[string]string{labelVpcID: req.VpcID, labelSubnetID: req.SubnetID, labelSecurityGroupID: req.SecurityGroupID} {
		if v != "" {
			m.Labels[k] = v
		}
	}
	if err := h.svc.CreateDraftMigration(ctx, m); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, onlineCreateResponse{InstanceID: m.ID}, nil
}

// configInstance is DCS's ConfigMigrationInstanceBody.
type configInstance struct {
	ID       string `json:"id"`
	Addrs    string `json:"addrs"`
	Password string `json:"password"`
}

// onlineSetRequest is DCS's SetOnlineMigrationTaskBody.
type onlineSetRequest struct {
	MigrationMethod  string          `json:"migration_method"`
	ResumeMode       string          `json:"resume_mode"`
	BandwidthLimitMB flexString      `json:"bandwidth_limit_mb"`
	SourceInstance   *configInstance `json:"source_instance"`
	TargetInstance   *configInstance `json:"target_instance"`
}

// setOnline configures a task made by createOnline and starts it: 200
// {id, name, status}, as DCS's SetOnlineMigrationTaskResponse.
func (h *handler) setOnline(ctx context.Context, r *http.Request) (int, any, error) {
	projectID := r.PathValue("project_id")
	var req onlineSetRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.SourceInstance == nil {
		return 0, nil, ferry.FieldError("source_instance", "is mandatory.")
	}
	if req.TargetInstance == nil {
		return 0, nil, ferry.FieldError("target_instance", "is mandatory.")
	}
	if req.ResumeMode == "" {
		return 0, nil, ferry.FieldError("resume_mode", "is mandatory (auto or manual).")
	}
	draft, err := h.task(ctx, projectID, r.PathValue("task_id"), ferry.AccessWrite)
	if err != nil {
		return 0, nil, err
	}
	if !draft.Draft() {
		return 0, nil, &ferry.Error{Code: ferry.ECONFLICT, Reason: "ALREADY_CONFIGURED", Message: fmt.Sprintf("The migration task %s is already configured.", draft.ID)}
	}
	// The same mapping as a one-step create, on the draft's name and labels.
	full := createRequest{
		TaskName: draft.Name, Description: draft.Description, MigrationType: typeOnline, MigrationMethod: req.MigrationMethod,
		ResumeMode: req.ResumeMode, BandwidthLimitMB: req.BandwidthLimitMB,
		SourceInstance: &instanceIn{ID: req.SourceInstance.ID, Addrs: req.SourceInstance.Addrs, Password: req.SourceInstance.Password},
		TargetInstance: &instanceIn{ID: req.TargetInstance.ID, Addrs: req.TargetInstance.Addrs, Password: req.TargetInstance.Password},
	}
	cfg, err := full.toMigration(projectID)
	if err != nil {
		return 0, nil, err
	}
	m, err := h.svc.ConfigureMigration(ctx, projectID, draft.ID, func(m *ferry.Migration) error {
		m.Source, m.Target, m.Modes = cfg.Source, cfg.Target, cfg.Modes
		m.Options = cfg.Options
		for k, v := range cfg.Labels {
			if _, kept := m.Labels[k]; !kept || v != "" {
				m.Labels[k] = v
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, createResponse{ID: m.ID, Name: m.Name, Status: Status(m)}, nil
}

// batchRequest is DCS's BatchStopMigrationTasksBody and
// BatchRestartOnlineMigrationTasksBody.
type batchRequest struct {
	MigrationTasks []string `json:"migration_tasks"`
}

// batchItem is DCS's StopMigrationTaskResult / BatchRestartMigrationTaskResult.
type batchItem struct {
	Result    string  `json:"result"`
	TaskID    string  `json:"task_id"`
	ErrorMsg  *string `json:"error_msg,omitempty"`
	ErrorCode *string `json:"error_code,omitempty"`
}

type batchResponse struct {
	MigrationTasks []batchItem `json:"migration_tasks"`
}

// parseBatch decodes a batch body (the fuzzed decoder).
func parseBatch(body []byte) ([]string, error) {
	var req batchRequest
	if err := decodeBytes(body, &req); err != nil {
		return nil, err
	}
	if len(req.MigrationTasks) == 0 {
		return nil, ferry.FieldError("migration_tasks", "is mandatory and must not be empty.")
	}
	if len(req.MigrationTasks) > 100 {
		return nil, ferry.FieldError("migration_tasks", "at most 100 tasks per call.")
	}
	for i, id := range req.MigrationTasks {
		if strings.TrimSpace(id) == "" {
			return nil, ferry.FieldError(fmt.Sprintf("migration_tasks[%d]", i), "must not be empty.")
		}
	}
	return req.MigrationTasks, nil
}

func (h *handler) batch(ctx context.Context, r *http.Request, op func(ctx context.Context, projectID string, ids []string, engine ferry.EngineKind) ([]ferry.BatchResult, error)) (int, any, error) {
	body, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	ids, err := parseBatch(body)
	if err != nil {
		return 0, nil, err
	}
	results, err := op(ctx, r.PathValue("project_id"), ids, ferry.KindRedis)
	if err != nil {
		return 0, nil, err
	}
	out := batchResponse{MigrationTasks: make([]batchItem, 0, len(results))}
	for _, res := range results {
		it := batchItem{Result: "SUCCESS", TaskID: res.ID}
		if res.Err != nil {
			err := res.Err
			if fe := ferry.AsError(err); fe != nil && fe.Code == ferry.ENOTFOUND {
				err = taskNotFound(res.ID)
			}
			_, eb := h.errBody(r, err)
			it.Result, it.ErrorMsg, it.ErrorCode = "FAILED", &eb.ErrorMsg, &eb.ErrorCode
		}
		out.MigrationTasks = append(out.MigrationTasks, it)
	}
	return http.StatusOK, out, nil
}

// batchStop stops each task (ferry's pause; restartable).
func (h *handler) batchStop(ctx context.Context, r *http.Request) (int, any, error) {
	return h.batch(ctx, r, h.svc.PauseMigrations)
}

// batchRestart restarts each stopped (TERMINATED) or failed task from its
// checkpoint.
func (h *handler) batchRestart(ctx context.Context, r *http.Request) (int, any, error) {
	return h.batch(ctx, r, h.svc.RestartMigrations)
}

// updateRequest is DCS's MigrationUpdateRequestEntity.
type updateRequest struct {
	ResumeMode *string `json:"resume_mode"`
}

// update changes a task's resume mode: 204.
func (h *handler) update(ctx context.Context, r *http.Request) (int, any, error) {
	var req updateRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.ResumeMode == nil {
		return 0, nil, ferry.FieldError("resume_mode", "is mandatory (auto or manual).")
	}
	mode := ferry.ResumeMode(*req.ResumeMode)
	if mode != ferry.ResumeAuto && mode != ferry.ResumeManual {
		return 0, nil, ferry.FieldError("resume_mode", "unknown value %q (auto or manual).", *req.ResumeMode)
	}
	projectID := r.PathValue("project_id")
	m, err := h.task(ctx, projectID, r.PathValue("task_id"), ferry.AccessWrite)
	if err != nil {
		return 0, nil, err
	}
	if _, err := h.svc.UpdateMigration(ctx, projectID, m.ID, ferry.MigrationPatch{ResumeMode: &mode}); err != nil {
		return 0, nil, err
	}
	return noContent, nil, nil
}

// exchangeRequest is DCS's IpExchangeRequest.
type exchangeRequest struct {
	ExchangedIP      []string `json:"exchanged_ip"`
	IsExchangeDomain bool     `json:"is_exchange_domain"`
}

// exchangeIP is DCS's IP exchange, the end of an incremental migration:
// ferry's cutover. ferry does not own the instances' addresses, so it
// swaps none: it stops writes to the source (CLIENT PAUSE WRITE), drains
// the sync, completes the task and verifies target against source; the
// application is then pointed at the target by its owner. The body is
// optional (the SDK sends none without one); given addresses must be IPs.
// 204, as DCS.
func (h *handler) exchangeIP(ctx context.Context, r *http.Request) (int, any, error) {
	body, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	if len(strings.TrimSpace(string(body))) > 0 && strings.TrimSpace(string(body)) != "null" {
		var req exchangeRequest
		if err := decodeBytes(body, &req); err != nil {
			return 0, nil, err
		}
		for i, ip := range req.ExchangedIP {
			if net.ParseIP(ip) == nil {
				return 0, nil, ferry.FieldError(fmt.Sprintf("exchanged_ip[%d]", i), "%q is not an IP address.", ip)
			}
		}
	}
	projectID := r.PathValue("project_id")
	m, err := h.task(ctx, projectID, r.PathValue("task_id"), ferry.AccessWrite)
	if err != nil {
		return 0, nil, err
	}
	if m.Draft() {
		return 0, nil, &ferry.Error{Code: ferry.ECONFLICT, Reason: "NOT_CONFIGURED", Message: fmt.Sprintf("The migration task %s is not configured yet (POST /v2/{project_id}/migration/{task_id}/task).", m.ID)}
	}
	if !m.Modes.Incremental {
		return 0, nil, &ferry.Error{Code: ferry.ECONFLICT, Reason: "CUTOVER_NOT_ALLOWED", Message: fmt.Sprintf("The migration task %s is a full_amount_migration: only an incremental_migration exchanges IPs.", m.ID)}
	}
	if _, err := h.svc.CutoverMigration(ctx, projectID, m.ID); err != nil {
		return 0, nil, err
	}
	return noContent, nil, nil
}

// rollbackIP undoes an IP exchange: ferry's rollback of a cutover, which
// needs reverse sync; the Redis engine has none, so this answers 501
// DCS.5010 naming why.
func (h *handler) rollbackIP(ctx context.Context, r *http.Request) (int, any, error) {
	projectID := r.PathValue("project_id")
	m, err := h.task(ctx, projectID, r.PathValue("task_id"), ferry.AccessWrite)
	if err != nil {
		return 0, nil, err
	}
	if _, err := h.svc.RollbackCutover(ctx, projectID, m.ID); err != nil {
		return 0, nil, err
	}
	return noContent, nil, nil
}

// SyncStopTimeout bounds how long sync-stop waits for the data path to
// stop.
var SyncStopTimeout = 60 * time.Second

// syncStop stops a task and answers once its agent has stopped writing to
// the target: 204.
func (h *handler) syncStop(ctx context.Context, r *http.Request) (int, any, error) {
	projectID := r.PathValue("project_id")
	m, err := h.task(ctx, projectID, r.PathValue("task_id"), ferry.AccessWrite)
	if err != nil {
		return 0, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, SyncStopTimeout)
	defer cancel()
	if _, err := h.svc.StopMigrationAndWait(wctx, projectID, m.ID); err != nil {
		return 0, nil, err
	}
	return noContent, nil, nil
}

// migrationLog is DCS's MigrationLog.
type migrationLog struct {
	CreatedAt string   `json:"created_at"`
	LogLevel  string   `json:"log_level"`
	Message   string   `json:"message"`
	LogCode   string   `json:"log_code"`
	Keyword   []string `json:"keyword"`
}

type logsResponse struct {
	LogNum        int            `json:"log_num"`
	MigrationLogs []migrationLog `json:"migration_logs"`
}

// logTime is the SDK model's log time format ("2023-05-15T09:11:25.449Z").
const logTime = "2006-01-02T15:04:05.000Z"

// logs pages the task's history (ferry.Migration.Events): offset records
// skipped, limit per page, log_level INFO or ERROR filters; log_num is the
// number of matching entries.
func (h *handler) logs(ctx context.Context, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	offset, err := intParam(q.Get("offset"), "offset", 0, 0, 1<<30)
	if err != nil {
		return 0, nil, err
	}
	limit, err := intParam(q.Get("limit"), "limit", DefaultLimit, 1, MaxLimit)
	if err != nil {
		return 0, nil, err
	}
	level := strings.ToUpper(q.Get("log_level"))
	switch level {
	case "", "INFO", "ERROR":
	default:
		return 0, nil, ferry.FieldError("log_level", "unknown value %q (INFO or ERROR).", q.Get("log_level"))
	}
	m, err := h.task(ctx, r.PathValue("project_id"), r.PathValue("task_id"), ferry.AccessRead)
	if err != nil {
		return 0, nil, err
	}
	var all []migrationLog
	for _, e := range m.Events() {
		if level != "" && e.Level != level {
			continue
		}
		kw := e.Keywords
		if kw == nil {
			kw = []string{}
		}
		all = append(all, migrationLog{CreatedAt: e.Time.UTC().Format(logTime), LogLevel: e.Level, Message: e.Message, LogCode: e.Code, Keyword: kw})
	}
	page := all[min(offset, len(all)):min(offset+limit, len(all))]
	if page == nil {
		page = []migrationLog{}
	}
	return http.StatusOK, logsResponse{LogNum: len(all), MigrationLogs: page}, nil
}

// readBody reads a request body that may be JSON (the content type, when
// given, must say so); a missing body is empty.
func readBody(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return nil, &ferry.Error{Code: ferry.EINVALID, Reason: "UNSUPPORTED_MEDIA_TYPE", Message: fmt.Sprintf("The request body must be JSON (Content-Type: application/json), not %q.", ct)}
	}
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, &ferry.Error{Code: ferry.EINVALID, Reason: "BODY_UNREADABLE", Message: "The request body could not be read."}
	}
	if len(body) > MaxBodyBytes {
		return nil, &ferry.Error{Code: ferry.EINVALID, Reason: "BODY_TOO_LARGE", Message: fmt.Sprintf("The request body exceeds %d bytes.", MaxBodyBytes)}
	}
	return body, nil
}
