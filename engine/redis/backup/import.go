package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sort"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
	"github.com/ferrymigrate/ferry/engine/redis/rdb"
	"github.com/ferrymigrate/ferry/engine/redis/resp"
	"github.com/ferrymigrate/ferry/engine/redis/writer"
)

// maxRDBVersion is the newest RDB version a Redis version loads (and so
// accepts in RESTORE payloads).
func maxRDBVersion(redisVersion string) int {
	switch {
	case redisVersion == "":
		return rdb.MaxVersion
	case kit.VersionLess(redisVersion, "7.0"):
		return 9
	case kit.VersionLess(redisVersion, "7.2"):
		return 10
	case kit.VersionLess(redisVersion, "7.4"):
		return 11
	}
	return 12
}

// ownedDBs returns the target dbs with keys that the job may write to.
func ownedDBs(keys map[int]int64, f *kit.Filter) []string {
	var busy []string
	for db, n := range keys {
		if n == 0 {
			continue
		}
		for s := 0; s < 1024; s++ {
			if t, ok := f.DB(s); ok && t == db {
				busy = append(busy, fmt.Sprintf("db%d: %d keys", db, n))
				break
			}
		}
	}
	sort.Strings(busy)
	return busy
}

// importPrecheck checks the files (they exist, are readable, have the size
// the task says, are RDB/AOF/manifest files) and the target (reachable,
// empty where the import writes unless conflict policy replace).
func (e *Mode) importPrecheck(ctx context.Context, m *ferry.Migration, b *config.Backup, rt ferry.StepRuntime) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	f, src, err := e.open(ctx, m, b)
	if err != nil {
		return err
	}
	dst := kit.Client(&m.Target, 0)
	defer dst.Close()
	if err := dst.Ping(ctx).Err(); err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Field: "target", Reason: "TARGET_UNREACHABLE",
			Message: fmt.Sprintf("cannot reach the target %s: %v", strings.Join(m.Target.Addrs, ","), err), Advice: "check the address, the password and that ferry's host may connect"}
	}
	dstVer, _ := kit.InfoField(ctx, dst, "server", "redis_version")
	if m.Options.Conflict != ferry.ConflictReplace {
		keys, err := kit.Keyspace(ctx, dst)
		if err != nil {
			return fmt.Errorf("target INFO keyspace: %w", err)
		}
		if busy := ownedDBs(keys, f); len(busy) > 0 {
			return &ferry.Error{Code: ferry.EINVALID, Field: "target", Reason: "TARGET_NOT_EMPTY",
				Message: "the target already holds keys where the import would write (" + strings.Join(busy, ", ") + ")",
				Advice:  "empty those dbs on the target, or choose conflict policy replace"}
		}
	}
	var parts, notes []string
	maxV := maxRDBVersion(dstVer)
	for _, fl := range src.files {
		d := fl.Kind.String()
		if fl.Kind == kindRDB && fl.RDBVersion > 0 {
			d = fmt.Sprintf("RDB v%d", fl.RDBVersion)
			if fl.RDBVersion > maxV {
				notes = append(notes, fmt.Sprintf("%s is RDB v%d, newer than the target (redis %s) loads: its streams and module values, moved by RESTORE, may be refused", fl.Name, fl.RDBVersion, dstVer))
			}
		}
		if fl.Part != "" {
			d = "multi-part AOF " + fl.Part + ", " + d
		}
		parts = append(parts, fmt.Sprintf("%s (%s, %d bytes)", fl.Name, d, fl.Size))
	}
	msg := fmt.Sprintf("%d file(s), %d bytes, from %s: %s; target redis %s", len(src.files), src.total(), src.where, strings.Join(parts, ", "), dstVer)
	if len(notes) > 0 {
		msg += "; " + strings.Join(notes, "; ")
	}
	rt.Message(msg)
	rt.Progress(ferry.Counters{Done: 1, Total: 1}, 100)
	return nil
}

// importCheckpoint is the full step's resume point.
type importCheckpoint struct {
	Files   int  `json:"files"`   // number of files (a changed list starts over)
	File    int  `json:"file"`    // the file in progress
	Started bool `json:"started"` // the target may hold part of the import
	// Commands: the command part of File has begun at Offset (a byte offset
	// of File, at a command boundary, outside MULTI) in db DB; commands past
	// it may already be applied.
	Commands bool  `json:"commands,omitempty"`
	Offset   int64 `json:"offset,omitempty"`
	DB       int   `json:"db,omitempty"`
	// Counters of the files before File (plus, with Commands, of File up
	// to Offset).
	Bytes int64 `json:"bytes,omitempty"`
	Keys  int64 `json:"keys,omitempty"`
	Ops   int64 `json:"ops,omitempty"`
	Hint  int64 `json:"hint,omitempty"`
	Funcs int   `json:"funcs,omitempty"`
	// AOF: a file had commands (an AOF, or an RDB preamble followed by
	// commands), so the files alone cannot verify the target.
	AOF bool `json:"aof,omitempty"`
}

