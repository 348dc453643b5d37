package writer

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

type standalone struct {
	w      *Writer
	conns  []*sconn
	budget *budget
	pool   sync.Pool
	stop   chan struct{}
	wg     sync.WaitGroup
	keyBuf []int
	connIx []int
}

// batch is a run of encoded commands sent with one write; its replies are
// read in order by the connection's reader.
type batch struct {
	buf      []byte
	n        int           // replies expected (commands including SELECT, MULTI, EXEC)
	user     int           // commands counted by Applied
	reserved int64         // bytes taken from the budget
	execs    []execAt      // MULTI/EXEC positions in this batch
	dbs      []dbAt        // db of commands (for error reports): db changes
	done     chan struct{} // marker: closed when every earlier batch is read
}

type execAt struct{ multi, exec int }

type dbAt struct{ from, db int }

type sconn struct {
	s   *standalone
	nc  net.Conn
	br  *bufio.Reader
	mu  sync.Mutex
	cur *batch
	db  int // db selected by the commands encoded so far

	sendq    chan *batch
	inflight chan *batch
}

func dial(ctx context.Context, o *Options, addr string) (net.Conn, *bufio.Reader, error) {
	d := net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("redis writer: dial %s: %w", addr, err)
	}
	if o.TLS != nil {
		cfg := o.TLS.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			cfg.ServerName = host
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("redis writer: TLS handshake with %s: %w", addr, err)
		}
		nc = tc
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	if o.Password != "" || o.Username != "" {
		args := [][]byte{[]byte("AUTH")}
		if o.Username != "" {
			args = append(args, []byte(o.Username))
		}
		args = append(args, []byte(o.Password))
		if _, err := roundTrip(nc, br, args); err != nil && !strings.Contains(err.Error(), "without any password configured") {
			nc.Close()
			return nil, nil, fmt.Errorf("redis writer: AUTH on %s: %w", addr, err)
		}
	}
	return nc, br, nil
}

// roundTrip sends one command and decodes its reply (off the hot path).
func roundTrip(nc net.Conn, br *bufio.Reader, args [][]byte) (any, error) {
	if _, err := nc.Write(appendCommand(nil, args)); err != nil {
		return nil, err
	}
	v, err := readValue(br)
	if err != nil {
		return nil, err
	}
	if e, ok := v.(replyError); ok {
		return nil, e
	}
	return v, nil
}

func newStandalone(ctx context.Context, w *Writer) (*standalone, error) {
	o := &w.opts
	s := &standalone{w: w, budget: newBudget(o.MaxQueueBytes), stop: make(chan struct{})}
	s.pool.New = func() any { return &batch{buf: make([]byte, 0, 16<<10)} }
	for i := 0; i < o.Conns; i++ {
		nc, br, err := dial(ctx, o, o.Addrs[0])
		if err != nil {
			for _, c := range s.conns {
				c.nc.Close()
			}
			return nil, err
		}
		if i == 0 {
			v, err := roundTrip(nc, br, [][]byte{[]byte("COMMAND")})
			if err == nil {
				w.table, err = parseCommandTable(v)
			}
			if err != nil {
				nc.Close()
				return nil, fmt.Errorf("redis writer: reading the command table: %w", err)
			}
		}
		_, _ = roundTrip(nc, br, [][]byte{[]byte("CLIENT"), []byte("SETNAME"), []byte("ferry-writer")})
		s.conns = append(s.conns, &sconn{
			s: s, nc: nc, br: br,
			sendq:    make(chan *batch, 8),
			inflight: make(chan *batch, 64),
		})
	}
	w.sa = s
	for _, c := range s.conns {
		s.wg.Add(2)
		go c.writeLoop()
		go c.readLoop()
	}
	s.wg.Add(1)
	go s.linger()
	return s, nil
}

func (s *standalone) getBatch() *batch {
	b := s.pool.Get().(*batch)
	b.buf = b.buf[:0]
	b.n, b.user, b.reserved = 0, 0, 0
	b.execs = b.execs[:0]
	b.dbs = b.dbs[:0]
	b.done = nil
	return b
}

func (s *standalone) putBatch(b *batch) {
	if cap(b.buf) > 4<<20 {
		return // do not keep huge buffers
	}
	s.pool.Put(b)
}

// connFor returns the connection index of a key.
func (s *standalone) connFor(key []byte) int {
	return Slot(key) % len(s.conns)
}

func (s *standalone) do(db int, lname string, ci *cmdInfo, args [][]byte) error {
	if ci == nil || ci.global {
		return s.barrier(nil, []txCmd{{db: db, args: args}}, false)
	}
	pos, class := ci.keys(args, s.keyBuf[:0])
	s.keyBuf = pos
	if class == keysUnknown || len(pos) == 0 {
		return s.barrier(nil, []txCmd{{db: db, args: args}}, false)
	}
	c := s.connFor(args[pos[0]])
	for _, p := range pos[1:] {
		if s.connFor(args[p]) != c {
			return s.barrier(s.connsOf(pos, args, s.connIx[:0]), []txCmd{{db: db, args: args}}, false)
		}
	}
	return s.enqueue(s.conns[c], db, args)
}

