package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	redisbackup "github.com/ferrymigrate/ferry/engine/redis/backup"
	"github.com/ferrymigrate/ferry/internal/testharness"
)

func TestBackupsCreateAndList(t *testing.T) {
	for _, k := range []string{"FERRY_DATA_DIR", "FERRY_BACKUP_DIR", "FERRY_BACKUP_BUCKET", "FERRY_S3_ENDPOINT", "FERRY_PASSWORD", "FERRY_DIR", "FERRY_BUCKET"} {
		t.Setenv(k, "")
	}
	addr := testharness.StartRedis(t, "--requirepass", "s3cret-src")
	c := goredis.NewClient(&goredis.Options{Addr: addr, Password: "s3cret-src"})
	defer c.Close()
	ctx := context.Background()
	for i := range 100 {
		c.Set(ctx, "k"+string(rune('a'+i%26))+strings.Repeat("x", i), i, 0)
	}
	c.HSet(ctx, "h", "f", "v")
	dataDir := t.TempDir()

	t.Setenv("FERRY_PASSWORD", "s3cret-src")
	code, out, errOut := ferryCmd(t, "backups", "create", "--source", addr, "--data-dir", dataDir, "--json")
	if code != 0 {
		t.Fatalf("backups create: %d %s", code, errOut)
	}
	var rec redisbackup.Record
	mustJSON(t, out, &rec)
	if !ferry.ValidID(rec.ID) || rec.Keys != 101 || rec.Source != addr || strings.Contains(out, "s3cret") {
		t.Fatalf("record %s", out)
	}
	if st, err := os.Stat(filepath.Join(dataDir, "backups", rec.ID+".rdb")); err != nil || st.Size() != rec.Size {
		t.Fatalf("backup file: %v", err)
	}
	t.Setenv("FERRY_PASSWORD", "")

	// Human output, into another directory (--dir).
	other := t.TempDir()
	code, out, errOut = ferryCmd(t, "backups", "create", "--source", addr, "--password", "s3cret-src", "--dir", other)
	if code != 0 || !strings.Contains(out, "101") || !strings.Contains(out, "directory "+other) {
		t.Fatalf("backups create --dir: %d %s %s", code, out, errOut)
	}

	code, out, errOut = ferryCmd(t, "backups", "list", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, rec.ID) || !strings.Contains(out, addr) || !strings.Contains(out, "SIZE") {
		t.Fatalf("backups list: %d %s %s", code, out, errOut)
	}
	code, out, _ = ferryCmd(t, "backups", "list", "--dir", other, "--json")
	var list []redisbackup.Record
	mustJSON(t, out, &list)
	if code != 0 || len(list) != 1 || list[0].ID == rec.ID {
		t.Fatalf("backups list --dir: %d %s", code, out)
	}

	// A wrong password fails clearly, and nothing is recorded.
	code, _, errOut = ferryCmd(t, "backups", "create", "--source", addr, "--password", "nope", "--dir", other)
	if code != 1 || !strings.Contains(errOut, "AUTH") {
		t.Fatalf("bad password: %d %s", code, errOut)
	}
	code, _, errOut = ferryCmd(t, "backups", "create", "--data-dir", dataDir)
	if code != 2 {
		t.Fatalf("no --source: %d %s", code, errOut)
	}
}

func TestBackupFlagsConfig(t *testing.T) {
	var bf backupFlags
	fs := (&cli{stderr: os.Stderr}).flags("x", "")
	bf.register(fs)
	if err := fs.Parse([]string{"--bucket-dir", "a=/srv/a,b=/srv/b", "--s3-endpoint", "127.0.0.1:9000", "--s3-access-key", "AK", "--s3-secret-key", "SK", "--s3-tls=false"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := bf.config("/var/lib/ferry")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dir != "/var/lib/ferry/backups" || cfg.BucketDirs["a"] != "/srv/a" || cfg.BucketDirs["b"] != "/srv/b" || cfg.S3 == nil || cfg.S3.TLS || cfg.S3.SecretKey != "SK" {
		t.Fatalf("config %+v %+v", cfg, cfg.S3)
	}
	if s := cfg.S3.String(); strings.Contains(s, "SK") || s != "http://127.0.0.1:9000" {
		t.Fatalf("S3 config string %q", s)
	}
	bf.bucketDirs = listFlag{"nodir"}
	if _, err := bf.config("/x"); err == nil {
		t.Fatal("--bucket-dir without = accepted")
	}
}
