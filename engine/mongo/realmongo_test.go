package mongo_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/ferrymigrate/ferry"
)

// MongoDBEnv names a real MongoDB replica set or sharded cluster (4.4+)
// for the change-stream reader's integration test, as a connection string
// (mongodb://host1,host2/?replicaSet=rs0). FerretDB, the server the other
// tests run on, has no change streams and no MongoDB can be installed on
// the machines these tests were written on: without the variable the
// reader is covered by the unit tests of its event handling only
// (TestParseChangeEvents).
const MongoDBEnv = "FERRY_TEST_MONGODB_URI"

// TestChangeStreamOnRealMongoDB migrates a database of the MongoDB named by
// FERRY_TEST_MONGODB_URI to a FerretDB target with the change-stream
// reader: the initial sync, then inserts, updates, a replacement, a delete,
// an index and a new collection arriving through the change stream;
// cutover; verification with 0 differences. It works in a database of its
// own (ferry_cs_<random>) and drops it at the end.
func TestChangeStreamOnRealMongoDB(t *testing.T) {
	uri := os.Getenv(MongoDBEnv)
	if uri == "" {
		t.Skipf("%s is not set: the change-stream reader is tested against real MongoDB only when one is reachable (FerretDB has no change streams); its event handling is unit-tested by TestParseChangeEvents", MongoDBEnv)
	}
	e := newEnv(t)
	ctx := context.Background()
	src := connectURI(t, uri)
	dbName := "ferry_cs_" + ferry.RandomHex(4)
	db := src.Database(dbName)
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	insertDocs(t, db.Collection("things"), typedDocs())
	var many []bson.D
	for i := 0; i < 2000; i++ {
		many = append(many, bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: fmt.Sprintf("v%d", i)}, {Key: "sub", Value: bson.D{{Key: "n", Value: int64(i)}}}})
	}
	insertDocs(t, db.Collection("many"), many)

	m := &ferry.Migration{ProjectID: e.proj.ID, Engine: ferry.KindMongoDB,
		Source: ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{hostsOf(uri)}, Options: map[string]string{"uri": uri}},
		Target: ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{e.dstAddr}},
		Modes:  ferry.Modes{Full: true, Incremental: true, Verify: true},
		Options: ferry.Options{Filters: ferry.Filters{IncludeDBs: []string{dbName}},
			Extra: map[string]string{"reader": "changestream"}}}
	if err := e.svc.CreateMigration(e.ctx, m, true); err != nil {
		t.Fatal(err)
	}
	e.agent("agent-cs")
	m = e.wait(m.ID, "ready for cutover", 120*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	if cp := checkpointOf(t, m.Step(ferry.StepFull)); cp["reader"] != "changestream" {
		t.Fatalf("full checkpoint reader %v, want changestream", cp["reader"])
	}
	things, mc := db.Collection("things"), db.Collection("many")
	writes := []func() error{
		func() error {
			_, err := things.InsertOne(ctx, bson.D{{Key: "_id", Value: "new"}, {Key: "d", Value: bson.D{{Key: "at", Value: bson.NewDateTimeFromTime(time.Now())}}}})
			return err
		},
		func() error {
			_, err := mc.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(7)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "sub.n", Value: "changed"}}}, {Key: "$unset", Value: bson.D{{Key: "v", Value: ""}}}})
			return err
		},
		func() error {
			_, err := mc.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: int32(100)}, {Key: "$lt", Value: int32(200)}}}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "sub.n", Value: int64(1000)}}}})
			return err
		},
		func() error {
			_, err := mc.ReplaceOne(ctx, bson.D{{Key: "_id", Value: int32(500)}}, bson.D{{Key: "replaced", Value: true}})
			return err
		},
		func() error {
			_, err := mc.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: int32(1900)}}}})
			return err
		},
		func() error {
			_, err := mc.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "v", Value: 1}}, Options: options.Index().SetName("v_1")})
			return err
		},
		func() error {
			_, err := db.Collection("created_later").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: "y"}})
			return err
		},
	}
	for _, w := range writes {
		if err := w(); err != nil {
			t.Fatal(err)
		}
	}
	e.wait(m.ID, "changes applied", 60*time.Second, func(m *ferry.Migration) bool {
		return m.Step(ferry.StepIncremental).Counters.Ops >= 1+1+100+1+100+1
	})
	if _, err := e.svc.CutoverMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.wait(m.ID, "completed", 120*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 {
		t.Fatalf("verify %+v: %s", v.Counters, v.Message)
	}
	n := sameBytes(t, src, e.dst, dbName+".things", dbName+".many", dbName+".created_later")
	if names := indexNames(t, e.dst.Database(dbName).Collection("many")); names != "[_id_ v_1]" {
		t.Fatalf("target indexes of many: %s", names)
	}
	t.Logf("change streams from %s: %d documents equal byte for byte; sync: %s; verify: %s", dbName, n, m.Step(ferry.StepIncremental).Message, v.Message)
}

// hostsOf returns the first host:port of a connection string (the job's
// addrs; the uri option is what ferry connects with).
func hostsOf(uri string) string {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil || len(cs.Hosts) == 0 {
		return "127.0.0.1:27017"
	}
	h := cs.Hosts[0]
	if !strings.Contains(h, ":") {
		h += ":27017"
	}
	return h
}
