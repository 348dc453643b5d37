package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
