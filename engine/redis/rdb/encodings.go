package rdb

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// elem is one element of a ziplist, listpack or intset: a string or an
// integer.
type elem struct {
	s     []byte
	i     int64
	isInt bool
}

func (e elem) appendTo(dst []byte) []byte {
	if e.isInt {
		return strconv.AppendInt(dst, e.i, 10)
	}
	return append(dst, e.s...)
}

// leInt decodes the n-byte (1, 2, 3, 4 or 8) little-endian two's complement
// integer at the start of b.
func leInt(b []byte, n int) int64 {
	switch n {
	case 1:
		return int64(int8(b[0]))
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(b)))
	case 3:
		return int64(int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8)
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(b)))
	}
	return int64(binary.LittleEndian.Uint64(b))
}

var (
	errZiplist  = errors.New("corrupt ziplist")
	errListpack = errors.New("corrupt listpack")
	errIntset   = errors.New("corrupt intset")
	errZipmap   = errors.New("corrupt zipmap")
)

type elemIter interface {
	next() (e elem, ok bool, err error)
}

// ziplist: <zlbytes u32><zltail u32><zllen u16> entries... 0xff; each entry
// is <prevlen 1|5 bytes><encoding><data>.
type ziplistIter struct {
	b   []byte
	pos int
}

func newZiplistIter(b []byte) (*ziplistIter, error) {
	if len(b) < 11 || binary.LittleEndian.Uint32(b) != uint32(len(b)) || b[len(b)-1] != 0xff {
		return nil, errZiplist
	}
	return &ziplistIter{b: b, pos: 10}, nil
}

func (z *ziplistIter) next() (elem, bool, error) {
	b := z.b
	end := len(b) - 1 // position of the 0xff terminator
	p := z.pos
	if p >= end {
		if p == end {
			return elem{}, false, nil
		}
		return elem{}, false, errZiplist
	}
	switch {
	case b[p] < 254:
		p++
	case b[p] == 254:
		p += 5
	default:
		return elem{}, false, errZiplist
	}
	if p >= end {
		return elem{}, false, errZiplist
	}
	enc := b[p]
	var l int
	switch enc >> 6 {
	case 0:
		l = int(enc & 0x3f)
		p++
	case 1:
		if p+2 > end {
			return elem{}, false, errZiplist
		}
		l = int(enc&0x3f)<<8 | int(b[p+1])
		p += 2
	case 2:
		if p+5 > end {
			return elem{}, false, errZiplist
		}
		l = int(binary.BigEndian.Uint32(b[p+1:]))
		p += 5
	default:
		p++
		var n int
		switch {
		case enc == 0xc0:
			n = 2
		case enc == 0xd0:
			n = 4
		case enc == 0xe0:
			n = 8
		case enc == 0xf0:
			n = 3
		case enc == 0xfe:
			n = 1
		case enc >= 0xf1 && enc <= 0xfd:
			z.pos = p
			return elem{i: int64(enc&0x0f) - 1, isInt: true}, true, nil
		default:
			return elem{}, false, errZiplist
		}
		if p+n > end {
			return elem{}, false, errZiplist
		}
		z.pos = p + n
		return elem{i: leInt(b[p:], n), isInt: true}, true, nil
	}
	if l < 0 || l > end-p {
		return elem{}, false, errZiplist
	}
	z.pos = p + l
	return elem{s: b[p : p+l]}, true, nil
}

// listpack: <total u32><num u16> entries... 0xff; each entry is
// <encoding+data><backlen>.
type listpackIter struct {
	b   []byte
	pos int
}

func newListpackIter(b []byte) (*listpackIter, error) {
	if len(b) < 7 || binary.LittleEndian.Uint32(b) != uint32(len(b)) || b[len(b)-1] != 0xff {
		return nil, errListpack
	}
	return &listpackIter{b: b, pos: 6}, nil
}

func lpBacklenSize(l int) int {
	switch {
	case l <= 127:
		return 1
	case l < 16383:
		return 2
	case l < 2097151:
		return 3
	case l < 268435455:
		return 4
	}
	return 5
}

