package rdb

import (
	"context"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/redis/go-redis/v9"
)

// startRedis starts a redis-server of the test's own (see
// testharness.StartRedis: no persistence, random loopback port, skipped
// without the binary unless CI=true) with DEBUG enabled.
func startRedis(t testing.TB, args ...string) string {
	t.Helper()
	return testharness.StartRedis(t, append([]string{"--enable-debug-command", "yes"}, args...)...)
}

func newClient(t testing.TB, addr string, db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true, Protocol: 2, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return c
}
