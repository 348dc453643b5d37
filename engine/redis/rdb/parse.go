package rdb

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrChecksum is wrapped by the error returned when the stored CRC64 does
// not match the data.
var ErrChecksum = errors.New("checksum mismatch")

// MaxVersion is the newest RDB format version this package reads.
const MaxVersion = 12

// Options tune Parse. The zero value is usable.
type Options struct {
	// MaxChunkElems bounds the elements (list/set elements, zset members,
	// hash fields, stream entries) of one chunk. Default 1024.
	MaxChunkElems int
	// MaxChunkBytes bounds the payload bytes of one chunk (a chunk can
	// exceed it by one element). Default 1 MiB.
	MaxChunkBytes int
	// CaptureRaw makes Parse capture each object's serialized bytes into
	// Chunk.Raw (on its last chunk), for DumpPayload / RESTORE.
	CaptureRaw bool
	// MaxRawBytes bounds a captured object; larger objects get no Raw.
	// 0 means no limit. Module values are always captured, whatever this says.
	MaxRawBytes int64
	// MaxStringBytes bounds any single string or encoded blob in the file;
	// longer ones are an error. Default 1 GiB.
	MaxStringBytes uint64
}

func (o *Options) defaults() {
	if o.MaxChunkElems <= 0 {
		o.MaxChunkElems = 1024
	}
	if o.MaxChunkBytes <= 0 {
		o.MaxChunkBytes = 1 << 20
	}
	if o.MaxStringBytes == 0 {
		o.MaxStringBytes = 1 << 30
	}
}

// Parse parses one RDB from r with default Options.
func Parse(r io.Reader, h Handler) (Info, error) {
	return ParseOptions(r, h, Options{})
}

// ParseOptions parses one RDB from r, calling h for what it finds. It stops
// right after the EOF opcode and the checksum (RDB >= 5). If r is a Peeker
// (such as *bufio.Reader) no byte past the end of the RDB is consumed from it;
// otherwise r is wrapped in a bufio.Reader that may read ahead.
func ParseOptions(r io.Reader, h Handler, o Options) (Info, error) {
	o.defaults()
	if h == nil {
		h = NopHandler{}
	}
	p := &parser{s: newSrc(r), h: h, o: o}
	err := p.run()
	p.info.Bytes = p.s.off
	return p.info, err
}

type parser struct {
	s    *src
	h    Handler
	o    Options
	ver  int
	info Info
	db   int

	c     Chunk
	key   []byte
	arena []byte // bytes of the current chunk's elements
	pend  int    // payload bytes in the current chunk
	slab  [][]byte
	blob  []byte // the current ziplist/listpack/intset blob
	lzfIn []byte
	tmp   []byte
}

func (p *parser) errf(off int64, format string, args ...any) error {
	return p.s.errf(off, nil, format, args...)
}

