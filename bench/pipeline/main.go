// Command pipeline benchmarks a pipeline export: a MariaDB table (-source
// mysql) or a FerretDB collection (-source mongo) exported to a Parquet
// dataset by ferry's exporter, as a ratio to a plain full scan of the same
// source with the same driver in the same run (MySQL: go-sql-driver/mysql,
// text protocol, values read as raw bytes and dropped; MongoDB: the Go
// driver's find over the whole collection, documents read as raw BSON and
// dropped), and the process's peak RSS during the export (VmHWM, reset
// before it through /proc/self/clear_refs).
//
//	go run ./bench/pipeline -rows 1000000
//	go run ./bench/pipeline -source mongo -rows 200000
//
// The servers are started by internal/testharness (inside
// testing.Benchmark, which supplies the testing.TB it needs).
package main

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/pipeline"
)

var (
	source      = flag.String("source", "mysql", "mysql (MariaDB table) or mongo (FerretDB collection)")
	nRows       = flag.Int("rows", 1000000, "rows in the table (documents in the collection)")
	repeat      = flag.Int("repeat", 2, "runs of the scan and of the export (best reported)")
	compression = flag.String("compression", "zstd", "zstd, snappy or none")
	partition   = flag.Bool("partition", false, "partition the dataset by the bucket column (16 values)")
	cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the exports to this file")
	writers     = flag.Int("writers", 0, "exporter writer goroutines (0: the default, GOMAXPROCS up to 4)")
)

type runtimeStub struct{ log *slog.Logger }

func (r *runtimeStub) Phase(string)                       {}
func (r *runtimeStub) Stats(ferry.RunStats)               {}
func (r *runtimeStub) SetSnapshot(string, string)         {}
func (r *runtimeStub) Save(context.Context, []byte) error { return nil }
func (r *runtimeStub) Logger() *slog.Logger               { return r.log }

