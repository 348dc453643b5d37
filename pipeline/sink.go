package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrymigrate/ferry"
)

// ManifestName is the file that makes a dataset visible: a dataset without
// it is not published (a reader lists only datasets that have one).
const ManifestName = "_manifest.json"

// stagingDir is where local datasets are written before they are renamed
// into place.
const stagingDir = ".staging"

// sink is a dataset store: a local directory or an S3-compatible bucket
// prefix.
type sink interface {
	// stage opens the staging area of dataset name (empty, whatever an
	// earlier attempt left).
	stage(ctx context.Context, name string) (stage, error)
	// discard removes whatever an unpublished attempt at name left.
	discard(ctx context.Context, name string) error
	// published reads a published dataset's manifest (ok false if none).
	published(ctx context.Context, name string) (m []byte, ok bool, err error)
	// remove deletes a published dataset (unpublishing it first).
	remove(ctx context.Context, name string) error
	// list names the published datasets.
	list(ctx context.Context) ([]string, error)
	// open reads a file of a published dataset.
	open(ctx context.Context, name, file string) (io.ReadCloser, error)
	String() string
}

type stage interface {
	create(ctx context.Context, rel string) (io.WriteCloser, error)
	// publish writes the manifest and makes the dataset visible at once.
	publish(ctx context.Context, manifest []byte) error
}

// S3Config is the agent's S3-compatible server for s3:// sinks. Its keys
// come from the agent's configuration only, never from the API, and are
// never logged.
type S3Config struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Region    string
	TLS       bool
	PathStyle bool
}

// sinkFor resolves a pipeline's sink location: "" is the default dataset
// directory (per project: <Dir>/<projectId>), s3://bucket/prefix a bucket
// of the agent's S3 server (keys under prefix/<projectId>/), anything else
// a local directory that must lie under one of the allowed directories and,
// if under Dir, inside the project's own folder. Every local read, write
// and delete goes through an os.Root of the sink's directory, so no name
// (a dataset's, a partition's) can reach outside it.
func (e *Exporter) sinkFor(projectID, location string) (sink, error) {
	if !ferry.ValidID(projectID) {
		return nil, fmt.Errorf("pipeline: bad project id %q", projectID)
	}
	if strings.HasPrefix(location, "s3://") {
		rest := strings.TrimPrefix(location, "s3://")
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, ferry.FieldError("sink.location", "s3:// location without a bucket")
		}
		if err := checkKeyPath(prefix); err != nil {
			return nil, ferry.FieldError("sink.location", "bad s3:// prefix: %v", err)
		}
		if e.cfg.S3 == nil {
			return nil, &ferry.Error{Code: ferry.EINVALID, Field: "sink.location", Reason: "S3_NOT_CONFIGURED",
				Message: "this ferry has no S3 server configured for s3:// dataset locations", Advice: "start ferry with --s3-endpoint and its keys"}
		}
		cl, err := e.s3Client()
		if err != nil {
			return nil, err
		}
		prefix = strings.Trim(prefix, "/")
		if prefix != "" {
			prefix += "/"
		}
		// A project's datasets are under its own prefix: two projects
		// naming the same location never see each other's.
		return &s3Sink{cl: cl, bucket: bucket, prefix: prefix + projectID + "/"}, nil
	}
	if location == "" {
		if e.cfg.Dir == "" {
			return nil, errors.New("pipeline: no dataset directory configured")
		}
		return &localSink{root: filepath.Join(e.cfg.Dir, projectID)}, nil
	}
	if !filepath.IsAbs(location) {
		return nil, ferry.FieldError("sink.location", "a local location must be an absolute path (or s3://bucket/prefix)")
	}
	if strings.ContainsFunc(location, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, ferry.FieldError("sink.location", "may not contain control characters")
	}
	clean := filepath.Clean(location)
	if d := e.cfg.Dir; d != "" {
		d = filepath.Clean(d)
		own := filepath.Join(d, projectID)
		if (clean == d || strings.HasPrefix(clean, d+string(filepath.Separator))) && clean != own && !strings.HasPrefix(clean, own+string(filepath.Separator)) {
			return nil, &ferry.Error{Code: ferry.EINVALID, Field: "sink.location", Reason: "LOCATION_NOT_ALLOWED",
				Message: "a location in the dataset directory must be inside the project's own folder " + own}
		}
	}
	for _, d := range append([]string{e.cfg.Dir}, e.cfg.AllowedDirs...) {
		if d == "" {
			continue
		}
		d = filepath.Clean(d)
		if clean == d || strings.HasPrefix(clean, d+string(filepath.Separator)) {
			return &localSink{root: clean}, nil
		}
	}
	return nil, &ferry.Error{Code: ferry.EINVALID, Field: "sink.location", Reason: "LOCATION_NOT_ALLOWED",
		Message: fmt.Sprintf("%s is not under the dataset directory or an allowed directory of this ferry", clean)}
}

func (e *Exporter) s3Client() (*minio.Client, error) {
	e.s3mu.Lock()
	defer e.s3mu.Unlock()
	if e.s3 != nil {
		return e.s3, nil
	}
	c := e.cfg.S3
	opts := &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Secure: c.TLS, Region: c.Region}
	if c.PathStyle {
		opts.BucketLookup = minio.BucketLookupPath
	}
	cl, err := minio.New(c.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	e.s3 = cl
	return cl, nil
}

