package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
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

// datasetWriter writes records into Parquet files of a stage: one open file
// per partition (at most maxOpen at once, the least recently used closed
// first), a new part when a file reaches fileBytes, a row group flushed when
// its buffered values reach rowGroupBytes. Memory is bounded by about
// maxOpen × rowGroupBytes whatever the source's size.
type datasetWriter struct {
	stage         stage
	schema        *parquet.Schema
	root          *col
	codec         compress.Codec
	rowGroupBytes int64
	fileBytes     int64
	maxOpen       int
	budget        int64 // buffered values of all open files
	kv            map[string]string
	buffered      int64

	open    map[string]*partFile
	clock   int64
	parts   map[string]int // next part number per partition
	files   []FileInfo
	rows    int64
	written atomic.Int64 // bytes of closed row groups, all files
	builder *rowBuilder
	row     parquet.Row
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
		return &zstd.Codec{Level: zstd.SpeedDefault}, nil
	case "snappy":
		return &snappy.Codec{}, nil
	case "none", "uncompressed":
		return nil, nil
	}
	return nil, fmt.Errorf("compression %q: want zstd, snappy or none", name)
}

func newDatasetWriter(st stage, root *col, cfg *Config, kv map[string]string) (*datasetWriter, error) {
	codec, err := codecOf(cfg.Compression)
	if err != nil {
		return nil, err
	}
	w := &datasetWriter{stage: st, root: root, codec: codec, kv: kv,
		rowGroupBytes: cfg.RowGroupBytes, fileBytes: cfg.FileBytes, maxOpen: cfg.MaxOpenFiles, budget: cfg.BufferBytes,
		open: map[string]*partFile{}, parts: map[string]int{}}
	w.builder = newRowBuilder(root)
	w.schema = parquet.NewSchema("record", root.node())
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

// write adds one record to the file of its partition (dir).
func (w *datasetWriter) write(ctx context.Context, dir string, part map[string]string, rec record) error {
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
	w.row = w.builder.build(rec, w.row)
	if _, err := f.pw.WriteRows([]parquet.Row{w.row}); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	f.info.Rows++
	w.rows++
	var add int64
	for _, v := range w.row {
		switch v.Kind() {
		case parquet.ByteArray, parquet.FixedLenByteArray:
			add += int64(len(v.ByteArray())) + 4
		default:
			add += 8
		}
	}
	f.buffered += add
	w.buffered += add
	if f.buffered >= w.rowGroupBytes {
		return w.flush(f)
	}
	if w.buffered >= w.budget {
		// Over the memory budget of all open files: flush the largest
		// row group (partitioned datasets).
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
func (w *datasetWriter) flush(f *partFile) error {
	if err := f.pw.Flush(); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	f.info.RowGroups++
	w.buffered -= f.buffered
	f.buffered = 0
	if f.cw.c >= w.fileBytes {
		return w.closeFile(f)
	}
	return nil
}

func (w *datasetWriter) newFile(ctx context.Context, dir string, part map[string]string) (*partFile, error) {
	n := w.parts[dir]
	w.parts[dir] = n + 1
	path := fmt.Sprintf("%spart-%05d.parquet", dir, n)
	out, err := w.stage.create(ctx, path)
	if err != nil {
		return nil, err
	}
	f := &partFile{key: dir, dir: dir, part: part, w: out, info: FileInfo{Path: path, Partition: part}}
	f.cw = &countingWriter{w: out, n: &w.written}
	opts := []parquet.WriterOption{w.schema, parquet.CreatedBy("ferry", "1", "pipeline"),
		parquet.PageBufferSize(256 << 10), parquet.MaxRowsPerRowGroup(1 << 30), parquet.DataPageStatistics(true)}
	if w.codec != nil {
		opts = append(opts, parquet.Compression(w.codec))
	}
	for k, v := range w.kv {
		opts = append(opts, parquet.KeyValueMetadata(k, v))
	}
	f.pw = parquet.NewWriter(f.cw, opts...)
	w.open[dir] = f
	return f, nil
}

func (w *datasetWriter) closeLRU() error {
	var lru *partFile
	for _, f := range w.open {
		if lru == nil || f.used < lru.used {
			lru = f
		}
	}
	return w.closeFile(lru)
}

func (w *datasetWriter) closeFile(f *partFile) error {
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
	w.files = append(w.files, f.info)
	return nil
}

// close finishes every open file.
func (w *datasetWriter) close() error {
	for len(w.open) > 0 {
		if err := w.closeLRU(); err != nil {
			return err
		}
	}
	return nil
}

// abort closes the open files without finishing them.
func (w *datasetWriter) abort() {
	for k, f := range w.open {
		f.w.Close()
		delete(w.open, k)
	}
}
