// Package redis is ferry's Redis engine: Redis to Redis (standalone or
// Cluster target) by PSYNC replication. ferry connects to the source as a
// replica, parses the RDB while it streams in and writes it to the target
// (package rdb, package writer), then applies the command stream that
// follows, byte-offset exact, checkpointing the replication id and the
// applied offset so a restarted job resumes with a partial resync
// (PSYNC <replid> <offset+1>) and falls back to a full sync only when the
// source's backlog no longer holds it. Cutover pauses the source's writes
// (CLIENT PAUSE WRITE), drains to the source's final offset, and the
// verification step compares source and target key by key (package verify).
package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/writer"
)

// Engine implements ferry.Engine for Redis.
type Engine struct {
	Logger *slog.Logger
	// WriterConns is the number of pipelined connections to the target
	// (0: the writer's default).
	WriterConns int
	// Backups says where backup files are imported from and where
	// `ferry backups create` keeps its backups (backup_import mode).
	Backups BackupConfig

	mu       sync.Mutex
	sessions map[string]*session // a live link handed from the full step to the incremental step
}

// New returns the Redis engine.
func New(logger *slog.Logger) *Engine {
	if logger == nil {
		logger = slog.Default()
	}
	return &Engine{Logger: logger, sessions: map[string]*session{}}
}

var _ ferry.Engine = (*Engine)(nil)

// Kind is redis.
func (e *Engine) Kind() ferry.EngineKind { return ferry.KindRedis }

// Modes of the Redis engine (Options.Extra["mode"]).
const (
	ModePSYNC        = "psync"         // online: replication (default)
	ModeScan         = "scan"          // online for sources that forbid PSYNC
	ModeBackupImport = "backup_import" // RDB/AOF files
)

// Check validates a job for this engine without touching the network.
func (e *Engine) Check(m *ferry.Migration) error {
	switch mode := m.Options.Extra["mode"]; mode {
	case "", ModePSYNC:
	case ModeScan:
		return e.checkScan(m)
	case ModeBackupImport:
		return e.checkImport(m)
	default:
		return ferry.FieldError("options.extra.mode", "unknown redis mode %q (psync, scan, backup_import)", mode)
	}
	if m.Modes.Schema {
		return ferry.FieldError("modes.schema", "Redis has no schema step")
	}
	if m.Modes.ReverseIncremental {
		return ferry.FieldError("modes.reverseIncremental", "reverse incremental sync is not available for Redis")
	}
	if m.Modes.Incremental && !m.Modes.Full {
		return ferry.FieldError("modes.incremental", "PSYNC incremental sync starts with a full sync: enable full too")
	}
	if m.Options.Conflict == ferry.ConflictSkip {
		return ferry.FieldError("options.conflict", "conflict policy skip is not built yet for Redis: use fail (empty target) or replace")
	}
	if m.Source.Cluster {
		return ferry.FieldError("source.cluster", "a Redis Cluster source is migrated one master at a time: create one job per master (cluster sources as one job are not built yet)")
	}
	if len(m.Source.Addrs) != 1 {
		return ferry.FieldError("source.addrs", "give the one master to replicate from")
	}
	if _, err := newFilter(m); err != nil {
		return err
	}
	return nil
}

// RunStep runs one step of a job.
func (e *Engine) RunStep(ctx context.Context, m *ferry.Migration, step ferry.StepName, rt ferry.StepRuntime) error {
	if m.Options.Extra["mode"] == ModeBackupImport {
		return e.runImportStep(ctx, m, step, rt)
	}
	if m.Options.Extra["mode"] == ModeScan {
		return e.runScan(ctx, m, step, rt)
	}
	switch step {
	case ferry.StepPrecheck:
		return e.precheck(ctx, m, rt)
	case ferry.StepFull:
		return e.full(ctx, m, rt)
	case ferry.StepIncremental:
		return e.incremental(ctx, m, rt)
	case ferry.StepCutover:
		e.dropSession(m.ID)
		rt.Message("the target holds every change applied up to the source's final offset; " + pauseNote(m))
		return nil
	case ferry.StepVerify:
		return e.verify(ctx, m, rt)
	}
	return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("the redis engine has no step %s", step)}
}

// pauseNote says what cutover left on the source, for the cutover step's
// message.
func pauseNote(m *ferry.Migration) string {
	if n := m.Cutover.Summary(time.Now()); n != "" {
		return n
	}
	return fmt.Sprintf("the source's writes stay paused (CLIENT PAUSE WRITE, %d s from the cutover): switch the clients to the target, or lift the pause with release-source", pauseSeconds(m))
}

// checkpoint is what the Redis engine persists.
type checkpoint struct {
	ReplID string `json:"replId"`
	// Offset is the source's replication offset of the last applied byte.
	Offset int64 `json:"offset"`
	// Resyncs count how the link was (re)established.
	PartialResyncs int   `json:"partialResyncs,omitempty"`
	FullResyncs    int   `json:"fullResyncs,omitempty"`
	Ops            int64 `json:"ops,omitempty"`
	// Started marks a full sync under way (the target holds a partial copy).
	Started bool `json:"started,omitempty"`
}

func readCheckpoint(raw json.RawMessage) (*checkpoint, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c checkpoint
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("bad redis checkpoint: %w", err)
	}
	if c.ReplID == "" {
		return nil, nil
	}
	return &c, nil
}

// client opens a go-redis client for control commands (INFO, DBSIZE,
// CLIENT PAUSE, verification) on an endpoint.
func client(ep *ferry.Endpoint, db int) goredis.UniversalClient {
	if ep.Cluster {
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: ep.Addrs, Username: ep.Username, Password: ep.Password,
			TLSConfig: tlsConfig(ep), DialTimeout: 10 * time.Second})
	}
	return goredis.NewClient(&goredis.Options{Addr: ep.Addrs[0], Username: ep.Username, Password: ep.Password, DB: db,
		TLSConfig: tlsConfig(ep), DialTimeout: 10 * time.Second, MaxRetries: 2})
}

func newWriter(ctx context.Context, m *ferry.Migration, conns int) (*writer.Writer, error) {
	// A bounded queue keeps the agent's memory flat whatever the size of
	// one key: a big key arrives as chunks and Do blocks while 16 MiB are
	// queued or in flight.
	w, err := writer.New(ctx, writer.Options{Addrs: m.Target.Addrs, Cluster: m.Target.Cluster,
		Username: m.Target.Username, Password: m.Target.Password, TLS: tlsConfig(&m.Target), Conns: conns,
		MaxQueueBytes: 16 << 20})
	if err != nil {
		return nil, fmt.Errorf("connect to target: %w", err)
	}
	return w, nil
}

// keyspace returns the number of keys of each db from INFO keyspace.
func keyspace(ctx context.Context, c goredis.UniversalClient) (map[int]int64, error) {
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

// infoField returns one field of an INFO section.
func infoField(ctx context.Context, c goredis.UniversalClient, section, field string) (string, error) {
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
