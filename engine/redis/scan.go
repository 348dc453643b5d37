package redis

// Scan mode (Options.Extra["mode"] = "scan"), for sources that forbid PSYNC
// (managed services): no replication link, only ordinary client commands.
//
// Full step: before anything is copied ferry subscribes to the source's
// keyspace notifications (PSUBSCRIBE __keyspace@<db>__:*, after CONFIG SET
// notify-keyspace-events when needed), so every key changed from then on is
// queued. It then SCANs every included db (cluster source: every master),
// sizes each batch of keys with MEMORY USAGE, and copies the small ones with
// one pipeline of DUMP + PEXPIRETIME (PTTL before 7.0) and RESTORE key
// <abs-ttl> payload REPLACE ABSTTL through package writer. Keys bigger than
// scan_big_key_bytes (64 MiB) are copied by type in bounded chunks (GETRANGE,
// LRANGE, SSCAN, ZSCAN, HSCAN into SET/APPEND, RPUSH, SADD, ZADD with exact
// scores, HSET, then PEXPIREAT), so the agent's memory does not grow with a
// key. When the target cannot RESTORE the source's payloads (an older
// target: "DUMP payload version or checksum are wrong"), the payload ferry
// already holds is decoded with package rdb and written with the same
// type-specific commands (strings, lists, sets, zsets, hashes; streams and
// module values need RESTORE).
//
// Incremental step: the queued keys are copied again (DUMP/RESTORE, or DEL
// on the target when the key is gone from the source), de-duplicated, in
// the order of their first notification. Lag is the age of the oldest change
// not yet copied. Cutover pauses the source's writes (CLIENT PAUSE WRITE),
// makes sure every notification sent before the pause has arrived (a PING
// on the subscription comes back after them), copies what is left and ends.
//
// This is weaker than PSYNC replication, and the step messages say so:
// notifications are fire-and-forget (a dropped subscription loses them: ferry
// then subscribes again and rescans every db, removing from the target the
// keys gone from the source); a key's intermediate states are not replayed,
// only its latest value is copied; FLUSHDB, FLUSHALL and SWAPDB send no
// notification (ferry watches INFO commandstats and rescans when they ran);
// and there is no resumable offset: after an agent restart the incremental
// step scans everything again. The full step checkpoints the db and SCAN
// cursor it reached, which a retry on the same agent resumes from while the
// subscription that covers the keys already copied is still alive; without
// it the scan starts over and ends by removing stale keys from the target.
//
// Options.Extra settings of the scan mode: scan_big_key_bytes (MEMORY USAGE
// above which a key is copied in chunks; default 64 MiB), scan_count (SCAN
// COUNT and keys per pipeline; 512), scan_max_pending_keys (distinct changed
// keys queued before ferry gives up on the queue and rescans; 1M), scan_copy
// (auto | commands: never RESTORE strings, lists, sets, zsets, hashes),
// notify_keyspace_events (auto: CONFIG GET/SET | preconfigured: the source's
// operator set "KA"), cutover_pause (write: CLIENT PAUSE WRITE | none: the
// source refuses it and the application has stopped writing).

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/rdb"
	"github.com/ferrymigrate/ferry/engine/redis/writer"
)

// weakNote is appended to the scan mode's step messages.
const weakNote = "scan mode is weaker than PSYNC replication: keyspace notifications are fire-and-forget " +
	"(a lost subscription makes ferry rescan every db), a key's intermediate states are not replayed (only its latest value is copied), " +
	"and there is no resumable offset (after an agent restart the full scan runs again)"

// Defaults of the scan mode's options (Options.Extra).
const (
	defaultBigKeyBytes = 64 << 20  // scan_big_key_bytes
	defaultScanCount   = 512       // scan_count: SCAN COUNT and keys per pipeline
	defaultMaxPending  = 1_000_000 // scan_max_pending_keys: distinct changed keys queued
	dumpBatchBytes     = 32 << 20  // bytes of DUMP payloads read in one pipeline
	chunkElems         = 1000      // elements per chunk of a big key
	chunkBytes         = 1 << 20   // bytes per chunk of a big string
	scanSessionTTL     = 2 * time.Minute
	maxRescans         = 5 // rescans in a row (one step run) before giving up
)

type scanOptions struct {
	bigKeyBytes   int64
	count         int
	maxPending    int
	commandsOnly  bool // scan_copy=commands: type-specific commands instead of RESTORE
	preconfigured bool // notify_keyspace_events=preconfigured: do not CONFIG GET/SET
	noPause       bool // cutover_pause=none: the source refuses CLIENT PAUSE; the user stopped writes
}

func parseScanOptions(m *ferry.Migration) (scanOptions, error) {
	o := scanOptions{bigKeyBytes: defaultBigKeyBytes, count: defaultScanCount, maxPending: defaultMaxPending}
	x := m.Options.Extra
	num := func(name string, dst *int64) error {
		if v, ok := x[name]; ok && v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return ferry.FieldError("options.extra."+name, "must be a positive integer, got %q", v)
			}
			*dst = n
		}
		return nil
	}
	var count, pending = int64(o.count), int64(o.maxPending)
	if err := num("scan_big_key_bytes", &o.bigKeyBytes); err != nil {
		return o, err
	}
	if err := num("scan_count", &count); err != nil {
		return o, err
	}
	if err := num("scan_max_pending_keys", &pending); err != nil {
		return o, err
	}
	o.count, o.maxPending = int(min(count, 100000)), int(pending)
	switch v := x["scan_copy"]; v {
	case "", "auto":
	case "commands":
		o.commandsOnly = true
	default:
		return o, ferry.FieldError("options.extra.scan_copy", "must be auto (DUMP/RESTORE, type-specific commands when the target refuses the payload) or commands, got %q", v)
	}
	switch v := x["notify_keyspace_events"]; v {
	case "", "auto":
	case "preconfigured":
		o.preconfigured = true
	default:
		return o, ferry.FieldError("options.extra.notify_keyspace_events", "must be auto (ferry sets it with CONFIG SET) or preconfigured (already includes \"KA\" on the source), got %q", v)
	}
	switch v := x["cutover_pause"]; v {
	case "", "write":
	case "none":
		o.noPause = true
	default:
		return o, ferry.FieldError("options.extra.cutover_pause", "must be write (CLIENT PAUSE WRITE on the source at cutover) or none (the source refuses CLIENT PAUSE: stop the application's writes before cutting over), got %q", v)
	}
	return o, nil
}

// checkScan validates a scan-mode job (Engine.Check).
func (e *Engine) checkScan(m *ferry.Migration) error {
	if m.Modes.Schema {
		return ferry.FieldError("modes.schema", "Redis has no schema step")
	}
	if m.Modes.ReverseIncremental {
		return ferry.FieldError("modes.reverseIncremental", "reverse incremental sync is not available for Redis")
	}
	if m.Modes.Incremental && !m.Modes.Full {
		return ferry.FieldError("modes.incremental", "scan-mode incremental sync re-copies the keys changed since its full scan: enable full too")
	}
	if m.Options.Conflict == ferry.ConflictSkip {
		return ferry.FieldError("options.conflict", "conflict policy skip is not built yet for Redis: use fail (empty target) or replace")
	}
	if len(m.Source.Addrs) == 0 || (!m.Source.Cluster && len(m.Source.Addrs) != 1) {
		return ferry.FieldError("source.addrs", "give the one source server (or, for a Redis Cluster source, its seed nodes)")
	}
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	if m.Source.Cluster {
		if _, ok := f.db(0); !ok {
			return ferry.FieldError("options.filters.includeDbs", "a Redis Cluster source has only db 0, which the filters exclude")
		}
	}
	_, err = parseScanOptions(m)
	return err
}

// runScan runs one step of a scan-mode job (Engine.RunStep).
func (e *Engine) runScan(ctx context.Context, m *ferry.Migration, step ferry.StepName, rt ferry.StepRuntime) error {
	switch step {
	case ferry.StepPrecheck:
		return e.scanPrecheck(ctx, m, rt)
	case ferry.StepFull:
		return e.scanFull(ctx, m, rt)
	case ferry.StepIncremental:
		return e.scanIncremental(ctx, m, rt)
	case ferry.StepCutover:
		takeScanSession(e, m.ID).close()
		rt.Message("every key changed before the pause was copied again; " + pauseNote(m))
		return nil
	case ferry.StepVerify:
		return e.verify(ctx, m, rt)
	}
	return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("the redis engine has no step %s", step)}
}

