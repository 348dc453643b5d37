// Package oms serves the OceanBase Migration Service (OMS) dialect of ferry's
// API under /api/omsp/v2: the migration-project progress call of OMS V3.3
// (the seed) and its siblings in the same REST style. Like every dialect it
// is a thin edge: each handler decodes, calls one *ferry.Service method and
// maps the job to OMS's names, enums and response wrapper.
//
// # Routes
//
//	POST   /api/omsp/v2/migrations                        create a project (INIT; not started)   CreateProject
//	GET    /api/omsp/v2/migrations                        list, paged (pageNumber, pageSize)     ListProjects
//	GET    /api/omsp/v2/migrations/{projectId}            detail with steps                      DescribeProject
//	DELETE /api/omsp/v2/migrations/{projectId}            delete (not while running)             DeleteProject
//	GET    /api/omsp/v2/migrations/{projectId}/progress   the seed                               DescribeProjectProgress
//	GET    /api/omsp/v2/migrations/{projectId}/steps      steps                                  DescribeProjectSteps
//	POST   /api/omsp/v2/migrations/{projectId}/start      INIT/FAILED -> RUNNING                 StartProject
//	POST   /api/omsp/v2/migrations/{projectId}/stop       RUNNING -> SUSPEND                     StopProject
//	POST   /api/omsp/v2/migrations/{projectId}/resume     SUSPEND -> RUNNING                     ResumeProject
//	POST   /api/omsp/v2/migrations/{projectId}/release    -> RELEASING/RELEASED                  ReleaseProject
//
// The right-hand column names the OMS V4 OpenAPI action (POST
// /api/v2?Action=...) each REST path stands for; V4 bodies keyed by "id" are
// not served, the id is in the path as in the seed.
//
// # Tenancy
//
// OMS's {projectId} is a migration project: here it is the ferry migration
// id. OMS has no tenant in its paths: a call naming a project acts in the
// ferry project (tenant) the job belongs to, for any key that can see it, so
// an ORG_* key needs no parameter of ferry's own (the query parameter
// projectId, alias groupId, may still narrow it). Calls naming no job (create,
// list) take the tenant from the query's projectId, the body's projectId, the
// registered endpoint named (create), or a GROUP_* key's own project; an
// ORG_* key lists every project it can see. A migration of a project the key
// cannot see, or of another engine than MySQL, is NOT_FOUND.
//
// # Wrapper
//
// Every answer is {success, code, message, advice, requestId, pageNumber,
// pageSize, totalCount, cost, data}; errors add errorDetail (as OMS V4 does).
// On success code and message are "success", advice is "", the page fields
// are null except on lists. requestId is also sent as the X-Request-Id header;
// cost is "N ms".
package oms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// Prefix is the path prefix the server mounts this dialect on.
const Prefix = "/api/omsp/"

const base = "/api/omsp/v2"

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// Paging defaults and bounds of list calls.
const (
	DefaultPageSize = 10
	MaxPageSize     = 100
)

// RequestIDHeader carries the request id of every answer.
const RequestIDHeader = "X-Request-Id"

type handler struct {
	svc    *ferry.Service
	auth   *httpauth.Authenticator
	logger *slog.Logger
	mux    *http.ServeMux
	routes []string
}

// call is one request in flight.
type call struct {
	start     time.Time
	requestID string
}

// page is the paging part of a list answer.
type page struct {
	number, size, total int
}

// op is one route's work: it returns the data of the wrapper (and, for
// lists, the page) or an error.
type op func(ctx context.Context, r *http.Request) (any, *page, error)

// New returns the OMS dialect handler. It serves full paths under Prefix.
func New(svc *ferry.Service, auth *httpauth.Authenticator, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	if auth == nil {
		auth = httpauth.New(svc)
	}
	h := &handler{svc: svc, auth: auth, logger: logger.With("dialect", "oms"), mux: http.NewServeMux()}
	h.route("POST "+base+"/migrations", h.create)
	h.route("GET "+base+"/migrations", h.list)
	h.route("GET "+base+"/migrations/{id}", h.detail)
	h.route("DELETE "+base+"/migrations/{id}", h.delete)
	h.route("GET "+base+"/migrations/{id}/progress", h.progress)
	h.route("GET "+base+"/migrations/{id}/steps", h.steps)
	h.route("POST "+base+"/migrations/{id}/start", h.start)
	h.route("POST "+base+"/migrations/{id}/stop", h.stop)
	h.route("POST "+base+"/migrations/{id}/resume", h.resume)
	h.route("POST "+base+"/migrations/{id}/release", h.release)
	h.mux.HandleFunc(Prefix, h.unmatched)
	h.mux.HandleFunc(V4Path, h.serveV4)
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
		c := h.begin(w)
		defer h.recoverPanic(w, r, c)
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		p, err := h.auth.Check(w, r)
		if err != nil {
			scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			if ferry.ErrorCode(err) == ferry.EUNAUTHORIZED && r.Header.Get("X-Auth-Token") == "" && (scheme == "" || strings.EqualFold(scheme, "digest")) {
				h.auth.Challenge(w)
			}
			h.writeError(w, r, c, err)
			return
		}
		data, pg, err := fn(ferry.WithPrincipal(r.Context(), p), r)
		if err != nil {
			h.writeError(w, r, c, err)
			return
		}
		h.writeSuccess(w, c, data, pg)
	})
}

func (h *handler) begin(w http.ResponseWriter) *call {
	c := &call{start: time.Now(), requestID: newRequestID()}
	w.Header().Set(RequestIDHeader, c.requestID)
	return c
}

func (h *handler) recoverPanic(w http.ResponseWriter, r *http.Request, c *call) {
	if v := recover(); v != nil {
		h.logger.Error("panic", "method", r.Method, "path", r.URL.Path, "requestId", c.requestID, "panic", v)
		h.writeError(w, r, c, fmt.Errorf("panic: %v", v))
	}
}

// unmatched answers paths under Prefix no route serves: METHOD_NOT_ALLOWED
// (405, with Allow) when the path exists for other methods, else NOT_FOUND.
func (h *handler) unmatched(w http.ResponseWriter, r *http.Request) {
	c := h.begin(w)
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pat := h.mux.Handler(probe); pat != "" && pat != Prefix {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.writeError(w, r, c, &ferry.Error{Code: codeMethodNotAllowed, Reason: "METHOD_NOT_ALLOWED",
			Message: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
		return
	}
	h.writeError(w, r, c, &ferry.Error{Code: ferry.ENOTFOUND, Reason: "NO_SUCH_API",
		Message: fmt.Sprintf("no OMS API %s %s", r.Method, r.URL.Path),
		Advice:  "OMS calls live under " + base + "/migrations"})
}

// newRequestID returns a UUID-shaped (version 4) request id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}
