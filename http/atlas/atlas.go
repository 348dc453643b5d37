// Package atlas is ferry's MongoDB Atlas Admin API v2 dialect: live
// migrations (Cloud Migration Service), Data Lake pipelines and their runs,
// organizations and projects (groups), and the OAuth client-credentials
// token endpoint, in Atlas's paths, field names, enums, pagination,
// envelope, versioned media types and error body. It maps requests to
// *ferry.Service calls and nothing else: authorization, validation and state
// transitions happen in the service.
package atlas

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

const (
	apiPrefix   = "/api/atlas/v2"
	oauthPrefix = "/api/oauth"
)

// apiFunc serves one authenticated Atlas route. It returns the HTTP status
// and the body to render (nil: no body), or an error.
type apiFunc func(r *http.Request) (int, any, error)

type handler struct {
	svc    *ferry.Service
	auth   *httpauth.Authenticator
	logger *slog.Logger
	mux    *http.ServeMux
	routes []string
}

// New returns the Atlas dialect's handler. It serves every path under
// /api/atlas/v2/ and /api/oauth/ (full paths: mount it at both prefixes).
func New(svc *ferry.Service, auth *httpauth.Authenticator, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	h := &handler{svc: svc, auth: auth, logger: logger.With("dialect", "atlas"), mux: http.NewServeMux()}

	// Organizations and projects.
	h.api("GET /groups", h.listGroups)
	h.api("POST /groups", h.createGroup)
	h.api("GET /groups/{groupId}", h.getGroup)
	h.api("PATCH /groups/{groupId}", h.updateGroup)
	h.api("DELETE /groups/{groupId}", h.deleteGroup)
	// GET /groups/byName/{groupName} cannot be a pattern of its own: it
	// would conflict with GET /groups/{groupId}/pipelines and
	// /liveMigrations, so every GET of two segments under /groups lands here.
	h.api("GET /groups/{groupId}/{groupName}", h.getGroupByName)
	h.api("GET /orgs", h.listOrgs)
	h.api("GET /orgs/{orgId}", h.getOrg)
	h.api("GET /orgs/{orgId}/groups", h.listOrgGroups)

	// Live migrations.
	h.api("POST /groups/{groupId}/liveMigrations", h.createLiveMigration)
	h.api("GET /groups/{groupId}/liveMigrations", h.listLiveMigrations)
	h.api("GET /groups/{groupId}/liveMigrations/{liveMigrationId}", h.getLiveMigration)
	h.api("PUT /groups/{groupId}/liveMigrations/{liveMigrationId}/cutover", h.cutoverLiveMigration)
	h.api("POST /groups/{groupId}/liveMigrations/validate", h.validateLiveMigration)
	h.api("GET /groups/{groupId}/liveMigrations/validate/{validationId}", h.getValidation)
	h.api("POST /orgs/{orgId}/liveMigrations/linkTokens", h.createLinkToken)
	h.api("DELETE /orgs/{orgId}/liveMigrations/linkTokens", h.deleteLinkTokens)
	h.api("GET /orgs/{orgId}/liveMigrations/availableProjects", h.availableProjects)

	// Data Lake pipelines.
	h.api("GET /groups/{groupId}/pipelines", h.listPipelines)
	h.api("POST /groups/{groupId}/pipelines", h.createPipeline)
	h.api("GET /groups/{groupId}/pipelines/{pipelineName}", h.getPipeline)
	h.api("PATCH /groups/{groupId}/pipelines/{pipelineName}", h.updatePipeline)
	h.api("DELETE /groups/{groupId}/pipelines/{pipelineName}", h.deletePipeline)
	h.api("POST /groups/{groupId}/pipelines/{pipelineName}/pause", h.pausePipeline)
	h.api("POST /groups/{groupId}/pipelines/{pipelineName}/resume", h.resumePipeline)
	h.api("POST /groups/{groupId}/pipelines/{pipelineName}/trigger", h.triggerPipeline)
	h.api("GET /groups/{groupId}/pipelines/{pipelineName}/availableSnapshots", h.availableSnapshots)
	h.api("GET /groups/{groupId}/pipelines/{pipelineName}/availableSchedules", h.availableSchedules)
	h.api("GET /groups/{groupId}/pipelines/{pipelineName}/runs", h.listRuns)
	h.api("GET /groups/{groupId}/pipelines/{pipelineName}/runs/{pipelineRunId}", h.getRun)
	h.api("DELETE /groups/{groupId}/pipelines/{pipelineName}/runs/{pipelineRunId}", h.deleteRun)

	// OAuth 2.0 client credentials (service accounts).
	h.handle("POST "+oauthPrefix+"/token", h.token)
	h.handle("POST "+oauthPrefix+"/revoke", h.revoke)
	return h
}

