package resp

import (
	"io"
	"strconv"
)

// AppendArrayHeader appends "*<n>\r\n".
func AppendArrayHeader(dst []byte, n int) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

// AppendBulk appends b as a bulk string.
func AppendBulk(dst, b []byte) []byte { return appendBulk(dst, b) }

// AppendBulkString appends s as a bulk string.
func AppendBulkString(dst []byte, s string) []byte { return appendBulk(dst, s) }

func appendBulk[T []byte | string](dst []byte, b T) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkInt appends n in decimal as a bulk string.
func AppendBulkInt(dst []byte, n int64) []byte {
	var tmp [20]byte
	return AppendBulk(dst, strconv.AppendInt(tmp[:0], n, 10))
}

// AppendCommand appends a command as an array of bulk strings.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = AppendArrayHeader(dst, len(args))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}

// AppendCommandString appends a command given as strings.
func AppendCommandString(dst []byte, args ...string) []byte {
	dst = AppendArrayHeader(dst, len(args))
	for _, a := range args {
		dst = AppendBulkString(dst, a)
	}
	return dst
}

// AppendValue appends v in RESP (RESP3 types as RESP3). Inline values are
// written as arrays.
func AppendValue(dst []byte, v Value) []byte {
	t := v.Type
	if t == Inline {
		t = Array
	}
	switch t {
	case SimpleString, Error, Double, BigNumber:
		dst = append(dst, byte(t))
		dst = append(dst, v.Str...)
		return append(dst, '\r', '\n')
	case Integer:
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, v.Int, 10)
		return append(dst, '\r', '\n')
	case Null:
		return append(dst, '_', '\r', '\n')
	case Boolean:
		if v.Int != 0 {
			return append(dst, '#', 't', '\r', '\n')
		}
		return append(dst, '#', 'f', '\r', '\n')
	case BulkString, BulkError, Verbatim:
		if v.Null {
			return append(dst, byte(t), '-', '1', '\r', '\n')
		}
		dst = append(dst, byte(t))
		dst = strconv.AppendInt(dst, int64(len(v.Str)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, v.Str...)
		return append(dst, '\r', '\n')
	case Array, Set, Push, Map, Attribute:
		if v.Null {
			return append(dst, byte(t), '-', '1', '\r', '\n')
		}
		n := len(v.Elems)
		if t == Map || t == Attribute {
			n /= 2
		}
		dst = append(dst, byte(t))
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, '\r', '\n')
		for _, e := range v.Elems {
			dst = AppendValue(dst, e)
		}
		return dst
	}
	return dst
}

// Writer accumulates pipelined commands in a buffer.
type Writer struct {
	Buf      []byte
	Commands int // commands appended since the last Reset
}

// Command appends a command.
func (w *Writer) Command(args ...[]byte) {
	w.Buf = AppendCommand(w.Buf, args...)
	w.Commands++
}

// CommandString appends a command given as strings.
func (w *Writer) CommandString(args ...string) {
	w.Buf = AppendCommandString(w.Buf, args...)
	w.Commands++
}

// Len is the number of buffered bytes.
func (w *Writer) Len() int { return len(w.Buf) }

// Reset empties the buffer, keeping its memory.
func (w *Writer) Reset() { w.Buf, w.Commands = w.Buf[:0], 0 }

// Flush writes the buffer to dst and resets it.
func (w *Writer) Flush(dst io.Writer) error {
	if len(w.Buf) == 0 {
		return nil
	}
	_, err := dst.Write(w.Buf)
	w.Reset()
	return err
}
