package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
	"github.com/ferrymigrate/ferry/engine/redis/rdb"
)

// importVerify checks the target against the imported files: the RDB files
// are parsed again and every key they hold is looked up on the target (type,
// absolute expiry to the millisecond, value chunk by chunk: string bytes,
// list elements in order, set members, zset scores bit for bit, hash fields,
// stream entries and consumer groups). An AOF is a log of commands whose
// result cannot be read from the file without executing it, so imports with
// AOF files (or an RDB preamble followed by commands) skip verification and
// say so.
func (e *Mode) importVerify(ctx context.Context, m *ferry.Migration, b *config.Backup, rt ferry.StepRuntime) error {
	f, src, err := e.open(ctx, m, b)
	if err != nil {
		return err
	}
	skip := func(name string) error {
		rt.Message(fmt.Sprintf("verification skipped: %s is an AOF (a log of commands: the state it leads to cannot be read from the file without replaying it); compare the target with the server the backup came from instead", name))
		rt.Progress(ferry.Counters{Unit: "keys"}, 100)
		return nil
	}
	for _, fl := range src.files {
		if fl.Kind != kindRDB || fl.Part != "" {
			return skip(fl.Name)
		}
	}
	if full := m.Step(ferry.StepFull); full != nil {
		if cp, _ := readImportCheckpoint(full.Checkpoint); cp != nil && cp.AOF {
			return skip("a file of the import (an RDB preamble followed by commands)")
		}
	}
	dst := kit.Client(&m.Target, 0)
	dstVer, _ := kit.InfoField(ctx, dst, "server", "redis_version")
	dst.Close()
	v := &fileVerifier{ctx: ctx, m: m, f: f, clients: map[int]goredis.UniversalClient{}, pipes: map[int]*vpipe{},
		usePTTL: dstVer != "" && kit.VersionLess(dstVer, "7.0"), started: time.Now(), rt: rt, total: src.total()}
	defer v.close()
	if len(src.files) > 1 {
		v.seen = map[string]bool{} // a key of several files: the last file's holds
	}
	// The last file wins for keys in several files: verify from the last.
	for i := len(src.files) - 1; i >= 0; i-- {
		fl := src.files[i]
		rt.Message(fmt.Sprintf("verifying the target against %s", src.label(fl)))
		if err := v.file(ctx, src, fl); err != nil {
			if errors.Is(err, errHasCommands) {
				return skip(fl.Name + " (an RDB preamble followed by commands)")
			}
			return err
		}
		v.bytesDone += fl.Size
	}
	if err := v.flushAll(); err != nil {
		return err
	}
	if m.Options.Conflict != ferry.ConflictReplace && !f.KeysFiltered() {
		// The job owns the target dbs: anything there the files do not hold
		// is extra.
		keys, err := kit.Keyspace(ctx, v.client(0))
		if err == nil {
			for db, n := range keys {
				if p := v.present[db]; n > p && len(ownedDBs(map[int]int64{db: n}, f)) > 0 {
					v.extra += n - p
				}
			}
		}
	}
	c := ferry.Counters{Done: v.checked, Total: v.checked, Missing: v.missing, Extra: v.extra, Different: v.different, Unit: "keys"}
	rt.Progress(c, 100)
	if v.missing+v.extra+v.different > 0 {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "VERIFY_FAILED",
			Message: fmt.Sprintf("the target differs from the backup files: %d missing, %d extra, %d different of %d keys checked (e.g. %s)", v.missing, v.extra, v.different, v.checked, strings.Join(v.samples, "; ")),
			Advice:  "look at the keys named; a target written to by others since the import can cause this"}
	}
	rt.Message(fmt.Sprintf("verified against the backup files: %d keys on the target as in the files (0 missing, 0 extra, 0 different; %d expired since skipped) in %s",
		v.checked, v.expired, time.Since(v.started).Round(time.Millisecond)))
	return nil
}

