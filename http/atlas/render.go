package atlas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// DefaultVersion is the resource version answered when the caller asks for
// plain JSON (or sends no Accept header).
const DefaultVersion = "2023-01-01"

// Versions are the Atlas Admin API v2 resource versions Atlas has published
// (the SDK's openapi/versions.json) that this dialect accepts in
// `Accept: application/vnd.atlas.YYYY-MM-DD+json`. Every version is served
// with the same shapes: the resources ferry implements did not change shape
// between them, except the live migration create body, whose 2023-01-01
// field `dropEnabled` is accepted as an alias of `dropDestinationData`.
var Versions = []string{
	"2023-01-01", "2023-02-01", "2023-10-01", "2023-11-15",
	"2024-05-30", "2024-08-05", "2024-10-23", "2024-11-13",
	"2025-02-19", "2025-03-12",
}

func knownVersion(v string) bool {
	for _, x := range Versions {
		if x == v {
			return true
		}
	}
	return false
}

// opts are the per-request rendering options.
type opts struct {
	version  string
	envelope bool
	pretty   bool
}

// contentType is the media type of a successful answer.
func (o opts) contentType() string {
	v := o.version
	if v == "" {
		v = DefaultVersion
	}
	return "application/vnd.atlas." + v + "+json"
}

// httpError is an error the dialect itself raises for protocol-level faults
// that have no domain code (406 version negotiation, 405 method).
type httpError struct {
	status int
	code   string
	detail string
}

func (e *httpError) Error() string { return e.detail }

// apiError is Atlas's ApiError body.
type apiError struct {
	Detail           string            `json:"detail"`
	Error            int               `json:"error"`
	ErrorCode        string            `json:"errorCode"`
	Parameters       []any             `json:"parameters"`
	Reason           string            `json:"reason"`
	BadRequestDetail *badRequestDetail `json:"badRequestDetail,omitempty"`
}

type badRequestDetail struct {
	Fields []fieldViolation `json:"fields"`
}

type fieldViolation struct {
	Description string `json:"description"`
	Field       string `json:"field"`
}

// reasonCodes translates ferry's machine-readable reasons into the error
// codes Atlas uses for the same condition; reasons not listed pass through
// unchanged (they already are Atlas-style UPPER_SNAKE codes).
var reasonCodes = map[string]string{
	"INSUFFICIENT_ROLE":      "USER_UNAUTHORIZED",
	"ENGINE_NOT_AVAILABLE":   "VALIDATION_ERROR",
	"EXPORTER_NOT_AVAILABLE": "VALIDATION_ERROR",
}

// toAPIError is the one place where an error becomes an HTTP status and an
// Atlas error body. Internal errors are reported without their text.
func toAPIError(err error) apiError {
	var he *httpError
	if errors.As(err, &he) {
		return apiError{Error: he.status, ErrorCode: he.code, Reason: http.StatusText(he.status), Detail: he.detail, Parameters: []any{}}
	}
	e := ferry.AsError(err)
	if e == nil {
		return apiError{Error: 500, ErrorCode: "UNEXPECTED_ERROR", Reason: http.StatusText(500), Detail: "Unexpected error.", Parameters: []any{}}
	}
	var status int
	var code string
	switch e.Code {
	case ferry.EINVALID:
		status, code = http.StatusBadRequest, "VALIDATION_ERROR"
	case ferry.EUNAUTHORIZED:
		status, code = http.StatusUnauthorized, "UNAUTHORIZED"
	case ferry.EFORBIDDEN:
		status, code = http.StatusForbidden, "USER_UNAUTHORIZED"
	case ferry.ENOTFOUND:
		status, code = http.StatusNotFound, "RESOURCE_NOT_FOUND"
	case ferry.ECONFLICT:
		status, code = http.StatusConflict, "CONFLICT"
	case ferry.ENOTIMPLEMENTED:
		status, code = http.StatusNotImplemented, "NOT_IMPLEMENTED"
	case ferry.ERATELIMIT:
		status, code = http.StatusTooManyRequests, "RATE_LIMITED"
	case ferry.ETOOLARGE:
		status, code = http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE"
	case ferry.EHEADERTOOLARGE:
		status, code = http.StatusRequestHeaderFieldsTooLarge, "REQUEST_HEADER_TOO_LARGE"
	case ferry.ECANCELED:
		return apiError{Error: httpauth.StatusClientClosedRequest, ErrorCode: "CLIENT_CLOSED_REQUEST", Reason: "Client Closed Request", Detail: e.Message, Parameters: []any{}}
	default:
		return apiError{Error: 500, ErrorCode: "UNEXPECTED_ERROR", Reason: http.StatusText(500), Detail: "Unexpected error.", Parameters: []any{}}
	}
	if e.Reason != "" && e.Code != ferry.EUNAUTHORIZED {
		code = e.Reason
		if c, ok := reasonCodes[e.Reason]; ok {
			code = c
		}
	}
	detail := e.Message
	if e.Field != "" && !strings.Contains(detail, e.Field) {
		detail = e.Field + " " + detail
	}
	if e.Advice != "" {
		detail += " (" + e.Advice + ")"
	}
	out := apiError{Error: status, ErrorCode: code, Reason: http.StatusText(status), Detail: detail, Parameters: []any{}}
	if e.Field != "" {
		out.Parameters = []any{e.Field}
		if status == http.StatusBadRequest {
			out.BadRequestDetail = &badRequestDetail{Fields: []fieldViolation{{Field: e.Field, Description: e.Message}}}
		}
	}
	return out
}

