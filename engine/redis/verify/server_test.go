package verify

import (
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
