package rdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ferrymigrate/ferry/engine/redis/internal/grow"
)

// Peeker is a buffered reader that lets Parse consume exactly the RDB's bytes
// and no more. *bufio.Reader and *resp.Reader implement it.
type Peeker interface {
	io.Reader
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
}

// src reads the RDB, keeping the offset and the running CRC, and optionally
// capturing the bytes of the object being read.
type src struct {
	r   Peeker
	off int64
	crc uint64

	capOn   bool
	capOver bool
	capMax  int64 // <0: unlimited
	capBuf  []byte
}

func newSrc(r io.Reader) *src {
	p, ok := r.(Peeker)
	if !ok {
		p = bufio.NewReaderSize(r, 64<<10)
	}
	return &src{r: p}
}

func (s *src) errf(off int64, err error, format string, args ...any) error {
	return &Error{Offset: off, Msg: fmt.Sprintf(format, args...), Err: err}
}

func (s *src) account(b []byte) {
	s.off += int64(len(b))
	s.crc = CRC64(s.crc, b)
	if s.capOn && !s.capOver {
		if s.capMax >= 0 && int64(len(s.capBuf)+len(b)) > s.capMax {
			s.capOver = true
			s.capBuf = s.capBuf[:0]
		} else {
			s.capBuf = append(s.capBuf, b...)
		}
	}
}

func (s *src) short(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return s.errf(s.off, err, "short read")
}

// fixed returns the next n (<= 16) bytes; the slice is valid until the next read.
func (s *src) fixed(n int) ([]byte, error) {
	b, err := s.r.Peek(n)
	if len(b) < n {
		return nil, s.short(err)
	}
	s.account(b)
	if _, err := s.r.Discard(n); err != nil {
		return nil, s.short(err)
	}
	return b, nil
}

func (s *src) byte() (byte, error) {
	b, err := s.fixed(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// full fills dst.
func (s *src) full(dst []byte) error {
	for len(dst) > 0 {
		n, err := s.r.Read(dst)
		if n > 0 {
			s.account(dst[:n])
			dst = dst[n:]
			continue
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return s.short(err)
	}
	return nil
}

// appendN appends the next n bytes to dst. It never allocates much more than
// what has actually arrived, whatever n claims.
func (s *src) appendN(dst []byte, n uint64) ([]byte, error) {
	return grow.Append(dst, n, s.full)
}

func (s *src) u32le() (uint32, error) {
	b, err := s.fixed(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (s *src) u64le() (uint64, error) {
	b, err := s.fixed(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// length reads an RDB length. enc is true for the special (11xxxxxx)
// encodings, in which case n is the encoding number.
func (s *src) length() (n uint64, enc bool, err error) {
	start := s.off
	b, err := s.byte()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		b2, err := s.byte()
		if err != nil {
			return 0, false, err
		}
		return uint64(b&0x3f)<<8 | uint64(b2), false, nil
	case 2:
		switch b {
		case 0x80:
			x, err := s.fixed(4)
			if err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(x)), false, nil
		case 0x81:
			x, err := s.fixed(8)
			if err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(x), false, nil
		}
		return 0, false, s.errf(start, nil, "bad length encoding 0x%02x", b)
	}
	return uint64(b & 0x3f), true, nil
}

// plainLen reads a length that must not be a special encoding.
func (s *src) plainLen() (uint64, error) {
	start := s.off
	n, enc, err := s.length()
	if err != nil {
		return 0, err
	}
	if enc {
		return 0, s.errf(start, nil, "unexpected string encoding where a length was expected")
	}
	return n, nil
}
