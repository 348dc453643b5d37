package mongo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	"github.com/ferrymigrate/ferry/engine/enginetest"
	mongoengine "github.com/ferrymigrate/ferry/engine/mongo"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/sqlite"
)

func TestMain(m *testing.M) { testharness.Main(m) }

func logger(t testing.TB) *slog.Logger {
	if os.Getenv("FERRY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type env struct {
	t        *testing.T
	store    ferry.Store
	svc      *ferry.Service
	reg      *ferry.Registry
	eng      *mongoengine.Engine
	ctx      context.Context
	proj     *ferry.Project
	srcURI   string
	dstURI   string
	src, dst *mongo.Client
	srcAddr  string
	dstAddr  string
}

func connectURI(t testing.TB, uri string) *mongo.Client {
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(context.Background()) })
	return c
}

func hostOf(uri string) string {
	return strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t}
	e.srcURI = testharness.StartFerretDB(t)
	e.dstURI = testharness.StartFerretDB(t)
	e.srcAddr, e.dstAddr = hostOf(e.srcURI), hostOf(e.dstURI)
	e.src, e.dst = connectURI(t, e.srcURI), connectURI(t, e.dstURI)
	// The target is an empty server: it needs no oplog of its own.
	if err := e.dst.Database("local").Collection("oplog.rs").Drop(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.store = db
	e.reg = ferry.NewRegistry()
	e.eng = mongoengine.New(logger(t))
	e.eng.QuietPeriod = time.Second
	e.reg.Register(e.eng)
	e.svc = ferry.NewService(db, e.reg, logger(t))
	e.ctx = ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	org, err := e.svc.CreateOrg(e.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if e.proj, err = e.svc.CreateProject(e.ctx, org.ID, "prod"); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) agent(id string) (*agent.Agent, func()) {
	return e.agentWith(id, nil)
}

// agentWith starts an in-process agent whose config tune may change.
func (e *env) agentWith(id string, tune func(*agent.Config)) (*agent.Agent, func()) {
	cfg := agent.Config{ID: id, Store: e.store, Registry: e.reg, Service: e.svc, Logger: logger(e.t),
		LeaseTTL: 2 * time.Second, PollInterval: 50 * time.Millisecond, RetryBackoff: 200 * time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	a := agent.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	stop := func() { cancel(); <-done }
	e.t.Cleanup(stop)
	return a, stop
}

func (e *env) create(modes ferry.Modes, opts ferry.Options) *ferry.Migration {
	e.t.Helper()
	m := &ferry.Migration{ProjectID: e.proj.ID, Engine: ferry.KindMongoDB,
		Source: ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{e.srcAddr}},
		Target: ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{e.dstAddr}},
		Modes:  modes, Options: opts}
	if err := e.svc.CreateMigration(e.ctx, m, true); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func waitFor(t *testing.T, store ferry.Store, id, what string, timeout time.Duration, cond func(m *ferry.Migration) bool) *ferry.Migration {
	t.Helper()
	return enginetest.WaitFor(t, store, id, what, timeout, cond)
}

func (e *env) wait(id, what string, timeout time.Duration, cond func(m *ferry.Migration) bool) *ferry.Migration {
	e.t.Helper()
	return waitFor(e.t, e.store, id, what, timeout, cond)
}

// typedDocs are documents of every BSON type FerretDB v1.24 accepts (it
// drops the connection on decimal128, minKey, maxKey, JavaScript, symbol
// and undefined, and refuses arrays directly inside arrays), with _ids of
// several types and fields in a deliberate, non-sorted order.
func typedDocs() []bson.D {
	oid := bson.NewObjectIDFromTimestamp(time.Unix(1700000000, 0))
	when := bson.NewDateTimeFromTime(time.Date(2024, 2, 29, 23, 59, 59, 123e6, time.UTC))
	return []bson.D{
		{{Key: "_id", Value: oid}, {Key: "zeta", Value: int32(1)}, {Key: "alpha", Value: int64(1)}, {Key: "mid", Value: 1.0},
			{Key: "i32", Value: int32(-2147483648)}, {Key: "i64", Value: int64(9007199254740993)}, {Key: "dbl", Value: 0.1}, {Key: "negzero", Value: -0.0}},
		{{Key: "_id", Value: "string-id"}, {Key: "s", Value: "héllo wörld 🚀🙂 中文"}, {Key: "empty", Value: ""}, {Key: "nul", Value: "a\x00b"}},
		{{Key: "_id", Value: int32(42)}, {Key: "bin0", Value: bson.Binary{Subtype: 0, Data: []byte{0, 1, 2, 255}}},
			{Key: "bin4", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{0xab}, 16)}},
			{Key: "bin5", Value: bson.Binary{Subtype: 5, Data: bytes.Repeat([]byte{0x11}, 16)}},
			{Key: "bin80", Value: bson.Binary{Subtype: 0x80, Data: []byte("user-defined")}}},
		{{Key: "_id", Value: int64(1) << 40}, {Key: "oid", Value: oid}, {Key: "date", Value: when}, {Key: "ts", Value: bson.Timestamp{T: 1700000000, I: 7}},
			{Key: "t", Value: true}, {Key: "f", Value: false}, {Key: "null", Value: nil}},
		{{Key: "_id", Value: bson.D{{Key: "b", Value: 2}, {Key: "a", Value: "x"}}}, {Key: "re", Value: bson.Regex{Pattern: "^ab+c$", Options: "im"}},
			{Key: "nested", Value: bson.D{{Key: "z", Value: bson.D{{Key: "y", Value: bson.A{int32(1), int64(2), 3.0, "four", bson.D{{Key: "deep", Value: bson.A{bson.D{{Key: "deeper", Value: true}}}}}}}}}, {Key: "a", Value: nil}}},
			{Key: "emptyDoc", Value: bson.D{}}, {Key: "emptyArr", Value: bson.A{}}},
		{{Key: "_id", Value: 2.5}, {Key: "big", Value: strings.Repeat("x", 100000)}},
		{{Key: "_id", Value: true}, {Key: "kind", Value: "bool id"}},
		{{Key: "_id", Value: bson.Binary{Subtype: 0, Data: []byte{9, 9}}}, {Key: "kind", Value: "binary id"}},
	}
}

