package kit

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ferrymigrate/ferry"
)

// Filter decides which dbs and keys move, and where each db goes.
//
// Job filters for the Redis engine:
//   - Filters.IncludeDBs / ExcludeDBs: source db numbers ("0", "3").
//   - Filters.Renames: db remap, source db number -> target db number
//     ({"0": "1"}); a cluster target only has db 0, so every db must map to 0.
//   - Filters.IncludeKeys / ExcludeKeys: key prefixes, or regular
//     expressions written "re:<expr>". A key moves if it matches an include
//     (or there is none) and no exclude. Commands of the stream are filtered
//     by their first key.
type Filter struct {
	IncDB, ExcDB map[int]bool
	Remap        map[int]int
	inc, exc     []keyMatcher
	toDB0        bool // cluster target
}

type keyMatcher struct {
	prefix string
	re     *regexp.Regexp
}

func (k keyMatcher) match(key []byte) bool {
	if k.re != nil {
		return k.re.Match(key)
	}
	return strings.HasPrefix(string(key), k.prefix)
}

func parseDBs(field string, list []string) (map[int]bool, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[int]bool{}
	for _, s := range list {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			return nil, ferry.FieldError(field, "%q is not a db number", s)
		}
		m[n] = true
	}
	return m, nil
}

func parseKeys(field string, list []string) ([]keyMatcher, error) {
	var out []keyMatcher
	for _, s := range list {
		if expr, ok := strings.CutPrefix(s, "re:"); ok {
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil, ferry.FieldError(field, "bad regular expression %q: %v", expr, err)
			}
			out = append(out, keyMatcher{re: re})
		} else {
			out = append(out, keyMatcher{prefix: s})
		}
	}
	return out, nil
}

func NewFilter(m *ferry.Migration) (*Filter, error) {
	f := &Filter{Remap: map[int]int{}, toDB0: m.Target.Cluster}
	var err error
	fl := m.Options.Filters
	if f.IncDB, err = parseDBs("options.filters.includeDbs", fl.IncludeDBs); err != nil {
		return nil, err
	}
	if f.ExcDB, err = parseDBs("options.filters.excludeDbs", fl.ExcludeDBs); err != nil {
		return nil, err
	}
	for from, to := range fl.Renames {
		a, err1 := strconv.Atoi(from)
		b, err2 := strconv.Atoi(to)
		if err1 != nil || err2 != nil || a < 0 || b < 0 {
			return nil, ferry.FieldError("options.filters.renames", "the redis engine remaps dbs: want {\"<source db>\": \"<target db>\"}, got %q: %q", from, to)
		}
		if m.Target.Cluster && b != 0 {
			return nil, ferry.FieldError("options.filters.renames", "a Redis Cluster target has only db 0 (db %d maps to %d)", a, b)
		}
		f.Remap[a] = b
	}
	if f.inc, err = parseKeys("options.filters.includeKeys", fl.IncludeKeys); err != nil {
		return nil, err
	}
	if f.exc, err = parseKeys("options.filters.excludeKeys", fl.ExcludeKeys); err != nil {
		return nil, err
	}
	return f, nil
}

// db returns the target db of source db n, and whether n moves at all.
func (f *Filter) DB(n int) (int, bool) {
	if f.IncDB != nil && !f.IncDB[n] {
		return 0, false
	}
	if f.ExcDB[n] {
		return 0, false
	}
	if t, ok := f.Remap[n]; ok {
		return t, true
	}
	if f.toDB0 {
		return 0, true
	}
	return n, true
}

// key reports whether key moves.
func (f *Filter) Key(key []byte) bool {
	if len(f.inc) > 0 {
		ok := false
		for _, m := range f.inc {
			if m.match(key) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, m := range f.exc {
		if m.match(key) {
			return false
		}
	}
	return true
}

func (f *Filter) KeysFiltered() bool { return len(f.inc) > 0 || len(f.exc) > 0 }

func (f *Filter) String() string {
	return fmt.Sprintf("dbs inc=%v exc=%v remap=%v keys inc=%d exc=%d", f.IncDB, f.ExcDB, f.Remap, len(f.inc), len(f.exc))
}

// OnlyPrefix returns the one include prefix when the key filter is exactly
// that (no regular expression), for a SCAN MATCH pre-filter.
func (f *Filter) OnlyPrefix() (string, bool) {
	if len(f.inc) != 1 || f.inc[0].re != nil || f.inc[0].prefix == "" {
		return "", false
	}
	return f.inc[0].prefix, true
}

// DBsFiltered reports include or exclude db lists.
func (f *Filter) DBsFiltered() bool { return f.IncDB != nil || f.ExcDB != nil }

// Remaps reports a db moved to another number.
func (f *Filter) Remaps() bool {
	for from, to := range f.Remap {
		if from != to {
			return true
		}
	}
	return false
}
