// Package httpauth authenticates ferry's HTTP callers for every API dialect:
// HTTP Digest with an API key pair (what `curl --digest --user PUB:PRIV`
// sends), HTTP Basic with the same pair, `Authorization: Bearer` tokens and
// `X-Auth-Token` tokens issued by ferry.
package httpauth

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
)

// NonceTTL is how long a Digest nonce stays valid.
const NonceTTL = 5 * time.Minute

// Authenticator checks credentials against the service.
type Authenticator struct {
	Service *ferry.Service
	secret  [32]byte
	// perKey and failed are the rate limits Check applies (SetLimits).
	perKey, failed *Limiter
	// counts remembers the highest nonce count seen per nonce, so that a
	// captured Digest header cannot be replayed.
	counts *nonceCounts
}

// New returns an authenticator with a fresh nonce secret.
func New(svc *ferry.Service) *Authenticator {
	a := &Authenticator{Service: svc, counts: newNonceCounts(MaxTrackedNonces)}
	_, _ = rand.Read(a.secret[:])
	return a
}

// Authenticate returns the caller's principal. With no credentials at all
// it returns an EUNAUTHORIZED error; callers should then send Challenge.
func (a *Authenticator) Authenticate(r *http.Request) (*ferry.Principal, error) {
	if err := CheckHeader(r); err != nil {
		return nil, err
	}
	ctx := r.Context()
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		return a.Service.AuthenticateToken(ctx, tok)
	}
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "":
		return nil, &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "credentials are required"}
	case "bearer":
		return a.Service.AuthenticateToken(ctx, strings.TrimSpace(rest))
	case "basic":
		pub, priv, ok := r.BasicAuth()
		if !ok {
			return nil, &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "malformed Basic credentials"}
		}
		return a.Service.AuthenticateKey(ctx, pub, priv)
	case "digest":
		return a.digest(ctx, r, rest)
	case "sdk-hmac-sha256": // AK/SK signing (sdkhmac.go)
		return a.sdkHMAC(r, h)
	}
	return nil, &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: fmt.Sprintf("unsupported authorization scheme %q", scheme)}
}

// Challenge sets the WWW-Authenticate header of a 401 answer.
func (a *Authenticator) Challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Digest realm="%s", domain="", nonce="%s", algorithm=MD5, qop="auth", stale=false`, ferry.DigestRealm, a.nonce(time.Now())))
}

// nonce returns a fresh nonce issued at t: "unix-seconds.random.mac", the
// MAC (keyed by the process's secret) binding the two. Every challenge gets
// its own random part, so two clients never share a nonce.
func (a *Authenticator) nonce(t time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return a.nonceWith(t.Unix(), hex.EncodeToString(b[:]))
}

func (a *Authenticator) nonceWith(sec int64, random string) string {
	head := strconv.FormatInt(sec, 10) + "." + random
	m := hmac.New(sha256.New, a.secret[:])
	m.Write([]byte(head))
	return head + "." + hex.EncodeToString(m.Sum(nil))[:32]
}

// nonceIssued checks n's MAC and age and returns when it was issued.
func (a *Authenticator) nonceIssued(n string, now time.Time) (int64, bool) {
	ts, rest, ok := strings.Cut(n, ".")
	if !ok {
		return 0, false
	}
	random, _, ok := strings.Cut(rest, ".")
	if !ok || len(random) != 16 {
		return 0, false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		return 0, false
	}
	t := time.Unix(sec, 0)
	if now.Sub(t) > NonceTTL || t.Sub(now) > time.Minute {
		return 0, false
	}
	return sec, hmac.Equal([]byte(a.nonceWith(sec, random)), []byte(n))
}

// parseParams parses `k="v", k2=v2` Digest parameters.
func parseParams(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ,\t")
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		k := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = s[eq+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			s = s[1:]
			var b strings.Builder
			i := 0
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					break
				}
				b.WriteByte(s[i])
			}
			v = b.String()
			if i < len(s) {
				i++
			}
			s = s[i:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			v = strings.TrimSpace(s[:end])
			s = s[end:]
		}
		out[k] = v
	}
	return out
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// digest checks an RFC 7616 Digest response (MD5, qop=auth) to request r:
// the uri parameter must be r's request target, and the nonce count must
// grow with every request made with one nonce.
func (a *Authenticator) digest(ctx context.Context, r *http.Request, params string) (*ferry.Principal, error) {
	var key *ferry.APIKey
	lookup := func(user string) (string, bool) {
		k, err := a.Service.DigestKey(ctx, user)
		if err != nil {
			return "", false
		}
		key = k
		return k.DigestHA1, true
	}
	if err := a.checkDigest(r.Method, requestTargets(r), parseParams(params), lookup, time.Now()); err != nil {
		return nil, err
	}
	return ferry.PrincipalOf(key), nil
}

// requestTargets are the forms of r's request target a client may have put
// in the Digest uri: what it sent (RequestURI) and, for a server-side
// request without one, the URL's path and query.
func requestTargets(r *http.Request) []string {
	t := []string{r.RequestURI}
	if u := r.URL.RequestURI(); u != r.RequestURI {
		t = append(t, u)
	}
	return t
}

var errDigest = &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "invalid Digest credentials"}

// checkDigest checks Digest parameters p of a request of method to one of
// targets; lookup returns the HA1 of a user name. A response that checks
// out records its nonce count, so the same header is refused next time.
func (a *Authenticator) checkDigest(method string, targets []string, p map[string]string, lookup func(string) (string, bool), now time.Time) error {
	if p["username"] == "" || p["nonce"] == "" || p["response"] == "" || p["uri"] == "" {
		return errDigest
	}
	if p["realm"] != ferry.DigestRealm {
		return errDigest
	}
	if alg := strings.ToUpper(p["algorithm"]); alg != "" && alg != "MD5" {
		return &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "unsupported Digest algorithm " + alg}
	}
	if p["qop"] != "auth" {
		return &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: `Digest credentials must use qop="auth" (RFC 7616)`}
	}
	nc, err := parseNC(p["nc"])
	if err != nil || p["cnonce"] == "" {
		return errDigest
	}
	if !slices.Contains(targets, p["uri"]) {
		return &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "the Digest uri does not match the request"}
	}
	issued, ok := a.nonceIssued(p["nonce"], now)
	if !ok {
		return &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "stale or invalid Digest nonce"}
	}
	ha1, ok := lookup(p["username"])
	if !ok {
		return errDigest
	}
	ha2 := md5hex(method + ":" + p["uri"])
	want := md5hex(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(p["response"]))) != 1 {
		return errDigest
	}
	if !a.counts.use(p["nonce"], issued, nc, now) {
		return &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "replayed Digest credentials: the nonce count was already used",
			Advice: "answer a fresh challenge, or increase nc with every request"}
	}
	return nil
}

// parseNC parses a nonce count: 8 hex digits, not zero.
func parseNC(s string) (uint64, error) {
	if len(s) != 8 {
		return 0, fmt.Errorf("nc %q: want 8 hex digits", s)
	}
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("nc %q: want 8 hex digits, not zero", s)
	}
	return n, nil
}
