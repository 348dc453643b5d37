package testharness

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The S3-compatible server the harness runs: Versity's versitygw, a real S3
// gateway (Apache-2.0, written in Go) serving a POSIX directory, in a
// process of its own. It is not a module dependency of ferry: the harness
// builds the binary once with `go install` (from the Go module proxy or the
// module cache) into the user's cache directory and reuses it.
const (
	versitygwPkg     = "github.com/versity/versitygw/cmd/versitygw"
	versitygwVersion = "v1.8.0"
	installS3        = "go install " + versitygwPkg + "@" + versitygwVersion + " (and put it on PATH, or set FERRY_VERSITYGW to the binary)"
)

var (
	versitygwOnce sync.Once
	versitygwBin  string
	versitygwErr  string
)

// versitygw returns the binary: $FERRY_VERSITYGW, versitygw on PATH, or the
// harness's cached build (built on first use).
func versitygw() (string, string) {
	versitygwOnce.Do(func() {
		if p := os.Getenv("FERRY_VERSITYGW"); p != "" {
			if st, err := os.Stat(p); err != nil || st.IsDir() {
				versitygwErr = fmt.Sprintf("FERRY_VERSITYGW=%s is not a binary", p)
				return
			}
			versitygwBin = p
			return
		}
		if p, err := exec.LookPath("versitygw"); err == nil {
			versitygwBin = p
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "ferry-testharness", "versitygw-"+versitygwVersion)
		bin := filepath.Join(dir, "versitygw")
		if st, err := os.Stat(bin); err == nil && st.Mode()&0o111 != 0 {
			versitygwBin = bin
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			versitygwErr = "no versitygw binary and no go command to build one"
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			versitygwErr = err.Error()
			return
		}
		// One build at a time across test binaries.
		lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			versitygwErr = err.Error()
			return
		}
		defer lock.Close()
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			versitygwErr = err.Error()
			return
		}
		defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		if st, err := os.Stat(bin); err == nil && st.Mode()&0o111 != 0 {
			versitygwBin = bin // built by another test binary meanwhile
			return
		}
		cmd := exec.Command(goBin, "install", versitygwPkg+"@"+versitygwVersion)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
		if err := run(cmd); err != nil {
			versitygwErr = "building it failed: " + err.Error()
			return
		}
		versitygwBin = bin
	})
	return versitygwBin, versitygwErr
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StartS3 starts an S3-compatible server of its own for the test (versitygw
// with its POSIX backend on a temporary directory, single-account mode) on a
// random loopback port, and returns its endpoint (127.0.0.1:PORT, plain
// HTTP, region us-east-1) and the root account's access and secret keys.
// t.Cleanup stops it and removes its files. Buckets are made by the test
// (MakeBucket).
//
// The first call builds versitygw v1.8.0 with `go install` into the user's
// cache directory (about two minutes on two cores), unless FERRY_VERSITYGW
// names a binary or versitygw is on PATH. When it cannot be had the test is
// skipped (fails with CI=true).
func StartS3(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	bin, why := versitygw()
	if bin == "" {
		unavailable(t, "an S3-compatible server (versitygw "+versitygwVersion+")", why, installS3)
		return "", "", ""
	}
	dir, err := tempDir("s3")
	if err != nil {
		t.Fatalf("testharness: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	root := filepath.Join(dir, "data")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	accessKey, secretKey = "ferry"+randomHex(6), randomHex(20)
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testharness: %v", err)
		}
		endpoint = "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(bin, "--port", endpoint, "--region", "us-east-1", "--quiet", "posix", root)
		cmd.Dir = dir
		// The keys go through the environment, not the command line.
		cmd.Env = append(baseEnv(), "ROOT_ACCESS_KEY_ID="+accessKey, "ROOT_SECRET_ACCESS_KEY="+secretKey, "HOME="+dir)
		p, err := startProc(cmd, filepath.Join(dir, fmt.Sprintf("versitygw-%d.log", attempt)), syscall.SIGKILL)
		if err != nil {
			t.Fatalf("testharness: start versitygw: %v", err)
		}
		err = waitReady(p, 30*time.Second, func() error { return httpUp(endpoint) })
		if err == nil {
			t.Cleanup(func() { p.stop(syscall.SIGTERM, 5*time.Second) })
			return endpoint, accessKey, secretKey
		}
		p.stop(syscall.SIGKILL, time.Second)
		if attempt < 4 && (portInUse(p) || strings.Contains(strings.ToLower(p.logTail()), "bind")) {
			continue
		}
		t.Fatalf("testharness: start versitygw: %v", err)
	}
}

// httpUp reports whether an HTTP server answers at addr (any status).
func httpUp(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	c.Close()
	cl := &http.Client{Timeout: 2 * time.Second}
	res, err := cl.Get("http://" + addr + "/")
	if err != nil {
		return err
	}
	res.Body.Close()
	return nil
}