func (p *parser) run() error {
	hdr, err := p.s.fixed(9)
	if err != nil {
		return err
	}
	if string(hdr[:5]) != "REDIS" {
		return p.errf(0, "not an RDB file (bad magic %q)", hdr[:5])
	}
	v, err := strconv.Atoi(string(hdr[5:9]))
	if err != nil || v < 1 || v > MaxVersion {
		return p.errf(5, "unsupported RDB version %q", hdr[5:9])
	}
	p.ver = v
	p.info.Version = v
	p.info.Aux = map[string]string{}

	expire, idle, freq := NoExpire, int64(-1), -1
	for {
		off := p.s.off
		t, err := p.s.byte()
		if err != nil {
			return err
		}
		switch t {
		case opExpireTime:
			x, err := p.s.u32le()
			if err != nil {
				return err
			}
			expire = int64(int32(x)) * 1000
		case opExpireTimeMs:
			x, err := p.s.u64le()
			if err != nil {
				return err
			}
			expire = int64(x)
		case opFreq:
			b, err := p.s.byte()
			if err != nil {
				return err
			}
			freq = int(b)
		case opIdle:
			x, err := p.s.plainLen()
			if err != nil {
				return err
			}
			idle = int64(x & math.MaxInt64)
		case opSelectDB:
			x, err := p.s.plainLen()
			if err != nil {
				return err
			}
			if x > math.MaxInt32 {
				return p.errf(off, "bad db number %d", x)
			}
			p.db = int(x)
			if err := p.h.SelectDB(p.db); err != nil {
				return err
			}
		case opResizeDB:
			a, err := p.s.plainLen()
			if err != nil {
				return err
			}
			b, err := p.s.plainLen()
			if err != nil {
				return err
			}
			if err := p.h.ResizeDB(p.db, a, b); err != nil {
				return err
			}
		case opSlotInfo:
			var x [3]uint64
			for i := range x {
				if x[i], err = p.s.plainLen(); err != nil {
					return err
				}
			}
			if err := p.h.SlotInfo(x[0], x[1], x[2]); err != nil {
				return err
			}
		case opAux:
			k, err := p.appendString(p.tmp[:0])
			if err != nil {
				return err
			}
			p.tmp = k
			val, err := p.appendString(p.arena[:0])
			if err != nil {
				return err
			}
			p.arena = val
			if len(p.info.Aux) < 1024 {
				p.info.Aux[string(k)] = string(val)
			}
			if err := p.h.Aux(k, val); err != nil {
				return err
			}
		case opModuleAux:
			if err := p.moduleAux(); err != nil {
				return err
			}
		case opFunctionPreGA:
			if err := p.functionPreGA(); err != nil {
				return err
			}
		case opFunction2:
			code, err := p.appendString(p.arena[:0])
			if err != nil {
				return err
			}
			p.arena = code
			p.info.Functions++
			if err := p.h.Function(code); err != nil {
				return err
			}
		case opEOF:
			if p.ver >= 5 {
				sum := p.s.crc
				b, err := p.s.fixed(8)
				if err != nil {
					return err
				}
				stored := binary.LittleEndian.Uint64(b)
				p.info.Checksum = stored
				if stored != 0 {
					if stored != sum {
						return p.s.errf(p.s.off-8, ErrChecksum, "stored CRC64 %016x, computed %016x", stored, sum)
					}
					p.info.Verified = true
				}
			}
			return nil
		default:
			typ := Type(t)
			if typ.Kind() == 0 {
				if typ == TypeModulePreGA {
					return p.errf(off, "unsupported object type %d (%s, pre-release module format)", t, typ)
				}
				return p.errf(off, "unknown opcode or object type 0x%02x (%d)", t, t)
			}
			k, err := p.appendString(p.key[:0])
			if err != nil {
				return err
			}
			p.key = k
			if err := p.object(typ, expire, idle, freq); err != nil {
				return err
			}
			p.info.Keys++
			expire, idle, freq = NoExpire, -1, -1
		}
	}
}

// appendString reads an RDB string and appends it to dst.
func (p *parser) appendString(dst []byte) ([]byte, error) {
	off := p.s.off
	n, enc, err := p.s.length()
	if err != nil {
		return dst, err
	}
	if enc {
		switch n {
		case 0:
			b, err := p.s.fixed(1)
			if err != nil {
				return dst, err
			}
			return strconv.AppendInt(dst, int64(int8(b[0])), 10), nil
		case 1:
			b, err := p.s.fixed(2)
			if err != nil {
				return dst, err
			}
			return strconv.AppendInt(dst, int64(int16(binary.LittleEndian.Uint16(b))), 10), nil
		case 2:
			b, err := p.s.fixed(4)
			if err != nil {
				return dst, err
			}
			return strconv.AppendInt(dst, int64(int32(binary.LittleEndian.Uint32(b))), 10), nil
		case 3:
			return p.appendLZF(dst, off)
		}
		return dst, p.errf(off, "unknown string encoding %d", n)
	}
	if n > p.o.MaxStringBytes {
		return dst, p.errf(off, "string length %d over the limit of %d", n, p.o.MaxStringBytes)
	}
	return p.s.appendN(dst, n)
}

