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
)

func genDocs(n int) []any {
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: int64(i)}, {Key: "name", Value: fmt.Sprintf("customer-%07d", i)}, {Key: "n", Value: int32(i % 1000)},
			{Key: "price", Value: float64(i) / 7}, {Key: "at", Value: bson.NewDateTimeFromTime(time.Unix(int64(1700000000+i), 0))},
			{Key: "tags", Value: bson.A{"a", "b", fmt.Sprint(i % 5)}}, {Key: "note", Value: strings.Repeat("n", 120)}}
	}
	return docs
}

// bulkInsert is the ceiling: unordered insertMany of batches of 1000 by
// par connections.
func bulkInsert(t *testing.T, c *mongo.Collection, docs []any, par int) time.Duration {
	start := time.Now()
	ch := make(chan []any)
	var wg sync.WaitGroup
	for i := 0; i < par; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range ch {
				if _, err := c.InsertMany(context.Background(), b, options.InsertMany().SetOrdered(false)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for len(docs) > 0 {
		n := min(1000, len(docs))
		ch <- docs[:n]
		docs = docs[n:]
	}
	close(ch)
	wg.Wait()
	return time.Since(start)
}

// TestInitialSyncThroughput measures the initial sync against the target's
// own ceiling in the same run: the same documents inserted by a plain
// unordered bulk insert from a generator into the same FerretDB.
func TestInitialSyncThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("throughput measurement")
	}
	const n = 40000
	e := newEnv(t)
	ctx := context.Background()
	// No oplog on the source for this one: it measures the copy only.
	if err := e.src.Database("local").Collection("oplog.rs").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	bulkInsert(t, e.src.Database("bench").Collection("docs"), genDocs(n), 4)
	ceiling := bulkInsert(t, e.dst.Database("ceiling").Collection("docs"), genDocs(n), 4)
	if err := e.dst.Database("ceiling").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	// The source's read ceiling: one scan of the collection.
	start := time.Now()
	cur, err := e.src.Database("bench").Collection("docs").Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for cur.Next(ctx) {
		read++
	}
	scan := time.Since(start)
	m := e.create(ferry.Modes{Full: true}, ferry.Options{Parallelism: 4, Filters: ferry.Filters{IncludeDBs: []string{"bench"}}})
	e.agent("bench-agent")
	m = e.wait(m.ID, "completed", 300*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	full := m.Step(ferry.StepFull)
	if full.Counters.Done != n {
		t.Fatalf("copied %d of %d", full.Counters.Done, n)
	}
	ceilRate := float64(n) / ceiling.Seconds()
	scanRate := float64(read) / scan.Seconds()
	ratio := full.Counters.RatePerSec / ceilRate
	// A copy can go no faster than its slower half, and here both servers
	// share the test's 2 cores.
	bound := 1 / (1/ceilRate + 1/scanRate)
	t.Logf("initial sync %.0f documents/s (%s); plain bulk insert into the same FerretDB %.0f documents/s (%s for %d): ratio %.2f; "+
		"one scan of the source %.0f documents/s (%s); serial read+write bound %.0f documents/s: ratio %.2f",
		full.Counters.RatePerSec, full.Message, ceilRate, ceiling.Round(time.Millisecond), n, ratio,
		scanRate, scan.Round(time.Millisecond), bound, full.Counters.RatePerSec/bound)
	if ratio < 0.1 {
		t.Errorf("initial sync at %.2f of the bulk-insert ceiling", ratio)
	}
}
