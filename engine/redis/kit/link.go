package kit

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/resp"
)

// Link is a replication connection to a source master: ferry acts as a
// replica (REPLCONF, PSYNC), receives the RDB and then the command stream.
type Link struct {
	Conn net.Conn
	R    *resp.Reader
	wmu  sync.Mutex
	w    *bufio.Writer
}

// TLSConfig returns the TLS settings of an endpoint, or nil.
func TLSConfig(e *ferry.Endpoint) *tls.Config {
	if !e.TLS {
		return nil
	}
	host, _, _ := net.SplitHostPort(e.Addrs[0])
	c := &tls.Config{ServerName: host, InsecureSkipVerify: e.TLSSkipVerify, MinVersion: tls.VersionTLS12}
	return c
}

// DialLink connects to addr and authenticates; bandwidthMB > 0 throttles
// what is read from the source.
func DialLink(ctx context.Context, e *ferry.Endpoint, addr string, bandwidthMB int) (*Link, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if tc := TLSConfig(e); tc != nil {
		td := tls.Dialer{NetDialer: &d, Config: tc}
		conn, err = td.DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to source %s: %w", addr, err)
	}
	var rd = newThrottledConn(conn, bandwidthMB)
	l := &Link{Conn: conn, R: resp.NewReaderSize(rd, 1<<20), w: bufio.NewWriterSize(conn, 4096)}
	// Unblock reads when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if e.Password != "" {
		args := []string{"AUTH", e.Password}
		if e.Username != "" {
			args = []string{"AUTH", e.Username, e.Password}
		}
		// A password given for a server that has none is harmless (Redis
		// answers an error but the connection works), as clients treat it.
		if _, err := l.Call(args...); err != nil && !strings.Contains(err.Error(), "without any password configured") {
			conn.Close()
			return nil, fmt.Errorf("source %s: AUTH: %w", addr, err)
		}
	}
	return l, nil
}

// call sends a command and reads one reply (before the stream starts).
func (l *Link) Call(args ...string) (resp.Value, error) {
	if err := l.Send(args...); err != nil {
		return resp.Value{}, err
	}
	v, err := l.R.ReadValue()
	if err != nil {
		return v, err
	}
	if err := v.Err(); err != nil {
		return v, err
	}
	return v, nil
}

func (l *Link) Send(args ...string) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	buf := resp.AppendCommandString(nil, args...)
	if _, err := l.w.Write(buf); err != nil {
		return err
	}
	return l.w.Flush()
}

// ack tells the master how far ferry has applied.
func (l *Link) Ack(offset int64) error {
	return l.Send("REPLCONF", "ACK", strconv.FormatInt(offset, 10))
}

func (l *Link) Close() {
	if l != nil && l.Conn != nil {
		l.Conn.Close()
	}
}

// PSYNCResult is the master's answer to PSYNC.
type PSYNCResult struct {
	Full   bool   // +FULLRESYNC: an RDB follows
	ReplID string // the replication id to use from now on
	Offset int64  // FULLRESYNC: the master offset the RDB corresponds to
}

// handshake announces ferry as a replica and asks for the stream from
// replID/offset (replID "?" asks for a full sync). offset is the last byte
// applied; PSYNC asks for offset+1.
func (l *Link) Handshake(replID string, offset int64) (PSYNCResult, error) {
	if _, err := l.Call("REPLCONF", "listening-port", "0"); err != nil {
		return PSYNCResult{}, fmt.Errorf("REPLCONF listening-port: %w", err)
	}
	if _, err := l.Call("REPLCONF", "capa", "eof", "capa", "psync2"); err != nil {
		return PSYNCResult{}, fmt.Errorf("REPLCONF capa: %w", err)
	}
	want := "-1"
	if replID != "?" {
		want = strconv.FormatInt(offset+1, 10)
	}
	if err := l.Send("PSYNC", replID, want); err != nil {
		return PSYNCResult{}, err
	}
	// The master may send newlines (keepalives) before its answer.
	v, err := l.R.ReadValue()
	for err == nil && v.Type == resp.Inline && len(v.Elems) == 0 {
		v, err = l.R.ReadValue()
	}
	if err == nil {
		err = v.Err()
	}
	if err != nil {
		return PSYNCResult{}, fmt.Errorf("PSYNC (is this a master that allows replicas? a managed service may forbid PSYNC: use mode scan): %w", err)
	}
	line := string(v.Str)
	f := strings.Fields(line)
	switch {
	case len(f) == 3 && f[0] == "FULLRESYNC":
		off, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return PSYNCResult{}, fmt.Errorf("bad FULLRESYNC offset in %q", line)
		}
		return PSYNCResult{Full: true, ReplID: f[1], Offset: off}, nil
	case len(f) >= 1 && f[0] == "CONTINUE":
		id := replID
		if len(f) == 2 {
			id = f[1]
		}
		return PSYNCResult{ReplID: id, Offset: offset}, nil
	}
	return PSYNCResult{}, fmt.Errorf("unexpected PSYNC answer %q", line)
}

// throttledConn limits the read rate of a connection (bandwidth_limit_mb).
type throttledConn struct {
	net.Conn
	rate   float64 // bytes per second; 0: unlimited
	tokens float64
	last   time.Time
}

func newThrottledConn(c net.Conn, mb int) net.Conn {
	if mb <= 0 {
		return c
	}
	r := float64(mb) * 1024 * 1024
	return &throttledConn{Conn: c, rate: r, tokens: r / 10, last: time.Now()}
}

func (t *throttledConn) Read(p []byte) (int, error) {
	// Never read more than a tenth of a second's worth at once.
	if max := int(t.rate / 10); max > 0 && len(p) > max {
		p = p[:max]
	}
	now := time.Now()
	t.tokens += now.Sub(t.last).Seconds() * t.rate
	t.last = now
	if burst := t.rate / 10; t.tokens > burst {
		t.tokens = burst
	}
	if t.tokens < float64(len(p)) {
		wait := time.Duration((float64(len(p)) - t.tokens) / t.rate * float64(time.Second))
		time.Sleep(wait)
		t.tokens += wait.Seconds() * t.rate
		t.last = time.Now()
	}
	n, err := t.Conn.Read(p)
	t.tokens -= float64(n)
	return n, err
}
