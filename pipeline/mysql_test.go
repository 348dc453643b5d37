package pipeline_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/pipeline"
)

var datasetNameRE = regexp.MustCompile(`^v1\$mysql\$snapshot\$Cluster0\$shop\$orders\$\d{8}T\d{6}Z$`)

func ordersPipeline(name string) *ferry.Pipeline {
	return &ferry.Pipeline{Name: name,
		Source:                 ferry.PipelineSource{Type: ferry.SourceOnDemand, ClusterName: "Cluster0", DatabaseName: "shop", CollectionName: "orders"},
		Sink:                   ferry.PipelineSink{Type: "DLS", PartitionFields: []ferry.PartitionField{{FieldName: "region", Order: 0}}},
		Transformations:        []ferry.Transformation{{Field: "ssn", Type: "EXCLUDE"}},
		DatasetRetentionPolicy: &ferry.RetentionPolicy{Units: "DAYS", Value: 1},
	}
}

// checkPublished asserts the run's dataset is published, complete and
// equal to the source, and returns its manifest.
func (e *env) checkPublished(r *ferry.PipelineRun, rows int) *pipeline.Manifest {
	t := e.t
	t.Helper()
	if !datasetNameRE.MatchString(r.DatasetName) || !ferry.ValidID(r.SnapshotID) {
		t.Fatalf("datasetName %q snapshotId %q", r.DatasetName, r.SnapshotID)
	}
	m, err := e.mysql.ReadManifest(e.ctx, e.proj.ID, "", r.DatasetName)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != int64(rows) || r.Stats.NumDocs != int64(rows) || r.Stats.BytesExported != m.Bytes || m.Bytes == 0 {
		t.Fatalf("stats %+v, manifest rows %d bytes %d, want %d rows", r.Stats, m.Rows, m.Bytes, rows)
	}
	if m.SnapshotID != r.SnapshotID || m.RunID != r.ID || m.Position["binlogFile"] == nil {
		t.Fatalf("manifest snapshot %s run %s position %v", m.SnapshotID, m.RunID, m.Position)
	}
	root := filepath.Join(e.cfg.Dir, e.proj.ID, r.DatasetName)
	data := readDataset(e.t, root, m)
	compareWithSource(t, e.src, data, "ssn")
	var total int64
	for _, f := range m.Files {
		if !strings.HasPrefix(f.Path, "region=") {
			t.Fatalf("file %s is not in a region= partition", f.Path)
		}
		st, err := os.Stat(filepath.Join(root, filepath.FromSlash(f.Path)))
		if err != nil || st.Size() != f.Bytes {
			t.Fatalf("file %s: %v size vs manifest %d", f.Path, err, f.Bytes)
		}
		total += f.Bytes
	}
	if total != m.Bytes {
		t.Fatalf("files hold %d bytes, manifest says %d", total, m.Bytes)
	}
	return m
}

