package atlas

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

func TestErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{ferry.Errorf(ferry.EINVALID, "bad"), 400, "VALIDATION_ERROR"},
		{&ferry.Error{Code: ferry.EINVALID, Reason: "ENGINE_NOT_AVAILABLE", Field: "engine", Message: "not built"}, 400, "VALIDATION_ERROR"},
		{ferry.Errorf(ferry.EUNAUTHORIZED, "who"), 401, "UNAUTHORIZED"},
		{&ferry.Error{Code: ferry.EFORBIDDEN, Reason: "INSUFFICIENT_ROLE", Message: "no"}, 403, "USER_UNAUTHORIZED"},
		{ferry.Errorf(ferry.EFORBIDDEN, "no"), 403, "USER_UNAUTHORIZED"},
		{ferry.Errorf(ferry.ENOTFOUND, "gone"), 404, "RESOURCE_NOT_FOUND"},
		{&ferry.Error{Code: ferry.ENOTFOUND, Reason: "GROUP_NOT_FOUND", Message: "gone"}, 404, "GROUP_NOT_FOUND"},
		{ferry.Errorf(ferry.ECONFLICT, "busy"), 409, "CONFLICT"},
		{ferry.Errorf(ferry.ENOTIMPLEMENTED, "later"), 501, "NOT_IMPLEMENTED"},
		{ferry.Errorf(ferry.ERATELIMIT, "slow down"), 429, "RATE_LIMITED"},
		{fmt.Errorf("store: %w", ferry.Errorf(ferry.ENOTFOUND, "wrapped")), 404, "RESOURCE_NOT_FOUND"},
		{fmt.Errorf("sqlite: disk I/O error at /var/lib/ferry/ferry.db (password=hunter2)"), 500, "UNEXPECTED_ERROR"},
		{ferry.Errorf(ferry.EINTERNAL, "secret internals"), 500, "UNEXPECTED_ERROR"},
	} {
		rec := httptest.NewRecorder()
		writeError(rec, slog.New(slog.DiscardHandler), httptest.NewRequest("GET", "/api/atlas/v2/x", nil), opts{}, c.err)
		if rec.Code != c.status {
			t.Fatalf("%v: status %d, want %d", c.err, rec.Code, c.status)
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if body["errorCode"] != c.code || body["error"] != float64(c.status) {
			t.Fatalf("%v: body %v, want %s", c.err, body, c.code)
		}
		if c.status == 500 {
			if body["detail"] != "Unexpected error." || strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "internals") {
				t.Fatalf("internal error leaked: %s", rec.Body.String())
			}
		}
		if got := rec.Header().Get("Retry-After"); (c.status == 429) != (got != "") {
			t.Fatalf("%v: Retry-After %q", c.err, got)
		}
	}
}

func TestNegotiate(t *testing.T) {
	for accept, want := range map[string]string{
		"": DefaultVersion, "application/json": DefaultVersion, "*/*": DefaultVersion, "application/*": DefaultVersion,
		"application/json; charset=utf-8":                         DefaultVersion,
		"application/vnd.atlas.2024-10-23+json":                   "2024-10-23",
		"APPLICATION/VND.ATLAS.2023-11-15+JSON":                   "2023-11-15",
		"application/json, application/vnd.atlas.2023-10-01+json": "2023-10-01",
	} {
		got, err := negotiate(accept)
		if err != nil || got != want {
			t.Errorf("negotiate(%q) = %q, %v; want %q", accept, got, err, want)
		}
	}
	for _, accept := range []string{"text/html", "application/xml", "application/vnd.atlas.2022-01-01+json", "application/vnd.atlas.latest+json"} {
		if _, err := negotiate(accept); toAPIError(err).Error != 406 {
			t.Errorf("negotiate(%q) = %v, want 406", accept, err)
		}
	}
}
