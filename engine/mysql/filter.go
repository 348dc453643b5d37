package mysql

import (
	"path"
	"strings"

	"github.com/ferrymigrate/ferry"
)

// systemDBs never move.
var systemDBs = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true, metaDB: true}

// filter decides which databases and tables move, and where to.
//
// Job filters for the MySQL engine:
//   - IncludeDBs / ExcludeDBs: database names, globs allowed ("shop_*").
//   - IncludeTables / ExcludeTables: "db.table", globs allowed in both parts.
//     A table moves if no include list is given, or its database is in
//     IncludeDBs, or it matches IncludeTables; and it matches no exclude.
//   - Renames: "db" -> "db2" (a whole database) or "db.t" -> "db2.t2" (one
//     table; takes precedence over the database's rename).
type filter struct {
	incDB, excDB []string
	incT, excT   [][2]string
	dbRen        map[string]string
	tRen         map[[2]string][2]string
	// fwd is set on the filter of the reverse direction (see reversed): the
	// job's own filter, whose names this one maps back.
	fwd *filter
}

// reversed is the filter of reverse incremental sync: it reads the target's
// names and maps them back to the source's. A target table moves back when
// it is where the job's filter puts a source table that moves (the renames
// inverted); anything else on the target stays there.
func (f *filter) reversed() *filter {
	r := &filter{dbRen: map[string]string{}, tRen: map[[2]string][2]string{}, fwd: f}
	for from, to := range f.dbRen {
		r.dbRen[to] = from
	}
	for from, to := range f.tRen {
		r.tRen[to] = from
	}
	return r
}

func splitTable(s string) ([2]string, bool) {
	db, t, ok := strings.Cut(s, ".")
	if !ok || db == "" || t == "" {
		return [2]string{}, false
	}
	return [2]string{db, t}, true
}

func validGlob(p string) bool {
	_, err := path.Match(p, "")
	return err == nil
}

func newFilter(m *ferry.Migration) (*filter, error) {
	f := &filter{dbRen: map[string]string{}, tRen: map[[2]string][2]string{}}
	fl := m.Options.Filters
	for _, list := range []struct {
		field string
		in    []string
		out   *[]string
	}{{"options.filters.includeDbs", fl.IncludeDBs, &f.incDB}, {"options.filters.excludeDbs", fl.ExcludeDBs, &f.excDB}} {
		for _, s := range list.in {
			s = strings.TrimSpace(s)
			if s == "" || !validGlob(s) {
				return nil, ferry.FieldError(list.field, "bad database pattern %q", s)
			}
			*list.out = append(*list.out, s)
		}
	}
	for _, list := range []struct {
		field string
		in    []string
		out   *[][2]string
	}{{"options.filters.includeTables", fl.IncludeTables, &f.incT}, {"options.filters.excludeTables", fl.ExcludeTables, &f.excT}} {
		for _, s := range list.in {
			p, ok := splitTable(strings.TrimSpace(s))
			if !ok || !validGlob(p[0]) || !validGlob(p[1]) {
				return nil, ferry.FieldError(list.field, "bad table pattern %q (want db.table, globs allowed)", s)
			}
			*list.out = append(*list.out, p)
		}
	}
	for from, to := range fl.Renames {
		if strings.Contains(from, ".") {
			a, ok1 := splitTable(from)
			b, ok2 := splitTable(to)
			if !ok1 || !ok2 {
				return nil, ferry.FieldError("options.filters.renames", "rename %q -> %q: a table rename is db.table -> db.table", from, to)
			}
			f.tRen[a] = b
			continue
		}
		if from == "" || to == "" || strings.Contains(to, ".") {
			return nil, ferry.FieldError("options.filters.renames", "rename %q -> %q: a database rename is db -> db", from, to)
		}
		f.dbRen[from] = to
	}
	return f, nil
}

func matchAny(pats []string, s string) bool {
	for _, p := range pats {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

func matchTable(pats [][2]string, db, t string) bool {
	for _, p := range pats {
		ok1, _ := path.Match(p[0], db)
		ok2, _ := path.Match(p[1], t)
		if ok1 && ok2 {
			return true
		}
	}
	return false
}

// db reports whether a database may hold tables that move.
func (f *filter) db(db string) bool {
	if f.fwd != nil {
		sdb := f.targetDB(db)
		return f.fwd.db(sdb) && f.fwd.targetDB(sdb) == db
	}
	if systemDBs[strings.ToLower(db)] || matchAny(f.excDB, db) {
		return false
	}
	if len(f.incDB) == 0 && len(f.incT) == 0 {
		return true
	}
	if matchAny(f.incDB, db) {
		return true
	}
	for _, p := range f.incT {
		if ok, _ := path.Match(p[0], db); ok {
			return true
		}
	}
	return false
}

// table reports whether a table (or view) moves.
func (f *filter) table(db, t string) bool {
	if f.fwd != nil {
		sdb, st := f.target(db, t)
		if !f.fwd.table(sdb, st) {
			return false
		}
		d, n := f.fwd.target(sdb, st)
		return d == db && n == t
	}
	if systemDBs[strings.ToLower(db)] || matchAny(f.excDB, db) || matchTable(f.excT, db, t) {
		return false
	}
	if len(f.incDB) == 0 && len(f.incT) == 0 {
		return true
	}
	return matchAny(f.incDB, db) || matchTable(f.incT, db, t)
}

// targetDB maps a source database name.
func (f *filter) targetDB(db string) string {
	if to, ok := f.dbRen[db]; ok {
		return to
	}
	return db
}

// target maps a source table.
func (f *filter) target(db, t string) (string, string) {
	if to, ok := f.tRen[[2]string{db, t}]; ok {
		return to[0], to[1]
	}
	return f.targetDB(db), t
}

// renamed reports whether a table is renamed at table level.
func (f *filter) tableRenamed(db, t string) bool {
	_, ok := f.tRen[[2]string{db, t}]
	return ok
}
