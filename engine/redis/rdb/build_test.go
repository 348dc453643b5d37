package rdb

import (
	"encoding/binary"
	"fmt"
	"math"
)

// rdbBuilder writes synthetic RDB files, for the encodings no Redis we can
// run here writes anymore (ziplist, zipmap, quicklist v1, stream v1...) and
// the ones of newer versions (7.2's set listpack and stream v3, 7.4's hash
// field TTLs, v12 slot info).
type rdbBuilder struct {
	b        []byte
	objStart int  // offset of the current object's payload
	objType  byte // and its type
	raws     map[string][]byte
}

func newRDB(ver int) *rdbBuilder {
	return &rdbBuilder{b: []byte(fmt.Sprintf("REDIS%04d", ver)), raws: map[string][]byte{}}
}

func (w *rdbBuilder) byte(x byte) *rdbBuilder  { w.b = append(w.b, x); return w }
func (w *rdbBuilder) raw(x []byte) *rdbBuilder { w.b = append(w.b, x...); return w }
func (w *rdbBuilder) u32(x uint32) *rdbBuilder {
	w.b = binary.LittleEndian.AppendUint32(w.b, x)
	return w
}
func (w *rdbBuilder) u64(x uint64) *rdbBuilder {
	w.b = binary.LittleEndian.AppendUint64(w.b, x)
	return w
}

func (w *rdbBuilder) len(n uint64) *rdbBuilder {
	switch {
	case n < 1<<6:
		w.b = append(w.b, byte(n))
	case n < 1<<14:
		w.b = append(w.b, byte(n>>8)|0x40, byte(n))
	case n <= math.MaxUint32:
		w.b = append(w.b, 0x80)
		w.b = binary.BigEndian.AppendUint32(w.b, uint32(n))
	default:
		w.b = append(w.b, 0x81)
		w.b = binary.BigEndian.AppendUint64(w.b, n)
	}
	return w
}

func (w *rdbBuilder) str(s string) *rdbBuilder { return w.len(uint64(len(s))).raw([]byte(s)) }

// intStr writes v with an integer string encoding (0: int8, 1: int16, 2: int32).
func (w *rdbBuilder) intStr(enc int, v int64) *rdbBuilder {
	w.byte(0xc0 | byte(enc))
	switch enc {
	case 0:
		w.byte(byte(int8(v)))
	case 1:
		w.b = binary.LittleEndian.AppendUint16(w.b, uint16(int16(v)))
	case 2:
		w.b = binary.LittleEndian.AppendUint32(w.b, uint32(int32(v)))
	}
	return w
}

func (w *rdbBuilder) lzfStr(s string) *rdbBuilder {
	c := lzfCompress([]byte(s))
	return w.byte(0xc3).len(uint64(len(c))).len(uint64(len(s))).raw(c)
}

func (w *rdbBuilder) key(t Type, k string) *rdbBuilder {
	w.byte(byte(t)).str(k)
	w.objStart, w.objType = len(w.b), byte(t)
	return w
}

// done records the raw bytes of the object just written under its key.
func (w *rdbBuilder) done(k string) *rdbBuilder {
	w.raws[k] = append([]byte{w.objType}, w.b[w.objStart:]...)
	return w
}

func (w *rdbBuilder) eof(checksum bool) []byte {
	w.byte(opEOF)
	if checksum {
		w.u64(CRC64(0, w.b))
	} else {
		w.u64(0)
	}
	return w.b
}

// lzfCompress is a slow, simple LZF compressor (greedy, brute force search).
func lzfCompress(in []byte) []byte {
	var out, lit []byte
	flush := func() {
		for len(lit) > 0 {
			n := min(len(lit), 32)
			out = append(out, byte(n-1))
			out = append(out, lit[:n]...)
			lit = lit[n:]
		}
	}
	for i := 0; i < len(in); {
		best, bestOff := 0, 0
		for j := max(0, i-8192); j < i; j++ {
			l := 0
			for i+l < len(in) && l < 264 && in[j+l] == in[i+l] {
				l++
			}
			if l > best {
				best, bestOff = l, i-j-1
			}
		}
		if best < 3 {
			lit = append(lit, in[i])
			i++
			continue
		}
		flush()
		l := best - 2
		if l < 7 {
			out = append(out, byte(l<<5)|byte(bestOff>>8), byte(bestOff))
		} else {
			out = append(out, 7<<5|byte(bestOff>>8), byte(l-7), byte(bestOff))
		}
		i += best
	}
	flush()
	return out
}

// appendTaggedInt appends v in the smallest of 2, 3, 4 and 8 little-endian
// bytes that holds it, after the tag for that width: the integer encodings
// ziplists and listpacks share but for their tags.
func appendTaggedInt(b []byte, v int64, tags [4]byte) []byte {
	switch {
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return binary.LittleEndian.AppendUint16(append(b, tags[0]), uint16(v))
	case v >= -1<<23 && v < 1<<23:
		return append(b, tags[1], byte(v), byte(v>>8), byte(v>>16))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return binary.LittleEndian.AppendUint32(append(b, tags[2]), uint32(v))
	}
	return binary.LittleEndian.AppendUint64(append(b, tags[3]), uint64(v))
}

