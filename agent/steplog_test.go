package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// TestStepDoneLogCarriesCounts checks that a "step done" line says how much
// the step moved and how long it took.
func TestStepDoneLogCarriesCounts(t *testing.T) {
	eng := &countEngine{Items: 20, ItemDelay: time.Millisecond}
	f := newFixture(t, openSQLite(t), eng)
	m := f.create(t, ferry.Modes{Full: true})
	logs := &lockedBuffer{}
	a := agent.New(agent.Config{ID: "agent-log", Store: f.store, Registry: f.reg, Service: f.svc,
		Logger:   slog.New(slog.NewJSONHandler(logs, nil)),
		LeaseTTL: 2 * time.Second, PollInterval: 20 * time.Millisecond, Now: f.clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	f.waitFor(t, m.ID, "completed", func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })

	var full map[string]any
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if line["msg"] == "step done" && line["step"] == string(ferry.StepFull) {
			full = line
		}
	}
	if full == nil {
		t.Fatalf("no \"step done\" line for the full step in:\n%s", logs.Bytes())
	}
	if full["done"] != float64(20) || full["total"] != float64(20) || full["unit"] != "keys" {
		t.Errorf("step done line counts: %v", full)
	}
	if d, ok := full["duration"].(float64); !ok || d <= 0 {
		t.Errorf("step done line duration: %v", full)
	}
}
