package mongo

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ferrymigrate/ferry"
)

func raw(t *testing.T, ej string) bson.Raw {
	t.Helper()
	var r bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(ej), false, &r); err != nil {
		t.Fatalf("%s: %v", ej, err)
	}
	return r
}

func allFilter(t *testing.T) *filter {
	f, err := newFilter(&ferry.Migration{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func updString(c change) string {
	b, _ := bson.MarshalExtJSON(c.update, false, false)
	return string(b)
}

// Oplog entries as MongoDB 4.4-7.0 write them.
func TestParseOplogMongoDBFormat(t *testing.T) {
	f := allFilter(t)
	cases := []struct {
		name, entry string
		want        string // kind[:detail]
	}{
		{"insert", `{"op":"i","ns":"shop.orders","ts":{"$timestamp":{"t":1,"i":1}},"o":{"_id":{"$oid":"650000000000000000000001"},"a":1},"o2":{"_id":{"$oid":"650000000000000000000001"}}}`, "insert"},
		{"replacement", `{"op":"u","ns":"shop.orders","o":{"_id":1,"b":2},"o2":{"_id":1}}`, "replace"},
		{"replacement without _id", `{"op":"u","ns":"shop.orders","o":{"b":2},"o2":{"_id":1}}`, "replace"},
		{"$v:1 one field", `{"op":"u","ns":"shop.orders","o":{"$v":1,"$set":{"a.b":5},"$unset":{"c":true}},"o2":{"_id":1}}`, `update:{"$set":{"a.b":5},"$unset":{"c":""}}`},
		{"$v:1 several fields", `{"op":"u","ns":"shop.orders","o":{"$v":1,"$set":{"x":1,"y":2}},"o2":{"_id":1}}`, "fetch"},
		{"$v:2 diff", `{"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{"u":{"qty":3},"i":{"note":"new"},"d":{"old":false},"ssub":{"u":{"deep":true}},"sarr":{"a":true,"u1":"x","s2":{"u":{"k":1}}}}},"o2":{"_id":1}}`,
			`update:{"$set":{"qty":3,"note":"new","sub.deep":true,"arr.1":"x","arr.2.k":1},"$unset":{"old":""}}`},
		{"$v:2 array truncation", `{"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{"sarr":{"a":true,"l":2}}},"o2":{"_id":1}}`, "fetch"},
		{"$v:2 two new fields", `{"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{"i":{"a":1,"b":2}}},"o2":{"_id":1}}`, "fetch"},
		{"$v:2 dotted field", `{"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{"u":{"a.b":1}}},"o2":{"_id":1}}`, "fetch"},
		{"delete", `{"op":"d","ns":"shop.orders","o":{"_id":"k"}}`, "delete"},
		{"noop", `{"op":"n","ns":"","o":{"msg":"periodic noop"}}`, ""},
		{"create", `{"op":"c","ns":"shop.$cmd","o":{"create":"logs","capped":true,"size":4096,"idIndex":{"v":2,"key":{"_id":1},"name":"_id_"}}}`, "ddl:create"},
		{"drop", `{"op":"c","ns":"shop.$cmd","o":{"drop":"logs"}}`, "ddl:drop"},
		{"rename", `{"op":"c","ns":"admin.$cmd","o":{"renameCollection":"shop.a","to":"shop.b","dropTarget":false}}`, "ddl:rename"},
		{"dropDatabase", `{"op":"c","ns":"shop.$cmd","o":{"dropDatabase":1}}`, "ddl:dropDatabase"},
		{"createIndexes", `{"op":"c","ns":"shop.$cmd","o":{"createIndexes":"orders","v":2,"key":{"sku":1},"name":"sku_1","unique":true}}`, "ddl:createIndexes"},
		{"commitIndexBuild", `{"op":"c","ns":"shop.$cmd","o":{"commitIndexBuild":"orders","indexBuildUUID":{"$uuid":"00000000-0000-0000-0000-000000000000"},"indexes":[{"v":2,"key":{"a":1},"name":"a_1"},{"v":2,"key":{"b":-1},"name":"b_-1"}]}}`, "ddl:createIndexes"},
		{"startIndexBuild", `{"op":"c","ns":"shop.$cmd","o":{"startIndexBuild":"orders","indexes":[{"v":2,"key":{"a":1},"name":"a_1"}]}}`, ""},
		{"dropIndexes", `{"op":"c","ns":"shop.$cmd","o":{"dropIndexes":"orders","index":"sku_1"},"o2":{"v":2,"key":{"sku":1},"name":"sku_1"}}`, "ddl:dropIndexes"},
		{"system namespace", `{"op":"i","ns":"config.system.sessions","o":{"_id":1}}`, ""},
		{"ferretdb update", `{"op":"u","ns":"shop.orders","o":{"$v":1,"$set":{"_id":7,"q":1,"a":"x"}},"o2":{"_id":7}}`, "replace"},
	}
	for _, c := range cases {
		cs, err := parseOplog(raw(t, c.entry), f, txnBuffer{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []string
		for _, ch := range cs {
			s := ch.kind.String()
			if ch.kind == opUpdate {
				s += ":" + updString(ch)
			}
			if ch.kind == opDDL {
				s += ":" + ch.ddl.op
			}
			got = append(got, s)
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("%s: got %v, want %s", c.name, got, c.want)
		}
	}
	// A replacement keeps the source's field order, _id first.
	cs, _ := parseOplog(raw(t, `{"op":"u","ns":"shop.orders","o":{"z":2,"a":1},"o2":{"_id":1}}`), f, txnBuffer{})
	if got := cs[0].doc.String(); got != `{"_id": {"$numberInt":"1"},"z": {"$numberInt":"2"},"a": {"$numberInt":"1"}}` {
		t.Errorf("replacement document %s", got)
	}
}

func TestParseOplogTransactions(t *testing.T) {
	f := allFilter(t)
	txns := txnBuffer{}
	lsid := `"lsid":{"id":{"$uuid":"11111111-1111-1111-1111-111111111111"}},"txnNumber":{"$numberLong":"3"}`
	// A large transaction: partial applyOps chained, then the last one.
	cs, _ := parseOplog(raw(t, `{"op":"c","ns":"admin.$cmd",`+lsid+`,"partialTxn":true,"o":{"applyOps":[{"op":"i","ns":"shop.a","o":{"_id":1}}]}}`), f, txns)
	if len(cs) != 0 {
		t.Fatalf("partial transaction applied early: %v", cs)
	}
	cs, _ = parseOplog(raw(t, `{"op":"c","ns":"admin.$cmd",`+lsid+`,"o":{"applyOps":[{"op":"d","ns":"shop.a","o":{"_id":2}},{"op":"i","ns":"skip.system.x","o":{"_id":3}}],"count":3}}`), f, txns)
	if len(cs) != 2 || cs[0].kind != opInsert || cs[1].kind != opDelete || len(txns) != 0 {
		t.Fatalf("committed transaction: %v (%d buffered)", cs, len(txns))
	}
	// A prepared transaction waits for its commit; an aborted one is dropped.
	parseOplog(raw(t, `{"op":"c","ns":"admin.$cmd",`+lsid+`,"o":{"applyOps":[{"op":"i","ns":"shop.a","o":{"_id":5}}],"prepare":true}}`), f, txns)
	cs, _ = parseOplog(raw(t, `{"op":"c","ns":"admin.$cmd",`+lsid+`,"o":{"commitTransaction":1,"commitTimestamp":{"$timestamp":{"t":9,"i":1}}}}`), f, txns)
	if len(cs) != 1 || cs[0].kind != opInsert {
		t.Fatalf("prepared transaction: %v", cs)
	}
	parseOplog(raw(t, `{"op":"c","ns":"admin.$cmd",`+lsid+`,"o":{"applyOps":[{"op":"i","ns":"shop.a","o":{"_id":6}}],"prepare":true}}`), f, txns)
	cs, _ = parseOplog(raw(t, `{"op":"c","ns":"admin.$cmd",`+lsid+`,"o":{"abortTransaction":1}}`), f, txns)
	if len(cs) != 0 || len(txns) != 0 {
		t.Fatalf("aborted transaction: %v %v", cs, txns)
	}
	// An unprepared small transaction: one applyOps.
	cs, _ = parseOplog(raw(t, `{"op":"c","ns":"admin.$cmd","o":{"applyOps":[{"op":"u","ns":"shop.a","o":{"$v":2,"diff":{"u":{"x":1}}},"o2":{"_id":1}}]}}`), f, txns)
	if len(cs) != 1 || cs[0].kind != opUpdate {
		t.Fatalf("applyOps: %v", cs)
	}
}

func TestParseOplogFilters(t *testing.T) {
	f, err := newFilter(&ferry.Migration{Options: ferry.Options{Filters: ferry.Filters{IncludeTables: []string{"shop.a", "shop.b"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for entry, want := range map[string]string{
		`{"op":"c","ns":"admin.$cmd","o":{"renameCollection":"shop.a","to":"shop.b"}}`:   "rename",
		`{"op":"c","ns":"admin.$cmd","o":{"renameCollection":"shop.a","to":"shop.zzz"}}`: "drop",
		`{"op":"c","ns":"admin.$cmd","o":{"renameCollection":"shop.zzz","to":"shop.b"}}`: "recopy",
		`{"op":"c","ns":"admin.$cmd","o":{"renameCollection":"x.y","to":"x.z"}}`:         "",
		`{"op":"i","ns":"shop.c","o":{"_id":1}}`:                                         "",
	} {
		cs, _ := parseOplog(raw(t, entry), f, txnBuffer{})
		got := ""
		if len(cs) == 1 && cs[0].ddl != nil {
			got = cs[0].ddl.op
		} else if len(cs) > 0 {
			got = cs[0].kind.String()
		}
		if got != want {
			t.Errorf("%s: %q, want %q", entry, got, want)
		}
	}
}

// Change events as MongoDB 6.0+ sends them (showExpandedEvents).
func TestParseChangeEvents(t *testing.T) {
	f := allFilter(t)
	for ev, want := range map[string]string{
		`{"operationType":"insert","ns":{"db":"shop","coll":"a"},"documentKey":{"_id":1},"fullDocument":{"_id":1,"x":1},"clusterTime":{"$timestamp":{"t":5,"i":1}}}`:    "insert",
		`{"operationType":"update","ns":{"db":"shop","coll":"a"},"documentKey":{"_id":1},"fullDocument":{"_id":1,"x":2},"updateDescription":{"updatedFields":{"x":2}}}`: "replace",
		`{"operationType":"update","ns":{"db":"shop","coll":"a"},"documentKey":{"_id":1},"fullDocument":null}`:                                                          "fetch",
		`{"operationType":"replace","ns":{"db":"shop","coll":"a"},"documentKey":{"_id":1},"fullDocument":{"_id":1,"y":1}}`:                                              "replace",
		`{"operationType":"delete","ns":{"db":"shop","coll":"a"},"documentKey":{"_id":1}}`:                                                                              "delete",
		`{"operationType":"drop","ns":{"db":"shop","coll":"a"}}`:                                                                                                        "ddl:drop",
		`{"operationType":"rename","ns":{"db":"shop","coll":"a"},"to":{"db":"shop","coll":"b"}}`:                                                                        "ddl:rename",
		`{"operationType":"dropDatabase","ns":{"db":"shop"}}`:                                                                                                           "ddl:dropDatabase",
		`{"operationType":"create","ns":{"db":"shop","coll":"c"},"operationDescription":{"idIndex":{"v":2,"key":{"_id":1},"name":"_id_"}}}`:                             "ddl:create",
		`{"operationType":"createIndexes","ns":{"db":"shop","coll":"a"},"operationDescription":{"indexes":[{"v":2,"key":{"x":1},"name":"x_1"}]}}`:                       "ddl:createIndexes",
		`{"operationType":"dropIndexes","ns":{"db":"shop","coll":"a"},"operationDescription":{"indexes":[{"v":2,"key":{"x":1},"name":"x_1"}]}}`:                         "ddl:dropIndexes",
		`{"operationType":"insert","ns":{"db":"local","coll":"x"},"documentKey":{"_id":1},"fullDocument":{"_id":1}}`:                                                    "",
	} {
		cs, err := parseEvent(raw(t, ev), f)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if len(cs) == 1 {
			got = cs[0].kind.String()
			if cs[0].ddl != nil {
				got += ":" + cs[0].ddl.op
			}
		}
		if got != want {
			t.Errorf("%s: %q, want %q", ev, got, want)
		}
	}
	if _, err := parseEvent(raw(t, `{"operationType":"invalidate"}`), f); err == nil {
		t.Error("invalidate accepted")
	}
}

func TestCheckAndFilters(t *testing.T) {
	e := New(nil)
	// Every case has a valid source: the engine's Check validates it first.
	src := ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{"h:27017"}}
	ok := &ferry.Migration{Engine: ferry.KindMongoDB, Source: src, Modes: ferry.Modes{Full: true, Incremental: true}, Options: ferry.Options{Filters: ferry.Filters{IncludeDBs: []string{"shop"}, IncludeTables: []string{"crm.users"}}}}
	if err := e.Check(ok); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*ferry.Migration{
		{Modes: ferry.Modes{Schema: true}},
		{Options: ferry.Options{Extra: map[string]string{"reader": "binlog"}}},
		{Options: ferry.Options{Filters: ferry.Filters{IncludeTables: []string{"nodot"}}}},
		{Options: ferry.Options{Filters: ferry.Filters{IncludeDBs: []string{"a.b"}}}},
		{Options: ferry.Options{Filters: ferry.Filters{IncludeDBs: []string{"[x"}}}},
	} {
		m.Engine, m.Source = ferry.KindMongoDB, src
		if err := e.Check(m); err == nil {
			t.Errorf("Check accepted %+v", m.Options)
		}
	}
	if err := e.Check(&ferry.Migration{Engine: ferry.KindMongoDB, Modes: ferry.Modes{Full: true}}); ferry.ErrorCode(err) != ferry.EINVALID || ferry.AsError(err).Field != "source.kind" {
		t.Errorf("a job without a source: %v", err)
	}
	f, _ := newFilter(ok)
	for ns, want := range map[string]bool{"shop.a": true, "crm.users": true, "crm.other": false, "admin.x": false, "shop.system.views": false} {
		db, coll := splitNS(ns)
		if f.ns(db, coll) != want {
			t.Errorf("filter %s: %v", ns, !want)
		}
	}
	if !f.db("crm") || f.db("local") || f.db("other") {
		t.Error("db filter")
	}
	if u := URI(&ferry.Endpoint{Addrs: []string{"h1:27017", "h2:27017"}, Username: "u@x", Password: "p:w", Database: "admin", Options: map[string]string{"replicaSet": "rs0"}}); u != "mongodb://u%40x:p%3Aw@h1:27017,h2:27017/?authSource=admin&replicaSet=rs0" {
		t.Errorf("URI %s", u)
	}
}
