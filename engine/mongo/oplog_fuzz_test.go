package mongo

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ferrymigrate/ferry"
)

// FuzzParseOplog feeds arbitrary bytes, as oplog documents read from a
// tenant's source, to parseOplog (the decoding of an oplog entry into the
// changes applied to the target). It must not panic; an error gives no
// changes; every change is of a known kind on a namespace the job's filter
// moves, with a valid _id; inserts and replacements carry a valid document;
// updates are $set/$unset documents of plain paths.
func FuzzParseOplog(f *testing.F) {
	lsid := `"lsid":{"id":{"$binary":{"base64":"AAAAAAAAAAAAAAAAAAAAAA==","subType":"04"}}},"txnNumber":{"$numberLong":"1"}`
	for _, ej := range []string{
		`{"op":"i","ns":"shop.orders","ts":{"$timestamp":{"t":1,"i":1}},"o":{"_id":{"$oid":"650000000000000000000001"},"a":1}}`,
		`{"op":"u","ns":"shop.orders","o":{"_id":1,"b":2},"o2":{"_id":1}}`,
		`{"op":"u","ns":"shop.orders","o":{"b":2},"o2":{"_id":1}}`,
		`{"op":"u","ns":"shop.orders","o":{"$v":1,"$set":{"a.b":5},"$unset":{"c":true}},"o2":{"_id":1}}`,
		`{"op":"u","ns":"shop.orders","o":{"$v":1,"$set":{"_id":1,"x":1,"y":2}},"o2":{"_id":1}}`,
		`{"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{"u":{"qty":3},"i":{"note":"new"},"d":{"old":false},"ssub":{"u":{"deep":true}},"sarr":{"a":true,"u1":"x","s2":{"u":{"k":1}}}}},"o2":{"_id":1}}`,
		`{"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{"sarr":{"a":true,"l":2}}},"o2":{"_id":1}}`,
		`{"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{"u":{"a.b":1,"$x":2}}},"o2":{"_id":1}}`,
		`{"op":"u","ns":"shop.orders","o":{"$v":1,"$set":{}},"o2":{"_id":1}}`, `{"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{}},"o2":{"_id":1}}`,
		`{"op":"d","ns":"shop.orders","o":{"_id":"k"}}`, `{"op":"d","ns":"shop.orders","o":{}}`, `{"op":"i","ns":"shop","o":{"a":1}}`,
		`{"op":"n","ns":"","o":{"msg":"periodic noop"}}`,
		`{"op":"c","ns":"shop.$cmd","o":{"create":"logs","capped":true,"size":4096,"idIndex":{"v":2,"key":{"_id":1},"name":"_id_"}}}`,
		`{"op":"c","ns":"shop.$cmd","o":{"drop":"logs"}}`,
		`{"op":"c","ns":"admin.$cmd","o":{"renameCollection":"shop.a","to":"other.b","dropTarget":true}}`,
		`{"op":"c","ns":"shop.$cmd","o":{"dropDatabase":1}}`,
		`{"op":"c","ns":"shop.$cmd","o":{"createIndexes":"orders","v":2,"key":{"sku":1},"name":"sku_1","unique":true}}`,
		`{"op":"c","ns":"shop.$cmd","o":{"commitIndexBuild":"orders","indexes":[{"v":2,"key":{"a":1},"name":"a_1"},7]}}`,
		`{"op":"c","ns":"shop.$cmd","o":{"dropIndexes":"orders","index":["a_1",2,"b_1"]}}`,
		`{"op":"c","ns":"shop.$cmd","o":{"collMod":"orders","validator":{}}}`,
		`{"op":"c","ns":"admin.$cmd",` + lsid + `,"partialTxn":true,"o":{"applyOps":[{"op":"i","ns":"shop.a","o":{"_id":1}}]}}`,
		`{"op":"c","ns":"admin.$cmd",` + lsid + `,"o":{"applyOps":[{"op":"d","ns":"shop.a","o":{"_id":2}},{"op":"i","ns":"local.x","o":{"_id":3}},{"op":"c","ns":"shop.$cmd","o":{"applyOps":[{"op":"i","ns":"shop.b","o":{"_id":4}}]}}]}}`,
		`{"op":"c","ns":"admin.$cmd",` + lsid + `,"o":{"commitTransaction":1}}`,
		`{"op":"c","ns":"admin.$cmd",` + lsid + `,"o":{"abortTransaction":1}}`,
		`{"op":"c","ns":"shop.$cmd","o":{}}`, `{}`, `{"op":1,"ns":2,"o":3}`,
	} {
		var r bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(ej), false, &r); err != nil {
			f.Fatalf("%s: %v", ej, err)
		}
		f.Add([]byte(r), uint8(0))
		f.Add([]byte(r), uint8(1))
	}
	f.Add([]byte{5, 0, 0, 0, 0}, uint8(0))
	f.Add([]byte{0x20, 0, 0, 0, 4, 'o', 0, 0x10, 0, 0, 0}, uint8(0))
	filters := []ferry.Filters{
		{},
		{IncludeDBs: []string{"shop"}, ExcludeTables: []string{"shop.secret*"}},
		{IncludeTables: []string{"other.b", "shop.a"}},
		{ExcludeDBs: []string{"other"}},
	}
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		flt, err := newFilter(&ferry.Migration{Options: ferry.Options{Filters: filters[int(which)%len(filters)]}})
		if err != nil {
			t.Fatal(err)
		}
		txns := txnBuffer{}
		var changes []change
		// Twice, with the same transaction buffer: a partial transaction
		// of the first round is committed by the second.
		for range 2 {
			cs, err := parseOplog(bson.Raw(b), flt, txns)
			if err != nil {
				if cs != nil {
					t.Fatalf("error %v with %d changes", err, len(cs))
				}
				continue
			}
			changes = append(changes, cs...)
		}
		for _, c := range changes {
			checkChange(t, flt, c)
		}
	})
}

