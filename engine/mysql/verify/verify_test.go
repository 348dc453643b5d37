package verify

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/ferrymigrate/ferry/internal/testharness"
)

var ctx = context.Background()

// servers starts a source and a target MariaDB in different default time
// zones (TIMESTAMPs must compare as instants).
func servers(t testing.TB) (src, dst *sql.DB) {
	t.Helper()
	open := func(id uint32, tz string) *sql.DB {
		dsn := testharness.StartMariaDB(t, testharness.MariaDBOptions{ServerID: id, Args: []string{"--default-time-zone=" + tz}})
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	return open(1, "+05:30"), open(2, "-03:00")
}

// exec runs statements on one connection with an empty sql_mode (zero dates).
func exec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "SET SESSION sql_mode = ''"); err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := c.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	_, _ = c.ExecContext(ctx, "SET SESSION sql_mode = DEFAULT")
}

// zone is the session time zone of each side (the servers' defaults).
var zones = [2]*time.Location{time.FixedZone("+05:30", 5*3600+1800), time.FixedZone("-03:00", -3*3600)}

// tsLit renders an instant as a TIMESTAMP literal of the given side's zone.
func tsLit(side int, ts time.Time) string {
	return "'" + ts.In(zones[side]).Format("2006-01-02 15:04:05.000000") + "'"
}

const typesDDL = `CREATE TABLE types (
	id INT PRIMARY KEY,
	ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
	i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
	d65 DECIMAL(65,30), d52 DECIMAL(5,2),
	fl FLOAT, db DOUBLE,
	ch CHAR(10), vc VARCHAR(100), tx TEXT,
	bl BLOB, vb VARBINARY(16), bn BINARY(4),
	dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), yr YEAR,
	js JSON, en ENUM('a','b','c'), st SET('x','y','z'),
	b1 BIT(1), b64 BIT(64)
) DEFAULT CHARSET=utf8mb4`