func readImportCheckpoint(raw json.RawMessage) (*importCheckpoint, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c importCheckpoint
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("bad redis import checkpoint: %w", err)
	}
	return &c, nil
}

// importRun is one run of the full step.
type importRun struct {
	e    *Mode
	spec *config.Backup
	m    *ferry.Migration
	rt   ferry.StepRuntime
	f    *kit.Filter
	src  *importSource
	w    *writer.Writer

	total    int64 // bytes of all files
	cp       importCheckpoint
	started  time.Time
	lastRep  time.Time
	lastSave time.Time
	// the file being read
	r     *resp.Reader
	base  int64 // file offset where r started
	ap    *kit.RDBApplier
	keys0 int64 // keys before the current file's RDB part
	hint0 int64
}

// pos is the byte offset in the current file.
func (ir *importRun) pos() int64 {
	if ir.r == nil {
		return ir.base
	}
	return ir.base + ir.r.Offset()
}

func (ir *importRun) keys() int64 {
	k := ir.cp.Keys
	if ir.ap != nil {
		k = ir.keys0 + ir.ap.Keys.Load()
	}
	return k
}

func (ir *importRun) counters() (ferry.Counters, float64) {
	bytes := ir.cp.Bytes
	if ir.cp.Commands {
		bytes += ir.pos() - ir.cp.Offset
	} else {
		bytes += ir.pos()
	}
	keys := ir.keys()
	c := ferry.Counters{Done: keys, Total: max(ir.cp.Hint, keys), Bytes: bytes, BytesTotal: ir.total, Ops: ir.cp.Ops, Unit: "keys"}
	if el := time.Since(ir.started).Seconds(); el > 0 {
		c.RatePerSec = float64(keys) / el
	}
	pct := 0.0
	if ir.total > 0 {
		pct = 100 * float64(bytes) / float64(ir.total)
	}
	return c, min(pct, 99.9)
}

// tick reports progress at most four times a second.
func (ir *importRun) tick() {
	if now := time.Now(); now.Sub(ir.lastRep) >= 250*time.Millisecond {
		ir.lastRep = now
		c, pct := ir.counters()
		ir.rt.Progress(c, pct)
	}
}

// save flushes the writer (so everything before is applied) and persists
// the checkpoint.
func (ir *importRun) save(ctx context.Context) error {
	if err := ir.w.Flush(ctx); err != nil {
		return fmt.Errorf("write to target: %w", err)
	}
	b, _ := json.Marshal(ir.cp)
	if err := ir.rt.Save(ctx, b); err != nil {
		return err
	}
	ir.lastSave = time.Now()
	return nil
}

// flushOwned empties the target dbs the import writes to (a restarted
// import over ferry's own partial copy, conflict policy fail: the precheck
// found them empty).
func flushOwned(ctx context.Context, m *ferry.Migration, f *kit.Filter) error {
	dst := kit.Client(&m.Target, 0)
	defer dst.Close()
	if cc, ok := dst.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return n.FlushDB(ctx).Err() })
	}
	keys, err := kit.Keyspace(ctx, dst)
	if err != nil {
		return fmt.Errorf("target INFO keyspace: %w", err)
	}
	for db, n := range keys {
		if n == 0 || len(ownedDBs(map[int]int64{db: n}, f)) == 0 {
			continue
		}
		c := kit.Client(&m.Target, db)
		err := c.FlushDB(ctx).Err()
		c.Close()
		if err != nil {
			return fmt.Errorf("empty target db %d before the import starts over: %w", db, err)
		}
	}
	return nil
}