// vcheck is one pending check: commands in a pipeline and how to judge
// their replies.
type vcheck struct {
	db    int
	key   string
	first bool
	last  bool
	exp   int64 // the key's expiry in the file (ms), or rdb.NoExpire
	cmds  []goredis.Cmder
	judge func() string // "" when equal, else what differs
}

type vpipe struct {
	p      goredis.Pipeliner
	checks []*vcheck
	bytes  int
}

// fileVerifier compares parsed RDB chunks with the target.
type fileVerifier struct {
	rdb.NopHandler
	ctx     context.Context
	m       *ferry.Migration
	f       *kit.Filter
	rt      ferry.StepRuntime
	clients map[int]goredis.UniversalClient
	pipes   map[int]*vpipe
	usePTTL bool
	seen    map[string]bool

	// the key being read
	skip  bool
	pos   int64 // string offset, list index or element count so far
	state string

	started                     time.Time
	total, bytesDone            int64
	checked, missing, different int64
	extra, expired              int64
	present                     map[int]int64
	bad                         map[string]string // keys of the current chunks found different: missing, expired or different
	samples                     []string
	lastRep                     time.Time
	curFileOff                  func() int64
	srcLabel                    string
}

func (v *fileVerifier) close() {
	for _, c := range v.clients {
		c.Close()
	}
}

func (v *fileVerifier) client(db int) goredis.UniversalClient {
	if v.m.Target.Cluster {
		db = 0
	}
	c := v.clients[db]
	if c == nil {
		c = kit.Client(&v.m.Target, db)
		v.clients[db] = c
	}
	return c
}

func (v *fileVerifier) file(ctx context.Context, src *importSource, fl importFile) error {
	rc, err := src.store.Open(ctx, fl.Name, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", src.label(fl), err)
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	v.curFileOff = func() int64 { return cr.n }
	if v.present == nil {
		v.present, v.bad = map[int]int64{}, map[string]string{}
	}
	info, err := rdb.ParseOptions(cr, v, rdb.Options{})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var re *rdb.Error
		if errors.As(err, &re) && (re.Err == nil || errors.Is(re.Err, io.ErrUnexpectedEOF) || errors.Is(re.Err, rdb.ErrChecksum)) {
			return corruptFile(src.store.String(), fl.Name, re.Offset, re.Error())
		}
		return fmt.Errorf("verify against %s: %w", src.label(fl), err)
	}
	// An RDB preamble followed by commands: the commands changed the state.
	if info.Bytes < fl.Size {
		return errHasCommands
	}
	return nil
}

// errHasCommands: an RDB preamble is followed by commands.
var errHasCommands = errors.New("the RDB is followed by commands")

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (v *fileVerifier) report() {
	if now := time.Now(); now.Sub(v.lastRep) >= 250*time.Millisecond {
		v.lastRep = now
		b := v.bytesDone
		if v.curFileOff != nil {
			b += v.curFileOff()
		}
		pct := 0.0
		if v.total > 0 {
			pct = min(99.9, 100*float64(b)/float64(v.total))
		}
		v.rt.Progress(ferry.Counters{Done: v.checked, Missing: v.missing, Different: v.different, Bytes: b, BytesTotal: v.total, Unit: "keys"}, pct)
	}
}

func kindTypeName(k rdb.Kind) string {
	switch k {
	case rdb.KindString:
		return "string"
	case rdb.KindList:
		return "list"
	case rdb.KindSet:
		return "set"
	case rdb.KindZSet:
		return "zset"
	case rdb.KindHash:
		return "hash"
	case rdb.KindStream:
		return "stream"
	}
	return ""
}