// msgRuntime keeps the last message of a wrapped runtime's step.
type msgRuntime struct {
	ferry.StepRuntime
	msg string
}

func (r *msgRuntime) Message(s string) { r.msg = s; r.StepRuntime.Message(s) }

// Unwrap returns the wrapped runtime (ferry.RecordCutover reaches the
// agent's cutover record through it).
func (r *msgRuntime) Unwrap() ferry.StepRuntime { return r.StepRuntime }

// scanPrecheck runs the common checks, then those of the scan mode: the
// source answers SCAN and DUMP, and keyspace notifications can be had.
func (e *Engine) scanPrecheck(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	mr := &msgRuntime{StepRuntime: rt}
	if err := e.precheck(ctx, m, mr); err != nil {
		return err
	}
	o, err := parseScanOptions(m)
	if err != nil {
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
	if m.Modes.Incremental && !o.preconfigured {
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

// scanCheckpoint is what the scan mode saves.
type scanCheckpoint struct {
	Mode string `json:"mode"` // "scan"
	// Session names the keyspace-notification subscription the progress
	// relies on: a full scan resumes from Node/DB/Cursor only while it is
	// still alive (the keys already copied are covered by it).
	Session string `json:"session,omitempty"`
	// Where the full scan continues: the source master (index into the
	// sorted master addresses; 0 for a standalone source), the db and the
	// SCAN cursor.
	Node     int    `json:"node"`
	DB       int    `json:"db"`
	Cursor   uint64 `json:"cursor"`
	Complete bool   `json:"complete,omitempty"`
	// Reconcile: the scan must end by removing from the target the keys
	// gone from the source (changes were lost before it started).
	Reconcile bool  `json:"reconcile,omitempty"`
	Done      int64 `json:"done,omitempty"`
	Bytes     int64 `json:"bytes,omitempty"`
	Ops       int64 `json:"ops,omitempty"` // incremental: keys copied again
	Rescans   int   `json:"rescans,omitempty"`
	// NotifyOriginal holds, per source node, notify-keyspace-events as it
	// was before ferry changed it; cutover puts it back.
	NotifyOriginal map[string]string `json:"notifyOriginal,omitempty"`
}

func readScanCheckpoint(raw json.RawMessage) (*scanCheckpoint, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c scanCheckpoint
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("bad redis scan checkpoint: %w", err)
	}
	if c.Mode != ModeScan {
		return nil, nil
	}
	return &c, nil
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
	s.cc = client(ep, 0).(*goredis.ClusterClient)
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
		TLSConfig: tlsConfig(s.ep), DialTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, MaxRetries: 2})
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

// ---------------------------------------------------------------------------
// The queue of changed keys.

type qkey struct {
	db  int
	key string
}

type qent struct {
	k  qkey
	at time.Time // when its first pending notification arrived
}

// changeQueue holds the keys named by notifications and not yet copied,
// each once, in the order of their first notification.
type changeQueue struct {
	mu       sync.Mutex
	items    []qent
	head     int
	pending  map[qkey]bool
	max      int
	overflow bool
	received int64
	wake     chan struct{}
}

func newChangeQueue(max int) *changeQueue {
	return &changeQueue{pending: map[qkey]bool{}, max: max, wake: make(chan struct{}, 1)}
}

func (q *changeQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *changeQueue) add(k qkey, at time.Time) {
	q.mu.Lock()
	q.received++
	if q.pending[k] || q.overflow {
		q.mu.Unlock()
		return
	}
	if len(q.pending) >= q.max {
		q.overflow = true
		q.mu.Unlock()
		q.signal()
		return
	}
	q.pending[k] = true
	q.items = append(q.items, qent{k, at})
	q.mu.Unlock()
	q.signal()
}

// take removes up to n keys from the head. A notification arriving after
// this queues the key again.
func (q *changeQueue) take(n int) []qent {
	q.mu.Lock()
	defer q.mu.Unlock()
	end := min(q.head+n, len(q.items))
	out := append([]qent(nil), q.items[q.head:end]...)
	for i := q.head; i < end; i++ {
		delete(q.pending, q.items[i].k)
		q.items[i] = qent{}
	}
	q.head = end
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 4096 && q.head*2 > len(q.items) {
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
	return out
}

// requeue puts back keys taken but not copied (a failed write), in front.
func (q *changeQueue) requeue(es []qent) {
	if len(es) == 0 {
		return
	}
	q.mu.Lock()
	var front []qent
	for _, e := range es {
		if !q.pending[e.k] {
			q.pending[e.k] = true
			front = append(front, e)
		}
	}
	q.items = append(front, q.items[q.head:]...)
	q.head = 0
	q.mu.Unlock()
	q.signal()
}

func (q *changeQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// oldest returns the arrival time of the oldest queued key.
func (q *changeQueue) oldest() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head < len(q.items) {
		return q.items[q.head].at, true
	}
	return time.Time{}, false
}

func (q *changeQueue) overflowed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.overflow
}

// reset forgets everything queued (a rescan is about to cover it).
func (q *changeQueue) reset() {
	q.mu.Lock()
	q.items, q.head, q.pending, q.overflow = nil, 0, map[qkey]bool{}, false
	q.mu.Unlock()
}

// ---------------------------------------------------------------------------
// The keyspace-notification subscription of one source node.

type notifier struct {
	addr string
	l    *link
	q    *changeQueue
	f    *filter

	mu      sync.Mutex
	err     error
	closed  bool
	waiters map[string]chan struct{}
	subs    chan struct{} // one value per confirmed PSUBSCRIBE
	done    chan struct{}
	once    sync.Once
}

var pingSeq atomic.Int64

// startNotifier subscribes to the keyspace notifications of the included
// dbs on addr and returns once the server confirmed the subscription.
func startNotifier(ctx context.Context, ep *ferry.Endpoint, addr string, f *filter, cluster bool, q *changeQueue) (*notifier, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	l, err := dialLink(dctx, ep, addr, 0)
	if err != nil {
		return nil, err
	}
	var patterns []string
	switch {
	case cluster:
		patterns = []string{"__keyspace@0__:*"}
	case f.incDB != nil:
		var dbs []int
		for db := range f.incDB {
			if _, ok := f.db(db); ok {
				dbs = append(dbs, db)
			}
		}
		sort.Ints(dbs)
		for _, db := range dbs {
			patterns = append(patterns, "__keyspace@"+strconv.Itoa(db)+"__:*")
		}
	default:
		patterns = []string{"__keyspace@*__:*"}
	}
	if len(patterns) == 0 {
		patterns = []string{"__keyspace@*__:*"}
	}
	n := &notifier{addr: addr, l: l, q: q, f: f, waiters: map[string]chan struct{}{}, subs: make(chan struct{}, len(patterns)), done: make(chan struct{})}
	go n.read()
	if err := l.send(append([]string{"PSUBSCRIBE"}, patterns...)...); err != nil {
		n.close()
		return nil, fmt.Errorf("PSUBSCRIBE on %s: %w", addr, err)
	}
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	for range patterns {
		select {
		case <-n.subs:
		case <-n.done:
			n.close()
			return nil, fmt.Errorf("PSUBSCRIBE on %s: %w", addr, n.failure())
		case <-t.C:
			n.close()
			return nil, fmt.Errorf("PSUBSCRIBE on %s: no confirmation in 15s", addr)
		case <-ctx.Done():
			n.close()
			return nil, ctx.Err()
		}
	}
	go n.keepalive()
	return n, nil
}

func (n *notifier) read() {
	prefix := []byte("__keyspace@")
	for {
		v, err := n.l.r.ReadValue()
		if err != nil {
			n.fail(fmt.Errorf("keyspace notification subscription on %s lost: %w", n.addr, err))
			return
		}
		if e := v.Err(); e != nil {
			n.fail(fmt.Errorf("keyspace notification subscription on %s: %w", n.addr, e))
			return
		}
		if len(v.Elems) < 2 {
			continue
		}
		switch strings.ToLower(string(v.Elems[0].Str)) {
		case "pmessage":
			if len(v.Elems) < 4 {
				continue
			}
			ch := v.Elems[2].Str
			if len(ch) < len(prefix) || string(ch[:len(prefix)]) != string(prefix) {
				continue
			}
			rest := ch[len(prefix):]
			i := 0
			for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
				i++
			}
			if i == 0 || len(rest) < i+3 || string(rest[i:i+3]) != "__:" {
				continue
			}
			db, _ := strconv.Atoi(string(rest[:i]))
			key := rest[i+3:]
			if _, ok := n.f.db(db); !ok || !n.f.key(key) {
				continue
			}
			n.q.add(qkey{db, string(key)}, time.Now())
		case "psubscribe":
			select {
			case n.subs <- struct{}{}:
			default:
			}
		case "pong":
			tok := string(v.Elems[1].Str)
			n.mu.Lock()
			if ch := n.waiters[tok]; ch != nil {
				close(ch)
				delete(n.waiters, tok)
			}
			n.mu.Unlock()
		}
	}
}

