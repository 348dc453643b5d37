package psync

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
	"github.com/ferrymigrate/ferry/engine/redis/resp"
)

// txApplier applies the replication command stream to a standalone target
// exactly once, even across a crash of the agent: commands go in pipelined
// MULTI ... EXEC batches on one connection, and each batch ends by setting
// an offset marker key to the source offset of its last command. The batch
// and its marker commit together, so after a kill the marker says exactly
// how far the target got, and the stream resumes from there (a partial
// resync from the marker, not from the older checkpoint, so no command is
// applied twice: INCR, APPEND, LPUSH are not idempotent).
//
// The marker key lives in the target's db 0 while the incremental step runs
// (markerKey), is excluded from verification and is deleted at cutover.
type txApplier struct {
	conn   net.Conn
	bw     *bufio.Writer
	rd     *resp.Reader
	marker []byte
	replID string

	buf     []byte
	queued  int   // commands in the open batch (SELECTs included)
	lastOff int64 // source offset of the last command in the open batch
	curDB   int
	open    bool
	sentOff int64

	inflight chan txBatch
	applied  atomic.Int64
	mu       sync.Mutex
	err      error
	cond     *sync.Cond
	done     chan struct{}
}

type txBatch struct {
	queued int
	off    int64
}

func markerKey(jobID string) string { return kit.MarkerPrefix + jobID }

const (
	txMaxCommands = 512
	txMaxBytes    = 1 << 20
	txInflight    = 32
)

func dialTarget(ctx context.Context, ep *ferry.Endpoint) (net.Conn, *resp.Reader, *bufio.Writer, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if tc := kit.TLSConfig(ep); tc != nil {
		td := tls.Dialer{NetDialer: &d, Config: tc}
		conn, err = td.DialContext(ctx, "tcp", ep.Addrs[0])
	} else {
		conn, err = d.DialContext(ctx, "tcp", ep.Addrs[0])
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to target %s: %w", ep.Addrs[0], err)
	}
	rd, bw := resp.NewReaderSize(conn, 256<<10), bufio.NewWriterSize(conn, 256<<10)
	if ep.Password != "" {
		args := []string{"AUTH", ep.Password}
		if ep.Username != "" {
			args = []string{"AUTH", ep.Username, ep.Password}
		}
		if _, err := bw.Write(resp.AppendCommandString(nil, args...)); err == nil {
			err = bw.Flush()
		}
		v, err2 := rd.ReadValue()
		if err == nil {
			err = err2
		}
		if err == nil {
			err = v.Err()
		}
		if err != nil && !strings.Contains(err.Error(), "without any password configured") {
			conn.Close()
			return nil, nil, nil, fmt.Errorf("target %s: AUTH: %w", ep.Addrs[0], err)
		}
	}
	return conn, rd, bw, nil
}

// readMarker returns the offset the target's marker records for replID,
// or -1 when there is none (or it belongs to another replication id).
func readMarker(ctx context.Context, ep *ferry.Endpoint, jobID, replID string) (int64, error) {
	c := kit.Client(ep, 0)
	defer c.Close()
	v, err := c.Get(ctx, markerKey(jobID)).Result()
	if err != nil {
		if err.Error() == "redis: nil" {
			return -1, nil
		}
		return -1, fmt.Errorf("read offset marker on the target: %w", err)
	}
	id, off, ok := strings.Cut(v, ":")
	if !ok || id != replID {
		return -1, nil
	}
	n, err := strconv.ParseInt(off, 10, 64)
	if err != nil {
		return -1, fmt.Errorf("bad offset marker %q on the target", v)
	}
	return n, nil
}

func deleteMarker(ctx context.Context, ep *ferry.Endpoint, jobID string) error {
	c := kit.Client(ep, 0)
	defer c.Close()
	return c.Del(ctx, markerKey(jobID)).Err()
}

func newTxApplier(ctx context.Context, ep *ferry.Endpoint, jobID, replID string, applied int64) (*txApplier, error) {
	conn, rd, bw, err := dialTarget(ctx, ep)
	if err != nil {
		return nil, err
	}
	a := &txApplier{conn: conn, bw: bw, rd: rd, marker: []byte(markerKey(jobID)), replID: replID,
		inflight: make(chan txBatch, txInflight), done: make(chan struct{}), curDB: -1, sentOff: applied}
	a.cond = sync.NewCond(&a.mu)
	a.applied.Store(applied)
	go a.readReplies()
	return a, nil
}

