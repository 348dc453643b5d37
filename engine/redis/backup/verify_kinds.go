package backup

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry/engine/redis/rdb"
)

// chunkCheck builds the check of one chunk of a key: the commands queued on
// the db's pipeline and, for each, how to judge its reply.
type chunkCheck struct {
	ctx    context.Context
	p      goredis.Pipeliner
	key    string
	ck     *vcheck
	judges []func() string
	size   int // bytes of the chunk, for the pipeline's budget
}

// add queues cmd, judged by judge once the pipeline ran.
func (b *chunkCheck) add(cmd goredis.Cmder, judge func() string) {
	b.ck.cmds = append(b.ck.cmds, cmd)
	b.judges = append(b.judges, judge)
}

// judge is the first difference found, "" when the chunk is equal.
func (b *chunkCheck) judge() string {
	for _, j := range b.judges {
		if d := j(); d != "" {
			return d
		}
	}
	return ""
}

// checkType checks, on a key's first chunk, that it exists with its type.
func (b *chunkCheck) checkType(k rdb.Kind) {
	tc := b.p.Type(b.ctx, b.key)
	want := kindTypeName(k)
	b.add(tc, func() string {
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

func (v *fileVerifier) checkString(b *chunkCheck, c *rdb.Chunk) {
	off := v.pos
	want := bytes.Clone(c.Value)
	b.size += len(want)
	v.pos += int64(len(want))
	if len(want) > 0 {
		gc := b.p.GetRange(b.ctx, b.key, off, off+int64(len(want))-1)
		b.add(gc, func() string {
			if gc.Val() != string(want) {
				return fmt.Sprintf("string bytes %d..%d differ", off, off+int64(len(want))-1)
			}
			return ""
		})
	}
	if c.Last {
		n := v.pos
		lc := b.p.StrLen(b.ctx, b.key)
		b.add(lc, func() string {
			if lc.Val() != n {
				return fmt.Sprintf("string length %d, the file has %d", lc.Val(), n)
			}
			return ""
		})
	}
}

func (v *fileVerifier) checkList(b *chunkCheck, c *rdb.Chunk) {
	off := v.pos
	want := cloneAll(c.Elems)
	for _, e := range want {
		b.size += len(e)
	}
	v.pos += int64(len(want))
	if len(want) > 0 {
		lc := b.p.LRange(b.ctx, b.key, off, off+int64(len(want))-1)
		b.add(lc, func() string {
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
		lc := b.p.LLen(b.ctx, b.key)
		b.add(lc, lenJudge("list length", lc, v.pos))
	}
}

func (v *fileVerifier) checkSet(b *chunkCheck, c *rdb.Chunk) {
	want := cloneAll(c.Elems)
	v.pos += int64(len(want))
	if len(want) > 0 {
		args := make([]any, len(want))
		for i, e := range want {
			args[i] = e
			b.size += len(e)
		}
		mc := b.p.SMIsMember(b.ctx, b.key, args...)
		b.add(mc, func() string {
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
		sc := b.p.SCard(b.ctx, b.key)
		b.add(sc, lenJudge("set size", sc, v.pos))
	}
}

func (v *fileVerifier) checkZSet(b *chunkCheck, c *rdb.Chunk) {
	v.pos += int64(len(c.Members))
	if len(c.Members) > 0 {
		members := make([]any, 0, len(c.Members)+2)
		members = append(members, "ZMSCORE", b.key)
		scores := make([]float64, len(c.Members))
		names := make([]string, len(c.Members))
		for i, zm := range c.Members {
			members = append(members, string(zm.Member))
			scores[i], names[i] = zm.Score, string(zm.Member)
			b.size += len(zm.Member) + 8
		}
		zc := b.p.Do(b.ctx, members...)
		b.add(zc, func() string { return judgeScores(zc, names, scores) })
	}
	if c.Last {
		zc := b.p.ZCard(b.ctx, b.key)
		b.add(zc, lenJudge("zset size", zc, v.pos))
	}
}

// judgeScores compares a ZMSCORE reply with the file's scores, bit for bit.
func judgeScores(zc *goredis.Cmd, names []string, scores []float64) string {
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
}

func (v *fileVerifier) checkHash(b *chunkCheck, c *rdb.Chunk) {
	v.pos += int64(len(c.Fields))
	if len(c.Fields) > 0 {
		fields := make([]string, len(c.Fields))
		vals := make([]string, len(c.Fields))
		for i, hf := range c.Fields {
			fields[i], vals[i] = string(hf.Field), string(hf.Value)
			b.size += len(hf.Field) + len(hf.Value)
		}
		hc := b.p.HMGet(b.ctx, b.key, fields...)
		b.add(hc, func() string {
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
		hl := b.p.HLen(b.ctx, b.key)
		b.add(hl, lenJudge("hash size", hl, v.pos))
	}
}

// streamEntry is a stream entry of the file: its id and fields.
type streamEntry struct {
	id     string
	fields []string
}

// checkStreamEntries compares a chunk's stream entries with XRANGE.
func (b *chunkCheck) checkStreamEntries(c *rdb.Chunk) {
	if len(c.Entries) == 0 {
		return
	}
	want := make([]streamEntry, len(c.Entries))
	for i, se := range c.Entries {
		want[i].id = se.ID.String()
		for _, fv := range se.Fields {
			want[i].fields = append(want[i].fields, string(fv))
			b.size += len(fv)
		}
	}
	xc := b.p.XRangeN(b.ctx, b.key, want[0].id, want[len(want)-1].id, int64(len(want))+1)
	b.add(xc, func() string {
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

// checkStreamMeta compares a stream's metadata and consumer groups, on its
// last chunk.
func (b *chunkCheck) checkStreamMeta(sm rdb.StreamMeta) {
	groups := make(map[string]rdb.StreamGroup, len(sm.Groups))
	for _, g := range sm.Groups {
		groups[string(g.Name)] = g
	}
	ic := b.p.XInfoStream(b.ctx, b.key)
	gc := b.p.XInfoGroups(b.ctx, b.key)
	b.add(ic, func() string {
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
		return ""
	})
	b.add(gc, func() string { return judgeGroups(gc.Val(), groups) })
}

// judgeGroups compares XINFO GROUPS with the file's consumer groups.
func judgeGroups(gs []goredis.XInfoGroup, groups map[string]rdb.StreamGroup) string {
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
}

// checkExpiry compares a key's expiry with the file's, on its last chunk:
// exactly with PEXPIRETIME, within 2 s with PTTL (servers before 7.0).
func (b *chunkCheck) checkExpiry(exp int64, usePTTL bool) {
	if usePTTL {
		pc := b.p.PTTL(b.ctx, b.key)
		b.add(pc, func() string {
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
		return
	}
	ec := b.p.PExpireTime(b.ctx, b.key)
	b.add(ec, func() string {
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
