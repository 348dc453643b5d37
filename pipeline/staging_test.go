package pipeline_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/pipeline"
)

// TestS3StagingCleanup: the leftovers of interrupted runs on an S3 sink
// are cleaned up.
//
//  1. An agent killed mid-export leaves objects of its unpublished dataset
//     in the bucket (no manifest: not listed); the retry removes them
//     before it publishes; a temporary file a dead process left (unlocked)
//     is removed by the next export on the host, one still locked by a
//     live process is not.
//  2. An agent stopped mid-export leaves its run FAILED with objects in the
//     bucket; the reaper (agents' housekeeping) removes them and forgets
//     the run's checkpoint.
func TestS3StagingCleanup(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	endpoint, ak, sk := testharness.StartS3(t)
	cl, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(ak, sk, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cl.MakeBucket(ctx, "lake", minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, pipeline.Config{RowGroupBytes: 16 << 10, FileBytes: 32 << 10,
		S3: &pipeline.S3Config{Endpoint: endpoint, AccessKey: ak, SecretKey: sk, Region: "us-east-1", PathStyle: true}})
	const n = 6000
	e.startMariaDB("Cluster0", n)
	p := ordersPipeline("to-s3")
	p.Sink.Location = "s3://lake/exports/orders"
	e.createPipeline(p)
	objects := func(prefix string) (keys []string) {
		for o := range cl.ListObjects(ctx, "lake", minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			keys = append(keys, o.Key)
		}
		return keys
	}
	// Held mid-export: the first attempt of each run, at 4,096 rows.
	mid := make(chan string, 1)
	var held sync1
	e.setHook(func(ctx context.Context, run *ferry.PipelineRun, rows int64) {
		if rows == 4096 && held.first(run.ID) {
			var cp struct {
				DatasetName string `json:"datasetName"`
			}
			fresh, _ := e.db.GetRun(context.Background(), run.ID)
			_ = json.Unmarshal(fresh.Checkpoint, &cp)
			mid <- cp.DatasetName
			<-ctx.Done()
		}
	})

	// Temporary files: one of a dead process (unlocked, a minute old), one
	// of a live one (locked).
	dead := filepath.Join(tmp, "ferry-pipeline-spill-dead")
	live := filepath.Join(tmp, "ferry-pipeline-spill-live")
	for _, f := range []string{dead, live} {
		if err := os.WriteFile(f, []byte("spill"), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-2 * time.Minute)
		os.Chtimes(f, old, old)
	}
	lf, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	// 1. Killed, then retried.
	a1 := e.startAgent(time.Second)
	run, err := e.svc.TriggerRun(e.ctx, e.proj.ID, p.Name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	first := waitMid(t, mid)
	a1.Kill()
	left := objects("exports/orders/" + e.proj.ID + "/" + first + "/")
	if len(left) == 0 {
		t.Fatal("the killed attempt left no objects: the test did not kill mid-export")
	}
	for _, k := range left {
		if strings.HasSuffix(k, pipeline.ManifestName) {
			t.Fatalf("the killed attempt wrote its manifest %s", k)
		}
	}
	if ds, _ := e.mysql.Datasets(ctx, e.proj.ID, p.Sink.Location); len(ds) != 0 {
		t.Fatalf("a killed run published %v", ds)
	}
	_, stopRetry := e.startStoppableAgent(time.Second)
	r := e.waitRun(p, run.ID, time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunDone || r.DatasetName == first {
		t.Fatalf("retry: %s %s %s", r.State, r.DatasetName, r.Error)
	}
	if keys := objects("exports/orders/" + e.proj.ID + "/" + first + "/"); len(keys) != 0 {
		t.Fatalf("the killed attempt's objects are still there: %v", keys)
	}
	m, err := e.mysql.ReadManifest(ctx, e.proj.ID, p.Sink.Location, r.DatasetName)
	if err != nil || m.Rows != n {
		t.Fatalf("manifest %v %v", m, err)
	}
	if got, want := len(objects("exports/orders/"+e.proj.ID+"/")), len(m.Files)+1; got != want {
		t.Fatalf("%d objects in the bucket, want the dataset's %d files and its manifest", got, want-1)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatalf("a dead process's temporary file is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("a live process's temporary file was removed: %v", err)
	}

	stopRetry()

	// 2. Stopped gracefully: the run is handed back (not failed), its staged
	// objects stay for the next attempt. Had it ended FAILED (as an export
	// error leaves it), the reaper discards them.
	_, stop := e.startStoppableAgent(time.Second)
	run2, err := e.svc.TriggerRun(e.ctx, e.proj.ID, p.Name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	second := waitMid(t, mid)
	stop()
	r2, err := e.db.GetRun(ctx, run2.ID)
	if err != nil || r2.State != ferry.RunInProgress || r2.Lease != nil || len(r2.Checkpoint) == 0 {
		t.Fatalf("stopped run: %v %s %q lease %+v checkpoint %s", err, r2.State, r2.Error, r2.Lease, r2.Checkpoint)
	}
	if len(objects("exports/orders/"+e.proj.ID+"/"+second+"/")) == 0 {
		t.Fatal("the stopped attempt left no objects: the test did not stop mid-export")
	}
	if _, err := e.db.UpdateRun(ctx, run2.ID, func(r *ferry.PipelineRun) error {
		r.State, r.Error = ferry.RunFailed, "export failed (set by the test)"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.startAgent(time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for len(objects("exports/orders/"+e.proj.ID+"/"+second+"/")) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the reaper left the failed run's objects: %v", objects("exports/orders/"+e.proj.ID+"/"+second+"/"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		r2, _ = e.db.GetRun(ctx, run2.ID)
		if len(r2.Checkpoint) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reaped run keeps its checkpoint %s", r2.Checkpoint)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The published dataset is untouched.
	if m2, err := e.mysql.ReadManifest(ctx, e.proj.ID, p.Sink.Location, r.DatasetName); err != nil || m2.Rows != n {
		t.Fatalf("published dataset after reaping: %v %v", m2, err)
	}
	if got := len(objects("exports/orders/" + e.proj.ID + "/")); got != len(m.Files)+1 {
		t.Fatalf("%d objects in the bucket after reaping, want %d", got, len(m.Files)+1)
	}
}

func waitMid(t *testing.T, mid chan string) string {
	t.Helper()
	select {
	case name := <-mid:
		return name
	case <-time.After(time.Minute):
		t.Fatal("export never reached 4,096 rows")
	}
	return ""
}

// sync1 says yes once per key.
type sync1 struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (s *sync1) first(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[key] {
		return false
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[key] = true
	return true
}
