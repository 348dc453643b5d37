package oms

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// codeMethodNotAllowed is a dialect-local error code for a path served for
// other methods only.
const codeMethodNotAllowed = "method_not_allowed"

// Error codes of the wrapper's code field.
const (
	CodeSuccess          = "success"
	CodeParamError       = "PARAM_ERROR"
	CodeUnauthorized     = "UNAUTHORIZED"
	CodeForbidden        = "FORBIDDEN"
	CodeNotFound         = "NOT_FOUND"
	CodeConflict         = "CONFLICT"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodeTooManyRequests  = "TOO_MANY_REQUESTS"
	CodeNotImplemented   = "NOT_IMPLEMENTED"
	CodePayloadTooLarge  = "PAYLOAD_TOO_LARGE"
	CodeHeaderTooLarge   = "REQUEST_HEADER_TOO_LARGE"
	CodeClientClosed     = "CLIENT_CLOSED_REQUEST"
	// CodeInnerError is OMS's own code for a system error (Alibaba Cloud's
	// OMS OpenAPI documents INNER_ERROR as its legacy code).
	CodeInnerError = "INNER_ERROR"
)

// StatusOf maps a ferry error code to the HTTP status and the wrapper code of
// the OMS dialect. It is the only place that does.
func StatusOf(code string) (int, string) {
	switch code {
	case ferry.EINVALID:
		return http.StatusBadRequest, CodeParamError
	case ferry.EUNAUTHORIZED:
		return http.StatusUnauthorized, CodeUnauthorized
	case ferry.EFORBIDDEN:
		return http.StatusForbidden, CodeForbidden
	case ferry.ENOTFOUND:
		return http.StatusNotFound, CodeNotFound
	case ferry.ECONFLICT:
		return http.StatusConflict, CodeConflict
	case codeMethodNotAllowed:
		return http.StatusMethodNotAllowed, CodeMethodNotAllowed
	case ferry.ERATELIMIT:
		return http.StatusTooManyRequests, CodeTooManyRequests
	case ferry.ENOTIMPLEMENTED:
		return http.StatusNotImplemented, CodeNotImplemented
	case ferry.ETOOLARGE:
		return http.StatusRequestEntityTooLarge, CodePayloadTooLarge
	case ferry.EHEADERTOOLARGE:
		return http.StatusRequestHeaderFieldsTooLarge, CodeHeaderTooLarge
	case ferry.ECANCELED:
		return httpauth.StatusClientClosedRequest, CodeClientClosed
	}
	return http.StatusInternalServerError, CodeInnerError
}

// envelope is OMS's response wrapper (the seed's fields, in its order).
type envelope struct {
	Success     bool         `json:"success"`
	Code        string       `json:"code"`
	Message     string       `json:"message"`
	Advice      string       `json:"advice"`
	RequestID   string       `json:"requestId"`
	PageNumber  *int         `json:"pageNumber"`
	PageSize    *int         `json:"pageSize"`
	TotalCount  *int         `json:"totalCount"`
	Cost        string       `json:"cost"`
	Data        any          `json:"data"`
	ErrorDetail *errorDetail `json:"errorDetail,omitempty"`
}

// errorDetail is OMS V4's error detail object.
type errorDetail struct {
	Code     string `json:"code"`
	Level    string `json:"level"`
	Message  string `json:"message"`
	Field    string `json:"field,omitempty"`
	Proposal string `json:"proposal,omitempty"`
}

func cost(c *call) string {
	return fmt.Sprintf("%d ms", time.Since(c.start).Milliseconds())
}

func (h *handler) writeSuccess(w http.ResponseWriter, c *call, data any, pg *page) {
	env := envelope{Success: true, Code: CodeSuccess, Message: "success", RequestID: c.requestID, Cost: cost(c), Data: data}
	if pg != nil {
		env.PageNumber, env.PageSize, env.TotalCount = &pg.number, &pg.size, &pg.total
	}
	writeJSON(w, http.StatusOK, env)
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, c *call, err error) {
	err = httpauth.ClientGone(r, err)
	fe := ferry.AsError(err)
	if fe != nil && fe.Code == ferry.ECANCELED {
		h.logger.Debug("request canceled by the client", "method", r.Method, "path", r.URL.Path, "requestId", c.requestID)
	} else if fe == nil || fe.Code == ferry.EINTERNAL {
		h.logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "requestId", c.requestID, "err", err)
		fe = &ferry.Error{Code: ferry.EINTERNAL, Message: "Internal error.", Advice: "retry later; report request id " + c.requestID + " if it persists"}
	}
	status, code := StatusOf(fe.Code)
	msg := fe.Message
	if fe.Field != "" {
		msg = fe.Field + ": " + msg
	}
	detailCode := fe.Reason
	if detailCode == "" {
		detailCode = code
	}
	writeJSON(w, status, envelope{
		Success: false, Code: code, Message: msg, Advice: fe.Advice, RequestID: c.requestID, Cost: cost(c),
		ErrorDetail: &errorDetail{Code: detailCode, Level: "ERROR", Message: msg, Field: fe.Field, Proposal: fe.Advice},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
