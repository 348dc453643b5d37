package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// FileInfo is one data file of a dataset, in the manifest.
type FileInfo struct {
	Path      string            `json:"path"` // relative to the dataset root
	Partition map[string]string `json:"partition,omitempty"`
	Rows      int64             `json:"rows"`
	Bytes     int64             `json:"bytes"`
	RowGroups int               `json:"rowGroups"`
}

// datasetWriter writes rows into Parquet files of a stage. It has one or
// more partWriters, each run by its own goroutine (see flow) and owning its
// own files: one open file per partition (at most maxOpen at once per
// writer, the least recently used closed first), a new part when a file
// reaches fileBytes, a row group flushed when its buffered values reach
// rowGroupBytes. Memory is bounded by about the writers' budget (the values
// buffered in open row groups) plus one page buffer per column of each open
// file, whatever the source's size.
type datasetWriter struct {
	stage         stage
	schema        *parquet.Schema
	codec         compress.Codec
	rowGroupBytes int64
	fileBytes     int64
	kv            map[string]string
	opts          []parquet.WriterOption

	mu      sync.Mutex
	parts   map[string]int // next part number per partition
	files   []FileInfo
	rows    atomic.Int64 // rows written, all writers
	written atomic.Int64 // bytes of closed row groups, all files
	writers []*partWriter
}

// partWriter is one writer goroutine's set of open files.
type partWriter struct {
	d        *datasetWriter
	open     map[string]*partFile
	clock    int64
	maxOpen  int
	budget   int64 // buffered values of this writer's open files
	buffered int64

	// writeBatch's scratch space
	order []int
	gid   []int
	count []int
	group map[*partInfo]int
}

type partFile struct {
	key      string
	dir      string
	part     map[string]string
	info     FileInfo
	w        io.WriteCloser
	cw       *countingWriter
	pw       *parquet.Writer
	buffered int64
	used     int64
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
	c int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.c += int64(n)
	c.n.Add(int64(n))
	return n, err
}

func codecOf(name string) (compress.Codec, error) {
	switch strings.ToLower(name) {
	case "", "zstd":
		return &zstd.Codec{Level: zstd.SpeedFastest}, nil
	case "snappy":
		return &snappy.Codec{}, nil
	case "none", "uncompressed":
		return nil, nil
	}
	return nil, fmt.Errorf("compression %q: want zstd, snappy or none", name)
}

func newDatasetWriter(st stage, root *col, cfg *Config, writers int, kv map[string]string) (*datasetWriter, error) {
	codec, err := codecOf(cfg.Compression)
	if err != nil {
		return nil, err
	}
	root.index()
	w := &datasetWriter{stage: st, codec: codec, kv: kv, rowGroupBytes: cfg.RowGroupBytes, fileBytes: cfg.FileBytes,
		parts: map[string]int{}}
	w.schema = parquet.NewSchema("record", root.node())
	w.opts = []parquet.WriterOption{w.schema, parquet.CreatedBy("ferry", "1", "pipeline"),
		parquet.PageBufferSize(cfg.PageBytes), parquet.MaxRowsPerRowGroup(1 << 30), parquet.DataPageStatistics(true)}
	if codec != nil {
		w.opts = append(w.opts, parquet.Compression(codec))
	}
	for k, v := range kv {
		w.opts = append(w.opts, parquet.KeyValueMetadata(k, v))
	}
	if writers < 1 {
		writers = 1
	}
	maxOpen := max(1, (cfg.MaxOpenFiles+writers-1)/writers)
	for range writers {
		w.writers = append(w.writers, &partWriter{d: w, open: map[string]*partFile{}, maxOpen: maxOpen, group: map[*partInfo]int{},
			budget: max(cfg.RowGroupBytes, cfg.BufferBytes/int64(writers))})
	}
	return w, nil
}

// partitionDir renders hive-style directories "name=value/..." for the
// partition values (escaped as Hive does: %XX for characters a path or the
// key=value syntax cannot carry; null is __HIVE_DEFAULT_PARTITION__).
func partitionDir(names, values []string, nulls []bool) string {
	var b strings.Builder
	for i, n := range names {
		v := "__HIVE_DEFAULT_PARTITION__"
		if !nulls[i] {
			v = hiveEscape(values[i])
		}
		b.WriteString(hiveEscape(n))
		b.WriteByte('=')
		b.WriteString(v)
		b.WriteByte('/')
	}
	return b.String()
}