// typeRows returns the INSERTs of the types table for one side: every
// column type with its edge values; TIMESTAMPs written in that side's zone.
func typeRows(side int) []string {
	type row struct {
		vals string    // every column but ts
		ts   time.Time // zero: NULL
		tsZ  bool      // the zero timestamp
	}
	cols := "id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d65, d52, fl, db, ch, vc, tx, bl, vb, bn, dt, dtm, tm, yr, js, en, st, b1, b64, ts"
	long := strings.Repeat("long text 😀 ", 500)
	rows := []row{
		// minimums
		{vals: `1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
			'-99999999999999999999999999999999999.999999999999999999999999999999', -999.99,
			-3.4028234e38, -1.7976931348623157e308, '', '', '', x'', x'', x'00000000',
			'1000-01-01', '1000-01-01 00:00:00.000000', '-838:59:59.000000', 1901, '[]', 'a', '', b'0', b'0'`,
			ts: time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)},
		// maximums
		{vals: `2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
			'99999999999999999999999999999999999.999999999999999999999999999999', 999.99,
			3.4028234e38, 1.7976931348623157e308, 'ZZZZZZZZZZ', REPEAT('🦀', 100), '` + long + `', REPEAT(x'ff', 1000), REPEAT(x'ff', 16), x'ffffffff',
			'9999-12-31', '9999-12-31 23:59:59.999999', '838:59:59.000000', 2155, '{"a": [1, 2.50, "x😀"], "b": null}', 'c', 'x,y,z', b'1', b'1111111111111111111111111111111111111111111111111111111111111111'`,
			ts: time.Date(2038, 1, 19, 3, 14, 7, 999999000, time.UTC)},
		// NULLs
		{vals: `3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`},
		// zeros, empties and zero dates
		{vals: `4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0e0, '', '', '', x'', x'', x'00',
			'0000-00-00', '0000-00-00 00:00:00', '00:00:00', 0, 'null', '', '', b'0', 0`, tsZ: true},
		// small and awkward floats, emoji, 0x00/0xff bytes
		{vals: `5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, '0.000000000000000000000000000001', 0.01,
			0.1, 5e-324, 'a😀', 'héllo 😀🚀', 'tab	nl\nquote''', x'00ff00ff00', x'00', x'ff00ff00',
			'2024-02-29', '2024-02-29 12:34:56.000001', '12:34:56.789012', 2024, '{"k": "v"}', 'b', 'y', b'1', 1`,
			ts: time.Date(2024, 2, 29, 12, 34, 56, 1000, time.UTC)},
		{vals: `6, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, '1.5', 1.5, 1.0000001, 2.2250738585072014e-308, 'x', NULL, NULL, NULL, NULL, NULL,
			NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`},
		{vals: `7, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, '2.5', 2.5, 1e-30, 0.1, 'x', 'y', 'z', x'01', x'02', x'03',
			'2000-01-01', '2000-01-01 00:00:00.5', '00:00:00.5', 2000, '1', 'a', 'x', b'0', 2`,
			ts: time.Date(2000, 1, 1, 0, 0, 0, 500000000, time.UTC)},
		{vals: `8, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, '3.5', 3.5, 1.0000001, 0.30000000000000004, 'x', 'y', 'z', x'01', x'02', x'03',
			'2000-01-01', '2000-01-01 00:00:00.5', '00:00:00.5', 2000, '1', 'a', 'x', b'0', 2`},
	}
	// More ordinary rows so that tables span several chunks.
	for id := 9; id <= 40; id++ {
		rows = append(rows, row{vals: fmt.Sprintf(`%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, '%d.%030d', %d.25, %d.125, %g, 'c%d', 'v%d', 't%d', x'%02x00ff', x'%02x', x'%02x%02x%02x%02x',
			'2021-03-%02d', '2021-03-%02d 10:00:00.%06d', '10:00:%02d', %d, '{"n": %d}', 'b', 'x,z', b'%d', %d`,
			id, id-60, id, -id*100, id*100, id*1000, id*1000, id*100000, id*100000, int64(id)*1e15, uint64(id)*1e17,
			id, id, id, id, float64(id)/3, id, id, id, id, id, id, id, id, id, id%28+1, id%28+1, id*7, id%60, 1990+id, id, id%2, uint64(id)<<56),
			ts: time.Date(2021, 3, id%28+1, 10, 0, 0, id*1000, time.UTC)})
	}
	var out []string
	for _, r := range rows {
		ts := "NULL"
		switch {
		case r.tsZ:
			ts = "'0000-00-00 00:00:00'"
		case !r.ts.IsZero():
			ts = tsLit(side, r.ts)
		}
		out = append(out, fmt.Sprintf("INSERT INTO types (%s) VALUES (%s, %s)", cols, r.vals, ts))
	}
	return out
}

// otherTables creates and fills the tables with other kinds of keys, the
// same on both sides.
func otherTables() []string {
	s := []string{
		`CREATE TABLE comp (a INT, b VARCHAR(20), c DATETIME(6), v VARCHAR(20), PRIMARY KEY (a, b, c)) DEFAULT CHARSET=utf8mb4`,
		`CREATE TABLE dk (d DECIMAL(20,6), k VARBINARY(8), v INT, PRIMARY KEY (d, k))`,
		`CREATE TABLE uk (u VARCHAR(20) NOT NULL, n INT NULL, v INT, UNIQUE KEY (n), UNIQUE KEY (u)) DEFAULT CHARSET=utf8mb4`,
		`CREATE TABLE ek (e ENUM('z','a','m'), n INT, PRIMARY KEY (e, n))`,
		`CREATE TABLE fk (f DOUBLE PRIMARY KEY, v INT)`,
		`CREATE TABLE ffk (f FLOAT PRIMARY KEY, v INT)`,
		`CREATE TABLE nokey (a INT, b VARCHAR(10)) DEFAULT CHARSET=utf8mb4`,
		`INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (1, 'x'), (2, NULL), (2, NULL), (3, ''), (NULL, NULL), (NULL, NULL), (4, 'x😀')`,
		`INSERT INTO fk VALUES (0.1, 1), (0.30000000000000004, 2), (0.3, 3), (1e308, 4), (5e-324, 5), (-1.5, 6), (0, 7)`,
		`INSERT INTO ffk VALUES (0.1, 1), (1.0000001, 2), (1.0000002, 3), (1, 4), (-3.5, 5), (3e38, 6), (1e-38, 7)`,
	}
	for a := 0; a < 4; a++ {
		for b := 0; b < 6; b++ {
			for c := 0; c < 3; c++ {
				s = append(s, fmt.Sprintf(`INSERT INTO comp VALUES (%d, 'k%d😀', '2020-01-01 00:00:00.%06d', 'v%d')`, a, b, c, a*100+b*10+c))
			}
		}
	}
	for i := 0; i < 30; i++ {
		s = append(s, fmt.Sprintf(`INSERT INTO dk VALUES (%d.%06d, x'%02x%s', %d)`, i-15, i*37, i*8, []string{"", "00", "ff", "00ff"}[i%4], i))
		s = append(s, fmt.Sprintf(`INSERT INTO uk VALUES ('u%d%s', %s, %d)`, i, []string{"", "😀", "A", "a"}[i%4], map[bool]string{true: "NULL", false: fmt.Sprint(i)}[i%3 == 0], i))
		s = append(s, fmt.Sprintf(`INSERT INTO ek VALUES ('%s', %d)`, []string{"z", "a", "m"}[i%3], i))
	}
	return s
}

