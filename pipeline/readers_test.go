package pipeline_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/atlas"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/pipeline"
)

// The independent reader: hyparquet (a JavaScript Parquet reader with no
// code in common with parquet-go) with hyparquet-compressors for zstd,
// installed from the npm registry into the user's cache directory on first
// use and run with the machine's node.
const (
	hyparquetVersion   = "1.31.5"
	hypCompressVersion = "1.1.2"
)

func hyparquetDir(t *testing.T) string {
	t.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		if testharness.InCI() {
			t.Fatalf("node and npm are needed for the independent Parquet reader (apt-get install -y nodejs npm)")
		}
		t.Skip("node/npm not installed: no independent Parquet reader")
	}
	_ = node
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "ferry-testharness", "hyparquet-"+hyparquetVersion+"-"+hypCompressVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "hyparquet-compressors", "package.json")); err != nil {
		cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "--prefix", dir,
			"hyparquet@"+hyparquetVersion, "hyparquet-compressors@"+hypCompressVersion)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install hyparquet: %v\n%s", err, out)
		}
	}
	return dir
}

const hyparquetScript = `
import { asyncBufferFromFile, parquetReadObjects, parquetMetadataAsync } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
let rows = 0, qty = 0n, cents = 0n, nullNotes = 0
for (const path of process.argv.slice(2)) {
  const file = await asyncBufferFromFile(path)
  const objs = await parquetReadObjects({ file, compressors, columns: ['id', 'qty', 'amount', 'note'] })
  for (const o of objs) {
    rows++
    qty += BigInt(o.qty)
    cents += BigInt(Math.round(Number(o.amount) * 100))
    if (o.note === null || o.note === undefined) nullNotes++
  }
}
console.log(JSON.stringify({ rows, qty: qty.toString(), cents: cents.toString(), nullNotes }))
`

