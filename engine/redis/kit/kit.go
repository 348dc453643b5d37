// Package kit is what the Redis engine's modes (psync, scan, backup)
// share: control clients and the target writer, INFO fields and offsets,
// the source's replication link and TLS, the job's db/key filter, the RDB
// applier that turns parsed keys into commands, the cutover pause of the
// source, the key-by-key verification step, and the one registry of live
// links parked between two steps of a job.
package kit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/writer"
)

// MarkerPrefix names the marker keys ferry keeps on targets (the applied
// offset of a job); they are not data.
const MarkerPrefix = "__ferry:offset:"

// Client opens a go-redis client for control commands (INFO, DBSIZE,
// CLIENT PAUSE, verification) on an endpoint.
func Client(ep *ferry.Endpoint, db int) goredis.UniversalClient {
	if ep.Cluster {
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: ep.Addrs, Username: ep.Username, Password: ep.Password,
			TLSConfig: TLSConfig(ep), DialTimeout: 10 * time.Second})
	}
	return goredis.NewClient(&goredis.Options{Addr: ep.Addrs[0], Username: ep.Username, Password: ep.Password, DB: db,
		TLSConfig: TLSConfig(ep), DialTimeout: 10 * time.Second, MaxRetries: 2})
}

// NewWriter connects the pipelined writer to a job's target.
func NewWriter(ctx context.Context, m *ferry.Migration, conns int) (*writer.Writer, error) {
	// A bounded queue keeps the agent's memory flat whatever the size of
	// one key: a big key arrives as chunks and Do blocks while 16 MiB are
	// queued or in flight.
	w, err := writer.New(ctx, writer.Options{Addrs: m.Target.Addrs, Cluster: m.Target.Cluster,
		Username: m.Target.Username, Password: m.Target.Password, TLS: TLSConfig(&m.Target), Conns: conns,
		MaxQueueBytes: 16 << 20})
	if err != nil {
		return nil, fmt.Errorf("connect to target: %w", err)
	}
	return w, nil
}

// Keyspace returns the number of keys of each db from INFO keyspace (summed
// over the masters of a cluster).
func Keyspace(ctx context.Context, c goredis.UniversalClient) (map[int]int64, error) {
	out := map[int]int64{}
	parse := func(info string) {
		for _, line := range strings.Split(info, "\n") {
			if len(line) < 3 || line[:2] != "db" {
				continue
			}
			name, rest, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
			if !ok {
				continue
			}
			db, err := strconv.Atoi(name[2:])
			if err != nil {
				continue
			}
			for _, kv := range strings.Split(rest, ",") {
				if k, v, ok := strings.Cut(kv, "="); ok && k == "keys" {
					n, _ := strconv.ParseInt(v, 10, 64)
					out[db] += n
				}
			}
		}
	}
	if cc, ok := c.(*goredis.ClusterClient); ok {
		var mu sync.Mutex
		err := cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error {
			s, err := n.Info(ctx, "keyspace").Result()
			if err != nil {
				return err
			}
			mu.Lock()
			parse(s)
			mu.Unlock()
			return nil
		})
		return out, err
	}
	s, err := c.Info(ctx, "keyspace").Result()
	if err != nil {
		return nil, err
	}
	parse(s)
	return out, nil
}

// InfoField returns one field of an INFO section.
func InfoField(ctx context.Context, c goredis.UniversalClient, section, field string) (string, error) {
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ":"); ok && k == field {
			return v, nil
		}
	}
	return "", fmt.Errorf("INFO %s has no %s", section, field)
}

// MasterOffset is a master's replication offset.
func MasterOffset(ctx context.Context, c goredis.UniversalClient) (int64, error) {
	v, err := InfoField(ctx, c, "replication", "master_repl_offset")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// VersionLess compares dotted versions numerically.
func VersionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		var x, y int
		fmt.Sscan(pa[i], &x)
		fmt.Sscan(pb[i], &y)
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}

// IsKeyless reports commands of a replication stream or an AOF whose first
// argument is not a key.
func IsKeyless(name string) bool {
	switch name {
	case "FLUSHDB", "FLUSHALL", "MULTI", "EXEC", "DISCARD", "SWAPDB", "FUNCTION", "SCRIPT", "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO", "PUBLISH", "SPUBLISH":
		return true
	}
	return false
}
