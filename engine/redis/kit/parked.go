package kit

import (
	"log/slog"
	"sync"
	"time"
)

// Deps is what the engine hands each of its modes.
type Deps struct {
	Logger *slog.Logger
	// WriterConns is the number of pipelined connections to the target
	// (0: the writer's default).
	WriterConns int
	// Links holds the live links parked between two steps of a job.
	Links *Parking
}

// Parked is a live link (a replication session, a keyspace subscription)
// that outlives a step: the full step hands it to the incremental step,
// and a step retried on the same agent takes it back.
type Parked interface{ Close() }

// Parking holds an engine's parked links by job id, each for at most its
// TTL: a link no step takes back in time is closed. The zero value is
// ready to use.
type Parking struct {
	mu sync.Mutex
	m  map[string]*parkedLink
}

type parkedLink struct {
	v      Parked
	expire *time.Timer
}

// Park parks v for job id, closing another link parked there.
func (p *Parking) Park(id string, v Parked, ttl time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*parkedLink{}
	}
	if old := p.m[id]; old != nil {
		old.expire.Stop()
		if old.v != v {
			old.v.Close()
		}
	}
	pl := &parkedLink{v: v}
	pl.expire = time.AfterFunc(ttl, func() {
		p.mu.Lock()
		if p.m[id] == pl {
			delete(p.m, id)
			pl.v.Close()
		}
		p.mu.Unlock()
	})
	p.m[id] = pl
}

// Take returns the link parked for job id and forgets it; nil when none is.
func (p *Parking) Take(id string) Parked {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.m[id]
	if pl == nil {
		return nil
	}
	delete(p.m, id)
	pl.expire.Stop()
	return pl.v
}

// Drop closes the link parked for job id, if any.
func (p *Parking) Drop(id string) {
	if v := p.Take(id); v != nil {
		v.Close()
	}
}

// Len is the number of parked links.
func (p *Parking) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
