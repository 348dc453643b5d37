package ferry

import (
	"log/slog"
	"regexp"
	"strings"
)

// RedactedMark is what a hidden secret is replaced with.
const RedactedMark = "******"

var (
	// key=value connection strings (PostgreSQL, ODBC): password=..., pwd=...
	kvSecret = regexp.MustCompile(`(?i)\b(password|passwd|pwd|secret|token|sslpassword)(\s*=\s*)('[^']*'|"[^"]*"|[^\s;&]+)`)
	// a driver DSN without a scheme: user:pass@tcp(host)/db (go-sql-driver/mysql)
	dsnSecret = regexp.MustCompile(`^([^:@/\s]*):([^\s]*)@((tcp|unix|udp|tcp6)?\()`)
)

// RedactURI hides the credentials in a connection string: the password of
// a URI's user info (mongodb://u:p@h, redis://:p@h, postgres://u:p@h/db,
// several hosts included), password-like query parameters
// (?password=, ?tlsCertificateKeyFilePassword=), key=value DSNs
// (password=...) and MySQL driver DSNs (user:pass@tcp(host)/db). The user
// name stays. Every view of every dialect, the CLI and the logs show
// connection strings through it.
func RedactURI(s string) string {
	if s == "" {
		return s
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok && !strings.ContainsAny(scheme, " /@") {
		end := len(rest)
		if i := strings.IndexAny(rest, "?#"); i >= 0 {
			end = i
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			user, _, hasPass := strings.Cut(rest[:at], ":")
			if hasPass {
				rest = user + ":" + RedactedMark + rest[at:]
			}
		}
		if q := strings.IndexByte(rest, '?'); q >= 0 {
			rest = rest[:q+1] + redactQuery(rest[q+1:])
		}
		return scheme + "://" + rest
	}
	if m := dsnSecret.FindStringSubmatchIndex(s); m != nil {
		s = s[:m[3]] + ":" + RedactedMark + "@" + s[m[6]:] // user, then the address
	}
	return kvSecret.ReplaceAllString(s, "${1}${2}"+RedactedMark)
}

func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if ok && secretParam(k) {
			parts[i] = k + "=" + RedactedMark
		}
	}
	return strings.Join(parts, "&")
}

func secretParam(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "passwd", "pwd", "secret", "token", "sig", "credential"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// RedactText hides the credentials of every URI in free text (an error
// message that quotes a connection string).
func RedactText(s string) string {
	if !strings.Contains(s, "@") && !strings.Contains(strings.ToLower(s), "pass") && !strings.Contains(s, "=") {
		return s
	}
	s = kvSecret.ReplaceAllString(s, "${1}${2}"+RedactedMark)
	s = dsnInText.ReplaceAllString(s, "${1}:"+RedactedMark+"@${3}(")
	return uriInText.ReplaceAllStringFunc(s, RedactURI)
}

var (
	uriInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)
	dsnInText = regexp.MustCompile(`([^\s:@/"'(]*):([^\s@"']*)@(tcp|unix|udp|tcp6)?\(`)
)

// RedactOptions returns a copy of engine options without secrets: a value
// whose name says it is secret (password, secret, key, token, credential)
// is blanked, any other value has the credentials of its URIs hidden.
func RedactOptions(o map[string]string) map[string]string {
	if o == nil {
		return nil
	}
	out := make(map[string]string, len(o))
	for k, v := range o {
		if isSecretOption(k) {
			v = ""
		} else {
			v = RedactURI(v)
		}
		out[k] = v
	}
	return out
}

// RedactLogAttr is a slog.HandlerOptions.ReplaceAttr that hides the
// credentials of connection strings in every string and error a log line
// carries (an engine error may quote a URI).
func RedactLogAttr(groups []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); s != "" {
			if r := RedactText(s); r != s {
				a.Value = slog.StringValue(r)
			}
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok && err != nil {
			if s := err.Error(); RedactText(s) != s {
				a.Value = slog.StringValue(RedactText(s))
			}
		}
	}
	return a
}
