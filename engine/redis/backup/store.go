package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrymigrate/ferry"
)

// Config says where the Redis engine finds the backup files a
// backup_import job reads, and where `ferry backups create` keeps the backups
// it takes (the "backup records" a DCS task names with backup_id).
//
// A job names its files with Options.Extra:
//
//	backup_dir          a local directory of the agent (the embedded default)
//	backup_bucket       a bucket: a name of BucketDirs (a local directory), else
//	                    a bucket of the S3-compatible server S3
//	backup_files        the files, in import order: a JSON array of
//	                    {"file_name", "size", "update_at"} (DCS's Files), or a
//	                    comma-separated list of names; a name may be an RDB, an
//	                    AOF, a Redis 7 appendonly.aof.manifest, or a directory
//	                    (prefix) holding a manifest
//	backup_file_source  self_build_obs (files from backup_bucket) or
//	                    backup_record (the backup backup_id)
//	backup_id           a backup taken by `ferry backups create`
//
// Secrets (S3.SecretKey) are never logged nor returned by an API: jobs only
// name buckets; the credentials live in the agent's configuration.
type Config struct {
	// Dir is the directory of ferry's own backups (ferry serve: <data-dir>/backups).
	Dir string
	// Bucket, when set, is where new backups are kept instead of Dir (on
	// BucketDirs or S3, as for imports); backup records are looked up in
	// both.
	Bucket string
	// BucketDirs maps bucket names to local directories.
	BucketDirs map[string]string
	// S3 is the S3-compatible server of the buckets that are not in
	// BucketDirs; nil: none.
	S3 *S3Config
	// AllowedDirs are the directories (and their subdirectories) a job's
	// backup_dir may name; empty: none (ferry serve and ferry agent default
	// it to <data-dir>/imports). A backup_dir is opened through an os.Root
	// of the allowed directory it is in, so a symlink or ".." inside cannot
	// reach outside.
	AllowedDirs []string
}

// S3Config locates an S3-compatible server (AWS S3, MinIO, versitygw, OBS...).
type S3Config struct {
	Endpoint  string // host:port, no scheme
	AccessKey string
	SecretKey string // never logged nor shown
	Region    string // "" lets the client discover it
	TLS       bool   // https
	// PathStyle forces path-style bucket addressing (default: chosen by the
	// client from the endpoint).
	PathStyle bool
}

// String describes the server without the secret.
func (c *S3Config) String() string {
	if c == nil {
		return "no S3 server"
	}
	scheme := "http"
	if c.TLS {
		scheme = "https"
	}
	return scheme + "://" + c.Endpoint
}

// LogValue keeps the secret key out of logs.
func (c *S3Config) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("none")
	}
	return slog.GroupValue(slog.String("endpoint", c.Endpoint), slog.String("region", c.Region), slog.Bool("tls", c.TLS), slog.String("accessKey", c.AccessKey))
}

// Client returns a minio client of the server.
func (c *S3Config) Client() (*minio.Client, error) {
	if c == nil || c.Endpoint == "" {
		return nil, errors.New("no S3 endpoint configured")
	}
	o := &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Secure: c.TLS, Region: c.Region}
	if c.PathStyle {
		o.BucketLookup = minio.BucketLookupPath
	}
	cl, err := minio.New(c.Endpoint, o)
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", c, err)
	}
	return cl, nil
}

// fileInfo describes a file (or object) of a fileStore.
type fileInfo struct {
	Name    string // slash-separated, relative to the store
	Size    int64
	ModTime time.Time
	Dir     bool // a directory (or a prefix with objects under it)
}

// fileStore is where backup files are: a local directory or an S3 bucket.
// Names are slash-separated and relative to the store.
type fileStore interface {
	String() string
	Stat(ctx context.Context, name string) (fileInfo, error)
	// Open reads the file from byte off on.
	Open(ctx context.Context, name string, off int64) (io.ReadCloser, error)
	// List returns the files directly in dir ("" for the top).
	List(ctx context.Context, dir string) ([]fileInfo, error)
	// Put stores r (size bytes, or -1 when unknown) as name, atomically.
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	Remove(ctx context.Context, name string) error
}

// errNotFound is wrapped by Stat and Open when the file does not exist.
var errNotFound = errors.New("no such file")

// dirStore is a local directory. Names cannot escape it (os.Root). With
// base set, dir is base/sub and is opened inside an os.Root of base, so
// that not even dir itself (a symlink) leads outside base.
type dirStore struct {
	dir       string
	base, sub string
}

