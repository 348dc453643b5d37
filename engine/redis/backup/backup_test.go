package backup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/backup"
	"github.com/ferrymigrate/ferry/engine/redis/internal/redistest"
	"github.com/ferrymigrate/ferry/engine/redis/verify"
	"github.com/ferrymigrate/ferry/http/dcs"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/internal/testharness"
)

// bkEnv is the Redis test env (a source redis-server, where backups come
// from, a target, a service on SQLite) with a backup configuration.
type bkEnv struct{ *redistest.Env }

func newBkEnv(t *testing.T, srcArgs ...string) *bkEnv {
	t.Helper()
	e := &bkEnv{redistest.NewEnv(t, srcArgs...)}
	e.Engine.Backups.Dir = filepath.Join(t.TempDir(), "backups")
	e.Engine.Backups.AllowedDirs = []string{os.TempDir(), "/tmp", e.Server.Dir} // the tests' backup_dirs are temporary directories
	return e
}

func (e *bkEnv) startAgent() { e.Agent("bk-agent") }

// importJob creates and starts a backup import into the target.
func (e *bkEnv) importJob(t *testing.T, verifyStep bool, extra map[string]string) *ferry.Migration {
	t.Helper()
	x := map[string]string{"mode": "backup_import"}
	for k, v := range extra {
		x[k] = v
	}
	m := &ferry.Migration{ProjectID: e.Proj.ID, Engine: ferry.KindRedis,
		Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Dst}},
		Modes:  ferry.Modes{Full: true, Verify: verifyStep}, Options: ferry.Options{Extra: x}}
	if err := e.Svc.CreateMigration(e.Ctx, m, true); err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *bkEnv) waitState(t *testing.T, id string, want ferry.State, timeout time.Duration) *ferry.Migration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var m *ferry.Migration
	for time.Now().Before(deadline) {
		var err error
		if m, err = e.Store.GetMigration(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if m.State == want || (m.State.Terminal() && want != ferry.StateFailed) || (want == ferry.StateFailed && m.State == ferry.StateCompleted) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m.State != want {
		b, _ := json.MarshalIndent(m, "", "  ")
		t.Fatalf("job state %s, want %s: %s", m.State, want, b)
	}
	return m
}

// assertSame compares source and target: key by key (package verify,
// 0 missing / 0 extra / 0 different) and DEBUG DIGEST.
func (e *bkEnv) assertSame(t *testing.T) { assertEqual(t, e.SrcC, e.DstC) }

func assertEqual(t *testing.T, want, got *goredis.Client) {
	t.Helper()
	rep, err := verify.Compare(context.Background(), want, got, verify.Options{Rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Equal() || rep.Checked == 0 {
		t.Fatalf("verify: %s; samples %+v", rep, rep.Samples)
	}
	if a, b := redistest.Digest(t, want), redistest.Digest(t, got); a != b {
		t.Fatalf("DEBUG DIGEST differs: %s, target %s", a, b)
	}
	if fn, err := got.Do(context.Background(), "FCALL", "ferryfn", 0).Int(); err != nil || fn != 1 {
		t.Fatalf("function library not imported: %v %v", fn, err)
	}
}

// bkSave makes the source write its RDB and returns its path.
func (e *bkEnv) bkSave() string {
	e.T.Helper()
	if err := e.SrcC.Save(context.Background()).Err(); err != nil {
		e.T.Fatal(err)
	}
	return filepath.Join(e.Server.Dir, "dump.rdb")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func stepOf(t *testing.T, m *ferry.Migration, name ferry.StepName) *ferry.Step {
	t.Helper()
	s := m.Step(name)
	if s == nil {
		t.Fatalf("no step %s", name)
	}
	return s
}

func TestBackupImportRDBFromDirectory(t *testing.T) {
	e := newBkEnv(t)
	redistest.Populate(t, e.SrcC, "rdb:")
	dir := t.TempDir()
	copyFile(t, e.bkSave(), filepath.Join(dir, "nightly", "dump.rdb"))
	e.startAgent()
	m := e.importJob(t, true, map[string]string{"backup_dir": dir, "backup_files": "nightly/dump.rdb"})
	m = e.waitState(t, m.ID, ferry.StateCompleted, 60*time.Second)
	e.assertSame(t)
	full := stepOf(t, m, ferry.StepFull)
	st, _ := os.Stat(filepath.Join(dir, "nightly", "dump.rdb"))
	if full.Progress != 100 || full.Counters.Done != 3*15 || full.Counters.Bytes != st.Size() || full.Counters.BytesTotal != st.Size() {
		t.Fatalf("full step: %+v", full)
	}
	v := stepOf(t, m, ferry.StepVerify)
	if v.Counters.Done != 3*15 || v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 || !strings.Contains(v.Message, "0 missing, 0 extra, 0 different") {
		t.Fatalf("verify step: %+v", v)
	}
	t.Logf("precheck: %s", stepOf(t, m, ferry.StepPrecheck).Message)
	t.Logf("full: %s", full.Message)
	t.Logf("verify: %s", v.Message)

	// A second import into the same target: refused by the precheck
	// (conflict policy fail).
	m2 := e.importJob(t, false, map[string]string{"backup_dir": dir, "backup_files": "nightly/dump.rdb"})
	m2 = e.waitState(t, m2.ID, ferry.StateFailed, 30*time.Second)
	if !strings.Contains(m2.Error, "TARGET") && !strings.Contains(m2.Error, "already holds keys") {
		t.Fatalf("second import: %s", m2.Error)
	}
}

func TestBackupImportVerifyFindsDifferences(t *testing.T) {
	e := newBkEnv(t)
	redistest.Populate(t, e.SrcC, "v:")
	dir := t.TempDir()
	copyFile(t, e.bkSave(), filepath.Join(dir, "dump.rdb"))
	e.startAgent()
	m := e.importJob(t, false, map[string]string{"backup_dir": dir, "backup_files": "dump.rdb"})
	e.waitState(t, m.ID, ferry.StateCompleted, 60*time.Second)
	ctx := context.Background()
	e.DstC.Set(ctx, "v:str:0", "changed", 0)
	e.DstC.Del(ctx, "v:biglist:0")
	e.DstC.ZAdd(ctx, "v:zset:0", goredis.Z{Score: math.Nextafter(1.0/3, 1), Member: "e"})
	e.DstC.Persist(ctx, "v:ttl:0")
	e.DstC.Set(ctx, "v:extra", "x", 0)
	m = &ferry.Migration{ProjectID: e.Proj.ID, Engine: ferry.KindRedis,
		Target:  ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Dst}},
		Modes:   ferry.Modes{Full: true, Verify: true},
		Options: ferry.Options{Conflict: ferry.ConflictReplace, Extra: map[string]string{"mode": "backup_import", "backup_dir": dir, "backup_files": "dump.rdb"}}}
	// Only the verify step: run it directly on the engine.
	rt := &fakeRT{}
	err := e.Engine.RunStep(ctx, m, ferry.StepVerify, rt)
	if err == nil || !strings.Contains(err.Error(), "1 missing") || !strings.Contains(err.Error(), "3 different") {
		t.Fatalf("verify: %v (%s)", err, rt.msg)
	}
	if rt.c.Missing != 1 || rt.c.Different != 3 || rt.c.Extra != 0 {
		t.Fatalf("counters %+v", rt.c)
	}
	// Conflict policy fail: the job owns the target, so the extra key counts.
	m.Options.Conflict = ""
	err = e.Engine.RunStep(ctx, m, ferry.StepVerify, rt)
	if err == nil || rt.c.Extra != 1 {
		t.Fatalf("verify: %v %+v", err, rt.c)
	}
	t.Log(err)
}

// fakeRT is a StepRuntime for running one step on the engine directly.
type fakeRT struct {
	cp    json.RawMessage
	c     ferry.Counters
	pct   float64
	msg   string
	onMsg func(string)
}

func (r *fakeRT) Checkpoint() json.RawMessage          { return r.cp }
func (r *fakeRT) Progress(c ferry.Counters, p float64) { r.c, r.pct = c, p }
func (r *fakeRT) Lag(time.Duration, time.Time)         {}
func (r *fakeRT) Message(s string) {
	r.msg = s
	if r.onMsg != nil {
		r.onMsg(s)
	}
}
func (r *fakeRT) Save(_ context.Context, cp json.RawMessage) error { r.cp = cp; return nil }
func (r *fakeRT) Cutover() <-chan struct{}                         { return nil }
func (r *fakeRT) Logger() *slog.Logger                             { return redistest.Logger(nil) }
func (r *fakeRT) AgentID() string                                  { return "test" }

func s3Config(t *testing.T) (*backup.S3Config, *minio.Client) {
	endpoint, ak, sk := testharness.StartS3(t)
	cfg := &backup.S3Config{Endpoint: endpoint, AccessKey: ak, SecretKey: sk, Region: "us-east-1"}
	cl, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	return cfg, cl
}

func upload(t *testing.T, cl *minio.Client, bucket, name, file string) int64 {
	t.Helper()
	info, err := cl.FPutObject(context.Background(), bucket, name, file, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return info.Size
}

func TestBackupImportRDBFromS3(t *testing.T) {
	e := newBkEnv(t)
	cfg, cl := s3Config(t)
	e.Engine.Backups.S3 = cfg
	ctx := context.Background()
	if err := cl.MakeBucket(ctx, "redis-backups", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	redistest.Populate(t, e.SrcC, "s3:")
	size := upload(t, cl, "redis-backups", "2026/dump.rdb", e.bkSave())
	e.startAgent()
	files, _ := json.Marshal([]map[string]any{{"file_name": "2026/dump.rdb", "size": fmt.Sprint(size), "update_at": "2026-01-02 03:04:05"}})
	m := e.importJob(t, true, map[string]string{"backup_file_source": "self_build_obs", "backup_bucket": "redis-backups", "backup_files": string(files)})
	m = e.waitState(t, m.ID, ferry.StateCompleted, 60*time.Second)
	e.assertSame(t)
	pre := stepOf(t, m, ferry.StepPrecheck).Message
	if !strings.Contains(pre, "bucket redis-backups on http://"+cfg.Endpoint) || !strings.Contains(pre, "RDB v") {
		t.Fatalf("precheck message: %s", pre)
	}
	if b, _ := json.Marshal(m); bytes.Contains(b, []byte(cfg.SecretKey)) {
		t.Fatal("the job holds the S3 secret key")
	}

	// A wrong size is refused before anything is written; a missing file too.
	for _, tc := range []struct{ files, want string }{
		{`[{"file_name":"2026/dump.rdb","size":"12"}]`, "changed since the task was made"},
		{`[{"file_name":"2026/none.rdb"}]`, "not found"},
	} {
		m := e.importJob(t, false, map[string]string{"backup_bucket": "redis-backups", "backup_files": tc.files})
		m = e.waitState(t, m.ID, ferry.StateFailed, 30*time.Second)
		if !strings.Contains(m.Error, tc.want) || m.CurrentStep != ferry.StepPrecheck {
			t.Fatalf("%s: %s (%s)", tc.files, m.Error, m.CurrentStep)
		}
	}
}

// waitAOFRewrite waits until no AOF rewrite is running or scheduled.
func waitAOFRewrite(t *testing.T, c *goredis.Client) {
	t.Helper()
	for i := 0; i < 500; i++ {
		info, err := c.Info(context.Background(), "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "aof_rewrite_in_progress:0") && strings.Contains(info, "aof_rewrite_scheduled:0") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("AOF rewrite did not finish")
}

// aofWrites applies commands whose replay is order-sensitive and not
// idempotent, in several dbs, with a transaction.
func aofWrites(t *testing.T, c *goredis.Client) {
	ctx := context.Background()
	for db := 0; db < 2; db++ {
		cc := goredis.NewClient(&goredis.Options{Addr: c.Options().Addr, DB: db})
		for i := 0; i < 50; i++ {
			cc.Incr(ctx, "aof:counter")
			cc.RPush(ctx, "aof:log", fmt.Sprintf("entry-%d", i))
			cc.HIncrBy(ctx, "aof:h", "n", 2)
		}
		cc.Del(ctx, "post:str:0")
		cc.Expire(ctx, "aof:log", time.Hour)
		if _, err := cc.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Incr(ctx, "aof:tx")
			p.LPush(ctx, "aof:log", "tx")
			p.ZAdd(ctx, "aof:z", goredis.Z{Score: 2.5, Member: "m"})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		cc.Close()
	}
}

// copyDir copies a directory tree.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		copyFile(t, p, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// loadedBy starts a redis-server on a copy of dir with appendonly on: what
// Redis itself loads from those AOF files is the reference an import is
// compared with (Redis 7.0 propagates XREADGROUP without the group's
// entries-read, so an AOF never holds it: the source server is not the
// reference for that).
func loadedBy(t *testing.T, dir string) *goredis.Client {
	t.Helper()
	cp := t.TempDir()
	copyDir(t, dir, cp)
	addr := testharness.StartRedis(t, "--enable-debug-command", "yes", "--appendonly", "yes", "--dir", cp)
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestBackupImportAOF(t *testing.T) {
	for _, preamble := range []string{"yes", "no"} {
		t.Run("aof-use-rdb-preamble="+preamble, func(t *testing.T) {
			e := newBkEnv(t, "--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", preamble)
			ctx := context.Background()
			redistest.Populate(t, e.SrcC, "pre:")
			// Rewrite: the base file holds the data set (an RDB with the
			// preamble, commands without); later writes go to the
			// incremental file.
			if err := e.SrcC.BgRewriteAOF(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			waitAOFRewrite(t, e.SrcC)
			redistest.Populate(t, e.SrcC, "post:")
			aofWrites(t, e.SrcC)
			aofDir := filepath.Join(e.Server.Dir, "appendonlydir")
			ents, err := os.ReadDir(aofDir)
			if err != nil {
				t.Fatal(err)
			}
			var base, incr string
			for _, en := range ents {
				switch {
				case strings.Contains(en.Name(), ".base."):
					base = filepath.Join(aofDir, en.Name())
				case strings.Contains(en.Name(), ".incr."):
					incr = filepath.Join(aofDir, en.Name())
				}
			}
			if base == "" || incr == "" {
				t.Fatalf("appendonlydir: %v", ents)
			}
			// One AOF file as Redis < 7 wrote it: the base (RDB preamble or
			// commands) followed by the commands since.
			singleDir := t.TempDir()
			b1, _ := os.ReadFile(base)
			b2, _ := os.ReadFile(incr)
			if err := os.WriteFile(filepath.Join(singleDir, "appendonly.aof"), append(append([]byte(nil), b1...), b2...), 0o644); err != nil {
				t.Fatal(err)
			}
			if preamble == "yes" && !bytes.HasPrefix(b1, []byte("REDIS")) || preamble == "no" && !bytes.HasPrefix(b1, []byte("*")) {
				t.Fatalf("base file %s starts with %q", base, b1[:8])
			}
			ref := loadedBy(t, e.Server.Dir)
			// Redis 7 loads an old single appendonly.aof too (and upgrades it).
			refSingle := loadedBy(t, singleDir)
			assertEqual(t, ref, refSingle)
			if a, b := redistest.Digest(t, e.SrcC), redistest.Digest(t, ref); a != b {
				t.Fatalf("DEBUG DIGEST of the source %s, of Redis loading its AOF %s", a, b)
			}
			e.startAgent()

			t.Run("single file", func(t *testing.T) {
				m := e.importJob(t, true, map[string]string{"backup_dir": singleDir, "backup_files": "appendonly.aof"})
				m = e.waitState(t, m.ID, ferry.StateCompleted, 60*time.Second)
				assertEqual(t, ref, e.DstC)
				full := stepOf(t, m, ferry.StepFull)
				if full.Counters.Ops == 0 || full.Counters.Bytes != int64(len(b1)+len(b2)) {
					t.Fatalf("full: %+v", full)
				}
				if v := stepOf(t, m, ferry.StepVerify); !strings.Contains(v.Message, "verification skipped") {
					t.Fatalf("verify: %s", v.Message)
				}
				t.Log(full.Message)
			})
			if err := e.DstC.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := e.DstC.FunctionFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			t.Run("multi-part directory", func(t *testing.T) {
				m := e.importJob(t, false, map[string]string{"backup_dir": e.Server.Dir, "backup_files": "appendonlydir"})
				m = e.waitState(t, m.ID, ferry.StateCompleted, 60*time.Second)
				assertEqual(t, ref, e.DstC)
				pre := stepOf(t, m, ferry.StepPrecheck).Message
				if !strings.Contains(pre, "multi-part AOF base") || !strings.Contains(pre, "multi-part AOF incr") {
					t.Fatalf("precheck: %s", pre)
				}
				t.Log(pre)
			})
		})
	}
}

func TestBackupCreateAndImportRecord(t *testing.T) {
	for _, diskless := range []string{"yes", "no"} {
		t.Run("repl-diskless-sync="+diskless, func(t *testing.T) {
			e := newBkEnv(t, "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0")
			redistest.Populate(t, e.SrcC, "bk:")
			ctx := context.Background()
			rec, err := e.Engine.Backups.Create(ctx, ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Server.Addr}}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Diskless != (diskless == "yes") || rec.Keys != 3*15 || rec.Size == 0 || rec.Checksum == "" || rec.Source != e.Server.Addr {
				t.Fatalf("record %+v", rec)
			}
			st, err := os.Stat(filepath.Join(e.Engine.Backups.Dir, rec.ID+".rdb"))
			if err != nil || st.Size() != rec.Size {
				t.Fatalf("backup file: %v %v", st, err)
			}
			list, err := e.Engine.Backups.List(ctx)
			if err != nil || len(list) != 1 || list[0].ID != rec.ID {
				t.Fatalf("list %+v %v", list, err)
			}
			e.startAgent()
			m := e.importJob(t, true, map[string]string{"backup_file_source": "backup_record", "backup_id": rec.ID})
			e.waitState(t, m.ID, ferry.StateCompleted, 60*time.Second)
			e.assertSame(t)

			m = e.importJob(t, false, map[string]string{"backup_file_source": "backup_record", "backup_id": ferry.NewID()})
			m = e.waitState(t, m.ID, ferry.StateFailed, 30*time.Second)
			if !strings.Contains(m.Error, "not found") {
				t.Fatalf("unknown backup: %s", m.Error)
			}
		})
	}
}

func TestBackupCreateToBucket(t *testing.T) {
	e := newBkEnv(t, "--repl-diskless-sync-delay", "0")
	cfg, cl := s3Config(t)
	ctx := context.Background()
	if err := cl.MakeBucket(ctx, "ferry", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	e.Engine.Backups.S3, e.Engine.Backups.Bucket = cfg, "ferry"
	redistest.Populate(t, e.SrcC, "b:")
	rec, err := e.Engine.Backups.Create(ctx, ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Server.Addr}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.File, "ferry-backups/") || !strings.Contains(rec.Location, "bucket ferry") {
		t.Fatalf("record %+v", rec)
	}
	if _, err := cl.StatObject(ctx, "ferry", rec.File, minio.StatObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	e.startAgent()
	m := e.importJob(t, false, map[string]string{"backup_id": rec.ID})
	e.waitState(t, m.ID, ferry.StateCompleted, 60*time.Second)
	e.assertSame(t)
}

func TestBackupImportCorruptFiles(t *testing.T) {
	e := newBkEnv(t)
	redistest.Populate(t, e.SrcC, "c:")
	good, err := os.ReadFile(e.bkSave())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0xff
	badType := append([]byte(nil), good...)
	// The first key's type byte follows the header, AUX fields and SELECTDB;
	// find "c:" keys' type byte by looking for the first SELECTDB (0xFE) and
	// RESIZEDB (0xFB) opcodes.
	i := bytes.IndexByte(badType, 0xfb)
	typeAt := i + 3 // RESIZEDB, two one-byte lengths
	badType[typeAt] = 0x77
	aof := []byte("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")
	garbage := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n+OK\r\n")
	files := map[string][]byte{
		"truncated.rdb": good[:len(good)-100],
		"flipped.rdb":   flipped,
		"badtype.rdb":   badType,
		"truncated.aof": aof,
		"garbage.aof":   garbage,
		"notredis.rdb":  []byte("hello world"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.startAgent()
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"truncated.rdb", []string{"truncated.rdb", "corrupt at byte offset", "truncated"}},
		{"flipped.rdb", []string{"flipped.rdb", "corrupt at byte offset"}},
		{"badtype.rdb", []string{"badtype.rdb", fmt.Sprintf("corrupt at byte offset %d", typeAt)}},
		{"truncated.aof", []string{"truncated.aof", "corrupt at byte offset 50", "truncated"}},
		{"garbage.aof", []string{"garbage.aof", "corrupt at byte offset 27", "expected an AOF command"}},
		{"notredis.rdb", []string{"notredis.rdb", "corrupt at byte offset 0", "not an RDB file"}},
	} {
		if err := e.DstC.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		m := e.importJob(t, false, map[string]string{"backup_dir": dir, "backup_files": tc.file})
		m = e.waitState(t, m.ID, ferry.StateFailed, 30*time.Second)
		for _, w := range tc.want {
			if !strings.Contains(m.Error, w) {
				t.Fatalf("%s: error %q does not say %q", tc.file, m.Error, w)
			}
		}
		if m.Attempts != 0 {
			t.Fatalf("%s: a corrupt file was retried %d times", tc.file, m.Attempts)
		}
		t.Logf("%s: %s", tc.file, m.Error)
	}
	// With aof_load_truncated, the truncated tail is dropped, as Redis does.
	m := e.importJob(t, false, map[string]string{"backup_dir": dir, "backup_files": "truncated.aof", "aof_load_truncated": "yes"})
	e.waitState(t, m.ID, ferry.StateCompleted, 30*time.Second)
	if v, _ := e.DstC.Get(context.Background(), "k").Result(); v != "v" {
		t.Fatalf("k = %q", v)
	}
}

// TestBackupImportThroughDCS creates a backupfile_import task through the
// DCS dialect (a bucket configured as a local directory) and follows it to
// SUCCESS with an agent running.
func TestBackupImportThroughDCS(t *testing.T) {
	e := newBkEnv(t, "--repl-diskless-sync-delay", "0")
	redistest.Populate(t, e.SrcC, "dcs:")
	bucketDir := t.TempDir()
	copyFile(t, e.bkSave(), filepath.Join(bucketDir, "backup", "dump.rdb"))
	st, _ := os.Stat(filepath.Join(bucketDir, "backup", "dump.rdb"))
	e.Engine.Backups.BucketDirs = map[string]string{"dcs-bucket": bucketDir}
	cfg, cl := s3Config(t)
	e.Engine.Backups.S3 = cfg
	if err := cl.MakeBucket(context.Background(), "dcs-s3", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	upload(t, cl, "dcs-s3", "backup/dump.rdb", filepath.Join(bucketDir, "backup", "dump.rdb"))
	log := redistest.Logger(nil)
	srv := httptest.NewServer(dcs.New(e.Svc, httpauth.New(e.Svc), log))
	t.Cleanup(srv.Close)
	k, priv, err := e.Svc.CreateAPIKey(e.Ctx, e.Org.ID, e.Proj.ID, ferry.RoleGroupOwner, "dcs test")
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, token string, body any) (int, http.Header, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		return res.StatusCode, res.Header, out
	}
	code, hdr, body := call("POST", "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []any{"password"}, "password": map[string]any{"user": map[string]any{
			"name": k.PublicKey, "password": priv, "domain": map[string]any{"name": "d"}}}}}})
	token := hdr.Get(dcs.SubjectTokenHeader)
	if code != http.StatusCreated || token == "" {
		t.Fatalf("token: %d %v", code, body)
	}
	e.startAgent()
	rec, err := e.Engine.Backups.Create(context.Background(), ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Server.Addr}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	file := func(bucket string) map[string]any {
		return map[string]any{"file_source": "self_build_obs", "bucket_name": bucket,
			"files": []any{map[string]any{"file_name": "backup/dump.rdb", "size": fmt.Sprint(st.Size()), "update_at": "2026-11-22 10:00:00"}}}
	}
	// The bucket is a configured local directory, then a bucket of the S3
	// server; then a backup ferry took (backup_record).
	for _, tc := range []struct {
		name  string
		files map[string]any
		bytes int64
	}{
		{"dcs-bucket", file("dcs-bucket"), st.Size()},
		{"dcs-s3", file("dcs-s3"), st.Size()},
		{"backup_record", map[string]any{"file_source": "backup_record", "backup_id": rec.ID}, rec.Size},
	} {
		if err := e.DstC.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.DstC.FunctionFlush(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		code, _, body = call("POST", "/v2/"+e.Proj.ID+"/migration-task", token, map[string]any{
			"task_name":        "import-nightly",
			"migration_type":   "backupfile_import",
			"migration_method": "full_amount_migration",
			"backup_files":     tc.files,
			"target_instance":  map[string]any{"addrs": e.Dst},
		})
		if code != http.StatusOK || body["id"] == nil {
			t.Fatalf("create: %d %v", code, body)
		}
		id := body["id"].(string)
		deadline := time.Now().Add(60 * time.Second)
		var seen []string
		for {
			_, _, task := call("GET", "/v2/"+e.Proj.ID+"/migration-task/"+id, token, nil)
			s, _ := task["status"].(string)
			if len(seen) == 0 || seen[len(seen)-1] != s {
				seen = append(seen, s)
			}
			if s == "SUCCESS" {
				bf := task["backup_files"].(map[string]any)
				if bf["file_source"] != tc.files["file_source"] || bf["bucket_name"] != tc.files["bucket_name"] && tc.files["bucket_name"] != nil || task["migration_type"] != "backupfile_import" {
					t.Fatalf("task: %v", task)
				}
				break
			}
			if s == "FAILED" || s == "MIGRATION_FAILED" || time.Now().After(deadline) {
				m, _ := e.Store.GetMigration(context.Background(), id)
				t.Fatalf("task status %s (seen %v): %v; job error %q", s, seen, task, m.Error)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, _, stats := call("GET", "/v2/"+e.Proj.ID+"/migration-task/"+id+"/stats", token, nil)
		if stats["full_migration_progress"] != "100" || stats["keys_migrated"] != float64(3*15) || stats["bytes_migrated"] != float64(tc.bytes) {
			t.Fatalf("stats: %v", stats)
		}
		e.assertSame(t)
		t.Logf("%s: DCS statuses seen: %v; stats %v", tc.name, seen, stats)
	}
}

// TestBackupImportResume resumes interrupted imports from their
// checkpoints, with the target holding what an agent killed mid-file would
// have left: the result is exact.
func TestBackupImportResume(t *testing.T) {
	e := newBkEnv(t, "--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", "yes")
	ctx := context.Background()
	redistest.Populate(t, e.SrcC, "a:")
	if err := e.SrcC.BgRewriteAOF(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	waitAOFRewrite(t, e.SrcC)
	aofWrites(t, e.SrcC)
	redistest.Populate(t, e.SrcC, "b:")
	ref := loadedBy(t, e.Server.Dir)
	m := &ferry.Migration{ProjectID: e.Proj.ID, Engine: ferry.KindRedis,
		Target:  ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Dst}},
		Modes:   ferry.Modes{Full: true},
		Options: ferry.Options{Extra: map[string]string{"mode": "backup_import", "backup_dir": e.Server.Dir, "backup_files": "appendonlydir"}}}
	reset := func() {
		if err := e.DstC.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.DstC.FunctionFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, cp, want string
		partial        func()
	}{
		{"mid RDB base", `{"files":2,"file":0,"started":true}`, "from its start", func() {
			e.DstC.Set(ctx, "a:str:0", "partial", 0)
			e.DstC.RPush(ctx, "a:biglist:0", "element-0", "element-1")
			e.DstC.HSet(ctx, "a:bighash:0", "f1", "v", "zz", "not in the file")
		}},
		{"mid AOF commands", `{"files":2,"file":1,"started":true,"commands":true,"offset":4096,"aof":true,"bytes":90000}`, "emptying the target", func() {
			e.DstC.Set(ctx, "a:str:0", "hello", 0)
			e.DstC.Incr(ctx, "aof:counter")
			e.DstC.RPush(ctx, "aof:log", "entry-0", "entry-1")
		}},
		{"changed file list", `{"files":3,"file":2,"started":true}`, "files changed", func() {
			e.DstC.Set(ctx, "aof:counter", "7", 0)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reset()
			tc.partial()
			rt := &fakeRT{cp: json.RawMessage(tc.cp)}
			var msgs []string
			rt.onMsg = func(s string) { msgs = append(msgs, s) }
			if err := e.Engine.RunStep(ctx, m, ferry.StepFull, rt); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
				t.Fatalf("messages %q do not say %q", msgs, tc.want)
			}
			assertEqual(t, ref, e.DstC)
			if rt.pct != 100 {
				t.Fatalf("progress %v %+v", rt.pct, rt.c)
			}
		})
	}
}

// An AOF rewrite writes function libraries as FUNCTION LOAD without
// REPLACE; an import into a target that has the library (conflict policy
// replace, or an import started over) loads it with REPLACE.
func TestBackupImportAOFFunctionLoad(t *testing.T) {
	e := newBkEnv(t)
	ctx := context.Background()
	code := "#!lua name=ferrylib\nredis.register_function('ferryfn', function(keys, args) return 1 end)"
	var aof bytes.Buffer
	for _, cmd := range [][]string{{"SELECT", "0"}, {"FUNCTION", "LOAD", code}, {"SET", "k", "v"}} {
		fmt.Fprintf(&aof, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(&aof, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fn.aof"), aof.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.DstC.FunctionLoad(ctx, code).Err(); err != nil {
		t.Fatal(err)
	}
	e.startAgent()
	m := &ferry.Migration{ProjectID: e.Proj.ID, Engine: ferry.KindRedis,
		Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Dst}}, Modes: ferry.Modes{Full: true},
		Options: ferry.Options{Conflict: ferry.ConflictReplace, Extra: map[string]string{"mode": "backup_import", "backup_dir": dir, "backup_files": "fn.aof"}}}
	if err := e.Svc.CreateMigration(e.Ctx, m, true); err != nil {
		t.Fatal(err)
	}
	e.waitState(t, m.ID, ferry.StateCompleted, 30*time.Second)
	if v, _ := e.DstC.Get(ctx, "k").Result(); v != "v" {
		t.Fatalf("k = %q", v)
	}
}
