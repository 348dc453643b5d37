package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveLoopback runs e's server (rebuilt with cfg's timeouts) on a loopback
// port and returns its address.
func serveLoopback(t *testing.T, e *env, cfg Config) string {
	t.Helper()
	cfg.Service, cfg.Logger, cfg.MetricsToken, cfg.Mount = e.svc, e.srv.log, testMetricsToken, e.srv.cfg.Mount
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// closedWithin reads c until the server closes it and reports how long
// that took, or an error when it was still open at the bound.
func closedWithin(c net.Conn, bound time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(bound))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 0, fmt.Errorf("still open after %v", bound)
	}
	return time.Since(start), nil
}

// TestSlowClientsAreDisconnected opens real connections on loopback that
// stall in their header, in their body, or idle after a request: the
// server drops each within its timeouts instead of holding it.
func TestSlowClientsAreDisconnected(t *testing.T) {
	e := setup(t)
	addr := serveLoopback(t, e, Config{ReadHeaderTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, IdleTimeout: time.Second})
	auth := "Basic " + basic(e.pub, e.priv)
	kinds := map[string]string{
		"slow header": "POST /api/v1/projects HTTP/1.1\r\nHost: x\r\nX-Slow: ",
		"slow body": "POST /api/v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
			"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"name\":\"",
		"idle keep-alive": "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
	}
	const perKind = 50
	const bound = 5 * time.Second
	var mu sync.Mutex
	worst := map[string]time.Duration{}
	var wg sync.WaitGroup
	for kind, prefix := range kinds {
		for range perKind {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, prefix); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				d, err := closedWithin(c, bound)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("%s: %v", kind, err)
				}
				worst[kind] = max(worst[kind], d)
			})
		}
	}
	wg.Wait()
	t.Logf("%d connections per kind, closed by the server after at most: %v", perKind, worst)
}

// TestOversizedHeader: a header over MaxHeaderBytes is answered 431 in
// the dialect's own error body; one over 4 times that is refused (431) by
// net/http at once, before any handler runs.
func TestOversizedHeader(t *testing.T) {
	e := setup(t)
	addr := serveLoopback(t, e, Config{MaxHeaderBytes: 8 << 10})
	raw := func(path string, size int) (int, string) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nX-Big: %s\r\n\r\n", path, basic(e.pub, e.priv), strings.Repeat("a", size))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	p := e.proj.ID
	for _, c := range []struct{ name, path, want string }{
		{"native", "/api/v1/projects", `"code":"header_too_large"`},
		{"atlas", "/api/atlas/v2/groups", `"errorCode":"HEADER_TOO_LARGE"`},
		{"oms", "/api/omsp/v2/migrations?projectId=" + p, `"code":"REQUEST_HEADER_TOO_LARGE"`},
		{"dcs", "/v2/" + p + "/migration-tasks", `"error_code":"DCS.4310"`},
	} {
		st, body := raw(c.path, 16<<10)
		if st != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(body, c.want) {
			t.Errorf("%s: a 16 KiB header: %d %.300s, want 431 with %s", c.name, st, body, c.want)
		}
	}
	if st, _ := raw("/api/v1/projects", 4<<10); st != http.StatusOK {
		t.Errorf("a 4 KiB header: %d, want 200", st)
	}
	if st, _ := raw("/api/v1/projects", 64<<10); st != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 64 KiB header: %d, want net/http's 431", st)
	}
}

// TestOversizedBody: every dialect answers a body over its limit with 413
// in its own error body.
func TestOversizedBody(t *testing.T) {
	e := setup(t)
	p := e.proj.ID
	big := `{"name":"` + strings.Repeat("a", 1<<20+10) + `"}`
	auth := map[string]string{"Authorization": "Basic " + basic(e.pub, e.priv)}
	for _, c := range []struct{ name, path, ct, want string }{
		{"native", "/api/v1/projects", "application/json", `"code":"too_large"`},
		{"atlas", "/api/atlas/v2/groups", "application/json", `"errorCode":"BODY_TOO_LARGE"`},
		{"atlas oauth", "/api/oauth/token", formCT, `"error":"invalid_request"`},
		{"oms", "/api/omsp/v2/migrations?projectId=" + p, "application/json", `"code":"PAYLOAD_TOO_LARGE"`},
		{"dcs", "/v2/" + p + "/migration-task", "application/json", `"error_code":"DCS.4130"`},
		{"dcs iam", "/v3/auth/tokens", "application/json", `"error_code":"DCS.4130"`},
	} {
		st, _, body := e.post(t, c.path, c.ct, big, auth)
		if st != http.StatusRequestEntityTooLarge || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %.300s, want 413 with %s", c.name, st, body, c.want)
		}
	}
}

// TestLongHandlerOutlivesReadTimeout: ReadTimeout bounds reading the
// request, not serving it: a handler that takes longer still answers.
func TestLongHandlerOutlivesReadTimeout(t *testing.T) {
	e := setup(t)
	addr := serveLoopback(t, e, Config{ReadHeaderTimeout: 50 * time.Millisecond, ReadTimeout: 100 * time.Millisecond})
	res, err := http.Get("http://" + addr + "/test/slow") // 300 ms
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "slow done" {
		t.Fatalf("a 300 ms handler under a 100 ms ReadTimeout: %d %q", res.StatusCode, b)
	}
}