func (d *dirStore) String() string { return "directory " + d.dir }

func (d *dirStore) root() (*os.Root, error) {
	if d.base == "" {
		r, err := os.OpenRoot(d.dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: %w", d, errNotFound)
			}
			return nil, err
		}
		return r, nil
	}
	b, err := os.OpenRoot(d.base)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", d, errNotFound)
		}
		return nil, fmt.Errorf("%s: cannot open the import directory", d)
	}
	if d.sub == "" || d.sub == "." {
		return b, nil
	}
	defer b.Close()
	r, err := b.OpenRoot(d.sub)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", d, errNotFound)
		}
		// Escapes (a symlink out of base) and permission errors alike: say
		// nothing of what is outside.
		return nil, fmt.Errorf("%s: %w", d, errNotFound)
	}
	return r, nil
}

func (d *dirStore) Stat(ctx context.Context, name string) (fileInfo, error) {
	r, err := d.root()
	if err != nil {
		return fileInfo{}, err
	}
	defer r.Close()
	st, err := r.Stat(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fileInfo{}, fmt.Errorf("%s in %s: %w", name, d, errNotFound)
		}
		return fileInfo{}, err
	}
	return fileInfo{Name: name, Size: st.Size(), ModTime: st.ModTime(), Dir: st.IsDir()}, nil
}

func (d *dirStore) Open(ctx context.Context, name string, off int64) (io.ReadCloser, error) {
	r, err := d.root()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s in %s: %w", name, d, errNotFound)
		}
		return nil, err
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

func (d *dirStore) List(ctx context.Context, dir string) ([]fileInfo, error) {
	r, err := d.root()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if dir == "" {
		dir = "."
	}
	f, err := r.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var out []fileInfo
	for _, e := range ents {
		st, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, fileInfo{Name: path.Join(strings.TrimPrefix(dir, "."), e.Name()), Size: st.Size(), ModTime: st.ModTime(), Dir: e.IsDir()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (d *dirStore) Put(ctx context.Context, name string, src io.Reader, size int64) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	r, err := d.root()
	if err != nil {
		return err
	}
	defer r.Close()
	if dir := path.Dir(name); dir != "." {
		if err := r.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	tmp := name + ".tmp-" + ferry.RandomHex(4)
	f, err := r.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, src)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, name)
	}
	if err != nil {
		_ = r.Remove(tmp)
	}
	return err
}

func (d *dirStore) Remove(ctx context.Context, name string) error {
	r, err := d.root()
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Remove(name)
}

// s3Store is a bucket of an S3-compatible server.
type s3Store struct {
	cfg    *S3Config
	cl     *minio.Client
	bucket string
}

func newS3Store(cfg *S3Config, bucket string) (*s3Store, error) {
	cl, err := cfg.Client()
	if err != nil {
		return nil, err
	}
	return &s3Store{cfg: cfg, cl: cl, bucket: bucket}, nil
}

func (s *s3Store) String() string { return fmt.Sprintf("bucket %s on %s", s.bucket, s.cfg) }

func s3NotFound(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, minio.NoSuchBucket, "NotFound":
		return true
	}
	return false
}

func (s *s3Store) Stat(ctx context.Context, name string) (fileInfo, error) {
	st, err := s.cl.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err == nil && !strings.HasSuffix(name, "/") {
		return fileInfo{Name: name, Size: st.Size, ModTime: st.LastModified}, nil
	}
	if err != nil && !s3NotFound(err) {
		return fileInfo{}, fmt.Errorf("%s in %s: %w", name, s, err)
	}
	// A "directory": objects under name/.
	prefix := strings.TrimSuffix(name, "/") + "/"
	for o := range s.cl.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, MaxKeys: 1}) {
		if o.Err != nil {
			if s3NotFound(o.Err) {
				break
			}
			return fileInfo{}, fmt.Errorf("list %s in %s: %w", prefix, s, o.Err)
		}
		return fileInfo{Name: strings.TrimSuffix(name, "/"), Dir: true}, nil
	}
	return fileInfo{}, fmt.Errorf("%s in %s: %w", name, s, errNotFound)
}

