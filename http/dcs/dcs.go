// Package dcs serves the Huawei Cloud DCS (Distributed Cache Service) Redis
// data-migration dialect of ferry's API, and the IAM token call its clients
// authenticate with. Like every dialect it is a thin edge: each handler
// decodes, calls one *ferry.Service method and maps the job to DCS's names,
// enums and error body.
//
// # Routes
//
//	POST   /v3/auth/tokens                                 IAM password token: 201, X-Subject-Token   KeystoneCreateUserTokenByPassword
//	POST   /v2/{project_id}/migration-task                 create and start: 200 {id, name, status}  CreateMigrationTask
//	GET    /v2/{project_id}/migration-tasks                list: 200 {count, migration_tasks}        ListMigrationTask
//	DELETE /v2/{project_id}/migration-tasks/delete         batch delete: 200 {task_id_list}          DeleteMigrationTask
//	DELETE /v2/{project_id}/migration-tasks                the same (alias)
//	GET    /v2/{project_id}/migration-task/{task_id}       the seed: 200                             ShowMigrationTask
//	POST   /v2/{project_id}/migration-task/{task_id}/stop  stop: 200 with the task                   StopMigrationTask
//	GET    /v2/{project_id}/migration-task/{task_id}/stats progress: 200                             ShowMigrationTaskStats
//	POST   /v2/{project_id}/migration/instance             online task, no endpoints yet: 200 {instance_id}  CreateOnlineMigrationTask
//	POST   /v2/{project_id}/migration/{task_id}/task       configure and start it: 200 {id, name, status}  SetOnlineMigrationTask
//	POST   /v2/{project_id}/migration-task/batch-stop      stop each: 200 {migration_tasks: results}  BatchStopMigrationTasks
//	POST   /v2/{project_id}/migration-tasks/batch-restart  restart each: 200 {migration_tasks: results}  BatchRestartOnlineMigrationTasks
//	PUT    /v2/{project_id}/migration-task/{task_id}       resume_mode: 204                          UpdateMigrationTask
//	POST   /v2/{project_id}/migration-task/{task_id}/exchange-ip  ferry's cutover: 204               ExchangeInstanceIp
//	POST   /v2/{project_id}/migration-task/{task_id}/rollback-ip  needs reverse sync: 501 for Redis  RollbackExchangeInstanceIp
//	POST   /v2/{project_id}/migration-task/{task_id}/sync-stop    stop and wait for the agent: 204   StopMigrationTaskSync
//	GET    /v2/{project_id}/migration-task/{task_id}/logs  the task's history: 200 {log_num, migration_logs}  ListMigrationTaskLogs
//
// These are the 15 migration calls of the Huawei Go SDK's DCS v2 client
// (huaweicloud-sdk-go-v3 services/dcs/v2, 137 calls in all), with its
// paths and models.
//
// project_id is the ferry project id (24 hex digits); a malformed one is 400
// DCS.4002. task_id is the ferry migration id. Only Redis jobs are DCS
// migration tasks: a job of another engine is 404 here.
//
// # Authentication
//
// The SDK's AK/SK signature (Authorization: SDK-HMAC-SHA256 ..., AK = the
// API key's public key, SK = its private key; httpauth/sdkhmac.go), or
// X-Auth-Token carrying a token issued by POST /v3/auth/tokens (user name =
// the public key, password = the private key; the scope by project id,
// name or region name); Basic, Digest and Bearer credentials (package
// httpauth) are accepted too.
//
// # Errors
//
// {"error_msg", "error_code", "error_ext_msg"}: error_ext_msg is null unless
// ferry has advice for the caller. Codes (see StatusOf): 400 DCS.4001
// invalid parameter, DCS.4002 malformed project id, DCS.4007 engine not
// built into this ferry, DCS.4026 operation not allowed in the task's current
// state (a real DCS code; DCS answers state conflicts with 400); 401
// DCS.4010; 403 DCS.4030; 404 DCS.4040 (DCS.4041 no such API); 405
// DCS.4050; 413 DCS.4130 (body too large); 429 DCS.4290; 499 DCS.4990 (the
// client went away: logged only); 500 DCS.5000; 501 DCS.5010.
package dcs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// Prefixes the server mounts this dialect on.
const (
	PrefixV2   = "/v2/"
	PrefixAuth = "/v3/auth/"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// Paging defaults and bounds of the list call.
const (
	DefaultLimit = 10
	MaxLimit     = 1000
)

// SubjectTokenHeader carries an issued IAM token.
const SubjectTokenHeader = "X-Subject-Token"

type handler struct {
	svc    *ferry.Service
	auth   *httpauth.Authenticator
	logger *slog.Logger
	mux    *http.ServeMux
	routes []string
}

// op is one authenticated route's work: it writes nothing and returns the
// status and body of a success, or an error.
type op func(ctx context.Context, r *http.Request) (int, any, error)

// New returns the DCS dialect handler. It serves full paths under PrefixV2
// and PrefixAuth.
func New(svc *ferry.Service, auth *httpauth.Authenticator, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	if auth == nil {
		auth = httpauth.New(svc)
	}
	h := &handler{svc: svc, auth: auth, logger: logger.With("dialect", "dcs"), mux: http.NewServeMux()}
	h.routes = append(h.routes, "POST /v3/auth/tokens")
	h.mux.HandleFunc("POST /v3/auth/tokens", h.tokens)
	h.route("POST /v2/{project_id}/migration-task", h.create)
	h.route("GET /v2/{project_id}/migration-tasks", h.list)
	h.route("DELETE /v2/{project_id}/migration-tasks/delete", h.batchDelete)
	h.route("DELETE /v2/{project_id}/migration-tasks", h.batchDelete)
	h.route("GET /v2/{project_id}/migration-task/{task_id}", h.show)
	h.route("POST /v2/{project_id}/migration-task/{task_id}/stop", h.stop)
	h.route("GET /v2/{project_id}/migration-task/{task_id}/stats", h.stats)
	h.route("POST /v2/{project_id}/migration/instance", h.createOnline)
	h.route("POST /v2/{project_id}/migration/{task_id}/task", h.setOnline)
	h.route("POST /v2/{project_id}/migration-task/batch-stop", h.batchStop)
	h.route("POST /v2/{project_id}/migration-tasks/batch-restart", h.batchRestart)
	h.route("PUT /v2/{project_id}/migration-task/{task_id}", h.update)
	h.route("POST /v2/{project_id}/migration-task/{task_id}/exchange-ip", h.exchangeIP)
	h.route("POST /v2/{project_id}/migration-task/{task_id}/rollback-ip", h.rollbackIP)
	h.route("POST /v2/{project_id}/migration-task/{task_id}/sync-stop", h.syncStop)
	h.route("GET /v2/{project_id}/migration-task/{task_id}/logs", h.logs)
	h.mux.HandleFunc(PrefixV2, h.unmatched)
	h.mux.HandleFunc(PrefixAuth, h.unmatched)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Routes returns the ServeMux pattern of every route.
func (h *handler) Routes() []string { return append([]string(nil), h.routes...) }

// Handler returns the route pattern r matches (a prefix pattern for paths
// no route serves), for metrics labels.
func (h *handler) Handler(r *http.Request) (http.Handler, string) { return h.mux.Handler(r) }

func (h *handler) route(pattern string, fn op) {
	h.routes = append(h.routes, pattern)
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		defer h.recoverPanic(w, r)
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		// A malformed project id is a 400 before anything else, as DCS does.
		if pid := r.PathValue("project_id"); !ferry.ValidID(pid) {
			h.writeError(w, r, &ferry.Error{Code: ferry.EINVALID, Field: "project_id", Reason: "INVALID_PROJECT_ID",
				Message: fmt.Sprintf("Invalid project ID format: %q is not a 24-hex ferry project id.", pid)})
			return
		}
		p, err := h.auth.Check(w, r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		status, body, err := fn(ferry.WithPrincipal(r.Context(), p), r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, body)
	})
}

func (h *handler) recoverPanic(w http.ResponseWriter, r *http.Request) {
	if v := recover(); v != nil {
		h.logger.Error("panic", "method", r.Method, "path", r.URL.Path, "panic", v)
		h.writeError(w, r, fmt.Errorf("panic: %v", v))
	}
}

// unmatched answers paths no route serves: 405 (with Allow) when the path
// exists for other methods, else 404 DCS.4041.
func (h *handler) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pat := h.mux.Handler(probe); pat != "" && pat != PrefixV2 && pat != PrefixAuth {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.writeError(w, r, &ferry.Error{Code: codeMethodNotAllowed, Message: fmt.Sprintf("%s is not allowed on %s (allowed: %s).", r.Method, r.URL.Path, strings.Join(allow, ", "))})
		return
	}
	h.writeError(w, r, &ferry.Error{Code: ferry.ENOTFOUND, Reason: "NO_SUCH_API", Message: fmt.Sprintf("API not found: %s %s.", r.Method, r.URL.Path)})
}

