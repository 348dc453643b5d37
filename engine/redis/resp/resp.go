// Package resp reads and writes the Redis serialization protocol (RESP2 and
// RESP3) as spoken on a replication link: replies, commands (arrays of bulk
// strings, or inline commands), and the preamble of the RDB payload that a
// master sends after +FULLRESYNC ("$<len>" for disk-backed transfers,
// "$EOF:<40-byte mark>" for diskless ones).
//
// Reader counts every byte it consumes (Offset), which is what a replica
// needs to track its replication offset. It implements Peek/Discard/Read so
// that an RDB parser can consume exactly the RDB's bytes from it and the
// command stream can be read right after.
//
// What a Redis 7 master sends a replica: after +FULLRESYNC, "\n" keepalives
// while the RDB is being prepared (ReadRDBPreamble skips them), the preamble,
// the RDB (followed by the 40-byte mark when diskless), then the command
// stream, only RESP arrays of bulk strings, its periodic PING included (which
// counts in the replication offset). Inline commands are never sent by a
// master; ReadCommand accepts them anyway, as Redis does from clients.
package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/ferrymigrate/ferry/engine/redis/internal/grow"
)

// Type is a RESP type byte.
type Type byte

// RESP2 and RESP3 types.
const (
	SimpleString Type = '+'
	Error        Type = '-'
	Integer      Type = ':'
	BulkString   Type = '$'
	Array        Type = '*'
	Null         Type = '_'
	Boolean      Type = '#'
	Double       Type = ','
	BigNumber    Type = '('
	BulkError    Type = '!'
	Verbatim     Type = '='
	Map          Type = '%'
	Set          Type = '~'
	Attribute    Type = '|'
	Push         Type = '>'
	// Inline is not a wire type: ReadValue returns it for an inline command
	// line, with the arguments as BulkString elements.
	Inline Type = 'i'
)

// Value is one RESP value.
type Value struct {
	Type  Type
	Str   []byte  // SimpleString, Error, BulkString, Double, BigNumber, BulkError, Verbatim ("txt:..." as sent)
	Int   int64   // Integer; Boolean (0 or 1)
	Elems []Value // Array, Set, Push, Inline; Map and Attribute as key, value, key, value...
	Null  bool    // Null, "$-1", "*-1"
}

// String renders v for messages and tests.
func (v Value) String() string {
	switch v.Type {
	case Integer, Boolean:
		return strconv.FormatInt(v.Int, 10)
	case Array, Set, Push, Map, Attribute, Inline:
		if v.Null {
			return "(nil)"
		}
		var b bytes.Buffer
		b.WriteByte('[')
		for i, e := range v.Elems {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(e.String())
		}
		b.WriteByte(']')
		return b.String()
	}
	if v.Null {
		return "(nil)"
	}
	return strconv.Quote(string(v.Str))
}

// Err returns v as an error if it is an Error or BulkError, else nil.
func (v Value) Err() error {
	if v.Type == Error || v.Type == BulkError {
		return &RedisError{Msg: string(v.Str)}
	}
	return nil
}

// RedisError is an error reply.
type RedisError struct{ Msg string }

func (e *RedisError) Error() string { return e.Msg }

// ProtocolError is a malformed stream; Offset is where the bad value starts.
type ProtocolError struct {
	Offset int64
	Msg    string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("resp: protocol error at offset %d: %s", e.Offset, e.Msg)
}

// Limits, after Redis's defaults.
const (
	DefaultMaxBulk   = 512 << 20 // proto-max-bulk-len
	DefaultMaxInline = 64 << 10  // PROTO_INLINE_MAX_SIZE
	DefaultMaxElems  = 1<<31 - 1
	maxDepth         = 64
)

// Reader reads RESP from a byte stream and counts the bytes it consumes.
type Reader struct {
	br  *bufio.Reader
	off int64

	MaxBulk   int64 // longest bulk string accepted (default DefaultMaxBulk)
	MaxInline int   // longest line accepted (default DefaultMaxInline)
	MaxElems  int64 // most elements in one aggregate (default DefaultMaxElems)

	args [][]byte
	ends []int
	buf  []byte
	line []byte
}

// NewReader returns a Reader with a 64 KiB buffer.
func NewReader(r io.Reader) *Reader { return NewReaderSize(r, 64<<10) }

// NewReaderSize returns a Reader with a buffer of the given size.
func NewReaderSize(r io.Reader, size int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, size), MaxBulk: DefaultMaxBulk, MaxInline: DefaultMaxInline, MaxElems: DefaultMaxElems}
}

// Offset is the number of bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

// Buffered is the number of bytes that can be read without blocking.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Peek returns the next n bytes without consuming them.
func (r *Reader) Peek(n int) ([]byte, error) { return r.br.Peek(n) }

// Discard consumes n bytes.
func (r *Reader) Discard(n int) (int, error) {
	d, err := r.br.Discard(n)
	r.off += int64(d)
	return d, err
}

