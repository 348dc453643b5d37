package httpauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/ferrymigrate/ferry"
)

// StatusClientClosedRequest is the status of an answer to a client that
// went away before it (nginx's 499): it shows in logs and metrics only.
const StatusClientClosedRequest = 499

// ClientGone returns an ECANCELED error when err comes from r's client
// having gone away (r's context is canceled and err is context.Canceled or
// an untyped, internal error), else err unchanged. Dialects call it before
// mapping an error, so that a cancelled request is neither logged as an
// internal error nor answered 500.
func ClientGone(r *http.Request, err error) error {
	if err == nil || r.Context().Err() == nil {
		return err
	}
	if ferry.ErrorCode(err) != ferry.EINTERNAL && !errors.Is(err, context.Canceled) {
		return err
	}
	return &ferry.Error{Code: ferry.ECANCELED, Message: "The client closed the request before it was answered."}
}

// ReadBody reads r's body, at most limit bytes: a longer body is an
// ETOOLARGE error (and, through http.MaxBytesReader, the connection is
// closed after the answer rather than drained); a body that cannot be read
// (the client stalled past the server's read deadline, or went away) is
// EINVALID with reason BODY_UNREADABLE.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if err := CheckHeader(r); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, BodyError(err, limit)
	}
	return b, nil
}

// BodyError maps an error reading a body limited by http.MaxBytesReader to
// limit bytes: ETOOLARGE for *http.MaxBytesError, else EINVALID
// BODY_UNREADABLE.
func BodyError(err error, limit int64) error {
	var big *http.MaxBytesError
	if errors.As(err, &big) {
		return TooLarge(limit)
	}
	return &ferry.Error{Code: ferry.EINVALID, Reason: "BODY_UNREADABLE", Message: "The request body could not be read."}
}

// TooLarge is the error of a body over limit bytes.
func TooLarge(limit int64) error {
	return &ferry.Error{Code: ferry.ETOOLARGE, Reason: "BODY_TOO_LARGE", Message: fmt.Sprintf("The request body is larger than %d bytes.", limit)}
}