func hiveEscape(s string) string {
	if s == "" {
		return "%00"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || strings.IndexByte("\"#%'*/:=?\\{[]^ ", c) >= 0 || (i == 0 && c == '.') {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// hiveUnescape reverses hiveEscape.
func hiveUnescape(s string) string {
	if s == "%00" {
		return ""
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// write adds rows (all of partition dir, raw size bytes of values) to the
// file of their partition.
func (w *partWriter) write(ctx context.Context, dir string, part map[string]string, rows []parquet.Row, size int64) error {
	f := w.open[dir]
	if f == nil {
		if len(w.open) >= w.maxOpen {
			if err := w.closeLRU(); err != nil {
				return err
			}
		}
		var err error
		if f, err = w.newFile(ctx, dir, part); err != nil {
			return err
		}
	}
	w.clock++
	f.used = w.clock
	if _, err := f.pw.WriteRows(rows); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	f.info.Rows += int64(len(rows))
	w.d.rows.Add(int64(len(rows)))
	f.buffered += size
	w.buffered += size
	if f.buffered >= w.d.rowGroupBytes {
		return w.flush(f)
	}
	if w.buffered >= w.budget {
		// Over the memory budget of this writer's open files: flush the
		// largest row group (partitioned datasets).
		big := f
		for _, o := range w.open {
			if o.buffered > big.buffered {
				big = o
			}
		}
		return w.flush(big)
	}
	return nil
}

// flush ends f's row group, and f itself past fileBytes.
func (w *partWriter) flush(f *partFile) error {
	if err := f.pw.Flush(); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	f.info.RowGroups++
	w.buffered -= f.buffered
	f.buffered = 0
	if f.cw.c >= w.d.fileBytes {
		return w.closeFile(f)
	}
	return nil
}

func (w *partWriter) newFile(ctx context.Context, dir string, part map[string]string) (*partFile, error) {
	d := w.d
	d.mu.Lock()
	n := d.parts[dir]
	d.parts[dir] = n + 1
	d.mu.Unlock()
	path := fmt.Sprintf("%spart-%05d.parquet", dir, n)
	out, err := d.stage.create(ctx, path)
	if err != nil {
		return nil, err
	}
	f := &partFile{key: dir, dir: dir, part: part, w: out, info: FileInfo{Path: path, Partition: part}}
	f.cw = &countingWriter{w: out, n: &d.written}
	f.pw = parquet.NewWriter(f.cw, d.opts...)
	w.open[dir] = f
	return f, nil
}

func (w *partWriter) closeLRU() error {
	var lru *partFile
	for _, f := range w.open {
		if lru == nil || f.used < lru.used {
			lru = f
		}
	}
	return w.closeFile(lru)
}

func (w *partWriter) closeFile(f *partFile) error {
	delete(w.open, f.key)
	w.buffered -= f.buffered
	if f.buffered > 0 || f.info.RowGroups == 0 {
		f.info.RowGroups++
	}
	if err := f.pw.Close(); err != nil {
		f.w.Close()
		return fmt.Errorf("parquet: %w", err)
	}
	if err := f.w.Close(); err != nil {
		return err
	}
	f.info.Bytes = f.cw.c
	w.d.mu.Lock()
	w.d.files = append(w.d.files, f.info)
	w.d.mu.Unlock()
	return nil
}

// close finishes every open file of w.
func (w *partWriter) close() error {
	for len(w.open) > 0 {
		if err := w.closeLRU(); err != nil {
			return err
		}
	}
	return nil
}

// abort closes the open files without finishing them.
func (w *partWriter) abort() {
	for k, f := range w.open {
		if a, ok := f.w.(interface{ abort() }); ok {
			a.abort() // no upload of a partial file
		} else {
			f.w.Close()
		}
		delete(w.open, k)
	}
}

// finished returns the files written, in path order.
func (w *datasetWriter) finished() []FileInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]FileInfo(nil), w.files...)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
