package mysql

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// Worker limits: one target transaction takes queued source transactions
// until it holds this many row changes or transactions.
const (
	groupMaxOps  = 4000
	groupMaxTxns = 500
	workerQueue  = 256 // source transactions a worker may hold
)

// watermark is the low watermark of the applied stream: every source
// transaction at or below pos is applied.
type watermark struct {
	pos       pos
	eventTime int64
	ops       int64
}

// pool is the apply workers of one run of the incremental step.
type pool struct {
	workers []*worker
	done    chan doneMsg
	wm      atomic.Pointer[watermark]
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

type worker struct {
	n       int
	in      chan *txn
	ap      *applier
	mark    watermark    // what the worker's marker row records
	groups  atomic.Int64 // target transactions committed
	retries atomic.Int64 // groups applied again after a deadlock
}

// doneMsg reports a committed group (or the error that stopped a worker).
type doneMsg struct {
	worker int
	txns   []*txn
	err    error
}

// startPool starts n workers, each applying through its own connection
// with newAp(n).
func startPool(ctx context.Context, n int, newAp func(n int) *applier) *pool {
	ctx, cancel := context.WithCancel(ctx)
	p := &pool{done: make(chan doneMsg, n*(workerQueue+1)), cancel: cancel}
	p.wm.Store(&watermark{})
	for i := 0; i < n; i++ {
		w := &worker{n: i, in: make(chan *txn, workerQueue), ap: newAp(i)}
		p.workers = append(p.workers, w)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.run(ctx, w)
		}()
	}
	return p
}

// stop ends the workers (an open target transaction rolls back).
func (p *pool) stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *pool) run(ctx context.Context, w *worker) {
	defer w.ap.rollback()
	var group []*txn
	for {
		group = group[:0]
		select {
		case <-ctx.Done():
			return
		case t := <-w.in:
			group = append(group, t)
		}
		ops := group[0].ops
		barrier := group[0].barrier
	more:
		for !barrier && len(group) < groupMaxTxns && ops < groupMaxOps {
			select {
			case t := <-w.in:
				group = append(group, t)
				ops += t.ops
				if t.barrier {
					break more
				}
			default:
				break more
			}
		}
		err := p.apply(ctx, w, group)
		out := append([]*txn(nil), group...)
		select {
		case p.done <- doneMsg{worker: w.n, txns: out, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// apply writes a group of source transactions in one target transaction
// that records the low watermark (or, for a barrier, which runs alone, its
// own end).
func (p *pool) apply(ctx context.Context, w *worker, group []*txn) error {
	for attempt := 1; ; attempt++ {
		err := p.applyOnce(ctx, w, group)
		if err == nil || !retryable(err) || attempt >= 20 || ctx.Err() != nil {
			if err == nil {
				w.groups.Add(1)
			}
			return err
		}
		// Two workers' statements can deadlock on InnoDB's gap locks even
		// though they change different keys: the group is rolled back and
		// applied again (its source transactions are still in order).
		w.retries.Add(1)
		select {
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// retryable reports a deadlock or lock wait timeout.
func retryable(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

func (p *pool) applyOnce(ctx context.Context, w *worker, group []*txn) error {
	for _, t := range group {
		for i := range t.changes {
			if err := w.ap.apply(ctx, &t.changes[i]); err != nil {
				w.ap.rollback()
				return err
			}
		}
	}
	mark := *p.wm.Load()
	if last := group[len(group)-1]; last.barrier {
		mark = watermark{pos: last.end, eventTime: last.eventTime, ops: mark.ops + last.ops}
	}
	// The worker's row never moves back: after a barrier's commit (its own
	// end), the reader may not have taken the completion into the shared
	// watermark yet when this worker commits its next group.
	if !w.mark.pos.IsZero() && w.mark.pos.compare(mark.pos) > 0 {
		mark = w.mark
	}
	if err := w.ap.commit(ctx, mark.pos, mark.eventTime, mark.ops); err != nil {
		w.ap.rollback()
		return err
	}
	w.mark = mark
	return nil
}

// tracker follows the stream's transactions in order and computes the low
// watermark as they complete.
type tracker struct {
	q    []*txn // in stream order, not yet below the watermark
	head int
	seq  uint64
}

// push appends t (already done when it needs no apply).
func (k *tracker) push(t *txn) {
	k.seq++
	t.seq = k.seq
	k.q = append(k.q, t)
}

// advance pops the done transactions at the front and returns them.
func (k *tracker) advance(f func(t *txn)) {
	for k.head < len(k.q) && k.q[k.head].done {
		f(k.q[k.head])
		k.q[k.head] = nil
		k.head++
	}
	if k.head > 1024 && k.head*2 > len(k.q) {
		k.q = append(k.q[:0], k.q[k.head:]...)
		k.head = 0
	}
}

// pending counts the transactions not yet below the watermark.
func (k *tracker) pending() int { return len(k.q) - k.head }