func (s *standalone) connsOf(pos []int, args [][]byte, dst []int) []int {
	var seen [64]bool
	for _, p := range pos {
		c := s.connFor(args[p])
		if c < len(seen) && seen[c] {
			continue
		}
		if c < len(seen) {
			seen[c] = true
		}
		dst = append(dst, c)
	}
	s.connIx = dst
	return dst
}

func (s *standalone) noteDB(b *batch, db int) {
	if n := len(b.dbs); n == 0 || b.dbs[n-1].db != db {
		b.dbs = append(b.dbs, dbAt{from: b.n, db: db})
	}
}

// enqueue encodes one command into the connection's current batch.
func (s *standalone) enqueue(c *sconn, db int, args [][]byte) error {
	c.mu.Lock()
	b := c.cur
	if b == nil {
		b = s.getBatch()
		c.cur = b
	}
	if c.db != db || b.n == 0 {
		s.noteDB(b, db)
	}
	if c.db != db {
		b.buf = appendSelect(b.buf, db)
		b.n++
		c.db = db
	}
	b.buf = appendCommand(b.buf, args)
	b.n++
	b.user++
	var err error
	if b.n >= s.w.opts.Batch || len(b.buf) >= s.w.opts.BatchBytes {
		c.cur = nil
		err = s.handoff(c, b)
	}
	c.mu.Unlock()
	return err
}

// enqueueBlock encodes MULTI, the commands and EXEC into one batch.
func (s *standalone) enqueueBlock(c *sconn, cmds []txCmd) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.cur
	if b == nil {
		b = s.getBatch()
		c.cur = b
	}
	s.noteDB(b, c.db)
	if db := cmds[0].db; c.db != db {
		b.buf = appendSelect(b.buf, db)
		b.n++
		c.db = db
		s.noteDB(b, db)
	}
	multi := b.n
	b.buf = appendCommand(b.buf, [][]byte{[]byte("MULTI")})
	b.n++
	for _, cmd := range cmds {
		if cmd.db != c.db {
			b.buf = appendSelect(b.buf, cmd.db)
			b.n++
			c.db = cmd.db
			s.noteDB(b, cmd.db)
		}
		b.buf = appendCommand(b.buf, cmd.args)
		b.n++
	}
	b.execs = append(b.execs, execAt{multi: multi, exec: b.n})
	b.buf = appendCommand(b.buf, [][]byte{[]byte("EXEC")})
	b.n++
	b.user += len(cmds) + 2
	c.cur = nil
	return s.handoff(c, b)
}

// handoff passes a filled batch to the connection's writer. c.mu is held, so
// batches of one connection are handed off in the order they were filled.
func (s *standalone) handoff(c *sconn, b *batch) error {
	b.reserved = int64(len(b.buf))
	s.budget.acquire(b.reserved)
	select {
	case c.sendq <- b:
		return nil
	case <-s.w.dead:
		s.budget.release(b.reserved)
		return s.w.deadErr()
	}
}

// mark hands off the current batch and a marker; the returned channel is
// closed once every command enqueued so far on c has been answered.
func (s *standalone) mark(c *sconn) (chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.cur; b != nil {
		c.cur = nil
		if err := s.handoff(c, b); err != nil {
			return nil, err
		}
	}
	m := &batch{done: make(chan struct{})}
	select {
	case c.sendq <- m:
		return m.done, nil
	case <-s.w.dead:
		return nil, s.w.deadErr()
	}
}

func (w *Writer) deadErr() error {
	if err := w.Err(); err != nil {
		return err
	}
	return ErrClosed
}