// ziplist encodes items (string or int64) as a ziplist.
func ziplist(items ...any) []byte {
	b := make([]byte, 10)
	prevlen, tail := 0, 10
	for _, it := range items {
		start := len(b)
		tail = start
		if prevlen < 254 {
			b = append(b, byte(prevlen))
		} else {
			b = append(b, 254)
			b = binary.LittleEndian.AppendUint32(b, uint32(prevlen))
		}
		switch v := it.(type) {
		case string:
			switch l := len(v); {
			case l < 64:
				b = append(b, byte(l))
			case l < 16384:
				b = append(b, 0x40|byte(l>>8), byte(l))
			default:
				b = append(b, 0x80)
				b = binary.BigEndian.AppendUint32(b, uint32(l))
			}
			b = append(b, v...)
		case int64:
			switch {
			case v >= 0 && v <= 12:
				b = append(b, 0xf1+byte(v))
			case v >= math.MinInt8 && v <= math.MaxInt8:
				b = append(b, 0xfe, byte(v))
			default:
				b = appendTaggedInt(b, v, [4]byte{0xc0, 0xf0, 0xd0, 0xe0})
			}
		}
		prevlen = len(b) - start
	}
	b = append(b, 0xff)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	binary.LittleEndian.PutUint32(b[4:], uint32(tail))
	binary.LittleEndian.PutUint16(b[8:], uint16(min(len(items), 65535)))
	return b
}

// listpack encodes items (string or int64) as a listpack.
func listpack(items ...any) []byte {
	b := make([]byte, 6)
	for _, it := range items {
		start := len(b)
		switch v := it.(type) {
		case string:
			switch l := len(v); {
			case l < 64:
				b = append(b, 0x80|byte(l))
			case l < 4096:
				b = append(b, 0xe0|byte(l>>8), byte(l))
			default:
				b = append(b, 0xf0)
				b = binary.LittleEndian.AppendUint32(b, uint32(l))
			}
			b = append(b, v...)
		case int64:
			switch {
			case v >= 0 && v <= 127:
				b = append(b, byte(v))
			case v >= -4096 && v <= 4095:
				u := uint64(v) & 0x1fff
				b = append(b, 0xc0|byte(u>>8), byte(u))
			default:
				b = appendTaggedInt(b, v, [4]byte{0xf1, 0xf2, 0xf3, 0xf4})
			}
		}
		l := len(b) - start
		switch {
		case l <= 127:
			b = append(b, byte(l))
		case l < 16383:
			b = append(b, byte(l>>7), byte(l&127)|128)
		case l < 2097151:
			b = append(b, byte(l>>14), byte(l>>7&127)|128, byte(l&127)|128)
		default:
			b = append(b, byte(l>>21), byte(l>>14&127)|128, byte(l>>7&127)|128, byte(l&127)|128)
		}
	}
	b = append(b, 0xff)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	binary.LittleEndian.PutUint16(b[4:], uint16(min(len(items), 65535)))
	return b
}

func intset(width int, vals ...int64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(width))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vals)))
	for _, v := range vals {
		switch width {
		case 2:
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		case 4:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		default:
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	}
	return b
}

func zipmap(pairs ...string) []byte {
	b := []byte{byte(len(pairs) / 2)}
	zl := func(l int) {
		if l < 254 {
			b = append(b, byte(l))
		} else {
			b = append(b, 254)
			b = binary.LittleEndian.AppendUint32(b, uint32(l))
		}
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		zl(len(pairs[i]))
		b = append(b, pairs[i]...)
		zl(len(pairs[i+1]))
		free := i % 3 // some free bytes after values
		b = append(b, byte(free))
		b = append(b, pairs[i+1]...)
		b = append(b, make([]byte, free)...)
	}
	return append(b, 0xff)
}

func rawID(ms, seq uint64) string {
	b := binary.BigEndian.AppendUint64(nil, ms)
	return string(binary.BigEndian.AppendUint64(b, seq))
}

// streamNode builds a stream listpack: entries are (id, fields...) with ids
// relative to the master id; entries whose fields equal the master fields use
// SAMEFIELDS; del marks deleted entries.
type sEntry struct {
	ms, seq uint64
	fv      []string
	del     bool
}

func streamNode(masterMs, masterSeq uint64, masterFields []string, entries []sEntry) []byte {
	var items []any
	live, deleted := 0, 0
	for _, e := range entries {
		if e.del {
			deleted++
		} else {
			live++
		}
	}
	items = append(items, int64(live), int64(deleted), int64(len(masterFields)))
	for _, f := range masterFields {
		items = append(items, f)
	}
	items = append(items, int64(0))
	for _, e := range entries {
		same := len(e.fv) == 2*len(masterFields)
		for i := 0; same && i < len(masterFields); i++ {
			same = e.fv[2*i] == masterFields[i]
		}
		flags := int64(0)
		if e.del {
			flags |= 1
		}
		if same {
			flags |= 2
		}
		n := len(items)
		items = append(items, flags, int64(e.ms-masterMs), int64(e.seq-masterSeq))
		if same {
			for i := 1; i < len(e.fv); i += 2 {
				items = append(items, e.fv[i])
			}
		} else {
			items = append(items, int64(len(e.fv)/2))
			for _, s := range e.fv {
				items = append(items, s)
			}
		}
		items = append(items, int64(len(items)-n))
	}
	return listpack(items...)
}