func insertDocs(t testing.TB, c *mongo.Collection, docs []bson.D) {
	t.Helper()
	var all []any
	for _, d := range docs {
		all = append(all, d)
	}
	if _, err := c.InsertMany(context.Background(), all); err != nil {
		t.Fatalf("insert into %s: %v", c.Name(), err)
	}
}

// seed writes the source: several databases and collections, typed
// documents, indexes, a capped collection, and a collection big enough to
// be split into _id ranges (with _ids of mixed types).
func seed(t *testing.T, c *mongo.Client, bigN int) {
	ctx := context.Background()
	insertDocs(t, c.Database("shop").Collection("types"), typedDocs())
	var orders []bson.D
	for i := 0; i < 300; i++ {
		orders = append(orders, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "n", Value: int32(i)}, {Key: "sku", Value: fmt.Sprintf("sku-%03d", i%37)},
			{Key: "price", Value: float64(i) * 1.25}, {Key: "qty", Value: int64(i % 7)}, {Key: "tags", Value: bson.A{"a", fmt.Sprint(i % 3)}}})
	}
	insertDocs(t, c.Database("shop").Collection("orders"), orders)
	if _, err := c.Database("shop").Collection("orders").Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "sku", Value: 1}, {Key: "n", Value: -1}}, Options: options.Index().SetName("sku_n")},
		{Keys: bson.D{{Key: "n", Value: 1}}, Options: options.Index().SetUnique(true)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Database("shop").CreateCollection(ctx, "events", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20)); err != nil {
		t.Fatal(err)
	}
	insertDocs(t, c.Database("shop").Collection("events"), []bson.D{{{Key: "_id", Value: 1}, {Key: "e", Value: "start"}}})
	var users []bson.D
	for i := 0; i < 50; i++ {
		users = append(users, bson.D{{Key: "_id", Value: fmt.Sprintf("user-%02d", i)}, {Key: "name", Value: fmt.Sprintf("User %d", i)}, {Key: "age", Value: int32(20 + i)}})
	}
	insertDocs(t, c.Database("crm").Collection("users"), users)
	var big []bson.D
	for i := 0; i < bigN; i++ {
		var id any = int32(i)
		switch {
		case i%1000 == 1:
			id = fmt.Sprintf("s-%d", i)
		case i%1000 == 2:
			id = bson.NewObjectID()
		case i%2 == 0:
			id = int64(i)
		}
		big = append(big, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: int32(i)}, {Key: "pad", Value: strings.Repeat("p", 200)}})
	}
	for len(big) > 0 {
		n := min(len(big), 5000)
		insertDocs(t, c.Database("crm").Collection("big"), big[:n])
		big = big[n:]
	}
	// Excluded by the job's filter.
	insertDocs(t, c.Database("scratch").Collection("tmp"), []bson.D{{{Key: "_id", Value: 1}}})
}

