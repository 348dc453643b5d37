package httpauth

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/sqlite"
)

func newTestAuth(t *testing.T) (*Authenticator, string, string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := ferry.NewService(db, ferry.NewRegistry(), nil)
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "o")
	if err != nil {
		t.Fatal(err)
	}
	k, priv, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "")
	if err != nil {
		t.Fatal(err)
	}
	return New(svc), k.PublicKey, priv
}

func hexmd5(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// challengeNonce asks a for a challenge and returns its nonce.
func challengeNonce(t *testing.T, a *Authenticator) string {
	t.Helper()
	w := httptest.NewRecorder()
	a.Challenge(w)
	h := w.Header().Get("WWW-Authenticate")
	p := parseParams(strings.TrimPrefix(h, "Digest "))
	if p["nonce"] == "" || p["qop"] != "auth" {
		t.Fatalf("challenge %q", h)
	}
	return p["nonce"]
}

// digestHeader computes the Authorization header a client sends (RFC 7616,
// MD5, qop=auth).
func digestHeader(pub, priv, method, uri, nonce string, nc int) string {
	ha1 := hexmd5(pub + ":" + ferry.DigestRealm + ":" + priv)
	ha2 := hexmd5(method + ":" + uri)
	ncs := fmt.Sprintf("%08x", nc)
	resp := hexmd5(ha1 + ":" + nonce + ":" + ncs + ":0a4f113b:auth:" + ha2)
	return fmt.Sprintf(`Digest username=%q, realm=%q, nonce=%q, uri=%q, algorithm=MD5, qop=auth, nc=%s, cnonce="0a4f113b", response=%q`,
		pub, ferry.DigestRealm, nonce, uri, ncs, resp)
}

func authAs(a *Authenticator, method, target, header string) error {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Authorization", header)
	_, err := a.Authenticate(r)
	return err
}

// TestDigestReplay replays captured Digest headers: on another path (the
// reproduced attack: a resume call's header creating an API key), on the same
// path, with a lower count, and without qop. Only fresh, matching headers
// pass.
func TestDigestReplay(t *testing.T) {
	a, pub, priv := newTestAuth(t)
	n := challengeNonce(t, a)
	const resume = "/api/atlas/v2/groups/0123456789abcdef01234567/pipelines/x/resume"
	const keys = "/api/v1/orgs/0123456789abcdef01234567/api-keys"
	captured := digestHeader(pub, priv, "POST", resume, n, 1)

	// The header is bound to its request target.
	if err := authAs(a, "POST", keys, captured); ferry.ErrorCode(err) != ferry.EUNAUTHORIZED {
		t.Fatalf("a resume header replayed on %s: %v, want unauthorized", keys, err)
	}
	if err := authAs(a, "POST", resume+"?x=1", captured); ferry.ErrorCode(err) != ferry.EUNAUTHORIZED {
		t.Fatalf("a header replayed with another query: %v, want unauthorized", err)
	}
	if err := authAs(a, "POST", resume, captured); err != nil {
		t.Fatalf("the genuine request: %v", err)
	}
	// The same header again (same nonce, same nc) is a replay.
	if err := authAs(a, "POST", resume, captured); ferry.ErrorCode(err) != ferry.EUNAUTHORIZED {
		t.Fatalf("the header replayed on its own path: %v, want unauthorized", err)
	}
	// A client may reuse the nonce with a growing count, on any path it
	// signs for; a lower count is refused.
	if err := authAs(a, "GET", keys, digestHeader(pub, priv, "GET", keys, n, 3)); err != nil {
		t.Fatalf("nc 3: %v", err)
	}
	if err := authAs(a, "GET", keys, digestHeader(pub, priv, "GET", keys, n, 2)); ferry.ErrorCode(err) != ferry.EUNAUTHORIZED {
		t.Fatalf("nc 2 after nc 3: %v, want unauthorized", err)
	}
	// The query is part of the target.
	q := "/api/v1/projects?offset=0&limit=5"
	if err := authAs(a, "GET", q, digestHeader(pub, priv, "GET", q, n, 4)); err != nil {
		t.Fatalf("a target with a query: %v", err)
	}
	// A wrong password never records a count (no burning a client's nonce).
	n2 := challengeNonce(t, a)
	if err := authAs(a, "GET", keys, digestHeader(pub, "wrong", "GET", keys, n2, 1)); ferry.ErrorCode(err) != ferry.EUNAUTHORIZED {
		t.Fatalf("a wrong password: %v", err)
	}
	if err := authAs(a, "GET", keys, digestHeader(pub, priv, "GET", keys, n2, 1)); err != nil {
		t.Fatalf("nc 1 after a failed attempt with the nonce: %v", err)
	}
	// Without qop there is no count to track: refused.
	n3 := challengeNonce(t, a)
	ha1 := hexmd5(pub + ":" + ferry.DigestRealm + ":" + priv)
	legacy := fmt.Sprintf(`Digest username=%q, realm=%q, nonce=%q, uri=%q, response=%q`, pub, ferry.DigestRealm, n3, keys,
		hexmd5(ha1+":"+n3+":"+hexmd5("GET:"+keys)))
	if err := authAs(a, "GET", keys, legacy); ferry.ErrorCode(err) != ferry.EUNAUTHORIZED {
		t.Fatalf("a qop-less response: %v, want unauthorized", err)
	}
	// Two challenges never share a nonce, even within one second.
	if x, y := challengeNonce(t, a), challengeNonce(t, a); x == y {
		t.Fatalf("two challenges gave the same nonce %s", x)
	}
}

// TestNonceCountsBounded fills a small nonce memory: it never grows past
// its bound, and a forgotten nonce is refused rather than replayable.
func TestNonceCountsBounded(t *testing.T) {
	c := newNonceCounts(4)
	now := timeAt(1000)
	for i := range 10 {
		if !c.use(fmt.Sprintf("n%d", i), int64(1000+i), 1, now) {
			t.Fatalf("nonce %d refused", i)
		}
		if c.len() > 4 {
			t.Fatalf("%d nonces tracked, bound 4", c.len())
		}
	}
	if c.use("n0", 1000, 1, now) || c.use("n0", 1000, 2, now) {
		t.Fatal("a forgotten nonce was accepted again")
	}
	if !c.use("n9", 1009, 2, now) || c.use("n9", 1009, 2, now) {
		t.Fatal("a tracked nonce: count 2 once")
	}
	// Expired nonces leave.
	c.expire(timeAt(1009 + 3600))
	if c.len() != 0 {
		t.Fatalf("%d nonces left after their expiry", c.len())
	}
}

// TestDigestRealClientForms checks the header shapes real clients send:
// curl's (unquoted qop and nc, uri with the query) and Go's
// mongodb-forks/digest transport (quoted algorithm, nc=%08x).
func TestDigestRealClientForms(t *testing.T) {
	a, pub, priv := newTestAuth(t)
	for _, target := range []string{"/api/atlas/v2/groups?pretty=true", "/api/atlas/v2/groups/abc", "/v2/x/migration-tasks?offset=0&limit=10"} {
		n := challengeNonce(t, a)
		h := digestHeader(pub, priv, "GET", target, n, 1)
		h = strings.Replace(h, "algorithm=MD5", `algorithm="MD5"`, 1)
		if err := authAs(a, "GET", target, h); err != nil {
			t.Errorf("%s: %v", target, err)
		}
	}
}

func timeAt(sec int64) time.Time { return time.Unix(sec, 0) }
