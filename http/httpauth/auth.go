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
}

// New returns an authenticator with a fresh nonce secret.
func New(svc *ferry.Service) *Authenticator {
	a := &Authenticator{Service: svc}
	_, _ = rand.Read(a.secret[:])
	return a
}

// Authenticate returns the caller's principal. With no credentials at all
// it returns an EUNAUTHORIZED error; callers should then send Challenge.
func (a *Authenticator) Authenticate(r *http.Request) (*ferry.Principal, error) {
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
		return a.digest(ctx, r.Method, rest)
	case "sdk-hmac-sha256": // AK/SK signing (sdkhmac.go)
		return a.sdkHMAC(r, h)
	}
	return nil, &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: fmt.Sprintf("unsupported authorization scheme %q", scheme)}
}

// Challenge sets the WWW-Authenticate header of a 401 answer.
func (a *Authenticator) Challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Digest realm="%s", domain="", nonce="%s", algorithm=MD5, qop="auth", stale=false`, ferry.DigestRealm, a.nonce(time.Now())))
}

func (a *Authenticator) nonce(t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, a.secret[:])
	m.Write([]byte(ts))
	return ts + "." + hex.EncodeToString(m.Sum(nil))[:32]
}

func (a *Authenticator) nonceValid(n string) bool {
	ts, _, ok := strings.Cut(n, ".")
	if !ok {
		return false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	t := time.Unix(sec, 0)
	if time.Since(t) > NonceTTL || time.Until(t) > time.Minute {
		return false
	}
	return hmac.Equal([]byte(a.nonce(t)), []byte(n))
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

// digest checks an RFC 7616 (MD5, qop=auth or none) response.
func (a *Authenticator) digest(ctx context.Context, method, params string) (*ferry.Principal, error) {
	p := parseParams(params)
	bad := &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "invalid Digest credentials"}
	if p["username"] == "" || p["nonce"] == "" || p["response"] == "" || p["uri"] == "" {
		return nil, bad
	}
	if p["realm"] != ferry.DigestRealm {
		return nil, bad
	}
	if alg := strings.ToUpper(p["algorithm"]); alg != "" && alg != "MD5" {
		return nil, &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "unsupported Digest algorithm " + alg}
	}
	if !a.nonceValid(p["nonce"]) {
		return nil, &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "stale or invalid Digest nonce"}
	}
	k, err := a.Service.DigestKey(ctx, p["username"])
	if err != nil {
		return nil, bad
	}
	ha2 := md5hex(method + ":" + p["uri"])
	var want string
	switch p["qop"] {
	case "auth":
		want = md5hex(k.DigestHA1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	case "":
		want = md5hex(k.DigestHA1 + ":" + p["nonce"] + ":" + ha2)
	default:
		return nil, bad
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(p["response"]))) != 1 {
		return nil, bad
	}
	return ferry.PrincipalOf(k), nil
}
