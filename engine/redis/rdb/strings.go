// RDB strings: plain, integer-encoded and LZF-compressed.

package rdb

import (
	"slices"
	"strconv"
)

// appendString reads an RDB string and appends it to dst.
func (p *parser) appendString(dst []byte) ([]byte, error) {
	off := p.s.off
	n, enc, err := p.s.length()
	if err != nil {
		return dst, err
	}
	if enc {
		return p.appendEncoded(dst, n, off)
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

// appendEncoded decodes a specially encoded string (an integer of 1, 2 or 4
// bytes, or LZF) whose encoding byte, at off, has been read already, and
// appends it to dst.
func (p *parser) appendEncoded(dst []byte, enc uint64, off int64) ([]byte, error) {
	switch enc {
	case 0, 1, 2:
		n := 1 << enc
		b, err := p.s.fixed(n)
		if err != nil {
			return dst, err
		}
		return strconv.AppendInt(dst, leInt(b, n), 10), nil
	case 3:
		return p.appendLZF(dst, off)
	}
	return dst, p.errf(off, "unknown string encoding %d", enc)
}

// encodedString decodes a specially encoded string whose encoding byte has
// been read already: an integer into the arena, LZF into the blob buffer
// (flushes reset the arena, and Redis holds LZF strings whole too).
func (p *parser) encodedString(enc uint64) ([]byte, error) {
	off := p.s.off - 1
	if enc == 3 {
		b, err := p.appendLZF(p.blob[:0], off)
		p.blob = b
		return b, err
	}
	return p.appendEncoded(p.arena[:0], enc, off)
}
