package writer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// This file holds the minimal RESP2 codec of the standalone hot path:
// commands are appended as RESP arrays of bulk strings to a byte slice, and
// replies are skipped (or, off the hot path, decoded) from a bufio.Reader
// without allocating for the common +OK / :n / $n replies.

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(buf []byte, args [][]byte) []byte {
	buf = append(buf, '*')
	buf = strconv.AppendInt(buf, int64(len(args)), 10)
	buf = append(buf, '\r', '\n')
	for _, a := range args {
		buf = append(buf, '$')
		buf = strconv.AppendInt(buf, int64(len(a)), 10)
		buf = append(buf, '\r', '\n')
		buf = append(buf, a...)
		buf = append(buf, '\r', '\n')
	}
	return buf
}

// appendSelect appends SELECT db.
func appendSelect(buf []byte, db int) []byte {
	var tmp [20]byte
	n := strconv.AppendInt(tmp[:0], int64(db), 10)
	buf = append(buf, "*2\r\n$6\r\nSELECT\r\n$"...)
	buf = strconv.AppendInt(buf, int64(len(n)), 10)
	buf = append(buf, '\r', '\n')
	buf = append(buf, n...)
	return append(buf, '\r', '\n')
}

var errProtocol = errors.New("writer: protocol error in reply")

// readLine returns the line without its CRLF. The slice is only valid until
// the next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return nil, fmt.Errorf("writer: reply line longer than %d bytes", r.Size())
		}
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, errProtocol
	}
	return line[:len(line)-2], nil
}

func parseInt(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, errProtocol
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
		if len(b) == 0 {
			return 0, errProtocol
		}
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errProtocol
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// skipReply reads one reply. It returns the error message (copied) if the
// reply is an error reply at top level. Nested error elements (inside
// arrays) are returned through nested only when collectNested is set: this
// is used for EXEC, whose array reply carries one reply per queued command.
func skipReply(r *bufio.Reader, collectNested bool, nested *[]nestedErr) (errMsg string, err error) {
	line, err := readLine(r)
	if err != nil {
		return "", err
	}
	switch line[0] {
	case '+', ':':
		return "", nil
	case '-':
		return string(line[1:]), nil
	case '$':
		n, err := parseInt(line[1:])
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "", nil
		}
		_, err = r.Discard(int(n) + 2)
		return "", err
	case '*':
		n, err := parseInt(line[1:])
		if err != nil {
			return "", err
		}
		for i := int64(0); i < n; i++ {
			msg, err := skipReply(r, false, nil)
			if err != nil {
				return "", err
			}
			if msg != "" && collectNested {
				*nested = append(*nested, nestedErr{index: int(i), msg: msg})
			}
		}
		return "", nil
	default:
		return "", fmt.Errorf("writer: unexpected reply type %q", line[0])
	}
}

type nestedErr struct {
	index int
	msg   string
}

// replyError is an error reply decoded by readValue.
type replyError string

func (e replyError) Error() string { return string(e) }

// readValue decodes one reply into string, int64, []any, nil or replyError.
// Used off the hot path (handshake, COMMAND).
func readValue(r *bufio.Reader) (any, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	switch line[0] {
	case '+':
		return string(line[1:]), nil
	case '-':
		return replyError(line[1:]), nil
	case ':':
		return parseInt(line[1:])
	case '$':
		n, err := parseInt(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := parseInt(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readValue(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("writer: unexpected reply type %q", line[0])
	}
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// commandAt walks a buffer of encoded commands and returns the args of the
// i-th one (0-based). It is used only to describe a failed command, so the
// hot path keeps no per-command metadata.
func commandAt(buf []byte, i int) [][]byte {
	for idx := 0; len(buf) > 0; idx++ {
		args, rest, ok := parseCommand(buf)
		if !ok {
			return nil
		}
		if idx == i {
			return args
		}
		buf = rest
	}
	return nil
}

func parseCommand(buf []byte) (args [][]byte, rest []byte, ok bool) {
	if len(buf) == 0 || buf[0] != '*' {
		return nil, nil, false
	}
	end := bytes.Index(buf, []byte("\r\n"))
	if end < 0 {
		return nil, nil, false
	}
	n, err := parseInt(buf[1:end])
	if err != nil {
		return nil, nil, false
	}
	buf = buf[end+2:]
	args = make([][]byte, 0, n)
	for j := int64(0); j < n; j++ {
		if len(buf) == 0 || buf[0] != '$' {
			return nil, nil, false
		}
		end = bytes.Index(buf, []byte("\r\n"))
		if end < 0 {
			return nil, nil, false
		}
		l, err := parseInt(buf[1:end])
		if err != nil || int64(len(buf)) < int64(end)+2+l+2 {
			return nil, nil, false
		}
		start := end + 2
		args = append(args, buf[start:start+int(l)])
		buf = buf[start+int(l)+2:]
	}
	return args, buf, true
}
