// Command mongo benchmarks ferry's MongoDB initial sync on FerretDB v1.24
// (SQLite handler) servers it runs itself, each in a child process of its
// own (this program re-executed with -serve), in one run on one machine:
//
//   - the ceiling: N generated documents (~1 KB, mixed types, nested
//     documents and arrays) inserted into a fresh FerretDB by unordered
//     insertMany batches of 1000 over -par connections, straight from the
//     generator; the same insert seeds the source;
//
//   - ferry's initial sync of the same documents from the source into
//     another fresh FerretDB, through an in-process agent (sqlite store):
//     documents/s and MB/s of the full step (start to end, indexes
//     included) and their ratio to the ceiling;
//
//   - the CPU time of ferry and of both servers during the sync, and the
//     peak RSS of this process (the agent; the servers run apart).
//
//     go run ./bench/mongo -docs 200000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	mongoengine "github.com/ferrymigrate/ferry/engine/mongo"
	"github.com/ferrymigrate/ferry/sqlite"
)

var (
	nDocs      = flag.Int("docs", 200_000, "documents to generate")
	par        = flag.Int("par", 4, "connections of the ceiling's bulk insert")
	ferryPar   = flag.Int("ferry-par", 0, "the job's Options.Parallelism (0: ferry's default)")
	batchDocs  = flag.Int("batch", 0, "the engine's BatchDocs (0: default)")
	cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of ferry's run (this process) to this file")
	serve      = flag.String("serve", "", "internal: run a FerretDB server on this directory and print its URI")
)

func main() {
	flag.Parse()
	if *serve != "" {
		serveFerretDB(*serve)
		return
	}
	dir, err := os.MkdirTemp("", "ferry-bench-mongo")
	must(err)
	defer os.RemoveAll(dir)
	ctx := context.Background()
	fmt.Printf("%d documents; load average %s\n", *nDocs, loadAvg())

	src, stopSrc := startFerretDB(dir, "source")
	defer stopSrc()
	ceil, stopCeil := startFerretDB(dir, "ceiling")
	sc, cc := connect(src), connect(ceil)
	// Seed the source (no oplog: this measures the initial sync only).
	must(sc.Database("local").Collection("oplog.rs").Drop(ctx))
	seedTook, seedBytes := bulkInsert(sc.Database("bench").Collection("docs"), *nDocs, *par)
	fmt.Printf("seed of the source (the same insert into the other server, a second sample of the ceiling): %s, %.0f documents/s\n",
		seedTook.Round(time.Millisecond), float64(*nDocs)/seedTook.Seconds())
	must(cc.Database("local").Collection("oplog.rs").Drop(ctx))
	ceilTook, _ := bulkInsert(cc.Database("bench").Collection("docs"), *nDocs, *par)
	ceilRate := float64(*nDocs) / ceilTook.Seconds()
	ceilMB := float64(seedBytes) / ceilTook.Seconds() / 1e6
	fmt.Printf("ceiling: unordered insertMany of %d documents (%.1f MB of BSON) into a fresh FerretDB by %d connections: %s, %.0f documents/s, %.2f MB/s\n",
		*nDocs, float64(seedBytes)/1e6, *par, ceilTook.Round(time.Millisecond), ceilRate, ceilMB)
	must(cc.Disconnect(ctx))
	stopCeil()

	dst, stopDst := startFerretDB(dir, "target")
	defer stopDst()
	dc := connect(dst)
	must(dc.Database("local").Collection("oplog.rs").Drop(ctx))
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		must(err)
		must(pprof.StartCPUProfile(f))
	}
	self0, src0, dst0 := cpuOf("self"), cpuOf(pidOf(src)), cpuOf(pidOf(dst))
	full := migrate(ctx, dir, src, dst)
	cpuSelf, cpuSrc, cpuDst := cpuOf("self")-self0, cpuOf(pidOf(src))-src0, cpuOf(pidOf(dst))-dst0
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	took := full.FinishedAt.Sub(*full.StartedAt)
	rate := float64(full.Counters.Done) / took.Seconds()
	mbps := float64(full.Counters.Bytes) / took.Seconds() / 1e6
	n, err := dc.Database("bench").Collection("docs").EstimatedDocumentCount(ctx)
	must(err)
	if full.Counters.Done != int64(*nDocs) || n != int64(*nDocs) {
		log.Fatalf("initial sync copied %d documents, the target holds %d, want %d", full.Counters.Done, n, *nDocs)
	}
	fmt.Printf("ferry initial sync: %d documents (%.1f MB) in %s: %.0f documents/s, %.2f MB/s\n",
		full.Counters.Done, float64(full.Counters.Bytes)/1e6, took.Round(time.Millisecond), rate, mbps)
	fmt.Printf("ratio to the bulk-insert ceiling: %.2f (documents/s), %.2f (MB/s)\n", rate/ceilRate, mbps/ceilMB)
	fmt.Printf("CPU during the initial sync (wall %s): ferry (this process) %s, source FerretDB %s, target FerretDB %s\n",
		took.Round(time.Millisecond), cpuSelf.Round(time.Millisecond), cpuSrc.Round(time.Millisecond), cpuDst.Round(time.Millisecond))
	fmt.Printf("step message: %s\n", full.Message)
	fmt.Printf("peak RSS of the process running the agent: %d MB; load average %s\n", peakRSS()>>20, loadAvg())
}