func (v *fileVerifier) Chunk(c *rdb.Chunk) error {
	if c.First {
		v.pos, v.state = 0, ""
		db, ok := v.f.DB(c.DB)
		v.skip = !ok || !v.f.Key(c.Key)
		if !v.skip && v.seen != nil {
			id := strconv.Itoa(db) + ":" + string(c.Key)
			if v.seen[id] {
				v.skip = true
			} else {
				v.seen[id] = true
			}
		}
	}
	if v.skip {
		return nil
	}
	db, _ := v.f.DB(c.DB)
	key := string(c.Key)
	p := v.pipe(db)
	b := &chunkCheck{ctx: v.ctx, p: p.p, key: key, size: len(key),
		ck: &vcheck{db: db, key: key, first: c.First, last: c.Last, exp: c.ExpireAt}}
	if c.First {
		b.checkType(c.Kind)
	}
	switch c.Kind {
	case rdb.KindString:
		v.checkString(b, c)
	case rdb.KindList:
		v.checkList(b, c)
	case rdb.KindSet:
		v.checkSet(b, c)
	case rdb.KindZSet:
		v.checkZSet(b, c)
	case rdb.KindHash:
		v.checkHash(b, c)
	case rdb.KindStream:
		b.checkStreamEntries(c)
		if c.Last && c.Stream != nil {
			b.checkStreamMeta(*c.Stream)
		}
	}
	if c.Last {
		b.checkExpiry(c.ExpireAt, v.usePTTL)
	}
	b.ck.judge = b.judge
	p.checks = append(p.checks, b.ck)
	p.bytes += b.size
	if len(p.checks) >= 256 || p.bytes >= 4<<20 {
		if err := v.flush(db, p); err != nil {
			return err
		}
	}
	v.report()
	return nil
}

func cloneAll(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, b := range in {
		out[i] = bytes.Clone(b)
	}
	return out
}

func lenJudge(what string, c *goredis.IntCmd, want int64) func() string {
	return func() string {
		if c.Val() != want {
			return fmt.Sprintf("%s %d, the file %d", what, c.Val(), want)
		}
		return ""
	}
}

func (v *fileVerifier) pipe(db int) *vpipe {
	p := v.pipes[db]
	if p == nil {
		p = &vpipe{p: v.client(db).Pipeline()}
		v.pipes[db] = p
	}
	return p
}

// flush runs a db's pending checks and judges them.
func (v *fileVerifier) flush(db int, p *vpipe) error {
	if len(p.checks) == 0 {
		return nil
	}
	_, err := p.p.Exec(v.ctx)
	if err != nil && v.ctx.Err() != nil {
		return v.ctx.Err()
	}
	now := time.Now().UnixMilli()
	for _, ck := range p.checks {
		for _, c := range ck.cmds {
			if e := c.Err(); e != nil && e != goredis.Nil {
				var re goredis.Error
				if !errors.As(e, &re) {
					return fmt.Errorf("verify: target: %w", e)
				}
				// An error reply (WRONGTYPE) is a difference, judged below.
			}
		}
		id := strconv.Itoa(ck.db) + ":" + ck.key
		prev, bad := v.bad[id]
		if !bad {
			if d := ck.judge(); d != "" {
				switch {
				case d == "missing" && ck.exp != rdb.NoExpire && ck.exp <= now:
					v.bad[id] = "expired"
					v.expired++
				case d == "missing":
					v.bad[id] = "missing"
					v.missing++
				default:
					v.bad[id] = "different"
					v.different++
				}
				if v.bad[id] != "expired" && len(v.samples) < 5 {
					v.samples = append(v.samples, fmt.Sprintf("db%d %q: %s", ck.db, ck.key, d))
				}
				prev, bad = v.bad[id], true
			}
		}
		if ck.last {
			if prev != "expired" {
				v.checked++
			}
			if prev != "missing" && prev != "expired" {
				v.present[ck.db]++
			}
			delete(v.bad, id)
		}
	}
	p.checks, p.bytes = p.checks[:0], 0
	return nil
}

func (v *fileVerifier) flushAll() error {
	for db, p := range v.pipes {
		if err := v.flush(db, p); err != nil {
			return err
		}
	}
	return nil
}
