package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
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
	f, err := kit.NewFilter(m)
	if err != nil {
		return err
	}
	src, err := e.resolve(ctx, b)
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
	ctx := v.ctx
	p := v.pipe(db)
	ck := &vcheck{db: db, key: key, first: c.First, last: c.Last, exp: c.ExpireAt}
	var judges []func() string
	size := len(key)
	if c.First {
		tc := p.p.Type(ctx, key)
		ck.cmds = append(ck.cmds, tc)
		want := kindTypeName(c.Kind)
		judges = append(judges, func() string {
			got := tc.Val()
			if got == "none" {
				return "missing"
			}
			if want != "" && got != want {
				return fmt.Sprintf("type %s, the file has %s", got, want)
			}
			return ""
		})
	}
	switch c.Kind {
	case rdb.KindString:
		off := v.pos
		want := bytes.Clone(c.Value)
		size += len(want)
		v.pos += int64(len(want))
		if len(want) > 0 {
			gc := p.p.GetRange(ctx, key, off, off+int64(len(want))-1)
			ck.cmds = append(ck.cmds, gc)
			judges = append(judges, func() string {
				if gc.Val() != string(want) {
					return fmt.Sprintf("string bytes %d..%d differ", off, off+int64(len(want))-1)
				}
				return ""
			})
		}
		if c.Last {
			n := v.pos
			lc := p.p.StrLen(ctx, key)
			ck.cmds = append(ck.cmds, lc)
			judges = append(judges, func() string {
				if lc.Val() != n {
					return fmt.Sprintf("string length %d, the file has %d", lc.Val(), n)
				}
				return ""
			})
		}
	case rdb.KindList:
		off := v.pos
		want := cloneAll(c.Elems)
		for _, e := range want {
			size += len(e)
		}
		v.pos += int64(len(want))
		if len(want) > 0 {
			lc := p.p.LRange(ctx, key, off, off+int64(len(want))-1)
			ck.cmds = append(ck.cmds, lc)
			judges = append(judges, func() string {
				got := lc.Val()
				if len(got) != len(want) {
					return fmt.Sprintf("list has %d elements at %d, the file %d", len(got), off, len(want))
				}
				for i := range want {
					if got[i] != string(want[i]) {
						return fmt.Sprintf("list element %d differs", off+int64(i))
					}
				}
				return ""
			})
		}
		if c.Last {
			n := v.pos
			lc := p.p.LLen(ctx, key)
			ck.cmds = append(ck.cmds, lc)
			judges = append(judges, lenJudge("list length", lc, n))
		}
	case rdb.KindSet:
		want := cloneAll(c.Elems)
		v.pos += int64(len(want))
		if len(want) > 0 {
			args := make([]any, len(want))
			for i, e := range want {
				args[i] = e
				size += len(e)
			}
			mc := p.p.SMIsMember(ctx, key, args...)
			ck.cmds = append(ck.cmds, mc)
			judges = append(judges, func() string {
				for i, ok := range mc.Val() {
					if !ok {
						return fmt.Sprintf("set member %q missing", want[i])
					}
				}
				if len(mc.Val()) != len(want) {
					return "set members missing"
				}
				return ""
			})
		}
		if c.Last {
			n := v.pos
			sc := p.p.SCard(ctx, key)
			ck.cmds = append(ck.cmds, sc)
			judges = append(judges, lenJudge("set size", sc, n))
		}
	case rdb.KindZSet:
		v.pos += int64(len(c.Members))
		if len(c.Members) > 0 {
			members := make([]any, 0, len(c.Members)+2)
			members = append(members, "ZMSCORE", key)
			scores := make([]float64, len(c.Members))
			names := make([]string, len(c.Members))
			for i, zm := range c.Members {
				members = append(members, string(zm.Member))
				scores[i], names[i] = zm.Score, string(zm.Member)
				size += len(zm.Member) + 8
			}
			zc := p.p.Do(ctx, members...)
			ck.cmds = append(ck.cmds, zc)
			judges = append(judges, func() string {
				got, _ := zc.Val().([]any)
				if len(got) != len(scores) {
					return "zset scores missing"
				}
				for i, g := range got {
					s, ok := g.(string)
					if !ok {
						if g == nil {
							return fmt.Sprintf("zset member %q missing", names[i])
						}
						if f, ok := g.(float64); ok {
							s = strconv.FormatFloat(f, 'g', 17, 64)
						}
					}
					f, err := strconv.ParseFloat(s, 64)
					if err != nil || math.Float64bits(f) != math.Float64bits(scores[i]) && !(f == 0 && scores[i] == 0) {
						return fmt.Sprintf("zset member %q has score %s, the file %s", names[i], s, rdb.FormatScore(scores[i]))
					}
				}
				return ""
			})
		}
		if c.Last {
			n := v.pos
			zc := p.p.ZCard(ctx, key)
			ck.cmds = append(ck.cmds, zc)
			judges = append(judges, lenJudge("zset size", zc, n))
		}
	case rdb.KindHash:
		v.pos += int64(len(c.Fields))
		if len(c.Fields) > 0 {
			fields := make([]string, len(c.Fields))
			vals := make([]string, len(c.Fields))
			for i, hf := range c.Fields {
				fields[i], vals[i] = string(hf.Field), string(hf.Value)
				size += len(hf.Field) + len(hf.Value)
			}
			hc := p.p.HMGet(ctx, key, fields...)
			ck.cmds = append(ck.cmds, hc)
			judges = append(judges, func() string {
				got := hc.Val()
				if len(got) != len(vals) {
					return "hash fields missing"
				}
				for i, g := range got {
					s, ok := g.(string)
					if !ok {
						return fmt.Sprintf("hash field %q missing", fields[i])
					}
					if s != vals[i] {
						return fmt.Sprintf("hash field %q differs", fields[i])
					}
				}
				return ""
			})
		}
		if c.Last {
			n := v.pos
			hl := p.p.HLen(ctx, key)
			ck.cmds = append(ck.cmds, hl)
			judges = append(judges, lenJudge("hash size", hl, n))
		}
	case rdb.KindStream:
		if len(c.Entries) > 0 {
			type ent struct {
				id     string
				fields []string
			}
			want := make([]ent, len(c.Entries))
			for i, se := range c.Entries {
				want[i].id = se.ID.String()
				for _, fv := range se.Fields {
					want[i].fields = append(want[i].fields, string(fv))
					size += len(fv)
				}
			}
			xc := p.p.XRangeN(ctx, key, want[0].id, want[len(want)-1].id, int64(len(want))+1)
			ck.cmds = append(ck.cmds, xc)
			judges = append(judges, func() string {
				got := xc.Val()
				if len(got) != len(want) {
					return fmt.Sprintf("stream has %d entries from %s to %s, the file %d", len(got), want[0].id, want[len(want)-1].id, len(want))
				}
				for i, g := range got {
					if g.ID != want[i].id {
						return fmt.Sprintf("stream entry %s, the file has %s", g.ID, want[i].id)
					}
					if len(g.Values)*2 != len(want[i].fields) {
						return fmt.Sprintf("stream entry %s has %d fields, the file %d", g.ID, len(g.Values), len(want[i].fields)/2)
					}
					for j := 0; j < len(want[i].fields); j += 2 {
						if s, _ := g.Values[want[i].fields[j]].(string); s != want[i].fields[j+1] {
							return fmt.Sprintf("stream entry %s field %q differs", g.ID, want[i].fields[j])
						}
					}
				}
				return ""
			})
		}
		if c.Last && c.Stream != nil {
			sm := *c.Stream
			groups := make(map[string]rdb.StreamGroup, len(sm.Groups))
			for _, g := range sm.Groups {
				groups[string(g.Name)] = g
			}
			ic := p.p.XInfoStream(ctx, key)
			gc := p.p.XInfoGroups(ctx, key)
			ck.cmds = append(ck.cmds, ic, gc)
			judges = append(judges, func() string {
				in := ic.Val()
				switch {
				case in.Length != int64(sm.Length):
					return fmt.Sprintf("stream length %d, the file %d", in.Length, sm.Length)
				case in.LastGeneratedID != sm.LastID.String():
					return fmt.Sprintf("stream last-generated-id %s, the file %s", in.LastGeneratedID, sm.LastID)
				case sm.EntriesAdded > 0 && in.EntriesAdded != int64(sm.EntriesAdded):
					return fmt.Sprintf("stream entries-added %d, the file %d", in.EntriesAdded, sm.EntriesAdded)
				case in.MaxDeletedEntryID != "" && !sm.MaxDeletedID.IsZero() && in.MaxDeletedEntryID != sm.MaxDeletedID.String():
					return fmt.Sprintf("stream max-deleted-entry-id %s, the file %s", in.MaxDeletedEntryID, sm.MaxDeletedID)
				}
				gs := gc.Val()
				if len(gs) != len(groups) {
					return fmt.Sprintf("stream has %d consumer groups, the file %d", len(gs), len(groups))
				}
				for _, g := range gs {
					w, ok := groups[g.Name]
					switch {
					case !ok:
						return fmt.Sprintf("consumer group %q is not in the file", g.Name)
					case g.LastDeliveredID != w.LastID.String():
						return fmt.Sprintf("group %q last-delivered-id %s, the file %s", g.Name, g.LastDeliveredID, w.LastID)
					case w.EntriesRead >= 0 && g.EntriesRead != w.EntriesRead:
						return fmt.Sprintf("group %q entries-read %d, the file %d", g.Name, g.EntriesRead, w.EntriesRead)
					case g.Pending != int64(len(w.PEL)):
						return fmt.Sprintf("group %q has %d pending entries, the file %d", g.Name, g.Pending, len(w.PEL))
					case g.Consumers != int64(len(w.Consumers)):
						return fmt.Sprintf("group %q has %d consumers, the file %d", g.Name, g.Consumers, len(w.Consumers))
					}
				}
				return ""
			})
		}
	}
	if c.Last {
		exp := c.ExpireAt
		if v.usePTTL {
			pc := p.p.PTTL(ctx, key)
			ck.cmds = append(ck.cmds, pc)
			judges = append(judges, func() string {
				d := pc.Val()
				if exp == rdb.NoExpire {
					if d >= 0 {
						return fmt.Sprintf("TTL %s, the file has none", d)
					}
					return ""
				}
				at := time.Now().Add(d).UnixMilli()
				if d < 0 || math.Abs(float64(at-exp)) > 2000 {
					return fmt.Sprintf("expires at %d, the file at %d", at, exp)
				}
				return ""
			})
		} else {
			ec := p.p.PExpireTime(ctx, key)
			ck.cmds = append(ck.cmds, ec)
			judges = append(judges, func() string {
				d := ec.Val()
				if exp == rdb.NoExpire {
					if d >= 0 {
						return fmt.Sprintf("expires at %d, the file has no TTL", d.Milliseconds())
					}
					return ""
				}
				if d < 0 {
					return fmt.Sprintf("no TTL, the file expires it at %d", exp)
				}
				if got := d.Milliseconds(); got != exp {
					return fmt.Sprintf("expires at %d, the file at %d", got, exp)
				}
				return ""
			})
		}
	}
	ck.judge = func() string {
		for _, j := range judges {
			if d := j(); d != "" {
				return d
			}
		}
		return ""
	}
	p.checks = append(p.checks, ck)
	p.bytes += size
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