// await waits until every channel of dones is closed, the writer dies or ctx
// ends.
func (w *Writer) await(ctx context.Context, dones []chan struct{}) error {
	for _, d := range dones {
		select {
		case <-d:
		case <-w.dead:
			return w.deadErr()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *standalone) drain(ctx context.Context, idx []int) error {
	dones := make([]chan struct{}, 0, len(s.conns))
	conns := s.conns
	if idx != nil {
		conns = make([]*sconn, len(idx))
		for j, i := range idx {
			conns[j] = s.conns[i]
		}
	}
	for _, c := range conns {
		d, err := s.mark(c)
		if err != nil {
			return err
		}
		dones = append(dones, d)
	}
	return s.w.await(ctx, dones)
}

func (s *standalone) flush(ctx context.Context) error { return s.drain(ctx, nil) }

// barrier drains the connections idx (all when nil), runs cmds on the first
// of them (as a MULTI/EXEC block when block is set) and waits for it.
func (s *standalone) barrier(idx []int, cmds []txCmd, block bool) error {
	ctx := context.Background()
	if err := s.drain(ctx, idx); err != nil {
		return err
	}
	target := 0
	if len(idx) > 0 {
		target = idx[0]
	}
	c := s.conns[target]
	if block {
		if err := s.enqueueBlock(c, cmds); err != nil {
			return err
		}
	} else {
		for _, cmd := range cmds {
			if err := s.enqueue(c, cmd.db, cmd.args); err != nil {
				return err
			}
		}
	}
	return s.drain(ctx, []int{target})
}

// exec sends a MULTI/EXEC block: on the connection of its keys when they all
// share one, else as a barrier over the connections involved.
func (s *standalone) exec(cmds []txCmd) error {
	var idx []int
	var seen [64]bool
	global := false
	for _, cmd := range cmds {
		var nb [32]byte
		ln := string(lowerName(&nb, cmd.args[0]))
		ci := s.w.table.lookup(ln, cmd.args)
		if alwaysGlobal[ln] || ci == nil {
			global = true
			break
		}
		pos, class := ci.keys(cmd.args, nil)
		if class == keysUnknown || len(pos) == 0 {
			global = true
			break
		}
		for _, p := range pos {
			c := s.connFor(cmd.args[p])
			if !seen[c%64] {
				seen[c%64] = true
				idx = append(idx, c)
			}
		}
	}
	if global {
		return s.barrier(nil, cmds, true)
	}
	if len(idx) == 1 {
		return s.enqueueBlock(s.conns[idx[0]], cmds)
	}
	return s.barrier(idx, cmds, true)
}

// linger sends partly filled batches that have waited for Options.Linger.
func (s *standalone) linger() {
	defer s.wg.Done()
	t := time.NewTicker(s.w.opts.Linger)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.w.dead:
			return
		case <-t.C:
		}
		for _, c := range s.conns {
			if !c.mu.TryLock() {
				continue // the producer is filling it
			}
			if b := c.cur; b != nil && b.n > 0 {
				c.cur = nil
				_ = s.handoff(c, b)
			}
			c.mu.Unlock()
		}
	}
}

func (s *standalone) broken() {
	s.budget.disable()
	for _, c := range s.conns {
		c.nc.Close()
	}
}

func (s *standalone) close() {
	s.budget.disable()
	close(s.stop)
	for _, c := range s.conns {
		c.nc.Close()
	}
	s.wg.Wait()
}

func (c *sconn) writeLoop() {
	s := c.s
	defer s.wg.Done()
	defer close(c.inflight)
	var bufs net.Buffers
	var vec [][]byte
	for {
		var b *batch
		select {
		case b = <-c.sendq:
		case <-s.w.dead:
			return
		}
		vec = vec[:0]
	gather:
		for {
			select {
			case c.inflight <- b:
			case <-s.w.dead:
				return
			}
			if len(b.buf) > 0 {
				vec = append(vec, b.buf)
			}
			if len(vec) >= 16 {
				break
			}
			select {
			case b = <-c.sendq:
			default:
				break gather
			}
		}
		if len(vec) == 0 {
			continue
		}
		bufs = append(bufs[:0], vec...)
		if _, err := bufs.WriteTo(c.nc); err != nil {
			s.w.fail(fmt.Errorf("redis writer: write to target: %w", err))
			return
		}
	}
}

func (c *sconn) readLoop() {
	s := c.s
	defer s.wg.Done()
	var nested []nestedErr
	for b := range c.inflight {
		if b.done != nil {
			close(b.done)
			continue
		}
		ex := 0
		for i := 0; i < b.n; i++ {
			isExec := ex < len(b.execs) && b.execs[ex].exec == i
			nested = nested[:0]
			msg, err := skipReply(c.br, isExec, &nested)
			if err != nil {
				select {
				case <-s.w.dead:
				default:
					s.w.fail(fmt.Errorf("redis writer: read from target: %w", err))
				}
				return
			}
			if msg != "" {
				s.w.replyErr(s.w.describe(dbOf(b, i), commandAt(b.buf, i), msg))
			}
			if isExec {
				for _, ne := range nested {
					j := b.execs[ex].multi + 1 + ne.index
					s.w.replyErr(s.w.describe(dbOf(b, j), commandAt(b.buf, j), ne.msg))
				}
				ex++
			}
		}
		s.w.applied.Add(int64(b.user))
		s.budget.release(b.reserved)
		s.putBatch(b)
	}
}

// dbOf returns the db the i-th command of b ran in (an approximation for a
// command inside MULTI after an in-block SELECT; only used in messages).
func dbOf(b *batch, i int) int {
	db := -1
	for _, d := range b.dbs {
		if d.from <= i {
			db = d.db
		}
	}
	return db
}
