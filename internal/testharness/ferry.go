package testharness

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

var (
	ferryOnce sync.Once
	ferryBin  string
	ferryErr  error
)

// FerryBinary builds cmd/ferry once per test binary and returns its path.
func FerryBinary(t testing.TB) string {
	t.Helper()
	ferryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-bin")
		if err != nil {
			ferryErr = err
			return
		}
		ferryBin = filepath.Join(dir, "ferry")
		out, err := exec.Command("go", "build", "-o", ferryBin, "github.com/ferrymigrate/ferry/cmd/ferry").CombinedOutput()
		if err != nil {
			ferryErr = fmt.Errorf("go build ./cmd/ferry: %v\n%s", err, out)
		}
	})
	if ferryErr != nil {
		t.Fatal(ferryErr)
	}
	return ferryBin
}

// StartFerryAgent runs `ferry agent --store storeURL` as a process of its
// own (lease 2s, poll 100ms), so a test can kill it with KillProcess. Its
// log is shown when the test fails; t.Cleanup kills it.
func StartFerryAgent(t testing.TB, storeURL, id string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(FerryBinary(t), "agent", "--store", storeURL, "--agent-id", id, "--lease-ttl", "2s", "--poll-interval", "100ms", "--log-level", "info",
		"--secret-key-file", secretKeyFile(t, storeURL))
	logf, err := os.Create(filepath.Join(t.TempDir(), id+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log:\n%s", id, b)
		}
	})
	return cmd
}

var (
	secretKeysMu sync.Mutex
	secretKeys   = map[string]string{}
)

// secretKeyFile is the secret key file (mode 0600, in a temp dir) that
// every agent of storeURL shares, as the agents of one store must.
func secretKeyFile(t testing.TB, storeURL string) string {
	t.Helper()
	secretKeysMu.Lock()
	defer secretKeysMu.Unlock()
	if p, ok := secretKeys[storeURL]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "ferry-key")
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "secret.key")
	if err := os.WriteFile(p, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secretKeys[storeURL] = p
	return p
}

// KillProcess sends SIGKILL (kill -9) and reaps the process.
func KillProcess(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = cmd.Process.Wait()
}
