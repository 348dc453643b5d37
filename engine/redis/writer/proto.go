package writer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/ferrymigrate/ferry/engine/redis/resp"
)

// maxDepth bounds how deeply replies may nest (Redis's own replies nest a
// few levels; COMMAND's about eight).
const maxDepth = 64

// maxBulk is the largest bulk string a reply may announce (Redis's
// proto-max-bulk-len default).
const maxBulk = 512 << 20

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
	n, ok := resp.ParseInt(b)
	if !ok {
		return 0, errProtocol
	}
	return n, nil
}

// skipReply reads one reply. It returns the error message (copied) if the
// reply is an error reply at top level. Nested error elements (inside
// arrays) are returned through nested only when collectNested is set: this
// is used for EXEC, whose array reply carries one reply per queued command.
func skipReply(r *bufio.Reader, collectNested bool, nested *[]nestedErr) (errMsg string, err error) {
	return skipReplyDepth(r, collectNested, nested, 0)
}

func skipReplyDepth(r *bufio.Reader, collectNested bool, nested *[]nestedErr, depth int) (errMsg string, err error) {
	if depth > maxDepth {
		return "", fmt.Errorf("writer: reply nested deeper than %d levels", maxDepth)
	}
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
		if n > maxBulk {
			return "", fmt.Errorf("writer: bulk reply of %d bytes exceeds %d", n, maxBulk)
		}
		_, err = r.Discard(int(n) + 2)
		return "", err
	case '*':
		n, err := parseInt(line[1:])
		if err != nil {
			return "", err
		}
		for i := int64(0); i < n; i++ {
			msg, err := skipReplyDepth(r, false, nil, depth+1)
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
func readValue(r *bufio.Reader) (any, error) { return readValueDepth(r, 0) }

func readValueDepth(r *bufio.Reader, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("writer: reply nested deeper than %d levels", maxDepth)
	}
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
		if n > maxBulk {
			return nil, fmt.Errorf("writer: bulk reply of %d bytes exceeds %d", n, maxBulk)
		}
		// Read what arrives rather than allocating what the length
		// announces: a hostile server cannot make ferry allocate memory it
		// never sends.
		var sb bytes.Buffer
		if m, err := io.CopyN(&sb, r, n+2); err != nil {
			if err == io.EOF && m < n+2 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		b := sb.Bytes()
		if b[n] != '\r' || b[n+1] != '\n' {
			return nil, errProtocol
		}
		return string(b[:n]), nil
	case '*':
		n, err := parseInt(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		// Every element takes at least 3 bytes on the wire: grow as they
		// arrive instead of trusting the announced count.
		out := make([]any, 0, min(n, 1024))
		for i := int64(0); i < n; i++ {
			v, err := readValueDepth(r, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("writer: unexpected reply type %q", line[0])
	}
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
	if err != nil || n < 0 {
		return nil, nil, false
	}
	buf = buf[end+2:]
	// Each argument takes at least 6 bytes ("$0\r\n\r\n").
	if n > int64(len(buf)/6) {
		return nil, nil, false
	}
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
		if err != nil || l < 0 || l > int64(len(buf)-end-4) {
			return nil, nil, false
		}
		start := end + 2
		args = append(args, buf[start:start+int(l)])
		buf = buf[start+int(l)+2:]
	}
	return args, buf, true
}
