package writer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

type cluster struct {
	w       *Writer
	cc      *redis.ClusterClient
	workers []*cworker
	budget  *budget
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

type cworker struct {
	c *cluster
	q chan *ccmd
}

type ccmd struct {
	args []any
	raw  [][]byte
	size int64
	done chan struct{} // marker
}

func newCluster(ctx context.Context, w *Writer) (*cluster, error) {
	o := &w.opts
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        o.Addrs,
		Username:     o.Username,
		Password:     o.Password,
		TLSConfig:    o.TLS,
		DialTimeout:  o.DialTimeout,
		MaxRedirects: 16,
		PoolSize:     o.Conns + 4,
		Protocol:     2,
	})
	// Command table: from a raw connection to a seed (the same reader as the
	// standalone mode).
	var lastErr error
	for _, addr := range o.Addrs {
		nc, br, err := dial(ctx, o, addr)
		if err != nil {
			lastErr = err
			continue
		}
		v, err := roundTrip(nc, br, [][]byte{[]byte("COMMAND")})
		nc.Close()
		if err == nil {
			w.table, err = parseCommandTable(v)
		}
		if err != nil {
			lastErr = err
			continue
		}
		break
	}
	if w.table == nil {
		cc.Close()
		return nil, fmt.Errorf("redis writer: reading the command table: %w", lastErr)
	}
	cc.ReloadState(ctx)
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return c.Ping(ctx).Err()
	}); err != nil {
		cc.Close()
		return nil, fmt.Errorf("redis writer: cluster: %w", err)
	}
	c := &cluster{w: w, cc: cc, budget: newBudget(o.MaxQueueBytes)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	w.cl = c
	for i := 0; i < o.Conns; i++ {
		wk := &cworker{c: c, q: make(chan *ccmd, 4*o.Batch)}
		c.workers = append(c.workers, wk)
		c.wg.Add(1)
		go wk.loop()
	}
	return c, nil
}

func copyArgs(args [][]byte) *ccmd {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	mem := make([]byte, 0, n)
	cmd := &ccmd{args: make([]any, len(args)), raw: make([][]byte, len(args)), size: int64(n + 16*len(args))}
	for i, a := range args {
		mem = append(mem, a...)
		b := mem[len(mem)-len(a) : len(mem) : len(mem)]
		cmd.args[i] = b
		cmd.raw[i] = b
	}
	return cmd
}

func (c *cluster) send(slot int, cmd *ccmd) error {
	c.budget.acquire(cmd.size)
	select {
	case c.workers[slot%len(c.workers)].q <- cmd:
		return nil
	case <-c.w.dead:
		c.budget.release(cmd.size)
		return c.w.deadErr()
	}
}

var splittable = map[string]int{"mset": 2, "del": 1, "unlink": 1, "touch": 1}

func (c *cluster) do(db int, lname string, ci *cmdInfo, args [][]byte) error {
	if db != 0 {
		return fmt.Errorf("redis writer: %s in db %d: a cluster target has only db 0 (remap the dbs)", upper(lname), db)
	}
	var pos []int
	class := keysUnknown
	if ci != nil {
		pos, class = ci.keys(args, nil)
	}
	if alwaysGlobal[lname] || class == keysUnknown || len(pos) == 0 {
		return c.global(lname, args, pos, class)
	}
	slot := Slot(args[pos[0]])
	same := true
	for _, p := range pos[1:] {
		if Slot(args[p]) != slot {
			same = false
			break
		}
	}
	if same {
		return c.send(slot, copyArgs(args))
	}
	step, ok := splittable[lname]
	if !ok {
		return fmt.Errorf("redis writer: %s: keys in different cluster slots (CROSSSLOT) cannot be applied to a cluster target", upper(lname))
	}
	// Split per slot, keeping the order of the keys within each slot.
	groups := map[int][][]byte{}
	var order []int
	for i := 1; i+step-1 < len(args); i += step {
		s := Slot(args[i])
		if _, seen := groups[s]; !seen {
			order = append(order, s)
			groups[s] = [][]byte{args[0]}
		}
		groups[s] = append(groups[s], args[i:i+step]...)
	}
	for _, s := range order {
		if err := c.send(s, copyArgs(groups[s])); err != nil {
			return err
		}
	}
	return nil
}

