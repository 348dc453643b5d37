package scan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
)

// scanPrecheck runs the common checks, then those of the scan mode: the
// source answers SCAN and DUMP, and keyspace notifications can be had.
func (e *Mode) scanPrecheck(ctx context.Context, m *ferry.Migration, o *config.Scan, rt ferry.StepRuntime) error {
	mr := &msgRuntime{StepRuntime: rt}
	if err := kit.Precheck(ctx, m, mr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	src, err := openScanSource(ctx, &m.Source)
	if err != nil {
		return err
	}
	defer src.close()
	c := src.node(0, 0)
	if err := c.Scan(ctx, 0, "", 1).Err(); err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Field: "source", Reason: "SCAN_REFUSED",
			Message: fmt.Sprintf("the source refuses SCAN: %v", err), Advice: "give ferry a user allowed SCAN, DUMP, PTTL/PEXPIRETIME, MEMORY USAGE, TYPE and the read commands of every data type"}
	}
	if err := src.reader(0).Dump(ctx, "ferry:precheck:no-such-key").Err(); err != nil && err != goredis.Nil {
		return &ferry.Error{Code: ferry.EINVALID, Field: "source", Reason: "DUMP_REFUSED",
			Message: fmt.Sprintf("the source refuses DUMP: %v", err), Advice: "give ferry a user allowed DUMP, or use online migration by PSYNC or backup import"}
	}
	notes := []string{"scan mode: SCAN + DUMP/RESTORE, keyspace notifications for the changes"}
	if m.Modes.Incremental && !o.Preconfigured {
		for i := range src.nodes {
			if _, err := src.node(i, 0).ConfigGet(ctx, "notify-keyspace-events").Result(); err != nil {
				return notificationsError(src.nodes[i], "CONFIG GET notify-keyspace-events", err)
			}
		}
	}
	if sig, _ := flushSignature(ctx, c); sig == "" {
		notes = append(notes, "INFO commandstats is not available, so FLUSHDB/FLUSHALL/SWAPDB on the source during the migration cannot be detected")
	}
	rt.Message(mr.msg + "; " + strings.Join(notes, "; ") + " (" + weakNote + ")")
	return nil
}

func notificationsError(node, what string, err error) error {
	return &ferry.Error{Code: ferry.EINVALID, Field: "source", Reason: "KEYSPACE_NOTIFICATIONS_UNAVAILABLE",
		Message: fmt.Sprintf("scan mode follows the source's changes by keyspace notifications, but %s on %s was refused: %v", what, node, err),
		Advice: "enable keyspace notifications on the source yourself (notify-keyspace-events must include \"KA\": keyspace events of every class; " +
			"on a managed service set it in the instance's parameter group), then set options.extra.notify_keyspace_events=preconfigured; " +
			"or migrate without incremental sync (full only), or use online migration by PSYNC where the source allows it"}
}

// ---------------------------------------------------------------------------
// The source: one server, or the masters of a cluster.

type scanSource struct {
	ep      *ferry.Endpoint
	cluster bool
	cc      *goredis.ClusterClient
	nodes   []string // master addresses, sorted; standalone: the one address
	mu      sync.Mutex
	clients map[string]*goredis.Client // "addr/db"
}

func openScanSource(ctx context.Context, ep *ferry.Endpoint) (*scanSource, error) {
	s := &scanSource{ep: ep, cluster: ep.Cluster, clients: map[string]*goredis.Client{}}
	if !ep.Cluster {
		s.nodes = []string{ep.Addrs[0]}
		return s, nil
	}
	s.cc = kit.Client(ep, 0).(*goredis.ClusterClient)
	nodes, err := s.masters(ctx)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("source cluster topology: %w", err)
	}
	s.nodes = nodes
	return s, nil
}

// masters lists the cluster's master addresses (sorted).
func (s *scanSource) masters(ctx context.Context) ([]string, error) {
	if !s.cluster {
		return s.nodes, nil
	}
	slots, err := s.cc.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, sl := range slots {
		if len(sl.Nodes) > 0 {
			set[sl.Nodes[0].Addr] = true
		}
	}
	var out []string
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, errors.New("CLUSTER SLOTS lists no master")
	}
	return out, nil
}

// node returns a client of master i, db db.
func (s *scanSource) node(i, db int) *goredis.Client {
	addr := s.nodes[i]
	k := addr + "/" + strconv.Itoa(db)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[k]; c != nil {
		return c
	}
	c := goredis.NewClient(&goredis.Options{Addr: addr, Username: s.ep.Username, Password: s.ep.Password, DB: db,
		TLSConfig: kit.TLSConfig(s.ep), DialTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, MaxRetries: 2})
	s.clients[k] = c
	return c
}

// reader returns the client that reads keys of db (a cluster source: the
// cluster client, which routes by slot and follows MOVED).
func (s *scanSource) reader(db int) goredis.UniversalClient {
	if s.cluster {
		return s.cc
	}
	return s.node(0, db)
}

func (s *scanSource) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		c.Close()
	}
	s.clients = map[string]*goredis.Client{}
	if s.cc != nil {
		s.cc.Close()
	}
}

// flushSignature returns the calls of FLUSHDB, FLUSHALL and SWAPDB from
// INFO commandstats ("" when INFO commandstats is not available).
func flushSignature(ctx context.Context, c *goredis.Client) (string, error) {
	s, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return "", err
	}
	if !strings.Contains(s, "cmdstat_") {
		return "", nil
	}
	calls := map[string]string{"flushdb": "0", "flushall": "0", "swapdb": "0"}
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if !ok {
			continue
		}
		cmd, ok := strings.CutPrefix(name, "cmdstat_")
		if _, want := calls[cmd]; !ok || !want {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				calls[cmd] = v
			}
		}
	}
	return "flushdb=" + calls["flushdb"] + ",flushall=" + calls["flushall"] + ",swapdb=" + calls["swapdb"], nil
}

// ensureNotifications makes the source node send keyspace events of every
// class ("KA"), and returns its earlier setting when ferry changed it.
func ensureNotifications(ctx context.Context, c *goredis.Client, addr string) (orig string, changed bool, err error) {
	v, err := c.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		return "", false, notificationsError(addr, "CONFIG GET notify-keyspace-events", err)
	}
	cur := v["notify-keyspace-events"]
	if notifyFlagsOK(cur) {
		return cur, false, nil
	}
	if err := c.ConfigSet(ctx, "notify-keyspace-events", cur+"KA").Err(); err != nil {
		return "", false, notificationsError(addr, "CONFIG SET notify-keyspace-events KA", err)
	}
	return cur, true, nil
}

// notifyFlagsOK reports whether notify-keyspace-events flags include
// keyspace events of every class that changes keys.
func notifyFlagsOK(flags string) bool {
	if !strings.Contains(flags, "K") {
		return false
	}
	if strings.Contains(flags, "A") {
		return true
	}
	for _, c := range "g$lshzxet" {
		if !strings.ContainsRune(flags, c) {
			return false
		}
	}
	return true
}