func main() {
	if os.Getenv(ferretChildEnv) != "" {
		ferretChild()
		return
	}
	flag.Parse()
	var err error
	testing.Benchmark(func(b *testing.B) {
		if b.N > 1 {
			return
		}
		err = bench(b)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func vmRSS() int64 { return procStatus("VmRSS:") }

func vmHWM() int64 { return procStatus("VmHWM:") }

func procStatus(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n * 1024
		}
	}
	return 0
}

// src is the benchmarked source.
type src struct {
	ep     *ferry.Endpoint
	exp    func(cfg pipeline.Config) *pipeline.Exporter
	scan   func(ctx context.Context) (rows, bytes int64, err error)
	coll   string
	part   string
	server string
}

func bench(b *testing.B) error {
	ctx := context.Background()
	var s *src
	var err error
	t0 := time.Now()
	switch *source {
	case "mysql":
		s, err = mysqlSource(ctx, b)
	case "mongo":
		s, err = mongoSource(ctx, b)
	default:
		return fmt.Errorf("-source %q: want mysql or mongo", *source)
	}
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d rows loaded in %v\n", s.coll, *nRows, time.Since(t0).Round(time.Millisecond))
	ep := s.ep

	dir, err := os.MkdirTemp("", "ferry-bench-pipeline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := pipeline.Config{Dir: dir, Compression: *compression, Writers: *writers, Logger: slog.New(slog.DiscardHandler)}
	exp := s.exp(cfg)
	p := &ferry.Pipeline{ID: ferry.NewID(), ProjectID: ferry.NewID(), Name: "bench",
		Source: ferry.PipelineSource{Type: ferry.SourceOnDemand, ClusterName: "Cluster0", DatabaseName: "bench", CollectionName: "t"}}
	if *partition {
		p.Sink.PartitionFields = []ferry.PartitionField{{FieldName: "bucket", Order: 0}}
	}

	var bestScan, bestExport, scanCPU, exportCPU time.Duration
	var startRSS int64
	var scanBytes, scanRows int64
	var hwm int64
	var m *pipeline.Manifest
	for i := 0; i < *repeat; i++ {
		runtime.GC()
		st, c0 := time.Now(), cpuTime()
		rows, n, err := s.scan(ctx)
		if err != nil {
			return err
		}
		d := time.Since(st)
		if bestScan == 0 || d < bestScan {
			bestScan, scanCPU = d, cpuTime()-c0
		}
		scanRows, scanBytes = rows, n

		debug.FreeOSMemory()                                      // what the fill and the scan left goes back to the OS
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
		if r := vmRSS(); i == 0 || r < startRSS {
			startRSS = r
		}
		run := &ferry.PipelineRun{ID: ferry.NewID(), ProjectID: p.ProjectID, PipelineID: p.ID}
		if *cpuProfile != "" && i == 0 {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			_ = pprof.StartCPUProfile(f)
		}
		st, c0 = time.Now(), cpuTime()
		if err := exp.Export(ctx, p, ep, run, &runtimeStub{log: cfg.Logger}); err != nil {
			return err
		}
		d = time.Since(st)
		c := cpuTime() - c0
		if *cpuProfile != "" && i == 0 {
			pprof.StopCPUProfile()
		}
		if h := vmHWM(); h > hwm {
			hwm = h
		}
		if bestExport == 0 || d < bestExport {
			bestExport, exportCPU = d, c
		}
		names, err := exp.Datasets(ctx, p.ProjectID, "")
		if err != nil || len(names) == 0 {
			return fmt.Errorf("no dataset published: %v", err)
		}
		sort := names[len(names)-1]
		if m, err = exp.ReadManifest(ctx, p.ProjectID, "", sort); err != nil {
			return err
		}
		if m.Rows != scanRows {
			return fmt.Errorf("export wrote %d rows, the table has %d", m.Rows, scanRows)
		}
		for _, n := range names {
			_ = os.RemoveAll(filepath.Join(dir, p.ProjectID, n))
		}
		time.Sleep(1100 * time.Millisecond) // dataset names are per second
	}
	mb := func(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }
	rps := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s, %s; exporter writers: %d\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), s.server, max(*writers, 0))
	fmt.Printf("full scan (same driver, raw bytes): %d rows, %.1f MB of values in %v: %.0f rows/s, %.1f MB/s\n",
		scanRows, float64(scanBytes)/1e6, bestScan.Round(time.Millisecond), rps(scanRows, bestScan), mb(scanBytes, bestScan))
	fmt.Printf("export (%s%s): %d rows in %v: %.0f rows/s, %.1f MB/s of source values, %.1f MB/s of Parquet (%d files, %.1f MB)\n",
		*compression, map[bool]string{true: ", partitioned by bucket", false: ""}[*partition], m.Rows, bestExport.Round(time.Millisecond),
		rps(m.Rows, bestExport), mb(scanBytes, bestExport), mb(m.Bytes, bestExport), len(m.Files), float64(m.Bytes)/1e6)
	fmt.Printf("ratio export/scan: %.2f (rows/s and MB/s of source values alike: the same rows and bytes)\n", rps(m.Rows, bestExport)/rps(scanRows, bestScan))
	fmt.Printf("CPU time of this process (user+sys; the server's is not counted): scan %v (%.2f µs/row), export %v (%.2f µs/row); load average %s\n",
		scanCPU.Round(time.Millisecond), float64(scanCPU.Microseconds())/float64(scanRows), exportCPU.Round(time.Millisecond),
		float64(exportCPU.Microseconds())/float64(m.Rows), loadavg())
	fmt.Printf("peak RSS during the export: %.1f MiB (VmHWM of this process, reset before the export, which started at %.1f MiB RSS; servers run in other processes)\n",
		float64(hwm)/(1<<20), float64(startRSS)/(1<<20))
	return nil
}

func mysqlSource(ctx context.Context, b *testing.B) (*src, error) {
	srv := testharness.StartMariaDBServer(b, testharness.MariaDBOptions{Args: []string{"--innodb-buffer-pool-size=1G"}})
	ep := &ferry.Endpoint{Name: "Cluster0", Kind: ferry.KindMySQL, Addrs: []string{srv.Addr}, Username: "root"}
	db, err := pipeline.OpenMySQL(ep, "")
	if err != nil {
		return nil, err
	}
	b.Cleanup(func() { db.Close() })
	if err := fill(ctx, db, *nRows); err != nil {
		return nil, err
	}
	return &src{ep: ep, exp: pipeline.NewMySQL, scan: func(ctx context.Context) (int64, int64, error) { return scan(ctx, db) },
		coll: "table bench.t", server: "MariaDB " + srv.Addr}, nil
}

// scan reads the whole table the way a plain client does.
func scan(ctx context.Context, db *sql.DB) (rows, bytes int64, err error) {
	q, err := db.QueryContext(ctx, "SELECT id, k, bucket, c, pad, amount, created, note FROM bench.t")
	if err != nil {
		return 0, 0, err
	}
	defer q.Close()
	raw := make([]sql.RawBytes, 8)
	dest := make([]any, 8)
	for i := range raw {
		dest[i] = &raw[i]
	}
	for q.Next() {
		if err := q.Scan(dest...); err != nil {
			return 0, 0, err
		}
		rows++
		for _, r := range raw {
			bytes += int64(len(r))
		}
	}
	return rows, bytes, q.Err()
}