// sortedRaw reads a collection in _id order as raw documents.
func sortedRaw(t testing.TB, c *mongo.Collection) []bson.Raw {
	cur, err := c.Find(context.Background(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.Raw
	if err := cur.All(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameBytes compares every document of the collections byte for byte.
func sameBytes(t *testing.T, src, dst *mongo.Client, nss ...string) int {
	t.Helper()
	n := 0
	for _, ns := range nss {
		db, coll, _ := strings.Cut(ns, ".")
		a, b := sortedRaw(t, src.Database(db).Collection(coll)), sortedRaw(t, dst.Database(db).Collection(coll))
		if len(a) != len(b) {
			t.Fatalf("%s: %d documents on the source, %d on the target", ns, len(a), len(b))
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("%s: document %d differs:\nsource %s\ntarget %s", ns, i, a[i], b[i])
			}
		}
		n += len(a)
	}
	return n
}

var movedNS = []string{"crm.big", "crm.users", "shop.events", "shop.orders", "shop.types"}

// writer makes changes on the source of every kind the oplog carries:
// inserts, updates (FerretDB logs the whole post-image), replacements and
// deletes, a few per tick (FerretDB takes ~0.1 s per single-document write).
type writer struct {
	stop chan struct{}
	done chan struct{}
	n    int
}

func startWriter(t *testing.T, c *mongo.Client, prefix string, every time.Duration) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	coll := c.Database("crm").Collection("users")
	ctx := context.Background()
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(every):
			}
			id := fmt.Sprintf("%s-%03d", prefix, i)
			ops := []func() error{
				func() error {
					_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "name", Value: "new " + id}, {Key: "n", Value: int64(i)}, {Key: "at", Value: bson.NewDateTimeFromTime(time.Now())}})
					return err
				},
				func() error {
					_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("user-%02d", i%50)}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: int32(1)}}}, {Key: "$set", Value: bson.D{{Key: "seen", Value: int32(i)}}}})
					return err
				},
				func() error {
					if i%3 != 0 {
						return nil
					}
					_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "replaced", Value: true}, {Key: "v", Value: 2.5}, {Key: "n", Value: int32(i)}})
					return err
				},
				func() error {
					if i%4 != 1 {
						return nil
					}
					_, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("%s-%03d", prefix, i-1)}})
					return err
				},
			}
			for _, op := range ops {
				if err := op(); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
			w.n = i + 1
		}
	}()
	return w
}

func (w *writer) halt() int {
	close(w.stop)
	<-w.done
	return w.n
}

func TestLiveMigrationEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.eng.SplitDocs, e.eng.ForceSplit = 4000, true
	seed(t, e.src, 12000)
	ctx := context.Background()
	m := e.create(ferry.Modes{Full: true, Incremental: true, Verify: true},
		ferry.Options{Filters: ferry.Filters{ExcludeDBs: []string{"scratch"}}, Parallelism: 2})
	e.agent("agent-1")
	// The application writes during the initial sync and the sync.
	w := startWriter(t, e.src, "live", 150*time.Millisecond)
	m = e.wait(m.ID, "ready for cutover", 120*time.Second, func(m *ferry.Migration) bool {
		return m.ReadyForCutover && m.Step(ferry.StepIncremental).Counters.Ops > 0
	})
	full := m.Step(ferry.StepFull)
	if full.State != ferry.StepDone || full.Counters.Done < 12000+300+50 || full.Counters.Bytes == 0 || full.Counters.Unit != "documents" {
		t.Fatalf("full step %+v", full)
	}
	var fcp struct {
		Reader     string `json:"reader"`
		Partitions []struct {
			Coll string `json:"coll"`
			Rest bool   `json:"rest"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(full.Checkpoint, &fcp); err != nil {
		t.Fatal(err)
	}
	ranges := 0
	for _, p := range fcp.Partitions {
		if p.Coll == "big" {
			ranges++
		}
	}
	if fcp.Reader != "oplog" || ranges < 3 {
		t.Fatalf("full checkpoint: reader %q, %d partitions of crm.big (want ranges and a rest partition): %s", fcp.Reader, ranges, full.Checkpoint)
	}
	if m.LagSeconds == nil || m.CutoverDeadline == nil || fmt.Sprint(m.Hosts) != "[agent-1]" {
		t.Fatalf("lag %v deadline %v hosts %v", m.LagSeconds, m.CutoverDeadline, m.Hosts)
	}
	// Lag goes to 0 with an idle source? Here the writer still writes; more
	// writes during the sync, then the application stops.
	time.Sleep(time.Second)
	n := w.halt()
	e.wait(m.ID, "lag 0 on an idle source", 30*time.Second, func(m *ferry.Migration) bool { return m.LagSeconds != nil && *m.LagSeconds == 0 })
	if _, err := e.svc.CutoverMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.wait(m.ID, "completed", 90*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 || v.Counters.Done < 12000 {
		t.Fatalf("verify %+v: %s", v.Counters, v.Message)
	}
	if c := m.Cutover; c == nil || c.SourceWriteBlock != ferry.WriteBlockNone || !strings.HasPrefix(c.SourcePosition, "oplog ts ") || !strings.HasPrefix(c.DrainedPosition, "oplog ts ") ||
		c.Verification == nil || c.Verification.State != ferry.StepDone || !strings.Contains(c.Summary(time.Now()), "did not stop the source's writes") {
		t.Fatalf("cutover record %+v", c)
	}
	inc := m.Step(ferry.StepIncremental)
	if inc.Counters.Ops < int64(n) {
		t.Fatalf("incremental applied %d changes for %d writer rounds", inc.Counters.Ops, n)
	}
	docs := sameBytes(t, e.src, e.dst, movedNS...)
	// Filtered out, and the oplog is not data.
	if names, _ := e.dst.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: "scratch"}}); len(names) != 0 {
		t.Fatalf("excluded database scratch reached the target")
	}
	// Indexes and collection options.
	specs := indexNames(t, e.dst.Database("shop").Collection("orders"))
	if specs != "[_id_ n_1 sku_n]" {
		t.Fatalf("target indexes of shop.orders: %s", specs)
	}
	var info bson.Raw
	if err := e.dst.Database("shop").RunCommand(ctx, bson.D{{Key: "listCollections", Value: 1}, {Key: "filter", Value: bson.D{{Key: "name", Value: "events"}}}}).Decode(&info); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info.String(), `"capped": true`) {
		t.Fatalf("shop.events is not capped on the target: %s", info)
	}
	// The verification catches a planted difference.
	if _, err := e.dst.Database("shop").Collection("types").UpdateOne(ctx, bson.D{{Key: "_id", Value: "string-id"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: "changed"}}}}); err != nil {
		t.Fatal(err)
	}
	vj, err := e.svc.VerifyMigration(e.ctx, e.proj.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	vj = e.wait(vj.ID, "failed verification", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateFailed })
	if c := vj.Step(ferry.StepVerify).Counters; c.Different != 1 || c.Missing+c.Extra != 0 || !strings.Contains(vj.Error, `different "string-id"`) {
		t.Fatalf("planted difference: %+v %s", c, vj.Error)
	}
	t.Logf("full: %s; incremental: %s (%d writer rounds); verify: %s; %d documents equal byte for byte",
		full.Message, inc.Message, n, v.Message, docs)
}

func indexNames(t *testing.T, c *mongo.Collection) string {
	cur, err := c.Indexes().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var specs []bson.M
	if err := cur.All(context.Background(), &specs); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, fmt.Sprint(s["name"]))
	}
	sortStrings(names)
	return fmt.Sprint(names)
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}
