package pipeline_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/pipeline"
)

// TestTraversalNamesRefused: names that would climb out of the data dir
// are refused where a user chooses them (endpoint, pipeline, location).
func TestTraversalNamesRefused(t *testing.T) {
	e := newEnv(t, pipeline.Config{})
	bad := &ferry.Endpoint{ProjectID: e.proj.ID, Name: "e/../../../../X", Kind: ferry.KindMySQL, Addrs: []string{"127.0.0.1:1"}}
	if err := e.svc.CreateEndpoint(e.ctx, bad); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Fatalf("endpoint named %q: %v, want invalid", bad.Name, err)
	}
	e.startMariaDB("Cluster0", 10)
	for _, name := range []string{"..", "x..y", "a\u202Eb"} {
		p := ordersPipeline(name)
		p.ProjectID = e.proj.ID
		if err := e.svc.CreatePipeline(e.ctx, p); ferry.ErrorCode(err) != ferry.EINVALID {
			t.Fatalf("pipeline named %q: %v, want invalid", name, err)
		}
	}
	// Another project's folder is not a location.
	other := filepath.Join(e.cfg.Dir, ferry.NewID())
	p := ordersPipeline("into-other")
	p.ProjectID = e.proj.ID
	p.Sink.Location = other
	if err := e.svc.CreatePipeline(e.ctx, p); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Fatalf("location %s: %v, want invalid", other, err)
	}
	// A run an older ferry recorded with a name that climbs out: deleting
	// its dataset is a clear conflict, and nothing outside is touched.
	victim := filepath.Join(e.dir, "victim")
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	old := &ferry.PipelineRun{ID: ferry.NewID(), ProjectID: e.proj.ID, State: ferry.RunDone, DatasetName: "v1$mysql$snapshot$c$..$../../../victim"}
	err := e.mysql.DeleteDataset(e.ctx, &ferry.Pipeline{ProjectID: e.proj.ID}, old)
	if fe := ferry.AsError(err); fe == nil || fe.Code != ferry.ECONFLICT || fe.Reason != "UNSAFE_DATASET_NAME" {
		t.Fatalf("delete a dataset named %q: %v", old.DatasetName, err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("the directory outside was touched: %v", err)
	}
}

// TestSourceTableNameContained: a name a source database supplies is
// contained: a real MariaDB table named "../../../../escape" (legal in
// backquotes) exports into the project's own folder, and deleting the
// run's dataset removes it.
func TestSourceTableNameContained(t *testing.T) {
	e := newEnv(t, pipeline.Config{})
	e.startMariaDB("Cluster0", 10)

	const table = "../../../../escape"
	if _, err := e.src.ExecContext(e.ctx, "CREATE TABLE shop.`"+table+"` (id BIGINT PRIMARY KEY, v VARCHAR(10))"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.src.ExecContext(e.ctx, "INSERT INTO shop.`"+table+"` VALUES (1,'a'),(2,'b'),(3,'c')"); err != nil {
		t.Fatal(err)
	}
	p := &ferry.Pipeline{Name: "escape",
		Source: ferry.PipelineSource{Type: ferry.SourceOnDemand, ClusterName: "Cluster0", DatabaseName: "shop", CollectionName: table},
		Sink:   ferry.PipelineSink{Type: "DLS"}}
	e.createPipeline(p)
	e.startAgent(5 * time.Second)
	run, err := e.svc.TriggerRun(e.ctx, e.proj.ID, p.Name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := e.waitRun(p, run.ID, time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunDone {
		t.Fatalf("run %s: %s", r.State, r.Error)
	}
	own := filepath.Join(e.cfg.Dir, e.proj.ID)
	if strings.ContainsAny(r.DatasetName, `/\`) {
		t.Fatalf("dataset name %q is not one path element", r.DatasetName)
	}
	m, err := e.mysql.ReadManifest(e.ctx, e.proj.ID, "", r.DatasetName)
	if err != nil || m.Rows != 3 {
		t.Fatalf("manifest %+v %v", m, err)
	}
	if _, err := os.Stat(filepath.Join(own, r.DatasetName, pipeline.ManifestName)); err != nil {
		t.Fatalf("the dataset is not in the project's folder: %v", err)
	}
	// Nothing anywhere under the test's directory outside the project's
	// folder holds the export.
	outside := func() []string {
		var out []string
		filepath.WalkDir(filepath.Dir(e.dir), func(path string, d fs.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), "escape") && !strings.HasPrefix(path, own+string(filepath.Separator)) {
				out = append(out, path)
			}
			return nil
		})
		return out
	}
	if o := outside(); len(o) > 0 {
		t.Fatalf("the export wrote outside %s: %v", own, o)
	}
	if _, err := e.svc.DeleteRunDataset(e.ctx, e.proj.ID, p.Name, run.ID); err != nil {
		t.Fatalf("delete the dataset: %v", err)
	}
	if _, err := os.Stat(filepath.Join(own, r.DatasetName)); !os.IsNotExist(err) {
		t.Fatalf("the dataset is still there: %v", err)
	}
}

func TestDatasetNameIsOnePathElement(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range [][3]string{
		{"Cluster0", "shop", "orders"},
		{"c", "..", "../../../etc/passwd"},
		{"c", `a\b`, "x/y"},
		{"c", "d", "nul\x00and\u202Ebidi"},
		{"c", strings.Repeat("d", 64), strings.Repeat("ü/", 64)},
		{"", "", ""},
	} {
		n := pipeline.DatasetName(ferry.KindMySQL, c[0], c[1], c[2], at)
		if strings.ContainsAny(n, "/\\\x00\u202E") || n == "." || n == ".." || len(n) > 255 || !strings.HasSuffix(n, "$20260102T030405Z") {
			t.Errorf("DatasetName(%q) = %q", c, n)
		}
		if filepath.Base(n) != n || filepath.Clean(n) != n {
			t.Errorf("DatasetName(%q) = %q is not one clean path element", c, n)
		}
	}
	if got := pipeline.DatasetName(ferry.KindMySQL, "Cluster0", "shop", "orders", at); got != "v1$mysql$snapshot$Cluster0$shop$orders$20260102T030405Z" {
		t.Errorf("plain names changed: %s", got)
	}
}