// doc is a ~1 KB document of mixed types: an order with a customer, an
// address, line items and a history.
func doc(i int) bson.D {
	items := bson.A{}
	for k := 0; k < 3+i%3; k++ {
		items = append(items, bson.D{{Key: "sku", Value: fmt.Sprintf("SKU-%05d", (i*7+k)%50000)}, {Key: "qty", Value: int32(1 + (i+k)%5)},
			{Key: "price", Value: float64((i+k)%10000) / 100}, {Key: "name", Value: fmt.Sprintf("product %d of the catalogue", (i*7+k)%50000)}})
	}
	return bson.D{
		{Key: "_id", Value: bson.NewObjectIDFromTimestamp(time.Unix(int64(1600000000+i), 0))},
		{Key: "orderNo", Value: int64(1_000_000 + i)},
		{Key: "status", Value: []string{"new", "paid", "shipped", "delivered", "returned"}[i%5]},
		{Key: "createdAt", Value: bson.NewDateTimeFromTime(time.Unix(int64(1700000000+i*13), 0))},
		{Key: "total", Value: float64(i%100000) / 7},
		{Key: "paid", Value: i%3 != 0},
		{Key: "customer", Value: bson.D{{Key: "id", Value: int32(i % 100000)}, {Key: "name", Value: fmt.Sprintf("Customer Nr. %d", i%100000)},
			{Key: "email", Value: fmt.Sprintf("customer%d@example.com", i%100000)},
			{Key: "address", Value: bson.D{{Key: "street", Value: fmt.Sprintf("%d Harbour Road", i%999)}, {Key: "city", Value: fmt.Sprintf("City %d", i%500)},
				{Key: "zip", Value: fmt.Sprintf("%05d", i%99999)}, {Key: "country", Value: "DE"},
				{Key: "geo", Value: bson.D{{Key: "lat", Value: float64(i%180) - 90}, {Key: "lon", Value: float64(i%360) - 180}}}}}}},
		{Key: "items", Value: items},
		{Key: "history", Value: bson.A{
			bson.D{{Key: "at", Value: bson.NewDateTimeFromTime(time.Unix(int64(1700000000+i*13), 0))}, {Key: "event", Value: "created"}},
			bson.D{{Key: "at", Value: bson.NewDateTimeFromTime(time.Unix(int64(1700000100+i*13), 0))}, {Key: "event", Value: "paid"}, {Key: "by", Value: "card"}}}},
		{Key: "tags", Value: bson.A{"web", fmt.Sprintf("campaign-%d", i%20), nil}},
		{Key: "ref", Value: bson.Binary{Subtype: 4, Data: []byte(fmt.Sprintf("%016x", i))}},
		{Key: "note", Value: strings.Repeat("lorem ipsum ", 8+i%8)},
	}
}