// importFull imports the files in order.
func (e *Mode) importFull(ctx context.Context, m *ferry.Migration, b *config.Backup, rt ferry.StepRuntime) error {
	f, src, err := e.open(ctx, m, b)
	if err != nil {
		return err
	}
	prev, err := readImportCheckpoint(rt.Checkpoint())
	if err != nil {
		return err
	}
	ir := &importRun{e: e, spec: b, m: m, rt: rt, f: f, src: src, total: src.total(), started: time.Now()}
	owned := m.Options.Conflict != ferry.ConflictReplace
	startDB := 0
	switch {
	case prev == nil || !prev.Started:
	case prev.Files == len(src.files) && prev.File == len(src.files):
		// Done, but the step was not recorded as done.
		ir.cp = *prev
		c, _ := ir.counters()
		c.Total, c.Bytes, c.BytesTotal = c.Done, ir.total, ir.total
		rt.Progress(c, 100)
		rt.Message(fmt.Sprintf("imported %d file(s) (%d bytes) from %s: %d keys, %d commands, %d functions", len(src.files), ir.total, src.where, c.Done, prev.Ops, prev.Funcs))
		return nil
	case prev.Files != len(src.files) || prev.File > len(src.files):
		if !owned {
			return &ferry.Error{Code: ferry.EINVALID, Reason: "BACKUP_FILES_CHANGED",
				Message: fmt.Sprintf("the backup's files changed since the import began (%d files, now %d) and the target is not ferry's alone (conflict policy replace): the import cannot start over safely", prev.Files, len(src.files))}
		}
		rt.Message("the backup's files changed since the interrupted import began: emptying the target and importing again")
		if err := flushOwned(ctx, m, f); err != nil {
			return err
		}
	case !prev.Commands:
		// An RDB file is imported again from its start, each key deleted
		// before it is written: the result is exact.
		ir.cp = *prev
		rt.Message(fmt.Sprintf("resuming the interrupted import at file %d of %d (%s), from its start", prev.File+1, len(src.files), src.files[prev.File].Name))
	case owned:
		// Commands past the checkpoint may have been applied already and
		// are not all idempotent (INCR, RPUSH...): start over on an empty
		// target for an exact result.
		rt.Message("the interrupted import was applying AOF commands: emptying the target and importing again, for an exact result")
		if err := flushOwned(ctx, m, f); err != nil {
			return err
		}
	default:
		ir.cp = *prev
		startDB = prev.DB
		rt.Message(fmt.Sprintf("resuming the interrupted import in %s at byte %d (conflict policy replace: the commands applied after the last checkpoint are applied again)", src.files[prev.File].Name, prev.Offset))
	}
	ir.cp.Files = len(src.files)
	if ir.w, err = kit.NewWriter(ctx, m, e.WriterConns); err != nil {
		return err
	}
	defer ir.w.Close()
	resumed := ir.cp.Started
	first := ir.cp.File
	for i := first; i < len(src.files); i++ {
		fl := src.files[i]
		off, db := int64(0), 0
		if i == first && ir.cp.Commands {
			off, db = ir.cp.Offset, startDB
		} else {
			ir.cp.File, ir.cp.Commands, ir.cp.Offset, ir.cp.DB = i, false, 0, 0
			ir.cp.Bytes = ir.bytesBefore(i)
		}
		ir.cp.Started = true
		if err := ir.save(ctx); err != nil {
			return err
		}
		// A later file (or a file imported again) may hold keys the target
		// already has from this import: replace them.
		replace := !owned || i > 0 || resumed
		if err := ir.importFile(ctx, fl, off, db, replace, i == len(src.files)-1); err != nil {
			return err
		}
		ir.cp.Bytes = ir.bytesBefore(i + 1)
	}
	ir.cp.File, ir.cp.Commands, ir.cp.Offset = len(src.files), false, 0
	if err := ir.save(ctx); err != nil {
		return err
	}
	c, _ := ir.counters()
	c.Total, c.Bytes, c.BytesTotal = c.Done, ir.total, ir.total
	rt.Progress(c, 100)
	rt.Message(fmt.Sprintf("imported %d file(s) (%d bytes) from %s: %d keys, %d commands, %d functions in %s",
		len(src.files), ir.total, src.where, c.Done, ir.cp.Ops, ir.cp.Funcs, time.Since(ir.started).Round(time.Millisecond)))
	return nil
}

func (ir *importRun) bytesBefore(n int) int64 {
	var s int64
	for _, f := range ir.src.files[:n] {
		s += f.Size
	}
	return s
}

// importHandler is the kit.RDBApplier with the RDB's size hints counted and the
// handler's own errors (target writes) told apart from the file's.
type importHandler struct {
	*kit.RDBApplier
	ir   *importRun
	hint int64
	err  error
}

func (h *importHandler) ResizeDB(db int, keys, expires uint64) error {
	h.hint += int64(keys)
	h.ir.cp.Hint = h.ir.hint0 + h.hint
	return nil
}

