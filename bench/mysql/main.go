// Command mysql benchmarks MySQL-family full loads on two local MariaDB
// instances it starts itself, in one run on one machine, on the same
// sysbench-shaped data:
//
//   - the baselines: mysqldump | mysql, and mydumper then myloader (Debian
//     packages; skipped, and said so, when not installed);
//   - ferry's own full load (and incremental apply under sysbench
//     oltp_write_only), through an in-process agent: see measureFerry
//     (engine_ferrymysql.go registers the engine).
//
// After every load the target is compared with the source by
// engine/mysql/verify (chunked checksums), which also gives the compare's
// own rows/s.
//
// Usage (root or a user that can run mariadbd; needs mariadb-server, and
// sysbench, mydumper for the full picture: apt-get install -y sysbench
// mydumper):
//
//	go run ./bench/mysql -tables 8 -rows 250000
//	go run ./bench/mysql -tables 8 -rows 250000 -repeat 3
//	go run ./bench/mysql -tables 8 -rows 250000 -incr 30s
//
// Rows/s are source rows over wall time (dump and load together, schema
// included); with -repeat N each baseline runs N times (the machine may be
// shared with other work) and ferry's ratios are to the best run. MB/s are of row data: the sum of the values' lengths as text
// (what a logical dump carries), the same measure for every tool. Loaders
// write the target's binary log (log_bin is on, as in the tests): myloader
// runs with -e so that it does too.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/ferrymigrate/ferry/engine/mysql/verify"
)

var (
	nTables    = flag.Int("tables", 8, "sysbench tables (sbtest1..N)")
	nRows      = flag.Int("rows", 250000, "rows per table")
	threads    = flag.Int("threads", 4, "threads of mydumper, myloader, sysbench prepare and ferry's full copy")
	bufferPool = flag.String("buffer-pool", "1G", "innodb_buffer_pool_size of each server")
	incr       = flag.Duration("incr", 30*time.Second, "how long sysbench oltp_write_only writes to the source during ferry's incremental sync (0: skip)")
	keep       = flag.Bool("keep", false, "keep the servers' files")
	doVerify   = flag.Bool("verify", true, "compare the target with the source after each load")
	repeat     = flag.Int("repeat", 1, "runs of each baseline (the machine may be shared: the best and the median are reported)")
	baselines  = flag.Bool("baselines", true, "measure mysqldump | mysql and mydumper/myloader (false: ferry alone)")
	cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of ferry's run (this process) to this file")
	ferryRuns  = flag.Int("ferry-repeat", 1, "runs of ferry's full load (the best is reported)")
	extraFlag  = flag.String("ferry-extra", "", "engine options of ferry's job (Options.Extra) as k=v,k=v: fullLoad=insert (multi-row REPLACEs instead of LOAD DATA), fullLoadBinlog=off (no target binlog during the load)")
)

// ferryExtra is -ferry-extra parsed.
var ferryExtra map[string]string

const dbName = "sbtest"