// TestIndependentReader: a dataset written with zstd is read by hyparquet;
// its row count and column sums agree with the source's.
func TestIndependentReader(t *testing.T) {
	dir := hyparquetDir(t)
	e := newEnv(t, pipeline.Config{RowGroupBytes: 256 << 10, FileBytes: 1 << 20})
	const n = 25000
	e.startMariaDB("Cluster0", n)
	p := e.createPipeline(ordersPipeline("orders"))
	e.startAgent(5 * time.Second)
	run, err := e.svc.TriggerRun(e.ctx, e.proj.ID, p.Name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := e.waitRun(p, run.ID, time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunDone {
		t.Fatalf("run: %s", r.Error)
	}
	m, err := e.mysql.ReadManifest(e.ctx, e.proj.ID, "", r.DatasetName)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "read-"+ferry.RandomHex(4)+".mjs")
	if err := os.WriteFile(script, []byte(hyparquetScript), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(script)
	args := []string{script}
	for _, f := range m.Files {
		args = append(args, filepath.Join(e.cfg.Dir, e.proj.ID, r.DatasetName, filepath.FromSlash(f.Path)))
	}
	out, err := exec.Command("node", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("node hyparquet: %v\n%s", err, out)
	}
	var got struct {
		Rows      int64  `json:"rows"`
		Qty       string `json:"qty"`
		Cents     string `json:"cents"`
		NullNotes int64  `json:"nullNotes"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var rows, nullNotes int64
	var qty, cents string
	if err := e.src.QueryRow("SELECT COUNT(*), CAST(SUM(qty) AS CHAR), CAST(SUM(amount*100) AS SIGNED), SUM(note IS NULL) FROM shop.orders").Scan(&rows, &qty, &cents, &nullNotes); err != nil {
		t.Fatal(err)
	}
	cents = strings.TrimSuffix(cents, ".00")
	t.Logf("hyparquet: %+v; source: rows=%d qty=%s cents=%s nullNotes=%d", got, rows, qty, cents, nullNotes)
	if got.Rows != rows || got.Qty != qty || got.Cents != cents || got.NullNotes != nullNotes || rows != n {
		t.Fatalf("hyparquet read %+v, source rows=%d sum(qty)=%s sum(amount)*100=%s null notes=%d", got, rows, qty, cents, nullNotes)
	}
}

// TestS3Sink: a dataset published to an S3-compatible bucket (versitygw),
// read back from the bucket row by row, then deleted.
func TestS3Sink(t *testing.T) {
	endpoint, ak, sk := testharness.StartS3(t)
	cl, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(ak, sk, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cl.MakeBucket(ctx, "lake", minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, pipeline.Config{RowGroupBytes: 128 << 10, FileBytes: 256 << 10,
		S3: &pipeline.S3Config{Endpoint: endpoint, AccessKey: ak, SecretKey: sk, Region: "us-east-1", PathStyle: true}})
	const n = 8000
	e.startMariaDB("Cluster0", n)
	p := ordersPipeline("to-s3")
	p.Sink.Location = "s3://lake/exports/orders"
	e.createPipeline(p)
	e.startAgent(5 * time.Second)
	run, err := e.svc.TriggerRun(e.ctx, e.proj.ID, p.Name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := e.waitRun(p, run.ID, time.Minute, ferry.RunDone, ferry.RunFailed)
	if r.State != ferry.RunDone {
		t.Fatalf("run: %s", r.Error)
	}
	ds, err := e.mysql.Datasets(ctx, e.proj.ID, p.Sink.Location)
	if err != nil || len(ds) != 1 || ds[0] != r.DatasetName {
		t.Fatalf("datasets %v %v", ds, err)
	}
	m, err := e.mysql.ReadManifest(ctx, e.proj.ID, p.Sink.Location, r.DatasetName)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) < 3 || m.Rows != n || r.Stats.NumDocs != n || r.Stats.BytesExported != m.Bytes {
		t.Fatalf("manifest %d files %d rows; run stats %+v", len(m.Files), m.Rows, r.Stats)
	}
	local := t.TempDir()
	for _, f := range m.Files {
		dst := filepath.Join(local, filepath.FromSlash(f.Path))
		if err := cl.FGetObject(ctx, "lake", "exports/orders/"+e.proj.ID+"/"+r.DatasetName+"/"+f.Path, dst, minio.GetObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	compareWithSource(t, e.src, readDataset(t, local, m), "ssn")
	if _, err := e.svc.DeleteRunDataset(e.ctx, e.proj.ID, p.Name, run.ID); err != nil {
		t.Fatal(err)
	}
	for o := range cl.ListObjects(ctx, "lake", minio.ListObjectsOptions{Prefix: "exports/", Recursive: true}) {
		t.Fatalf("object left after delete: %s %v", o.Key, o.Err)
	}
}

// TestAtlasDialect: the Atlas data-lake-pipeline endpoints end to end over
// HTTP with Digest auth: create a pipeline on a registered MariaDB
// endpoint, trigger, watch the run live, DONE with datasetName, delete the
// run's dataset.
func TestAtlasDialect(t *testing.T) {
	e := newEnv(t, pipeline.Config{RowGroupBytes: 128 << 10})
	const n = 20000
	e.startMariaDB("Cluster0", n)
	srv := httptest.NewServer(atlas.New(e.svc, httpauth.New(e.svc), slog.New(slog.DiscardHandler)))
	defer srv.Close()
	k, priv, err := e.svc.CreateAPIKey(e.ctx, e.proj.OrgID, "", ferry.RoleOrgOwner, "test")
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		send := func(authz string) *http.Response {
			req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/vnd.atlas.2023-01-01+json")
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		first := send("")
		io.Copy(io.Discard, first.Body)
		first.Body.Close()
		resp := send(digest(first.Header.Get("WWW-Authenticate"), method, path, k.PublicKey, priv))
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return resp.StatusCode, m
	}
	g := "/api/atlas/v2/groups/" + e.proj.ID
	st, body := call("POST", g+"/pipelines", map[string]any{
		"name":                   "orders-lake",
		"source":                 map[string]any{"type": "ON_DEMAND_CPS", "clusterName": "Cluster0", "databaseName": "shop", "collectionName": "orders"},
		"sink":                   map[string]any{"type": "DLS", "partitionFields": []any{map[string]any{"fieldName": "region", "order": 0}}},
		"transformations":        []any{map[string]any{"field": "ssn", "type": "EXCLUDE"}},
		"datasetRetentionPolicy": map[string]any{"units": "DAYS", "value": 7},
	})
	if st != 200 {
		t.Fatalf("create pipeline: %d %v", st, body)
	}
	var held atomic.Bool
	release := make(chan struct{})
	e.setHook(func(ctx context.Context, run *ferry.PipelineRun, rows int64) {
		if rows == 4096 {
			held.Store(true)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	e.startAgent(5 * time.Second)
	st, body = call("POST", g+"/pipelines/orders-lake/trigger", map[string]any{})
	if st != 200 || body["state"] != "PENDING" {
		t.Fatalf("trigger: %d %v", st, body)
	}
	runID := body["_id"].(string)
	sawLive := false
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, body = call("GET", g+"/pipelines/orders-lake/runs/"+runID, nil)
		if st != 200 {
			t.Fatalf("get run: %d %v", st, body)
		}
		stats, _ := body["stats"].(map[string]any)
		if body["state"] == "IN_PROGRESS" && body["phase"] == "EXPORT" && stats["numDocs"].(float64) > 0 && !sawLive {
			sawLive = true
			t.Logf("live run: state=%v phase=%v stats=%v snapshotId=%v", body["state"], body["phase"], stats, body["snapshotId"])
			close(release)
		}
		if body["state"] == "DONE" || body["state"] == "FAILED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run never finished: %v", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sawLive {
		close(release)
		t.Fatalf("never saw the run live in EXPORT")
	}
	stats := body["stats"].(map[string]any)
	if body["state"] != "DONE" || stats["numDocs"].(float64) != n || stats["bytesExported"].(float64) <= 0 ||
		!datasetNameRE.MatchString(fmt.Sprint(body["datasetName"])) || !ferry.ValidID(fmt.Sprint(body["snapshotId"])) {
		t.Fatalf("finished run %v", body)
	}
	t.Logf("done: datasetName=%v stats=%v scheduledDeletionDate=%v", body["datasetName"], stats, body["scheduledDeletionDate"])
	st, body = call("DELETE", g+"/pipelines/orders-lake/runs/"+runID, nil)
	if st != 202 {
		t.Fatalf("delete run: %d %v", st, body)
	}
	_, body = call("GET", g+"/pipelines/orders-lake/runs/"+runID, nil)
	if body["state"] != "DATASET_DELETED" {
		t.Fatalf("after delete: %v", body)
	}
	if ds, _ := e.mysql.Datasets(e.ctx, e.proj.ID, ""); len(ds) != 0 {
		t.Fatalf("datasets %v", ds)
	}
}

// digest computes an RFC 7616 MD5/qop=auth answer to chal.
func digest(chal, method, uri, user, pass string) string {
	p := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(chal, "Digest "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			p[strings.ToLower(k)] = strings.Trim(v, `"`)
		}
	}
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	nc, cnonce := "00000001", "0a4f113b"
	ha1 := h(user + ":" + p["realm"] + ":" + pass)
	ha2 := h(method + ":" + uri)
	resp := h(ha1 + ":" + p["nonce"] + ":" + nc + ":" + cnonce + ":auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="%s", response="%s"`,
		user, p["realm"], p["nonce"], uri, nc, cnonce, resp)
}
