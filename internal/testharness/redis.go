package testharness

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const installRedis = "apt-get install -y redis-server"

// StartRedis starts a redis-server of its own for the test, without
// persistence (--save "" --appendonly no), on a random loopback port, and
// returns its address (127.0.0.1:PORT). t.Cleanup stops it and removes its
// directory. extraArgs are added to the command line (for example
// "--requirepass", "secret").
//
// When redis-server is not installed the test is skipped (fails with CI=true).
func StartRedis(t testing.TB, extraArgs ...string) string {
	t.Helper()
	return StartRedisServer(t, extraArgs...).Addr
}

// RedisServer is a redis-server started by StartRedisServer.
type RedisServer struct {
	Addr string // 127.0.0.1:PORT
	Port int
	Dir  string // its working directory (--dir)
	p    *proc
}

// Kill stops the server at once with SIGKILL, as a crash would.
func (s *RedisServer) Kill() { s.p.stop(syscall.SIGKILL, time.Second) }

// Stop shuts the server down with SIGTERM.
func (s *RedisServer) Stop() { s.p.stop(syscall.SIGTERM, 5*time.Second) }

// StartRedisServer is StartRedis for tests that also need to stop or kill
// the server themselves.
func StartRedisServer(t testing.TB, extraArgs ...string) *RedisServer {
	t.Helper()
	bin := findBinary([]string{"redis-server"}, "/usr/bin", "/usr/local/bin", "/usr/sbin")
	if bin == "" {
		unavailable(t, "Redis", "no redis-server on PATH or in /usr/bin", installRedis)
		return nil
	}
	dir, err := tempDir("redis")
	if err != nil {
		t.Fatalf("testharness: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	password := ""
	for i, a := range extraArgs {
		if a == "--requirepass" && i+1 < len(extraArgs) {
			password = extraArgs[i+1]
		}
	}

	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testharness: %v", err)
		}
		args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--daemonize", "no", "--logfile", ""}, extraArgs...)
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, baseEnv()
		p, err := startProc(cmd, filepath.Join(dir, fmt.Sprintf("redis-%d.log", attempt)), syscall.SIGKILL)
		if err != nil {
			t.Fatalf("testharness: start Redis: %v", err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		err = waitReady(p, 30*time.Second, func() error { return redisPing(addr, password) })
		if err == nil {
			s := &RedisServer{Addr: addr, Port: port, Dir: dir, p: p}
			t.Cleanup(s.Stop)
			return s
		}
		p.stop(syscall.SIGKILL, time.Second)
		if attempt < 4 && portInUse(p) {
			continue
		}
		t.Fatalf("testharness: start Redis: %v", err)
	}
}

// redisPing sends PING (after AUTH when password is set) and wants PONG.
func redisPing(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	if password != "" {
		fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password)
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("AUTH: %s", strings.TrimSpace(line))
		}
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING: %s", strings.TrimSpace(line))
	}
	return nil
}