func (n *notifier) fail(err error) {
	n.mu.Lock()
	first := n.err == nil && !n.closed
	if n.err == nil {
		n.err = err
	}
	n.mu.Unlock()
	n.once.Do(func() { close(n.done) })
	n.l.close()
	if first {
		n.q.signal()
	}
}

func (n *notifier) failure() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// lost returns why the subscription ended, or nil while it is alive.
func (n *notifier) lost() error {
	select {
	case <-n.done:
		if err := n.failure(); err != nil {
			return err
		}
		return fmt.Errorf("keyspace notification subscription on %s closed", n.addr)
	default:
		return nil
	}
}

func (n *notifier) close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.fail(errors.New("closed"))
}

// barrier returns once every notification the server sent before it
// answered a PING sent now has been read (and queued).
func (n *notifier) barrier(ctx context.Context, timeout time.Duration) error {
	tok := "ferry-" + strconv.FormatInt(pingSeq.Add(1), 10)
	ch := make(chan struct{})
	n.mu.Lock()
	n.waiters[tok] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.waiters, tok)
		n.mu.Unlock()
	}()
	if err := n.l.send("PING", tok); err != nil {
		n.fail(fmt.Errorf("keyspace notification subscription on %s lost: %w", n.addr, err))
		return n.lost()
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-n.done:
		return n.lost()
	case <-t.C:
		err := fmt.Errorf("keyspace notification subscription on %s: no answer to PING in %s", n.addr, timeout)
		n.fail(err)
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// keepalive PINGs the subscription so a dead connection is noticed.
func (n *notifier) keepalive() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
			if err := n.barrier(context.Background(), 30*time.Second); err != nil {
				return
			}
		}
	}
}

// ---------------------------------------------------------------------------
// The session: the subscriptions of every source node and their queue. It
// outlives a step: the full step hands it to the incremental step, and a
// step retried on the same agent takes it back.

type scanSession struct {
	id    string
	q     *changeQueue
	ns    []*notifier
	nodes []string
	// flushSig is INFO commandstats' FLUSHDB/FLUSHALL/SWAPDB calls per node
	// when the subscription began ("" when unavailable).
	flushSig map[string]string
	// dirty: a rescan was started and has not completed.
	dirty  string
	expire *time.Timer
}

type scanSessionKey struct {
	e  *Engine
	id string
}

var scanSessions = struct {
	sync.Mutex
	m map[scanSessionKey]*scanSession
}{m: map[scanSessionKey]*scanSession{}}

func parkScanSession(e *Engine, id string, s *scanSession) {
	scanSessions.Lock()
	defer scanSessions.Unlock()
	k := scanSessionKey{e, id}
	if old := scanSessions.m[k]; old != nil && old != s {
		old.close()
	}
	scanSessions.m[k] = s
	s.expire = time.AfterFunc(scanSessionTTL, func() {
		scanSessions.Lock()
		if scanSessions.m[k] == s {
			delete(scanSessions.m, k)
			s.close()
		}
		scanSessions.Unlock()
	})
}

func takeScanSession(e *Engine, id string) *scanSession {
	scanSessions.Lock()
	defer scanSessions.Unlock()
	k := scanSessionKey{e, id}
	s := scanSessions.m[k]
	delete(scanSessions.m, k)
	if s != nil && s.expire != nil {
		s.expire.Stop()
	}
	return s
}

func (s *scanSession) close() {
	if s == nil {
		return
	}
	if s.expire != nil {
		s.expire.Stop()
	}
	for _, n := range s.ns {
		n.close()
	}
	s.ns = nil
}

// broken says, without network round trips, why the session no longer
// covers every change (nil: it does).
func (s *scanSession) broken() error {
	if err := s.lostNow(); err != nil {
		return err
	}
	if s.dirty != "" {
		return errors.New("a rescan was interrupted (" + s.dirty + ")")
	}
	return nil
}

// lostNow is broken without the interrupted-rescan mark.
func (s *scanSession) lostNow() error {
	if s == nil {
		return errors.New("no keyspace notification subscription")
	}
	if len(s.ns) == 0 {
		return errors.New("keyspace notification subscription closed")
	}
	for _, n := range s.ns {
		if err := n.lost(); err != nil {
			return err
		}
	}
	if s.q.overflowed() {
		return fmt.Errorf("more than %d distinct changed keys were queued (options.extra.scan_max_pending_keys)", s.q.max)
	}
	return nil
}