// global runs a command that is not routed by key, after draining every
// worker.
func (c *cluster) global(lname string, args [][]byte, pos []int, class keyClass) error {
	if err := c.flush(c.ctx); err != nil {
		return err
	}
	cmd := copyArgs(args)
	var err error
	switch {
	case lname == "swapdb" || lname == "move":
		return fmt.Errorf("redis writer: %s is not supported by a cluster target", upper(lname))
	case class == keysKnown && len(pos) > 0:
		slot := Slot(args[pos[0]])
		for _, p := range pos[1:] {
			if Slot(args[p]) != slot {
				return fmt.Errorf("redis writer: %s: keys in different cluster slots (CROSSSLOT) cannot be applied to a cluster target", upper(lname))
			}
		}
		err = c.retry(func(ctx context.Context) error { return c.cc.Do(ctx, cmd.args...).Err() })
	case lname == "publish" || lname == "spublish" || class == keysUnknown:
		err = c.retry(func(ctx context.Context) error { return c.cc.Do(ctx, cmd.args...).Err() })
	default:
		err = c.retry(func(ctx context.Context) error {
			return c.cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
				return n.Do(ctx, cmd.args...).Err()
			})
		})
	}
	if err != nil && err != redis.Nil {
		if isTransient(err) {
			c.w.fail(fmt.Errorf("redis writer: %s: %w", upper(lname), err))
		} else {
			c.w.replyErr(c.w.describe(0, args, err.Error()))
		}
		return c.w.Err()
	}
	c.w.applied.Add(1)
	return nil
}

// exec applies a MULTI/EXEC block whose keys are in one slot.
func (c *cluster) exec(cmds []txCmd) error {
	slot := -1
	for _, cmd := range cmds {
		if cmd.db != 0 {
			return fmt.Errorf("redis writer: MULTI block in db %d: a cluster target has only db 0", cmd.db)
		}
		var nb [32]byte
		ln := string(lowerName(&nb, cmd.args[0]))
		ci := c.w.table.lookup(ln, cmd.args)
		var pos []int
		class := keysUnknown
		if ci != nil {
			pos, class = ci.keys(cmd.args, nil)
		}
		if alwaysGlobal[ln] || class == keysUnknown || len(pos) == 0 {
			return fmt.Errorf("redis writer: MULTI block with %s cannot be applied atomically to a cluster target", upper(ln))
		}
		for _, p := range pos {
			s := Slot(cmd.args[p])
			if slot >= 0 && s != slot {
				return errors.New("redis writer: MULTI block spans several cluster slots: cannot be applied atomically to a cluster target")
			}
			slot = s
		}
	}
	if err := c.flush(c.ctx); err != nil {
		return err
	}
	all := make([]*ccmd, len(cmds))
	for i, cmd := range cmds {
		all[i] = copyArgs(cmd.args)
	}
	var rcs []redis.Cmder
	err := c.retry(func(ctx context.Context) error {
		var err error
		rcs, err = c.cc.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, cmd := range all {
				p.Do(ctx, cmd.args...)
			}
			return nil
		})
		if err != nil && !isTransient(err) {
			return nil // reported per command below
		}
		return err
	})
	if err != nil {
		c.w.fail(fmt.Errorf("redis writer: MULTI/EXEC: %w", err))
		return err
	}
	for i, rc := range rcs {
		if e := rc.Err(); e != nil && e != redis.Nil {
			c.w.replyErr(c.w.describe(0, cmds[i].args, e.Error()))
		}
	}
	c.w.applied.Add(int64(len(cmds) + 2))
	return c.w.Err()
}

