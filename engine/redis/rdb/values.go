// Value decoders, one per RDB object type and encoding (strings are in
// strings.go, streams in stream.go, module values in module.go).

package rdb

import (
	"errors"
	"math"
	"strconv"
)

// value reads the value of an object of type t (its type byte and key have
// been read) into chunks.
func (p *parser) value(t Type) error {
	switch t {
	case TypeString:
		return p.stringValue()
	case TypeList, TypeSet:
		return p.repeat(p.plainElem)
	case TypeZSet, TypeZSet2:
		return p.repeat(func() error { return p.plainMember(t) })
	case TypeHash, TypeHashMetadata, TypeHashMetadataPreGA:
		return p.plainHash(t)
	case TypeListQuicklist, TypeListQuicklist2:
		return p.repeat(func() error { return p.quicklistNode(t) })
	case TypeListZiplist, TypeSetIntset, TypeSetListpack:
		it, boff, err := p.readPacked(t, "value")
		if err != nil {
			return err
		}
		return p.elems(it, boff, false)
	case TypeZSetZiplist, TypeZSetListpack:
		return p.packedZSet(t)
	case TypeHashZipmap, TypeHashZiplist, TypeHashListpack, TypeHashListpackEx, TypeHashListpackExPreGA:
		return p.packedHash(t)
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		return p.stream(t)
	case TypeModule2:
		return p.moduleValue()
	}
	return p.errf(p.s.off, "unsupported object type %d (%s)", t, t)
}

// ---- plain encodings: a length, then that many elements of RDB strings ----

// repeat reads a length, then calls read that many times.
func (p *parser) repeat(read func() error) error {
	n, err := p.s.plainLen()
	if err != nil {
		return err
	}
	for ; n > 0; n-- {
		if err := read(); err != nil {
			return err
		}
	}
	return nil
}

// plainElem reads one string as a list/set element.
func (p *parser) plainElem() error {
	if err := p.room(); err != nil {
		return err
	}
	b, err := p.readElem()
	if err != nil {
		return err
	}
	p.addElem(b)
	return nil
}

// plainMember reads a zset member followed by its score: a binary double
// (TypeZSet2) or a string (TypeZSet).
func (p *parser) plainMember(t Type) error {
	if err := p.room(); err != nil {
		return err
	}
	m, err := p.readElem()
	if err != nil {
		return err
	}
	var score float64
	if t == TypeZSet2 {
		x, err := p.s.u64le()
		if err != nil {
			return err
		}
		score = math.Float64frombits(x)
	} else if score, err = p.stringScore(); err != nil {
		return err
	}
	p.addMember(m, score)
	return nil
}

// stringScore reads a score of the first zset encoding: a length byte, with
// 253, 254 and 255 for NaN, +inf and -inf, then that many bytes of a number.
func (p *parser) stringScore() (float64, error) {
	soff := p.s.off
	l, err := p.s.byte()
	if err != nil {
		return 0, err
	}
	switch l {
	case 253:
		return math.NaN(), nil
	case 254:
		return math.Inf(1), nil
	case 255:
		return math.Inf(-1), nil
	}
	if p.tmp, err = p.s.appendN(p.tmp[:0], uint64(l)); err != nil {
		return 0, err
	}
	score, ok := parseScore(p.tmp)
	if !ok {
		return 0, p.errf(soff, "bad zset score %q", p.tmp)
	}
	return score, nil
}

// plainHash reads a hash as a length and that many fields. TypeHashMetadata
// starts with a minimum expire time, which its field TTLs are relative to.
func (p *parser) plainHash(t Type) error {
	var minExpire uint64
	if t == TypeHashMetadata {
		x, err := p.s.u64le()
		if err != nil {
			return err
		}
		minExpire = x
	}
	return p.repeat(func() error { return p.plainField(t, minExpire) })
}

// plainField reads a hash field and its value; in the hashes with field
// TTLs (all but TypeHash) the field's TTL comes first.
func (p *parser) plainField(t Type, minExpire uint64) error {
	if err := p.room(); err != nil {
		return err
	}
	exp := NoExpire
	if t != TypeHash {
		var err error
		if exp, err = p.fieldTTL(t, minExpire); err != nil {
			return err
		}
	}
	f, err := p.readElem()
	if err != nil {
		return err
	}
	v, err := p.readElem()
	if err != nil {
		return err
	}
	p.addField(f, v, exp)
	return nil
}

// fieldTTL reads the expire time of a hash field of type t; 0 is no TTL.
func (p *parser) fieldTTL(t Type, minExpire uint64) (int64, error) {
	toff := p.s.off
	ttl, err := p.s.plainLen()
	if err != nil {
		return 0, err
	}
	if ttl == 0 {
		return NoExpire, nil
	}
	if t == TypeHashMetadata {
		ttl += minExpire - 1
	}
	if ttl > math.MaxInt64 {
		return 0, p.errf(toff, "bad hash field TTL")
	}
	return int64(ttl), nil
}