// fieldErr returns a 400 error with an Atlas code naming a request field.
func fieldErr(code, field, format string, args ...any) error {
	return &ferry.Error{Code: ferry.EINVALID, Reason: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// encode marshals v, indented when pretty.
func encode(v any, pretty bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if pretty {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		// Every value rendered here is built from plain structs; this is a
		// programming error, answered as one.
		return []byte(`{"detail":"Unexpected error.","error":500,"errorCode":"UNEXPECTED_ERROR","parameters":[],"reason":"Internal Server Error"}` + "\n")
	}
	return buf.Bytes()
}

// envelope wraps a single resource for envelope=true.
type envelope struct {
	Content any `json:"content,omitempty"`
	Status  int `json:"status"`
}

// writeResult renders a successful answer. A nil body writes no body
// (202/204) unless the envelope is asked for.
func writeResult(w http.ResponseWriter, o opts, status int, body any) {
	h := w.Header()
	if o.envelope {
		h.Set("Content-Type", o.contentType())
		var v any
		if l, ok := body.(*listBody); ok {
			l.Status = &status
			v = l
		} else {
			v = envelope{Content: body, Status: status}
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(encode(v, o.pretty))
		return
	}
	if body == nil {
		w.WriteHeader(status)
		return
	}
	h.Set("Content-Type", o.contentType())
	w.WriteHeader(status)
	_, _ = w.Write(encode(body, o.pretty))
}

// writeError renders err as Atlas's error body.
func writeError(w http.ResponseWriter, logger *slog.Logger, r *http.Request, o opts, err error) {
	err = httpauth.ClientGone(r, err)
	ae := toAPIError(err)
	if ae.Error == httpauth.StatusClientClosedRequest && logger != nil {
		logger.Debug("request canceled by the client", "method", r.Method, "path", r.URL.Path)
	} else if ae.Error >= 500 && logger != nil {
		logger.Error("atlas api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.Error == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "60")
	}
	w.Header().Set("Content-Type", "application/json")
	// A 401 stays a 401 even with envelope=true: it carries the Digest
	// challenge, and HTTP clients only answer a challenge on a 401.
	if o.envelope && ae.Error != http.StatusUnauthorized {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(encode(envelope{Content: ae, Status: ae.Error}, o.pretty))
		return
	}
	w.WriteHeader(ae.Error)
	_, _ = w.Write(encode(ae, o.pretty))
}

// parseBool parses an Atlas boolean query parameter.
func parseBool(r *http.Request, name string, def bool) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return def, fieldErr("INVALID_QUERY_PARAMETER", name, "must be true or false, not %q", s)
}

// parseOpts reads envelope and pretty. On error the returned opts are still
// usable to render it.
func parseOpts(r *http.Request) (opts, error) {
	var o opts
	env, err1 := parseBool(r, "envelope", false)
	pretty, err2 := parseBool(r, "pretty", false)
	o.envelope, o.pretty = env, pretty
	if err1 != nil {
		return o, err1
	}
	return o, err2
}

// negotiate picks the resource version from the Accept header: a known
// application/vnd.atlas.DATE+json is honoured, plain JSON, */* or no header
// get DefaultVersion, anything else is 406 INVALID_VERSION_DATE.
func negotiate(accept string) (string, error) {
	bad := &httpError{status: http.StatusNotAcceptable, code: "INVALID_VERSION_DATE", detail: "Invalid accept header or version date."}
	if strings.TrimSpace(accept) == "" {
		return DefaultVersion, nil
	}
	plain := false
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		mt = strings.ToLower(mt)
		if rest, ok := strings.CutPrefix(mt, "application/vnd.atlas."); ok {
			date, ok := strings.CutSuffix(rest, "+json")
			if !ok || !knownVersion(date) {
				return "", bad
			}
			return date, nil
		}
		switch mt {
		case "application/json", "*/*", "application/*":
			plain = true
		}
	}
	if plain {
		return DefaultVersion, nil
	}
	return "", bad
}

// atlasTime formats a time as Atlas does: RFC 3339, UTC, whole seconds, 'Z'.
func atlasTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func atlasTimePtr(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return atlasTime(*t)
}

// itoa is strconv.Itoa, kept short for link building.
func itoa(i int) string { return strconv.Itoa(i) }