// Do queues one command of the stream with the source offset after it.
// inTx tells whether a source transaction is open (a batch is not cut then).
func (a *txApplier) Do(db int, off int64, args [][]byte, inTx bool) error {
	if err := a.failed(); err != nil {
		return err
	}
	if len(args) > 0 && (strings.EqualFold(string(args[0]), "MULTI") || strings.EqualFold(string(args[0]), "EXEC") || strings.EqualFold(string(args[0]), "DISCARD")) {
		// Each batch is a transaction already; the source's block stays
		// inside one batch (inTx keeps it from being cut).
		a.Advance(off)
		if !inTx && (a.queued >= txMaxCommands || len(a.buf) >= txMaxBytes) {
			return a.send()
		}
		return nil
	}
	if !a.open {
		a.buf = resp.AppendCommandString(a.buf[:0], "MULTI")
		a.open, a.queued = true, 0
	}
	if db != a.curDB {
		a.buf = resp.AppendCommandString(a.buf, "SELECT", strconv.Itoa(db))
		a.curDB = db
		a.queued++
	}
	a.buf = resp.AppendCommand(a.buf, args...)
	a.queued++
	a.lastOff = off
	if !inTx && (a.queued >= txMaxCommands || len(a.buf) >= txMaxBytes) {
		return a.send()
	}
	return nil
}

// Advance records that the stream moved to off without a command to apply
// (PING, filtered commands): the next batch's marker covers it.
func (a *txApplier) Advance(off int64) { a.lastOff = max(a.lastOff, off) }

// send closes the open batch with the marker and writes it.
func (a *txApplier) send() error {
	if !a.open {
		if a.lastOff <= a.sentOff {
			return nil
		}
		a.buf = resp.AppendCommandString(a.buf[:0], "MULTI")
		a.open, a.queued = true, 0
	}
	if a.curDB != 0 {
		a.buf = resp.AppendCommandString(a.buf, "SELECT", "0")
		a.curDB = 0
		a.queued++
	}
	a.buf = resp.AppendCommand(a.buf, []byte("SET"), a.marker, []byte(a.replID+":"+strconv.FormatInt(a.lastOff, 10)))
	a.queued++
	a.buf = resp.AppendCommandString(a.buf, "EXEC")
	b := txBatch{queued: a.queued, off: a.lastOff}
	a.open = false
	select {
	case a.inflight <- b:
	case <-a.done:
		return a.failed()
	}
	if _, err := a.bw.Write(a.buf); err != nil {
		a.fail(fmt.Errorf("write to target: %w", err))
		return a.failed()
	}
	if err := a.bw.Flush(); err != nil {
		a.fail(fmt.Errorf("write to target: %w", err))
		return a.failed()
	}
	a.sentOff = a.lastOff
	return nil
}

// Flush sends the open batch and waits until the target has committed
// everything sent; it returns the offset the target now holds.
func (a *txApplier) Flush(ctx context.Context) (int64, error) {
	if err := a.send(); err != nil {
		return a.applied.Load(), err
	}
	want := a.sentOff
	stop := context.AfterFunc(ctx, func() { a.mu.Lock(); a.cond.Broadcast(); a.mu.Unlock() })
	defer stop()
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.applied.Load() < want && a.err == nil && ctx.Err() == nil {
		a.cond.Wait()
	}
	if a.err != nil {
		return a.applied.Load(), a.err
	}
	return a.applied.Load(), ctx.Err()
}

func (a *txApplier) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *txApplier) fail(err error) {
	a.mu.Lock()
	if a.err == nil {
		a.err = err
		close(a.done)
	}
	a.cond.Broadcast()
	a.mu.Unlock()
}

func (a *txApplier) Close() error {
	a.fail(errors.New("applier closed"))
	return a.conn.Close()
}

// readReplies checks each batch: +OK, one +QUEUED per command, and the EXEC
// array, whose error elements fail the applier with the command named.
func (a *txApplier) readReplies() {
	for {
		var b txBatch
		select {
		case b = <-a.inflight:
		case <-a.done:
			return
		}
		if err := a.readBatch(b); err != nil {
			a.fail(err)
			return
		}
		a.applied.Store(b.off)
		a.mu.Lock()
		a.cond.Broadcast()
		a.mu.Unlock()
	}
}

func (a *txApplier) readBatch(b txBatch) error {
	v, err := a.rd.ReadValue()
	if err != nil {
		return fmt.Errorf("read from target: %w", err)
	}
	if err := v.Err(); err != nil {
		return fmt.Errorf("target refused MULTI: %w", err)
	}
	var queueErr error
	for i := 0; i < b.queued; i++ {
		v, err := a.rd.ReadValue()
		if err != nil {
			return fmt.Errorf("read from target: %w", err)
		}
		if e := v.Err(); e != nil && queueErr == nil {
			queueErr = e
		}
	}
	v, err = a.rd.ReadValue()
	if err != nil {
		return fmt.Errorf("read from target: %w", err)
	}
	if queueErr != nil {
		return fmt.Errorf("target refused a command of the stream (batch ending at source offset %d): %w", b.off, queueErr)
	}
	if err := v.Err(); err != nil {
		return fmt.Errorf("target refused a batch ending at source offset %d: %w", b.off, err)
	}
	for i, e := range v.Elems {
		if err := e.Err(); err != nil {
			return fmt.Errorf("target error on command %d of the batch ending at source offset %d: %w", i+1, b.off, err)
		}
	}
	return nil
}
