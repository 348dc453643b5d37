package writer

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry/internal/testharness"
)

type redisServer = testharness.RedisServer

var (
	// startRedis starts a redis-server with DEBUG enabled (DEBUG DIGEST).
	startRedis   = testharness.StartRedisDebug
	client       = testharness.RedisClient
	startCluster = testharness.StartRedisCluster
)

func init() { testharness.QuietRedisClientLogs() }

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
