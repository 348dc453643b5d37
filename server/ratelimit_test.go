package server

import (
	"context"

	"github.com/ferrymigrate/ferry"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry/http/httpauth"
)

// TestRateLimitPerKey spends one API key's burst, then checks that every
// dialect refuses the next request with 429, Retry-After and its own error
// body, while another key is not affected.
func TestRateLimitPerKey(t *testing.T) {
	e := setup(t, httpauth.Limits{PerKey: 0.5}) // burst 1, a token back every 2 s
	auth := map[string]string{"Authorization": "Basic " + basic(e.pub, e.priv)}
	st, hdr, body := e.get(t, "/api/v1/projects", auth)
	if st != 200 {
		t.Fatalf("first request: %d %s", st, body)
	}
	if hdr.Get("RateLimit-Limit") != "1" || hdr.Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit headers %q %q", hdr.Get("RateLimit-Limit"), hdr.Get("RateLimit-Remaining"))
	}
	p := e.proj.ID
	for _, c := range []struct{ dialect, path, want string }{
		{"native", "/api/v1/projects", `"code":"rate_limited"`},
		{"atlas", "/api/atlas/v2/groups/" + p, `"errorCode":"RATE_LIMITED"`},
		{"oms", "/api/omsp/v2/migrations?projectId=" + p, `"code":"TOO_MANY_REQUESTS"`},
		{"dcs", "/v2/" + p + "/migration-tasks", `"error_code":"DCS.4290"`},
	} {
		st, hdr, body := e.get(t, c.path, auth)
		if st != 429 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 429 with %s", c.dialect, st, body, c.want)
		}
		if n, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || n < 1 || n > 2 {
			t.Errorf("%s: Retry-After %q", c.dialect, hdr.Get("Retry-After"))
		}
		if hdr.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: a 429 must not challenge", c.dialect)
		}
	}
	// The limit is per key: a second key still gets through.
	k, priv := e.newKey(t)
	if st, _, body := e.get(t, "/api/v1/projects", map[string]string{"Authorization": "Basic " + basic(k, priv)}); st != 200 {
		t.Fatalf("other key: %d %s", st, body)
	}
}

// TestRateLimitFailedAuth: an address that keeps failing authentication is
// refused with 429 before its credentials are even checked.
func TestRateLimitFailedAuth(t *testing.T) {
	e := setup(t, httpauth.Limits{FailedPerAddr: 0.1}) // burst 1
	bad := map[string]string{"Authorization": "Basic " + basic(e.pub, "wrong")}
	if st, _, body := e.get(t, "/api/v1/projects", bad); st != 401 {
		t.Fatalf("bad password: %d %s", st, body)
	}
	good := map[string]string{"Authorization": "Basic " + basic(e.pub, e.priv)}
	st, hdr, body := e.get(t, "/api/v1/projects", good)
	if st != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "failed authentications") {
		t.Fatalf("after a failure burst: %d %q %s", st, hdr.Get("Retry-After"), body)
	}
	if strings.Contains(body, e.priv) || strings.Contains(body, "wrong") {
		t.Fatalf("the answer leaks a credential: %s", body)
	}
}

func (e *env) newKey(t *testing.T) (pub, priv string) {
	t.Helper()
	sys := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	k, priv, err := e.svc.CreateAPIKey(sys, e.proj.OrgID, "", ferry.RoleOrgOwner, "")
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey, priv
}
