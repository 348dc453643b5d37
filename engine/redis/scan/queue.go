package scan

import (
	"sync"
	"time"
)

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
