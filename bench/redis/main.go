// Command redis benchmarks ferry's Redis engine on two local redis-server
// instances, in one run on one machine, as ratios to the target's raw
// ceiling (redis-benchmark -P 64 SET into the same target):
//
//   - full sync of N small keys (entries/s, MB/s);
//
//   - full sync of a big-key set (a few hashes, lists and zsets of 100k+
//     elements);
//
//   - incremental sync while redis-benchmark writes to the source: commands
//     applied per second and the lag reported meanwhile;
//
//   - the process's peak RSS (the agent runs in this process).
//
//     go run ./bench/redis -keys 2000000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	redisengine "github.com/ferrymigrate/ferry/engine/redis"
	"github.com/ferrymigrate/ferry/sqlite"
)

var (
	nKeys   = flag.Int("keys", 2_000_000, "small keys for the full-sync measurement")
	valSize = flag.Int("value", 32, "bytes per small value")
	incrN   = flag.Int("incr", 2_000_000, "SETs redis-benchmark sends to the source during incremental sync")
)

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "ferry-bench-redis")
	must(err)
	defer os.RemoveAll(dir)
	src := startRedis(dir, "src")
	dst := startRedis(dir, "dst")
	defer src.Process.Kill()
	defer dst.Process.Kill()
	srcAddr, dstAddr := addrOf(src), addrOf(dst)
	ctx := context.Background()
	sc := goredis.NewClient(&goredis.Options{Addr: srcAddr})
	dc := goredis.NewClient(&goredis.Options{Addr: dstAddr})

	// The ceiling: redis-benchmark's pipelined SETs into the target.
	ceiling := benchmarkSET(dstAddr, 1_000_000, 64, *valSize)
	must(dc.FlushAll(ctx).Err())
	fmt.Printf("target ceiling: redis-benchmark -P 64 SET = %.0f ops/s\n", ceiling)

	// 1. Full sync of small keys.
	must(sc.Do(ctx, "DEBUG", "POPULATE", *nKeys, "key", *valSize).Err())
	res := migrate(ctx, dir, srcAddr, dstAddr, false)
	fmt.Printf("full sync, %d small keys: %.0f keys/s, %.1f MB/s of RDB (%.2f of the ceiling) in %s\n",
		res.keys, res.keysPerSec, res.mbPerSec, res.keysPerSec/ceiling, res.took.Round(time.Millisecond))

	// 2. Full sync of big keys.
	must(sc.FlushAll(ctx).Err())
	must(dc.FlushAll(ctx).Err())
	elems := 0
	for k := 0; k < 4; k++ {
		for b := 0; b < 25; b++ {
			h := []any{"HSET", fmt.Sprintf("bighash:%d", k)}
			l := []any{"RPUSH", fmt.Sprintf("biglist:%d", k)}
			z := []any{"ZADD", fmt.Sprintf("bigzset:%d", k)}
			for i := 0; i < 4000; i++ {
				n := b*4000 + i
				h = append(h, fmt.Sprintf("field:%d", n), strings.Repeat("x", *valSize))
				l = append(l, fmt.Sprintf("element:%d", n))
				z = append(z, float64(n)/3, fmt.Sprintf("member:%d", n))
				elems += 3
			}
			must(sc.Do(ctx, h...).Err())
			must(sc.Do(ctx, l...).Err())
			must(sc.Do(ctx, z...).Err())
		}
	}
	res = migrate(ctx, dir, srcAddr, dstAddr, false)
	fmt.Printf("full sync, 12 big keys of 100k elements: %.0f elements/s, %.1f MB/s of RDB (%.2f of the ceiling) in %s\n",
		float64(elems)/res.took.Seconds(), res.mbPerSec, float64(elems)/res.took.Seconds()/ceiling, res.took.Round(time.Millisecond))

	// 3. Incremental sync under redis-benchmark load.
	must(sc.FlushAll(ctx).Err())
	must(dc.FlushAll(ctx).Err())
	res = migrate(ctx, dir, srcAddr, dstAddr, true)
	fmt.Printf("incremental sync: %.0f commands/s applied while redis-benchmark wrote %.0f SET/s to the source (%.2f of the target ceiling); lag reported: max %ds, last %ds; caught up %s after the load ended\n",
		res.incrOpsPerSec, res.loadOpsPerSec, res.incrOpsPerSec/ceiling, res.maxLag, res.lastLag, res.catchUp.Round(time.Millisecond))
	fmt.Printf("peak RSS of the process running the agent: %d MB\n", peakRSS()>>20)
}

type result struct {
	keys                         int64
	keysPerSec, mbPerSec         float64
	took                         time.Duration
	incrOpsPerSec, loadOpsPerSec float64
	maxLag, lastLag              int64
	catchUp                      time.Duration
}