func main() {
	flag.Parse()
	for _, kv := range strings.Split(*extraFlag, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if ferryExtra == nil {
				ferryExtra = map[string]string{}
			}
			ferryExtra[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ferry-bench-mysql-")
	must(err)
	must(os.Chmod(dir, 0o755))
	atExit(func() {
		if !*keep {
			os.RemoveAll(dir)
		} else {
			fmt.Println("files kept in", dir)
		}
	})
	defer runExit()

	fmt.Printf("machine: %d CPU(s), %s\n", runtime.NumCPU(), version("mariadbd", "--version"))
	src := startMariaDB(dir, "src", 1)
	dst := startMariaDB(dir, "dst", 2)
	srcServer, dstServer = src, dst
	srcDB, dstDB := open(src.dsn), open(dst.dsn)

	// The data set.
	start := time.Now()
	how := prepare(ctx, src, srcDB)
	rowsAll, bytesAll = dataSize(ctx, srcDB)
	fmt.Printf("data: %d tables x %d rows = %d rows, %.1f MB of row data (%s, %s)\n",
		*nTables, *nRows, rowsAll, float64(bytesAll)/1e6, how, time.Since(start).Round(time.Millisecond))

	results := map[string]*result{}

	if *baselines {
		// Baseline 1: mysqldump | mysql.
		if r := baseline(ctx, srcDB, dstDB, "mysqldump | mysql", func() (*result, error) { return measureMysqldump(src, dst) }); r != nil {
			results["mysqldump"] = r
		}
		// Baseline 2: mydumper, then myloader.
		name := fmt.Sprintf("mydumper/myloader (%d threads)", *threads)
		if r := baseline(ctx, srcDB, dstDB, name, func() (*result, error) { return measureMydumper(dir, src, dst) }); r != nil {
			results["mydumper"] = r
		}
	}

	// ferry.
	r, err := measureFerryRuns(ctx, dir, src, dst, srcDB, dstDB)
	switch {
	case errors.Is(err, errEngineNotBuilt):
		fmt.Println("ferry: engine not built yet")
	case err != nil:
		fmt.Println("ferry:", err)
	default:
		r.rows, r.bytes = rowsAll, bytesAll
		r.print("ferry full load")
		check(ctx, srcDB, dstDB, r)
		for _, base := range []string{"mysqldump", "mydumper"} {
			if b := results[base]; b != nil {
				fmt.Printf("  ferry / %s: %.2fx rows/s", base, r.rowsPerSec()/b.rowsPerSec())
				if r.cpu.total() > 0 && b.cpu.total() > 0 {
					fmt.Printf("; CPU per row %.2fx less", b.cpu.total().Seconds()/r.cpu.total().Seconds())
				}
				fmt.Println()
			}
		}
		if r.incr != nil {
			r.incr.print()
		}
	}
}

// measureFerryRuns runs ferry's full load -ferry-repeat times on an empty
// target (the last one with the incremental phase, if -incr) and returns the
// best, with the peak RSS of this process during ferry's runs (the agent and
// engine run in-process).
func measureFerryRuns(ctx context.Context, dir string, src, dst *server, srcDB, dstDB *sql.DB) (*result, error) {
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	var best *result
	for i := 0; i < *ferryRuns; i++ {
		resetTarget(ctx, dstDB)
		resetPeakRSS()
		c0 := takeCPU()
		withIncr := i == *ferryRuns-1
		sub := filepath.Join(dir, fmt.Sprintf("ferry-%d", i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return nil, err
		}
		r, err := measureFerry(ctx, sub, src, dst, srcDB, withIncr)
		if err != nil {
			return nil, err
		}
		r.peakRSS = peakRSS()
		r.cpu = takeCPU().since(c0)
		if *ferryRuns > 1 {
			r.rows, r.bytes = rowsAll, bytesAll
			r.print(fmt.Sprintf("ferry full load (run %d)", i+1))
		}
		if best == nil || r.wall < best.wall {
			incr := r.incr
			if best != nil && incr == nil {
				incr = best.incr
			}
			best = r
			best.incr = incr
		} else if r.incr != nil {
			best.incr = r.incr
		}
	}
	return best, nil
}

// The machine may be shared (the wall times are then noisy): the CPU time
// each load costs, its servers' and its own processes', is reported too.
var srcServer, dstServer *server

// cpuUse is CPU time: of the source and target servers, and of the tool
// (this process for ferry, which runs in-process; the child processes
// for the baselines).
type cpuUse struct{ src, dst, tool time.Duration }

func (c cpuUse) total() time.Duration { return c.src + c.dst + c.tool }

func (c cpuUse) since(o cpuUse) cpuUse {
	return cpuUse{src: c.src - o.src, dst: c.dst - o.dst, tool: c.tool - o.tool}
}

func takeCPU() cpuUse {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpuUse{src: procCPU(srcServer), dst: procCPU(dstServer), tool: self}
}

// procCPU is the CPU time a server's process used so far (utime+stime).
func procCPU(s *server) time.Duration {
	if s == nil || s.cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	st := string(b)
	f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stime) * time.Second / 100 // USER_HZ
}

func childCPU(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// resetPeakRSS resets this process's peak resident set size (VmHWM).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is this process's peak resident set size (VmHWM) in bytes.
func peakRSS() int64 {
	for _, l := range strings.Split(readFile("/proc/self/status"), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// rowsAll and bytesAll measure the data set (see dataSize).
var rowsAll, bytesAll int64

// baseline runs a baseline -repeat times on an empty target, compares the
// target with the source after the last run, and returns the best run.
func baseline(ctx context.Context, srcDB, dstDB *sql.DB, name string, run func() (*result, error)) *result {
	var runs []*result
	for i := 0; i < *repeat; i++ {
		resetTarget(ctx, dstDB)
		c0 := takeCPU()
		r, err := run()
		if err != nil {
			fmt.Printf("%s: %v\n", name, err)
			return nil
		}
		r.cpu = takeCPU().since(c0)
		r.cpu.tool = r.toolCPU
		r.rows, r.bytes = rowsAll, bytesAll
		r.print(name)
		runs = append(runs, r)
	}
	check(ctx, srcDB, dstDB, runs[len(runs)-1])
	resetTarget(ctx, dstDB)
	sort.Slice(runs, func(i, j int) bool { return runs[i].wall < runs[j].wall })
	if len(runs) > 1 {
		fmt.Printf("  %s over %d runs: best %.0f rows/s, median %.0f rows/s\n", name, len(runs), runs[0].rowsPerSec(), runs[len(runs)/2].rowsPerSec())
	}
	return runs[0]
}

// result is one load's measurement.
type result struct {
	rows, bytes int64
	wall        time.Duration // dump and load, end to end
	parts       string        // how wall splits, if it does
	dumpBytes   int64
	equal       string
	incr        *incrResult
	peakRSS     int64
	toolCPU     time.Duration // the tool's own processes (baselines)
	cpu         cpuUse
}

func (r *result) rowsPerSec() float64 { return float64(r.rows) / r.wall.Seconds() }

func (r *result) print(name string) {
	fmt.Printf("%s: %d rows in %s = %.0f rows/s, %.1f MB/s", name, r.rows, r.wall.Round(time.Millisecond), r.rowsPerSec(), float64(r.bytes)/1e6/r.wall.Seconds())
	if r.parts != "" {
		fmt.Printf(" (%s)", r.parts)
	}
	if r.dumpBytes > 0 {
		fmt.Printf(", %.1f MB of dump", float64(r.dumpBytes)/1e6)
	}
	if r.peakRSS > 0 {
		fmt.Printf(", peak RSS %.0f MB", float64(r.peakRSS)/1e6)
	}
	if t := r.cpu.total(); t > 0 {
		fmt.Printf("; CPU %.1fs = %.1f µs/row (source server %.1fs, target server %.1fs, tool %.1fs)",
			t.Seconds(), float64(t.Microseconds())/float64(r.rows), r.cpu.src.Seconds(), r.cpu.dst.Seconds(), r.cpu.tool.Seconds())
	}
	fmt.Println()
}

// check compares the target with the source and says so.
func check(ctx context.Context, src, dst *sql.DB, r *result) {
	if !*doVerify {
		return
	}
	rep, err := verify.Compare(ctx, src, dst, verify.Options{Databases: []string{dbName}, Rounds: 1})
	if err != nil {
		fmt.Println("  verify:", err)
		return
	}
	verdict := "equal"
	if !rep.Equal() {
		verdict = "NOT EQUAL"
	}
	fmt.Printf("  target %s to the source: %s (verify: %.0f rows/s)\n", verdict, rep, float64(rep.Rows)/rep.Duration.Seconds())
	for _, d := range rep.Samples {
		fmt.Printf("    %s %s %s: %s\n", d.Kind, d.Table, d.Key, d.Detail)
	}
}

// measureMysqldump pipes mysqldump of the source into mysql on the target.
func measureMysqldump(src, dst *server) (*result, error) {
	dumpBin, loadBin := lookPath("mysqldump", "mariadb-dump"), lookPath("mysql", "mariadb")
	if dumpBin == "" || loadBin == "" {
		return nil, errors.New("not installed (apt-get install -y mariadb-client)")
	}
	dump := exec.Command(dumpBin, "-h", "127.0.0.1", "-P", strconv.Itoa(src.port), "-u", "root",
		"--single-transaction", "--skip-dump-date", "--databases", dbName)
	load := exec.Command(loadBin, "-h", "127.0.0.1", "-P", strconv.Itoa(dst.port), "-u", "root")
	var dumpErr, loadErr strings.Builder
	dump.Stderr, load.Stderr = &dumpErr, &loadErr
	in, err := load.StdinPipe()
	if err != nil {
		return nil, err
	}
	cw := &countWriter{w: in}
	dump.Stdout = cw
	start := time.Now()
	if err := load.Start(); err != nil {
		return nil, err
	}
	err = dump.Run()
	in.Close()
	if lerr := load.Wait(); lerr != nil {
		return nil, fmt.Errorf("mysql: %v: %s", lerr, loadErr.String())
	}
	if err != nil {
		return nil, fmt.Errorf("mysqldump: %v: %s", err, dumpErr.String())
	}
	return &result{wall: time.Since(start), dumpBytes: cw.n, toolCPU: childCPU(dump.ProcessState) + childCPU(load.ProcessState)}, nil
}

// measureMydumper dumps the source with mydumper into a directory, then
// loads it into the target with myloader.
func measureMydumper(dir string, src, dst *server) (*result, error) {
	dumper, loader := lookPath("mydumper"), lookPath("myloader")
	if dumper == "" || loader == "" {
		why := "not installed"
		if out, err := exec.Command("apt-cache", "policy", "mydumper").Output(); err == nil {
			if m := regexp.MustCompile(`Candidate: (\S+)`).FindSubmatch(out); m != nil && string(m[1]) != "(none)" {
				why += fmt.Sprintf(" (Debian has mydumper %s: apt-get install -y mydumper)", m[1])
			} else {
				why += " (and this machine's apt sources have no mydumper package)"
			}
		}
		return nil, errors.New(why)
	}
	out := filepath.Join(dir, "mydumper")
	os.RemoveAll(out)
	t := strconv.Itoa(*threads)
	start := time.Now()
	cmd := exec.Command(dumper, "-h", "127.0.0.1", "-P", strconv.Itoa(src.port), "-u", "root", "-B", dbName,
		"-o", out, "-t", t, "-r", "100000", "-v", "1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mydumper: %v: %s", err, b)
	}
	dumped := time.Since(start)
	tool := childCPU(cmd.ProcessState)
	size := dirSize(out)
	cmd = exec.Command(loader, "-h", "127.0.0.1", "-P", strconv.Itoa(dst.port), "-u", "root", "-d", out,
		"-t", t, "-o", "-e", "-v", "1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("myloader: %v: %s", err, b)
	}
	wall := time.Since(start)
	tool += childCPU(cmd.ProcessState)
	return &result{wall: wall, dumpBytes: size, toolCPU: tool,
		parts: fmt.Sprintf("dump %s + load %s", dumped.Round(time.Millisecond), (wall - dumped).Round(time.Millisecond))}, nil
}

// prepare fills the source with sbtest1..N: sysbench oltp_read_write
// prepare when sysbench is installed, else the same schema and data shape
// generated here.
func prepare(ctx context.Context, src *server, db *sql.DB) string {
	_, err := db.ExecContext(ctx, "CREATE DATABASE "+dbName)
	must(err)
	if sb := lookPath("sysbench"); sb != "" {
		out, err := exec.Command(sb, append(append([]string{"oltp_read_write"}, sysbenchArgs(src, *threads)...), "prepare")...).CombinedOutput()
		if err != nil {
			fatalf("sysbench prepare: %v\n%s", err, out)
		}
		return "sysbench oltp_read_write prepare, " + version(sb, "--version")
	}
	fmt.Println("sysbench is not installed (apt-get install -y sysbench): generating the same schema and data shape in Go")
	var wg sync.WaitGroup
	sem := make(chan struct{}, *threads)
	errs := make(chan error, *nTables)
	for t := 1; t <= *nTables; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- generateTable(ctx, db, t)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(err)
	}
	return "generated in Go (sysbench's shape)"
}

// sysbenchArgs are the connection and table-set options of every sysbench
// command; the command (prepare, run) and its options come after.
func sysbenchArgs(src *server, threads int) []string {
	return []string{"--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-port=" + strconv.Itoa(src.port),
		"--mysql-user=root", "--mysql-password=", "--mysql-db=" + dbName,
		"--tables=" + strconv.Itoa(*nTables), "--table-size=" + strconv.Itoa(*nRows), "--threads=" + strconv.Itoa(threads)}
}

// generateTable creates sbtestN like sysbench 1.0 does: k random in
// 1..rows, c ten groups of 11 digits, pad five, joined by '-'.
func generateTable(ctx context.Context, db *sql.DB, t int) error {
	name := fmt.Sprintf("%s.sbtest%d", dbName, t)
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s (id INT NOT NULL AUTO_INCREMENT, k INT NOT NULL DEFAULT 0,
		c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', PRIMARY KEY (id)) ENGINE=InnoDB`, name)); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(t), 42))
	digits := func(groups int) string {
		var b strings.Builder
		for g := 0; g < groups; g++ {
			if g > 0 {
				b.WriteByte('-')
			}
			for i := 0; i < 11; i++ {
				b.WriteByte(byte('0' + rng.IntN(10)))
			}
		}
		return b.String()
	}
	const batch = 1000
	var q strings.Builder
	for id := 1; id <= *nRows; id += batch {
		q.Reset()
		q.WriteString("INSERT INTO " + name + " (id, k, c, pad) VALUES ")
		for i := id; i < id+batch && i <= *nRows; i++ {
			if i > id {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "(%d,%d,'%s','%s')", i, 1+rng.IntN(*nRows), digits(10), digits(5))
		}
		if _, err := db.ExecContext(ctx, q.String()); err != nil {
			return err
		}
	}
	_, err := db.ExecContext(ctx, fmt.Sprintf("CREATE INDEX k_%d ON %s (k)", t, name))
	return err
}

// dataSize counts the rows and the bytes of row data (values' lengths as
// text) of the source's tables.
func dataSize(ctx context.Context, db *sql.DB) (rows, bytes int64) {
	trs, err := db.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", dbName)
	must(err)
	var tables []string
	for trs.Next() {
		var n string
		must(trs.Scan(&n))
		tables = append(tables, n)
	}
	trs.Close()
	for _, t := range tables {
		crs, err := db.QueryContext(ctx, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", dbName, t)
		must(err)
		var lens []string
		for crs.Next() {
			var c string
			must(crs.Scan(&c))
			lens = append(lens, fmt.Sprintf("IFNULL(LENGTH(`%s`), 0)", c))
		}
		crs.Close()
		var n, b int64
		must(db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*), IFNULL(SUM(%s), 0) FROM `%s`.`%s`", strings.Join(lens, " + "), dbName, t)).Scan(&n, &b))
		rows += n
		bytes += b
	}
	return rows, bytes
}

// resetTarget drops what a load left on the target.
func resetTarget(ctx context.Context, db *sql.DB) {
	_, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+dbName)
	must(err)
	_, err = db.ExecContext(ctx, "RESET MASTER")
	must(err)
}

func open(dsn string) *sql.DB {
	db, err := sql.Open("mysql", dsn)
	must(err)
	return db
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func lookPath(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	return ""
}

func version(bin string, args ...string) string {
	if p := lookPath(bin); p != "" {
		bin = p
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return bin + " (version unknown)"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// server is a mariadbd started by the bench (start logic after
// internal/testharness, which needs a testing.T).
type server struct {
	name, dsn string
	port      int
	cmd       *exec.Cmd
	done      chan struct{}
}

// startMariaDB starts a MariaDB server with a fresh data directory on a
// random loopback port, binary log on (ROW, FULL), sized for the bench.
// It dies with this process (parent-death signal).
func startMariaDB(base, name string, serverID int) *server {
	mariadbd, installDB := lookPath("mariadbd", "mysqld"), lookPath("mariadb-install-db", "mysql_install_db")
	if mariadbd == "" || installDB == "" {
		fatalf("MariaDB is not installed: apt-get install -y mariadb-server")
	}
	dir := filepath.Join(base, name)
	data := filepath.Join(dir, "data")
	must(os.MkdirAll(dir, 0o755))
	var asRoot []string
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"}
	}
	sizing := []string{"--innodb-buffer-pool-size=" + *bufferPool, "--innodb-log-file-size=256M"}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, asRoot...)
	if out, err := exec.Command(installDB, append(args, sizing...)...).CombinedOutput(); err != nil {
		fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		port := freePort()
		args := []string{"--no-defaults", "--datadir=" + data,
			"--port=" + strconv.Itoa(port), "--socket=" + filepath.Join(dir, "mysqld.sock"),
			"--bind-address=127.0.0.1", "--skip-name-resolve", "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
			"--log-bin=" + filepath.Join(data, "binlog"), "--binlog-format=ROW", "--binlog-row-image=FULL",
			"--server-id=" + strconv.Itoa(serverID),
			"--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
			"--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0", "--innodb-doublewrite=0",
			"--max-connections=500", "--max-allowed-packet=64M"}
		args = append(append(args, sizing...), asRoot...)
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("mariadbd-%d.log", attempt)))
		must(err)
		cmd := exec.Command(mariadbd, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		s := &server{name: name, port: port, cmd: cmd, done: make(chan struct{}),
			dsn: fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)}
		started := make(chan error, 1)
		go func() {
			// The parent-death signal fires when the thread that started
			// the process ends: keep it for as long as the process runs.
			runtime.LockOSThread()
			err := cmd.Start()
			started <- err
			if err == nil {
				cmd.Wait()
			}
			logf.Close()
			close(s.done)
		}()
		must(<-started)
		atExit(s.stop)
		if err := s.waitReady(60 * time.Second); err == nil {
			return s
		} else if attempt < 4 && strings.Contains(strings.ToLower(readFile(logf.Name())), "address already in use") {
			s.stop()
			continue
		} else {
			s.stop()
			fatalf("MariaDB %s did not start: %v\n%s", name, err, readFile(logf.Name()))
		}
	}
}

func (s *server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		db, _ := sql.Open("mysql", s.dsn+"?timeout=2s")
		err := db.Ping()
		db.Close()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

var (
	exitMu    sync.Mutex
	exitFuncs []func()
)

// atExit registers f to run when the bench ends, also on a fatal error.
func atExit(f func()) {
	exitMu.Lock()
	defer exitMu.Unlock()
	exitFuncs = append(exitFuncs, f)
}

func runExit() {
	exitMu.Lock()
	fs := exitFuncs
	exitFuncs = nil
	exitMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// fatalf stops the servers, removes the files and exits.
func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	runExit()
	os.Exit(1)
}

func must(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}
