package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferrymigrate/ferry"
	redisengine "github.com/ferrymigrate/ferry/engine/redis"
	redisbackup "github.com/ferrymigrate/ferry/engine/redis/backup"
)

// backupFlags say where the Redis engine reads the files of backup imports
// and keeps the backups `ferry backups create` takes. ferry serve, ferry
// agent and ferry backups share them. The S3 secret key is best given as
// FERRY_S3_SECRET_KEY; it is never logged nor returned by an API.
type backupFlags struct {
	dir         string
	bucket      string
	bucketDirs  listFlag
	importDirs  listFlag
	s3Endpoint  string
	s3AccessKey string
	s3SecretKey string
	s3Region    string
	s3TLS       bool
	s3PathStyle bool
}

func (b *backupFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.dir, "backup-dir", "", "directory of ferry's Redis backups (default <data-dir>/backups)")
	fs.StringVar(&b.bucket, "backup-bucket", "", "keep new Redis backups in this bucket (a --bucket-dir name or a bucket of --s3-endpoint) instead of --backup-dir")
	fs.Var(&b.bucketDirs, "bucket-dir", "NAME=DIR: backup imports from bucket NAME read the local directory DIR (repeatable, comma separated)")
	fs.Var(&b.importDirs, "import-dirs", "the directories the backup_dir of a backup import may name (comma separated; default <data-dir>/imports only)")
	fs.StringVar(&b.s3Endpoint, "s3-endpoint", "", "host:port of the S3-compatible server holding backup buckets")
	fs.StringVar(&b.s3AccessKey, "s3-access-key", "", "S3 access key")
	fs.StringVar(&b.s3SecretKey, "s3-secret-key", "", "S3 secret key (prefer the environment: FERRY_S3_SECRET_KEY)")
	fs.StringVar(&b.s3Region, "s3-region", "", "S3 region (default: discovered)")
	fs.BoolVar(&b.s3TLS, "s3-tls", true, "talk https to the S3 server (--s3-tls=false for http)")
	fs.BoolVar(&b.s3PathStyle, "s3-path-style", false, "path-style bucket addressing")
}

// config returns the engine's backup configuration.
func (b *backupFlags) config(dataDir string) (redisbackup.Config, error) {
	c := redisbackup.Config{Dir: b.dir, Bucket: b.bucket, AllowedDirs: append([]string(nil), b.importDirs...)}
	if c.Dir == "" {
		c.Dir = filepath.Join(dataDir, "backups")
	}
	if len(c.AllowedDirs) == 0 {
		c.AllowedDirs = []string{filepath.Join(dataDir, "imports")}
	}
	for i, d := range c.AllowedDirs {
		if abs, err := filepath.Abs(d); err == nil {
			c.AllowedDirs[i] = abs
		}
	}
	if abs, err := filepath.Abs(c.Dir); err == nil {
		c.Dir = abs
	}
	for _, kv := range b.bucketDirs {
		name, dir, ok := strings.Cut(kv, "=")
		if !ok || name == "" || dir == "" {
			return c, fmt.Errorf("--bucket-dir %q: want NAME=DIR", kv)
		}
		if c.BucketDirs == nil {
			c.BucketDirs = map[string]string{}
		}
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		c.BucketDirs[name] = dir
	}
	if b.s3Endpoint != "" {
		if strings.Contains(b.s3Endpoint, "://") {
			return c, fmt.Errorf("--s3-endpoint %q: give host:port (and --s3-tls), not a URL", b.s3Endpoint)
		}
		c.S3 = &redisbackup.S3Config{Endpoint: b.s3Endpoint, AccessKey: b.s3AccessKey, SecretKey: b.s3SecretKey,
			Region: b.s3Region, TLS: b.s3TLS, PathStyle: b.s3PathStyle}
	}
	return c, nil
}

// engineOption applies the backup configuration to the Redis engine.
func (b *backupFlags) engineOption(dataDir string) (func(*redisengine.Engine), error) {
	c, err := b.config(dataDir)
	if err != nil {
		return nil, err
	}
	return func(e *redisengine.Engine) { e.Backups = c }, nil
}

func (c *cli) backups(args []string) error {
	return c.subcommand("backups", args, map[string]func([]string) error{
		"create": c.backupsCreate,
		"list":   c.backupsList,
	}, []string{"create", "list"})
}

func (c *cli) backupsCreate(args []string) error {
	fs := c.flags("backups create", "--source HOST:PORT [--password ...] [--dir DIR | --bucket NAME]")
	var bf backupFlags
	bf.register(fs)
	fs.StringVar(&bf.dir, "dir", "", "alias of --backup-dir")
	fs.StringVar(&bf.bucket, "bucket", "", "alias of --backup-bucket")
	dataDir := fs.String("data-dir", defaultDataDir, "ferry's data directory (backups go to <data-dir>/backups by default)")
	source := fs.String("source", "", "the Redis server to back up (host:port); ferry connects as a replica")
	username := fs.String("username", "", "the source's ACL user")
	password := fs.String("password", "", "the source's password (prefer the environment: FERRY_PASSWORD)")
	useTLS := fs.Bool("tls", false, "connect to the source with TLS")
	skipVerify := fs.Bool("tls-skip-verify", false, "do not verify the source's TLS certificate")
	bandwidth := fs.Int("bandwidth-mb", 0, "limit the transfer to this many MB/s (0: no limit)")
	asJSON := fs.Bool("json", false, "print the backup record as JSON")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *source == "" {
		fs.Usage()
		return errUsage
	}
	cfg, err := bf.config(*dataDir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ep := ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{*source}, Username: *username, Password: *password, TLS: *useTLS, TLSSkipVerify: *skipVerify}
	rec, err := cfg.Create(ctx, ep, *bandwidth)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(rec)
	}
	return c.kv(
		"id", rec.ID,
		"source", rec.Source,
		"file", rec.File,
		"location", rec.Location,
		"size", strconv.FormatInt(rec.Size, 10)+" bytes",
		"keys", strconv.FormatInt(rec.Keys, 10),
		"rdb", fmt.Sprintf("v%d (redis %s, checksum %s)", rec.RDBVersion, rec.RedisVersion, orDash(rec.Checksum)),
		"created", rec.CreatedAt.Format(time.RFC3339),
		"took", (time.Duration(rec.DurationMS) * time.Millisecond).String(),
	)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) backupsList(args []string) error {
	fs := c.flags("backups list", "[--dir DIR | --bucket NAME]")
	var bf backupFlags
	bf.register(fs)
	fs.StringVar(&bf.dir, "dir", "", "alias of --backup-dir")
	fs.StringVar(&bf.bucket, "bucket", "", "alias of --backup-bucket")
	dataDir := fs.String("data-dir", defaultDataDir, "ferry's data directory (backups are in <data-dir>/backups by default)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := bf.config(*dataDir)
	if err != nil {
		return err
	}
	list, err := cfg.List(c.ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if list == nil {
			list = []redisbackup.Record{}
		}
		return c.printJSON(list)
	}
	t := c.table("ID", "SOURCE", "SIZE", "KEYS", "CREATED", "LOCATION")
	for _, r := range list {
		t.row(r.ID, r.Source, strconv.FormatInt(r.Size, 10), strconv.FormatInt(r.Keys, 10), r.CreatedAt.Format(time.RFC3339), r.Location)
	}
	return t.flush()
}
