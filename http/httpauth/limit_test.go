package httpauth

import (
	"testing"
	"time"
)

func TestLimiterTake(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := NewLimiter(2, 3) // 2/s, burst 3
	steps := []struct {
		at        time.Duration
		key       string
		ok        bool
		remaining int
		wait      time.Duration
	}{
		{0, "a", true, 2, 0},
		{0, "a", true, 1, 0},
		{0, "a", true, 0, 0},
		{0, "a", false, 0, 500 * time.Millisecond},
		{0, "b", true, 2, 0}, // buckets are per key
		{250 * time.Millisecond, "a", false, 0, 250 * time.Millisecond},
		{500 * time.Millisecond, "a", true, 0, 0},
		{10 * time.Second, "a", true, 2, 0}, // refills up to the burst, not beyond
	}
	for i, s := range steps {
		ok, rem, wait := l.Take(s.key, t0.Add(s.at))
		if ok != s.ok || rem != s.remaining || wait != s.wait {
			t.Errorf("step %d (%s at %v): got %v %d %v, want %v %d %v", i, s.key, s.at, ok, rem, wait, s.ok, s.remaining, s.wait)
		}
	}
	l.prune(t0.Add(time.Hour))
	if len(l.buckets) != 0 {
		t.Errorf("prune kept %d full buckets", len(l.buckets))
	}
}
