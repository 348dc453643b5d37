package writer

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry/internal/testharness"
)

type redisServer = testharness.RedisServer

// startRedis starts a redis-server for the test (internal/testharness), with
// the DEBUG command enabled (DEBUG DIGEST); extra arguments are appended.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	return testharness.StartRedisServer(t, append([]string{"--enable-debug-command", "yes"}, extra...)...)
}

func client(t testing.TB, addr string, db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db, Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

// digest returns DEBUG DIGEST of one db.
func digest(t testing.TB, addr string, db int) string {
	c := client(t, addr, db)
	s, err := c.Do(context.Background(), "DEBUG", "DIGEST").Text()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bs(args ...string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}

func mustNew(t testing.TB, opts Options) *Writer {
	t.Helper()
	w, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func do(t testing.TB, w *Writer, db int, args ...string) {
	t.Helper()
	if err := w.Do(db, bs(args...)...); err != nil {
		t.Fatalf("Do %s: %v", strings.Join(args, " "), err)
	}
}