func (p *parser) appendLZF(dst []byte, off int64) ([]byte, error) {
	clen, err := p.s.plainLen()
	if err != nil {
		return dst, err
	}
	ulen, err := p.s.plainLen()
	if err != nil {
		return dst, err
	}
	if clen == 0 || ulen > p.o.MaxStringBytes || clen > p.o.MaxStringBytes || ulen > clen*lzfMaxRatio {
		return dst, p.errf(off, "bad LZF lengths (compressed %d, uncompressed %d)", clen, ulen)
	}
	in, err := p.s.appendN(p.lzfIn[:0], clen)
	if cap(in) <= 4<<20 {
		p.lzfIn = in
	} else {
		p.lzfIn = nil
	}
	if err != nil {
		return dst, err
	}
	l := len(dst)
	dst = slices.Grow(dst, int(ulen))[:l+int(ulen)]
	if err := lzfDecompress(in, dst[l:]); err != nil {
		return dst[:l], p.s.errf(off, err, "bad LZF string")
	}
	return dst, nil
}

// ---- chunk assembly ----

func (p *parser) count() int {
	return len(p.c.Elems) + len(p.c.Members) + len(p.c.Fields) + len(p.c.Entries)
}

// room flushes the current chunk if it is full; call before adding an element.
func (p *parser) room() error {
	if n := p.count(); n > 0 && (n >= p.o.MaxChunkElems || p.pend >= p.o.MaxChunkBytes) {
		return p.flush(false)
	}
	return nil
}

func (p *parser) flush(last bool) error {
	p.c.Last = last
	if last && p.s.capOn && !p.s.capOver {
		p.c.Raw = p.s.capBuf
	}
	if err := p.h.Chunk(&p.c); err != nil {
		return err
	}
	p.c.First = false
	p.c.Seq++
	p.c.Value = nil
	p.c.Elems = p.c.Elems[:0]
	p.c.Members = p.c.Members[:0]
	p.c.Fields = p.c.Fields[:0]
	p.c.Entries = p.c.Entries[:0]
	p.slab = p.slab[:0]
	p.arena = p.arena[:0]
	p.pend = 0
	return nil
}

// bytesOf returns e's bytes; integers are formatted into the arena, and so
// are strings when cp is set (their blob will be reused before the flush).
func (p *parser) bytesOf(e elem, cp bool) []byte {
	if !e.isInt && !cp {
		return e.s
	}
	l := len(p.arena)
	p.arena = e.appendTo(p.arena)
	return p.arena[l:len(p.arena):len(p.arena)]
}

// readElem reads an RDB string element into the arena.
func (p *parser) readElem() ([]byte, error) {
	l := len(p.arena)
	a, err := p.appendString(p.arena)
	if err != nil {
		return nil, err
	}
	p.arena = a
	return a[l:len(a):len(a)], nil
}

func (p *parser) addElem(b []byte) {
	p.c.Elems = append(p.c.Elems, b)
	p.pend += len(b)
}

func (p *parser) readBlob() ([]byte, error) {
	b, err := p.appendString(p.blob[:0])
	p.blob = b
	return b, err
}

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

// object reads one key's value (the key is in p.key) and emits its chunks.
func (p *parser) object(t Type, expire, idle int64, freq int) error {
	p.c = Chunk{
		DB: p.db, Key: p.key, Type: t, Kind: t.Kind(), ExpireAt: expire, Idle: idle, Freq: freq,
		Version: p.ver, First: true,
		Elems: p.c.Elems[:0], Members: p.c.Members[:0], Fields: p.c.Fields[:0], Entries: p.c.Entries[:0],
	}
	p.arena, p.slab, p.pend = p.arena[:0], p.slab[:0], 0
	if p.o.CaptureRaw || t == TypeModule2 {
		p.s.capOn, p.s.capOver = true, false
		p.s.capMax = -1
		if p.o.MaxRawBytes > 0 && t != TypeModule2 {
			p.s.capMax = p.o.MaxRawBytes
		}
		p.s.capBuf = append(p.s.capBuf[:0], byte(t))
	}
	err := p.value(t)
	if err == nil {
		err = p.flush(true)
	}
	p.s.capOn = false
	p.c.Raw, p.c.Stream, p.c.Module = nil, nil, nil
	if cap(p.s.capBuf) > 4<<20 {
		p.s.capBuf = nil
	}
	if cap(p.blob) > 4<<20 {
		p.blob = nil
	}
	if cap(p.arena) > 4<<20 {
		p.arena = nil
	}
	return err
}

