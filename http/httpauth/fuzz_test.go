package httpauth

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

// fuzzKey is the one API key the fuzzed Digest check knows.
const (
	fuzzPub  = "abcd1234"
	fuzzPriv = "0123456789abcdef0123456789abcdef"
)

var fuzzNow = time.Unix(1_700_000_000, 0)

// fuzzAuth returns an authenticator with a fixed secret, so that the seed
// corpus can hold nonces that check out.
func fuzzAuth() *Authenticator {
	return &Authenticator{counts: newNonceCounts(8)}
}

// FuzzDigest feeds arbitrary Authorization parameters, methods and request
// targets to the Digest parser and check. Whatever the input: no panic; a
// header that is accepted names the request's target, and the same header
// is refused the second time (no replay).
func FuzzDigest(f *testing.F) {
	a := fuzzAuth()
	nonce := a.nonceWith(fuzzNow.Unix()-10, "0123456789abcdef")
	valid := digestHeader(fuzzPub, fuzzPriv, "GET", "/api/v1/projects?limit=5", nonce, 1)
	f.Add(strings.TrimPrefix(valid, "Digest "), "GET", "/api/v1/projects?limit=5")
	f.Add(strings.TrimPrefix(valid, "Digest "), "GET", "/api/v1/projects")
	f.Add(strings.TrimPrefix(digestHeader(fuzzPub, fuzzPriv, "POST", "/x", nonce, 0xffffffff), "Digest "), "POST", "/x")
	f.Add(`username="a\"b", realm=ferry, nonce="`+nonce+`", uri="/", qop=auth, nc=00000001, cnonce=x, response=00`, "GET", "/")
	f.Add(`username=, =, ,,, "unterminated`, "GET", "/")
	f.Add(`qop="auth,auth-int", nc=0000000g, algorithm=MD5-sess`, "GET", "/")
	f.Fuzz(func(t *testing.T, params, method, target string) {
		ha1 := hexmd5(fuzzPub + ":" + ferry.DigestRealm + ":" + fuzzPriv)
		lookup := func(user string) (string, bool) { return ha1, user == fuzzPub }
		p := parseParams(params)
		for k := range p {
			if k != strings.ToLower(k) {
				t.Fatalf("parameter name %q is not lower-cased", k)
			}
		}
		a := fuzzAuth()
		err := a.checkDigest(method, []string{target}, p, lookup, fuzzNow)
		if err == nil {
			if p["uri"] != target {
				t.Fatalf("accepted uri %q for target %q", p["uri"], target)
			}
			if p["qop"] != "auth" {
				t.Fatalf("accepted qop %q", p["qop"])
			}
			if err := a.checkDigest(method, []string{target}, p, lookup, fuzzNow); err == nil {
				t.Fatalf("the same header was accepted twice: %q", params)
			}
		} else if ferry.ErrorCode(err) != ferry.EUNAUTHORIZED {
			t.Fatalf("error %v is not unauthorized", err)
		}
	})
}

// TestDigestFuzzSeedsCheck makes sure the fuzz target's first seed is a
// header the check accepts (else the fuzzer would explore refusals only).
func TestDigestFuzzSeedsCheck(t *testing.T) {
	a := fuzzAuth()
	nonce := a.nonceWith(fuzzNow.Unix()-10, "0123456789abcdef")
	h := digestHeader(fuzzPub, fuzzPriv, "GET", "/api/v1/projects?limit=5", nonce, 1)
	ha1 := hexmd5(fuzzPub + ":" + ferry.DigestRealm + ":" + fuzzPriv)
	lookup := func(user string) (string, bool) { return ha1, user == fuzzPub }
	if err := a.checkDigest("GET", []string{"/api/v1/projects?limit=5"}, parseParams(strings.TrimPrefix(h, "Digest ")), lookup, fuzzNow); err != nil {
		t.Fatalf("seed refused: %v (%s)", err, fmt.Sprint(h))
	}
}
