package httpauth

import (
	"sync"
	"time"
)

// MaxTrackedNonces bounds how many Digest nonces an Authenticator remembers
// the count of. Past it, the nonces issued earliest are forgotten and every
// nonce issued up to then is refused as stale (the client answers a fresh
// challenge), so forgetting a nonce never lets its headers be replayed.
const MaxTrackedNonces = 1 << 16

// nonceCounts remembers, per Digest nonce in use, the highest nonce count
// (nc) accepted. Entries leave when their nonce expires (NonceTTL).
type nonceCounts struct {
	mu    sync.Mutex
	max   int
	seen  map[string]nonceUse
	floor int64 // nonces issued at or before this second are refused
	calls int
}

type nonceUse struct {
	nc     uint64
	issued int64 // Unix seconds
}

func newNonceCounts(max int) *nonceCounts {
	return &nonceCounts{max: max, seen: map[string]nonceUse{}, floor: -1 << 62}
}

// use records a request with nonce (issued at the Unix second issued) and
// count nc. It reports false, recording nothing, when nc is not greater than
// every count accepted before with the nonce, or when the nonce was issued
// before what the bounded memory still covers.
func (c *nonceCounts) use(nonce string, issued int64, nc uint64, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if issued <= c.floor {
		return false
	}
	if u, ok := c.seen[nonce]; ok {
		if nc <= u.nc {
			return false
		}
		c.seen[nonce] = nonceUse{nc: nc, issued: issued}
		return true
	}
	c.calls++
	if c.calls%1024 == 0 || len(c.seen) >= c.max {
		c.expire(now)
	}
	for len(c.seen) >= c.max {
		c.evictOldest()
		if issued <= c.floor {
			return false
		}
	}
	c.seen[nonce] = nonceUse{nc: nc, issued: issued}
	return true
}

// expire drops the entries of nonces past NonceTTL: nonceIssued refuses
// them anyway.
func (c *nonceCounts) expire(now time.Time) {
	cut := now.Add(-NonceTTL - time.Second).Unix()
	for n, u := range c.seen {
		if u.issued < cut {
			delete(c.seen, n)
		}
	}
}

// evictOldest forgets every nonce issued in the earliest second tracked and
// raises the floor to it.
func (c *nonceCounts) evictOldest() {
	oldest := int64(1<<63 - 1)
	for _, u := range c.seen {
		oldest = min(oldest, u.issued)
	}
	for n, u := range c.seen {
		if u.issued <= oldest {
			delete(c.seen, n)
		}
	}
	c.floor = max(c.floor, oldest)
}

func (c *nonceCounts) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