// --- local directory ---

// localSink keeps dataset NAME in root/NAME, staged in root/.staging/NAME.
// Every file operation goes through an os.Root of root: a name that would
// climb out (.., a symlink) fails instead of touching anything outside.
type localSink struct{ root string }

func (s *localSink) String() string { return s.root }

// open returns the os.Root of the sink's directory, creating it.
func (s *localSink) openRoot() (*os.Root, error) {
	if err := os.MkdirAll(s.root, 0o750); err != nil {
		return nil, err
	}
	return os.OpenRoot(s.root)
}

func stagingPath(name string) string { return stagingDir + "/" + name }

func (s *localSink) stage(ctx context.Context, name string) (stage, error) {
	if err := checkDatasetName(name); err != nil {
		return nil, err
	}
	if err := s.discard(ctx, name); err != nil {
		return nil, err
	}
	r, err := s.openRoot()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := r.MkdirAll(stagingPath(name), 0o750); err != nil {
		return nil, err
	}
	return &localStage{s: s, name: name}, nil
}

func (s *localSink) discard(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	if err := checkDatasetName(name); err != nil {
		return err
	}
	r, err := s.openRoot()
	if err != nil {
		return err
	}
	defer r.Close()
	return r.RemoveAll(stagingPath(name))
}

func (s *localSink) published(ctx context.Context, name string) ([]byte, bool, error) {
	if err := checkDatasetName(name); err != nil {
		return nil, false, err
	}
	r, err := s.openRoot()
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	b, err := r.ReadFile(name + "/" + ManifestName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}

func (s *localSink) remove(ctx context.Context, name string) error {
	if err := checkDatasetName(name); err != nil {
		return err
	}
	r, err := s.openRoot()
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := r.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// Unpublish at once (rename out of sight), then delete.
	trash := stagingDir + "/deleted-" + ferry.RandomHex(6)
	if err := r.MkdirAll(stagingDir, 0o750); err != nil {
		return err
	}
	if err := r.Rename(name, trash); err != nil {
		return err
	}
	return r.RemoveAll(trash)
}

func (s *localSink) list(ctx context.Context) ([]string, error) {
	r, err := os.OpenRoot(s.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ents, err := fs.ReadDir(r.FS(), ".")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || e.Name() == stagingDir {
			continue
		}
		if _, err := r.Stat(e.Name() + "/" + ManifestName); err == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (s *localSink) open(ctx context.Context, name, file string) (io.ReadCloser, error) {
	if err := checkDatasetName(name); err != nil {
		return nil, err
	}
	if err := checkKeyPath(file); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(s.root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Open(name + "/" + file)
}

type localStage struct {
	s    *localSink
	name string
}

func (st *localStage) create(ctx context.Context, rel string) (io.WriteCloser, error) {
	if err := checkKeyPath(rel); err != nil {
		return nil, err
	}
	r, err := st.s.openRoot()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p := stagingPath(st.name) + "/" + rel
	if err := r.MkdirAll(path.Dir(p), 0o750); err != nil {
		return nil, err
	}
	f, err := r.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, err
	}
	return &syncFile{f}, nil
}

type syncFile struct{ *os.File }

func (f *syncFile) abort() { f.File.Close() }

func (f *syncFile) Close() error {
	if err := f.File.Sync(); err != nil {
		f.File.Close()
		return err
	}
	return f.File.Close()
}

func (st *localStage) publish(ctx context.Context, manifest []byte) error {
	r, err := st.s.openRoot()
	if err != nil {
		return err
	}
	defer r.Close()
	dir := stagingPath(st.name)
	mf := dir + "/" + ManifestName
	if err := r.WriteFile(mf, manifest, 0o640); err != nil {
		return err
	}
	if f, err := r.Open(mf); err == nil {
		_ = f.Sync()
		f.Close()
	}
	if _, err := r.Lstat(st.name); err == nil {
		return fmt.Errorf("dataset %s already exists in %s", st.name, st.s.root)
	}
	if err := r.Rename(dir, st.name); err != nil {
		return fmt.Errorf("publish dataset: %w", err)
	}
	if d, err := r.Open("."); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// checkDatasetName refuses a dataset name that is not one path element
// (DatasetName never makes one; a name from an older ferry might be).
func checkDatasetName(name string) error {
	if name == "" || name == "." || name == ".." || name == stagingDir || strings.ContainsAny(name, "/\\\x00") {
		return &ferry.Error{Code: ferry.ECONFLICT, Reason: "UNSAFE_DATASET_NAME",
			Message: fmt.Sprintf("dataset name %q is not a single path element; ferry will not touch it", name),
			Advice:  "a dataset named so was written by an older ferry: remove its files by hand"}
	}
	return nil
}

// checkKeyPath refuses a relative slash path (a file of a dataset, an S3
// prefix) with an empty, "." or ".." segment, a backslash or a control
// character.
func checkKeyPath(p string) error {
	if p == "" {
		return nil
	}
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("path %q has an empty, . or .. segment", p)
		}
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return fmt.Errorf("path %q has a backslash or a control character", p)
	}
	return nil
}

// --- S3-compatible bucket ---

// s3Sink keeps dataset NAME under bucket/prefix/NAME/. S3 has no rename:
// the data files are written under the final prefix and the manifest last,
// so a dataset exists for readers (list, and ferry's own readers) only
// once its manifest does; deleting removes the manifest first.
type s3Sink struct {
	cl     *minio.Client
	bucket string
	prefix string
}

func (s *s3Sink) String() string { return "s3://" + s.bucket + "/" + s.prefix }

func (s *s3Sink) key(name, rel string) string { return s.prefix + name + "/" + rel }

func (s *s3Sink) stage(ctx context.Context, name string) (stage, error) {
	if err := checkDatasetName(name); err != nil {
		return nil, err
	}
	if err := s.discard(ctx, name); err != nil {
		return nil, err
	}
	return &s3Stage{s: s, name: name}, nil
}

func (s *s3Sink) removePrefix(ctx context.Context, name string, manifestFirst bool) error {
	if err := checkDatasetName(name); err != nil {
		return err
	}
	if manifestFirst {
		if err := s.cl.RemoveObject(ctx, s.bucket, s.key(name, ManifestName), minio.RemoveObjectOptions{}); err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
			return fmt.Errorf("s3 remove manifest: %w", err)
		}
	}
	objs := make(chan minio.ObjectInfo)
	var listErr error
	go func() {
		defer close(objs)
		for o := range s.cl.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + name + "/", Recursive: true}) {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			objs <- o
		}
	}()
	for e := range s.cl.RemoveObjects(ctx, s.bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			return fmt.Errorf("s3 remove %s: %w", e.ObjectName, e.Err)
		}
	}
	if listErr != nil {
		return fmt.Errorf("s3 list: %w", listErr)
	}
	return nil
}

