package server

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// post sends body with content type ct (and extra headers).
func (e *env) post(t *testing.T, path, ct, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", ct)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func iamBody(user, pass, scopeProject string) string {
	scope := ""
	if scopeProject != "" {
		scope = `,"scope":{"project":{"id":"` + scopeProject + `"}}`
	}
	return `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"` + user + `","password":"` + pass + `","domain":{"name":"d"}}}}` + scope + `}}`
}

func oauthForm(id, secret string) string {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}.Encode()
}

const formCT = "application/x-www-form-urlencoded"

// TestTokenEndpointsRateLimited: the IAM and OAuth token endpoints take
// key pairs in their bodies; wrong pairs count against the failed
// authentication limit (429 in the endpoint's own body afterwards) and
// right ones against the key's request limit.
func TestTokenEndpointsRateLimited(t *testing.T) {
	t.Run("dcs failed", func(t *testing.T) {
		e := setup(t, httpauth.Limits{FailedPerAddr: 0.1}) // burst 1
		if st, _, body := e.post(t, "/v3/auth/tokens", "application/json", iamBody(e.pub, "wrong", ""), nil); st != 401 {
			t.Fatalf("wrong password: %d %s", st, body)
		}
		st, hdr, body := e.post(t, "/v3/auth/tokens", "application/json", iamBody(e.pub, "wrong-again", ""), nil)
		if st != 429 || !strings.Contains(body, `"error_code":"DCS.4290"`) || hdr.Get("Retry-After") == "" {
			t.Fatalf("second wrong password: %d %s", st, body)
		}
		// The address is blocked for the other endpoint too.
		if st, _, body := e.post(t, "/api/oauth/token", formCT, oauthForm(e.pub, e.priv), nil); st != 429 || !strings.Contains(body, `"error":"temporarily_unavailable"`) {
			t.Fatalf("oauth from a blocked address: %d %s", st, body)
		}
	})
	t.Run("atlas failed", func(t *testing.T) {
		e := setup(t, httpauth.Limits{FailedPerAddr: 0.1})
		if st, _, body := e.post(t, "/api/oauth/token", formCT, oauthForm(e.pub, "wrong"), nil); st != 401 {
			t.Fatalf("wrong secret: %d %s", st, body)
		}
		if st, _, body := e.post(t, "/api/oauth/token", formCT, oauthForm(e.pub, "wrong2"), nil); st != 429 || strings.Contains(body, "wrong") {
			t.Fatalf("second wrong secret: %d %s", st, body)
		}
		if st, _, body := e.post(t, "/api/oauth/revoke", formCT, oauthForm(e.pub, "wrong3")+"&token=x", nil); st != 429 {
			t.Fatalf("revoke from a blocked address: %d %s", st, body)
		}
	})
	t.Run("per key", func(t *testing.T) {
		e := setup(t, httpauth.Limits{PerKey: 0.5}) // burst 1
		if st, _, body := e.post(t, "/api/oauth/token", formCT, oauthForm(e.pub, e.priv), nil); st != 200 {
			t.Fatalf("first token: %d %s", st, body)
		}
		if st, _, body := e.post(t, "/v3/auth/tokens", "application/json", iamBody(e.pub, e.priv, ""), nil); st != 429 || !strings.Contains(body, "DCS.4290") {
			t.Fatalf("second token of the key: %d %s", st, body)
		}
	})
}

// TestTokensCappedPerKey: a key holds at most MaxTokensPerKey tokens;
// issuing more revokes the oldest.
func TestTokensCappedPerKey(t *testing.T) {
	e := setup(t)
	e.svc.MaxTokensPerKey = 3
	var toks []string
	for range 5 {
		raw, _, err := e.svc.IssueToken(context.Background(), e.pub, e.priv)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, raw)
	}
	for i, tok := range toks {
		st, _, body := e.get(t, "/api/v1/projects", map[string]string{"Authorization": "Bearer " + tok})
		if want := map[bool]int{true: 401, false: 200}[i < 2]; st != want {
			t.Errorf("token %d: %d, want %d (%s)", i, st, want, body)
		}
	}
}

// TestTokenScope: an IAM token issued for project A acts on A only: not on
// another project of the same organization, not on the organization.
func TestTokenScope(t *testing.T) {
	e := setup(t)
	sys := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	b, err := e.svc.CreateProject(sys, e.proj.OrgID, "project-b-name")
	if err != nil {
		t.Fatal(err)
	}
	st, hdr, body := e.post(t, "/v3/auth/tokens", "application/json", iamBody(e.pub, e.priv, e.proj.ID), nil)
	tok := hdr.Get("X-Subject-Token")
	if st != 201 || tok == "" {
		t.Fatalf("scoped token: %d %s", st, body)
	}
	x := map[string]string{"X-Auth-Token": tok}
	if st, _, body := e.get(t, "/v2/"+e.proj.ID+"/migration-tasks", x); st != 200 {
		t.Fatalf("own project: %d %s", st, body)
	}
	for _, path := range []string{"/v2/" + b.ID + "/migration-tasks", "/api/v1/projects/" + b.ID, "/api/atlas/v2/groups/" + b.ID, "/api/omsp/v2/migrations?projectId=" + b.ID} {
		st, _, body := e.get(t, path, x)
		if st < 400 || st >= 500 || strings.Contains(body, "project-b-name") {
			t.Errorf("%s with a token scoped to another project: %d %s", path, st, body)
		}
	}
	st, _, body = e.get(t, "/api/v1/projects", x)
	if st != 200 || strings.Contains(body, b.ID) || !strings.Contains(body, e.proj.ID) {
		t.Errorf("project list with a scoped token: %d %s", st, body)
	}
	st, _, body = e.post(t, "/api/v1/orgs/"+e.proj.OrgID+"/api-keys", "application/json", `{"role":"ORG_OWNER"}`, x)
	if st != 403 && st != 404 {
		t.Errorf("a scoped token creating an org key: %d %s", st, body)
	}
	// A scope the key cannot see is refused at issuance.
	st, _, body = e.post(t, "/v3/auth/tokens", "application/json", iamBody(e.pub, e.priv, ferry.NewID()), nil)
	if st != 404 {
		t.Errorf("token for an unknown project: %d %s", st, body)
	}
}
