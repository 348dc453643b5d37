// Package pipeline exports snapshots of a MySQL-family table or a MongoDB
// collection as datasets of Apache Parquet files, for ferry's pipelines.
//
// A run goes through three phases:
//
//   - SNAPSHOT: a consistent read point of the source (MySQL: START
//     TRANSACTION WITH CONSISTENT SNAPSHOT and its binlog position;
//     MongoDB: a snapshot read at a cluster time where the server has
//     them). Ferry names it with a 24-hex snapshotId and records it, the
//     dataset name and the sink in the run's checkpoint.
//   - EXPORT: rows/documents stream (never the whole table in memory) into
//     Parquet files in a staging area: hive-style partition directories
//     (name=value/...) in partitionFields order, EXCLUDE transformations
//     applied, row groups flushed at Config.RowGroupBytes of buffered
//     values, a new part file past Config.FileBytes, zstd (or snappy)
//     pages.
//   - INGESTION: the manifest (_manifest.json: files, rows, bytes, schema,
//     snapshot) is written and the dataset published atomically: a local
//     dataset is renamed from <root>/.staging/NAME to <root>/NAME in one
//     rename; an S3 dataset becomes visible when its manifest, written
//     last, exists (only datasets with a manifest are listed or read).
//
// A run that fails removes its staging area; one interrupted (the agent
// killed, its lease lost) leaves it to the next attempt, which discards it
// (the checkpoint names it) before it starts again from a new snapshot. A
// run that ends FAILED after an interruption (the agent stopped) has its
// leftovers removed by the service's reaper (DiscardStaging). Temporary
// files of a process that died are removed by the next export or reaper
// on the same host (they are flocked while in use).
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"github.com/parquet-go/parquet-go"

	"github.com/ferrymigrate/ferry"
)

// Config configures the exporters.
type Config struct {
	// Dir is the default dataset directory (<data-dir>/datasets): a
	// pipeline without sink.location writes to Dir/<projectId>/<dataset>.
	Dir string
	// AllowedDirs are further local directories a pipeline's sink.location
	// may name (Dir is always allowed).
	AllowedDirs []string
	// S3 is the S3-compatible server of s3://bucket/prefix locations.
	S3 *S3Config
	// RowGroupBytes: a row group is flushed when its buffered values reach
	// this size (default 16 MiB).
	RowGroupBytes int64
	// FileBytes: a file is closed after the row group that takes it past
	// this size (default 256 MiB).
	FileBytes int64
	// MaxOpenFiles bounds the partition files open at once, all writers
	// together (default 16).
	MaxOpenFiles int
	// Writers is the number of goroutines encoding Parquet (default
	// GOMAXPROCS, at most 4); the source is read by one more.
	Writers int
	// PageBytes is the page buffer of each column of an open file
	// (default 256 KiB).
	PageBytes int
	// BufferBytes bounds the values buffered in the row groups of all open
	// files together (default 32 MiB): past it the largest row group is
	// flushed.
	BufferBytes int64
	// Compression: zstd (default), snappy or none.
	Compression string
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// OnProgress, if set, is called every 1,024 rows of an export (tests).
	OnProgress func(ctx context.Context, run *ferry.PipelineRun, rows int64)
}

