package verify

import "github.com/ferrymigrate/ferry/internal/testharness"

// go-redis logs every failed dial while a killed master is being replaced.
func init() { testharness.QuietRedisClientLogs() }
