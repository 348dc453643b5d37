package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
)

// flow is the export's pipeline: the source's goroutine reads raw records
// (a MySQL row's column texts, a MongoDB document's BSON) and hands them to
// add, which copies them into batches; each full batch goes over a bounded
// channel to a writer goroutine, which converts its records into Parquet
// rows (the source's converter, one per writer) and encodes and compresses
// them into its own files. Rows of one partition always go to the same
// writer (partitions are spread over the writers as they appear, by their
// raw key); an unpartitioned dataset's batches go round robin, each writer
// writing its own part files. Memory: at most queueDepth+2 batches per
// writer (batchBytes of raw values each) besides the writers' row groups.
type flow struct {
	d      *datasetWriter
	rd     reader
	ctx    context.Context
	cancel context.CancelCauseFunc
	in     []chan *batch
	free   chan *batch
	wg     sync.WaitGroup
	sent   atomic.Int64 // batches sent
	done   atomic.Int64 // batches written (or dropped)
	abortd atomic.Bool
	closed bool

	cur  []*batch
	rr   int
	read int64

	parts  []partCol
	names  []string
	key    []byte
	byKey  map[string]*partInfo
	load   []int
	vals   []string
	nulls  []bool
	single *partInfo
	conv   converter // the reader goroutine's, for new partitions
	row    parquet.Row
}

const (
	batchRows  = 1024
	batchBytes = 256 << 10
	queueDepth = 2
)

// partInfo is one partition of the dataset.
type partInfo struct {
	dir    string
	values map[string]string
	writer int
}

// batch holds raw records: fields[ends[i-1]:ends[i]] are record i's, their
// bytes in arena (nil: NULL).
type batch struct {
	fields [][]byte
	ends   []int
	arena  []byte
	parts  []*partInfo
}

func (b *batch) reset() {
	clear(b.fields)
	b.fields = b.fields[:0]
	b.ends = b.ends[:0]
	b.arena = b.arena[:0]
	clear(b.parts)
	b.parts = b.parts[:0]
}

func newFlow(ctx context.Context, d *datasetWriter, rd reader, parts []partCol) *flow {
	n := len(d.writers)
	f := &flow{d: d, rd: rd, in: make([]chan *batch, n), free: make(chan *batch, n*(queueDepth+2)), cur: make([]*batch, n),
		parts: parts, byKey: map[string]*partInfo{}, load: make([]int, n), vals: make([]string, len(parts)), nulls: make([]bool, len(parts))}
	f.ctx, f.cancel = context.WithCancelCause(ctx)
	for _, pc := range parts {
		f.names = append(f.names, pc.col.Name)
	}
	if len(parts) == 0 {
		f.single = &partInfo{}
	} else {
		f.conv = rd.converter()
	}
	for i, w := range d.writers {
		ch := make(chan *batch, queueDepth)
		f.in[i] = ch
		conv := rd.converter() // here: converters are made one at a time
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.run(w, ch, conv)
		}()
	}
	return f
}

// run is a writer goroutine.
func (f *flow) run(w *partWriter, ch chan *batch, conv converter) {
	var vals []parquet.Value
	var rows []parquet.Row
	var ends []int
	for b := range ch {
		if f.ctx.Err() == nil && !f.abortd.Load() {
			if err := f.writeBatch(w, b, conv, &vals, &rows, &ends); err != nil {
				f.cancel(err)
			}
		}
		b.reset()
		select {
		case f.free <- b:
		default:
		}
		f.done.Add(1)
	}
}

// writeBatch converts a batch and writes its rows, those of each partition
// together (grouped in order of first appearance, rows in batch order).
func (f *flow) writeBatch(w *partWriter, b *batch, conv converter, vals *[]parquet.Value, rows *[]parquet.Row, ends *[]int) error {
	n := len(b.ends)
	order := w.order[:0]
	single := true
	for i := 1; i < n && single; i++ {
		single = b.parts[i] == b.parts[0]
	}
	if single {
		for i := range n {
			order = append(order, i)
		}
	} else {
		// A counting sort by partition.
		clear(w.group)
		w.count = w.count[:0]
		gid := w.gid[:0]
		for i := range n {
			g, ok := w.group[b.parts[i]]
			if !ok {
				g = len(w.count)
				w.group[b.parts[i]] = g
				w.count = append(w.count, 0)
			}
			w.count[g]++
			gid = append(gid, g)
		}
		w.gid = gid
		pos := 0
		for g, c := range w.count {
			w.count[g] = pos
			pos += c
		}
		if cap(order) < n {
			order = make([]int, n)
		}
		order = order[:n]
		for i, g := range gid {
			order[w.count[g]] = i
			w.count[g]++
		}
	}
	w.order = order
	for k := 0; k < n; {
		first := order[k]
		*vals, *ends = (*vals)[:0], (*ends)[:0]
		for ; k < n && b.parts[order[k]] == b.parts[first]; k++ {
			i := order[k]
			start := 0
			if i > 0 {
				start = b.ends[i-1]
			}
			var err error
			if *vals, err = conv(b.fields[start:b.ends[i]], *vals); err != nil {
				return err
			}
			*ends = append(*ends, len(*vals))
		}
		var size int64
		for _, v := range *vals {
			switch v.Kind() {
			case parquet.ByteArray, parquet.FixedLenByteArray:
				size += int64(len(v.ByteArray())) + 4
			default:
				size += 8
			}
		}
		rs := (*rows)[:0]
		off := 0
		for _, end := range *ends {
			rs = append(rs, (*vals)[off:end:end])
			off = end
		}
		*rows = rs
		p := b.parts[first]
		if err := w.write(f.ctx, p.dir, p.values, rs, size); err != nil {
			return err
		}
		clear(rs)
	}
	return nil
}