// ---- packed encodings: one blob (ziplist, listpack, intset, zipmap) ----

// packedIter returns an iterator over blob, a blob of encoding t.
func packedIter(t Type, blob []byte) (elemIter, error) {
	switch t {
	case TypeListZiplist, TypeListQuicklist, TypeZSetZiplist, TypeHashZiplist:
		return newZiplistIter(blob)
	case TypeSetIntset:
		return newIntsetIter(blob)
	case TypeHashZipmap:
		return newZipmapIter(blob)
	}
	return newListpackIter(blob)
}

// readPacked reads a blob of encoding t and returns an iterator over it and
// the blob's offset (for errors). what names the blob in errors: "value", or
// "node" for a quicklist node.
func (p *parser) readPacked(t Type, what string) (elemIter, int64, error) {
	boff := p.s.off
	blob, err := p.readBlob()
	if err != nil {
		return nil, boff, err
	}
	it, err := packedIter(t, blob)
	if err != nil {
		return nil, boff, p.s.errf(boff, err, "bad %s %s", t, what)
	}
	return it, boff, nil
}

// quicklistNode reads a node of a quicklist (a list as a length and that
// many nodes): a ziplist (TypeListQuicklist), or a listpack or a plain
// one-element node, after a container number saying which
// (TypeListQuicklist2).
func (p *parser) quicklistNode(t Type) error {
	container := uint64(2) // packed
	if t == TypeListQuicklist2 {
		coff := p.s.off
		var err error
		if container, err = p.s.plainLen(); err != nil {
			return err
		}
		if container != 1 && container != 2 {
			return p.errf(coff, "bad quicklist node container %d", container)
		}
	}
	if container == 1 { // plain node: one element
		return p.plainElem()
	}
	it, boff, err := p.readPacked(t, "node")
	if err != nil {
		return err
	}
	return p.elems(it, boff, true)
}

// pair reads the next two elements of it, a blob of type t at boff; ok is
// false at its end. A first element without a second is an error that says
// so (missing: "member without score", say).
func (p *parser) pair(it elemIter, t Type, boff int64, missing string) (a, b elem, ok bool, err error) {
	a, ok, err = it.next()
	if err != nil {
		return a, b, false, p.s.errf(boff, err, "bad %s value", t)
	}
	if !ok {
		return a, b, false, nil
	}
	b, ok, err = it.next()
	if err != nil || !ok {
		return a, b, false, p.s.errf(boff, err, "bad %s value: %s", t, missing)
	}
	return a, b, true, nil
}

// packedZSet reads a zset blob of alternating members and scores.
func (p *parser) packedZSet(t Type) error {
	it, boff, err := p.readPacked(t, "value")
	if err != nil {
		return err
	}
	for {
		m, s, ok, err := p.pair(it, t, boff, "member without score")
		if err != nil || !ok {
			return err
		}
		score, ok := elemScore(s)
		if !ok {
			return p.errf(boff, "bad %s value: bad score %q", t, s.s)
		}
		if err := p.room(); err != nil {
			return err
		}
		p.addMember(p.bytesOf(m, false), score)
	}
}

// packedHash reads a hash blob of alternating fields and values; in the
// listpacks with field TTLs each value is followed by the field's expire
// time (0: none), and TypeHashListpackEx has a minimum expire time first.
func (p *parser) packedHash(t Type) error {
	if t == TypeHashListpackEx {
		if _, err := p.s.u64le(); err != nil { // min expire: informative
			return err
		}
	}
	it, boff, err := p.readPacked(t, "value")
	if err != nil {
		return err
	}
	withTTL := t == TypeHashListpackEx || t == TypeHashListpackExPreGA
	for {
		f, v, ok, err := p.pair(it, t, boff, "field without value")
		if err != nil || !ok {
			return err
		}
		exp := NoExpire
		if withTTL {
			x, ok, err := it.next()
			if err != nil || !ok || !x.isInt || x.i < 0 {
				return p.s.errf(boff, err, "bad %s value: bad field TTL", t)
			}
			if x.i != 0 {
				exp = x.i
			}
		}
		if err := p.room(); err != nil {
			return err
		}
		p.addField(p.bytesOf(f, false), p.bytesOf(v, false), exp)
	}
}

// ---- scores ----

func parseScore(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return f, true // strtod saturates to +-inf / 0 too
		}
		return 0, false
	}
	return f, true
}

func elemScore(e elem) (float64, bool) {
	if e.isInt {
		return float64(e.i), true
	}
	return parseScore(e.s)
}
