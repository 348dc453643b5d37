package mysql

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

func TestCheck(t *testing.T) {
	e := New(nil)
	base := func() *ferry.Migration {
		return &ferry.Migration{Engine: ferry.KindMySQL, Source: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{"a:3306"}}, Target: ferry.Endpoint{Addrs: []string{"b:3306"}},
			Modes: ferry.Modes{Full: true, Incremental: true}}
	}
	if err := e.Check(base()); err != nil {
		t.Fatal(err)
	}
	m := base()
	m.Modes.ReverseIncremental = true
	if err := e.Check(m); err != nil {
		t.Fatalf("reverse incremental: %v", err)
	}
	m.Modes.Incremental = false
	if err := e.Check(m); ferry.ErrorCode(err) != ferry.EINVALID || !strings.Contains(ferry.ErrorMessage(err), "enable incremental sync") {
		t.Fatalf("reverse incremental without incremental: %v", err)
	}
	m = base()
	m.Options.Filters.IncludeTables = []string{"nodot"}
	if err := e.Check(m); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Fatalf("bad table pattern: %v", err)
	}
	m = base()
	m.Options.Filters.Renames = map[string]string{"a.t": "b"}
	if err := e.Check(m); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Fatalf("bad rename: %v", err)
	}
}

func TestFilter(t *testing.T) {
	f, err := newFilter(&ferry.Migration{Options: ferry.Options{Filters: ferry.Filters{
		IncludeDBs: []string{"shop_*"}, IncludeTables: []string{"crm.cust*"}, ExcludeTables: []string{"shop_eu.tmp_*"},
		Renames: map[string]string{"shop_eu": "eu", "crm.customers": "crm2.clients"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		db, t string
		want  bool
	}{{"shop_eu", "orders", true}, {"shop_eu", "tmp_x", false}, {"crm", "customers", true}, {"crm", "leads", false},
		{"mysql", "user", false}, {"ferry_meta", "checkpoint", false}, {"other", "t", false}} {
		if got := f.table(c.db, c.t); got != c.want {
			t.Errorf("table(%s.%s) = %v", c.db, c.t, got)
		}
	}
	if d, tb := f.target("shop_eu", "orders"); d != "eu" || tb != "orders" {
		t.Errorf("target shop_eu.orders = %s.%s", d, tb)
	}
	if d, tb := f.target("crm", "customers"); d != "crm2" || tb != "clients" {
		t.Errorf("target crm.customers = %s.%s", d, tb)
	}
	if !f.db("crm") || f.db("other") {
		t.Error("db filter")
	}
	// The reverse direction: target names back to the source's.
	r := f.reversed()
	for _, c := range []struct {
		db, t          string
		want           bool
		wantDB, wantTB string
	}{
		{"eu", "orders", true, "shop_eu", "orders"},
		{"crm2", "clients", true, "crm", "customers"},
		{"eu", "tmp_x", false, "", ""},       // excluded
		{"shop_eu", "orders", false, "", ""}, // the source's name: not where the job puts it
		{"crm", "customers", false, "", ""},  // renamed away
		{"crm", "cust_other", true, "crm", "cust_other"},
		{"ferry_meta", "checkpoint", false, "", ""},
		{"other", "t", false, "", ""},
	} {
		if got := r.table(c.db, c.t); got != c.want {
			t.Errorf("reversed table(%s.%s) = %v", c.db, c.t, got)
		}
		if c.want {
			if d, tb := r.target(c.db, c.t); d != c.wantDB || tb != c.wantTB {
				t.Errorf("reversed target %s.%s = %s.%s", c.db, c.t, d, tb)
			}
		}
	}
	if !r.db("eu") || r.db("shop_eu") || r.db("other") {
		t.Error("reversed db filter")
	}
}

func TestPositions(t *testing.T) {
	a := pos{File: "binlog.000009", Pos: 900}
	b := pos{File: "binlog.000010", Pos: 4}
	if a.compare(b) >= 0 || b.compare(a) <= 0 || a.compare(a) != 0 {
		t.Fatal("compare across files")
	}
}

func TestKeyEncoding(t *testing.T) {
	in := []any{int64(-5), uint64(18446744073709551615), float32(3.14159274), 1e-300, []byte{0, 0xff, 'a'}, nil}
	out, err := decodeKey(encodeKey(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("%#v != %#v", in, out)
	}
}

func TestBinlogArg(t *testing.T) {
	for _, c := range []struct {
		col  column
		in   any
		want any
	}{
		{column{DataType: "tinyint", Unsigned: true}, int8(-1), uint64(255)},
		{column{DataType: "mediumint", Unsigned: true}, int32(-1), uint64(16777215)},
		{column{DataType: "bigint", Unsigned: true}, int64(-1), uint64(18446744073709551615)},
		{column{DataType: "int"}, int32(-7), int64(-7)},
		{column{DataType: "bit"}, int64(-1), uint64(18446744073709551615)},
		{column{DataType: "varchar"}, "é", []byte("é")},
		{column{DataType: "decimal"}, "1.50", "1.50"},
		{column{DataType: "json"}, "{}", []byte("{}")},
	} {
		if got := binlogArg(&c.col, c.in, false); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %#v -> %#v, want %#v", c.col.DataType, c.in, got, c.want)
		}
	}
}

func TestDDLRegexps(t *testing.T) {
	for _, c := range []struct {
		q, want string
	}{
		{"ALTER TABLE `shop`.`big` ADD COLUMN x INT", "`shop`.`big`"},
		{"alter online table big add index (n)", "big"},
		{"CREATE TABLE IF NOT EXISTS shop.t2 (id int)", "shop.t2"},
		{"TRUNCATE TABLE `a b`", "`a b`"},
		{"CREATE UNIQUE INDEX ix ON shop.big (v)", "shop.big"},
		{"DROP INDEX ix ON `big`", "`big`"},
	} {
		got := ""
		for _, re := range reDDL {
			if m := re.FindStringSubmatch(c.q); m != nil {
				got = m[1]
				break
			}
		}
		if got != c.want {
			t.Errorf("%q -> %q, want %q", c.q, got, c.want)
		}
	}
	if d, tb := splitName("`shop`.`big`", "x"); d != "shop" || tb != "big" {
		t.Errorf("splitName = %s %s", d, tb)
	}
	if d, tb := splitName("big", "x"); d != "x" || tb != "big" {
		t.Errorf("splitName = %s %s", d, tb)
	}
	m := reDropTable.FindStringSubmatch("DROP TABLE IF EXISTS `a`, b.c /* generated by server */")
	if m == nil || len(reIdentList.FindAllString(m[1], -1)) < 2 {
		t.Errorf("drop table: %v", m)
	}
}
