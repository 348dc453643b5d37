package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferrymigrate/ferry"
)

// lagProbe measures the incremental sync's replication lag from outside
// ferry, pt-heartbeat style: every 50 ms it writes UTC_TIMESTAMP(6) to a
// one-row table on the source (sbtest.ferry_heartbeat, created on the
// source during the sync: ferry replicates the CREATE TABLE) and reads on
// the target how old the applied value is. A sample is the age of the
// newest heartbeat the target holds, so it counts up to one period (50 ms)
// more than the true lag. ferry's own lag figure is in whole seconds (the
// binlog's event timestamps have a resolution of one second).
type lagProbe struct {
	stop    chan struct{}
	done    chan struct{}
	samples []time.Duration
	err     error
	// CPU seconds used from start to finish: this process (ferry, with
	// the probe's small share) and the two servers.
	start time.Time
	cpu0  [3]float64
	pids  [2]int // target, source mariadbd
}

const heartbeatEvery = 50 * time.Millisecond

func startLagProbe(ctx context.Context, srcDB *sql.DB, dst *server) *lagProbe {
	p := &lagProbe{stop: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	if dst.cmd != nil && dst.cmd.Process != nil {
		p.pids[0] = dst.cmd.Process.Pid
	}
	var pidFile string
	if srcDB.QueryRowContext(ctx, "SELECT @@pid_file").Scan(&pidFile) == nil {
		if b, err := os.ReadFile(pidFile); err == nil {
			p.pids[1], _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	p.cpu0 = p.cpu()
	go func() {
		defer close(p.done)
		p.err = p.run(ctx, srcDB, dst)
	}()
	return p
}

func (p *lagProbe) run(ctx context.Context, srcDB *sql.DB, dst *server) error {
	dstDB := open(dst.dsn)
	defer dstDB.Close()
	if _, err := srcDB.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+dbName+".ferry_heartbeat (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL)"); err != nil {
		return fmt.Errorf("heartbeat table: %w", err)
	}
	if _, err := srcDB.ExecContext(ctx, "REPLACE INTO "+dbName+".ferry_heartbeat VALUES (1, UTC_TIMESTAMP(6))"); err != nil {
		return err
	}
	// ferry applies the CREATE TABLE and the first row.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if err := dstDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dbName+".ferry_heartbeat").Scan(&n); err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the heartbeat table did not reach the target in 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if _, err := srcDB.ExecContext(ctx, "UPDATE "+dbName+".ferry_heartbeat SET ts = UTC_TIMESTAMP(6) WHERE id = 1"); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		var us int64
		if err := dstDB.QueryRowContext(ctx, "SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) FROM "+dbName+".ferry_heartbeat WHERE id = 1").Scan(&us); err != nil {
			return fmt.Errorf("heartbeat on the target: %w", err)
		}
		p.samples = append(p.samples, time.Duration(us)*time.Microsecond)
	}
}

// finish stops the probe and returns its summary.
func (p *lagProbe) finish() string {
	close(p.stop)
	<-p.done
	cpu1 := p.cpu()
	el := time.Since(p.start).Seconds()
	usage := fmt.Sprintf("; CPU over the load (cores busy): ferry %.2f, target mariadbd %.2f, source mariadbd %.2f (sysbench and the rest of the machine not counted)",
		(cpu1[0]-p.cpu0[0])/el, (cpu1[1]-p.cpu0[1])/el, (cpu1[2]-p.cpu0[2])/el)
	if p.err != nil {
		return "heartbeat lag: " + p.err.Error()
	}
	if len(p.samples) == 0 {
		return "heartbeat lag: no samples"
	}
	s := append([]time.Duration(nil), p.samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))] }
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	over := 0
	for _, d := range s {
		if d >= time.Second {
			over++
		}
	}
	return fmt.Sprintf("heartbeat lag (every %s on the source, age on the target): avg %s, p50 %s, p99 %s, max %s over %d samples; %d samples (%.1f%%) at 1 s or more",
		heartbeatEvery, r(sum/time.Duration(len(s))), r(q(0.5)), r(q(0.99)), r(s[len(s)-1]), len(s), over, 100*float64(over)/float64(len(s))) + usage
}

// cpu returns the CPU seconds (user + system) of this process, the
// target's server and the source's.
func (p *lagProbe) cpu() [3]float64 {
	var out [3]float64
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		out[0] = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	for i, pid := range p.pids {
		if pid == 0 {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which ends with ')'): utime and
		// stime are the 14th and 15th fields of the line.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			out[i+1] = (ut + st) / 100 // clock ticks (USER_HZ 100)
		}
	}
	return out
}

var incrBacklog = flag.Duration("incr-backlog", 20*time.Second, "after the incremental run: how long sysbench oltp_write_only writes to the source while ferry is stopped; ferry then applies the backlog alone (its apply capacity; 0: skip)")