// TestMySQLOnDemandAndRetention: an on-demand run exported by an agent,
// read back row by row; live stats while it runs; then the retention
// reaper (the service's clock moved past scheduledDeletionDate) deletes
// the dataset and the run shows DATASET_DELETED.
func TestMySQLOnDemandAndRetention(t *testing.T) {
	e := newEnv(t, pipeline.Config{RowGroupBytes: 256 << 10, FileBytes: 1 << 20})
	const n = 30000
	e.startMariaDB("Cluster0", n)
	p := e.createPipeline(ordersPipeline("orders"))

	// Live stats: hold the export at 10k rows until the run shows them.
	var seen atomic.Int64
	release := make(chan struct{})
	e.setHook(func(ctx context.Context, run *ferry.PipelineRun, rows int64) {
		if rows == 10240 {
			seen.Store(rows)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	start := time.Now()
	e.startAgent(5 * time.Second)
	run, err := e.svc.TriggerRun(e.ctx, e.proj.ID, p.Name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := e.svc.GetRun(e.ctx, e.proj.ID, p.Name, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == ferry.RunInProgress && r.Phase == ferry.PhaseExport && r.Stats.NumDocs >= 10240 && r.DatasetName != "" {
			t.Logf("live: %s/%s numDocs=%d bytesExported=%d", r.State, r.Phase, r.Stats.NumDocs, r.Stats.BytesExported)
			if r.Stats.BytesExported == 0 {
				t.Fatalf("bytesExported 0 after 10k rows with 256 KiB row groups")
			}
			if list, _ := e.mysql.Datasets(e.ctx, e.proj.ID, ""); len(list) != 0 {
				t.Fatalf("a dataset is visible mid-export: %v", list)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live stats: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(release)
	r := e.waitRun(p, run.ID, 2*time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunDone {
		t.Fatalf("run %s: %s", r.State, r.Error)
	}
	t.Logf("run done in %v: %+v dataset %s", time.Since(start), r.Stats, r.DatasetName)
	m := e.checkPublished(r, n)
	if len(m.Files) < 3 || m.Files[0].RowGroups < 1 {
		t.Fatalf("files %+v", m.Files)
	}
	if ds, _ := e.mysql.Datasets(e.ctx, e.proj.ID, ""); len(ds) != 1 || ds[0] != r.DatasetName {
		t.Fatalf("datasets %v", ds)
	}

	// Retention: 1 day; move the service's clock 25 hours on.
	if r.ScheduledDeletionDate == nil || r.ScheduledDeletionDate.Sub(r.CreatedAt) != 24*time.Hour {
		t.Fatalf("scheduledDeletionDate %v created %v", r.ScheduledDeletionDate, r.CreatedAt)
	}
	e.advance(25 * time.Hour)
	r = e.waitRun(p, run.ID, 10*time.Second, ferry.RunDatasetDeleted)
	if ds, _ := e.mysql.Datasets(e.ctx, e.proj.ID, ""); len(ds) != 0 {
		t.Fatalf("datasets after retention %v", ds)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Dir, e.proj.ID, r.DatasetName)); !os.IsNotExist(err) {
		t.Fatalf("dataset directory still there: %v", err)
	}
}

// TestMySQLScheduled: a periodic pipeline whose next run is due (set in
// the past through the store) gets its run from the agent's housekeeping.
func TestMySQLScheduled(t *testing.T) {
	e := newEnv(t, pipeline.Config{Compression: "snappy"})
	const n = 2000
	e.startMariaDB("Cluster0", n)
	p := ordersPipeline("hourly")
	p.Source.Type = ferry.SourcePeriodic
	p.BackupFrequencyType = "HOURLY"
	p.Sink.PartitionFields = []ferry.PartitionField{{FieldName: "customer", Order: 1}, {FieldName: "region", Order: 0}}
	e.createPipeline(p)
	past := time.Now().Add(-time.Minute)
	if _, err := e.db.UpdatePipeline(e.ctx, p.ID, func(q *ferry.Pipeline) error { q.NextRunAt = &past; return nil }); err != nil {
		t.Fatal(err)
	}
	e.startAgent(5 * time.Second)
	var runs []*ferry.PipelineRun
	deadline := time.Now().Add(30 * time.Second)
	for len(runs) == 0 {
		var err error
		if runs, _, err = e.svc.ListRuns(e.ctx, e.proj.ID, p.Name, 0, 10); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no scheduled run")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := e.waitRun(p, runs[0].ID, time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunDone || r.BackupFrequencyType != "HOURLY" {
		t.Fatalf("run %s %s: %s", r.State, r.BackupFrequencyType, r.Error)
	}
	m, err := e.mysql.ReadManifest(e.ctx, e.proj.ID, "", r.DatasetName)
	if err != nil {
		t.Fatal(err)
	}
	if m.Compression != "snappy" || strings.Join(m.PartitionFields, ",") != "region,customer" {
		t.Fatalf("manifest compression %s partitions %v", m.Compression, m.PartitionFields)
	}
	for _, f := range m.Files {
		if !regexp.MustCompile(`^region=[a-z]{2}/customer=cust-\d{3}/part-\d{5}\.parquet$`).MatchString(f.Path) {
			t.Fatalf("file path %s", f.Path)
		}
	}
	root := filepath.Join(e.cfg.Dir, e.proj.ID, r.DatasetName)
	compareWithSource(t, e.src, readDataset(t, root, m), "ssn")
	np, _ := e.svc.GetPipeline(e.ctx, e.proj.ID, p.Name)
	if np.NextRunAt == nil || !np.NextRunAt.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("next run at %v", np.NextRunAt)
	}
}

// TestMySQLKilledMidExport: an agent killed in the middle of the EXPORT
// phase publishes nothing; another agent takes the run over when the lease
// expires, discards the first attempt's files and publishes the dataset.
func TestMySQLKilledMidExport(t *testing.T) {
	e := newEnv(t, pipeline.Config{RowGroupBytes: 128 << 10, FileBytes: 512 << 10})
	const n = 20000
	e.startMariaDB("Cluster0", n)
	p := e.createPipeline(ordersPipeline("orders"))
	mid := make(chan string, 1)
	var attempts atomic.Int32
	e.setHook(func(ctx context.Context, run *ferry.PipelineRun, rows int64) {
		if rows == 8192 && attempts.Add(1) == 1 {
			var cp struct {
				DatasetName string `json:"datasetName"`
			}
			fresh, _ := e.db.GetRun(context.Background(), run.ID)
			_ = json.Unmarshal(fresh.Checkpoint, &cp)
			mid <- cp.DatasetName
			<-ctx.Done() // stays mid-export until killed
		}
	})
	a1 := e.startAgent(2 * time.Second)
	run, err := e.svc.TriggerRun(e.ctx, e.proj.ID, p.Name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var first string
	select {
	case first = <-mid:
	case <-time.After(time.Minute):
		t.Fatal("export never reached 8k rows")
	}
	staging := filepath.Join(e.cfg.Dir, e.proj.ID, ".staging", first)
	time.Sleep(300 * time.Millisecond) // a heartbeat carries the live stats
	a1.Kill()
	r, _ := e.db.GetRun(e.ctx, run.ID)
	if r.State != ferry.RunInProgress || r.Phase != ferry.PhaseExport {
		t.Fatalf("killed run is %s/%s", r.State, r.Phase)
	}
	if ds, _ := e.mysql.Datasets(e.ctx, e.proj.ID, ""); len(ds) != 0 {
		t.Fatalf("a killed run published %v", ds)
	}
	if ents, err := os.ReadDir(staging); err != nil || len(ents) == 0 {
		t.Fatalf("the killed attempt left no staging files (%v): the test did not kill mid-export", err)
	}
	e.startAgent(2 * time.Second)
	r = e.waitRun(p, run.ID, 2*time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunDone {
		t.Fatalf("retry: %s %s", r.State, r.Error)
	}
	if r.DatasetName == first {
		t.Fatalf("the retry reused the killed attempt's name %s", first)
	}
	e.checkPublished(r, n)
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Fatalf("the killed attempt's staging files are still there: %v", err)
	}
	if ds, _ := e.mysql.Datasets(e.ctx, e.proj.ID, ""); len(ds) != 1 {
		t.Fatalf("datasets %v", ds)
	}
	// DELETE …/runs/{id}: the dataset goes at once.
	r, err = e.svc.DeleteRunDataset(e.ctx, e.proj.ID, p.Name, run.ID)
	if err != nil || r.State != ferry.RunDatasetDeleted {
		t.Fatalf("delete run dataset: %v %v", r, err)
	}
	if ds, _ := e.mysql.Datasets(e.ctx, e.proj.ID, ""); len(ds) != 0 {
		t.Fatalf("datasets after delete %v", ds)
	}
}

// TestMySQLFailedRunPublishesNothing: an export that fails (a partition
// field that is not a column) ends FAILED with nothing published or
// staged.
func TestMySQLFailedRunPublishesNothing(t *testing.T) {
	e := newEnv(t, pipeline.Config{})
	e.startMariaDB("Cluster0", 100)
	p := ordersPipeline("bad")
	p.Sink.PartitionFields = []ferry.PartitionField{{FieldName: "nope", Order: 0}}
	e.createPipeline(p)
	e.startAgent(5 * time.Second)
	run, err := e.svc.TriggerRun(e.ctx, e.proj.ID, p.Name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := e.waitRun(p, run.ID, time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunFailed || !strings.Contains(r.Error, "nope") {
		t.Fatalf("run %s: %q", r.State, r.Error)
	}
	if ds, _ := e.mysql.Datasets(e.ctx, e.proj.ID, ""); len(ds) != 0 {
		t.Fatalf("datasets %v", ds)
	}
	ents, _ := os.ReadDir(filepath.Join(e.cfg.Dir, e.proj.ID, ".staging"))
	if len(ents) != 0 {
		t.Fatalf("staging left: %v", ents)
	}
}
