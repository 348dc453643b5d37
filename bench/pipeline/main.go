// Command pipeline benchmarks a pipeline export: a MariaDB table exported
// to a Parquet dataset by ferry's MySQL exporter, as a ratio to a plain full
// scan of the same table with the same driver (go-sql-driver/mysql, text
// protocol, values read as raw bytes and dropped) in the same run, and the
// process's peak RSS during the export (VmHWM, reset before it through
// /proc/self/clear_refs).
//
//	go run ./bench/pipeline -rows 1000000
//
// The MariaDB server is started by internal/testharness (inside
// testing.Benchmark, which supplies the testing.TB it needs).
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/pipeline"
)

var (
	nRows       = flag.Int("rows", 1000000, "rows in the table")
	repeat      = flag.Int("repeat", 2, "runs of the scan and of the export (best reported)")
	compression = flag.String("compression", "zstd", "zstd, snappy or none")
	partition   = flag.Bool("partition", false, "partition the dataset by the bucket column (16 values)")
	cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the exports to this file")
)

type runtimeStub struct{ log *slog.Logger }

func (r *runtimeStub) Phase(string)                       {}
func (r *runtimeStub) Stats(ferry.RunStats)               {}
func (r *runtimeStub) SetSnapshot(string, string)         {}
func (r *runtimeStub) Save(context.Context, []byte) error { return nil }
func (r *runtimeStub) Logger() *slog.Logger               { return r.log }

func main() {
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

func vmHWM() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n * 1024
		}
	}
	return 0
}

func bench(b *testing.B) error {
	ctx := context.Background()
	srv := testharness.StartMariaDBServer(b, testharness.MariaDBOptions{Args: []string{"--innodb-buffer-pool-size=1G"}})
	ep := &ferry.Endpoint{Name: "Cluster0", Kind: ferry.KindMySQL, Addrs: []string{srv.Addr}, Username: "root"}
	db, err := pipeline.OpenMySQL(ep, "")
	if err != nil {
		return err
	}
	defer db.Close()
	t0 := time.Now()
	if err := fill(ctx, db, *nRows); err != nil {
		return err
	}
	fmt.Printf("table bench.t: %d rows loaded in %v\n", *nRows, time.Since(t0).Round(time.Millisecond))

	dir, err := os.MkdirTemp("", "ferry-bench-pipeline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := pipeline.Config{Dir: dir, Compression: *compression, Logger: slog.New(slog.DiscardHandler)}
	exp := pipeline.NewMySQL(cfg)
	p := &ferry.Pipeline{ID: ferry.NewID(), ProjectID: ferry.NewID(), Name: "bench",
		Source: ferry.PipelineSource{Type: ferry.SourceOnDemand, ClusterName: "Cluster0", DatabaseName: "bench", CollectionName: "t"}}
	if *partition {
		p.Sink.PartitionFields = []ferry.PartitionField{{FieldName: "bucket", Order: 0}}
	}

	var bestScan, bestExport time.Duration
	var scanBytes, scanRows int64
	var hwm int64
	var m *pipeline.Manifest
	for i := 0; i < *repeat; i++ {
		runtime.GC()
		st := time.Now()
		rows, n, err := scan(ctx, db)
		if err != nil {
			return err
		}
		d := time.Since(st)
		if bestScan == 0 || d < bestScan {
			bestScan = d
		}
		scanRows, scanBytes = rows, n

		runtime.GC()
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
		run := &ferry.PipelineRun{ID: ferry.NewID(), ProjectID: p.ProjectID, PipelineID: p.ID}
		if *cpuProfile != "" && i == 0 {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			_ = pprof.StartCPUProfile(f)
		}
		st = time.Now()
		if err := exp.Export(ctx, p, ep, run, &runtimeStub{log: cfg.Logger}); err != nil {
			return err
		}
		d = time.Since(st)
		if *cpuProfile != "" && i == 0 {
			pprof.StopCPUProfile()
		}
		if h := vmHWM(); h > hwm {
			hwm = h
		}
		if bestExport == 0 || d < bestExport {
			bestExport = d
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
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s, MariaDB %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), srv.Addr)
	fmt.Printf("full scan (same driver, raw bytes): %d rows, %.1f MB of values in %v: %.0f rows/s, %.1f MB/s\n",
		scanRows, float64(scanBytes)/1e6, bestScan.Round(time.Millisecond), rps(scanRows, bestScan), mb(scanBytes, bestScan))
	fmt.Printf("export (%s%s): %d rows in %v: %.0f rows/s, %.1f MB/s of source values, %.1f MB/s of Parquet (%d files, %.1f MB)\n",
		*compression, map[bool]string{true: ", partitioned by bucket", false: ""}[*partition], m.Rows, bestExport.Round(time.Millisecond),
		rps(m.Rows, bestExport), mb(scanBytes, bestExport), mb(m.Bytes, bestExport), len(m.Files), float64(m.Bytes)/1e6)
	fmt.Printf("ratio export/scan: %.2f (rows/s)\n", rps(m.Rows, bestExport)/rps(scanRows, bestScan))
	fmt.Printf("peak RSS during the export: %.1f MiB (VmHWM of this process, which also holds the scan's and the driver's memory)\n", float64(hwm)/(1<<20))
	return nil
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
