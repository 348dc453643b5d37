package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/pipeline"
)

func mongoDoc(i int) bson.D {
	d := bson.D{
		{Key: "_id", Value: int64(i)},
		{Key: "name", Value: fmt.Sprintf("doc %d ✓", i)},
		{Key: "region", Value: regions[i%len(regions)]},
		{Key: "n", Value: int32(i)},
		{Key: "price", Value: float64(i) / 4},
		{Key: "when", Value: bson.DateTime(1700000000000 + int64(i)*1000)},
		{Key: "tags", Value: bson.A{"t" + fmt.Sprint(i%3), "x"}},
		{Key: "addr", Value: bson.D{{Key: "city", Value: "c" + fmt.Sprint(i%10)}, {Key: "zip", Value: int32(10000 + i)}}},
		{Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: "a"}, {Key: "qty", Value: int32(i % 5)}}, bson.D{{Key: "sku", Value: "b"}, {Key: "qty", Value: int32(1)}}}},
		{Key: "secret", Value: "pw" + fmt.Sprint(i)},
		{Key: "bin", Value: bson.Binary{Subtype: 0, Data: []byte{byte(i), 0, 0xff}}},
	}
	// mixed: an int32 in even documents, a string in odd ones.
	if i%2 == 0 {
		d = append(d, bson.E{Key: "mixed", Value: int32(i)})
	} else {
		d = append(d, bson.E{Key: "mixed", Value: fmt.Sprint(i)})
	}
	if i%5 == 0 {
		d = append(d, bson.E{Key: "opt", Value: nil})
	} else if i%5 == 1 {
		d = append(d, bson.E{Key: "opt", Value: true})
	}
	return d
}

