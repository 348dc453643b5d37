package pipeline_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/pipeline"
	"github.com/ferrymigrate/ferry/sqlite"
)

func TestMain(m *testing.M) { testharness.Main(m) }

func logger(t testing.TB) *slog.Logger {
	if os.Getenv("FERRY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// env is a ferry service over SQLite with the pipeline exporters
// registered, a project with a MariaDB endpoint "Cluster0", and agents.
type env struct {
	t     *testing.T
	ctx   context.Context // system principal
	svc   *ferry.Service
	db    *sqlite.DB
	reg   *ferry.Registry
	cfg   *pipeline.Config
	mysql *pipeline.Exporter
	mongo *pipeline.Exporter
	proj  *ferry.Project
	src   *sql.DB
	addr  string
	dir   string

	mu    sync.Mutex
	clock time.Duration // added to the service's clock
	hook  func(ctx context.Context, run *ferry.PipelineRun, rows int64)
}

func newEnv(t *testing.T, cfg pipeline.Config) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(e.dir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(e.dir, "datasets")
	}
	cfg.Logger = logger(t)
	cfg.OnProgress = func(ctx context.Context, run *ferry.PipelineRun, rows int64) {
		e.mu.Lock()
		h := e.hook
		e.mu.Unlock()
		if h != nil {
			h(ctx, run, rows)
		}
	}
	e.cfg = &cfg
	e.mysql = pipeline.NewMySQL(cfg)
	e.mongo = pipeline.NewMongo(cfg)
	e.reg = ferry.NewRegistry()
	e.reg.RegisterExporter(e.mysql)
	e.reg.RegisterExporter(e.mongo)
	e.svc = ferry.NewService(db, e.reg, logger(t))
	e.svc.Now = func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		return time.Now().Add(e.clock)
	}
	e.ctx = ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := e.svc.CreateOrg(e.ctx, "Org")
	if err != nil {
		t.Fatal(err)
	}
	if e.proj, err = e.svc.CreateProject(e.ctx, org.ID, "Project"); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) setHook(h func(ctx context.Context, run *ferry.PipelineRun, rows int64)) {
	e.mu.Lock()
	e.hook = h
	e.mu.Unlock()
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.clock += d
	e.mu.Unlock()
}

// startMariaDB starts a server, registers it as endpoint name and fills
// shop.orders with n rows.
func (e *env) startMariaDB(name string, n int) {
	t := e.t
	srv := testharness.StartMariaDBServer(t, testharness.MariaDBOptions{})
	e.addr = srv.Addr
	ep := &ferry.Endpoint{ProjectID: e.proj.ID, Name: name, Kind: ferry.KindMySQL, Addrs: []string{srv.Addr}, Username: "root"}
	if err := e.svc.CreateEndpoint(e.ctx, ep); err != nil {
		t.Fatal(err)
	}
	db, err := pipeline.OpenMySQL(ep, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.src = db
	fillOrders(t, db, n)
}

const ordersDDL = `CREATE TABLE shop.orders (
	id BIGINT PRIMARY KEY,
	customer VARCHAR(20) NOT NULL,
	region CHAR(2) NOT NULL,
	qty INT NOT NULL,
	amount DECIMAL(12,2) NOT NULL,
	big DECIMAL(30,5) NULL,
	ratio DOUBLE NULL,
	f FLOAT NULL,
	note TEXT NULL,
	payload VARBINARY(16) NULL,
	created DATETIME(6) NOT NULL,
	ts TIMESTAMP NULL,
	d DATE NULL,
	flags BIT(5) NULL,
	u BIGINT UNSIGNED NULL,
	tiny TINYINT NULL,
	ssn VARCHAR(20) NULL,
	doc JSON NULL
)`

var regions = []string{"eu", "us", "ap"}

func fillOrders(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS shop", "DROP TABLE IF EXISTS shop.orders", ordersDDL} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const batch = 500
	for start := 0; start < n; start += batch {
		var ph []string
		var args []any
		for i := start; i < min(n, start+batch); i++ {
			ph = append(ph, "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
			var big, ratio, f, note, payload, ts, d, flags, u, tiny, doc any
			if i%7 != 0 {
				big = fmt.Sprintf("%d%012d.%05d", i, i*7919, i%100000)
				if i%2 == 0 {
					big = "-" + big.(string)
				}
				ratio = float64(i) / 3
				f = float32(i) * 0.25
				note = fmt.Sprintf("note %d 🚢 ünïcödé", i)
				payload = []byte{byte(i), 0, byte(i >> 8), 0xff}
				ts = time.Unix(1700000000+int64(i)*61, 0).UTC().Format("2006-01-02 15:04:05")
				d = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%3000).Format("2006-01-02")
				flags = i % 32
				u = fmt.Sprint(uint64(1)<<63 + uint64(i))
				tiny = -(i % 128)
				doc = fmt.Sprintf(`{"i": %d, "tags": ["a", "b"]}`, i)
			}
			if i%7 == 3 {
				note = "" // empty, not NULL
			}
			created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 1234567 * time.Microsecond)
			args = append(args, i, fmt.Sprintf("cust-%03d", i%50), regions[i%len(regions)], i%1000, fmt.Sprintf("%d.%02d", i*3, i%100),
				big, ratio, f, note, payload, created.Format("2006-01-02 15:04:05.000000"), ts, d, flags, u, tiny,
				fmt.Sprintf("%03d-%02d-%04d", i%1000, i%100, i), doc)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO shop.orders VALUES "+strings.Join(ph, ","), args...); err != nil {
			t.Fatal(err)
		}
	}
}