func (h *handler) handle(pattern string, fn http.HandlerFunc) {
	h.routes = append(h.routes, pattern)
	h.mux.HandleFunc(pattern, fn)
}

// Routes returns the ServeMux pattern of every route.
func (h *handler) Routes() []string { return append([]string(nil), h.routes...) }

// Handler returns the route pattern r matches ("" for none), for metrics
// labels.
func (h *handler) Handler(r *http.Request) (http.Handler, string) { return h.mux.Handler(r) }

// api registers an authenticated Atlas route; pattern is "METHOD /path"
// relative to /api/atlas/v2.
func (h *handler) api(pattern string, fn apiFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	h.handle(method+" "+apiPrefix+path, func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, fn)
	})
}

// serve runs the steps every Atlas route shares: query options,
// authentication (a Digest challenge on 401), version negotiation, then the
// route itself, and renders the result.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, fn apiFunc) {
	o, optsErr := parseOpts(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	p, err := h.auth.Check(w, r)
	if err != nil {
		if ferry.ErrorCode(err) == ferry.EUNAUTHORIZED {
			h.auth.Challenge(w)
			err = &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "You are not authorized for this resource."}
		}
		writeError(w, h.logger, r, o, err)
		return
	}
	if optsErr != nil {
		writeError(w, h.logger, r, o, optsErr)
		return
	}
	v, err := negotiate(r.Header.Get("Accept"))
	if err != nil {
		writeError(w, h.logger, r, o, err)
		return
	}
	o.version = v
	r = r.WithContext(ferry.WithPrincipal(r.Context(), p))
	status, body, err := fn(r)
	if err != nil {
		writeError(w, h.logger, r, o, err)
		return
	}
	writeResult(w, o, status, body)
}

// ServeHTTP routes a request; paths no route matches get Atlas's 404 body
// (or 405 when the path exists for other methods), after authentication.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern != "" {
		h.mux.ServeHTTP(w, r)
		return
	}
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		_, pattern := h.mux.Handler(r2)
		if pattern == "" || (pattern == "GET "+apiPrefix+"/groups/{groupId}/{groupName}" && !isByName(r.URL.Path)) {
			continue
		}
		allowed = append(allowed, m)
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
	h.serve(w, r, func(r *http.Request) (int, any, error) {
		if len(allowed) > 0 {
			return 0, nil, &httpError{status: http.StatusMethodNotAllowed, code: "METHOD_NOT_ALLOWED",
				detail: "The method " + r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + strings.Join(allowed, ", ") + "."}
		}
		return 0, nil, &ferry.Error{Code: ferry.ENOTFOUND, Reason: "RESOURCE_NOT_FOUND", Message: "Cannot find resource " + r.URL.Path + "."}
	})
}

func isByName(path string) bool {
	return strings.HasPrefix(path, apiPrefix+"/groups/byName/")
}

// pathID returns the path value name, checked against Atlas's 24-hex id
// pattern; code is the error code of a malformed id.
func pathID(r *http.Request, name, code string) (string, error) {
	v := r.PathValue(name)
	if !ferry.ValidID(v) {
		return "", &ferry.Error{Code: ferry.EINVALID, Reason: code, Field: name,
			Message: "The specified " + name + " " + quote(v) + " is invalid: it must match ^([a-f0-9]{24})$."}
	}
	return v, nil
}

func groupID(r *http.Request) (string, error) { return pathID(r, "groupId", "INVALID_GROUP_ID") }

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "\"" + strings.ReplaceAll(s, "\"", "\\\"") + "\""
}
