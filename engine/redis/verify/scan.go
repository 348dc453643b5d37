package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// scanKeys calls fn with batches of the keys of c (every master of a
// cluster).
func scanKeys(ctx context.Context, c redis.UniversalClient, count int, fn func([]string) error) error {
	scan := func(ctx context.Context, n redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := n.Scan(ctx, cursor, "", int64(count)).Result()
			if err != nil {
				return fmt.Errorf("verify: SCAN: %w", err)
			}
			if len(keys) > 0 {
				if err := fn(keys); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		// Masters are scanned concurrently: fn serializes itself.
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return scan(ctx, m)
		})
	}
	return scan(ctx, c)
}

func (v *verifier) filter(keys []string) []string {
	if v.opts.KeyFilter == nil {
		return keys
	}
	out := keys[:0]
	for _, k := range keys {
		if v.opts.KeyFilter([]byte(k)) {
			out = append(out, k)
		}
	}
	return out
}

// pool runs jobs on Options.Workers goroutines; the first error stops it.
type pool struct {
	jobs chan func() error
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
}

func newPool(n int) *pool {
	p := &pool{jobs: make(chan func() error, n)}
	for i := 0; i < n; i++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				if p.failed() != nil {
					continue
				}
				if err := j(); err != nil {
					p.mu.Lock()
					if p.err == nil {
						p.err = err
					}
					p.mu.Unlock()
				}
			}
		}()
	}
	return p
}

func (p *pool) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// submit queues a job; it returns the pool's first error, if any.
func (p *pool) submit(j func() error) error {
	if err := p.failed(); err != nil {
		return err
	}
	p.jobs <- j
	return nil
}

func (p *pool) wait() error {
	close(p.jobs)
	p.wg.Wait()
	return p.err
}

func (v *verifier) scanDB(ctx context.Context, db int) error {
	src, closeSrc, err := forDB(v.src, db)
	if err != nil {
		return err
	}
	defer closeSrc()
	dst, closeDst, err := forDB(v.dst, db)
	if err != nil {
		return err
	}
	defer closeDst()
	p := newPool(v.opts.Workers)
	var mu sync.Mutex // scan callbacks of several cluster masters
	// submit scans c and submits job for each batch of keys (counted as
	// checked when count is set).
	submit := func(c redis.UniversalClient, count bool, job func(keys []string) error) error {
		return scanKeys(ctx, c, v.opts.ScanCount, func(keys []string) error {
			mu.Lock()
			defer mu.Unlock()
			keys = v.filter(keys)
			if len(keys) == 0 {
				return nil
			}
			if count {
				v.addChecked(db, len(keys))
			}
			return p.submit(func() error { return job(keys) })
		})
	}
	// Source keys.
	err = submit(src, true, func(keys []string) error { return v.compareBatch(ctx, db, src, dst, keys) })
	if err == nil {
		// Target keys absent from the source.
		err = submit(dst, false, func(keys []string) error { return v.extras(ctx, db, src, dst, keys) })
	}
	if perr := p.wait(); err == nil {
		err = perr
	}
	return err
}

// extras compares the target keys that the source does not have.
func (v *verifier) extras(ctx context.Context, db int, src, dst redis.UniversalClient, keys []string) error {
	cmds, err := pipe(ctx, src, func(p redis.Pipeliner) {
		for _, k := range keys {
			p.Exists(ctx, k)
		}
	})
	if err != nil {
		return err
	}
	var extra []string
	for i, c := range cmds {
		if c.(*redis.IntCmd).Val() == 0 {
			extra = append(extra, keys[i])
		}
	}
	if len(extra) == 0 {
		return nil
	}
	v.addChecked(db, len(extra))
	return v.compareBatch(ctx, db, src, dst, extra)
}

func (v *verifier) addChecked(db, n int) {
	v.mu.Lock()
	v.checked[db] += int64(n)
	v.mu.Unlock()
}

// recheck compares again every key still different.
func (v *verifier) recheck(ctx context.Context) error {
	byDB := map[int][]string{}
	for k := range v.pending {
		byDB[k.db] = append(byDB[k.db], k.key)
	}
	for db, keys := range byDB {
		src, closeSrc, err := forDB(v.src, db)
		if err != nil {
			return err
		}
		dst, closeDst, err := forDB(v.dst, db)
		if err != nil {
			closeSrc()
			return err
		}
		p := newPool(v.opts.Workers)
		for i := 0; i < len(keys); i += v.opts.ScanCount {
			batch := keys[i:min(i+v.opts.ScanCount, len(keys))]
			if p.submit(func() error { return v.compareBatch(ctx, db, src, dst, batch) }) != nil {
				break
			}
		}
		if err := p.wait(); err != nil {
			closeSrc()
			closeDst()
			return err
		}
		closeSrc()
		closeDst()
	}
	return nil
}

// pipe runs the commands queued by fill in one pipeline; it returns the
// commands (each with its own result or error) and only fails on errors
// other than error replies and nil replies.
func pipe(ctx context.Context, c redis.UniversalClient, fill func(redis.Pipeliner)) ([]redis.Cmder, error) {
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error { fill(p); return nil })
	if err != nil && !isReplyErr(err) {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return cmds, nil
}

func isReplyErr(err error) bool {
	if err == nil || err == redis.Nil {
		return true
	}
	var re redis.Error
	return errors.As(err, &re)
}

// both runs f on the source and on the target concurrently.
func both(f func(side int) error) error {
	var wg sync.WaitGroup
	var errs [2]error
	wg.Add(1)
	go func() { defer wg.Done(); errs[1] = f(1) }()
	errs[0] = f(0)
	wg.Wait()
	return errors.Join(errs[0], errs[1])
}