func checkChange(t *testing.T, flt *filter, c change) {
	t.Helper()
	if c.kind < opInsert || c.kind > opDDL {
		t.Fatalf("change of kind %d", c.kind)
	}
	if c.kind == opDDL {
		if c.ddl == nil {
			t.Fatal("DDL change without its command")
		}
		if c.ddl.op == "dropDatabase" {
			if !flt.db(c.db) {
				t.Fatalf("dropDatabase of %q, which the filter does not move", c.db)
			}
		} else if !flt.ns(c.db, c.coll) {
			t.Fatalf("%s of %s, which the filter does not move", c.ddl.op, c.ns())
		}
		if c.ddl.options != nil {
			if err := c.ddl.options.Validate(); err != nil {
				t.Fatalf("%s options: %v", c.ddl.op, err)
			}
		}
		return
	}
	if !flt.ns(c.db, c.coll) {
		t.Fatalf("%v of %s, which the filter does not move", c.kind, c.ns())
	}
	if err := c.id.Validate(); err != nil || c.id.Type == 0 {
		t.Fatalf("%v of %s: _id %v: %v", c.kind, c.ns(), c.id, err)
	}
	switch c.kind {
	case opInsert, opReplace:
		if err := c.doc.Validate(); err != nil {
			t.Fatalf("%v of %s: document: %v", c.kind, c.ns(), err)
		}
		if _, err := c.doc.LookupErr("_id"); err != nil {
			t.Fatalf("%v of %s: document without _id", c.kind, c.ns())
		}
	case opUpdate:
		if len(c.update) == 0 {
			t.Fatalf("empty update of %s", c.ns())
		}
		if _, err := bson.Marshal(c.update); err != nil {
			t.Fatalf("update of %s does not marshal: %v", c.ns(), err)
		}
		for _, e := range c.update {
			if e.Key != "$set" && e.Key != "$unset" {
				t.Fatalf("update of %s has operator %q", c.ns(), e.Key)
			}
			for _, fe := range e.Value.(bson.D) {
				for _, part := range strings.Split(fe.Key, ".") {
					if part == "" || strings.HasPrefix(part, "$") {
						t.Fatalf("update of %s sets path %q", c.ns(), fe.Key)
					}
				}
			}
		}
	}
}