// check is broken plus what needs the network: FLUSHDB/FLUSHALL/SWAPDB on
// the source (no notification says what they removed or moved) and, for a
// cluster source, a change of masters.
func (s *scanSession) check(ctx context.Context, src *scanSource) error {
	if err := s.broken(); err != nil {
		return err
	}
	for i, addr := range s.nodes {
		old := s.flushSig[addr]
		if old == "" {
			continue
		}
		sig, err := flushSignature(ctx, src.node(i, 0))
		if err != nil {
			continue // INFO failing now: the next check will tell
		}
		if sig != old {
			return fmt.Errorf("FLUSHDB, FLUSHALL or SWAPDB ran on the source %s (INFO commandstats: %s, was %s)", addr, sig, old)
		}
	}
	if src.cluster {
		ms, err := src.masters(ctx)
		if err == nil && strings.Join(ms, ",") != strings.Join(s.nodes, ",") {
			return fmt.Errorf("the source cluster's masters changed (%s, were %s)", strings.Join(ms, " "), strings.Join(s.nodes, " "))
		}
	}
	return nil
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

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// subscribe (re)starts the session's subscriptions on every master: it
// enables notifications, records the flush counters and subscribes. What
// was queued is dropped: the caller scans everything next.
func (s *scanSession) subscribe(ctx context.Context, sc *scanner) error {
	for _, n := range s.ns {
		n.close()
	}
	s.ns = nil
	if sc.src.cluster {
		ms, err := sc.src.masters(ctx)
		if err != nil {
			return fmt.Errorf("source cluster topology: %w", err)
		}
		sc.src.nodes = ms
	}
	s.nodes = append([]string(nil), sc.src.nodes...)
	s.q.reset()
	s.flushSig = map[string]string{}
	for i, addr := range s.nodes {
		c := sc.src.node(i, 0)
		if !sc.opts.preconfigured {
			orig, changed, err := ensureNotifications(ctx, c, addr)
			if err != nil {
				if sc.m.Modes.Incremental {
					return err
				}
				sc.notes = append(sc.notes, "keyspace notifications unavailable, so keys changed during the scan may be copied in an intermediate state")
				s.close()
				return nil
			}
			if changed {
				if sc.cp.NotifyOriginal == nil {
					sc.cp.NotifyOriginal = map[string]string{}
				}
				if _, ok := sc.cp.NotifyOriginal[addr]; !ok {
					sc.cp.NotifyOriginal[addr] = orig
				}
			}
		}
		sig, _ := flushSignature(ctx, c)
		s.flushSig[addr] = sig
	}
	for _, addr := range s.nodes {
		n, err := startNotifier(ctx, sc.src.ep, addr, sc.f, sc.src.cluster, s.q)
		if err != nil {
			s.close()
			return fmt.Errorf("subscribe to keyspace notifications: %w", err)
		}
		s.ns = append(s.ns, n)
	}
	s.id = newSessionID()
	s.dirty = ""
	return nil
}

// restoreNotifications puts back notify-keyspace-events where ferry changed it.
func (sc *scanner) restoreNotifications(ctx context.Context) {
	for i, addr := range sc.src.nodes {
		orig, ok := sc.cp.NotifyOriginal[addr]
		if !ok {
			continue
		}
		if err := sc.src.node(i, 0).ConfigSet(ctx, "notify-keyspace-events", orig).Err(); err != nil {
			sc.notes = append(sc.notes, fmt.Sprintf("could not restore notify-keyspace-events %q on %s: %v", orig, addr, err))
			continue
		}
		delete(sc.cp.NotifyOriginal, addr)
	}
}

// ---------------------------------------------------------------------------
// Copying keys.

// scanPayloadHook, when set (tests), rewrites each DUMP payload before it is
// written.
var scanPayloadHook func([]byte) []byte

type fallbackKey struct {
	tdb int
	key string
}

type scanner struct {
	e    *Engine
	m    *ferry.Migration
	rt   ferry.StepRuntime
	f    *filter
	opts scanOptions
	src  *scanSource
	w    *writer.Writer
	ap   *rdbApplier
	cp   scanCheckpoint

	srcVer, dstVer string
	absTTL         bool // the source has PEXPIRETIME (7.0+)
	targetRDB      int  // newest DUMP payload version the target reads (0: unknown)
	noMemUsage     bool // MEMORY USAGE refused: estimate sizes by length
	restoreBroken  atomic.Bool
	fbMu           sync.Mutex
	fallbacks      []fallbackKey
	seenDBs        map[int]bool

	unflushed []qent // changes copied but not yet acknowledged by the target
	inflight  time.Time
	notes     []string

	keys, bytes, big, viaCommands, deleted int64
	rescansNow                             int
	total                                  int64 // keys in the included dbs when the pass began
	doneBase, bytesBase                    int64 // counters of earlier runs of the step
	keysThisRun                            int64
}

func (e *Engine) newScanner(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) (*scanner, error) {
	f, err := newFilter(m)
	if err != nil {
		return nil, err
	}
	o, err := parseScanOptions(m)
	if err != nil {
		return nil, err
	}
	sc := &scanner{e: e, m: m, rt: rt, f: f, opts: o, seenDBs: map[int]bool{}}
	if sc.src, err = openScanSource(ctx, &m.Source); err != nil {
		return nil, err
	}
	sc.srcVer, _ = infoField(ctx, sc.src.node(0, 0), "server", "redis_version")
	sc.absTTL = sc.srcVer == "" || !versionLess(sc.srcVer, "7.0.0")
	dst := client(&m.Target, 0)
	sc.dstVer, _ = infoField(ctx, dst, "server", "redis_version")
	dst.Close()
	sc.targetRDB = rdbVersionOf(sc.dstVer)
	sc.w, err = writer.New(ctx, writer.Options{Addrs: m.Target.Addrs, Cluster: m.Target.Cluster,
		Username: m.Target.Username, Password: m.Target.Password, TLS: tlsConfig(&m.Target), Conns: e.WriterConns,
		OnReplyError: sc.onReplyError})
	if err != nil {
		sc.src.close()
		return nil, fmt.Errorf("connect to target: %w", err)
	}
	sc.ap = &rdbApplier{w: sc.w, f: f, replace: true}
	return sc, nil
}

func (sc *scanner) close() {
	if sc.w != nil {
		sc.w.Close()
	}
	sc.src.close()
}

// rdbVersionOf is the newest RDB (and DUMP payload) version a Redis version
// reads, or 0 when not known.
func rdbVersionOf(v string) int {
	if v == "" {
		return 0
	}
	switch {
	case !versionLess(v, "8.0.0"):
		return 0 // newer than this table: let RESTORE tell
	case !versionLess(v, "7.3.0"):
		return 12
	case !versionLess(v, "7.1.0"):
		return 11
	case !versionLess(v, "7.0.0"):
		return 10
	case !versionLess(v, "5.0.0"):
		return 9
	case !versionLess(v, "4.0.0"):
		return 8
	case !versionLess(v, "3.2.0"):
		return 7
	}
	return 6
}

// onReplyError handles the target's error replies: a RESTORE refused for
// its payload version is copied again by type-specific commands.
func (sc *scanner) onReplyError(ce *writer.CommandError) error {
	if ce.Command == "RESTORE" && (strings.Contains(ce.Msg, "payload version or checksum") || strings.Contains(ce.Msg, "Bad data format")) {
		sc.restoreBroken.Store(true)
		sc.fbMu.Lock()
		sc.fallbacks = append(sc.fallbacks, fallbackKey{ce.DB, ce.Key})
		sc.fbMu.Unlock()
		return nil
	}
	return ce
}

func isReplyError(err error) bool {
	var re goredis.Error
	return err != nil && err != goredis.Nil && errors.As(err, &re)
}

// sizes estimates the memory of each key (-1: the key does not exist).
func (sc *scanner) sizes(ctx context.Context, c goredis.UniversalClient, keys []string) ([]int64, error) {
	out := make([]int64, len(keys))
	if !sc.noMemUsage {
		pipe := c.Pipeline()
		cmds := make([]*goredis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.MemoryUsage(ctx, k)
		}
		_, _ = pipe.Exec(ctx)
		refused := false
		for i, cmd := range cmds {
			n, err := cmd.Result()
			switch {
			case err == nil:
				out[i] = n
			case err == goredis.Nil:
				out[i] = -1
			case isReplyError(err) && !strings.Contains(err.Error(), "WRONGTYPE"):
				refused = true
			default:
				return nil, fmt.Errorf("source MEMORY USAGE: %w", err)
			}
			if refused {
				break
			}
		}
		if !refused {
			return out, nil
		}
		sc.noMemUsage = true
		sc.notes = append(sc.notes, "MEMORY USAGE refused by the source: big keys are recognized by their length")
	}
	// No MEMORY USAGE: TYPE, then the length of each.
	pipe := c.Pipeline()
	types := make([]*goredis.StatusCmd, len(keys))
	for i, k := range keys {
		types[i] = pipe.Type(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isReplyError(err) {
		return nil, fmt.Errorf("source TYPE: %w", err)
	}
	pipe = c.Pipeline()
	lens := make([]*goredis.IntCmd, len(keys))
	per := make([]int64, len(keys))
	for i, k := range keys {
		per[i] = 64
		switch types[i].Val() {
		case "string":
			lens[i], per[i] = pipe.StrLen(ctx, k), 1
		case "list":
			lens[i] = pipe.LLen(ctx, k)
		case "set":
			lens[i] = pipe.SCard(ctx, k)
		case "zset":
			lens[i] = pipe.ZCard(ctx, k)
		case "hash":
			lens[i], per[i] = pipe.HLen(ctx, k), 128
		case "stream":
			lens[i], per[i] = pipe.XLen(ctx, k), 128
		case "none":
			out[i] = -1
		default:
			out[i] = 1 // modules: DUMP
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !isReplyError(err) {
		return nil, fmt.Errorf("source length: %w", err)
	}
	for i := range keys {
		if lens[i] != nil {
			out[i] = lens[i].Val()*per[i] + 64
		}
	}
	return out, nil
}

// expireAt returns the pipeline command that reads a key's absolute expiry.
func (sc *scanner) expireCmd(ctx context.Context, p goredis.Pipeliner, key string) *goredis.Cmd {
	if sc.absTTL {
		return p.Do(ctx, "PEXPIRETIME", key)
	}
	return p.Do(ctx, "PTTL", key)
}

// expireOf turns the answer of expireCmd into an absolute unix time in ms
// (rdb.NoExpire: none), and reports whether the key still exists.
func (sc *scanner) expireOf(cmd *goredis.Cmd, now time.Time) (int64, bool, error) {
	n, err := cmd.Int64()
	if err != nil {
		return 0, false, fmt.Errorf("source expiry: %w", err)
	}
	switch {
	case n == -2:
		return 0, false, nil
	case n < 0:
		return rdb.NoExpire, true, nil
	case sc.absTTL:
		return n, true, nil
	}
	return now.UnixMilli() + n, true, nil
}

// copyKeys copies keys of source db (their current state; DEL on the
// target for those gone from the source).
func (sc *scanner) copyKeys(ctx context.Context, db int, keys []string) error {
	tdb, ok := sc.f.db(db)
	if !ok {
		return nil
	}
	sc.seenDBs[db] = true
	if sc.f.keysFiltered() {
		kept := keys[:0:0]
		for _, k := range keys {
			if sc.f.key([]byte(k)) {
				kept = append(kept, k)
			}
		}
		keys = kept
	}
	if len(keys) == 0 {
		return nil
	}
	c := sc.src.reader(db)
	sizes, err := sc.sizes(ctx, c, keys)
	if err != nil {
		return err
	}
	var small, big []string
	var batch int64
	for i, k := range keys {
		switch {
		case sizes[i] < 0:
			if err := sc.del(tdb, k); err != nil {
				return err
			}
		case sizes[i] > sc.opts.bigKeyBytes:
			big = append(big, k)
		default:
			if batch+sizes[i] > dumpBatchBytes && len(small) > 0 {
				if err := sc.dumpKeys(ctx, c, db, tdb, small); err != nil {
					return err
				}
				small, batch = small[:0], 0
			}
			small = append(small, k)
			batch += sizes[i]
		}
	}
	if len(small) > 0 {
		if err := sc.dumpKeys(ctx, c, db, tdb, small); err != nil {
			return err
		}
	}
	for _, k := range big {
		if err := sc.copyBig(ctx, c, db, tdb, k); err != nil {
			return err
		}
	}
	return nil
}

func (sc *scanner) del(tdb int, key string) error {
	sc.deleted++
	return sc.w.Do(tdb, []byte("DEL"), []byte(key))
}

// dumpKeys reads keys with one pipeline of DUMP + expiry and writes them.
func (sc *scanner) dumpKeys(ctx context.Context, c goredis.UniversalClient, db, tdb int, keys []string) error {
	pipe := c.Pipeline()
	dumps := make([]*goredis.StringCmd, len(keys))
	exps := make([]*goredis.Cmd, len(keys))
	for i, k := range keys {
		dumps[i] = pipe.Dump(ctx, k)
		exps[i] = sc.expireCmd(ctx, pipe, k)
	}
	now := time.Now()
	_, _ = pipe.Exec(ctx)
	for i, k := range keys {
		payload, err := dumps[i].Result()
		if err == goredis.Nil {
			if err := sc.del(tdb, k); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("source DUMP %q: %w", k, err)
		}
		exp, exists, err := sc.expireOf(exps[i], now)
		if err != nil {
			return err
		}
		if !exists {
			// Gone between DUMP and its expiry (a notification follows).
			if err := sc.del(tdb, k); err != nil {
				return err
			}
			continue
		}
		if err := sc.writePayload(db, tdb, k, []byte(payload), exp); err != nil {
			return err
		}
	}
	return nil
}

type dumpChunkHandler struct {
	rdb.NopHandler
	ap  *rdbApplier
	db  int
	exp int64
}

func (h *dumpChunkHandler) Chunk(c *rdb.Chunk) error {
	c.DB, c.ExpireAt = h.db, h.exp
	return h.ap.Chunk(c)
}

// writePayload writes one key from its DUMP payload: RESTORE when the
// target reads the payload's version, else type-specific commands.
func (sc *scanner) writePayload(db, tdb int, key string, payload []byte, exp int64) error {
	if scanPayloadHook != nil {
		payload = scanPayloadHook(payload)
	}
	if len(payload) < 11 {
		return fmt.Errorf("source DUMP %q: payload too short", key)
	}
	sc.keys++
	sc.bytes += int64(len(payload))
	ver := int(binary.LittleEndian.Uint16(payload[len(payload)-10:]))
	kind := rdb.Type(payload[0]).Kind()
	common := kind != rdb.KindStream && kind != rdb.KindModule && kind != 0
	restore := !common || !(sc.opts.commandsOnly || sc.restoreBroken.Load() || (sc.targetRDB > 0 && ver > sc.targetRDB))
	if !common && sc.targetRDB > 0 && ver > sc.targetRDB {
		return fmt.Errorf("key %q is a %s: the target (redis %s) cannot RESTORE the source's (redis %s) payload version %d, and ferry moves streams and module values only by RESTORE: use a target at least as new as the source",
			key, kind, sc.dstVer, sc.srcVer, ver)
	}
	if restore {
		ttl := []byte("0")
		if exp != rdb.NoExpire {
			ttl = strconv.AppendInt(nil, exp, 10)
		}
		return sc.w.Do(tdb, []byte("RESTORE"), []byte(key), ttl, payload, []byte("REPLACE"), []byte("ABSTTL"))
	}
	sc.viaCommands++
	h := &dumpChunkHandler{ap: sc.ap, db: db, exp: exp}
	if err := rdb.ParseDump(payload, []byte(key), h, rdb.Options{CaptureRaw: true, MaxRawBytes: maxRestoreBytes}); err != nil {
		return fmt.Errorf("decode the DUMP payload of %q: %w", key, err)
	}
	return nil
}

// copyBig copies one big key in bounded chunks, by type.
func (sc *scanner) copyBig(ctx context.Context, c goredis.UniversalClient, db, tdb int, key string) error {
	typ, err := c.Type(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("source TYPE %q: %w", key, err)
	}
	pipe := c.Pipeline()
	ec := sc.expireCmd(ctx, pipe, key)
	now := time.Now()
	_, _ = pipe.Exec(ctx)
	exp, exists, err := sc.expireOf(ec, now)
	if err != nil {
		return err
	}
	if typ == "none" || !exists {
		return sc.del(tdb, key)
	}
	sc.big++
	sc.keys++
	k := []byte(key)
	ch := &rdb.Chunk{DB: db, Key: k, ExpireAt: exp}
	emit := func(last bool) error {
		ch.Last = last
		err := sc.ap.Chunk(ch)
		ch.First = false
		ch.Seq++
		return err
	}
	ch.First = true
	switch typ {
	case "string":
		ch.Kind = rdb.KindString
		for off := int64(0); ; off += chunkBytes {
			s, err := c.GetRange(ctx, key, off, off+chunkBytes-1).Result()
			if err != nil {
				return fmt.Errorf("source GETRANGE %q: %w", key, err)
			}
			ch.Value = []byte(s)
			sc.bytes += int64(len(s))
			if err := emit(len(s) < chunkBytes); err != nil {
				return err
			}
			if len(s) < chunkBytes {
				return nil
			}
		}
	case "list":
		ch.Kind = rdb.KindList
		for start := int64(0); ; start += chunkElems {
			vs, err := c.LRange(ctx, key, start, start+chunkElems-1).Result()
			if err != nil {
				return fmt.Errorf("source LRANGE %q: %w", key, err)
			}
			ch.Elems = ch.Elems[:0]
			for _, v := range vs {
				ch.Elems = append(ch.Elems, []byte(v))
				sc.bytes += int64(len(v))
			}
			if err := emit(len(vs) < chunkElems); err != nil {
				return err
			}
			if len(vs) < chunkElems {
				return nil
			}
		}
	case "set", "hash", "zset":
		var cursor uint64
		for {
			var vs []string
			var err error
			switch typ {
			case "set":
				ch.Kind = rdb.KindSet
				vs, cursor, err = c.SScan(ctx, key, cursor, "", chunkElems).Result()
			case "hash":
				ch.Kind = rdb.KindHash
				vs, cursor, err = c.HScan(ctx, key, cursor, "", chunkElems).Result()
			case "zset":
				ch.Kind = rdb.KindZSet
				vs, cursor, err = c.ZScan(ctx, key, cursor, "", chunkElems).Result()
			}
			if err != nil {
				return fmt.Errorf("source %sSCAN %q: %w", strings.ToUpper(typ[:1]), key, err)
			}
			ch.Elems, ch.Fields, ch.Members = ch.Elems[:0], ch.Fields[:0], ch.Members[:0]
			for i := 0; i < len(vs); i++ {
				sc.bytes += int64(len(vs[i]))
				switch typ {
				case "set":
					ch.Elems = append(ch.Elems, []byte(vs[i]))
				case "hash":
					if i+1 < len(vs) {
						ch.Fields = append(ch.Fields, rdb.HashField{Field: []byte(vs[i]), Value: []byte(vs[i+1]), ExpireAt: rdb.NoExpire})
						i++
					}
				case "zset":
					if i+1 < len(vs) {
						score, err := strconv.ParseFloat(vs[i+1], 64)
						if err != nil {
							return fmt.Errorf("source ZSCAN %q: score %q: %w", key, vs[i+1], err)
						}
						ch.Members = append(ch.Members, rdb.ZMember{Member: []byte(vs[i]), Score: score})
						i++
					}
				}
			}
			if err := emit(cursor == 0); err != nil {
				return err
			}
			if cursor == 0 {
				return nil
			}
		}
	}
	// Streams and module values: RESTORE (they keep consumer groups, pending
	// entries and module state only that way), bounded.
	sc.big--
	sc.keys--
	if n, err := c.MemoryUsage(ctx, key).Result(); err == nil && n > maxRestoreBytes {
		return fmt.Errorf("key %q is a %s of about %d bytes: streams and module values are moved by DUMP/RESTORE, which is limited to %d bytes", key, typ, n, maxRestoreBytes)
	}
	return sc.dumpKeys(ctx, c, db, tdb, []string{key})
}

// flush waits for the target to acknowledge everything written, then
// copies again by commands the keys whose RESTORE it refused.
func (sc *scanner) flush(ctx context.Context) error {
	for round := 0; ; round++ {
		if err := sc.w.Flush(ctx); err != nil {
			return fmt.Errorf("write to target: %w", err)
		}
		sc.fbMu.Lock()
		fbs := sc.fallbacks
		sc.fallbacks = nil
		sc.fbMu.Unlock()
		if len(fbs) == 0 {
			break
		}
		if round == 0 {
			sc.notes = append(sc.notes, fmt.Sprintf("the target (redis %s) refused the source's (redis %s) DUMP payloads: strings, lists, sets, zsets and hashes are written by type-specific commands", sc.dstVer, sc.srcVer))
		}
		if round > 3 {
			return fmt.Errorf("the target keeps refusing RESTORE of %q", fbs[0].key)
		}
		for _, fb := range fbs {
			if err := sc.copyFallback(ctx, fb); err != nil {
				return err
			}
		}
	}
	sc.unflushed = sc.unflushed[:0]
	sc.inflight = time.Time{}
	return nil
}

// sourceDBsOf lists the source dbs that map to target db tdb.
func (sc *scanner) sourceDBsOf(tdb int) []int {
	set := map[int]bool{}
	for db := range sc.seenDBs {
		set[db] = true
	}
	for db := range sc.f.remap {
		set[db] = true
	}
	if !sc.src.cluster {
		set[tdb] = true
	} else {
		set = map[int]bool{0: true}
	}
	var out []int
	for db := range set {
		if t, ok := sc.f.db(db); ok && t == tdb {
			out = append(out, db)
		}
	}
	sort.Ints(out)
	return out
}

func (sc *scanner) copyFallback(ctx context.Context, fb fallbackKey) error {
	for _, db := range sc.sourceDBsOf(fb.tdb) {
		n, err := sc.src.reader(db).Exists(ctx, fb.key).Result()
		if err != nil {
			return fmt.Errorf("source EXISTS %q: %w", fb.key, err)
		}
		if n > 0 {
			return sc.copyKeys(ctx, db, []string{fb.key})
		}
	}
	return sc.del(fb.tdb, fb.key)
}

// copyFunctions copies the source's function libraries (Redis 7.0+).
func (sc *scanner) copyFunctions(ctx context.Context) error {
	libs, err := sc.src.node(0, 0).FunctionList(ctx, goredis.FunctionListQuery{WithCode: true}).Result()
	if err != nil {
		if isReplyError(err) {
			return nil // no FUNCTION on this source (before 7.0, or refused)
		}
		return fmt.Errorf("source FUNCTION LIST: %w", err)
	}
	for _, l := range libs {
		if err := sc.w.Do(0, []byte("FUNCTION"), []byte("LOAD"), []byte("REPLACE"), []byte(l.Code)); err != nil {
			return fmt.Errorf("target FUNCTION LOAD %s: %w", l.Name, err)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Scanning.

type scanUnit struct{ node, db int }

func (u scanUnit) less(v scanUnit) bool {
	return u.node < v.node || (u.node == v.node && u.db < v.db)
}

// units lists what a pass scans, with the number of keys in it.
func (sc *scanner) units(ctx context.Context) ([]scanUnit, int64, error) {
	var us []scanUnit
	var total int64
	for i := range sc.src.nodes {
		keys, err := keyspace(ctx, sc.src.node(i, 0))
		if err != nil {
			return nil, 0, fmt.Errorf("source INFO keyspace on %s: %w", sc.src.nodes[i], err)
		}
		var dbs []int
		for db, n := range keys {
			if _, ok := sc.f.db(db); ok && (!sc.src.cluster || db == 0) {
				dbs = append(dbs, db)
				total += n
			}
		}
		sort.Ints(dbs)
		for _, db := range dbs {
			us = append(us, scanUnit{i, db})
		}
	}
	return us, total, nil
}

// scanMatch is the SCAN MATCH pattern that pre-filters keys: the include
// prefix when there is exactly one.
func (sc *scanner) scanMatch() string {
	if len(sc.f.inc) != 1 || sc.f.inc[0].re != nil || sc.f.inc[0].prefix == "" {
		return ""
	}
	var b strings.Builder
	for _, r := range sc.f.inc[0].prefix {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String() + "*"
}

var errNotificationsLost = errors.New("keyspace notifications lost")

// pass scans every unit from the checkpoint's position (from the start
// when fromStart), copying every key. between is called after each batch
// with the position to continue from.
func (sc *scanner) pass(ctx context.Context, fromStart bool, between func(pos scanUnit, cursor uint64) error) error {
	us, total, err := sc.units(ctx)
	if err != nil {
		return err
	}
	sc.total = total
	start, cursor0 := scanUnit{}, uint64(0)
	if !fromStart {
		start, cursor0 = scanUnit{sc.cp.Node, sc.cp.DB}, sc.cp.Cursor
	}
	match := sc.scanMatch()
	for _, u := range us {
		if u.less(start) {
			continue
		}
		cursor := uint64(0)
		if u == start {
			cursor = cursor0
		}
		c := sc.src.node(u.node, u.db)
		for {
			keys, next, err := c.Scan(ctx, cursor, match, int64(sc.opts.count)).Result()
			if err != nil {
				return fmt.Errorf("source SCAN db %d on %s: %w", u.db, sc.src.nodes[u.node], err)
			}
			if err := sc.copyKeys(ctx, u.db, keys); err != nil {
				return err
			}
			cursor = next
			pos := u
			if cursor == 0 {
				pos = scanUnit{u.node, u.db + 1}
			}
			if err := between(pos, cursor); err != nil {
				return err
			}
			if cursor == 0 {
				break
			}
		}
	}
	return nil
}

// drain copies up to max queued changes (all when max <= 0).
func (sc *scanner) drain(ctx context.Context, q *changeQueue, max int) (int, error) {
	n := 0
	for max <= 0 || n < max {
		batch := q.take(sc.opts.count)
		if len(batch) == 0 {
			break
		}
		if sc.inflight.IsZero() {
			sc.inflight = batch[0].at
		}
		sc.unflushed = append(sc.unflushed, batch...)
		byDB := map[int][]string{}
		var order []int
		for _, e := range batch {
			if _, ok := byDB[e.k.db]; !ok {
				order = append(order, e.k.db)
			}
			byDB[e.k.db] = append(byDB[e.k.db], e.k.key)
		}
		for _, db := range order {
			if err := sc.copyKeys(ctx, db, byDB[db]); err != nil {
				return n, err
			}
		}
		n += len(batch)
	}
	return n, nil
}

// reconcile removes from the target the keys (of the job's dbs and key
// filters) that no longer exist on the source, after changes were lost.
// It is skipped with conflict policy replace: the target may hold keys of
// its own there.
func (sc *scanner) reconcile(ctx context.Context) error {
	if sc.m.Options.Conflict == ferry.ConflictReplace {
		sc.notes = append(sc.notes, "conflict policy replace: keys deleted from the source while notifications were lost may remain on the target")
		return nil
	}
	if err := sc.flush(ctx); err != nil {
		return err
	}
	dst := client(&sc.m.Target, 0)
	defer dst.Close()
	tkeys, err := keyspace(ctx, dst)
	if err != nil {
		return fmt.Errorf("target INFO keyspace: %w", err)
	}
	var removed int64
	check := func(tdb int, keys []string) error {
		if sc.f.keysFiltered() {
			kept := keys[:0:0]
			for _, k := range keys {
				if sc.f.key([]byte(k)) {
					kept = append(kept, k)
				}
			}
			keys = kept
		}
		dbs := sc.sourceDBsOf(tdb)
		if len(keys) == 0 || len(dbs) == 0 {
			return nil
		}
		found := make([]bool, len(keys))
		for _, db := range dbs {
			pipe := sc.src.reader(db).Pipeline()
			cmds := make([]*goredis.IntCmd, len(keys))
			for i, k := range keys {
				cmds[i] = pipe.Exists(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("source EXISTS: %w", err)
			}
			for i, c := range cmds {
				if c.Val() > 0 {
					found[i] = true
				}
			}
		}
		for i, k := range keys {
			if !found[i] {
				removed++
				if err := sc.del(tdb, k); err != nil {
					return err
				}
			}
		}
		return nil
	}
	scanAll := func(c *goredis.Client, tdb int) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, "", int64(sc.opts.count)).Result()
			if err != nil {
				return fmt.Errorf("target SCAN db %d: %w", tdb, err)
			}
			if err := check(tdb, keys); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := dst.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return scanAll(n, 0) })
	} else {
		var tdbs []int
		for db := range tkeys {
			tdbs = append(tdbs, db)
		}
		sort.Ints(tdbs)
		for _, tdb := range tdbs {
			c := client(&sc.m.Target, tdb).(*goredis.Client)
			err = scanAll(c, tdb)
			c.Close()
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	if err := sc.flush(ctx); err != nil {
		return err
	}
	if removed > 0 {
		sc.notes = append(sc.notes, fmt.Sprintf("%d keys gone from the source removed from the target", removed))
	}
	return nil
}

// ---------------------------------------------------------------------------
// Steps.

func (sc *scanner) saveCheckpoint(ctx context.Context) error {
	sc.cp.Mode = ModeScan
	b, err := json.Marshal(sc.cp)
	if err != nil {
		return err
	}
	return sc.rt.Save(ctx, b)
}

func (sc *scanner) fullProgress(started time.Time, final bool) {
	c := ferry.Counters{Done: sc.cp.Done, Total: sc.total, Bytes: sc.cp.Bytes, Unit: "keys"}
	if c.Total < c.Done {
		c.Total = c.Done
	}
	if el := time.Since(started).Seconds(); el > 0 {
		c.RatePerSec = float64(sc.keysThisRun) / el
	}
	pct := 100.0
	if !final {
		pct = 0
		if c.Total > 0 {
			pct = min(99.9, 100*float64(c.Done)/float64(c.Total))
		}
	}
	sc.rt.Progress(c, pct)
}

// scanFull runs the full step of the scan mode.
func (e *Engine) scanFull(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) (err error) {
	prev, err := readScanCheckpoint(rt.Checkpoint())
	if err != nil {
		return err
	}
	sc, err := e.newScanner(ctx, m, rt)
	if err != nil {
		return err
	}
	defer sc.close()
	sess := takeScanSession(e, m.ID)
	resume := prev != nil && sess != nil && sess.id == prev.Session && sess.broken() == nil
	if prev != nil {
		sc.cp = *prev
	}
	sc.cp.Mode = ModeScan
	switch {
	case resume:
		rt.Message(fmt.Sprintf("scan mode: resuming the full scan at db %d, cursor %d (the keyspace notification subscription of the interrupted run is still alive)", prev.DB, prev.Cursor))
	case prev != nil:
		sess.close()
		sess = nil
		sc.cp = scanCheckpoint{Mode: ModeScan, Reconcile: true, NotifyOriginal: prev.NotifyOriginal, Rescans: prev.Rescans + 1}
		rt.Message("scan mode: an earlier full scan was interrupted and the keyspace notifications of that time are lost, so the scan starts over (keys deleted meanwhile are removed from the target at its end)")
	}
	if sess == nil {
		sess = &scanSession{q: newChangeQueue(sc.opts.maxPending)}
		if err := sess.subscribe(ctx, sc); err != nil {
			return err
		}
	}
	defer func() {
		sess.q.requeue(sc.unflushed)
		if err != nil && sess.broken() == nil {
			parkScanSession(e, m.ID, sess)
		} else if err != nil {
			sess.close()
		}
	}()
	if sess.id != "" {
		sc.cp.Session = sess.id
	}
	if err := sc.copyFunctions(ctx); err != nil {
		return err
	}
	if !resume {
		rt.Message(fmt.Sprintf("scan mode: keyspace notifications subscribed on %d source node(s); scanning every included db and copying keys by DUMP/RESTORE (%s)", len(sc.src.nodes), weakNote))
	}
	started := time.Now()
	lastSave, lastCheck := time.Now(), time.Now()
	between := func(pos scanUnit, cursor uint64) error {
		if sess.q.len() >= 4*sc.opts.count {
			// Keep the queue short: copy what changed meanwhile now.
			if _, err := sc.drain(ctx, sess.q, 0); err != nil {
				return err
			}
		}
		if err := sess.broken(); err != nil && sess.id != "" {
			return fmt.Errorf("%w: %v", errNotificationsLost, err)
		}
		if time.Since(lastCheck) >= 5*time.Second && sess.id != "" {
			lastCheck = time.Now()
			if err := sess.check(ctx, sc.src); err != nil {
				return fmt.Errorf("%w: %v", errNotificationsLost, err)
			}
		}
		if time.Since(lastSave) >= 500*time.Millisecond || (cursor == 0 && time.Since(lastSave) >= 100*time.Millisecond) {
			lastSave = time.Now()
			if err := sc.flush(ctx); err != nil {
				return err
			}
			sc.cp.Node, sc.cp.DB, sc.cp.Cursor = pos.node, pos.db, cursor
			sc.cp.Done, sc.cp.Bytes = sc.doneBase+sc.keys, sc.bytesBase+sc.bytes
			sc.keysThisRun = sc.keys
			if err := sc.saveCheckpoint(ctx); err != nil {
				return err
			}
			sc.fullProgress(started, false)
		}
		return nil
	}
	sc.doneBase, sc.bytesBase = sc.cp.Done, sc.cp.Bytes
	fromStart := !resume
	for !(resume && prev.Complete) {
		err := sc.pass(ctx, fromStart, between)
		if err == nil {
			break
		}
		if !errors.Is(err, errNotificationsLost) {
			return err
		}
		sc.rescansNow++
		if sc.rescansNow > maxRescans {
			return fmt.Errorf("%v; gave up after %d restarts of the scan", err, maxRescans)
		}
		rt.Message(fmt.Sprintf("scan mode: %v: subscribing again and starting the scan over (keys deleted meanwhile are removed from the target at its end)", err))
		if err := sess.subscribe(ctx, sc); err != nil {
			return err
		}
		sc.cp.Session, sc.cp.Reconcile, sc.cp.Rescans = sess.id, true, sc.cp.Rescans+1
		sc.keys, sc.bytes, sc.doneBase, sc.bytesBase = 0, 0, 0, 0
		fromStart = true
	}
	if sc.cp.Reconcile {
		if err := sc.reconcile(ctx); err != nil {
			return err
		}
		sc.cp.Reconcile = false
	}
	if err := sc.flush(ctx); err != nil {
		return err
	}
	if !m.Modes.Incremental {
		// No incremental step: copy what changed during the scan once.
		if sess.id != "" {
			if err := sess.check(ctx, sc.src); err != nil {
				sc.notes = append(sc.notes, "changes during the scan may be missing ("+err.Error()+")")
			}
			if _, err := sc.drain(ctx, sess.q, 0); err != nil {
				return err
			}
			if err := sc.flush(ctx); err != nil {
				return err
			}
		}
		sc.restoreNotifications(ctx)
	}
	sc.cp.Complete = true
	sc.cp.Done, sc.cp.Bytes = sc.doneBase+sc.keys, sc.bytesBase+sc.bytes
	sc.keysThisRun = sc.keys
	if err := sc.saveCheckpoint(ctx); err != nil {
		return err
	}
	sc.fullProgress(started, true)
	msg := fmt.Sprintf("full scan done: %d keys copied (%d big keys in chunks, %d by type-specific commands, %d gone from the source) in %s",
		sc.cp.Done, sc.big, sc.viaCommands, sc.deleted, time.Since(started).Round(time.Millisecond))
	if m.Modes.Incremental {
		msg += fmt.Sprintf("; %d changes queued by keyspace notifications for the incremental step", sess.q.len())
	} else {
		msg += "; without incremental sync this is not a point-in-time copy"
	}
	if len(sc.notes) > 0 {
		msg += "; " + strings.Join(sc.notes, "; ")
	}
	rt.Message(msg + " (" + weakNote + ")")
	if m.Modes.Incremental && sess.id != "" {
		parkScanSession(e, m.ID, sess)
	} else {
		sess.close()
	}
	return nil
}

// oldestPending is the arrival time of the oldest change not yet copied.
func (sc *scanner) oldestPending(q *changeQueue) (time.Time, bool) {
	if !sc.inflight.IsZero() {
		return sc.inflight, true
	}
	return q.oldest()
}

// rescan subscribes again and copies everything, after notifications were
// lost; keys gone from the source are then removed from the target.
func (sc *scanner) rescan(ctx context.Context, sess *scanSession, why error) error {
	sc.rescansNow++
	if sc.rescansNow > maxRescans {
		return fmt.Errorf("keyspace notifications keep being lost (%v): gave up after %d rescans", why, maxRescans)
	}
	sc.cp.Rescans++
	began := time.Now()
	sc.rt.Message(fmt.Sprintf("scan mode: %v; keyspace notifications cannot tell what changed meanwhile, so ferry subscribes again and rescans every db (keys gone from the source are then removed from the target)", why))
	if err := sess.subscribe(ctx, sc); err != nil {
		return err
	}
	sess.dirty = why.Error() // until the rescan completes
	sc.unflushed, sc.inflight = sc.unflushed[:0], began
	lastLag := time.Now()
	err := sc.pass(ctx, true, func(scanUnit, uint64) error {
		if err := sess.lostNow(); err != nil {
			return fmt.Errorf("%w: %v", errNotificationsLost, err)
		}
		if time.Since(lastLag) >= time.Second {
			lastLag = time.Now()
			sc.rt.Lag(time.Since(began), began)
		}
		return nil
	})
	if err == nil {
		err = sc.reconcile(ctx)
	}
	if err == nil {
		err = sc.flush(ctx)
	}
	if errors.Is(err, errNotificationsLost) {
		return sc.rescan(ctx, sess, err)
	}
	if err != nil {
		return err
	}
	sess.dirty = ""
	return nil
}

// scanIncremental runs the incremental step of the scan mode: it copies the
// keys the notifications name until cutover.
func (e *Engine) scanIncremental(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) (err error) {
	cp, err := readScanCheckpoint(rt.Checkpoint())
	if err != nil {
		return err
	}
	if full := m.Step(ferry.StepFull); full != nil {
		if fcp, err := readScanCheckpoint(full.Checkpoint); err == nil && fcp != nil {
			if cp == nil {
				cp = &scanCheckpoint{Rescans: fcp.Rescans}
			}
			if cp.NotifyOriginal == nil {
				cp.NotifyOriginal = fcp.NotifyOriginal
			}
		}
	}
	sc, err := e.newScanner(ctx, m, rt)
	if err != nil {
		return err
	}
	defer sc.close()
	if cp != nil {
		sc.cp = *cp
	}
	sc.cp.Mode, sc.cp.Complete = ModeScan, false
	sess := takeScanSession(e, m.ID)
	if sess == nil {
		sess = &scanSession{q: newChangeQueue(sc.opts.maxPending)}
	}
	defer func() {
		sess.q.requeue(sc.unflushed)
		if err != nil && sess.broken() == nil {
			parkScanSession(e, m.ID, sess)
		} else if err != nil {
			sess.close()
		}
	}()
	if why := sess.broken(); why != nil {
		if len(sess.ns) == 0 {
			why = errors.New("no live keyspace notification subscription (the agent restarted, or the full step ran elsewhere)")
		}
		if err := sc.rescan(ctx, sess, why); err != nil {
			return err
		}
	}
	sc.cp.Session = sess.id
	if err := sc.saveCheckpoint(ctx); err != nil {
		return err
	}
	rt.Message(fmt.Sprintf("scan mode: copying again each key named by a keyspace notification, de-duplicated, in order (%s)", weakNote))
	ops := sc.cp.Ops
	started, startOps := time.Now(), ops
	lastSave := time.Now()
	report := func() {
		lag := time.Duration(0)
		if t, ok := sc.oldestPending(sess.q); ok {
			lag = time.Since(t)
		}
		rt.Lag(lag, time.Now().Add(-lag))
		rate := 0.0
		if el := time.Since(started).Seconds(); el > 0 {
			rate = float64(ops-startOps) / el
		}
		rt.Progress(ferry.Counters{Ops: ops, Done: ops, RatePerSec: rate, Unit: "keys"}, 0)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	cutover := rt.Cutover()
	for {
		if sess.q.len() > 0 {
			n, err := sc.drain(ctx, sess.q, 16*sc.opts.count)
			ops += int64(n)
			if err != nil {
				return err
			}
			if err := sc.flush(ctx); err != nil {
				return err
			}
			sc.cp.Ops = ops
		}
		if sess.q.len() > 0 {
			sess.q.signal() // more is queued: come back at once
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cutover:
			n, err := sc.cutover(ctx, sess)
			ops += int64(n)
			if err != nil {
				return err
			}
			sc.cp.Ops = ops
			report()
			if err := sc.saveCheckpoint(ctx); err != nil {
				return err
			}
			msg := fmt.Sprintf("cutover: source writes paused, every key changed before the pause copied again (%d keys in this step, %d rescans)", ops, sc.cp.Rescans)
			if len(sc.notes) > 0 {
				msg += "; " + strings.Join(sc.notes, "; ")
			}
			rt.Message(msg)
			sess.close()
			return nil
		case <-tick.C:
			if why := sess.check(ctx, sc.src); why != nil {
				if err := sc.rescan(ctx, sess, why); err != nil {
					return err
				}
				sc.cp.Session = sess.id
				rt.Message(fmt.Sprintf("scan mode: rescan done; copying again each key named by a keyspace notification (%s)", weakNote))
			} else {
				sc.rescansNow = 0
			}
			report()
			if time.Since(lastSave) >= 10*time.Second {
				lastSave = time.Now()
				sc.cp.Ops = ops
				if err := sc.saveCheckpoint(ctx); err != nil {
					return err
				}
			}
		case <-sess.q.wake:
		}
	}
}

// cutover pauses the source's writes, waits for every notification sent
// before the pause, and copies what is left.
func (sc *scanner) cutover(ctx context.Context, sess *scanSession) (int, error) {
	for i := 0; i < len(sc.src.nodes) && !sc.opts.noPause; i++ {
		if _, err := pauseSource(ctx, sc.src.node(i, 0), sc.m); err != nil {
			if isReplyError(errors.Unwrap(err)) {
				return 0, &ferry.Error{Code: ferry.EINVALID, Reason: "CUTOVER_PAUSE_REFUSED", Message: err.Error(),
					Advice: "the source refuses CLIENT PAUSE: stop the application's writes to the source yourself and run the job with options.extra.cutover_pause=none"}
			}
			return 0, err
		}
	}
	if !sc.opts.noPause && len(sc.src.nodes) > 0 {
		recordPause(sc.rt, sc.m, time.Now(), "")
	}
	if sc.opts.noPause {
		ferry.RecordCutover(sc.rt, func(c *ferry.CutoverInfo) {
			c.SourceWriteBlock = ferry.WriteBlockNone
			c.Notes = []string{"ferry did not pause the source's writes (cutover_pause=none): changes made on the source after the cutover began may be missing"}
		})
		sc.notes = append(sc.notes, "source writes were not paused by ferry (cutover_pause=none): changes made after the cutover began may be missing")
		sc.rt.Message("cutover: draining the keyspace notifications (cutover_pause=none: the application must have stopped writing)")
	} else {
		sc.rt.Message("cutover: source writes paused; draining the keyspace notifications")
	}
	for _, n := range sess.ns {
		if err := n.barrier(ctx, 30*time.Second); err != nil {
			return 0, fmt.Errorf("cutover: %w", err)
		}
	}
	if why := sess.check(ctx, sc.src); why != nil {
		// With the source paused a rescan converges.
		if err := sc.rescan(ctx, sess, why); err != nil {
			return 0, err
		}
	}
	n, err := sc.drain(ctx, sess.q, 0)
	if err != nil {
		return n, err
	}
	if err := sc.copyFunctions(ctx); err != nil {
		return n, err
	}
	if err := sc.flush(ctx); err != nil {
		return n, err
	}
	sc.restoreNotifications(ctx)
	sc.rt.Lag(0, time.Now())
	recordDrained(sc.rt, "every key changed before the pause")
	return n, nil
}
