// Package redistest is the test environment of the Redis engine's tests:
// two real redis-servers, a SQLite store, a Service with the Redis engine,
// and helpers that fill a server with every type and compare two.
package redistest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	"github.com/ferrymigrate/ferry/engine/enginetest"
	redisengine "github.com/ferrymigrate/ferry/engine/redis"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/sqlite"
)

// Env is two redis-servers (source and target, DEBUG enabled) and a
// Service over a SQLite store with the Redis engine, an org and a project.
type Env struct {
	T        *testing.T
	Store    ferry.Store
	Svc      *ferry.Service
	Reg      *ferry.Registry
	Ctx      context.Context
	Org      *ferry.Organization
	Proj     *ferry.Project
	Src, Dst string
	SrcC     *goredis.Client
	DstC     *goredis.Client
	// Server is the source server (its directory holds its dump files).
	Server *testharness.RedisServer
	// Engine is the Redis engine registered in Reg.
	Engine *redisengine.Engine
}

// Logger is the tests' logger: silent, unless FERRY_TEST_LOG is set.

func Logger(t *testing.T) *slog.Logger {
	if os.Getenv("FERRY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// NewEnv starts the two servers (srcArgs are more arguments of the
// source's) and the service, with the org "acme" and its project "prod".
func NewEnv(t *testing.T, srcArgs ...string) *Env {
	t.Helper()
	e := &Env{T: t}
	e.Server = testharness.StartRedisServer(t, append([]string{"--enable-debug-command", "yes"}, srcArgs...)...)
	e.Src = e.Server.Addr
	e.Dst = testharness.StartRedis(t, "--enable-debug-command", "yes")
	e.SrcC = goredis.NewClient(ClientOptions(e.Src))
	e.DstC = goredis.NewClient(ClientOptions(e.Dst))
	t.Cleanup(func() { e.SrcC.Close(); e.DstC.Close() })
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.Store = db
	e.Reg = ferry.NewRegistry()
	e.Engine = redisengine.New(Logger(t))
	e.Reg.Register(e.Engine)
	e.Svc = ferry.NewService(db, e.Reg, Logger(t))
	sys := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	if e.Org, err = e.Svc.CreateOrg(sys, "acme"); err != nil {
		t.Fatal(err)
	}
	e.Proj, err = e.Svc.CreateProject(sys, e.Org.ID, "prod")
	if err != nil {
		t.Fatal(err)
	}
	e.Ctx = sys
	return e
}

// Agent runs an in-process agent over the env's store until the test ends.
func (e *Env) Agent(id string) *agent.Agent { return e.AgentOn(id, e.Reg) }

// AgentOn runs an in-process agent with the engines of reg.
func (e *Env) AgentOn(id string, reg *ferry.Registry) *agent.Agent {
	a := agent.New(agent.Config{ID: id, Store: e.Store, Registry: reg, Service: e.Svc, Logger: Logger(e.T),
		LeaseTTL: 2 * time.Second, PollInterval: 50 * time.Millisecond, RetryBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	e.T.Cleanup(func() { cancel(); <-done })
	return a
}

// Create creates a Redis job from the source to the target.
func (e *Env) Create(modes ferry.Modes, opts ferry.Options) *ferry.Migration {
	m := &ferry.Migration{ProjectID: e.Proj.ID, Engine: ferry.KindRedis,
		Source: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Src}},
		Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Dst}},
		Modes:  modes, Options: opts}
	if err := e.Svc.CreateMigration(e.Ctx, m, true); err != nil {
		e.T.Fatal(err)
	}
	return m
}

// Wait polls the job until cond holds (enginetest.WaitFor).
func (e *Env) Wait(id, what string, timeout time.Duration, cond func(m *ferry.Migration) bool) *ferry.Migration {
	e.T.Helper()
	return enginetest.WaitFor(e.T, e.Store, id, what, timeout, cond)
}

// Populate writes every type and encoding Redis 7.0 has into several dbs.
func Populate(t *testing.T, c *goredis.Client, prefix string) { PopulateDBs(t, c, prefix, 3) }

// PopulateDBs writes every type and encoding into dbs 0..dbs-1.
func PopulateDBs(t *testing.T, c *goredis.Client, prefix string, dbs int) {
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

// Digest is DEBUG DIGEST of a server (every db, values and TTLs).
func Digest(t *testing.T, c *goredis.Client) string {
	s, err := c.Do(context.Background(), "DEBUG", "DIGEST").Text()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ClientOptions are the options of the tests' own clients: long
// timeouts and no retries, so a loaded machine neither fails a big
// pipelined fill on go-redis's 3 s default nor applies it twice (a retried
// pipeline of RPUSHes doubles the list).
func ClientOptions(addr string) *goredis.Options {
	return &goredis.Options{Addr: addr, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second, MaxRetries: -1}
}
