package ferry

import (
	"errors"
	"fmt"
)

// Error codes of the domain. Each API dialect maps them to its own HTTP
// status and error body in one place.
const (
	EINVALID        = "invalid"         // the request is malformed or fails validation
	EUNAUTHORIZED   = "unauthorized"    // no or bad credentials
	EFORBIDDEN      = "forbidden"       // credentials lack the role
	ENOTFOUND       = "not_found"       // no such resource (or not visible to the caller)
	ECONFLICT       = "conflict"        // illegal state transition, duplicate name, ...
	ENOTIMPLEMENTED = "not_implemented" // a capability that is not built yet
	ERATELIMIT      = "rate_limited"
	ETOOLARGE       = "too_large"        // the request body (or another part) is larger than allowed
	EHEADERTOOLARGE = "header_too_large" // the request header is larger than allowed
	ECANCELED       = "canceled"         // the client went away before the answer: not a fault
	EINTERNAL       = "internal"
)

// Error is the domain's typed error.
type Error struct {
	Code    string
	Message string
	// Field names the request field at fault, if any ("source.addrs").
	Field string
	// Reason is an optional machine-readable sub-code a dialect may surface
	// (for example "ILLEGAL_STATE_TRANSITION").
	Reason string
	// Advice tells the user what to do about it.
	Advice string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("ferry %s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("ferry %s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EINVALID error naming a request field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain; other
// errors are internal and their text is not shown to API callers.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// AsError returns the first *Error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
