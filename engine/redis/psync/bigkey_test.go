package psync_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/internal/redistest"
)

// TestBigKeys moves a 50 MB hash and a 1M-element list and checks that the
// agent's heap stays well below the size of one key: the RDB arrives in
// chunks and the writer's queue is bounded.
func TestBigKeys(t *testing.T) {
	e := redistest.NewEnv(t, "--repl-diskless-sync-delay", "0")
	ctx := context.Background()
	val := strings.Repeat("v", 1000)
	for i := 0; i < 50; i++ {
		pipe := e.SrcC.Pipeline()
		for j := 0; j < 1000; j++ {
			pipe.HSet(ctx, "big:hash", fmt.Sprintf("field:%d:%d", i, j), val)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		args := []any{"RPUSH", "big:list"}
		for j := 0; j < 10000; j++ {
			args = append(args, i*10000+j)
		}
		if err := e.SrcC.Do(ctx, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The live heap (what the last GC found reachable) is what holding a
	// key whole would show; HeapAlloc also counts garbage not yet
	// collected, which depends on GC timing and made this flaky. A low GOGC
	// keeps collections frequent so the samples see the peak.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := live()
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if v := live(); v > peak.Load() {
				peak.Store(v)
			}
		}
	}()
	m := e.Create(ferry.Modes{Full: true, Verify: true}, ferry.Options{})
	e.Agent("agent-1")
	m = e.Wait(m.ID, "completed", 120*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	close(stop)
	v := m.Step(ferry.StepVerify)
	if v.Counters.Done != 2 || v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 {
		t.Fatalf("verify %+v: %s", v.Counters, v.Message)
	}
	if n, _ := e.DstC.LLen(ctx, "big:list").Result(); n != 1_000_000 {
		t.Fatalf("list length %d", n)
	}
	if a, b := redistest.Digest(t, e.SrcC), redistest.Digest(t, e.DstC); a != b {
		t.Fatalf("DEBUG DIGEST differs")
	}
	grown := int64(peak.Load()) - int64(base)
	full := m.Step(ferry.StepFull)
	t.Logf("50 MB hash + 1M-element list: RDB %d bytes in %s; test process live heap peak %d MB above its start (%d MB)",
		full.Counters.Bytes, full.FinishedAt.Sub(*full.StartedAt).Round(time.Millisecond), grown>>20, base>>20)
	// The whole process (agent, store, test) must not hold a big key whole.
	if grown > 30<<20 {
		t.Fatalf("heap grew by %d MB while moving a 50 MB key", grown>>20)
	}
}
