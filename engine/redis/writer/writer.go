// Package writer applies a stream of Redis commands (rebuilt from an RDB or
// read from a replication command stream) to a target Redis, pipelined over
// several connections, keeping the order of the commands of each key.
//
// Standalone targets: each key is routed by its cluster hash slot (so keys
// sharing a {hashtag} share a connection) to one of Conns connections.
// Commands are encoded as RESP straight into per-connection batches; a
// writer goroutine sends each batch with one write and a reader goroutine
// reads its replies with a minimal reply reader. Each connection tracks the
// db it has selected and emits SELECT when a command's db differs.
//
// Commands whose keys live on several connections (MSET, RENAME, SMOVE,
// SUNIONSTORE, multi-key DEL, ...) are partial barriers: the connections
// that own their keys are drained, the command runs on one of them and is
// acknowledged before the next command is accepted. Commands with no key,
// whose keys cannot be determined, or that act on the whole server
// (FLUSHDB, FLUSHALL, SWAPDB, FUNCTION, SCRIPT, EVAL*, FCALL*, PUBLISH, ...)
// are global barriers: every connection is drained first. Key positions come
// from the target's COMMAND reply (key specs, else first/last/step), read
// once at start. MULTI ... EXEC blocks are buffered and sent as one block on
// one connection, so they stay atomic.
//
// Redis Cluster targets: commands are routed by slot to Conns workers, each
// sending pipelines through a go-redis ClusterClient, which follows MOVED and
// ASK and reloads the topology; commands that fail with a transient cluster
// error (failover, CLUSTERDOWN, TRYAGAIN, LOADING, connection reset) are
// retried until Options.RetryTimeout. Multi-key commands whose keys span
// several slots are split when that keeps their meaning (MSET, DEL, UNLINK,
// TOUCH) and rejected otherwise with an error naming the command.
//
// Do and Flush must be called from one goroutine (the stream being applied is
// sequential); Applied, Skipped, Err and Close may be called from any (Close
// aborts a Do or Flush that is waiting).
// Do copies what it needs: the caller may reuse the argument slices after it
// returns. Bounded memory: Do blocks while the batches queued and in flight
// hold more than Options.MaxQueueBytes.
//
// Do ignores SELECT, PING and REPLCONF (the db is given with each command).
//
// Failures: an error reply fails the writer (unless Options.OnReplyError
// skips it); so does a connection error on a standalone target: there is no
// silent reconnect, since the commands in flight cannot be known to have been
// applied or not; the caller resumes from its checkpoint. On a cluster
// target, transient errors are retried (at-least-once: a command retried
// after a lost reply may apply twice, which the idempotent commands of a
// full sync tolerate).
package writer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Writer.
type Options struct {
	// Addrs are the target's addresses (host:port). Standalone: the first
	// one is used. Cluster: seed nodes.
	Addrs    []string
	Cluster  bool
	Username string
	Password string
	TLS      *tls.Config
	// Conns is the number of pipelined connections (standalone) or slot
	// workers (cluster). Default 8.
	Conns int
	// Batch is the number of commands per pipeline flush. Default 256.
	Batch int
	// BatchBytes flushes a batch early once its encoding reaches this many
	// bytes. Default 256 KiB.
	BatchBytes int
	// MaxQueueBytes bounds the bytes of commands queued and in flight; Do
	// blocks beyond it. Default 64 MiB. A single command larger than the
	// bound is still sent (alone).
	MaxQueueBytes int64
	// Linger is how long a partly filled batch may wait for more commands
	// before it is sent anyway. Default 2ms.
	Linger time.Duration
	// DialTimeout for each connection. Default 10s.
	DialTimeout time.Duration
	// RetryTimeout (cluster): how long transient cluster errors are retried.
	// Default 60s.
	RetryTimeout time.Duration
	// OnReplyError, if set, is called with every error reply. Returning nil
	// skips the command (counted by Skipped); returning an error fails the
	// writer with it. When nil, any error reply fails the writer.
	OnReplyError func(*CommandError) error
}

