package rdb

import (
	"bytes"
	"fmt"
	"slices"
)

type keyID struct {
	db  int
	key string
}

type collected struct {
	kind    Kind
	typ     Type
	expire  int64
	chunks  int
	done    bool
	str     []byte
	elems   [][]byte
	members []ZMember
	fields  []HashField
	entries []StreamEntry
	stream  *StreamMeta
	module  *ModuleValue
	raw     []byte
	version int
}

// collector gathers every key's whole value, checking the chunk protocol.
type collector struct {
	NopHandler
	opts      Options
	keys      map[keyID]*collected
	order     []keyID
	aux       map[string]string
	functions []string
	dbs       []int
	modAux    int
	errs      []string
}

func newCollector(o Options) *collector {
	o.defaults()
	return &collector{opts: o, keys: map[keyID]*collected{}, aux: map[string]string{}}
}

func cp(b []byte) []byte { return append([]byte{}, b...) }

func (c *collector) Aux(k, v []byte) error { c.aux[string(k)] = string(v); return nil }
func (c *collector) SelectDB(db int) error { c.dbs = append(c.dbs, db); return nil }
func (c *collector) Function(b []byte) error {
	c.functions = append(c.functions, string(b))
	return nil
}
func (c *collector) ModuleAux(id, when uint64, raw []byte) error {
	c.modAux++
	return nil
}

func (c *collector) fail(format string, args ...any) {
	if len(c.errs) < 20 {
		c.errs = append(c.errs, fmt.Sprintf(format, args...))
	}
}

func (c *collector) Chunk(ch *Chunk) error {
	id := keyID{ch.DB, string(ch.Key)}
	k := c.keys[id]
	if ch.First {
		if k != nil {
			c.fail("key %q: duplicate", ch.Key)
		}
		if ch.Seq != 0 {
			c.fail("key %q: first chunk with seq %d", ch.Key, ch.Seq)
		}
		k = &collected{kind: ch.Kind, typ: ch.Type, expire: ch.ExpireAt, version: ch.Version}
		c.keys[id] = k
		c.order = append(c.order, id)
	} else if k == nil || k.done || ch.Seq != k.chunks {
		c.fail("key %q: chunk out of order (seq %d)", ch.Key, ch.Seq)
		return nil
	}
	k.chunks++
	n := len(ch.Elems) + len(ch.Members) + len(ch.Fields) + len(ch.Entries)
	if n > c.opts.MaxChunkElems {
		c.fail("key %q: %d elements in a chunk", ch.Key, n)
	}
	if len(ch.Value) > c.opts.MaxChunkBytes {
		c.fail("key %q: %d string bytes in a chunk", ch.Key, len(ch.Value))
	}
	if !ch.Last && n == 0 && len(ch.Value) == 0 {
		c.fail("key %q: empty intermediate chunk", ch.Key)
	}
	k.str = append(k.str, ch.Value...)
	for _, e := range ch.Elems {
		k.elems = append(k.elems, cp(e))
	}
	for _, m := range ch.Members {
		k.members = append(k.members, ZMember{cp(m.Member), m.Score})
	}
	for _, f := range ch.Fields {
		k.fields = append(k.fields, HashField{cp(f.Field), cp(f.Value), f.ExpireAt})
	}
	for _, e := range ch.Entries {
		var fs [][]byte
		for _, f := range e.Fields {
			fs = append(fs, cp(f))
		}
		k.entries = append(k.entries, StreamEntry{e.ID, fs})
	}
	if ch.Stream != nil {
		if !ch.Last {
			c.fail("key %q: stream meta before the last chunk", ch.Key)
		}
		k.stream = ch.Stream
	}
	if ch.Module != nil {
		k.module = ch.Module
	}
	if ch.Raw != nil {
		if !ch.Last {
			c.fail("key %q: raw before the last chunk", ch.Key)
		}
		k.raw = cp(ch.Raw)
	}
	if ch.Last {
		k.done = true
	}
	return nil
}

func (c *collector) get(db int, key string) *collected { return c.keys[keyID{db, key}] }

func sortedStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	slices.Sort(out)
	return out
}

func equalBytesList(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}
