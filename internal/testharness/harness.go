// Package testharness starts real database servers for ferry's tests:
// PostgreSQL (StartPostgres), Redis (StartRedis) and MariaDB (StartMariaDB),
// each on a random loopback port with its files in a temporary directory.
//
// When a server's binaries are missing the test is skipped with a message
// saying what to install, unless the environment has CI=true: then it fails,
// so CI never passes by skipping.
//
// Servers run with the parent-death signal set, so they go away when the
// test binary exits however it exits; temporary directories a killed test
// binary left behind are removed by the next harness that starts. PostgreSQL
// is shared by all tests of a test binary (each call gets a fresh database);
// Redis and MariaDB start one server per call, stopped by t.Cleanup.
package testharness

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the environment says this is CI (CI=true), where a
// missing server fails a test instead of skipping it.
func InCI() bool { return strings.EqualFold(os.Getenv("CI"), "true") }

// unavailable skips the test (fails it under CI=true) because a server is
// not installed.
func unavailable(t testing.TB, server, detail, install string) {
	t.Helper()
	if InCI() {
		t.Fatalf("testharness: %s is not installed (%s) and CI=true forbids skipping; install it: %s", server, detail, install)
		return
	}
	t.Skipf("testharness: %s is not installed (%s); install it to run this test: %s", server, detail, install)
}

// findBinary returns the first of names found on PATH or in dirs.
func findBinary(names []string, dirs ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	for _, d := range dirs {
		for _, n := range names {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

const dirPrefix = "ferry-testharness-"

// tempDir makes a short-named directory (unix socket paths must stay under
// about 100 bytes) under the system temp dir, world-traversable (0755) so
// that a server running as another user can reach its files. Its name
// carries this process's pid so that sweepStale can tell when it leaked.
func tempDir(kind string) (string, error) {
	base := os.TempDir()
	if os.Geteuid() == 0 && !traversable(base) {
		base = "/tmp"
	}
	sweepStale(base)
	dir, err := os.MkdirTemp(base, fmt.Sprintf("%s%s-%d-", dirPrefix, kind, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("make temp dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("chmod temp dir: %w", err)
	}
	return dir, nil
}

// traversable reports whether every directory from dir up is searchable by
// others.
func traversable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

var sweepOnce sync.Once

// sweepStale removes the harness directories of processes that are gone
// (test binaries that were killed before they could clean up).
func sweepStale(base string) {
	sweepOnce.Do(func() {
		ents, err := os.ReadDir(base)
		if err != nil {
			return
		}
		for _, e := range ents {
			name := e.Name()
			if !e.IsDir() || !strings.HasPrefix(name, dirPrefix) {
				continue
			}
			parts := strings.Split(strings.TrimPrefix(name, dirPrefix), "-")
			if len(parts) < 3 {
				continue
			}
			pid, err := strconv.Atoi(parts[1])
			if err != nil || pid <= 0 || pid == os.Getpid() {
				continue
			}
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				_ = os.RemoveAll(filepath.Join(base, name))
			}
		}
	})
}

// proc is a server process started by the harness.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed
	log  string        // the file its output goes to
}

// startProc starts cmd with its output in logPath. The process gets sig
// when this test binary dies: the start happens on an OS thread that stays
// locked to a goroutine waiting for the process, and Linux's parent-death
// signal fires when that thread ends, which is only when the process ends.
func startProc(cmd *exec.Cmd, logPath string, sig syscall.Signal) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = sig
	cmd.SysProcAttr.Setpgid = true // keep terminal signals (^C) for the test binary to handle
	p := &proc{cmd: cmd, done: make(chan struct{}), log: logPath}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		err := cmd.Start()
		started <- err
		if err == nil {
			p.err = cmd.Wait()
		}
		f.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to grace for the process to exit, then kills it.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// logTail returns the last lines of the process's log, for error messages.
func (p *proc) logTail() string { return tail(p.log, 30) }

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitReady polls ready every 50ms until it succeeds, the process exits or
// timeout passes.
func waitReady(p *proc, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = ready(); last == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("the server exited (%v) before it accepted connections; log:\n%s", p.err, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not accept connections within %v (last error: %v); log:\n%s", timeout, last, p.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// portInUse reports whether a server's log says its port was taken (another
// process grabbed the free port first).
func portInUse(p *proc) bool {
	b, _ := os.ReadFile(p.log)
	s := strings.ToLower(string(b))
	return strings.Contains(s, "address already in use") || strings.Contains(s, "could not bind") || strings.Contains(s, "do you already have another")
}

// runAs sets cmd to run as user u; nil leaves it as it is.
func runAs(cmd *exec.Cmd, u *user.User) {
	if u == nil {
		return
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	cmd.Env = append(cmd.Env, "HOME="+u.HomeDir, "USER="+u.Username, "LOGNAME="+u.Username)
}

// run runs cmd and returns its combined output in the error when it fails.
func run(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return nil
}

// baseEnv is the environment servers start with.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "LANG=C", "LC_ALL=C", "TZ=UTC"}
}
