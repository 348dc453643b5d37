package mongo_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
)

// mixedDoc is document i of the big collection: _ids of three types,
// nested documents in all, and in every tenth fields of most BSON types
// FerretDB accepts, deeper nesting and arrays of documents, sizes varying.
func mixedDoc(i int) bson.D {
	var id any = int64(i)
	switch i % 7 {
	case 3:
		id = fmt.Sprintf("doc-%07d", i)
	case 5:
		id = bson.NewObjectIDFromTimestamp(time.Unix(int64(1600000000+i), 0))
	}
	if i%10 != 0 {
		// Most are small (FerretDB's cost grows with the fields).
		return bson.D{{Key: "_id", Value: id}, {Key: "n", Value: int32(i)}, {Key: "s", Value: fmt.Sprintf("d%d", i)}, {Key: "sub", Value: bson.D{{Key: "k", Value: int64(i) << 33}}}}
	}
	d := bson.D{{Key: "_id", Value: id}, {Key: "n", Value: int32(i)}, {Key: "name", Value: fmt.Sprintf("customer %d ✓", i)},
		{Key: "score", Value: float64(i) / 3}, {Key: "big", Value: int64(i) << 33}, {Key: "active", Value: i%2 == 0},
		{Key: "at", Value: bson.NewDateTimeFromTime(time.Unix(int64(1700000000+i), int64(i%1000)*1e6))},
		{Key: "address", Value: bson.D{{Key: "city", Value: fmt.Sprintf("city-%d", i%97)}, {Key: "geo", Value: bson.D{{Key: "lat", Value: float64(i%180) - 90}, {Key: "lon", Value: float64(i%360) - 180}}}}},
		{Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: fmt.Sprintf("sku-%d", i%37)}, {Key: "qty", Value: int32(i % 5)}}, bson.D{{Key: "sku", Value: "gift"}, {Key: "tags", Value: bson.A{"a", int32(i % 3), nil}}}}},
	}
	switch (i / 10) % 5 {
	case 0:
		d = append(d, bson.E{Key: "blob", Value: bson.Binary{Subtype: 0, Data: []byte(strings.Repeat(string(rune('a'+i%26)), i%64))}})
	case 1:
		d = append(d, bson.E{Key: "re", Value: bson.Regex{Pattern: fmt.Sprintf("^x%d", i%10), Options: "i"}}, bson.E{Key: "none", Value: nil})
	case 2:
		d = append(d, bson.E{Key: "ts", Value: bson.Timestamp{T: uint32(1700000000 + i), I: uint32(i % 7)}})
	case 3:
		d = append(d, bson.E{Key: "note", Value: strings.Repeat("n", i%300)})
	case 4:
		d = append(d, bson.E{Key: "uuid", Value: bson.Binary{Subtype: 4, Data: []byte(fmt.Sprintf("%016d", i))}})
	}
	return d
}

// bulkInsert inserts docs as unordered insertMany batches of 1000 by par
// connections.
func bulkInsert(t *testing.T, c *mongo.Collection, n, par int, gen func(int) bson.D) {
	t.Helper()
	ch := make(chan int)
	var wg sync.WaitGroup
	for p := 0; p < par; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range ch {
				docs := make([]any, 0, 1000)
				for i := lo; i < min(lo+1000, n); i++ {
					docs = append(docs, gen(i))
				}
				if _, err := c.InsertMany(context.Background(), docs, options.InsertMany().SetOrdered(false)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for lo := 0; lo < n; lo += 1000 {
		ch <- lo
	}
	close(ch)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// Test200kDocumentCollection migrates a collection of 200,000 documents of
// mixed BSON types and nested documents (beside a small one with an
// index), with a few writes during the initial sync that arrive through
// the continuous sync; after cutover the verification reports 0
// differences.
func Test200kDocumentCollection(t *testing.T) {
	const n = 200000
	e := newEnv(t)
	ctx := context.Background()
	start := time.Now()
	big := e.src.Database("warehouse").Collection("items")
	// Seeded before the oplog exists (a MongoDB oplog is capped and would
	// have moved on; FerretDB's would hold 200,000 entries that every
	// tailing query scans).
	oplog := e.src.Database("local").Collection("oplog.rs")
	if err := oplog.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	bulkInsert(t, big, n, 4, mixedDoc)
	if err := e.src.Database("local").CreateCollection(ctx, "oplog.rs", options.CreateCollection().SetCapped(true).SetSizeInBytes(testharness.FerretDBOplogSize)); err != nil {
		t.Fatal(err)
	}
	if _, err := big.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	insertDocs(t, e.src.Database("crm").Collection("users"), []bson.D{{{Key: "_id", Value: "u1"}, {Key: "v", Value: int32(1)}}, {{Key: "_id", Value: "u2"}, {Key: "v", Value: int32(2)}}})
	seeded := time.Since(start)
	t.Logf("seeded in %s", seeded)
	m := e.create(ferry.Modes{Full: true, Incremental: true, Verify: true}, ferry.Options{Parallelism: 4})
	e.agent("agent-big")
	e.wait(m.ID, "copy under way", 60*time.Second, func(m *ferry.Migration) bool {
		s := m.Step(ferry.StepFull)
		return s.State == ferry.StepRunning && s.Counters.Done > 0
	})
	// Writes during the initial sync: inserts into the big collection
	// (cheap), an update and a delete on the small one (FerretDB scans the
	// collection for each single-document write by _id).
	var late []any
	for i := n; i < n+20; i++ {
		late = append(late, mixedDoc(i))
	}
	if _, err := big.InsertMany(ctx, late); err != nil {
		t.Fatal(err)
	}
	users := e.src.Database("crm").Collection("users")
	if _, err := users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "u1"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "changed"}, {Key: "sub", Value: bson.D{{Key: "x", Value: 1.5}}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.DeleteOne(ctx, bson.D{{Key: "_id", Value: "u2"}}); err != nil {
		t.Fatal(err)
	}
	m = e.wait(m.ID, "ready for cutover", 300*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	full := m.Step(ferry.StepFull)
	t.Logf("ready for cutover after %s: %s", time.Since(start), full.Message)
	if full.Counters.Done < n {
		t.Fatalf("full step copied %d documents: %s", full.Counters.Done, full.Message)
	}
	copied := full.FinishedAt.Sub(*full.StartedAt)
	if _, err := e.svc.CutoverMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.wait(m.ID, "completed", 300*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 || v.Counters.Done != n+20+1 {
		t.Fatalf("verify %+v: %s", v.Counters, v.Message)
	}
	inc := m.Step(ferry.StepIncremental)
	if inc.Counters.Ops < 3 {
		t.Fatalf("the writes during the initial sync did not come through the sync: %+v", inc.Counters)
	}
	var u1 bson.Raw
	if err := e.dst.Database("crm").Collection("users").FindOne(ctx, bson.D{{Key: "_id", Value: "u1"}}).Decode(&u1); err != nil || u1.Lookup("v").StringValue() != "changed" {
		t.Fatalf("update during the initial sync: %v %v", u1, err)
	}
	if names := indexNames(t, e.dst.Database("warehouse").Collection("items")); names != "[_id_ n_1]" {
		t.Fatalf("target indexes of warehouse.items: %s", names)
	}
	t.Logf("seeded %d documents in %s; copied in %s (%s); sync: %s; verify: %s",
		n, seeded.Round(time.Millisecond), copied.Round(time.Millisecond), full.Message, inc.Message, v.Message)
}