// startAgent runs an agent until the test ends (or Kill).
func (e *env) startAgent(leaseTTL time.Duration) *agent.Agent {
	a, _ := e.startStoppableAgent(leaseTTL)
	return a
}

// startStoppableAgent runs an agent until stop (a graceful stop, which
// returns when the agent has) or the end of the test.
func (e *env) startStoppableAgent(leaseTTL time.Duration) (a *agent.Agent, stop func()) {
	a = agent.New(agent.Config{Store: e.db, Registry: e.reg, Service: e.svc, Logger: logger(e.t),
		LeaseTTL: leaseTTL, Heartbeat: 200 * time.Millisecond, PollInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	stop = func() { cancel(); <-done }
	e.t.Cleanup(stop)
	return a, stop
}

func (e *env) createPipeline(p *ferry.Pipeline) *ferry.Pipeline {
	e.t.Helper()
	p.ProjectID = e.proj.ID
	if err := e.svc.CreatePipeline(e.ctx, p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// waitRun waits until the run is in one of states.
func (e *env) waitRun(p *ferry.Pipeline, id string, timeout time.Duration, states ...string) *ferry.PipelineRun {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := e.svc.GetRun(e.ctx, e.proj.ID, p.Name, id)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, s := range states {
			if r.State == s {
				return r
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s is %s/%s (error %q) after %v, want %v", id, r.State, r.Phase, r.Error, timeout, states)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// datasetRow is one row of a dataset read back with parquet-go: column
// name → value (partition columns are in the files too).
type datasetRow map[string]parquet.Value

// readDataset reads every file of a published local dataset with
// parquet-go, checking each file's partition directory against its rows.
func readDataset(t *testing.T, root string, m *pipeline.Manifest) map[int64]datasetRow {
	t.Helper()
	out := map[int64]datasetRow{}
	for _, fi := range m.Files {
		f, err := os.Open(filepath.Join(root, filepath.FromSlash(fi.Path)))
		if err != nil {
			t.Fatal(err)
		}
		rows := readParquet(t, f)
		f.Close()
		if int64(len(rows)) != fi.Rows {
			t.Fatalf("%s: %d rows, manifest says %d", fi.Path, len(rows), fi.Rows)
		}
		for _, r := range rows {
			for k, v := range fi.Partition {
				if got := r[k].String(); got != v {
					t.Fatalf("%s: row with %s=%q in partition %s=%q", fi.Path, k, got, k, v)
				}
			}
			out[r["id"].Int64()] = r
		}
	}
	return out
}

func readParquet(t *testing.T, f io.ReaderAt) []datasetRow {
	t.Helper()
	st, err := f.(*os.File).Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0)
	for _, p := range pf.Schema().Columns() {
		names = append(names, strings.Join(p, "."))
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	var out []datasetRow
	buf := make([]parquet.Row, 64)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			dr := datasetRow{}
			for _, v := range row {
				dr[names[v.Column()]] = v.Clone()
			}
			out = append(out, dr)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// compareWithSource reads shop.orders and compares it row by row and
// value by value with the dataset (excluded columns must be absent).
func compareWithSource(t *testing.T, src *sql.DB, rows map[int64]datasetRow, excluded ...string) {
	t.Helper()
	q, err := src.Query("SELECT id, customer, region, qty, amount, big, ratio, f, note, payload, created, ts, d, flags, u, tiny, ssn, doc FROM shop.orders ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	cols, _ := q.Columns()
	raw := make([]sql.RawBytes, len(cols))
	dest := make([]any, len(cols))
	for i := range raw {
		dest[i] = &raw[i]
	}
	n := 0
	for q.Next() {
		if err := q.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		id, _ := strconv.ParseInt(string(raw[0]), 10, 64)
		row, ok := rows[id]
		if !ok {
			t.Fatalf("row id=%d missing from the dataset", id)
		}
		n++
		for i, c := range cols {
			v, present := row[c]
			if contains(excluded, c) {
				if present {
					t.Fatalf("excluded column %s is in the dataset", c)
				}
				continue
			}
			if !present {
				t.Fatalf("column %s missing", c)
			}
			if raw[i] == nil {
				if !v.IsNull() {
					t.Fatalf("id=%d %s: source NULL, dataset %v", id, c, v)
				}
				continue
			}
			if v.IsNull() {
				t.Fatalf("id=%d %s: source %q, dataset NULL", id, c, raw[i])
			}
			if got, want := render(c, v), string(raw[i]); got != want {
				t.Fatalf("id=%d %s: dataset %q, source %q", id, c, got, want)
			}
		}
	}
	if n != len(rows) {
		t.Fatalf("source has %d rows, dataset %d", n, len(rows))
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// render prints a dataset value as MariaDB prints the source column.
func render(c string, v parquet.Value) string {
	switch c {
	case "amount", "big":
		var u *big.Int
		scale := 2
		if c == "big" {
			scale = 5
			b := v.ByteArray()
			u = new(big.Int).SetBytes(b)
			if b[0]&0x80 != 0 {
				u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
			}
		} else {
			u = big.NewInt(v.Int64())
		}
		s := new(big.Int).Abs(u).String()
		for len(s) <= scale {
			s = "0" + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
		if u.Sign() < 0 {
			s = "-" + s
		}
		return s
	case "ratio":
		return strconv.FormatFloat(v.Double(), 'g', -1, 64)
	case "f":
		return strconv.FormatFloat(float64(v.Float()), 'g', -1, 32)
	case "created":
		return time.UnixMicro(v.Int64()).UTC().Format("2006-01-02 15:04:05.000000")
	case "ts":
		return time.UnixMicro(v.Int64()).UTC().Format("2006-01-02 15:04:05")
	case "d":
		return time.Unix(int64(v.Int32())*86400, 0).UTC().Format("2006-01-02")
	case "flags":
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(v.Int64()))
		return string(b[7:])
	case "u":
		return strconv.FormatUint(uint64(v.Int64()), 10)
	case "qty", "tiny":
		return strconv.FormatInt(int64(v.Int32()), 10)
	case "id":
		return strconv.FormatInt(v.Int64(), 10)
	}
	return string(v.ByteArray())
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