// migrate runs one job through an in-process agent and measures it.
func migrate(ctx context.Context, dir, src, dst string, incremental bool) result {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlite.Open(ctx, filepath.Join(dir, fmt.Sprintf("ferry-%d.db", time.Now().UnixNano())))
	must(err)
	defer db.Close()
	reg := ferry.NewRegistry()
	reg.Register(redisengine.New(logger))
	svc := ferry.NewService(db, reg, logger)
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "bench")
	must(err)
	proj, err := svc.CreateProject(sys, org.ID, "bench")
	must(err)
	m := &ferry.Migration{ProjectID: proj.ID, Engine: ferry.KindRedis,
		Source: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{src}},
		Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{dst}},
		Modes:  ferry.Modes{Full: true, Incremental: incremental}, Options: ferry.Options{Conflict: ferry.ConflictReplace}}
	must(svc.CreateMigration(sys, m, true))
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := agent.New(agent.Config{ID: "bench", Store: db, Registry: reg, Service: svc, Logger: logger, PollInterval: 20 * time.Millisecond, Heartbeat: 200 * time.Millisecond})
	go a.Run(actx)
	get := func() *ferry.Migration {
		m, err := db.GetMigration(ctx, m.ID)
		must(err)
		if m.State == ferry.StateFailed {
			log.Fatalf("migration failed: %s", m.Error)
		}
		return m
	}
	var r result
	if !incremental {
		for m = get(); m.State != ferry.StateCompleted; m = get() {
			time.Sleep(20 * time.Millisecond)
		}
		full := m.Step(ferry.StepFull)
		r.took = full.FinishedAt.Sub(*full.StartedAt)
		r.keys = full.Counters.Done
		r.keysPerSec = float64(full.Counters.Done) / r.took.Seconds()
		r.mbPerSec = float64(full.Counters.Bytes) / r.took.Seconds() / 1e6
		return r
	}
	for m = get(); !m.ReadyForCutover; m = get() {
		time.Sleep(20 * time.Millisecond)
	}
	startOps := m.Step(ferry.StepIncremental).Counters.Ops
	done := make(chan float64)
	go func() { done <- benchmarkSET(src, *incrN, 16, *valSize) }()
	start := time.Now()
	var load float64
	loadEnd := time.Time{}
	for load == 0 {
		select {
		case load = <-done:
			loadEnd = time.Now()
		case <-time.After(250 * time.Millisecond):
			m = get()
			if m.LagSeconds != nil && *m.LagSeconds > r.maxLag {
				r.maxLag = *m.LagSeconds
			}
		}
	}
	r.loadOpsPerSec = load
	// Wait until every SET has been applied.
	src2 := goredis.NewClient(&goredis.Options{Addr: src})
	defer src2.Close()
	want := offsetOf(ctx, src2)
	for {
		m = get()
		if m.LagSeconds != nil {
			r.lastLag = *m.LagSeconds
		}
		if m.Step(ferry.StepIncremental).Counters.Ops-startOps >= int64(*incrN) && m.LagSeconds != nil && *m.LagSeconds == 0 {
			break
		}
		if time.Since(loadEnd) > 60*time.Second {
			log.Fatalf("incremental sync did not catch up (source offset %d)", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.catchUp = time.Since(loadEnd)
	ops := m.Step(ferry.StepIncremental).Counters.Ops - startOps
	r.incrOpsPerSec = float64(ops) / time.Since(start).Seconds()
	_, err = svc.CutoverMigration(sys, proj.ID, m.ID)
	must(err)
	for m = get(); m.State != ferry.StateCompleted; m = get() {
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

func offsetOf(ctx context.Context, c *goredis.Client) int64 {
	s, _ := c.Info(ctx, "replication").Result()
	for _, line := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

var rpsRE = regexp.MustCompile(`([0-9.]+) requests per second`)

// benchmarkSET runs redis-benchmark SET against addr and returns its rate.
func benchmarkSET(addr string, n, pipeline, size int) float64 {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-benchmark", "-h", host, "-p", port, "-q", "-t", "set", "-n", strconv.Itoa(n),
		"-P", strconv.Itoa(pipeline), "-r", strconv.Itoa(n), "-d", strconv.Itoa(size)).CombinedOutput()
	if err != nil {
		log.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	mm := rpsRE.FindAllSubmatch(out, -1)
	if len(mm) == 0 {
		log.Fatalf("redis-benchmark output: %s", out)
	}
	v, _ := strconv.ParseFloat(string(mm[len(mm)-1][1]), 64)
	return v
}

func startRedis(dir, name string) *exec.Cmd {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	d := filepath.Join(dir, name)
	must(os.MkdirAll(d, 0o755))
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", d, "--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0", "--repl-backlog-size", "256mb",
		"--client-output-buffer-limit", "replica 0 0 0")
	must(cmd.Start())
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer c.Close()
	for i := 0; ; i++ {
		if c.Ping(context.Background()).Err() == nil {
			break
		}
		if i > 100 {
			log.Fatal("redis-server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Args = append(cmd.Args, "#addr=127.0.0.1:"+strconv.Itoa(port))
	return cmd
}

func addrOf(cmd *exec.Cmd) string {
	return strings.TrimPrefix(cmd.Args[len(cmd.Args)-1], "#addr=")
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
