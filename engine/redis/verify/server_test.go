package verify

import "github.com/ferrymigrate/ferry/internal/testharness"

type redisServer = testharness.RedisServer

var (
	// startRedis starts a redis-server with DEBUG enabled (DEBUG DIGEST).
	startRedis   = testharness.StartRedisDebug
	client       = testharness.RedisClient
	startCluster = testharness.StartRedisCluster
)

func init() { testharness.QuietRedisClientLogs() }
