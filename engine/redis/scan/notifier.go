package scan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
)

// ---------------------------------------------------------------------------
// The keyspace-notification subscription of one source node.

type notifier struct {
	addr string
	l    *kit.Link
	q    *changeQueue
	f    *kit.Filter

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
func startNotifier(ctx context.Context, ep *ferry.Endpoint, addr string, f *kit.Filter, cluster bool, q *changeQueue) (*notifier, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	l, err := kit.DialLink(dctx, ep, addr, 0)
	if err != nil {
		return nil, err
	}
	var patterns []string
	switch {
	case cluster:
		patterns = []string{"__keyspace@0__:*"}
	case f.IncDB != nil:
		var dbs []int
		for db := range f.IncDB {
			if _, ok := f.DB(db); ok {
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
	if err := l.Send(append([]string{"PSUBSCRIBE"}, patterns...)...); err != nil {
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
		v, err := n.l.R.ReadValue()
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
			if _, ok := n.f.DB(db); !ok || !n.f.Key(key) {
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
	n.l.Close()
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
	if err := n.l.Send("PING", tok); err != nil {
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
