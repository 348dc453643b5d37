package mongo

import (
	"errors"
	"path"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ferrymigrate/ferry"
)

// filter selects the namespaces a job moves: IncludeDBs/ExcludeDBs name
// databases, IncludeTables/ExcludeTables "db.collection" (globs allowed,
// path.Match syntax). System databases (admin, local, config) and system
// collections never move.
type filter struct {
	incDB, excDB   []string
	incTab, excTab []string
}

func newFilter(m *ferry.Migration) (*filter, error) {
	f := &filter{incDB: m.Options.Filters.IncludeDBs, excDB: m.Options.Filters.ExcludeDBs,
		incTab: m.Options.Filters.IncludeTables, excTab: m.Options.Filters.ExcludeTables}
	check := func(field string, pats []string, ns bool) error {
		for _, p := range pats {
			if p == "" {
				return ferry.FieldError(field, "empty name")
			}
			if _, err := path.Match(p, "x"); err != nil {
				return ferry.FieldError(field, "bad pattern %q: %v", p, err)
			}
			if ns {
				db, coll, ok := strings.Cut(p, ".")
				if !ok || db == "" || coll == "" {
					return ferry.FieldError(field, "%q: want \"db.collection\"", p)
				}
			} else if strings.ContainsAny(p, "/\\. \"$") {
				return ferry.FieldError(field, "%q is not a valid database name", p)
			}
		}
		return nil
	}
	if err := check("options.filters.includeDbs", f.incDB, false); err != nil {
		return nil, err
	}
	if err := check("options.filters.excludeDbs", f.excDB, false); err != nil {
		return nil, err
	}
	if err := check("options.filters.includeTables", f.incTab, true); err != nil {
		return nil, err
	}
	if err := check("options.filters.excludeTables", f.excTab, true); err != nil {
		return nil, err
	}
	return f, nil
}

func match(pats []string, s string) bool {
	for _, p := range pats {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// systemDB reports databases that never move.
func systemDB(db string) bool { return db == "admin" || db == "local" || db == "config" }

// db reports whether any collection of db may move.
func (f *filter) db(db string) bool {
	if systemDB(db) || match(f.excDB, db) {
		return false
	}
	if len(f.incDB) > 0 && !match(f.incDB, db) {
		// An included table of this db still brings it in.
		for _, p := range f.incTab {
			d, _, _ := strings.Cut(p, ".")
			if ok, _ := path.Match(d, db); ok {
				return true
			}
		}
		return false
	}
	return true
}

// ns reports whether the collection db.coll moves.
func (f *filter) ns(db, coll string) bool {
	if systemDB(db) || strings.HasPrefix(coll, "system.") || match(f.excDB, db) || match(f.excTab, db+"."+coll) {
		return false
	}
	if len(f.incDB) == 0 && len(f.incTab) == 0 {
		return true
	}
	return match(f.incDB, db) || match(f.incTab, db+"."+coll)
}

// splitNS splits "db.coll" (the collection may contain dots).
func splitNS(ns string) (string, string) {
	db, coll, _ := strings.Cut(ns, ".")
	return db, coll
}

// errCode returns the server error code of err, or 0.
func errCode(err error) int32 {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return ce.Code
	}
	var we mongo.WriteException
	if errors.As(err, &we) {
		if len(we.WriteErrors) > 0 {
			return int32(we.WriteErrors[0].Code)
		}
		if we.WriteConcernError != nil {
			return int32(we.WriteConcernError.Code)
		}
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, c := range []int{26, 27, 48, 11000, 85, 86} {
			if se.HasErrorCode(c) {
				return int32(c)
			}
		}
	}
	return 0
}

func asCommandError(err error, ce *mongo.CommandError) bool { return errors.As(err, ce) }

// Server error codes ferry tolerates when it replays a change.
const (
	codeNamespaceNotFound = 26
	codeIndexNotFound     = 27
	codeNamespaceExists   = 48
	codeDuplicateKey      = 11000
)