func (o *Options) defaults() {
	if o.Conns <= 0 {
		o.Conns = 8
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 256 << 10
	}
	if o.MaxQueueBytes <= 0 {
		o.MaxQueueBytes = 64 << 20
	}
	if o.Linger <= 0 {
		o.Linger = 2 * time.Millisecond
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.RetryTimeout <= 0 {
		o.RetryTimeout = 60 * time.Second
	}
}

// CommandError is an error reply of the target to one command.
type CommandError struct {
	Command string // upper-case command name (with sub-command, e.g. "XGROUP CREATE")
	Key     string // first key, if any
	DB      int    // -1 when unknown
	Msg     string // the error reply, e.g. "WRONGTYPE Operation against a key ..."
}

func (e *CommandError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("redis writer: %s %q: %s", e.Command, e.Key, e.Msg)
	}
	return fmt.Sprintf("redis writer: %s: %s", e.Command, e.Msg)
}

// ErrClosed is returned by Do and Flush after Close.
var ErrClosed = errors.New("redis writer: closed")

// Writer applies commands to a target. See the package documentation.
type Writer struct {
	opts  Options
	table *cmdTable

	sa *standalone
	cl *cluster

	tx *txBlock // open MULTI block

	applied atomic.Int64
	skipped atomic.Int64

	errMu   sync.Mutex
	err     error
	dead    chan struct{} // closed on first error or Close
	closing sync.Once
	killed  sync.Once

	lastCI *cmdInfo
}

type txCmd struct {
	db   int
	args [][]byte
}

type txBlock struct {
	cmds  []txCmd
	bytes int
}