// retry runs f until it succeeds, fails with a non-transient error or
// RetryTimeout passes.
func (c *cluster) retry(f func(ctx context.Context) error) error {
	deadline := time.Now().Add(c.w.opts.RetryTimeout)
	backoff := 50 * time.Millisecond
	for {
		err := f(c.ctx)
		if err == nil || !isTransient(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-c.w.dead:
			return c.w.deadErr()
		case <-time.After(backoff):
		}
		if backoff < time.Second {
			backoff *= 2
		}
		c.cc.ReloadState(c.ctx)
	}
}

// isTransient tells errors that a failover, a resharding or a restart
// produce and that go away when retried.
func isTransient(err error) bool {
	if err == nil || err == redis.Nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN", "READONLY", "MOVED ", "ASK "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	for _, p := range []string{"connection refused", "connection reset", "broken pipe", "use of closed network connection", "i/o timeout", "pool timeout"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func (c *cluster) flush(ctx context.Context) error {
	dones := make([]chan struct{}, 0, len(c.workers))
	for _, wk := range c.workers {
		m := &ccmd{done: make(chan struct{})}
		select {
		case wk.q <- m:
		case <-c.w.dead:
			return c.w.deadErr()
		case <-ctx.Done():
			return ctx.Err()
		}
		dones = append(dones, m.done)
	}
	return c.w.await(ctx, dones)
}

func (c *cluster) broken() {
	c.budget.disable()
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *cluster) close() {
	c.budget.disable()
	c.cancel()
	c.wg.Wait()
	c.cc.Close()
}

func (wk *cworker) loop() {
	c := wk.c
	defer c.wg.Done()
	batch := make([]*ccmd, 0, c.w.opts.Batch)
	for {
		var first *ccmd
		select {
		case first = <-wk.q:
		case <-c.w.dead:
			return
		}
		batch = batch[:0]
		var marker *ccmd
		if first.done != nil {
			marker = first
		} else {
			batch = append(batch, first)
		gather:
			for len(batch) < cap(batch) {
				select {
				case m := <-wk.q:
					if m.done != nil {
						marker = m
						break gather
					}
					batch = append(batch, m)
				default:
					break gather
				}
			}
		}
		if len(batch) > 0 {
			if !wk.run(batch) {
				return
			}
		}
		if marker != nil {
			close(marker.done)
		}
	}
}

// run executes a batch as one pipeline, retrying the commands that failed
// with transient errors (in their order). It returns false once the writer
// has failed.
func (wk *cworker) run(batch []*ccmd) bool {
	c := wk.c
	pending := batch
	deadline := time.Now().Add(c.w.opts.RetryTimeout)
	backoff := 50 * time.Millisecond
	var size int64
	for _, cmd := range batch {
		size += cmd.size
	}
	defer c.budget.release(size)
	for {
		pipe := c.cc.Pipeline()
		rcs := make([]*redis.Cmd, len(pending))
		for i, cmd := range pending {
			rcs[i] = pipe.Do(c.ctx, cmd.args...)
		}
		_, _ = pipe.Exec(c.ctx)
		var again []*ccmd
		var lastErr error
		for i, rc := range rcs {
			err := rc.Err()
			switch {
			case err == nil || err == redis.Nil:
				c.w.applied.Add(1)
			case isTransient(err):
				again = append(again, pending[i])
				lastErr = err
			default:
				c.w.applied.Add(1)
				c.w.replyErr(c.w.describe(0, pending[i].raw, err.Error()))
			}
		}
		select {
		case <-c.w.dead:
			return false
		default:
		}
		if len(again) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			c.w.fail(fmt.Errorf("redis writer: cluster target still failing after %s: %w", c.w.opts.RetryTimeout, lastErr))
			return false
		}
		select {
		case <-c.w.dead:
			return false
		case <-time.After(backoff):
		}
		if backoff < time.Second {
			backoff *= 2
		}
		c.cc.ReloadState(c.ctx)
		pending = again
	}
}
