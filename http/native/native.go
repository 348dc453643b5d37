// Package native serves ferry's own JSON API under /api/v1/: the whole model
// (organizations, projects, API keys, endpoints, migrations of every engine,
// pipelines and their runs, validations, agents) with plain REST paths,
// `{"error":{...}}` error bodies and `?offset=&limit=` paging. It is what the
// ferry CLI and the web console call. Like every dialect it is a thin edge:
// each handler decodes, calls one *ferry.Service method and encodes.
package native

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// Prefix is the path prefix of every route of the native API.
const Prefix = "/api/v1/"

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// Paging defaults and bounds.
const (
	DefaultLimit = 100
	MaxLimit     = 500
)

// Handler serves the native API. Besides ServeHTTP it reports the route
// pattern a request matches (Handler), for metrics labels.
type Handler struct {
	svc    *ferry.Service
	auth   *httpauth.Authenticator
	logger *slog.Logger
	mux    *http.ServeMux
	routes []route
}

// route is one registered operation.
type route struct {
	method string
	path   string // ServeMux pattern path, e.g. /api/v1/projects/{projectId}
	public bool   // no authentication
	fn     func(w http.ResponseWriter, r *http.Request) error
}

// New returns the native API handler.
func New(svc *ferry.Service, auth *httpauth.Authenticator, logger *slog.Logger) http.Handler {
	return newHandler(svc, auth, logger)
}

func newHandler(svc *ferry.Service, auth *httpauth.Authenticator, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.Default()
	}
	if auth == nil {
		auth = httpauth.New(svc)
	}
	h := &Handler{svc: svc, auth: auth, logger: logger.With("dialect", "native"), mux: http.NewServeMux()}
	h.register()
	for _, rt := range h.routes {
		h.mux.Handle(rt.method+" "+rt.path, h.wrap(rt))
	}
	h.mux.HandleFunc(Prefix, h.unmatched)
	return h
}

func (h *Handler) handle(method, path string, fn func(w http.ResponseWriter, r *http.Request) error) {
	h.routes = append(h.routes, route{method: method, path: path, fn: fn})
}

func (h *Handler) handlePublic(method, path string, fn func(w http.ResponseWriter, r *http.Request) error) {
	h.routes = append(h.routes, route{method: method, path: path, fn: fn, public: true})
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Handler returns the handler and the route pattern r matches (as
// http.ServeMux.Handler does).
func (h *Handler) Handler(r *http.Request) (http.Handler, string) { return h.mux.Handler(r) }

// Routes returns the ServeMux pattern of every route ("GET /api/v1/orgs").
func (h *Handler) Routes() []string {
	out := make([]string, 0, len(h.routes))
	for _, rt := range h.routes {
		out = append(out, rt.method+" "+rt.path)
	}
	return out
}

func (h *Handler) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.public {
			p, err := h.auth.Check(w, r)
			if err != nil {
				scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
				// Challenge only callers that may answer a Digest challenge
				// (none or Digest credentials): a browser sending Basic must
				// not get a login dialog.
				if ferry.ErrorCode(err) == ferry.EUNAUTHORIZED && r.Header.Get("X-Auth-Token") == "" && (scheme == "" || strings.EqualFold(scheme, "digest")) {
					h.auth.Challenge(w)
				}
				h.writeError(w, r, err)
				return
			}
			r = r.WithContext(ferry.WithPrincipal(r.Context(), p))
		}
		if err := rt.fn(w, r); err != nil {
			h.writeError(w, r, err)
		}
	})
}

// unmatched answers paths under /api/v1/ no route serves: 405 with Allow
// when the path exists for other methods, else 404.
func (h *Handler) unmatched(w http.ResponseWriter, r *http.Request) {
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
		h.writeErrorStatus(w, http.StatusMethodNotAllowed, &ferry.Error{Code: ferry.EINVALID, Reason: "METHOD_NOT_ALLOWED",
			Message: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
		return
	}
	h.writeError(w, r, &ferry.Error{Code: ferry.ENOTFOUND, Reason: "NO_SUCH_ROUTE",
		Message: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path), Advice: "see GET /api/v1/openapi.json"})
}

// ---- errors ----

// errorBody is the native error envelope.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Advice  string `json:"advice,omitempty"`
}