// benchRT is a StepRuntime for running ferry's incremental step directly.
type benchRT struct {
	cp     json.RawMessage
	cut    chan struct{}
	mu     sync.Mutex
	ops    int64
	logger *slog.Logger
}

func (r *benchRT) Checkpoint() json.RawMessage { return r.cp }
func (r *benchRT) Progress(c ferry.Counters, _ float64) {
	r.mu.Lock()
	r.ops = c.Ops
	r.mu.Unlock()
}
func (r *benchRT) Lag(time.Duration, time.Time) {}
func (r *benchRT) Message(string)               {}
func (r *benchRT) Save(_ context.Context, cp json.RawMessage) error {
	r.mu.Lock()
	r.cp = append(json.RawMessage(nil), cp...)
	r.mu.Unlock()
	return nil
}
func (r *benchRT) Cutover() <-chan struct{} { return r.cut }
func (r *benchRT) Logger() *slog.Logger     { return r.logger }
func (r *benchRT) AgentID() string          { return "bench" }

// measureBacklog measures ferry's apply capacity: with no sync running,
// sysbench oltp_write_only writes to the source for -incr-backlog; then
// ferry's incremental step starts at the position from before the load
// and is asked to cut over at once, so it applies the whole backlog (with
// the machine to itself) and returns. The target must equal the source
// before (it does after the cutover of the measured job) and does after
// (the bench's compare runs next).
func measureBacklog(ctx context.Context, src, dst *server, srcDB *sql.DB) string {
	if *incrBacklog <= 0 || newEngine == nil {
		return ""
	}
	var p struct {
		File string `json:"file"`
		Pos  uint32 `json:"pos"`
		GTID string `json:"gtid,omitempty"`
	}
	var ignore [3]sql.NullString
	if err := srcDB.QueryRowContext(ctx, "SHOW MASTER STATUS").Scan(&p.File, &p.Pos, &ignore[0], &ignore[1]); err != nil {
		return "backlog: " + err.Error()
	}
	var g sql.NullString
	_ = srcDB.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", p.File, p.Pos).Scan(&g)
	p.GTID = g.String
	args := append(sysbenchArgs(src, *threads), "--time="+strconv.Itoa(int(incrBacklog.Seconds())), "--report-interval=0", "run")
	out, err := exec.Command(lookPath("sysbench"), append([]string{"oltp_write_only"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("backlog: sysbench: %v\n%s", err, out)
	}
	writes := perSec(out, `write:\s+(\d+)`)
	tps := perSec(out, `transactions:\s+\d+\s+\(([0-9.]+) per sec`)
	cp, _ := json.Marshal(map[string]any{"pos": p, "eventTime": time.Now().Unix()})
	rt := &benchRT{cp: cp, cut: make(chan struct{}), logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	close(rt.cut)
	ep := func(s *server) ferry.Endpoint {
		return ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{fmt.Sprintf("127.0.0.1:%d", s.port)}, Username: "root"}
	}
	m := &ferry.Migration{ID: "benchbacklog000000000000", Engine: ferry.KindMySQL, Source: ep(src), Target: ep(dst),
		Modes:   ferry.Modes{Incremental: true},
		Options: ferry.Options{Filters: ferry.Filters{IncludeDBs: []string{dbName}}}}
	m.InitSteps()
	eng := newEngine(rt.logger)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	cpuOf := &lagProbe{}
	if dst.cmd != nil && dst.cmd.Process != nil {
		cpuOf.pids[0] = dst.cmd.Process.Pid
	}
	dst0 := cpuOf.cpu()[1]
	start := time.Now()
	if err := eng.RunStep(ctx, m, ferry.StepIncremental, rt); err != nil {
		return "backlog: ferry: " + err.Error()
	}
	el := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / 1e9
	dstCPU := cpuOf.cpu()[1] - dst0
	var st struct {
		Ops int64 `json:"ops"`
	}
	_ = json.Unmarshal(rt.cp, &st)
	dstDB := open(dst.dsn)
	defer dstDB.Close()
	_, _ = dstDB.ExecContext(ctx, "DELETE FROM ferry_meta.checkpoint WHERE job_id LIKE 'benchbacklog%'")
	return fmt.Sprintf("ferry backlog apply (capacity): sysbench wrote %.0f writes (%.0f tps, %.0f writes/s) in %s with ferry stopped; ferry then applied %d changes in %s = %.0f changes/s (cores busy: ferry %.2f, target mariadbd %.2f; CPU per change: ferry %.0f µs, target %.0f µs)",
		writes, tps, writes/incrBacklog.Seconds(), incrBacklog, st.Ops, el.Round(time.Millisecond), float64(st.Ops)/el.Seconds(), cpu/el.Seconds(), dstCPU/el.Seconds(),
		cpu/float64(max(st.Ops, 1))*1e6, dstCPU/float64(max(st.Ops, 1))*1e6)
}
