package httpauth

// AK/SK request signing as Huawei Cloud's SDKs do it (the SDK-HMAC-SHA256
// scheme of huaweicloud-sdk-go-v3's core/auth/signer): AK is an API key's
// public key, SK its private key.
//
// The client sends
//
//	Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=h1;h2, Signature=HEX
//	X-Sdk-Date: 20060102T150405Z
//
// where Signature = hex(HMAC-SHA256(SK, StringToSign)),
//
//	StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(sha256(CanonicalRequest))
//	CanonicalRequest = method \n URI \n query \n headers \n signed-headers \n payload-hash
//
// URI is the path with each segment percent-encoded (all but A-Z a-z 0-9
// - _ . ~) and a trailing "/"; query is the decoded parameters sorted by
// name then value, each name=value encoded the same way, joined by "&";
// headers are "name:value" (value trimmed) lines, one per signed header in
// the order given, each followed by \n; payload-hash is the value of the
// signed X-Sdk-Content-Sha256 header when the client sent one, else
// hex(sha256(body)).
//
// ferry checks it with the key's stored HMAC states (ferry.APIKey.SignHMAC)
// and adds: X-Sdk-Date must be signed and within SDKClockSkew of the
// server's clock; a body is always covered (UNSIGNED-PAYLOAD only for an
// empty body; a given content hash must be the body's); and a signature is
// accepted once: the same signature again within the skew window is
// refused as a replay. The replay guard is in memory, per ferry process.
// The SDK's X-Sdk-Date has one-second resolution, so two identical
// requests of one client within one second carry the same signature: the
// second is refused and must be sent again a second later.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferrymigrate/ferry"
)

// SDK-HMAC-SHA256 names.
const (
	SDKHMACScheme    = "SDK-HMAC-SHA256"
	SDKDateHeader    = "X-Sdk-Date"
	SDKContentHeader = "X-Sdk-Content-Sha256"
	SDKDateFormat    = "20060102T150405Z"
	unsignedPayload  = "UNSIGNED-PAYLOAD"
)

// SDKClockSkew is how far X-Sdk-Date may be from the server's clock.
const SDKClockSkew = 15 * time.Minute

// MaxSignedBody bounds the body a signed request may carry (it is read
// whole to be hashed).
const MaxSignedBody = 8 << 20

// Limits of the Authorization header parser.
const (
	maxAuthHeader     = 8 << 10
	maxSignedHeaders  = 64
	signatureHexBytes = 2 * sha256.Size
)

// SDKAuthorization is a parsed SDK-HMAC-SHA256 Authorization header.
type SDKAuthorization struct {
	Access        string
	SignedHeaders []string // lower case, in the order signed
	Signature     []byte
}

func unauthorized(format string, args ...any) error {
	return &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: fmt.Sprintf(format, args...)}
}

// ParseSDKAuthorization parses a whole Authorization header value of the
// SDK-HMAC-SHA256 scheme. Every malformation is an EUNAUTHORIZED error
// naming it.
func ParseSDKAuthorization(h string) (*SDKAuthorization, error) {
	if len(h) > maxAuthHeader {
		return nil, unauthorized("the Authorization header exceeds %d bytes", maxAuthHeader)
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, SDKHMACScheme) {
		return nil, unauthorized("the Authorization header is not of scheme %s", SDKHMACScheme)
	}
	var out SDKAuthorization
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, unauthorized("malformed %s parameter %q (want name=value)", SDKHMACScheme, clip(part))
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		lk := strings.ToLower(k)
		if seen[lk] {
			return nil, unauthorized("%s parameter %s is given twice", SDKHMACScheme, clip(k))
		}
		seen[lk] = true
		switch lk {
		case "access":
			if v == "" || strings.ContainsAny(v, " \t\r\n;") || !printable(v) {
				return nil, unauthorized("malformed Access (the API public key)")
			}
			out.Access = v
		case "signedheaders":
			if v == "" {
				return nil, unauthorized("SignedHeaders is empty")
			}
			names := strings.Split(v, ";")
			if len(names) > maxSignedHeaders {
				return nil, unauthorized("more than %d signed headers", maxSignedHeaders)
			}
			dup := map[string]bool{}
			for _, n := range names {
				if n == "" || !headerToken(n) || n != strings.ToLower(n) {
					return nil, unauthorized("malformed signed header name %q (lower-case header names separated by ';')", clip(n))
				}
				if dup[n] {
					return nil, unauthorized("signed header %s is listed twice", n)
				}
				dup[n] = true
			}
			out.SignedHeaders = names
		case "signature":
			if len(v) != signatureHexBytes {
				return nil, unauthorized("Signature must be %d hex digits", signatureHexBytes)
			}
			sig, err := hex.DecodeString(v)
			if err != nil {
				return nil, unauthorized("Signature must be %d hex digits", signatureHexBytes)
			}
			out.Signature = sig
		default:
			return nil, unauthorized("unknown %s parameter %q", SDKHMACScheme, clip(k))
		}
	}
	switch {
	case out.Access == "":
		return nil, unauthorized("%s credentials lack Access", SDKHMACScheme)
	case out.SignedHeaders == nil:
		return nil, unauthorized("%s credentials lack SignedHeaders", SDKHMACScheme)
	case out.Signature == nil:
		return nil, unauthorized("%s credentials lack Signature", SDKHMACScheme)
	}
	return &out, nil
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// headerToken reports whether s is an HTTP token (RFC 9110 tchar).
func headerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// sdkEscape percent-encodes every byte but A-Z a-z 0-9 - _ . ~, upper-case
// hex, as the signer does.
func sdkEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// SDKCanonicalURI is the canonical form of a (decoded) request path.
func SDKCanonicalURI(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = sdkEscape(s)
	}
	u := strings.Join(segs, "/")
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u
}