// fill creates bench.t, sysbench-shaped plus a decimal, a datetime and a
// nullable text.
func fill(ctx context.Context, db *sql.DB, n int) error {
	for _, q := range []string{"CREATE DATABASE bench", `CREATE TABLE bench.t (
		id BIGINT PRIMARY KEY, k INT NOT NULL, bucket SMALLINT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL,
		amount DECIMAL(12,2) NOT NULL, created DATETIME(6) NOT NULL, note VARCHAR(64) NULL)`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	const batch = 2000
	for start := 0; start < n; start += batch {
		var sb strings.Builder
		sb.WriteString("INSERT INTO bench.t VALUES ")
		for i := start; i < min(n, start+batch); i++ {
			if i > start {
				sb.WriteByte(',')
			}
			note := "NULL"
			if i%3 != 0 {
				note = fmt.Sprintf("'note %d'", i)
			}
			fmt.Fprintf(&sb, "(%d,%d,%d,'%0120d','%060d',%d.%02d,'2024-01-01 00:00:00' + INTERVAL %d SECOND,%s)",
				i, (i*7919)%1000003, i%16, (int64(i)*2654435761)%1000000007, i, i%100000, i%100, i, note)
		}
		if _, err := db.ExecContext(ctx, sb.String()); err != nil {
			return err
		}
	}
	return nil
}

// ferretChildEnv marks the child process that runs FerretDB, so that the
// parent's peak RSS is the exporter's and the driver's alone (FerretDB is
// an embedded Go server: in the same process its memory would count).
const ferretChildEnv = "FERRY_BENCH_PIPELINE_FERRETDB"

// ferretChild runs FerretDB, prints its URI and serves until stdin closes.
func ferretChild() {
	testing.Benchmark(func(b *testing.B) {
		if b.N > 1 {
			return
		}
		fmt.Println(testharness.StartFerretDB(b))
		_, _ = io.Copy(io.Discard, os.Stdin)
	})
}

// startFerretChild starts this program as a FerretDB child process.
func startFerretChild(b *testing.B) (string, error) {
	cmd := exec.Command(os.Args[0], "-test.benchtime=1x")
	cmd.Env = append(os.Environ(), ferretChildEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("FerretDB child: %w", err)
	}
	return strings.TrimSpace(line), nil
}

func mongoSource(ctx context.Context, b *testing.B) (*src, error) {
	uri, err := startFerretChild(b)
	if err != nil {
		return nil, err
	}
	cl, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return nil, err
	}
	b.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	coll := cl.Database("bench").Collection("t")
	const batch = 2000
	for start := 0; start < *nRows; start += batch {
		docs := make([]any, 0, batch)
		for i := start; i < min(*nRows, start+batch); i++ {
			d := bson.D{
				{Key: "_id", Value: int64(i)},
				{Key: "k", Value: int32((i * 7919) % 1000003)},
				{Key: "bucket", Value: int32(i % 16)},
				{Key: "c", Value: fmt.Sprintf("%0120d", (int64(i)*2654435761)%1000000007)},
				{Key: "pad", Value: fmt.Sprintf("%060d", i)},
				{Key: "amount", Value: float64(i%100000) + float64(i%100)/100},
				{Key: "created", Value: bson.DateTime(1704067200000 + int64(i)*1000)},
				{Key: "addr", Value: bson.D{{Key: "city", Value: fmt.Sprintf("city-%d", i%100)}, {Key: "zip", Value: int32(10000 + i%90000)}}},
				{Key: "tags", Value: bson.A{"t" + strconv.Itoa(i%7), "x"}},
			}
			if i%3 != 0 {
				d = append(d, bson.E{Key: "note", Value: fmt.Sprintf("note %d", i)})
			}
			docs = append(docs, d)
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return nil, err
		}
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	ep := &ferry.Endpoint{Name: "Cluster0", Kind: ferry.KindMongoDB, Addrs: []string{addr}}
	return &src{ep: ep, exp: pipeline.NewMongo, coll: "collection bench.t (FerretDB, SQLite)", server: "FerretDB " + addr,
		scan: func(ctx context.Context) (rows, bytes int64, err error) {
			cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
			if err != nil {
				return 0, 0, err
			}
			defer cur.Close(ctx)
			for cur.Next(ctx) {
				rows++
				bytes += int64(len(cur.Current))
			}
			return rows, bytes, cur.Err()
		}}, nil
}

// cpuTime is this process's user+sys CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