// New connects to the target and reads its command table.
func New(ctx context.Context, opts Options) (*Writer, error) {
	opts.defaults()
	if len(opts.Addrs) == 0 {
		return nil, errors.New("redis writer: no address")
	}
	w := &Writer{opts: opts, dead: make(chan struct{})}
	var err error
	if opts.Cluster {
		w.cl, err = newCluster(ctx, w)
	} else {
		w.sa, err = newStandalone(ctx, w)
	}
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Applied returns the number of commands acknowledged by the target
// (including skipped ones, excluding SELECTs the writer adds itself).
func (w *Writer) Applied() int64 { return w.applied.Load() }

// Skipped returns the number of commands whose error reply OnReplyError
// chose to skip.
func (w *Writer) Skipped() int64 { return w.skipped.Load() }

// Err returns the error that failed the writer, if any.
func (w *Writer) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// fail records the first error and wakes everything that waits.
func (w *Writer) fail(err error) {
	w.errMu.Lock()
	first := w.err == nil
	if first {
		w.err = err
	}
	w.errMu.Unlock()
	if first {
		w.kill()
		if w.sa != nil {
			w.sa.broken()
		}
		if w.cl != nil {
			w.cl.broken()
		}
	}
}

// replyErr handles an error reply: skip it or fail the writer.
func (w *Writer) replyErr(ce *CommandError) {
	if w.opts.OnReplyError != nil {
		if err := w.opts.OnReplyError(ce); err == nil {
			w.skipped.Add(1)
			return
		} else {
			w.fail(err)
			return
		}
	}
	w.fail(ce)
}

// lowerName lower-cases a command name into buf without allocating.
func lowerName(buf *[32]byte, b []byte) []byte {
	if len(b) > len(buf) {
		b = b[:len(buf)]
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(b)]
}

// Do enqueues one command for db. It returns an error only if the writer has
// already failed (or is closed); errors of this command are reported by a
// later Do or Flush. A barrier command (see the package documentation) is
// acknowledged before Do returns, so Do may report its own error reply.
// Within MULTI ... EXEC, commands are buffered (copied) until EXEC.
func (w *Writer) Do(db int, args ...[]byte) error {
	select {
	case <-w.dead:
		if err := w.Err(); err != nil {
			return err
		}
		return ErrClosed
	default:
	}
	if len(args) == 0 {
		return errors.New("redis writer: empty command")
	}
	var nb [32]byte
	ln := lowerName(&nb, args[0])
	switch string(ln) {
	case "select", "ping", "replconf":
		return nil
	case "multi":
		if w.tx != nil {
			return errors.New("redis writer: nested MULTI")
		}
		w.tx = &txBlock{}
		return nil
	case "discard":
		w.tx = nil
		return nil
	case "exec":
		if w.tx == nil {
			return errors.New("redis writer: EXEC without MULTI")
		}
		tx := w.tx
		w.tx = nil
		if len(tx.cmds) == 0 {
			return nil
		}
		if w.cl != nil {
			return w.cl.exec(tx.cmds)
		}
		return w.sa.exec(tx.cmds)
	}
	if w.tx != nil {
		// Copy the arguments into one allocation.
		n := 0
		for _, a := range args {
			n += len(a)
		}
		mem := make([]byte, 0, n)
		cp := make([][]byte, len(args))
		for i, a := range args {
			mem = append(mem, a...)
			cp[i] = mem[len(mem)-len(a):]
		}
		w.tx.cmds = append(w.tx.cmds, txCmd{db: db, args: cp})
		w.tx.bytes += n
		return nil
	}
	var ci *cmdInfo
	if w.lastCI != nil && string(ln) == w.lastCI.name {
		ci = w.lastCI // the same command as the last one (the common case)
	} else {
		ci = w.table.lookup(string(ln), args)
		if ci != nil && ci.subcommands == nil && ci.name == string(ln) {
			w.lastCI = ci
		}
	}
	if w.cl != nil {
		return w.cl.do(db, string(ln), ci, args)
	}
	return w.sa.do(db, string(ln), ci, args)
}

// Flush waits until every command enqueued before it has been acknowledged
// by the target, and returns the first error (an error reply names the
// command and key), or ctx's error.
func (w *Writer) Flush(ctx context.Context) error {
	if err := w.Err(); err != nil {
		return err
	}
	select {
	case <-w.dead:
		return ErrClosed
	default:
	}
	var err error
	if w.cl != nil {
		err = w.cl.flush(ctx)
	} else {
		err = w.sa.flush(ctx)
	}
	if e := w.Err(); e != nil {
		return e
	}
	return err
}

// Close releases the connections. Commands not yet flushed are dropped:
// call Flush first.
func (w *Writer) Close() error {
	w.closing.Do(func() {
		w.errMu.Lock()
		alreadyDead := w.err != nil
		w.errMu.Unlock()
		if !alreadyDead {
			w.kill() // closed, without recording an error
		}
		if w.sa != nil {
			w.sa.close()
		}
		if w.cl != nil {
			w.cl.close()
		}
	})
	return nil
}

// describe builds a CommandError for args.
func (w *Writer) describe(db int, args [][]byte, msg string) *CommandError {
	ce := &CommandError{DB: db, Msg: msg}
	if len(args) == 0 {
		ce.Command = "?"
		return ce
	}
	ce.Command = upper(string(args[0]))
	var nb [32]byte
	ln := string(lowerName(&nb, args[0]))
	ci := w.table.lookup(ln, args)
	if ci != nil && w.table.cmds[ln] != nil && w.table.cmds[ln].subcommands != nil && len(args) > 1 {
		ce.Command += " " + upper(string(args[1]))
	}
	if ci != nil {
		if pos, class := ci.keys(args, nil); class == keysKnown && len(pos) > 0 {
			ce.Key = string(args[pos[0]])
		}
	}
	return ce
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

// budget bounds the bytes queued and in flight.
type budget struct {
	mu      sync.Mutex
	cond    *sync.Cond
	used    int64
	max     int64
	high    int64
	waiters int
	off     bool
}

func newBudget(max int64) *budget {
	b := &budget{max: max}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *budget) acquire(n int64) {
	b.mu.Lock()
	for b.used > 0 && b.used+n > b.max && !b.off {
		b.waiters++
		b.cond.Wait()
		b.waiters--
	}
	b.used += n
	if b.used > b.high {
		b.high = b.used
	}
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.waiters > 0 {
		b.cond.Broadcast()
	}
	b.mu.Unlock()
}

func (b *budget) disable() {
	b.mu.Lock()
	b.off = true
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *budget) highWater() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.high
}

func (w *Writer) kill() { w.killed.Do(func() { close(w.dead) }) }