func (s *s3Store) Open(ctx context.Context, name string, off int64) (io.ReadCloser, error) {
	o := minio.GetObjectOptions{}
	if off > 0 {
		if err := o.SetRange(off, 0); err != nil {
			return nil, err
		}
	}
	obj, err := s.cl.GetObject(ctx, s.bucket, name, o)
	if err != nil {
		if s3NotFound(err) {
			return nil, fmt.Errorf("%s in %s: %w", name, s, errNotFound)
		}
		return nil, fmt.Errorf("%s in %s: %w", name, s, err)
	}
	// GetObject is lazy: ask now, so a missing object is reported as such.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if s3NotFound(err) {
			return nil, fmt.Errorf("%s in %s: %w", name, s, errNotFound)
		}
		return nil, fmt.Errorf("%s in %s: %w", name, s, err)
	}
	return obj, nil
}

func (s *s3Store) List(ctx context.Context, dir string) ([]fileInfo, error) {
	prefix := ""
	if dir != "" && dir != "." {
		prefix = strings.TrimSuffix(dir, "/") + "/"
	}
	var out []fileInfo
	for o := range s.cl.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if o.Err != nil {
			if s3NotFound(o.Err) && minio.ToErrorResponse(o.Err).Code != minio.NoSuchBucket {
				break
			}
			return nil, fmt.Errorf("list %s: %w", s, o.Err)
		}
		fi := fileInfo{Name: strings.TrimSuffix(o.Key, "/"), Size: o.Size, ModTime: o.LastModified, Dir: strings.HasSuffix(o.Key, "/")}
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *s3Store) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	o := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	if size < 0 {
		// Of unknown size (a diskless RDB), the object is uploaded in parts
		// buffered in memory: 16 MiB parts (objects up to 156 GiB) instead
		// of the client's default of about 537 MiB.
		o.PartSize = 16 << 20
	}
	_, err := s.cl.PutObject(ctx, s.bucket, name, r, size, o)
	if err != nil {
		return fmt.Errorf("upload %s to %s: %w", name, s, err)
	}
	return nil
}

func (s *s3Store) Remove(ctx context.Context, name string) error {
	return s.cl.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{})
}

// bucketStore returns the store of a bucket name: a configured local
// directory, else a bucket of the configured S3 server.
func (c *Config) bucketStore(bucket string) (fileStore, error) {
	if d, ok := c.BucketDirs[bucket]; ok {
		return &dirStore{dir: d}, nil
	}
	if c.S3 != nil && c.S3.Endpoint != "" {
		return newS3Store(c.S3, bucket)
	}
	return nil, &ferry.Error{Code: ferry.EINVALID, Field: "backup_files.bucket_name", Reason: "BUCKET_NOT_CONFIGURED",
		Message: fmt.Sprintf("bucket %q is neither a local directory configured for buckets nor on an S3 server: this ferry has no S3 server configured", bucket),
		Advice:  "start ferry with --bucket-dir " + bucket + "=/path/to/dir, or with --s3-endpoint, --s3-access-key and --s3-secret-key"}
}

// dirAllowed checks a job's backup_dir against AllowedDirs, with no file
// system access (so its answer says nothing of what exists).
func (c *Config) dirAllowed(dir string) error {
	_, err := c.importStore(dir)
	return err
}

// importStore returns the store of a job's backup_dir: inside the allowed
// directory it is in, through an os.Root of that directory.
func (c *Config) importStore(dir string) (*dirStore, error) {
	if !filepath.IsAbs(dir) {
		return nil, ferry.FieldError("options.extra.backup_dir", "must be an absolute directory of the agent's host, not %q", dir)
	}
	if len(c.AllowedDirs) == 0 {
		return nil, &ferry.Error{Code: ferry.EINVALID, Field: "options.extra.backup_dir", Reason: "DIR_NOT_ALLOWED",
			Message: "this ferry has no directory to import backups from",
			Advice:  "put the backup files into <data-dir>/imports, or start ferry with --import-dirs"}
	}
	clean := filepath.Clean(dir)
	for _, a := range c.AllowedDirs {
		a = filepath.Clean(a)
		if clean == a {
			return &dirStore{dir: clean, base: a}, nil
		}
		if strings.HasPrefix(clean, a+string(filepath.Separator)) {
			sub := filepath.ToSlash(strings.TrimPrefix(clean, a+string(filepath.Separator)))
			return &dirStore{dir: clean, base: a, sub: sub}, nil
		}
	}
	return nil, &ferry.Error{Code: ferry.EINVALID, Field: "options.extra.backup_dir", Reason: "DIR_NOT_ALLOWED",
		Message: fmt.Sprintf("backup_dir %q is outside the directories this ferry may import from (%s)", dir, strings.Join(c.AllowedDirs, ", ")),
		Advice:  "put the backup files into an import directory (--import-dirs, default <data-dir>/imports)"}
}