func (p *parser) value(t Type) error {
	start := p.s.off
	switch t {
	case TypeString:
		return p.stringValue()
	case TypeList, TypeSet:
		n, err := p.s.plainLen()
		if err != nil {
			return err
		}
		for ; n > 0; n-- {
			if err := p.room(); err != nil {
				return err
			}
			b, err := p.readElem()
			if err != nil {
				return err
			}
			p.addElem(b)
		}
		return nil
	case TypeZSet, TypeZSet2:
		n, err := p.s.plainLen()
		if err != nil {
			return err
		}
		for ; n > 0; n-- {
			if err := p.room(); err != nil {
				return err
			}
			m, err := p.readElem()
			if err != nil {
				return err
			}
			var score float64
			soff := p.s.off
			if t == TypeZSet2 {
				x, err := p.s.u64le()
				if err != nil {
					return err
				}
				score = math.Float64frombits(x)
			} else {
				l, err := p.s.byte()
				if err != nil {
					return err
				}
				switch l {
				case 253:
					score = math.NaN()
				case 254:
					score = math.Inf(1)
				case 255:
					score = math.Inf(-1)
				default:
					p.tmp, err = p.s.appendN(p.tmp[:0], uint64(l))
					if err != nil {
						return err
					}
					var ok bool
					if score, ok = parseScore(p.tmp); !ok {
						return p.errf(soff, "bad zset score %q", p.tmp)
					}
				}
			}
			p.c.Members = append(p.c.Members, ZMember{Member: m, Score: score})
			p.pend += len(m) + 8
		}
		return nil
	case TypeHash, TypeHashMetadata, TypeHashMetadataPreGA:
		var minExpire uint64
		if t == TypeHashMetadata {
			x, err := p.s.u64le()
			if err != nil {
				return err
			}
			minExpire = x
		}
		n, err := p.s.plainLen()
		if err != nil {
			return err
		}
		for ; n > 0; n-- {
			if err := p.room(); err != nil {
				return err
			}
			exp := NoExpire
			if t != TypeHash {
				toff := p.s.off
				ttl, err := p.s.plainLen()
				if err != nil {
					return err
				}
				if ttl != 0 {
					if t == TypeHashMetadata {
						ttl += minExpire - 1
					}
					if ttl > math.MaxInt64 {
						return p.errf(toff, "bad hash field TTL")
					}
					exp = int64(ttl)
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
			p.c.Fields = append(p.c.Fields, HashField{Field: f, Value: v, ExpireAt: exp})
			p.pend += len(f) + len(v)
		}
		return nil
	case TypeListQuicklist, TypeListQuicklist2:
		n, err := p.s.plainLen()
		if err != nil {
			return err
		}
		for ; n > 0; n-- {
			container := uint64(2) // packed
			if t == TypeListQuicklist2 {
				coff := p.s.off
				if container, err = p.s.plainLen(); err != nil {
					return err
				}
				if container != 1 && container != 2 {
					return p.errf(coff, "bad quicklist node container %d", container)
				}
			}
			if container == 1 { // plain node: one element
				if err := p.room(); err != nil {
					return err
				}
				b, err := p.readElem()
				if err != nil {
					return err
				}
				p.addElem(b)
				continue
			}
			boff := p.s.off
			blob, err := p.readBlob()
			if err != nil {
				return err
			}
			var it elemIter
			if t == TypeListQuicklist {
				it, err = newZiplistIter(blob)
			} else {
				it, err = newListpackIter(blob)
			}
			if err != nil {
				return p.s.errf(boff, err, "bad %s node", t)
			}
			if err := p.elems(it, boff, true); err != nil {
				return err
			}
		}
		return nil
	case TypeListZiplist, TypeSetIntset, TypeSetListpack:
		boff := p.s.off
		blob, err := p.readBlob()
		if err != nil {
			return err
		}
		var it elemIter
		switch t {
		case TypeListZiplist:
			it, err = newZiplistIter(blob)
		case TypeSetIntset:
			it, err = newIntsetIter(blob)
		default:
			it, err = newListpackIter(blob)
		}
		if err != nil {
			return p.s.errf(boff, err, "bad %s value", t)
		}
		return p.elems(it, boff, false)
	case TypeZSetZiplist, TypeZSetListpack:
		boff := p.s.off
		blob, err := p.readBlob()
		if err != nil {
			return err
		}
		var it elemIter
		if t == TypeZSetZiplist {
			it, err = newZiplistIter(blob)
		} else {
			it, err = newListpackIter(blob)
		}
		if err != nil {
			return p.s.errf(boff, err, "bad %s value", t)
		}
		for {
			m, ok, err := it.next()
			if err != nil {
				return p.s.errf(boff, err, "bad %s value", t)
			}
			if !ok {
				return nil
			}
			s, ok, err := it.next()
			if err != nil || !ok {
				return p.s.errf(boff, err, "bad %s value: member without score", t)
			}
			score, ok := elemScore(s)
			if !ok {
				return p.errf(boff, "bad %s value: bad score %q", t, s.s)
			}
			if err := p.room(); err != nil {
				return err
			}
			mb := p.bytesOf(m, false)
			p.c.Members = append(p.c.Members, ZMember{Member: mb, Score: score})
			p.pend += len(mb) + 8
		}
	case TypeHashZipmap, TypeHashZiplist, TypeHashListpack, TypeHashListpackEx, TypeHashListpackExPreGA:
		if t == TypeHashListpackEx {
			if _, err := p.s.u64le(); err != nil { // min expire: informative
				return err
			}
		}
		boff := p.s.off
		blob, err := p.readBlob()
		if err != nil {
			return err
		}
		var it elemIter
		switch t {
		case TypeHashZipmap:
			it, err = newZipmapIter(blob)
		case TypeHashZiplist:
			it, err = newZiplistIter(blob)
		default:
			it, err = newListpackIter(blob)
		}
		if err != nil {
			return p.s.errf(boff, err, "bad %s value", t)
		}
		withTTL := t == TypeHashListpackEx || t == TypeHashListpackExPreGA
		for {
			f, ok, err := it.next()
			if err != nil {
				return p.s.errf(boff, err, "bad %s value", t)
			}
			if !ok {
				return nil
			}
			v, ok, err := it.next()
			if err != nil || !ok {
				return p.s.errf(boff, err, "bad %s value: field without value", t)
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
			fb := p.bytesOf(f, false)
			vb := p.bytesOf(v, false)
			p.c.Fields = append(p.c.Fields, HashField{Field: fb, Value: vb, ExpireAt: exp})
			p.pend += len(fb) + len(vb)
		}
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		return p.stream(t)
	case TypeModule2:
		id, err := p.s.plainLen()
		if err != nil {
			return err
		}
		if err := p.moduleData(); err != nil {
			return err
		}
		name, ver := ModuleTypeName(id)
		p.c.Module = &ModuleValue{ID: id, Name: name, EncVer: ver}
		return nil
	}
	return p.errf(start, "unsupported object type %d (%s)", t, t)
}

// elems adds all elements of it as list/set elements.
func (p *parser) elems(it elemIter, boff int64, cp bool) error {
	for {
		e, ok, err := it.next()
		if err != nil {
			return p.s.errf(boff, err, "bad %s value", p.c.Type)
		}
		if !ok {
			return nil
		}
		if err := p.room(); err != nil {
			return err
		}
		p.addElem(p.bytesOf(e, cp))
	}
}

// stringValue emits a string in pieces of at most MaxChunkBytes.
func (p *parser) stringValue() error {
	n, enc, err := p.s.length()
	if err != nil {
		return err
	}
	if enc {
		// integer or LZF: decode whole (LZF strings are held by Redis whole
		// too), then emit in pieces.
		val, err := p.encodedString(n)
		if err != nil {
			return err
		}
		for len(val) > p.o.MaxChunkBytes {
			p.c.Value = val[:p.o.MaxChunkBytes]
			if err := p.flush(false); err != nil {
				return err
			}
			val = val[p.o.MaxChunkBytes:]
		}
		p.c.Value = val
		return nil
	}
	if n > p.o.MaxStringBytes {
		return p.errf(p.s.off, "string length %d over the limit of %d", n, p.o.MaxStringBytes)
	}
	for {
		k := n
		if k > uint64(p.o.MaxChunkBytes) {
			k = uint64(p.o.MaxChunkBytes)
		}
		p.arena, err = p.s.appendN(p.arena[:0], k)
		if err != nil {
			return err
		}
		p.c.Value = p.arena
		n -= k
		if n == 0 {
			return nil
		}
		if err := p.flush(false); err != nil {
			return err
		}
	}
}

// encodedString decodes a specially encoded string whose encoding byte has
// been read already.
func (p *parser) encodedString(enc uint64) ([]byte, error) {
	off := p.s.off - 1
	var b []byte
	var err error
	switch enc {
	case 0:
		if b, err = p.s.fixed(1); err != nil {
			return nil, err
		}
		return strconv.AppendInt(p.arena[:0], int64(int8(b[0])), 10), nil
	case 1:
		if b, err = p.s.fixed(2); err != nil {
			return nil, err
		}
		return strconv.AppendInt(p.arena[:0], int64(int16(binary.LittleEndian.Uint16(b))), 10), nil
	case 2:
		if b, err = p.s.fixed(4); err != nil {
			return nil, err
		}
		return strconv.AppendInt(p.arena[:0], int64(int32(binary.LittleEndian.Uint32(b))), 10), nil
	case 3:
		// Decode into a buffer of its own: flushes reset the arena.
		b, err := p.appendLZF(p.blob[:0], off)
		p.blob = b
		return b, err
	}
	return nil, p.errf(off, "unknown string encoding %d", enc)
}

func (p *parser) moduleData() error {
	for {
		off := p.s.off
		op, err := p.s.plainLen()
		if err != nil {
			return err
		}
		switch op {
		case 0: // EOF
			return nil
		case 1, 2: // signed, unsigned
			if _, err := p.s.plainLen(); err != nil {
				return err
			}
		case 3: // float
			if _, err := p.s.fixed(4); err != nil {
				return err
			}
		case 4: // double
			if _, err := p.s.fixed(8); err != nil {
				return err
			}
		case 5: // string
			if p.tmp, err = p.appendString(p.tmp[:0]); err != nil {
				return err
			}
		default:
			return p.errf(off, "unknown module data opcode %d", op)
		}
	}
}

func (p *parser) moduleAux() error {
	id, err := p.s.plainLen()
	if err != nil {
		return err
	}
	off := p.s.off
	whenOp, err := p.s.plainLen()
	if err != nil {
		return err
	}
	if whenOp != 2 {
		return p.errf(off, "bad module aux when-opcode %d", whenOp)
	}
	when, err := p.s.plainLen()
	if err != nil {
		return err
	}
	p.s.capOn, p.s.capOver, p.s.capMax = true, false, -1
	p.s.capBuf = p.s.capBuf[:0]
	err = p.moduleData()
	p.s.capOn = false
	if err != nil {
		return err
	}
	return p.h.ModuleAux(id, when, p.s.capBuf)
}

// functionPreGA reads the function format of Redis 7.0 release candidates
// (name, engine, optional description, code) and hands it over as a library
// with a shebang line.
func (p *parser) functionPreGA() error {
	name, err := p.appendString(nil)
	if err != nil {
		return err
	}
	engine, err := p.appendString(nil)
	if err != nil {
		return err
	}
	hasDesc, err := p.s.plainLen()
	if err != nil {
		return err
	}
	if hasDesc != 0 {
		if p.tmp, err = p.appendString(p.tmp[:0]); err != nil {
			return err
		}
	}
	code := []byte("#!" + strings.ToLower(string(engine)) + " name=" + string(name) + "\n")
	if code, err = p.appendString(code); err != nil {
		return err
	}
	p.info.Functions++
	return p.h.Function(code)
}