// ---- errors ----

// codeMethodNotAllowed is a dialect-local error code for a path served for
// other methods only.
const codeMethodNotAllowed = "method_not_allowed"

// Error codes of the DCS dialect.
const (
	CodeInvalidParam     = "DCS.4001"
	CodeInvalidProjectID = "DCS.4002"
	CodeEngineNotBuilt   = "DCS.4007"
	CodeStateConflict    = "DCS.4026"
	CodeUnauthorized     = "DCS.4010"
	CodeForbidden        = "DCS.4030"
	CodeNotFound         = "DCS.4040"
	CodeNoSuchAPI        = "DCS.4041"
	CodeMethodNotAllowed = "DCS.4050"
	CodeTooManyRequests  = "DCS.4290"
	CodeInternal         = "DCS.5000"
	CodeNotImplemented   = "DCS.5010"
	CodeBodyTooLarge     = "DCS.4130"
	CodeHeaderTooLarge   = "DCS.4310"
	CodeClientClosed     = "DCS.4990"
)

// StatusOf maps a ferry error (code and reason) to the HTTP status and error
// code of the DCS dialect. It is the only place that does.
func StatusOf(code, reason string) (int, string) {
	switch code {
	case ferry.EINVALID:
		switch reason {
		case "INVALID_PROJECT_ID":
			return http.StatusBadRequest, CodeInvalidProjectID
		case "ENGINE_NOT_AVAILABLE":
			return http.StatusBadRequest, CodeEngineNotBuilt
		}
		return http.StatusBadRequest, CodeInvalidParam
	case ferry.ECONFLICT:
		return http.StatusBadRequest, CodeStateConflict
	case ferry.EUNAUTHORIZED:
		return http.StatusUnauthorized, CodeUnauthorized
	case ferry.EFORBIDDEN:
		return http.StatusForbidden, CodeForbidden
	case ferry.ENOTFOUND:
		if reason == "NO_SUCH_API" {
			return http.StatusNotFound, CodeNoSuchAPI
		}
		return http.StatusNotFound, CodeNotFound
	case codeMethodNotAllowed:
		return http.StatusMethodNotAllowed, CodeMethodNotAllowed
	case ferry.ERATELIMIT:
		return http.StatusTooManyRequests, CodeTooManyRequests
	case ferry.ENOTIMPLEMENTED:
		return http.StatusNotImplemented, CodeNotImplemented
	case ferry.ETOOLARGE:
		return http.StatusRequestEntityTooLarge, CodeBodyTooLarge
	case ferry.EHEADERTOOLARGE:
		return http.StatusRequestHeaderFieldsTooLarge, CodeHeaderTooLarge
	case ferry.ECANCELED:
		return httpauth.StatusClientClosedRequest, CodeClientClosed
	}
	return http.StatusInternalServerError, CodeInternal
}

