package httpauth

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ferrymigrate/ferry"
)

type headerLimitKey struct{}

// HeaderSize is the size of r's request line and header fields as they
// came on the wire (each field "Name: value\r\n").
func HeaderSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// MarkHeaderTooLarge returns a context saying that the request's header is
// over limit bytes. The server sets it (its hard net/http bound is larger,
// so that such a request still reaches its dialect); Authenticate and
// ReadBody then refuse the request with EHEADERTOOLARGE, which every
// dialect answers as 431 in its own error body.
func MarkHeaderTooLarge(ctx context.Context, limit int) context.Context {
	return context.WithValue(ctx, headerLimitKey{}, limit)
}

// CheckHeader returns the EHEADERTOOLARGE error of a request whose context
// MarkHeaderTooLarge marked, else nil.
func CheckHeader(r *http.Request) error {
	limit, ok := r.Context().Value(headerLimitKey{}).(int)
	if !ok {
		return nil
	}
	return &ferry.Error{Code: ferry.EHEADERTOOLARGE, Reason: "HEADER_TOO_LARGE", Message: fmt.Sprintf("The request header is larger than %d bytes.", limit)}
}
