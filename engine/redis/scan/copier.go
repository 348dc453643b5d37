package scan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
	"github.com/ferrymigrate/ferry/engine/redis/rdb"
	"github.com/ferrymigrate/ferry/engine/redis/writer"
)

// ---------------------------------------------------------------------------
// Copying keys.

// scanPayloadHook, when set (tests), rewrites each DUMP payload before it is
// written.
var scanPayloadHook func([]byte) []byte

type fallbackKey struct {
	tdb int
	key string
}

type scanner struct {
	e    *Mode
	m    *ferry.Migration
	rt   ferry.StepRuntime
	f    *kit.Filter
	opts *config.Scan
	src  *scanSource
	w    *writer.Writer
	ap   *kit.RDBApplier
	cp   scanCheckpoint

	srcVer, dstVer string
	absTTL         bool // the source has PEXPIRETIME (7.0+)
	targetRDB      int  // newest DUMP payload version the target reads (0: unknown)
	noMemUsage     bool // MEMORY USAGE refused: estimate sizes by length
	restoreBroken  atomic.Bool
	fbMu           sync.Mutex
	fallbacks      []fallbackKey
	seenDBs        map[int]bool

	unflushed []qent // changes copied but not yet acknowledged by the target
	inflight  time.Time
	notes     []string

	keys, bytes, big, viaCommands, deleted int64
	rescansNow                             int
	total                                  int64 // keys in the included dbs when the pass began
	doneBase, bytesBase                    int64 // counters of earlier runs of the step
	keysThisRun                            int64
}

func (e *Mode) newScanner(ctx context.Context, m *ferry.Migration, o *config.Scan, rt ferry.StepRuntime) (*scanner, error) {
	f, err := kit.NewFilter(m)
	if err != nil {
		return nil, err
	}
	sc := &scanner{e: e, m: m, rt: rt, f: f, opts: o, seenDBs: map[int]bool{}}
	if sc.src, err = openScanSource(ctx, &m.Source); err != nil {
		return nil, err
	}
	sc.srcVer, _ = kit.InfoField(ctx, sc.src.node(0, 0), "server", "redis_version")
	sc.absTTL = sc.srcVer == "" || !kit.VersionLess(sc.srcVer, "7.0.0")
	dst := kit.Client(&m.Target, 0)
	sc.dstVer, _ = kit.InfoField(ctx, dst, "server", "redis_version")
	dst.Close()
	sc.targetRDB = rdbVersionOf(sc.dstVer)
	sc.w, err = writer.New(ctx, writer.Options{Addrs: m.Target.Addrs, Cluster: m.Target.Cluster,
		Username: m.Target.Username, Password: m.Target.Password, TLS: kit.TLSConfig(&m.Target), Conns: e.WriterConns,
		OnReplyError: sc.onReplyError})
	if err != nil {
		sc.src.close()
		return nil, fmt.Errorf("connect to target: %w", err)
	}
	sc.ap = &kit.RDBApplier{W: sc.w, F: f, Replace: true}
	return sc, nil
}

func (sc *scanner) close() {
	if sc.w != nil {
		sc.w.Close()
	}
	sc.src.close()
}

// rdbVersionOf is the newest RDB (and DUMP payload) version a Redis version
// reads, or 0 when not known.
func rdbVersionOf(v string) int {
	if v == "" {
		return 0
	}
	switch {
	case !kit.VersionLess(v, "8.0.0"):
		return 0 // newer than this table: let RESTORE tell
	case !kit.VersionLess(v, "7.3.0"):
		return 12
	case !kit.VersionLess(v, "7.1.0"):
		return 11
	case !kit.VersionLess(v, "7.0.0"):
		return 10
	case !kit.VersionLess(v, "5.0.0"):
		return 9
	case !kit.VersionLess(v, "4.0.0"):
		return 8
	case !kit.VersionLess(v, "3.2.0"):
		return 7
	}
	return 6
}

