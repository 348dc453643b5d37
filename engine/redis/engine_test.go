package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	redisengine "github.com/ferrymigrate/ferry/engine/redis"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/sqlite"
)

func TestMain(m *testing.M) { testharness.Main(m) }

type env struct {
	t        *testing.T
	store    ferry.Store
	svc      *ferry.Service
	reg      *ferry.Registry
	ctx      context.Context
	proj     *ferry.Project
	src, dst string
	srcC     *goredis.Client
	dstC     *goredis.Client
}

func logger(t *testing.T) *slog.Logger {
	if os.Getenv("FERRY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t *testing.T, srcArgs ...string) *env {
	t.Helper()
	e := &env{t: t}
	e.src = testharness.StartRedis(t, append([]string{"--enable-debug-command", "yes"}, srcArgs...)...)
	e.dst = testharness.StartRedis(t, "--enable-debug-command", "yes")
	e.srcC = goredis.NewClient(testClientOptions(e.src))
	e.dstC = goredis.NewClient(testClientOptions(e.dst))
	t.Cleanup(func() { e.srcC.Close(); e.dstC.Close() })
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.store = db
	e.reg = ferry.NewRegistry()
	e.reg.Register(redisengine.New(logger(t)))
	e.svc = ferry.NewService(db, e.reg, logger(t))
	sys := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	org, err := e.svc.CreateOrg(sys, "acme")
	if err != nil {
		t.Fatal(err)
	}
	e.proj, err = e.svc.CreateProject(sys, org.ID, "prod")
	if err != nil {
		t.Fatal(err)
	}
	e.ctx = sys
	return e
}

func (e *env) agent(id string) *agent.Agent {
	a := agent.New(agent.Config{ID: id, Store: e.store, Registry: e.reg, Service: e.svc, Logger: logger(e.t),
		LeaseTTL: 2 * time.Second, PollInterval: 50 * time.Millisecond, RetryBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return a
}

func (e *env) create(modes ferry.Modes, opts ferry.Options) *ferry.Migration {
	m := &ferry.Migration{ProjectID: e.proj.ID, Engine: ferry.KindRedis,
		Source: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.src}},
		Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.dst}},
		Modes:  modes, Options: opts}
	if err := e.svc.CreateMigration(e.ctx, m, true); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) wait(id, what string, timeout time.Duration, cond func(m *ferry.Migration) bool) *ferry.Migration {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var m *ferry.Migration
	for time.Now().Before(deadline) {
		var err error
		m, err = e.store.GetMigration(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if cond(m) {
			return m
		}
		if m.State == ferry.StateFailed && !strings.Contains(what, "fail") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	e.t.Fatalf("waiting for %s: %s", what, b)
	return nil
}

// populate writes every type and encoding Redis 7.0 has into several dbs.
func populate(t *testing.T, c *goredis.Client, prefix string) { populateDBs(t, c, prefix, 3) }

func populateDBs(t *testing.T, c *goredis.Client, prefix string, dbs int) {
	ctx := context.Background()
	for db := 0; db < dbs; db++ {
		cc := goredis.NewClient(&goredis.Options{Addr: c.Options().Addr, DB: db})
		p := func(cmd ...any) {
			if err := cc.Do(ctx, cmd...).Err(); err != nil {
				t.Fatalf("db%d %v: %v", db, cmd, err)
			}
		}
		k := func(s string) string { return fmt.Sprintf("%s%s:%d", prefix, s, db) }
		p("SET", k("str"), "hello")
		p("SET", k("int"), "12345")
		p("SET", k("bin\x00\xff"), "v\x00\xff\r\n")
		p("SET", k("big"), strings.Repeat("abcdefgh", 20000))
		p("SET", k("ttl"), "x", "PX", "3600000")
		p("RPUSH", k("list"), "a", "b", "c")
		for i := 0; i < 2000; i++ {
			p("RPUSH", k("biglist"), fmt.Sprintf("element-%d", i))
		}
		p("SADD", k("intset"), 1, 2, 3, 100000)
		p("SADD", k("set"), "x", "y", "z")
		for i := 0; i < 600; i++ {
			p("SADD", k("bigset"), fmt.Sprintf("m%d", i))
		}
		p("ZADD", k("zset"), 0.1, "a", 1e308, "b", math.Inf(-1), "c", 5e-324, "d", 1.0/3, "e")
		for i := 0; i < 300; i++ {
			p("ZADD", k("bigzset"), float64(i)/7, fmt.Sprintf("m%d", i))
		}
		p("HSET", k("hash"), "f1", "v1", "f2", "v2")
		for i := 0; i < 700; i++ {
			p("HSET", k("bighash"), fmt.Sprintf("f%d", i), strings.Repeat("v", i%50))
		}
		p("PEXPIRE", k("bighash"), 7200000)
		p("XADD", k("stream"), "1-1", "a", "1")
		p("XADD", k("stream"), "2-1", "b", "2")
		p("XADD", k("stream"), "3-1", "c", "3")
		p("XDEL", k("stream"), "2-1")
		p("XGROUP", "CREATE", k("stream"), "g1", "0")
		p("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "1", "STREAMS", k("stream"), ">")
		p("XREADGROUP", "GROUP", "g1", "bob", "COUNT", "1", "STREAMS", k("stream"), ">")
		p("XACK", k("stream"), "g1", "1-1")
		cc.Close()
	}
	if err := c.Do(ctx, "FUNCTION", "LOAD", "REPLACE", "#!lua name=ferrylib\nredis.register_function('ferryfn', function(keys, args) return 1 end)").Err(); err != nil {
		t.Fatal(err)
	}
}

func digest(t *testing.T, c *goredis.Client) string {
	s, err := c.Do(context.Background(), "DEBUG", "DIGEST").Text()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOnlineMigrationEndToEnd(t *testing.T) {
	e := newEnv(t)
	populate(t, e.srcC, "pre:")
	m := e.create(ferry.Modes{Full: true, Incremental: true, Verify: true}, ferry.Options{})
	e.agent("agent-1")

	// Writes during the whole sync: they must arrive through the stream.
	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var written int
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				written = i
				return
			default:
			}
			pipe := e.srcC.Pipeline()
			pipe.Set(context.Background(), fmt.Sprintf("live:%d", i), i, 0)
			pipe.HIncrBy(context.Background(), "live:counter", "n", 1)
			pipe.ZAdd(context.Background(), "live:z", goredis.Z{Score: float64(i) / 3, Member: fmt.Sprint(i)})
			if i%10 == 0 {
				pipe.Del(context.Background(), fmt.Sprintf("live:%d", i-5))
			}
			if _, err := pipe.Exec(context.Background()); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	m = e.wait(m.ID, "ready for cutover", 60*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	full := m.Step(ferry.StepFull)
	if full.State != ferry.StepDone || full.Counters.Done < 3*25 {
		t.Fatalf("full step %+v", full)
	}
	// More writes in incremental, then stop the application and cut over.
	time.Sleep(300 * time.Millisecond)
	close(stopWriting)
	wg.Wait()
	populate(t, e.srcC, "post:")
	if _, err := e.svc.CutoverMigration(e.ctx, e.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.wait(m.ID, "completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing != 0 || v.Counters.Extra != 0 || v.Counters.Different != 0 || v.Counters.Done == 0 {
		t.Fatalf("verify counters %+v (%s)", v.Counters, v.Message)
	}
	inc := m.Step(ferry.StepIncremental)
	if inc.Counters.Ops == 0 {
		t.Fatalf("incremental applied no command: %+v", inc)
	}
	// The application's writes all arrived.
	n, err := e.dstC.HGet(context.Background(), "live:counter", "n").Int()
	if err != nil || n != written {
		t.Fatalf("live:counter = %d (%v), want %d", n, err, written)
	}
	// Every db, byte for byte: DEBUG DIGEST covers all dbs, values and TTLs
	// (absolute times, so they match to the millisecond).
	if a, b := digest(t, e.srcC), digest(t, e.dstC); a != b {
		t.Fatalf("DEBUG DIGEST differs: source %s target %s", a, b)
	}
	if fn, _ := e.dstC.Do(context.Background(), "FCALL", "ferryfn", 0).Int(); fn != 1 {
		t.Fatal("function library not migrated")
	}
	// Verification on demand: a verify-only job over the same endpoints;
	// then a planted difference makes it fail with the numbers.
	vj, err := e.svc.VerifyMigration(e.ctx, e.proj.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	vj = e.wait(vj.ID, "on-demand verification", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	if c := vj.Step(ferry.StepVerify).Counters; c.Done != v.Counters.Done || c.Missing+c.Extra+c.Different != 0 {
		t.Fatalf("on-demand verify %+v", c)
	}
	if err := e.dstC.Del(context.Background(), "pre:str:0").Err(); err != nil {
		t.Fatal(err)
	}
	vj, err = e.svc.VerifyMigration(e.ctx, e.proj.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	vj = e.wait(vj.ID, "failed verification", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateFailed })
	if c := vj.Step(ferry.StepVerify).Counters; c.Missing != 1 || c.Extra != 0 || c.Different != 0 || !strings.Contains(vj.Error, `"pre:str:0" missing`) {
		t.Fatalf("planted difference: counters %+v, error %q", c, vj.Error)
	}
	t.Logf("full: %d keys in %v; incremental: %d commands; verify: %d keys equal; %d app writes during sync",
		full.Counters.Done, full.FinishedAt.Sub(*full.StartedAt).Round(time.Millisecond), inc.Counters.Ops, v.Counters.Done, written)
}

// testClientOptions are the options of the tests' own clients: long
// timeouts and no retries, so a loaded machine neither fails a big
// pipelined fill on go-redis's 3 s default nor applies it twice (a retried
// pipeline of RPUSHes doubles the list).
func testClientOptions(addr string) *goredis.Options {
	return &goredis.Options{Addr: addr, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second, MaxRetries: -1}
}