// partition finds the partition of a raw record.
func (f *flow) partition(fields [][]byte) (*partInfo, error) {
	if f.single != nil {
		return f.single, nil
	}
	f.key = f.rd.partKey(fields, f.parts, f.key[:0])
	if p := f.byKey[string(f.key)]; p != nil {
		return p, nil
	}
	// A new partition: convert the record for its values and directory;
	// the least loaded writer takes it.
	var err error
	if f.row, err = f.conv(fields, f.row[:0]); err != nil {
		return nil, err
	}
	p := &partInfo{values: map[string]string{}}
	for i, pc := range f.parts {
		v := parquet.NullValue()
		for _, x := range f.row {
			if x.Column() == pc.col.leafIndex {
				v = x
				break
			}
		}
		if v.IsNull() {
			f.nulls[i], f.vals[i] = true, ""
		} else {
			f.nulls[i], f.vals[i] = false, pc.col.text(v)
			p.values[f.names[i]] = f.vals[i]
		}
	}
	p.dir = partitionDir(f.names, f.vals, f.nulls)
	for i := range f.load {
		if f.load[i] < f.load[p.writer] {
			p.writer = i
		}
	}
	f.load[p.writer]++
	f.byKey[string(f.key)] = p
	return p, nil
}

func (f *flow) getBatch() *batch {
	select {
	case b := <-f.free:
		return b
	default:
		return &batch{arena: make([]byte, 0, batchBytes)}
	}
}

// add copies a raw record (whose fields point into the source's buffers)
// into its writer's batch, sending the batch when it is full.
func (f *flow) add(fields [][]byte) error {
	p, err := f.partition(fields)
	if err != nil {
		return err
	}
	k := p.writer
	if f.single != nil {
		k = f.rr
	}
	n := 0
	for _, x := range fields {
		n += len(x)
	}
	b := f.cur[k]
	if b != nil && len(b.ends) > 0 && cap(b.arena)-len(b.arena) < n {
		if err := f.send(k); err != nil {
			return err
		}
		if f.single != nil {
			k = f.rr
		}
		b = f.cur[k]
	}
	if b == nil {
		b = f.getBatch()
		f.cur[k] = b
	}
	if cap(b.arena)-len(b.arena) < n { // one record larger than a batch
		b.arena = make([]byte, 0, n)
	}
	for _, x := range fields {
		if x == nil {
			b.fields = append(b.fields, nil)
			continue
		}
		off := len(b.arena)
		b.arena = append(b.arena, x...)
		b.fields = append(b.fields, b.arena[off:len(b.arena):len(b.arena)])
	}
	b.ends = append(b.ends, len(b.fields))
	b.parts = append(b.parts, p)
	f.read++
	if len(b.ends) >= batchRows || len(b.arena) >= batchBytes {
		return f.send(k)
	}
	return nil
}

// send hands writer k its batch.
func (f *flow) send(k int) error {
	b := f.cur[k]
	f.cur[k] = nil
	if b == nil || len(b.ends) == 0 {
		if b != nil {
			select {
			case f.free <- b:
			default:
			}
		}
		return nil
	}
	f.sent.Add(1)
	select {
	case f.in[k] <- b:
	case <-f.ctx.Done():
		return context.Cause(f.ctx)
	}
	if f.single != nil {
		f.rr = (f.rr + 1) % len(f.in)
	}
	return nil
}

// sync sends the partial batches and waits until the writers have written
// everything sent.
func (f *flow) sync() error {
	for k := range f.cur {
		if err := f.send(k); err != nil {
			return err
		}
	}
	for f.done.Load() < f.sent.Load() {
		if err := f.ctx.Err(); err != nil {
			return context.Cause(f.ctx)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// finish sends the last batches, waits for the writers and closes every
// file.
func (f *flow) finish() error {
	var err error
	for k := range f.cur {
		if err = f.send(k); err != nil {
			break
		}
	}
	f.stop()
	if err == nil && f.ctx.Err() != nil {
		err = context.Cause(f.ctx)
	}
	if err != nil {
		f.abort()
		return err
	}
	var errs []error
	for _, w := range f.d.writers {
		if err := w.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		f.abort()
		return fmt.Errorf("close files: %w", err)
	}
	return nil
}

func (f *flow) stop() {
	if f.closed {
		return
	}
	f.closed = true
	for _, ch := range f.in {
		close(ch)
	}
	f.wg.Wait()
}

// abort stops the writers and closes their files unfinished.
func (f *flow) abort() {
	f.abortd.Store(true)
	f.cancel(errors.New("export aborted"))
	f.stop()
	for _, w := range f.d.writers {
		w.abort()
	}
}