func (s *s3Sink) discard(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	if _, ok, err := s.published(ctx, name); err != nil || ok {
		return err // never discard a published dataset
	}
	return s.removePrefix(ctx, name, false)
}

func (s *s3Sink) published(ctx context.Context, name string) ([]byte, bool, error) {
	if err := checkDatasetName(name); err != nil {
		return nil, false, err
	}
	o, err := s.cl.GetObject(ctx, s.bucket, s.key(name, ManifestName), minio.GetObjectOptions{})
	if err != nil {
		return nil, false, err
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, false, nil
		}
		return nil, false, err
	}
	return b, true, nil
}

func (s *s3Sink) remove(ctx context.Context, name string) error {
	return s.removePrefix(ctx, name, true)
}

func (s *s3Sink) list(ctx context.Context) ([]string, error) {
	var out []string
	for o := range s.cl.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		rel := strings.TrimPrefix(o.Key, s.prefix)
		if dir, file := path.Split(rel); file == ManifestName && strings.Count(dir, "/") == 1 {
			out = append(out, strings.TrimSuffix(dir, "/"))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *s3Sink) open(ctx context.Context, name, file string) (io.ReadCloser, error) {
	if err := checkDatasetName(name); err != nil {
		return nil, err
	}
	if err := checkKeyPath(file); err != nil {
		return nil, err
	}
	return s.cl.GetObject(ctx, s.bucket, s.key(name, file), minio.GetObjectOptions{})
}

type s3Stage struct {
	s    *s3Sink
	name string
}

// create spools the file to a local temporary file (Parquet needs no
// seeks, but a known size lets the upload run without a large buffer) and
// uploads it on Close.
func (st *s3Stage) create(ctx context.Context, rel string) (io.WriteCloser, error) {
	if err := checkKeyPath(rel); err != nil {
		return nil, err
	}
	f, err := createTemp("s3spool")
	if err != nil {
		return nil, err
	}
	return &s3File{ctx: ctx, st: st, key: st.s.key(st.name, rel), f: f}, nil
}

type s3File struct {
	ctx context.Context
	st  *s3Stage
	key string
	f   *os.File
}

func (w *s3File) Write(p []byte) (int, error) { return w.f.Write(p) }

// abort drops the file without uploading it.
func (w *s3File) abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

func (w *s3File) Close() error {
	defer os.Remove(w.f.Name())
	defer w.f.Close()
	size, err := w.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = w.st.s.cl.PutObject(w.ctx, w.st.s.bucket, w.key, w.f, size, minio.PutObjectOptions{
		ContentType: "application/vnd.apache.parquet", PartSize: 16 << 20, NumThreads: 1})
	if err != nil {
		return fmt.Errorf("s3 upload %s: %w", w.key, err)
	}
	return nil
}

func (st *s3Stage) publish(ctx context.Context, manifest []byte) error {
	_, err := st.s.cl.PutObject(ctx, st.s.bucket, st.s.key(st.name, ManifestName), bytes.NewReader(manifest), int64(len(manifest)),
		minio.PutObjectOptions{ContentType: "application/json"})
	if err != nil {
		return fmt.Errorf("s3 publish manifest: %w", err)
	}
	return nil
}