func (h *importHandler) Chunk(c *rdb.Chunk) error {
	if err := h.RDBApplier.Chunk(c); err != nil {
		h.err = err
		return err
	}
	return nil
}

func (h *importHandler) Function(code []byte) error {
	if err := h.RDBApplier.Function(code); err != nil {
		h.err = err
		return err
	}
	h.ir.cp.Funcs++
	return nil
}

// importFile reads one file from byte off: its RDB part (when it starts
// with one and off is 0), then its commands.
func (ir *importRun) importFile(ctx context.Context, fl importFile, off int64, db int, replace, last bool) error {
	where := ir.src.store.String()
	rc, err := ir.src.store.Open(ctx, fl.Name, off)
	if err != nil {
		return fmt.Errorf("open %s: %w", ir.src.label(fl), err)
	}
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	ir.r, ir.base = resp.NewReaderSize(rc, 1<<20), off
	defer func() { ir.r, ir.ap = nil, nil }()
	if off == 0 && fl.Kind == kindRDB {
		ir.rt.Message(fmt.Sprintf("importing %s (%d bytes)", ir.src.label(fl), fl.Size))
		ir.keys0, ir.hint0 = ir.cp.Keys, ir.cp.Hint
		ir.ap = &kit.RDBApplier{W: ir.w, F: ir.f, Replace: replace}
		h := &importHandler{RDBApplier: ir.ap, ir: ir}
		ir.ap.OnKey = func() {
			if ir.ap.Keys.Load()%256 == 0 {
				ir.tick()
			}
		}
		_, err := rdb.ParseOptions(ir.r, h, rdb.Options{CaptureRaw: true, MaxRawBytes: kit.MaxRestoreBytes})
		ir.cp.Keys = ir.keys()
		if err != nil {
			if h.err != nil {
				return fmt.Errorf("write to target: %w", h.err)
			}
			return ir.readError(ctx, where, fl, 0, err)
		}
		ir.ap = nil
		if _, err := ir.r.Peek(1); err == io.EOF {
			return nil // a plain RDB file
		} else if err != nil {
			return ir.readError(ctx, where, fl, ir.pos(), err)
		}
		ir.rt.Message(fmt.Sprintf("importing %s: the commands after its RDB preamble", ir.src.label(fl)))
	} else {
		ir.rt.Message(fmt.Sprintf("importing %s (%d bytes of commands from byte %d)", ir.src.label(fl), fl.Size-off, off))
	}
	// The command part: checkpoint its start (everything before is applied).
	ir.cp.Commands, ir.cp.Offset, ir.cp.DB, ir.cp.AOF = true, ir.pos(), db, true
	ir.cp.Bytes = ir.bytesBefore(ir.cp.File) + ir.cp.Offset
	if err := ir.save(ctx); err != nil {
		return err
	}
	return ir.replay(ctx, where, fl, db, last)
}

// readError classifies a failed read: a file that is not what it should be
// (EINVALID, names the file and the offset) or an I/O error (retryable).
func (ir *importRun) readError(ctx context.Context, where string, fl importFile, at int64, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var re *rdb.Error
	if errors.As(err, &re) {
		off := ir.base + re.Offset
		switch {
		case re.Err == nil:
			return corruptFile(where, fl.Name, off, re.Msg)
		case errors.Is(re.Err, io.ErrUnexpectedEOF):
			return corruptFile(where, fl.Name, off, "the file ends in the middle of the RDB (truncated)")
		case isIOError(re.Err):
			return fmt.Errorf("read %s at byte %d: %w", ir.src.label(fl), off, re.Err)
		}
		// Checksum, LZF and other format errors: the bytes are bad.
		return corruptFile(where, fl.Name, off, re.Msg+": "+re.Err.Error())
	}
	var pe *resp.ProtocolError
	if errors.As(err, &pe) {
		return corruptFile(where, fl.Name, ir.base+pe.Offset, "bad AOF command: "+pe.Msg)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return corruptFile(where, fl.Name, at, "the file ends in the middle of a command (truncated)")
	}
	return fmt.Errorf("read %s at byte %d: %w", ir.src.label(fl), at, err)
}

// isIOError reports errors of reading (file system, network) rather than of
// the bytes read: those are worth a retry.
func isIOError(err error) bool {
	var pe *fs.PathError
	var ne net.Error
	return errors.As(err, &pe) || errors.As(err, &ne) || errors.Is(err, io.ErrClosedPipe)
}
