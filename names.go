package ferry

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest name (in characters) of a project, endpoint,
// pipeline, organization or job.
const MaxNameLen = 128

// ValidateName checks a user-chosen name (project, organization, endpoint,
// pipeline, migration or task) before it is stored: names end up in paths
// (datasets, S3 keys), logs and consoles, so they may not hold a path
// separator (/ or \), "..", control characters (NUL, newline, ...), bidi
// overrides and other invisible format characters (U+202E, U+2066, ...),
// nor be invalid UTF-8, blank or longer than MaxNameLen characters. A name
// whose percent-decoding differs is checked decoded too ("%2e%2e").
// Every create and update path of the Service calls it, so every dialect
// gets the same rule; field names the request field in the error.
func ValidateName(field, name string) error {
	if err := checkName(field, name); err != nil {
		return err
	}
	if strings.Contains(name, "%") {
		if dec, err := url.PathUnescape(name); err == nil && dec != name {
			if err := checkName(field, dec); err != nil {
				return &Error{Code: EINVALID, Field: field, Reason: "INVALID_NAME", Message: "is percent-encoded to hide what it holds: " + err.(*Error).Message}
			}
		}
	}
	return nil
}

func checkName(field, name string) error {
	bad := func(format string, args ...any) error {
		return &Error{Code: EINVALID, Field: field, Reason: "INVALID_NAME", Message: fmt.Sprintf(format, args...),
			Advice: "use letters, digits, spaces and punctuation other than / and \\ (at most 128 characters)"}
	}
	if strings.TrimSpace(name) == "" {
		return bad("is required")
	}
	if !utf8.ValidString(name) {
		return bad("is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return bad("is %d characters long (at most %d)", n, MaxNameLen)
	}
	if strings.ContainsAny(name, `/\`) {
		return bad("may not contain / or \\")
	}
	if strings.Contains(name, "..") {
		return bad("may not contain \"..\"")
	}
	for _, r := range name {
		switch {
		case unicode.IsControl(r):
			return bad("may not contain control characters (%U)", r)
		case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Bidi_Control, r):
			// Bidi overrides (U+202A..U+202E, U+2066..U+2069), marks,
			// zero-width characters: they make a name display as another.
			return bad("may not contain invisible or bidirectional formatting characters (%U)", r)
		case r == utf8.RuneError:
			return bad("is not valid UTF-8")
		case unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
			return bad("may not contain line separators (%U)", r)
		}
	}
	return nil
}