func (c *Config) defaults() {
	if c.RowGroupBytes <= 0 {
		c.RowGroupBytes = 16 << 20
	}
	if c.FileBytes <= 0 {
		c.FileBytes = 256 << 20
	}
	if c.MaxOpenFiles <= 0 {
		c.MaxOpenFiles = 16
	}
	if c.Writers <= 0 {
		c.Writers = min(4, runtime.GOMAXPROCS(0))
	}
	if c.PageBytes <= 0 {
		c.PageBytes = 256 << 10
	}
	if c.BufferBytes <= 0 {
		c.BufferBytes = 32 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Dir != "" {
		if abs, err := filepath.Abs(c.Dir); err == nil {
			c.Dir = abs
		}
	}
}

// source reads one kind of data store.
type source interface {
	check(p *ferry.Pipeline, ep *ferry.Endpoint) error
	// open connects and takes the snapshot.
	open(ctx context.Context, p *ferry.Pipeline, ep *ferry.Endpoint, excluded map[string]bool) (reader, error)
}

// converter turns a raw record into a Parquet row appended to row: the
// values of every leaf column in schema order with their levels and column
// indexes set (Dremel striping).
type converter func(fields [][]byte, row parquet.Row) (parquet.Row, error)

type reader interface {
	// position is what the checkpoint and manifest record of the read
	// point; consistency says how consistent it is.
	position() (pos map[string]any, consistency string)
	// schema is the root group (exclusions applied).
	schema(ctx context.Context) (*col, error)
	// each streams the raw records to fn (a MySQL row's column values as
	// text, nil for NULL; a MongoDB document's BSON): fields point into the
	// reader's buffers, valid only during the call.
	each(ctx context.Context, fn func(fields [][]byte) error) error
	// converter returns a converter of raw records (one per goroutine).
	converter() converter
	// partKey appends to key the raw partition values of a record: equal
	// keys, equal partitions.
	partKey(fields [][]byte, parts []partCol, key []byte) []byte
	close()
}

// Exporter is a ferry.Exporter for one source kind.
type Exporter struct {
	kind ferry.EngineKind
	cfg  Config
	src  source
	s3mu sync.Mutex
	s3   *minio.Client
}

// NewMySQL returns the exporter of MySQL-family tables.
func NewMySQL(cfg Config) *Exporter {
	cfg.defaults()
	return &Exporter{kind: ferry.KindMySQL, cfg: cfg, src: &mysqlSource{}}
}

// NewMongo returns the exporter of MongoDB collections.
func NewMongo(cfg Config) *Exporter {
	cfg.defaults()
	return &Exporter{kind: ferry.KindMongoDB, cfg: cfg, src: &mongoSource{}}
}

// Kind implements ferry.Exporter.
func (e *Exporter) Kind() ferry.EngineKind { return e.kind }

// Check implements ferry.Exporter (no network).
func (e *Exporter) Check(p *ferry.Pipeline, ep *ferry.Endpoint) error {
	if ep.Kind != e.kind {
		return ferry.FieldError("source.clusterName", "endpoint %q is %s, not %s", ep.Name, ep.Kind, e.kind)
	}
	if _, err := codecOf(e.cfg.Compression); err != nil {
		return err
	}
	if _, err := e.sinkFor(p.ProjectID, p.Sink.Location); err != nil {
		return err
	}
	for i, f := range p.Sink.PartitionFields {
		for _, t := range p.Transformations {
			if t.Field == f.FieldName {
				return ferry.FieldError(fmt.Sprintf("sink.partitionFields[%d].fieldName", i), "%q is excluded by a transformation", f.FieldName)
			}
		}
	}
	return e.src.check(p, ep)
}

// checkpoint is a run's resume record.
type checkpoint struct {
	Attempt     int            `json:"attempt"`
	SnapshotID  string         `json:"snapshotId"`
	DatasetName string         `json:"datasetName"`
	Location    string         `json:"location"`
	SnapshotAt  time.Time      `json:"snapshotAt"`
	Position    map[string]any `json:"position,omitempty"`
	Consistency string         `json:"consistency,omitempty"`
	Published   bool           `json:"published,omitempty"`
	// Copy: the run exports an available snapshot again (exportSnapshot).
	Copy bool `json:"copy,omitempty"`
}

// Manifest describes a published dataset (_manifest.json).
type Manifest struct {
	Format          string         `json:"format"` // parquet
	Version         int            `json:"version"`
	DatasetName     string         `json:"datasetName"`
	ProjectID       string         `json:"groupId"`
	PipelineID      string         `json:"pipelineId"`
	PipelineName    string         `json:"pipelineName"`
	RunID           string         `json:"pipelineRunId"`
	SourceKind      string         `json:"sourceKind"`
	ClusterName     string         `json:"clusterName"`
	DatabaseName    string         `json:"databaseName"`
	CollectionName  string         `json:"collectionName"`
	SnapshotID      string         `json:"snapshotId"`
	SnapshotAt      time.Time      `json:"snapshotAt"`
	Position        map[string]any `json:"position,omitempty"`
	Consistency     string         `json:"consistency,omitempty"`
	Compression     string         `json:"compression"`
	PartitionFields []string       `json:"partitionFields,omitempty"`
	Excluded        []string       `json:"excludedFields,omitempty"`
	Schema          []SchemaField  `json:"schema"`
	Files           []FileInfo     `json:"files"`
	Rows            int64          `json:"rows"`
	Bytes           int64          `json:"bytes"`
	CreatedAt       time.Time      `json:"createdAt"`
}

// datasetNames are the dataset names runs of this process export under
// now, by sink: a name is reserved from the snapshot until the run ends
// (by then it is published, or free again).
var datasetNames = &nameReservations{m: map[string]string{}}

type nameReservations struct {
	mu sync.Mutex
	m  map[string]string // sink and name -> run id
}

func (n *nameReservations) reserve(key, runID string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if owner, ok := n.m[key]; ok && owner != runID {
		return false
	}
	n.m[key] = runID
	return true
}

func (n *nameReservations) release(key, runID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m[key] == runID {
		delete(n.m, key)
	}
}

// DatasetName renders the seed's dataset name:
// v1$<kind>$snapshot$<cluster>$<db>$<collection>$<yyyymmddThhmmssZ>.
// It is always one safe path element and S3 key segment: the cluster,
// database and collection (a MySQL table may be named "a/../../b") have
// path separators, '$', '%', control and non-printing characters
// percent-encoded, and a name past 200 bytes is cut and suffixed with a
// digest of the whole.
func DatasetName(kind ferry.EngineKind, cluster, db, coll string, at time.Time) string {
	head := strings.Join([]string{"v1", string(kind), "snapshot", datasetPart(cluster), datasetPart(db), datasetPart(coll)}, "$")
	if len(head) > 200 {
		sum := sha256.Sum256([]byte(head))
		cut := 180
		for cut > 0 && !utf8.RuneStart(head[cut]) {
			cut--
		}
		head = head[:cut] + "~" + hex.EncodeToString(sum[:6])
	}
	return head + "$" + at.UTC().Format("20060102T150405Z")
}

// datasetPart escapes one element of a dataset name.
func datasetPart(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '/' || r == '\\' || r == '$' || r == '%' || r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ':
			for _, c := range []byte(string(r)) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

func parseCheckpoint(b []byte) (*checkpoint, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("run checkpoint: %w", err)
	}
	return &c, nil
}

// Export implements ferry.Exporter.
func (e *Exporter) Export(ctx context.Context, p *ferry.Pipeline, ep *ferry.Endpoint, run *ferry.PipelineRun, rt ferry.RunRuntime) error {
	log := rt.Logger()
	sweepTemp(log, time.Minute)
	prev, err := parseCheckpoint(run.Checkpoint)
	if err != nil {
		return err
	}
	loc := p.Sink.Location
	attempt := 1
	if prev != nil {
		loc = prev.Location
		attempt = prev.Attempt + 1
	}
	sk, err := e.sinkFor(run.ProjectID, loc)
	if err != nil {
		return err
	}
	if prev != nil && prev.DatasetName != "" {
		// An earlier attempt: if it published, the run is done; else
		// discard what it left.
		if b, ok, err := sk.published(ctx, prev.DatasetName); err != nil {
			return err
		} else if ok {
			var m Manifest
			if err := json.Unmarshal(b, &m); err == nil && m.RunID == run.ID {
				rt.SetSnapshot(prev.SnapshotID, prev.DatasetName)
				rt.Phase(ferry.PhaseIngestion)
				rt.Stats(ferry.RunStats{NumDocs: m.Rows, BytesExported: m.Bytes})
				log.Info("dataset was published by an earlier attempt", "dataset", prev.DatasetName)
				return nil
			}
		}
		if err := sk.discard(ctx, prev.DatasetName); err != nil {
			return fmt.Errorf("discard the earlier attempt's files: %w", err)
		}
		log.Info("discarded the unpublished files of an earlier attempt", "dataset", prev.DatasetName, "attempt", prev.Attempt)
	}

	if (prev == nil && run.SnapshotID != "") || (prev != nil && prev.Copy) {
		// A run of an available snapshot: export that snapshot's data.
		return e.exportSnapshot(ctx, p, run, rt, sk, loc, attempt)
	}

	// SNAPSHOT
	rt.Phase(ferry.PhaseSnapshot)
	rt.Stats(ferry.RunStats{})
	excluded := map[string]bool{}
	var excludedList []string
	for _, t := range p.Transformations {
		if t.Type == "EXCLUDE" {
			excluded[t.Field] = true
			excludedList = append(excludedList, t.Field)
		}
	}
	rd, err := e.src.open(ctx, p, ep, excluded)
	if err != nil {
		return err
	}
	defer rd.close()
	name, at, err := e.freeName(ctx, sk, p, run, e.cfg.Now().UTC().Truncate(time.Second))
	if err != nil {
		return err
	}
	defer datasetNames.release(sk.String()+"\x00"+name, run.ID)
	snapID := ferry.NewID()
	pos, consistency := rd.position()
	cp := checkpoint{Attempt: attempt, SnapshotID: snapID, DatasetName: name, Location: loc, SnapshotAt: at, Position: pos, Consistency: consistency}
	// The checkpoint first: a run whose record shows a snapshot id but has
	// no checkpoint is a run of an available snapshot.
	if err := e.save(ctx, rt, &cp); err != nil {
		return err
	}
	rt.SetSnapshot(snapID, name)
	log.Info("pipeline snapshot taken", "snapshotId", snapID, "dataset", name, "sink", sk.String(), "position", pos, "consistency", consistency)

	// EXPORT
	rt.Phase(ferry.PhaseExport)
	root, err := rd.schema(ctx)
	if err != nil {
		return err
	}
	parts, err := partitionCols(root, p.Sink.PartitionFields)
	if err != nil {
		return err
	}
	st, err := sk.stage(ctx, name)
	if err != nil {
		return err
	}
	w, err := newDatasetWriter(st, root, &e.cfg, e.cfg.Writers, map[string]string{"ferry.snapshotId": snapID, "ferry.datasetName": name})
	if err != nil {
		return err
	}
	fl := newFlow(ctx, w, rd, parts)
	fail := func(err error) error {
		fl.abort()
		if ctx.Err() == nil {
			// A failure (not an interruption): remove the files now.
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if derr := sk.discard(dctx, name); derr != nil {
				log.Warn("discard staging", "err", derr)
			}
		}
		return err
	}
	err = rd.each(ctx, func(fields [][]byte) error {
		if err := fl.add(fields); err != nil {
			return err
		}
		if fl.read&1023 == 0 {
			if e.cfg.OnProgress != nil {
				// Tests: the stats are exact at the hook.
				if err := fl.sync(); err != nil {
					return err
				}
			}
			rt.Stats(ferry.RunStats{NumDocs: w.rows.Load(), BytesExported: w.written.Load()})
			if e.cfg.OnProgress != nil {
				e.cfg.OnProgress(ctx, run, fl.read)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fail(err)
	}
	if err := fl.finish(); err != nil {
		return fail(err)
	}
	rows := w.rows.Load()
	if rows != fl.read {
		return fail(fmt.Errorf("wrote %d rows of %d read", rows, fl.read))
	}
	files := w.finished()
	rt.Stats(ferry.RunStats{NumDocs: rows, BytesExported: w.written.Load()})

	// INGESTION
	rt.Phase(ferry.PhaseIngestion)
	m := Manifest{Format: "parquet", Version: 1, DatasetName: name, ProjectID: run.ProjectID, PipelineID: p.ID, PipelineName: p.Name,
		RunID: run.ID, SourceKind: string(e.kind), ClusterName: p.Source.ClusterName, DatabaseName: p.Source.DatabaseName,
		CollectionName: p.Source.CollectionName, SnapshotID: snapID, SnapshotAt: at, Position: pos, Consistency: consistency,
		Compression: compressionName(e.cfg.Compression), Excluded: excludedList, Files: files, Rows: rows, CreatedAt: e.cfg.Now().UTC()}
	if m.Files == nil {
		m.Files = []FileInfo{}
	}
	for _, pc := range parts {
		m.PartitionFields = append(m.PartitionFields, pc.col.Name)
	}
	for _, f := range root.Fields {
		m.Schema = append(m.Schema, describe(f))
	}
	for _, f := range files {
		m.Bytes += f.Bytes
	}
	mb, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := st.publish(ctx, mb); err != nil {
		return fail(err)
	}
	rt.Stats(ferry.RunStats{NumDocs: m.Rows, BytesExported: m.Bytes})
	cp.Published = true
	if err := e.save(ctx, rt, &cp); err != nil {
		log.Warn("save checkpoint after publishing", "err", err)
	}
	log.Info("dataset published", "dataset", name, "rows", m.Rows, "bytes", m.Bytes, "files", len(m.Files))
	return nil
}

// freeName returns the first dataset name from the one of at on (a second
// later each time) that no dataset has and no run of this process exports
// under, reserved for run; release it when the run ends.
func (e *Exporter) freeName(ctx context.Context, sk sink, p *ferry.Pipeline, run *ferry.PipelineRun, at time.Time) (string, time.Time, error) {
	name := DatasetName(e.kind, p.Source.ClusterName, p.Source.DatabaseName, p.Source.CollectionName, at)
	for i := 0; ; i++ {
		_, ok, err := sk.published(ctx, name)
		if err != nil {
			return "", at, err
		}
		if !ok && datasetNames.reserve(sk.String()+"\x00"+name, run.ID) {
			return name, at, nil
		}
		if i == 100 {
			return "", at, fmt.Errorf("dataset names %s and the next 100 seconds are taken", name)
		}
		at = at.Add(time.Second)
		name = DatasetName(e.kind, p.Source.ClusterName, p.Source.DatabaseName, p.Source.CollectionName, at)
	}
}

// exportSnapshot exports an available snapshot again: the files of the
// dataset that holds it (published by an earlier run of the pipeline) are
// copied into a dataset of this run, named by the snapshot's time, with
// the same snapshot id, position and rows.
func (e *Exporter) exportSnapshot(ctx context.Context, p *ferry.Pipeline, run *ferry.PipelineRun, rt ferry.RunRuntime, sk sink, loc string, attempt int) error {
	log := rt.Logger()
	rt.Phase(ferry.PhaseSnapshot)
	rt.Stats(ferry.RunStats{})
	names, err := sk.list(ctx)
	if err != nil {
		return err
	}
	var src *Manifest
	var srcName string
	for _, n := range names {
		b, ok, err := sk.published(ctx, n)
		if err != nil || !ok {
			continue
		}
		var m Manifest
		if json.Unmarshal(b, &m) == nil && m.SnapshotID == run.SnapshotID && m.PipelineID == p.ID && m.RunID != run.ID {
			src, srcName = &m, n
			break
		}
	}
	if src == nil {
		return &ferry.Error{Code: ferry.ENOTFOUND, Reason: "SNAPSHOT_NOT_FOUND",
			Message: fmt.Sprintf("snapshot %s is no longer available: no dataset of pipeline %q at %s holds it", run.SnapshotID, p.Name, sk.String())}
	}
	name, at, err := e.freeName(ctx, sk, p, run, src.SnapshotAt.UTC().Truncate(time.Second))
	if err != nil {
		return err
	}
	defer datasetNames.release(sk.String()+"\x00"+name, run.ID)
	cp := checkpoint{Attempt: attempt, SnapshotID: run.SnapshotID, DatasetName: name, Location: loc, SnapshotAt: src.SnapshotAt, Position: src.Position, Consistency: src.Consistency, Copy: true}
	if err := e.save(ctx, rt, &cp); err != nil {
		return err
	}
	rt.SetSnapshot(run.SnapshotID, name)
	log.Info("exporting an available snapshot again", "snapshotId", run.SnapshotID, "from", srcName, "dataset", name, "named at", at)
	rt.Phase(ferry.PhaseExport)
	st, err := sk.stage(ctx, name)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		if ctx.Err() == nil {
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if derr := sk.discard(dctx, name); derr != nil {
				log.Warn("discard staging", "err", derr)
			}
		}
		return err
	}
	var stats ferry.RunStats
	for _, f := range src.Files {
		if err := copyFile(ctx, sk, srcName, st, f.Path); err != nil {
			return fail(err)
		}
		stats.NumDocs += f.Rows
		stats.BytesExported += f.Bytes
		rt.Stats(stats)
	}
	rt.Phase(ferry.PhaseIngestion)
	m := *src
	m.DatasetName, m.RunID, m.PipelineName, m.CreatedAt = name, run.ID, p.Name, e.cfg.Now().UTC()
	mb, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := st.publish(ctx, mb); err != nil {
		return fail(err)
	}
	rt.Stats(ferry.RunStats{NumDocs: m.Rows, BytesExported: m.Bytes})
	cp.Published = true
	if err := e.save(ctx, rt, &cp); err != nil {
		log.Warn("save checkpoint after publishing", "err", err)
	}
	log.Info("dataset published", "dataset", name, "rows", m.Rows, "bytes", m.Bytes, "files", len(m.Files), "snapshotId", run.SnapshotID)
	return nil
}

func copyFile(ctx context.Context, sk sink, from string, st stage, rel string) error {
	rc, err := sk.open(ctx, from, rel)
	if err != nil {
		return fmt.Errorf("read %s of %s: %w", rel, from, err)
	}
	defer rc.Close()
	wc, err := st.create(ctx, rel)
	if err != nil {
		return err
	}
	if _, err := io.Copy(wc, rc); err != nil {
		wc.Close()
		return fmt.Errorf("copy %s: %w", rel, err)
	}
	return wc.Close()
}

func compressionName(c string) string {
	if c == "" {
		return "zstd"
	}
	return strings.ToLower(c)
}

func (e *Exporter) save(ctx context.Context, rt ferry.RunRuntime, cp *checkpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return rt.Save(ctx, b)
}

type partCol struct {
	index int
	col   *col
}

// partitionCols resolves the partition fields (ordered) to top-level leaf
// columns.
func partitionCols(root *col, fields []ferry.PartitionField) ([]partCol, error) {
	fs := append([]ferry.PartitionField(nil), fields...)
	sortPartitionFields(fs)
	var out []partCol
	for _, f := range fs {
		found := false
		for i, c := range root.Fields {
			if c.Name == f.FieldName {
				if c.Leaf == nil {
					return nil, &ferry.Error{Code: ferry.EINVALID, Field: "sink.partitionFields", Reason: "INVALID_PARTITION_FIELD",
						Message: fmt.Sprintf("partition field %q is a document or an array, not a value", f.FieldName)}
				}
				out = append(out, partCol{index: i, col: c})
				found = true
				break
			}
		}
		if !found {
			return nil, &ferry.Error{Code: ferry.EINVALID, Field: "sink.partitionFields", Reason: "INVALID_PARTITION_FIELD",
				Message: fmt.Sprintf("partition field %q is not a field of the source", f.FieldName)}
		}
	}
	return out, nil
}

func sortPartitionFields(fs []ferry.PartitionField) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Order < fs[j-1].Order; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// DeleteDataset implements ferry.Exporter: it removes the run's published
// dataset (and anything an unpublished attempt left).
func (e *Exporter) DeleteDataset(ctx context.Context, p *ferry.Pipeline, run *ferry.PipelineRun) error {
	cp, err := parseCheckpoint(run.Checkpoint)
	if err != nil {
		return err
	}
	loc, name := p.Sink.Location, run.DatasetName
	if cp != nil {
		loc = cp.Location
		if name == "" {
			name = cp.DatasetName
		}
	}
	if name == "" {
		return nil
	}
	if err := checkDatasetName(name); err != nil {
		return err
	}
	sk, err := e.sinkFor(run.ProjectID, loc)
	if err != nil {
		return err
	}
	if err := sk.remove(ctx, name); err != nil {
		return err
	}
	return sk.discard(ctx, name)
}

// DiscardStaging implements ferry.StagingDiscarder: it removes what the
// last unpublished attempt of a failed run left (the dataset its checkpoint
// names: local staging directory, S3 objects without a manifest) and this
// host's temporary files of dead exports. A published dataset is never
// touched.
func (e *Exporter) DiscardStaging(ctx context.Context, p *ferry.Pipeline, run *ferry.PipelineRun) error {
	sweepTemp(e.cfg.Logger, time.Minute)
	cp, err := parseCheckpoint(run.Checkpoint)
	if err != nil || cp == nil || cp.DatasetName == "" || cp.Published {
		return err
	}
	if err := checkDatasetName(cp.DatasetName); err != nil {
		return err
	}
	sk, err := e.sinkFor(run.ProjectID, cp.Location)
	if err != nil {
		return err
	}
	if err := sk.discard(ctx, cp.DatasetName); err != nil {
		return fmt.Errorf("discard %s: %w", cp.DatasetName, err)
	}
	e.cfg.Logger.Info("discarded the unpublished files of a failed run", "pipelineRun", run.ID, "dataset", cp.DatasetName, "sink", sk.String())
	return nil
}

// Datasets lists the published datasets of a project's default location
// or of location.
func (e *Exporter) Datasets(ctx context.Context, projectID, location string) ([]string, error) {
	sk, err := e.sinkFor(projectID, location)
	if err != nil {
		return nil, err
	}
	return sk.list(ctx)
}

// ReadManifest returns a published dataset's manifest.
func (e *Exporter) ReadManifest(ctx context.Context, projectID, location, name string) (*Manifest, error) {
	sk, err := e.sinkFor(projectID, location)
	if err != nil {
		return nil, err
	}
	b, ok, err := sk.published(ctx, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("dataset " + name + " is not published")
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

var _ ferry.StagingDiscarder = (*Exporter)(nil)