// errorBody is DCS's error body.
type errorBody struct {
	ErrorMsg    string  `json:"error_msg"`
	ErrorCode   string  `json:"error_code"`
	ErrorExtMsg *string `json:"error_ext_msg"`
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := h.errBody(r, err)
	writeJSON(w, status, body)
}

// errBody maps err to its status and DCS error body (internal errors are
// logged and answered without detail).
func (h *handler) errBody(r *http.Request, err error) (int, errorBody) {
	err = httpauth.ClientGone(r, err)
	fe := ferry.AsError(err)
	if fe != nil && fe.Code == ferry.ECANCELED {
		h.logger.Debug("request canceled by the client", "method", r.Method, "path", r.URL.Path)
	} else if fe == nil || fe.Code == ferry.EINTERNAL {
		h.logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		fe = &ferry.Error{Code: ferry.EINTERNAL, Message: "Internal service error."}
	}
	status, code := StatusOf(fe.Code, fe.Reason)
	msg := fe.Message
	if fe.Field != "" && !strings.HasPrefix(msg, "Invalid project ID") {
		msg = fe.Field + ": " + msg
	}
	body := errorBody{ErrorMsg: truncate(msg, 1024), ErrorCode: code}
	if fe.Advice != "" {
		ext := truncate(fe.Advice, 1024)
		body.ErrorExtMsg = &ext
	}
	return status, body
}

// truncate bounds s to n bytes (the seed's "Maximum: 1024") without
// splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for i := 0; i < utf8.UTFMax && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
