package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
	"github.com/ferrymigrate/ferry/engine/redis/rdb"
)

// Record describes a backup taken by Config.Create: one RDB file
// (<id>.rdb) and this record beside it (<id>.json), in the backup directory
// or under ferry-backups/ in the backup bucket. A backup_import job with
// file_source backup_record and backup_id <id> imports it.
type Record struct {
	ID           string    `json:"id"`
	Source       string    `json:"source"` // host:port of the server backed up
	File         string    `json:"file"`   // the RDB's name in its store
	Size         int64     `json:"size"`
	CreatedAt    time.Time `json:"createdAt"`
	Location     string    `json:"location"` // "directory ..." or "bucket ... on ..."
	RDBVersion   int       `json:"rdbVersion"`
	RedisVersion string    `json:"redisVersion,omitempty"`
	Keys         int64     `json:"keys"`
	Functions    int       `json:"functions,omitempty"`
	Checksum     string    `json:"checksum,omitempty"` // the RDB's CRC-64, hex ("" when the server wrote none)
	ReplID       string    `json:"replId,omitempty"`
	ReplOffset   int64     `json:"replOffset"`
	Diskless     bool      `json:"diskless"` // the server sent it without writing it to its disk
	DurationMS   int64     `json:"durationMs"`
}

// bucketBackupPrefix is where backups live in a bucket.
const bucketBackupPrefix = "ferry-backups"

// backupStores returns the stores that hold backup records, the one new
// backups go to first, with the directory of the records in each.
func (c *Config) backupStores() ([]fileStore, []string, error) {
	var stores []fileStore
	var dirs []string
	if c.Bucket != "" {
		s, err := c.bucketStore(c.Bucket)
		if err != nil {
			return nil, nil, err
		}
		prefix := bucketBackupPrefix
		if _, local := c.BucketDirs[c.Bucket]; local {
			prefix = ""
		}
		stores, dirs = append(stores, s), append(dirs, prefix)
	}
	if c.Dir != "" {
		stores, dirs = append(stores, &dirStore{dir: c.Dir}), append(dirs, "")
	}
	if len(stores) == 0 {
		return nil, nil, &ferry.Error{Code: ferry.EINVALID, Reason: "NO_BACKUP_DIR", Message: "no backup directory or bucket is configured",
			Advice: "give ferry a --backup-dir (default <data-dir>/backups) or a --backup-bucket"}
	}
	return stores, dirs, nil
}