// setup creates database name on both sides with the same data.
func setup(t testing.TB, src, dst *sql.DB, name string) {
	for side, db := range []*sql.DB{src, dst} {
		stmts := []string{"CREATE DATABASE " + name, "USE " + name, typesDDL}
		stmts = append(stmts, typeRows(side)...)
		stmts = append(stmts, otherTables()...)
		exec(t, db, stmts...)
	}
}

type seen struct {
	table, key string
	kind       Kind
}

func samples(r *Report) []seen {
	var out []seen
	for _, d := range r.Samples {
		out = append(out, seen{d.Table, d.Key, d.Kind})
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

func TestCompare(t *testing.T) {
	src, dst := servers(t)

	t.Run("equal", func(t *testing.T) {
		setup(t, src, dst, "eq")
		// The target's pool must not inherit the compare's session settings.
		src.SetMaxIdleConns(10)
		var lastDone, lastTotal int64
		for _, opts := range []Options{
			{Databases: []string{"eq"}, ChunkRows: 7, Parallel: 3},
			{Databases: []string{"eq"}, Parallel: 1},
		} {
			opts.OnProgress = func(done, total int64) { lastDone, lastTotal = done, total }
			rep, err := Compare(ctx, src, dst, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("ChunkRows %d, Parallel %d: %s", opts.ChunkRows, opts.Parallel, rep)
			if !rep.Equal() || len(rep.Samples) > 0 || rep.Rounds != 1 {
				t.Fatalf("identical databases: %s, samples %+v", rep, rep.Samples)
			}
			want := map[string]int64{"eq.types": 40, "eq.comp": 72, "eq.dk": 30, "eq.uk": 30, "eq.ek": 30, "eq.fk": 7, "eq.ffk": 7, "eq.nokey": 9}
			var total int64
			for name, n := range want {
				tr := rep.ByTable[name]
				if tr == nil || tr.Rows != n {
					t.Fatalf("%s: %+v, want %d rows", name, tr, n)
				}
				total += n
				if opts.ChunkRows == 7 && name != "eq.nokey" && tr.Chunks != n/7+1 {
					t.Errorf("%s: %d chunks for %d rows of 7", name, tr.Chunks, n)
				}
			}
			if rep.Tables != len(want) || rep.Rows != total || lastDone != total || lastTotal != total {
				t.Fatalf("%d tables, %d rows, progress %d/%d; want %d tables, %d rows", rep.Tables, rep.Rows, lastDone, lastTotal, len(want), total)
			}
			if k := rep.ByTable["eq.uk"].Key; len(k) != 1 || k[0] != "u" {
				t.Errorf("uk chunked by %v, want the unique NOT NULL key u", k)
			}
			if k := rep.ByTable["eq.nokey"].Key; k != nil {
				t.Errorf("nokey chunked by %v, want a multiset compare", k)
			}
		}
		var tz, mode string
		if err := src.QueryRowContext(ctx, "SELECT @@session.time_zone, @@session.sql_mode").Scan(&tz, &mode); err != nil {
			t.Fatal(err)
		}
		if tz != "+05:30" || mode == "" {
			t.Errorf("a pooled connection kept the compare's session settings: time_zone %s, sql_mode %q", tz, mode)
		}
	})

	// Each column type: one change in one row is seen (one more row
	// different each time, named by its key and column).
	t.Run("every column", func(t *testing.T) {
		changes := []struct{ col, set string }{
			{"ti", "ti = ti + 1"}, {"tiu", "tiu = tiu + 1"}, {"si", "si = si + 1"}, {"siu", "siu = siu + 1"},
			{"mi", "mi = mi + 1"}, {"miu", "miu = miu + 1"}, {"i", "i = i + 1"}, {"iu", "iu = iu + 1"},
			{"bi", "bi = bi + 1"}, {"biu", "biu = biu + 1"}, {"d65", "d65 = d65 + 0.000000000000000000000000000001"},
			{"d52", "d52 = d52 + 0.01"}, {"fl", "fl = fl + 1"}, {"db", "db = db + 1e-15"},
			{"ch", "ch = CONCAT(ch, 'x')"}, {"vc", "vc = CONCAT(vc, '😀')"}, {"vc", "vc = UPPER(vc)"}, {"vc", "vc = CONCAT(vc, ' ')"},
			{"tx", "tx = CONCAT(tx, ' ')"}, {"bl", "bl = CONCAT(bl, x'00')"}, {"vb", "vb = x'ff'"}, {"bn", "bn = x'00000001'"},
			{"dt", "dt = dt + INTERVAL 1 DAY"}, {"dtm", "dtm = dtm + INTERVAL 1 MICROSECOND"},
			{"ts", "ts = ts + INTERVAL 1 MICROSECOND"}, {"tm", "tm = ADDTIME(tm, '0:0:0.000001')"}, {"yr", "yr = yr + 1"},
			{"js", "js = JSON_COMPACT(js)"}, {"en", "en = 'c'"}, {"st", "st = 'y'"}, {"b1", "b1 = b1 ^ 1"}, {"b64", "b64 = b64 ^ 1"},
		}
		for i, c := range changes {
			id := 9 + i
			exec(t, dst, fmt.Sprintf("UPDATE eq.types SET %s WHERE id = %d", c.set, id))
			rep, err := Compare(ctx, src, dst, Options{Tables: []Table{{SrcDB: "eq", SrcName: "types"}}, Rounds: 1, ChunkRows: 16})
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("id=%d", id)
			var d *Diff
			for j := range rep.Samples {
				if rep.Samples[j].Key == key {
					d = &rep.Samples[j]
				}
			}
			if rep.Different != int64(i+1) || rep.Missing != 0 || rep.Extra != 0 || d == nil || !strings.HasPrefix(d.Detail, c.col+": ") {
				t.Fatalf("after %s on %s: %s, %+v", c.set, key, rep, d)
			}
		}
	})

	t.Run("differences", func(t *testing.T) {
		setup(t, src, dst, "df")
		exec(t, dst, "USE df",
			"DELETE FROM types WHERE id = 3",                    // missing
			"INSERT INTO types (id, vc) VALUES (1000, 'extra')", // extra
			"UPDATE types SET d65 = '99999999999999999999999999999999999.999999999999999999999999999998' WHERE id = 2", // last decimal digit
			"UPDATE types SET vc = '' WHERE id = 6",                          // NULL vs ''
			"UPDATE types SET db = 0.10000000000000002 WHERE id = 7",         // a double's last digit
			"UPDATE types SET fl = 1.0000002 WHERE id = 8",                   // a float's last bit
			"UPDATE types SET ts = ts + INTERVAL 1 MICROSECOND WHERE id = 9", // a microsecond
			"UPDATE types SET bl = x'00ff00ff01' WHERE id = 5",               // a blob byte
			"UPDATE types SET b64 = b64 ^ 1 WHERE id = 10",                   // a bit
			"UPDATE types SET dt = '0000-00-01' WHERE id = 4",                // a zero date
			"UPDATE types SET js = '{\"k\":\"v\"}' WHERE id = 5",             // JSON text (same row as the blob)
			"INSERT INTO nokey VALUES (1, 'x')",                              // a duplicate more
			"DELETE FROM nokey WHERE a = 2 LIMIT 1",                          // a duplicate less
			"UPDATE comp SET v = 'changed' WHERE a = 2 AND b = 'k3😀' AND c = '2020-01-01 00:00:00.000001'",
			"DELETE FROM comp WHERE a = 3 AND b = 'k5😀' AND c = '2020-01-01 00:00:00.000002'",
			"UPDATE dk SET v = -1 WHERE k = x'0800'",
			"UPDATE ek SET n = n WHERE e = 'a'", // no change
			"UPDATE fk SET v = 99 WHERE f = 5e-324",
			"UPDATE ffk SET v = 99 WHERE f * 1e0 = CAST(1.0000002 AS FLOAT) * 1e0",
			"UPDATE uk SET v = 99 WHERE u = 'u1😀'",
		)
		rep, err := Compare(ctx, src, dst, Options{Databases: []string{"df"}, ChunkRows: 7, Rounds: 2, RecheckDelay: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", rep)
		for _, d := range rep.Samples {
			t.Logf("  %s %s [%s]: %s", d.Kind, d.Table, d.Key, d.Detail)
		}
		want := []seen{
			{"df.comp", "a=2, b=k3😀, c=2020-01-01 00:00:00.000001", Different},
			{"df.comp", "a=3, b=k5😀, c=2020-01-01 00:00:00.000002", Missing},
			{"df.dk", "d=-14.000037, k=0x0800", Different},
			{"df.ffk", "f=1.000000238418579", Different},
			{"df.fk", "f=5e-324", Different},
			{"df.nokey", "(1, x)", Extra},
			{"df.nokey", "(2, NULL)", Missing},
			{"df.types", "id=1000", Extra},
			{"df.types", "id=10", Different},
			{"df.types", "id=2", Different},
			{"df.types", "id=3", Missing},
			{"df.types", "id=4", Different},
			{"df.types", "id=5", Different},
			{"df.types", "id=6", Different},
			{"df.types", "id=7", Different},
			{"df.types", "id=8", Different},
			{"df.types", "id=9", Different},
			{"df.uk", "u=u1😀", Different},
		}
		sort.Slice(want, func(i, j int) bool { return fmt.Sprint(want[i]) < fmt.Sprint(want[j]) })
		if got := samples(rep); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("samples:\n got  %v\n want %v", got, want)
		}
		if rep.Missing != 3 || rep.Extra != 2 || rep.Different != 13 || rep.Rounds != 2 || rep.Equal() {
			t.Errorf("counts: %s; want 3 missing, 2 extra, 13 different in 2 rounds", rep)
		}
		if tr := rep.ByTable["df.types"]; tr.Missing != 1 || tr.Extra != 1 || tr.Different != 8 || tr.ChunksDiffering == 0 {
			t.Errorf("types: %+v", tr)
		}
		details := map[string]string{}
		for _, d := range rep.Samples {
			details[d.Table+" "+d.Key] = d.Detail
		}
		for k, sub := range map[string]string{
			"df.types id=2":   "d65: source \"99999999999999999999999999999999999.999999999999999999999999999999\", target \"99999999999999999999999999999999999.999999999999999999999999999998\"",
			"df.types id=6":   "vc: source NULL, target \"\"",
			"df.types id=7":   "db: source \"0.1\", target \"0.10000000000000002\"",
			"df.types id=8":   "fl: source \"1.0000001192092896\", target \"1.000000238418579\"",
			"df.types id=5":   "bl: source \"0x00FF00FF00\", target \"0x00FF00FF01\"",
			"df.types id=9":   "ts: source \"2021-03-10 10:00:00.000009\", target \"2021-03-10 10:00:00.000010\"",
			"df.types id=4":   "dt: source \"0000-00-00\", target \"0000-00-01\"",
			"df.nokey (1, x)": "3 on the source, 4 on the target",
		} {
			if !strings.Contains(details[k], sub) {
				t.Errorf("%s: detail %q does not say %q", k, details[k], sub)
			}
		}
		if !strings.Contains(details["df.types id=5"], "js:") {
			t.Errorf("id=5: detail %q does not name the JSON column", details["df.types id=5"])
		}
	})

	t.Run("converges", func(t *testing.T) {
		exec(t, src, "CREATE DATABASE cv", "USE cv", "CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t SELECT seq, seq FROM seq_1_to_1000")
		exec(t, dst, "CREATE DATABASE cv", "USE cv", "CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t SELECT seq, seq FROM seq_1_to_1000",
			"UPDATE t SET v = 0 WHERE id IN (10, 500)", "DELETE FROM t WHERE id = 999")
		var rounds []int
		rep, err := Compare(ctx, src, dst, Options{Databases: []string{"cv"}, ChunkRows: 100, RecheckDelay: 100 * time.Millisecond,
			OnRound: func(round, pending int) {
				rounds = append(rounds, pending)
				switch round {
				case 1: // the sync catches up on two of the rows
					exec(t, dst, "UPDATE cv.t SET v = 10 WHERE id = 10", "INSERT INTO cv.t VALUES (999, 999)")
				case 2: // and on the last one
					exec(t, dst, "UPDATE cv.t SET v = 500 WHERE id = 500")
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Equal() || rep.Rounds != 3 || fmt.Sprint(rounds) != "[3 1 0]" {
			t.Fatalf("%s; pending chunks by round %v, want [3 1 0] and equal", rep, rounds)
		}
		// Not fixed in time: reported.
		exec(t, dst, "UPDATE cv.t SET v = 0 WHERE id = 10")
		rep, err = Compare(ctx, src, dst, Options{Databases: []string{"cv"}, ChunkRows: 100, Rounds: 3, RecheckDelay: 50 * time.Millisecond,
			OnRound: func(round, pending int) {
				if round == 2 {
					exec(t, dst, "UPDATE cv.t SET v = 0 WHERE id = 20")
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Different != 2 || rep.Rounds != 3 || len(rep.Samples) != 2 || rep.Samples[0].Key != "id=10" || rep.Samples[1].Key != "id=20" {
			t.Fatalf("%s %+v: want id=10 and id=20 different after 3 rounds", rep, rep.Samples)
		}
	})

	t.Run("shape", func(t *testing.T) {
		exec(t, src, "CREATE DATABASE sh", "USE sh", "CREATE TABLE only_src (id INT PRIMARY KEY)", "INSERT INTO only_src VALUES (1), (2), (3)",
			"CREATE TABLE cols (id INT PRIMARY KEY, a INT)", "INSERT INTO cols VALUES (1, 1), (2, 2)")
		exec(t, dst, "CREATE DATABASE sh", "USE sh", "CREATE TABLE only_dst (id INT PRIMARY KEY)", "INSERT INTO only_dst VALUES (1), (2)",
			"CREATE TABLE cols (id INT PRIMARY KEY, a INT, b INT)", "INSERT INTO cols VALUES (1, 1, 7), (2, 2, 7)")
		rep, err := Compare(ctx, src, dst, Options{Databases: []string{"sh"}, Rounds: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %+v", rep, rep.Samples)
		if rep.Missing != 3 || rep.Extra != 2 || rep.Different != 0 || rep.SchemaDiffs != 3 || rep.Equal() {
			t.Fatalf("%s: want 3 missing (only_src), 2 extra (only_dst), 3 tables of different shape", rep)
		}
		if s := rep.ByTable["sh.cols"].Schema; len(s) != 1 || !strings.Contains(s[0], "column b is extra on the target") {
			t.Errorf("cols: %v", s)
		}
		// Renamed tables.
		rep, err = Compare(ctx, src, dst, Options{Tables: []Table{{SrcDB: "sh", SrcName: "only_src", DstName: "only_dst"}}, Rounds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Missing != 1 || rep.Extra != 0 || len(rep.Samples) != 1 || rep.Samples[0].Key != "id=3" {
			t.Fatalf("%s %+v: want id=3 missing", rep, rep.Samples)
		}
	})
}