// bulkInsert inserts n generated documents by unordered insertMany batches
// of 1000 over par connections; it returns the time taken and the BSON
// bytes inserted.
func bulkInsert(c *mongo.Collection, n, par int) (time.Duration, int64) {
	ch := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bytes int64
	start := time.Now()
	for p := 0; p < par; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var nb int64
			for lo := range ch {
				docs := make([]any, 0, 1000)
				for i := lo; i < min(lo+1000, n); i++ {
					raw, err := bson.Marshal(doc(i))
					must(err)
					nb += int64(len(raw))
					docs = append(docs, bson.Raw(raw))
				}
				_, err := c.InsertMany(context.Background(), docs, options.InsertMany().SetOrdered(false))
				must(err)
			}
			mu.Lock()
			bytes += nb
			mu.Unlock()
		}()
	}
	for lo := 0; lo < n; lo += 1000 {
		ch <- lo
	}
	close(ch)
	wg.Wait()
	return time.Since(start), bytes
}

// migrate runs an initial sync through an in-process agent and returns its
// full step.
func migrate(ctx context.Context, dir, src, dst string) *ferry.Step {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ferry.db"))
	must(err)
	defer db.Close()
	reg := ferry.NewRegistry()
	eng := mongoengine.New(logger)
	eng.BatchDocs = *batchDocs
	reg.Register(eng)
	svc := ferry.NewService(db, reg, logger)
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "bench")
	must(err)
	proj, err := svc.CreateProject(sys, org.ID, "bench")
	must(err)
	host := func(uri string) string { return strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/") }
	m := &ferry.Migration{ProjectID: proj.ID, Engine: ferry.KindMongoDB,
		Source: ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{host(src)}},
		Target: ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{host(dst)}},
		Modes:  ferry.Modes{Full: true}, Options: ferry.Options{Parallelism: *ferryPar, Filters: ferry.Filters{IncludeDBs: []string{"bench"}}}}
	must(svc.CreateMigration(sys, m, true))
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := agent.New(agent.Config{ID: "bench", Store: db, Registry: reg, Service: svc, Logger: logger, PollInterval: 20 * time.Millisecond, Heartbeat: 500 * time.Millisecond})
	go a.Run(actx)
	for {
		got, err := db.GetMigration(ctx, m.ID)
		must(err)
		switch got.State {
		case ferry.StateFailed:
			log.Fatalf("migration failed: %s", got.Error)
		case ferry.StateCompleted:
			return got.Step(ferry.StepFull)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startFerretDB runs this program with -serve in a child process and
// returns the server's URI and a function that stops it.
func startFerretDB(dir, name string) (string, func()) {
	exe, err := os.Executable()
	must(err)
	d := filepath.Join(dir, name)
	must(os.MkdirAll(d, 0o755))
	cmd := exec.Command(exe, "-serve", d)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	must(err)
	must(cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		log.Fatalf("FerretDB %s did not start: %v", name, err)
	}
	var once sync.Once
	uri := strings.TrimSpace(line)
	pids[uri] = strconv.Itoa(cmd.Process.Pid)
	return uri, func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
}

// serveFerretDB is the child: FerretDB embedded, SQLite handler, random
// loopback port; it prints the URI and runs until killed.
func serveFerretDB(dir string) {
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	must(err)
	go func() { must(f.Run(context.Background())) }()
	uri := f.MongoDBURI()
	c := connect(uri)
	for deadline := time.Now().Add(30 * time.Second); c.Ping(context.Background(), nil) != nil; {
		if time.Now().After(deadline) {
			log.Fatal("FerretDB does not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println(uri)
	select {}
}

// pids maps a FerretDB child's URI to its process id.
var pids = map[string]string{}

func pidOf(uri string) string { return pids[uri] }

// cpuOf returns the user+system CPU time of a process (/proc/<pid>/stat,
// clock ticks of 10 ms).
func cpuOf(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}

func connect(uri string) *mongo.Client {
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	must(err)
	return c
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