func (it *listpackIter) next() (elem, bool, error) {
	b := it.b
	end := len(b) - 1
	p := it.pos
	if p >= end {
		if p == end {
			return elem{}, false, nil
		}
		return elem{}, false, errListpack
	}
	c := b[p]
	var e elem
	var size int // encoding + data
	switch {
	case c&0x80 == 0:
		e, size = elem{i: int64(c & 0x7f), isInt: true}, 1
	case c&0xc0 == 0x80:
		l := int(c & 0x3f)
		size = 1 + l
		if p+size > end {
			return elem{}, false, errListpack
		}
		e = elem{s: b[p+1 : p+size]}
	case c&0xe0 == 0xc0:
		if p+2 > end {
			return elem{}, false, errListpack
		}
		u := int64(c&0x1f)<<8 | int64(b[p+1])
		if u >= 1<<12 {
			u -= 1 << 13
		}
		e, size = elem{i: u, isInt: true}, 2
	case c&0xf0 == 0xe0:
		if p+2 > end {
			return elem{}, false, errListpack
		}
		l := int(c&0x0f)<<8 | int(b[p+1])
		size = 2 + l
		if p+size > end {
			return elem{}, false, errListpack
		}
		e = elem{s: b[p+2 : p+size]}
	case c == 0xf0:
		if p+5 > end {
			return elem{}, false, errListpack
		}
		l := uint64(binary.LittleEndian.Uint32(b[p+1:]))
		if l > uint64(end-p-5) {
			return elem{}, false, errListpack
		}
		size = 5 + int(l)
		e = elem{s: b[p+5 : p+size]}
	case c >= 0xf1 && c <= 0xf4:
		n := [...]int{2, 3, 4, 8}[c-0xf1]
		if p+1+n > end {
			return elem{}, false, errListpack
		}
		e, size = elem{i: leInt(b[p+1:], n), isInt: true}, 1+n
	default:
		return elem{}, false, errListpack
	}
	p += size + lpBacklenSize(size)
	if p > end {
		return elem{}, false, errListpack
	}
	it.pos = p
	return e, true, nil
}

// intset: <encoding u32 (2,4,8)><length u32><values little-endian>.
type intsetIter struct {
	b   []byte
	w   int
	pos int
}

func newIntsetIter(b []byte) (*intsetIter, error) {
	if len(b) < 8 {
		return nil, errIntset
	}
	w := binary.LittleEndian.Uint32(b)
	n := uint64(binary.LittleEndian.Uint32(b[4:]))
	if (w != 2 && w != 4 && w != 8) || uint64(len(b)-8) != n*uint64(w) {
		return nil, errIntset
	}
	return &intsetIter{b: b, w: int(w), pos: 8}, nil
}

func (it *intsetIter) next() (elem, bool, error) {
	if it.pos >= len(it.b) {
		return elem{}, false, nil
	}
	v := leInt(it.b[it.pos:], it.w)
	it.pos += it.w
	return elem{i: v, isInt: true}, true, nil
}

// zipmap: <zmlen u8> (<len>field<len><free>value<free bytes>)... 0xff, where
// <len> is one byte below 254, or 254 followed by a 4-byte little-endian length.
type zipmapIter struct {
	b       []byte
	pos     int
	isValue bool
}

func newZipmapIter(b []byte) (*zipmapIter, error) {
	if len(b) < 2 || b[len(b)-1] != 0xff {
		return nil, errZipmap
	}
	return &zipmapIter{b: b, pos: 1}, nil
}

func (z *zipmapIter) next() (elem, bool, error) {
	b := z.b
	end := len(b) - 1
	p := z.pos
	if p >= end {
		if p == end && !z.isValue {
			return elem{}, false, nil
		}
		return elem{}, false, errZipmap
	}
	var l int
	switch c := b[p]; {
	case c < 254:
		l = int(c)
		p++
	case c == 254:
		if p+5 > end {
			return elem{}, false, errZipmap
		}
		u := binary.LittleEndian.Uint32(b[p+1:])
		if uint64(u) > uint64(end) {
			return elem{}, false, errZipmap
		}
		l = int(u)
		p += 5
	default:
		return elem{}, false, errZipmap
	}
	free := 0
	if z.isValue {
		if p >= end {
			return elem{}, false, errZipmap
		}
		free = int(b[p])
		p++
	}
	if l > end-p || free > end-p-l {
		return elem{}, false, errZipmap
	}
	e := elem{s: b[p : p+l]}
	z.pos = p + l + free
	z.isValue = !z.isValue
	return e, true, nil
}
