package resp

import (
	"bytes"
	"io"
)

// EOFMarkLen is the length of the mark that delimits a diskless RDB transfer.
const EOFMarkLen = 40

// Preamble announces the RDB payload a master sends after +FULLRESYNC.
type Preamble struct {
	// Size is the payload length of a disk-backed transfer ("$<len>"), or -1
	// for a diskless one.
	Size int64
	// EOFMark is the 40-byte mark that follows the payload of a diskless
	// transfer ("$EOF:<mark>"); nil for disk-backed transfers.
	EOFMark []byte
}

// Diskless reports whether the payload is delimited by an EOF mark.
func (p Preamble) Diskless() bool { return p.EOFMark != nil }

// ReadRDBPreamble reads the bulk header of an RDB transfer, skipping the
// "\n" keepalives a master sends while it prepares the RDB.
func (r *Reader) ReadRDBPreamble() (Preamble, error) {
	for {
		b, err := r.br.Peek(1)
		if err != nil {
			return Preamble{}, err
		}
		if b[0] != '\n' && b[0] != '\r' {
			break
		}
		r.Discard(1)
	}
	start := r.off
	line, err := r.readLine(true)
	if err != nil {
		return Preamble{}, unexpected(err)
	}
	if len(line) > 0 && line[0] == '-' {
		return Preamble{}, &RedisError{Msg: string(line[1:])}
	}
	if len(line) == 0 || line[0] != '$' {
		return Preamble{}, r.protoErr(start, "expected RDB bulk header, got %q", line)
	}
	if bytes.HasPrefix(line, []byte("$EOF:")) {
		mark := line[5:]
		if len(mark) != EOFMarkLen {
			return Preamble{}, r.protoErr(start, "bad EOF mark length %d", len(mark))
		}
		return Preamble{Size: -1, EOFMark: append([]byte(nil), mark...)}, nil
	}
	n, ok := ParseInt(line[1:])
	if !ok || n < 0 {
		return Preamble{}, r.protoErr(start, "bad RDB length %q", line[1:])
	}
	return Preamble{Size: n}, nil
}

// ReadEOFMark consumes the mark that ends a diskless transfer, after the
// RDB itself has been consumed, and checks it.
func (r *Reader) ReadEOFMark(mark []byte) error {
	start := r.off
	b, err := r.br.Peek(len(mark))
	if err != nil {
		return unexpected(err)
	}
	if !bytes.Equal(b, mark) {
		return r.protoErr(start, "EOF mark mismatch")
	}
	r.Discard(len(mark))
	return nil
}

// PayloadReader returns a reader of the RDB payload announced by p, for
// callers that copy the payload without parsing it (to save a backup, for
// instance): it ends after Size bytes, or, for a diskless transfer, right
// before the EOF mark, which it consumes. Bytes after the payload stay
// unread in r.
func (r *Reader) PayloadReader(p Preamble) io.Reader {
	if !p.Diskless() {
		return io.LimitReader(r, p.Size)
	}
	return &markReader{r: r, mark: p.EOFMark}
}

type markReader struct {
	r     *Reader
	mark  []byte
	held  []byte // consumed, not yet returned; ends with < len(mark) unresolved bytes
	ready int    // bytes of held that can be returned
	done  bool
}

func (m *markReader) Read(p []byte) (int, error) {
	for m.ready == 0 {
		if m.done {
			return 0, io.EOF
		}
		if _, err := m.r.br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		data, _ := m.r.br.Peek(m.r.br.Buffered())
		prev := len(m.held)
		m.held = append(m.held, data...)
		if i := bytes.Index(m.held, m.mark); i >= 0 {
			m.r.Discard(i + len(m.mark) - prev)
			m.held = m.held[:i]
			m.ready = i
			m.done = true
			break
		}
		m.r.Discard(len(data))
		m.ready = max(0, len(m.held)-(len(m.mark)-1))
	}
	n := copy(p, m.held[:m.ready])
	m.held = m.held[:copy(m.held, m.held[n:])]
	m.ready -= n
	return n, nil
}