// Create takes a backup of a Redis server: ferry connects as a replica
// (PSYNC ? -1), receives the RDB the server sends (disk-backed or diskless:
// the "$<len>" or "$EOF:<mark>" framing is stripped), stores it as it
// arrives while parsing it (the checksum is verified; the file is never
// whole in memory) and records it. bandwidthMB > 0 throttles the transfer.
func (c *Config) Create(ctx context.Context, src ferry.Endpoint, bandwidthMB int) (*Record, error) {
	if len(src.Addrs) != 1 {
		return nil, ferry.FieldError("source", "give the one server to back up (host:port)")
	}
	stores, dirs, err := c.backupStores()
	if err != nil {
		return nil, err
	}
	st, dir := stores[0], dirs[0]
	started := time.Now()
	l, err := kit.DialLink(ctx, &src, src.Addrs[0], bandwidthMB)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	stop := context.AfterFunc(ctx, func() { _ = l.Conn.SetDeadline(time.Now()) })
	defer stop()
	res, err := l.Handshake("?", -1)
	if err == nil && !res.Full {
		err = errors.New("the server answered PSYNC ? -1 without a full resync")
	}
	if err != nil {
		return nil, fmt.Errorf("backup of %s: %w", src.Addrs[0], err)
	}
	pre, err := l.R.ReadRDBPreamble()
	if err != nil {
		return nil, fmt.Errorf("backup of %s: read RDB preamble: %w", src.Addrs[0], err)
	}
	rec := &Record{ID: ferry.NewID(), Source: src.Addrs[0], CreatedAt: started.UTC(), Location: st.String(),
		ReplID: res.ReplID, ReplOffset: res.Offset, Diskless: pre.Diskless()}
	rec.File = path.Join(dir, rec.ID+".rdb")
	payload := l.R.PayloadReader(pre)

	// Store what arrives while the parser checks it.
	pr, pw := io.Pipe()
	putDone := make(chan error, 1)
	go func() {
		err := st.Put(ctx, rec.File, pr, pre.Size)
		pr.CloseWithError(err)
		putDone <- err
	}()
	cr := &countingReader{r: payload}
	info, perr := rdb.Parse(io.TeeReader(cr, pw), rdb.NopHandler{})
	if perr == nil {
		// Whatever the parser's buffer did not read (nothing, for a valid RDB).
		_, perr = io.Copy(pw, cr)
	}
	if perr != nil {
		pw.CloseWithError(perr)
		<-putDone
		_ = st.Remove(context.WithoutCancel(ctx), rec.File)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("backup of %s: the RDB received does not parse: %w", src.Addrs[0], perr)
	}
	pw.Close()
	if err := <-putDone; err != nil {
		return nil, fmt.Errorf("backup of %s: store %s: %w", src.Addrs[0], rec.File, err)
	}
	if info.Bytes != cr.n {
		_ = st.Remove(context.WithoutCancel(ctx), rec.File)
		return nil, fmt.Errorf("backup of %s: the RDB is %d bytes but %d were sent", src.Addrs[0], info.Bytes, cr.n)
	}
	if pre.Diskless() {
		// PayloadReader consumed the EOF mark; a disk-backed size is exact.
	} else if cr.n != pre.Size {
		_ = st.Remove(context.WithoutCancel(ctx), rec.File)
		return nil, fmt.Errorf("backup of %s: %d bytes announced, %d received", src.Addrs[0], pre.Size, cr.n)
	}
	rec.Size, rec.RDBVersion, rec.Keys, rec.Functions = cr.n, info.Version, info.Keys, info.Functions
	rec.RedisVersion = info.Aux["redis-ver"]
	if info.Checksum != 0 {
		rec.Checksum = strconv.FormatUint(info.Checksum, 16)
	}
	rec.DurationMS = time.Since(started).Milliseconds()
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := st.Put(ctx, path.Join(dir, rec.ID+".json"), strings.NewReader(string(b)+"\n"), int64(len(b)+1)); err != nil {
		_ = st.Remove(context.WithoutCancel(ctx), rec.File)
		return nil, fmt.Errorf("backup of %s: store its record: %w", src.Addrs[0], err)
	}
	return rec, nil
}

// List returns the backup records, newest first.
func (c *Config) List(ctx context.Context) ([]Record, error) {
	stores, dirs, err := c.backupStores()
	if err != nil {
		return nil, err
	}
	var out []Record
	seen := map[string]bool{}
	for i, st := range stores {
		ents, err := st.List(ctx, dirs[i])
		if err != nil {
			return nil, fmt.Errorf("list backups in %s: %w", st, err)
		}
		for _, e := range ents {
			base := path.Base(e.Name)
			id, ok := strings.CutSuffix(base, ".json")
			if e.Dir || !ok || !ferry.ValidID(id) || seen[id] {
				continue
			}
			rec, err := readRecord(ctx, st, e.Name)
			if err != nil {
				return nil, err
			}
			seen[id] = true
			out = append(out, *rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

func readRecord(ctx context.Context, st fileStore, name string) (*Record, error) {
	rc, err := st.Open(ctx, name, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", name, st, err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("backup record %s in %s: %w", name, st, err)
	}
	return &rec, nil
}

// findBackup returns a backup record and the store of its file.
func (c *Config) findBackup(ctx context.Context, id string) (*Record, fileStore, error) {
	notFound := &ferry.Error{Code: ferry.EINVALID, Field: "backup_files.backup_id", Reason: "BACKUP_NOT_FOUND",
		Message: fmt.Sprintf("backup %q not found", id), Advice: "list the backups with `ferry backups list`"}
	if !ferry.ValidID(id) {
		return nil, nil, notFound
	}
	stores, dirs, err := c.backupStores()
	if err != nil {
		return nil, nil, err
	}
	for i, st := range stores {
		rec, err := readRecord(ctx, st, path.Join(dirs[i], id+".json"))
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return rec, st, nil
	}
	return nil, nil, notFound
}