// SDKCanonicalQuery is the canonical form of a raw query string.
func SDKCanonicalQuery(raw string) (string, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", err
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, sdkEscape(k)+"="+sdkEscape(v))
		}
	}
	return strings.Join(parts, "&"), nil
}

// SDKStringToSign builds the string a request's signature covers, from the
// request and its body. It checks what the scheme requires of the request
// itself (signed date, present headers, payload hash) and returns the
// X-Sdk-Date it carries.
func SDKStringToSign(r *http.Request, auth *SDKAuthorization, body []byte) (string, time.Time, error) {
	var dateSigned, contentSigned bool
	var hdr strings.Builder
	for _, name := range auth.SignedHeaders {
		var vals []string
		switch name {
		case "host":
			vals = []string{r.Host}
		default:
			vals = append(vals, r.Header.Values(name)...)
		}
		if len(vals) == 0 {
			return "", time.Time{}, unauthorized("signed header %s is not in the request", name)
		}
		sort.Strings(vals)
		for _, v := range vals {
			hdr.WriteString(name + ":" + strings.TrimSpace(v) + "\n")
		}
		switch name {
		case "x-sdk-date":
			dateSigned = true
		case "x-sdk-content-sha256":
			contentSigned = true
		}
	}
	if !dateSigned {
		return "", time.Time{}, unauthorized("%s must be a signed header", SDKDateHeader)
	}
	dates := r.Header.Values(SDKDateHeader)
	if len(dates) != 1 {
		return "", time.Time{}, unauthorized("exactly one %s header is required", SDKDateHeader)
	}
	date := strings.TrimSpace(dates[0])
	t, err := time.Parse(SDKDateFormat, date)
	if err != nil || t.UTC().Format(SDKDateFormat) != date {
		return "", time.Time{}, unauthorized("%s %q is not of the form %s (UTC)", SDKDateHeader, clip(date), SDKDateFormat)
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if cs := r.Header.Values(SDKContentHeader); len(cs) > 0 {
		if !contentSigned || len(cs) != 1 {
			return "", time.Time{}, unauthorized("%s must be sent once and signed", SDKContentHeader)
		}
		switch v := strings.TrimSpace(cs[0]); {
		case v == unsignedPayload:
			if len(body) > 0 {
				return "", time.Time{}, unauthorized("%s: ferry requires a signed payload (the body's SHA-256) for a request with a body", SDKContentHeader)
			}
			payload = v
		case strings.EqualFold(v, payload):
			payload = v
		default:
			return "", time.Time{}, unauthorized("%s does not match the body", SDKContentHeader)
		}
	}
	query, err := SDKCanonicalQuery(r.URL.RawQuery)
	if err != nil {
		return "", time.Time{}, unauthorized("malformed query string")
	}
	cr := strings.Join([]string{r.Method, SDKCanonicalURI(r.URL.Path), query, hdr.String(), strings.Join(auth.SignedHeaders, ";"), payload}, "\n")
	crSum := sha256.Sum256([]byte(cr))
	return SDKHMACScheme + "\n" + date + "\n" + hex.EncodeToString(crSum[:]), t, nil
}

// sdkHMAC authenticates an SDK-HMAC-SHA256 request.
func (a *Authenticator) sdkHMAC(r *http.Request, header string) (*ferry.Principal, error) {
	auth, err := ParseSDKAuthorization(header)
	if err != nil {
		return nil, err
	}
	body, err := readSignedBody(r)
	if err != nil {
		return nil, err
	}
	sts, t, err := SDKStringToSign(r, auth, body)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if a.Service != nil && a.Service.Now != nil {
		now = a.Service.Now()
	}
	if d := now.Sub(t); d > SDKClockSkew || d < -SDKClockSkew {
		return nil, unauthorized("%s %s is more than %s away from the server's clock (%s); sync the client's clock", SDKDateHeader, t.UTC().Format(SDKDateFormat), SDKClockSkew, now.UTC().Format(SDKDateFormat))
	}
	bad := unauthorized("the request signature does not match (wrong AK/SK, or the request was changed after signing)")
	k, err := a.Service.DigestKey(r.Context(), auth.Access)
	if err != nil {
		return nil, bad
	}
	if !k.CanSign() {
		return nil, unauthorized("API key %s was created before ferry accepted AK/SK signing; create a new API key to sign requests with it", k.PublicKey)
	}
	if !k.VerifyHMAC([]byte(sts), auth.Signature) {
		return nil, bad
	}
	switch sdkReplay.check(auth.Signature, now) {
	case replaySeen:
		return nil, unauthorized("replayed request: this signature was already used; sign each request anew (X-Sdk-Date has one-second resolution: send an identical request again a second later)")
	case replayFull:
		return nil, &ferry.Error{Code: ferry.ERATELIMIT, Message: "too many signed requests in the replay window", Advice: "retry after 1 s"}
	}
	return ferry.PrincipalOf(k), nil
}

// readSignedBody reads r's body for hashing and puts it back for the
// handler.
func readSignedBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxSignedBody+1))
	r.Body.Close()
	if err != nil {
		return nil, &ferry.Error{Code: ferry.EINVALID, Reason: "BODY_UNREADABLE", Message: "The request body could not be read."}
	}
	if len(body) > MaxSignedBody {
		return nil, &ferry.Error{Code: ferry.EINVALID, Reason: "BODY_TOO_LARGE", Message: fmt.Sprintf("A signed request body must not exceed %d bytes.", MaxSignedBody)}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// ---- replay guard ----

type replayResult int

const (
	replayNew replayResult = iota
	replaySeen
	replayFull
)

// replayGuard remembers accepted signatures for longer than window: two
// generations, the older dropped when the newer is a window old. A
// signature dated within ±SDKClockSkew can be accepted only during 2×skew
// of server time, so a window of 2×skew covers its whole life.
type replayGuard struct {
	mu        sync.Mutex
	cur, prev map[[sha256.Size]byte]struct{}
	since     time.Time
	window    time.Duration
	max       int
}

// replayMax bounds the signatures remembered (about 64 bytes each).
const replayMax = 1 << 20

var sdkReplay = newReplayGuard(2*SDKClockSkew, replayMax)

func newReplayGuard(window time.Duration, max int) *replayGuard {
	return &replayGuard{window: window, max: max, cur: map[[sha256.Size]byte]struct{}{}, prev: map[[sha256.Size]byte]struct{}{}}
}

func (g *replayGuard) check(sig []byte, now time.Time) replayResult {
	var k [sha256.Size]byte
	copy(k[:], sig)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.since.IsZero() {
		g.since = now
	}
	if now.Sub(g.since) >= g.window {
		// cur holds signatures of [since, since+window): each has lived
		// longer than a window when the next rotation drops it.
		g.prev = g.cur
		g.cur = map[[sha256.Size]byte]struct{}{}
		g.since = now
	}
	if _, ok := g.cur[k]; ok {
		return replaySeen
	}
	if _, ok := g.prev[k]; ok {
		return replaySeen
	}
	if len(g.cur)+len(g.prev) >= g.max {
		return replayFull
	}
	g.cur[k] = struct{}{}
	return replayNew
}