// TestMongoExport: a FerretDB collection exported on demand by an agent,
// nested documents as groups, arrays as lists, a mixed int/string field as
// canonical Extended JSON, exclusions and partitions applied, read back
// document by document.
func TestMongoExport(t *testing.T) {
	uri := testharness.StartFerretDB(t)
	e := newEnv(t, pipeline.Config{RowGroupBytes: 64 << 10})
	ctx := context.Background()
	cl, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Disconnect(ctx)
	const n = 3000
	var docs []any
	for i := 0; i < n; i++ {
		docs = append(docs, mongoDoc(i))
	}
	if _, err := cl.Database("shop").Collection("events").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	ep := &ferry.Endpoint{ProjectID: e.proj.ID, Name: "Mongo0", Kind: ferry.KindMongoDB, Addrs: []string{addr}}
	if err := e.svc.CreateEndpoint(e.ctx, ep); err != nil {
		t.Fatal(err)
	}
	p := e.createPipeline(&ferry.Pipeline{Name: "events",
		Source:          ferry.PipelineSource{Type: ferry.SourceOnDemand, ClusterName: "Mongo0", DatabaseName: "shop", CollectionName: "events"},
		Sink:            ferry.PipelineSink{PartitionFields: []ferry.PartitionField{{FieldName: "region", Order: 0}}},
		Transformations: []ferry.Transformation{{Field: "secret", Type: "EXCLUDE"}, {Field: "addr.zip", Type: "EXCLUDE"}},
	})
	e.startAgent(5 * time.Second)
	run, err := e.svc.TriggerRun(e.ctx, e.proj.ID, p.Name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := e.waitRun(p, run.ID, 2*time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunDone {
		t.Fatalf("run: %s", r.Error)
	}
	if !strings.HasPrefix(r.DatasetName, "v1$mongodb$snapshot$Mongo0$shop$events$") || r.Stats.NumDocs != n {
		t.Fatalf("run %s %+v", r.DatasetName, r.Stats)
	}
	m, err := e.mongo.ReadManifest(e.ctx, e.proj.ID, "", r.DatasetName)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Consistency, "FerretDB has no snapshot reads") {
		t.Fatalf("consistency %q", m.Consistency)
	}
	sch, _ := json.Marshal(m.Schema)
	for _, want := range []string{`"name":"mixed","type":"STRING","optional":true,"source":"int,string","encoding":"extjson"`, `"name":"items","type":"list"`, `"name":"addr","type":"group"`} {
		if !strings.Contains(string(sch), want) {
			t.Fatalf("schema lacks %s: %s", want, sch)
		}
	}
	if strings.Contains(string(sch), "secret") || strings.Contains(string(sch), "zip") {
		t.Fatalf("excluded fields in schema: %s", sch)
	}
	got := map[int64]map[string]any{}
	for _, f := range m.Files {
		if !strings.HasPrefix(f.Path, "region=") {
			t.Fatalf("file %s", f.Path)
		}
		fh, err := os.Open(filepath.Join(e.cfg.Dir, e.proj.ID, r.DatasetName, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fh.Stat()
		pf, err := parquet.OpenFile(fh, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		rd := parquet.NewReader(pf)
		for {
			row := map[string]any{}
			if err := rd.Read(&row); err != nil {
				break
			}
			got[row["_id"].(int64)] = row
		}
		rd.Close()
		fh.Close()
	}
	if len(got) != n {
		t.Fatalf("read %d documents, want %d", len(got), n)
	}
	for i := 0; i < n; i++ {
		row := got[int64(i)]
		b, _ := json.Marshal(row)
		want := []string{
			fmt.Sprintf(`"name":"doc %d ✓"`, i),
			fmt.Sprintf(`"n":%d`, i),
			fmt.Sprintf(`"addr":{"city":"c%d"}`, i%10),
			fmt.Sprintf(`{"qty":%d,"sku":"a"}`, i%5),
			fmt.Sprintf(`"tags":["t%d","x"]`, i%3),
			fmt.Sprintf(`"items":[{"qty":%d,"sku":"a"},{"qty":1,"sku":"b"}]`, i%5),
		}
		if i%2 == 0 {
			want = append(want, fmt.Sprintf(`"mixed":"{\"$numberInt\":\"%d\"}"`, i))
		} else {
			want = append(want, fmt.Sprintf(`"mixed":"\"%d\""`, i))
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Fatalf("doc %d: %s lacks %s", i, b, w)
			}
		}
		if row["price"].(float64) != float64(i)/4 || row["region"] != regions[i%len(regions)] {
			t.Fatalf("doc %d: %s", i, b)
		}
		if i%5 == 1 && row["opt"] != true || i%5 != 1 && row["opt"] != nil {
			t.Fatalf("doc %d opt: %s", i, b)
		}
	}
}

// startFerretDB starts a FerretDB, fills shop.events with n documents
// (mongoDoc) and registers it as endpoint name.
func (e *env) startFerretDB(name string, n int) *mongo.Client {
	t := e.t
	t.Helper()
	uri := testharness.StartFerretDB(t)
	ctx := context.Background()
	cl, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Disconnect(context.Background()) })
	docs := make([]any, 0, n)
	for i := 0; i < n; i++ {
		docs = append(docs, mongoDoc(i))
	}
	if _, err := cl.Database("shop").Collection("events").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	ep := &ferry.Endpoint{ProjectID: e.proj.ID, Name: name, Kind: ferry.KindMongoDB, Addrs: []string{addr}}
	if err := e.svc.CreateEndpoint(e.ctx, ep); err != nil {
		t.Fatal(err)
	}
	return cl
}

func eventsPipeline(name string) *ferry.Pipeline {
	return &ferry.Pipeline{Name: name,
		Source:                 ferry.PipelineSource{Type: ferry.SourceOnDemand, ClusterName: "Mongo0", DatabaseName: "shop", CollectionName: "events"},
		Sink:                   ferry.PipelineSink{PartitionFields: []ferry.PartitionField{{FieldName: "region", Order: 0}}},
		Transformations:        []ferry.Transformation{{Field: "secret", Type: "EXCLUDE"}},
		DatasetRetentionPolicy: &ferry.RetentionPolicy{Units: "DAYS", Value: 1},
	}
}

// checkEvents reads a published events dataset back with parquet-go and
// compares it document by document with the source collection (secret
// excluded, region partitions).
func (e *env) checkEvents(cl *mongo.Client, r *ferry.PipelineRun, n int) *pipeline.Manifest {
	t := e.t
	t.Helper()
	m, err := e.mongo.ReadManifest(e.ctx, e.proj.ID, "", r.DatasetName)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != int64(n) || r.Stats.NumDocs != int64(n) || r.Stats.BytesExported != m.Bytes || m.RunID != r.ID || m.SnapshotID != r.SnapshotID {
		t.Fatalf("run %+v %s, manifest rows %d bytes %d run %s snapshot %s", r.Stats, r.SnapshotID, m.Rows, m.Bytes, m.RunID, m.SnapshotID)
	}
	got := map[int64]map[string]any{}
	for _, f := range m.Files {
		fh, err := os.Open(filepath.Join(e.cfg.Dir, e.proj.ID, r.DatasetName, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fh.Stat()
		pf, err := parquet.OpenFile(fh, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		rd := parquet.NewReader(pf)
		for {
			row := map[string]any{}
			if err := rd.Read(&row); err != nil {
				break
			}
			if want := "region=" + fmt.Sprint(row["region"]) + "/"; !strings.HasPrefix(f.Path, want) {
				t.Fatalf("document %v in %s", row["_id"], f.Path)
			}
			got[row["_id"].(int64)] = row
		}
		rd.Close()
		fh.Close()
	}
	cur, err := cl.Database("shop").Collection("events").Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close(context.Background())
	seen := 0
	for cur.Next(context.Background()) {
		var d struct {
			ID    int64   `bson:"_id"`
			Name  string  `bson:"name"`
			N     int32   `bson:"n"`
			Price float64 `bson:"price"`
			Addr  struct {
				City string `bson:"city"`
				Zip  int32  `bson:"zip"`
			} `bson:"addr"`
			Tags []string `bson:"tags"`
		}
		if err := cur.Decode(&d); err != nil {
			t.Fatal(err)
		}
		seen++
		row, ok := got[d.ID]
		if !ok {
			t.Fatalf("document %d missing from the dataset", d.ID)
		}
		addr, _ := row["addr"].(map[string]any)
		tags, _ := json.Marshal(row["tags"])
		wantTags, _ := json.Marshal(d.Tags)
		if row["name"] != d.Name || row["n"] != d.N || row["price"] != d.Price || addr["city"] != d.Addr.City ||
			addr["zip"] != d.Addr.Zip || string(tags) != string(wantTags) || row["secret"] != nil {
			t.Fatalf("document %d: dataset %v, source %+v", d.ID, row, d)
		}
	}
	if seen != n || len(got) != n {
		t.Fatalf("source %d documents, dataset %d, want %d", seen, len(got), n)
	}
	return m
}

// TestMongoScheduledAndRetention: a periodic pipeline on a FerretDB
// collection whose next run is due (the schedule shortened through the
// store) gets its run from the agent's housekeeping; the dataset equals
// the collection; the retention reaper then deletes it (the service's
// clock moved past scheduledDeletionDate) and the run shows
// DATASET_DELETED.
func TestMongoScheduledAndRetention(t *testing.T) {
	e := newEnv(t, pipeline.Config{RowGroupBytes: 64 << 10})
	const n = 1500
	cl := e.startFerretDB("Mongo0", n)
	p := eventsPipeline("hourly-events")
	p.Source.Type = ferry.SourcePeriodic
	p.BackupFrequencyType = "HOURLY"
	e.createPipeline(p)
	past := time.Now().Add(-time.Minute)
	if _, err := e.db.UpdatePipeline(e.ctx, p.ID, func(q *ferry.Pipeline) error { q.NextRunAt = &past; return nil }); err != nil {
		t.Fatal(err)
	}
	e.startAgent(5 * time.Second)
	var runs []*ferry.PipelineRun
	deadline := time.Now().Add(30 * time.Second)
	for len(runs) == 0 {
		var err error
		if runs, _, err = e.svc.ListRuns(e.ctx, e.proj.ID, p.Name, 0, 10); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no scheduled run")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := e.waitRun(p, runs[0].ID, time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunDone || r.BackupFrequencyType != "HOURLY" {
		t.Fatalf("run %s %s: %s", r.State, r.BackupFrequencyType, r.Error)
	}
	if !strings.HasPrefix(r.DatasetName, "v1$mongodb$snapshot$Mongo0$shop$events$") {
		t.Fatalf("dataset %s", r.DatasetName)
	}
	e.checkEvents(cl, r, n)
	np, _ := e.svc.GetPipeline(e.ctx, e.proj.ID, p.Name)
	if np.NextRunAt == nil || !np.NextRunAt.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("next run at %v", np.NextRunAt)
	}

	// Retention: 1 day; move the service's clock 25 hours on.
	e.advance(25 * time.Hour)
	r = e.waitRun(p, r.ID, 10*time.Second, ferry.RunDatasetDeleted)
	if ds, _ := e.mongo.Datasets(e.ctx, e.proj.ID, ""); len(ds) != 0 {
		t.Fatalf("datasets after retention %v", ds)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Dir, e.proj.ID, r.DatasetName)); !os.IsNotExist(err) {
		t.Fatalf("dataset directory still there: %v", err)
	}
}

// TestMongoKilledMidExport: an agent killed in the middle of exporting a
// FerretDB collection publishes nothing; another agent takes the run over
// when the lease expires, discards the first attempt's staging files and
// publishes a dataset equal to the collection.
func TestMongoKilledMidExport(t *testing.T) {
	e := newEnv(t, pipeline.Config{RowGroupBytes: 16 << 10})
	const n = 1500
	cl := e.startFerretDB("Mongo0", n)
	p := e.createPipeline(eventsPipeline("events"))
	mid := make(chan string, 1)
	var attempts atomic.Int32
	e.setHook(func(ctx context.Context, run *ferry.PipelineRun, rows int64) {
		if rows == 1024 && attempts.Add(1) == 1 {
			var cp struct {
				DatasetName string `json:"datasetName"`
			}
			fresh, _ := e.db.GetRun(context.Background(), run.ID)
			_ = json.Unmarshal(fresh.Checkpoint, &cp)
			mid <- cp.DatasetName
			<-ctx.Done() // stays mid-export until killed
		}
	})
	a1 := e.startAgent(time.Second)
	run, err := e.svc.TriggerRun(e.ctx, e.proj.ID, p.Name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var first string
	select {
	case first = <-mid:
	case <-time.After(time.Minute):
		t.Fatal("export never reached 1,024 documents")
	}
	staging := filepath.Join(e.cfg.Dir, e.proj.ID, ".staging", first)
	time.Sleep(300 * time.Millisecond) // a heartbeat carries the live stats
	a1.Kill()
	r, _ := e.db.GetRun(e.ctx, run.ID)
	if r.State != ferry.RunInProgress || r.Phase != ferry.PhaseExport || r.Stats.NumDocs != 1024 {
		t.Fatalf("killed run is %s/%s %+v", r.State, r.Phase, r.Stats)
	}
	if ds, _ := e.mongo.Datasets(e.ctx, e.proj.ID, ""); len(ds) != 0 {
		t.Fatalf("a killed run published %v", ds)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Dir, e.proj.ID, first)); !os.IsNotExist(err) {
		t.Fatalf("the killed attempt's dataset is visible: %v", err)
	}
	var files int
	filepath.WalkDir(staging, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".parquet") {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Fatal("the killed attempt left no staging files: the test did not kill mid-export")
	}
	e.startAgent(time.Second)
	r = e.waitRun(p, run.ID, time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunDone {
		t.Fatalf("retry: %s %s", r.State, r.Error)
	}
	if r.DatasetName == first {
		t.Fatalf("the retry reused the killed attempt's name %s", first)
	}
	e.checkEvents(cl, r, n)
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Fatalf("the killed attempt's staging files are still there: %v", err)
	}
	if ds, _ := e.mongo.Datasets(e.ctx, e.proj.ID, ""); len(ds) != 1 || ds[0] != r.DatasetName {
		t.Fatalf("datasets %v", ds)
	}
}
