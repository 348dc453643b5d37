package testharness

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// StartRedisDebug is StartRedisServer with the DEBUG command enabled
// ("--enable-debug-command yes": DEBUG DIGEST, DEBUG RELOAD ...); extraArgs
// are appended.
func StartRedisDebug(t testing.TB, extraArgs ...string) *RedisServer {
	t.Helper()
	return StartRedisServer(t, append([]string{"--enable-debug-command", "yes"}, extraArgs...)...)
}

// RedisClient returns a go-redis client (RESP2) of db db at addr; t.Cleanup
// closes it.
func RedisClient(t testing.TB, addr string, db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db, Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

// QuietRedisClientLogs silences go-redis's package-wide logger, which logs
// every failed dial (for example while a killed cluster master is being
// replaced). Call it from a test package's init.
func QuietRedisClientLogs() { redis.SetLogger(quietRedisLogger{}) }

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}
