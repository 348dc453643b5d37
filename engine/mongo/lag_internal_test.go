package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ferrymigrate/ferry"
)

func tsAt(t, i uint32) bson.Timestamp { return bson.Timestamp{T: t, I: i} }

// lagRecorder is a StepRuntime that records the lags reported.
type lagRecorder struct {
	mu   sync.Mutex
	lags []time.Duration
}

func (r *lagRecorder) Checkpoint() json.RawMessage                 { return nil }
func (r *lagRecorder) Progress(ferry.Counters, float64)            {}
func (r *lagRecorder) Message(string)                              {}
func (r *lagRecorder) Save(context.Context, json.RawMessage) error { return nil }
func (r *lagRecorder) Cutover() <-chan struct{}                    { return nil }
func (r *lagRecorder) Logger() *slog.Logger                        { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func (r *lagRecorder) AgentID() string                             { return "test" }
func (r *lagRecorder) Lag(lag time.Duration, appliedAt time.Time) {
	r.mu.Lock()
	r.lags = append(r.lags, lag)
	r.mu.Unlock()
}

func (r *lagRecorder) all() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.lags...)
}

// TestKeepLagGrowsWhileApplyStalls: while a batch applies, the lag
// reported is the age of its oldest change and keeps growing; it stops
// when the apply returns.
func TestKeepLagGrowsWhileApplyStalls(t *testing.T) {
	rt := &lagRecorder{}
	first := time.Now().Add(-3 * time.Second)
	stop := keepLag(rt, first, first, 0)
	time.Sleep(4 * lagTick)
	stop()
	got := rt.all()
	if len(got) < 3 {
		t.Fatalf("%d lag reports during a stalled apply, want several: %v", len(got), got)
	}
	for i, l := range got {
		if l < 3*time.Second {
			t.Fatalf("report %d: lag %s, want at least the 3 s age of the oldest change", i, l)
		}
		if i > 0 && l <= got[i-1] {
			t.Fatalf("lag did not grow: %v", got)
		}
	}
	n := len(got)
	time.Sleep(2 * lagTick)
	if len(rt.all()) != n {
		t.Fatal("lag reported after the apply returned")
	}
	// A lag known before the batch is kept when it is larger.
	rt2 := &lagRecorder{}
	keepLag(rt2, time.Time{}, time.Time{}, 42*time.Second)()
	if l := rt2.all(); len(l) != 1 || l[0] != 42*time.Second {
		t.Fatalf("lags %v, want [42s]", l)
	}
}

// fakeReader answers behind with a fixed answer.
type fakeReader struct {
	behindAt position
	oldest   time.Time
	err      error
	calls    int
	mu       sync.Mutex
}

func (f *fakeReader) next(ctx context.Context) (readResult, error) { return readResult{}, nil }
func (f *fakeReader) close()                                       {}
func (f *fakeReader) behind(ctx context.Context, at position) (bool, time.Time, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if f.err != nil {
		return true, time.Time{}, f.err
	}
	return !tsIsZero(f.behindAt.TS) && tsLess(at.TS, f.behindAt.TS), f.oldest, nil
}

// TestProber: a probe's answer is for the position it probed; one probe
// runs at a time; errors are answers too.
func TestProber(t *testing.T) {
	ctx := context.Background()
	waitResult := func(p *prober) probeResult {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if res, ok := p.result(); ok && p.running == nil {
				return res
			}
		}
		t.Fatal("no probe answer")
		return probeResult{}
	}
	at := position{TS: tsAt(100, 1)}
	r := &fakeReader{behindAt: position{TS: tsAt(100, 5)}, oldest: time.Unix(100, 0)}
	p := &prober{every: 10 * time.Millisecond}
	p.start(ctx, r, at)
	p.start(ctx, r, at) // one at a time
	res := waitResult(p)
	if !res.behind || res.at.TS != at.TS || !res.oldest.Equal(time.Unix(100, 0)) || r.calls != 1 {
		t.Fatalf("behind: %+v, %d calls", res, r.calls)
	}
	// Caught up at a later position.
	time.Sleep(20 * time.Millisecond)
	at2 := position{TS: tsAt(100, 5)}
	p.start(ctx, r, at2)
	if res = waitResult(p); res.behind || res.at.TS != at2.TS {
		t.Fatalf("caught up: %+v", res)
	}
	// A confirmed position is not probed again at once.
	calls := r.calls
	time.Sleep(20 * time.Millisecond)
	p.start(ctx, r, at2)
	if p.running != nil || r.calls != calls {
		t.Fatal("a confirmed position was probed again before 5*every")
	}
	// Errors come back as answers.
	r2 := &fakeReader{err: errors.New("boom")}
	p2 := &prober{every: time.Millisecond}
	p2.start(ctx, r2, at)
	if res := waitResult(p2); res.err == nil {
		t.Fatalf("error lost: %+v", res)
	}
}
