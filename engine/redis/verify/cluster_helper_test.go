package verify

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry/internal/testharness"
)

// startCluster starts a Redis Cluster (see testharness.StartRedisCluster).
func startCluster(t testing.TB, masters, replicas int) []*redisServer {
	return testharness.StartRedisCluster(t, masters, replicas)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// go-redis logs every failed dial while a killed master is being replaced.
func init() { redis.SetLogger(quietLogger{}) }