// StatusOf maps a ferry error code to the HTTP status of the native API.
// It is the only place that does.
func StatusOf(code string) int {
	switch code {
	case ferry.EINVALID:
		return http.StatusBadRequest
	case ferry.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case ferry.EFORBIDDEN:
		return http.StatusForbidden
	case ferry.ENOTFOUND:
		return http.StatusNotFound
	case ferry.ECONFLICT:
		return http.StatusConflict
	case ferry.ENOTIMPLEMENTED:
		return http.StatusNotImplemented
	case ferry.ERATELIMIT:
		return http.StatusTooManyRequests
	case ferry.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case ferry.EHEADERTOOLARGE:
		return http.StatusRequestHeaderFieldsTooLarge
	case ferry.ECANCELED:
		return httpauth.StatusClientClosedRequest
	}
	return http.StatusInternalServerError
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	err = httpauth.ClientGone(r, err)
	fe := ferry.AsError(err)
	if fe != nil && fe.Code == ferry.ECANCELED {
		h.logger.Debug("request canceled by the client", "method", r.Method, "path", r.URL.Path)
	} else if fe == nil {
		h.logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		fe = &ferry.Error{Code: ferry.EINTERNAL, Message: "Internal error."}
	} else if fe.Code == ferry.EINTERNAL {
		h.logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	h.writeErrorStatus(w, StatusOf(fe.Code), fe)
}

func (h *Handler) writeErrorStatus(w http.ResponseWriter, status int, fe *ferry.Error) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: fe.Code, Message: fe.Message, Field: fe.Field, Reason: fe.Reason, Advice: fe.Advice}})
}

// ---- encoding ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decode reads a JSON body into v, rejecting unknown fields, wrong types,
// trailing data and bodies over MaxBodyBytes with EINVALID errors.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "UNSUPPORTED_MEDIA_TYPE", Message: fmt.Sprintf("the body must be JSON (Content-Type: application/json), not %q", ct)}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: "the body must hold exactly one JSON object"}
	}
	return nil
}

// decodeOptional is decode for bodies that may be empty.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return nil
	}
	err := decode(w, r, v)
	if fe := ferry.AsError(err); fe != nil && fe.Reason == "BODY_REQUIRED" {
		return nil
	}
	return err
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var big *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return &ferry.Error{Code: ferry.EINVALID, Reason: "BODY_REQUIRED", Message: "a JSON request body is required"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: "malformed JSON: unexpected end of the body"}
	case errors.As(err, &syn):
		return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error())}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: fmt.Sprintf("the body must be a JSON object, not a %s", typ.Value)}
		}
		return &ferry.Error{Code: ferry.EINVALID, Field: field, Reason: "INVALID_TYPE", Message: fmt.Sprintf("must be %s, not a JSON %s", typeName(typ), typ.Value)}
	case errors.As(err, &big):
		return httpauth.TooLarge(MaxBodyBytes)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &ferry.Error{Code: ferry.EINVALID, Field: name, Reason: "UNKNOWN_FIELD", Message: fmt.Sprintf("unknown field %q", name)}
	}
	if fe := ferry.AsError(err); fe != nil {
		return fe
	}
	return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: "malformed JSON: " + err.Error()}
}

func typeName(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "another type"
	}
	switch e.Type.Kind().String() {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "a " + e.Type.String()
}

// ---- paging and parameters ----

// page is ?offset=&limit=.
type page struct{ offset, limit int }

func paging(r *http.Request) (page, error) {
	p := page{limit: DefaultLimit}
	q := r.URL.Query()
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return p, &ferry.Error{Code: ferry.EINVALID, Field: "offset", Reason: "INVALID_PARAMETER", Message: fmt.Sprintf("must be a non-negative integer, not %q", s)}
		}
		p.offset = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return p, &ferry.Error{Code: ferry.EINVALID, Field: "limit", Reason: "INVALID_PARAMETER", Message: fmt.Sprintf("must be an integer from 1 to %d, not %q", MaxLimit, s)}
		}
		p.limit = n
	}
	return p, nil
}

// list is the envelope of every list answer.
type list[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

func newList[T any](items []T, total int, p page) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items, Total: total, Offset: p.offset, Limit: p.limit}
}

// pageSlice pages a complete in-memory list.
func pageSlice[T any](all []T, p page) ([]T, int) {
	n := len(all)
	if p.offset >= n {
		return []T{}, n
	}
	end := min(p.offset+p.limit, n)
	return all[p.offset:end], n
}

// idParam returns a path parameter that must be a 24-hex id.
func idParam(r *http.Request, name string) (string, error) {
	v := r.PathValue(name)
	if !ferry.ValidID(v) {
		return "", &ferry.Error{Code: ferry.EINVALID, Field: name, Reason: "INVALID_ID", Message: fmt.Sprintf("%q is not a valid 24-hex id", v)}
	}
	return v, nil
}