// onReplyError handles the target's error replies: a RESTORE refused for
// its payload version is copied again by type-specific commands.
func (sc *scanner) onReplyError(ce *writer.CommandError) error {
	if ce.Command == "RESTORE" && (strings.Contains(ce.Msg, "payload version or checksum") || strings.Contains(ce.Msg, "Bad data format")) {
		sc.restoreBroken.Store(true)
		sc.fbMu.Lock()
		sc.fallbacks = append(sc.fallbacks, fallbackKey{ce.DB, ce.Key})
		sc.fbMu.Unlock()
		return nil
	}
	return ce
}

func isReplyError(err error) bool {
	var re goredis.Error
	return err != nil && err != goredis.Nil && errors.As(err, &re)
}

// sizes estimates the memory of each key (-1: the key does not exist).
func (sc *scanner) sizes(ctx context.Context, c goredis.UniversalClient, keys []string) ([]int64, error) {
	out := make([]int64, len(keys))
	if !sc.noMemUsage {
		pipe := c.Pipeline()
		cmds := make([]*goredis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.MemoryUsage(ctx, k)
		}
		_, _ = pipe.Exec(ctx)
		refused := false
		for i, cmd := range cmds {
			n, err := cmd.Result()
			switch {
			case err == nil:
				out[i] = n
			case err == goredis.Nil:
				out[i] = -1
			case isReplyError(err) && !strings.Contains(err.Error(), "WRONGTYPE"):
				refused = true
			default:
				return nil, fmt.Errorf("source MEMORY USAGE: %w", err)
			}
			if refused {
				break
			}
		}
		if !refused {
			return out, nil
		}
		sc.noMemUsage = true
		sc.notes = append(sc.notes, "MEMORY USAGE refused by the source: big keys are recognized by their length")
	}
	// No MEMORY USAGE: TYPE, then the length of each.
	pipe := c.Pipeline()
	types := make([]*goredis.StatusCmd, len(keys))
	for i, k := range keys {
		types[i] = pipe.Type(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isReplyError(err) {
		return nil, fmt.Errorf("source TYPE: %w", err)
	}
	pipe = c.Pipeline()
	lens := make([]*goredis.IntCmd, len(keys))
	per := make([]int64, len(keys))
	for i, k := range keys {
		per[i] = 64
		switch types[i].Val() {
		case "string":
			lens[i], per[i] = pipe.StrLen(ctx, k), 1
		case "list":
			lens[i] = pipe.LLen(ctx, k)
		case "set":
			lens[i] = pipe.SCard(ctx, k)
		case "zset":
			lens[i] = pipe.ZCard(ctx, k)
		case "hash":
			lens[i], per[i] = pipe.HLen(ctx, k), 128
		case "stream":
			lens[i], per[i] = pipe.XLen(ctx, k), 128
		case "none":
			out[i] = -1
		default:
			out[i] = 1 // modules: DUMP
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !isReplyError(err) {
		return nil, fmt.Errorf("source length: %w", err)
	}
	for i := range keys {
		if lens[i] != nil {
			out[i] = lens[i].Val()*per[i] + 64
		}
	}
	return out, nil
}

// expireAt returns the pipeline command that reads a key's absolute expiry.
func (sc *scanner) expireCmd(ctx context.Context, p goredis.Pipeliner, key string) *goredis.Cmd {
	if sc.absTTL {
		return p.Do(ctx, "PEXPIRETIME", key)
	}
	return p.Do(ctx, "PTTL", key)
}

// expireOf turns the answer of expireCmd into an absolute unix time in ms
// (rdb.NoExpire: none), and reports whether the key still exists.
func (sc *scanner) expireOf(cmd *goredis.Cmd, now time.Time) (int64, bool, error) {
	n, err := cmd.Int64()
	if err != nil {
		return 0, false, fmt.Errorf("source expiry: %w", err)
	}
	switch {
	case n == -2:
		return 0, false, nil
	case n < 0:
		return rdb.NoExpire, true, nil
	case sc.absTTL:
		return n, true, nil
	}
	return now.UnixMilli() + n, true, nil
}

// copyKeys copies keys of source db (their current state; DEL on the
// target for those gone from the source).
// keep returns the keys the job's key filter moves (keys itself when it
// filters none).
func (sc *scanner) keep(keys []string) []string {
	if !sc.f.KeysFiltered() {
		return keys
	}
	kept := keys[:0:0]
	for _, k := range keys {
		if sc.f.Key([]byte(k)) {
			kept = append(kept, k)
		}
	}
	return kept
}

func (sc *scanner) copyKeys(ctx context.Context, db int, keys []string) error {
	tdb, ok := sc.f.DB(db)
	if !ok {
		return nil
	}
	sc.seenDBs[db] = true
	keys = sc.keep(keys)
	if len(keys) == 0 {
		return nil
	}
	c := sc.src.reader(db)
	sizes, err := sc.sizes(ctx, c, keys)
	if err != nil {
		return err
	}
	var small, big []string
	var batch int64
	for i, k := range keys {
		switch {
		case sizes[i] < 0:
			if err := sc.del(tdb, k); err != nil {
				return err
			}
		case sizes[i] > sc.opts.BigKeyBytes:
			big = append(big, k)
		default:
			if batch+sizes[i] > dumpBatchBytes && len(small) > 0 {
				if err := sc.dumpKeys(ctx, c, db, tdb, small); err != nil {
					return err
				}
				small, batch = small[:0], 0
			}
			small = append(small, k)
			batch += sizes[i]
		}
	}
	if len(small) > 0 {
		if err := sc.dumpKeys(ctx, c, db, tdb, small); err != nil {
			return err
		}
	}
	for _, k := range big {
		if err := sc.copyBig(ctx, c, db, tdb, k); err != nil {
			return err
		}
	}
	return nil
}

func (sc *scanner) del(tdb int, key string) error {
	sc.deleted++
	return sc.w.Do(tdb, []byte("DEL"), []byte(key))
}

// dumpKeys reads keys with one pipeline of DUMP + expiry and writes them.
func (sc *scanner) dumpKeys(ctx context.Context, c goredis.UniversalClient, db, tdb int, keys []string) error {
	pipe := c.Pipeline()
	dumps := make([]*goredis.StringCmd, len(keys))
	exps := make([]*goredis.Cmd, len(keys))
	for i, k := range keys {
		dumps[i] = pipe.Dump(ctx, k)
		exps[i] = sc.expireCmd(ctx, pipe, k)
	}
	now := time.Now()
	_, _ = pipe.Exec(ctx)
	for i, k := range keys {
		payload, err := dumps[i].Result()
		if err == goredis.Nil {
			if err := sc.del(tdb, k); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("source DUMP %q: %w", k, err)
		}
		exp, exists, err := sc.expireOf(exps[i], now)
		if err != nil {
			return err
		}
		if !exists {
			// Gone between DUMP and its expiry (a notification follows).
			if err := sc.del(tdb, k); err != nil {
				return err
			}
			continue
		}
		if err := sc.writePayload(db, tdb, k, []byte(payload), exp); err != nil {
			return err
		}
	}
	return nil
}

type dumpChunkHandler struct {
	rdb.NopHandler
	ap  *kit.RDBApplier
	db  int
	exp int64
}

func (h *dumpChunkHandler) Chunk(c *rdb.Chunk) error {
	c.DB, c.ExpireAt = h.db, h.exp
	return h.ap.Chunk(c)
}

// writePayload writes one key from its DUMP payload: RESTORE when the
// target reads the payload's version, else type-specific commands.
func (sc *scanner) writePayload(db, tdb int, key string, payload []byte, exp int64) error {
	if scanPayloadHook != nil {
		payload = scanPayloadHook(payload)
	}
	if len(payload) < 11 {
		return fmt.Errorf("source DUMP %q: payload too short", key)
	}
	sc.keys++
	sc.bytes += int64(len(payload))
	ver := int(binary.LittleEndian.Uint16(payload[len(payload)-10:]))
	kind := rdb.Type(payload[0]).Kind()
	common := kind != rdb.KindStream && kind != rdb.KindModule && kind != 0
	restore := !common || !(sc.opts.CommandsOnly || sc.restoreBroken.Load() || (sc.targetRDB > 0 && ver > sc.targetRDB))
	if !common && sc.targetRDB > 0 && ver > sc.targetRDB {
		return fmt.Errorf("key %q is a %s: the target (redis %s) cannot RESTORE the source's (redis %s) payload version %d, and ferry moves streams and module values only by RESTORE: use a target at least as new as the source",
			key, kind, sc.dstVer, sc.srcVer, ver)
	}
	if restore {
		ttl := []byte("0")
		if exp != rdb.NoExpire {
			ttl = strconv.AppendInt(nil, exp, 10)
		}
		return sc.w.Do(tdb, []byte("RESTORE"), []byte(key), ttl, payload, []byte("REPLACE"), []byte("ABSTTL"))
	}
	sc.viaCommands++
	h := &dumpChunkHandler{ap: sc.ap, db: db, exp: exp}
	if err := rdb.ParseDump(payload, []byte(key), h, rdb.Options{CaptureRaw: true, MaxRawBytes: kit.MaxRestoreBytes}); err != nil {
		return fmt.Errorf("decode the DUMP payload of %q: %w", key, err)
	}
	return nil
}

// copyBig copies one big key in bounded chunks, by type.
func (sc *scanner) copyBig(ctx context.Context, c goredis.UniversalClient, db, tdb int, key string) error {
	typ, err := c.Type(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("source TYPE %q: %w", key, err)
	}
	pipe := c.Pipeline()
	ec := sc.expireCmd(ctx, pipe, key)
	now := time.Now()
	_, _ = pipe.Exec(ctx)
	exp, exists, err := sc.expireOf(ec, now)
	if err != nil {
		return err
	}
	if typ == "none" || !exists {
		return sc.del(tdb, key)
	}
	sc.big++
	sc.keys++
	k := []byte(key)
	ch := &rdb.Chunk{DB: db, Key: k, ExpireAt: exp}
	emit := func(last bool) error {
		ch.Last = last
		err := sc.ap.Chunk(ch)
		ch.First = false
		ch.Seq++
		return err
	}
	ch.First = true
	switch typ {
	case "string":
		ch.Kind = rdb.KindString
		for off := int64(0); ; off += chunkBytes {
			s, err := c.GetRange(ctx, key, off, off+chunkBytes-1).Result()
			if err != nil {
				return fmt.Errorf("source GETRANGE %q: %w", key, err)
			}
			ch.Value = []byte(s)
			sc.bytes += int64(len(s))
			if err := emit(len(s) < chunkBytes); err != nil {
				return err
			}
			if len(s) < chunkBytes {
				return nil
			}
		}
	case "list":
		ch.Kind = rdb.KindList
		for start := int64(0); ; start += chunkElems {
			vs, err := c.LRange(ctx, key, start, start+chunkElems-1).Result()
			if err != nil {
				return fmt.Errorf("source LRANGE %q: %w", key, err)
			}
			ch.Elems = ch.Elems[:0]
			for _, v := range vs {
				ch.Elems = append(ch.Elems, []byte(v))
				sc.bytes += int64(len(v))
			}
			if err := emit(len(vs) < chunkElems); err != nil {
				return err
			}
			if len(vs) < chunkElems {
				return nil
			}
		}
	case "set", "hash", "zset":
		var cursor uint64
		for {
			var vs []string
			var err error
			switch typ {
			case "set":
				ch.Kind = rdb.KindSet
				vs, cursor, err = c.SScan(ctx, key, cursor, "", chunkElems).Result()
			case "hash":
				ch.Kind = rdb.KindHash
				vs, cursor, err = c.HScan(ctx, key, cursor, "", chunkElems).Result()
			case "zset":
				ch.Kind = rdb.KindZSet
				vs, cursor, err = c.ZScan(ctx, key, cursor, "", chunkElems).Result()
			}
			if err != nil {
				return fmt.Errorf("source %sSCAN %q: %w", strings.ToUpper(typ[:1]), key, err)
			}
			ch.Elems, ch.Fields, ch.Members = ch.Elems[:0], ch.Fields[:0], ch.Members[:0]
			for i := 0; i < len(vs); i++ {
				sc.bytes += int64(len(vs[i]))
				switch typ {
				case "set":
					ch.Elems = append(ch.Elems, []byte(vs[i]))
				case "hash":
					if i+1 < len(vs) {
						ch.Fields = append(ch.Fields, rdb.HashField{Field: []byte(vs[i]), Value: []byte(vs[i+1]), ExpireAt: rdb.NoExpire})
						i++
					}
				case "zset":
					if i+1 < len(vs) {
						score, err := strconv.ParseFloat(vs[i+1], 64)
						if err != nil {
							return fmt.Errorf("source ZSCAN %q: score %q: %w", key, vs[i+1], err)
						}
						ch.Members = append(ch.Members, rdb.ZMember{Member: []byte(vs[i]), Score: score})
						i++
					}
				}
			}
			if err := emit(cursor == 0); err != nil {
				return err
			}
			if cursor == 0 {
				return nil
			}
		}
	}
	// Streams and module values: RESTORE (they keep consumer groups, pending
	// entries and module state only that way), bounded.
	sc.big--
	sc.keys--
	if n, err := c.MemoryUsage(ctx, key).Result(); err == nil && n > kit.MaxRestoreBytes {
		return fmt.Errorf("key %q is a %s of about %d bytes: streams and module values are moved by DUMP/RESTORE, which is limited to %d bytes", key, typ, n, kit.MaxRestoreBytes)
	}
	return sc.dumpKeys(ctx, c, db, tdb, []string{key})
}

// flush waits for the target to acknowledge everything written, then
// copies again by commands the keys whose RESTORE it refused.
func (sc *scanner) flush(ctx context.Context) error {
	for round := 0; ; round++ {
		if err := sc.w.Flush(ctx); err != nil {
			return fmt.Errorf("write to target: %w", err)
		}
		sc.fbMu.Lock()
		fbs := sc.fallbacks
		sc.fallbacks = nil
		sc.fbMu.Unlock()
		if len(fbs) == 0 {
			break
		}
		if round == 0 {
			sc.notes = append(sc.notes, fmt.Sprintf("the target (redis %s) refused the source's (redis %s) DUMP payloads: strings, lists, sets, zsets and hashes are written by type-specific commands", sc.dstVer, sc.srcVer))
		}
		if round > 3 {
			return fmt.Errorf("the target keeps refusing RESTORE of %q", fbs[0].key)
		}
		for _, fb := range fbs {
			if err := sc.copyFallback(ctx, fb); err != nil {
				return err
			}
		}
	}
	sc.unflushed = sc.unflushed[:0]
	sc.inflight = time.Time{}
	return nil
}

// sourceDBsOf lists the source dbs that map to target db tdb.
func (sc *scanner) sourceDBsOf(tdb int) []int {
	set := map[int]bool{}
	for db := range sc.seenDBs {
		set[db] = true
	}
	for db := range sc.f.Remap {
		set[db] = true
	}
	if !sc.src.cluster {
		set[tdb] = true
	} else {
		set = map[int]bool{0: true}
	}
	var out []int
	for db := range set {
		if t, ok := sc.f.DB(db); ok && t == tdb {
			out = append(out, db)
		}
	}
	sort.Ints(out)
	return out
}

func (sc *scanner) copyFallback(ctx context.Context, fb fallbackKey) error {
	for _, db := range sc.sourceDBsOf(fb.tdb) {
		n, err := sc.src.reader(db).Exists(ctx, fb.key).Result()
		if err != nil {
			return fmt.Errorf("source EXISTS %q: %w", fb.key, err)
		}
		if n > 0 {
			return sc.copyKeys(ctx, db, []string{fb.key})
		}
	}
	return sc.del(fb.tdb, fb.key)
}

// copyFunctions copies the source's function libraries (Redis 7.0+).
func (sc *scanner) copyFunctions(ctx context.Context) error {
	libs, err := sc.src.node(0, 0).FunctionList(ctx, goredis.FunctionListQuery{WithCode: true}).Result()
	if err != nil {
		if isReplyError(err) {
			return nil // no FUNCTION on this source (before 7.0, or refused)
		}
		return fmt.Errorf("source FUNCTION LIST: %w", err)
	}
	for _, l := range libs {
		if err := sc.w.Do(0, []byte("FUNCTION"), []byte("LOAD"), []byte("REPLACE"), []byte(l.Code)); err != nil {
			return fmt.Errorf("target FUNCTION LOAD %s: %w", l.Name, err)
		}
	}
	return nil
}