// Read consumes up to len(p) bytes into p.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.br.Read(p)
	r.off += int64(n)
	return n, err
}

// ReadByte consumes one byte.
func (r *Reader) ReadByte() (byte, error) {
	b, err := r.br.ReadByte()
	if err == nil {
		r.off++
	}
	return b, err
}

func (r *Reader) protoErr(off int64, format string, args ...any) error {
	return &ProtocolError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLine reads a line up to "\n" and returns it without the line ending
// ("\r\n", or "\n" when crlf is false). The slice is valid until the next read.
func (r *Reader) readLine(crlf bool) ([]byte, error) {
	start := r.off
	line, err := r.br.ReadSlice('\n')
	r.off += int64(len(line))
	if err == bufio.ErrBufferFull {
		r.line = append(r.line[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(r.line) > r.maxInline() {
				return nil, r.protoErr(start, "line too long")
			}
			line, err = r.br.ReadSlice('\n')
			r.off += int64(len(line))
			r.line = append(r.line, line...)
		}
		line = r.line
	}
	if err != nil {
		if len(line) == 0 && err == io.EOF && r.off == start {
			return nil, io.EOF
		}
		return nil, unexpected(err)
	}
	if len(line) > r.maxInline()+2 {
		return nil, r.protoErr(start, "line too long")
	}
	n := len(line) - 1
	if n > 0 && line[n-1] == '\r' {
		n--
	} else if crlf {
		return nil, r.protoErr(start, "line not terminated by CRLF")
	}
	return line[:n], nil
}

func (r *Reader) maxInline() int {
	if r.MaxInline <= 0 {
		return DefaultMaxInline
	}
	return r.MaxInline
}

func (r *Reader) maxBulk() int64 {
	if r.MaxBulk <= 0 {
		return DefaultMaxBulk
	}
	return r.MaxBulk
}

func (r *Reader) maxElems() int64 {
	if r.MaxElems <= 0 {
		return DefaultMaxElems
	}
	return r.MaxElems
}

// ParseInt parses a decimal int64 as Redis writes it in lengths and integer
// replies (optional '-', no '+', no spaces, no leading zeros check, at most
// 20 bytes); ok is false for anything else or out of range.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<63-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

// readBulkBody reads n bytes and the CRLF after them, appending the bytes to
// dst. Memory grows with what actually arrives, not with what n claims.
func (r *Reader) readBulkBody(dst []byte, n int64) ([]byte, error) {
	dst, err := grow.Append(dst, uint64(n), func(b []byte) error {
		_, err := io.ReadFull(r, b)
		return unexpected(err)
	})
	if err != nil {
		return dst, err
	}
	off := r.off
	crlf, err := r.br.Peek(2)
	if err != nil {
		return dst, unexpected(err)
	}
	if crlf[0] != '\r' || crlf[1] != '\n' {
		return dst, r.protoErr(off, "bulk string not terminated by CRLF")
	}
	r.Discard(2)
	return dst, nil
}

// ReadValue reads one value (RESP2 or RESP3, or an inline command line).
// The returned value owns its memory.
func (r *Reader) ReadValue() (Value, error) {
	return r.readValue(0)
}

func (r *Reader) readValue(depth int) (Value, error) {
	start := r.off
	if depth > maxDepth {
		return Value{}, r.protoErr(start, "nesting too deep")
	}
	first, err := r.br.Peek(1)
	if err != nil {
		if err == io.EOF && depth > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Value{}, err
	}
	t := Type(first[0])
	switch t {
	case SimpleString, Error, Integer, BulkString, Array, Null, Boolean, Double, BigNumber,
		BulkError, Verbatim, Map, Set, Attribute, Push:
	default:
		if depth > 0 {
			return Value{}, r.protoErr(start, "unknown type byte 0x%02x", first[0])
		}
		line, err := r.readLine(false)
		if err != nil {
			return Value{}, err
		}
		args, err := splitInline(line)
		if err != nil {
			return Value{}, r.protoErr(start, "%v", err)
		}
		v := Value{Type: Inline, Elems: make([]Value, len(args))}
		for i, a := range args {
			v.Elems[i] = Value{Type: BulkString, Str: a}
		}
		return v, nil
	}
	line, err := r.readLine(true)
	if err != nil {
		return Value{}, unexpected(err)
	}
	body := line[1:]
	v := Value{Type: t}
	switch t {
	case SimpleString, Error, Double, BigNumber:
		v.Str = append([]byte(nil), body...)
	case Integer:
		n, ok := ParseInt(body)
		if !ok {
			return Value{}, r.protoErr(start, "bad integer %q", body)
		}
		v.Int = n
	case Null:
		if len(body) != 0 {
			return Value{}, r.protoErr(start, "bad null")
		}
		v.Null = true
	case Boolean:
		switch string(body) {
		case "t":
			v.Int = 1
		case "f":
		default:
			return Value{}, r.protoErr(start, "bad boolean %q", body)
		}
	case BulkString, BulkError, Verbatim:
		n, ok := ParseInt(body)
		if !ok || n < -1 {
			return Value{}, r.protoErr(start, "bad bulk length %q", body)
		}
		if n == -1 {
			v.Null = true
			return v, nil
		}
		if n > r.maxBulk() {
			return Value{}, r.protoErr(start, "bulk length %d over the limit", n)
		}
		if v.Str, err = r.readBulkBody(make([]byte, 0, min(n, 4096)), n); err != nil {
			return Value{}, err
		}
	case Array, Set, Push, Map, Attribute:
		n, ok := ParseInt(body)
		if !ok || n < -1 {
			return Value{}, r.protoErr(start, "bad aggregate length %q", body)
		}
		if n == -1 {
			v.Null = true
			return v, nil
		}
		if t == Map || t == Attribute {
			if n > r.maxElems()/2 {
				return Value{}, r.protoErr(start, "aggregate length %d over the limit", n)
			}
			n *= 2
		}
		if n > r.maxElems() {
			return Value{}, r.protoErr(start, "aggregate length %d over the limit", n)
		}
		v.Elems = make([]Value, 0, min(n, 1024))
		for i := int64(0); i < n; i++ {
			e, err := r.readValue(depth + 1)
			if err != nil {
				return Value{}, unexpected(err)
			}
			v.Elems = append(v.Elems, e)
		}
	}
	return v, nil
}

// ReadCommand reads one command: a RESP array of bulk strings, or an inline
// command line. Empty inline lines (such as the "\n" keepalives a master
// sends) are skipped; their bytes are counted in Offset. The returned slices
// are only valid until the next call on r.
func (r *Reader) ReadCommand() ([][]byte, error) {
	for {
		start := r.off
		first, err := r.br.Peek(1)
		if err != nil {
			return nil, err
		}
		if first[0] != '*' {
			line, err := r.readLine(false)
			if err != nil {
				return nil, err
			}
			args, err := splitInline(line)
			if err != nil {
				return nil, r.protoErr(start, "%v", err)
			}
			if len(args) == 0 {
				continue
			}
			return args, nil
		}
		line, err := r.readLine(true)
		if err != nil {
			return nil, unexpected(err)
		}
		n, ok := ParseInt(line[1:])
		if !ok || n > r.maxElems() {
			return nil, r.protoErr(start, "bad multibulk length %q", line[1:])
		}
		if n <= 0 {
			continue // Redis ignores "*0" and "*-1" as commands
		}
		if cap(r.buf) > 4<<20 { // do not keep a huge buffer after a huge command
			r.buf = nil
		}
		r.args = r.args[:0]
		r.buf = r.buf[:0]
		ends := r.ends[:0]
		for i := int64(0); i < n; i++ {
			boff := r.off
			line, err := r.readLine(true)
			if err != nil {
				return nil, unexpected(err)
			}
			if len(line) == 0 || line[0] != '$' {
				return nil, r.protoErr(boff, "expected '$', got %q", line)
			}
			l, ok := ParseInt(line[1:])
			if !ok || l < 0 || l > r.maxBulk() {
				return nil, r.protoErr(boff, "bad bulk length %q", line[1:])
			}
			if r.buf, err = r.readBulkBody(r.buf, l); err != nil {
				return nil, err
			}
			ends = append(ends, len(r.buf))
		}
		r.ends = ends
		prev := 0
		for _, e := range ends {
			r.args = append(r.args, r.buf[prev:e:e])
			prev = e
		}
		return r.args, nil
	}
}

// splitInline splits an inline command line like Redis's sdssplitargs:
// arguments separated by spaces, with "double quoted" (escapes \n \r \t \b
// \a \\ \" \xHH) and 'single quoted' (escape \') arguments. The returned
// arguments own their memory.
func splitInline(line []byte) ([][]byte, error) {
	var args [][]byte
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) {
			return args, nil
		}
		var cur []byte
		inDQ, inSQ, done := false, false, false
		cur = []byte{}
		for !done {
			if inDQ {
				if i >= len(line) {
					return nil, errors.New("unbalanced quotes in inline command")
				}
				c := line[i]
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					cur = append(cur, hexVal(line[i+2])<<4|hexVal(line[i+3]))
					i += 3
				case c == '\\' && i+1 < len(line):
					i++
					switch line[i] {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, line[i])
					}
				case c == '"':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, errors.New("unbalanced quotes in inline command")
					}
					done = true
				default:
					cur = append(cur, c)
				}
			} else if inSQ {
				if i >= len(line) {
					return nil, errors.New("unbalanced quotes in inline command")
				}
				c := line[i]
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					cur = append(cur, '\'')
				case c == '\'':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, errors.New("unbalanced quotes in inline command")
					}
					done = true
				default:
					cur = append(cur, c)
				}
			} else {
				if i >= len(line) {
					done = true
					break
				}
				switch c := line[i]; c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inDQ = true
				case '\'':
					inSQ = true
				default:
					cur = append(cur, c)
				}
			}
			if i < len(line) {
				i++
			}
		}
		args = append(args, cur)
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
