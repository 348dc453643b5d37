package main

import (
	"strings"
	"testing"
	"time"
)

func TestSyncBarAndLag(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	tests := []struct {
		name       string
		m          migration
		s          step
		cur, total int64
		text, lag  string
	}{
		{"backlog", migration{State: "running", CurrentStep: "incremental", LagSeconds: i64(12)},
			step{Name: "incremental", State: "running", Counters: counters{Bytes: 300, LagBytes: 100}}, 300, 400, "backlog 100 B, lag 12s", "lag 12s"},
		{"caught up", migration{State: "running", CurrentStep: "incremental", LagSeconds: i64(0)},
			step{Name: "incremental", State: "running", Counters: counters{Bytes: 300}}, 300, 300, "no backlog, lag 0s", "lag 0s"},
		{"rows, in sync", migration{State: "running", CurrentStep: "incremental", LagSeconds: i64(1)},
			step{Name: "incremental", State: "running", Counters: counters{Ops: 40, Unit: "rows"}}, 1, 1, "lag 1s", "lag 1s"},
		{"rows, behind", migration{State: "running", CurrentStep: "incremental", LagSeconds: i64(20)},
			step{Name: "incremental", State: "running", Counters: counters{Ops: 40, Unit: "rows"}}, 5, 20, "lag 20s", "lag 20s"},
		{"paused", migration{State: "paused", CurrentStep: "incremental"},
			step{Name: "incremental", State: "running", Counters: counters{Ops: 40}}, 0, 1, "lag unknown (paused)", "lag unknown (paused)"},
		{"not measured", migration{State: "running", CurrentStep: "incremental"},
			step{Name: "incremental", State: "running"}, 0, 1, "lag unknown (not measured yet)", "lag unknown (not measured yet)"},
		{"done", migration{State: "completed"}, step{Name: "incremental", State: "done"}, 1, 1, "", ""},
	}
	for _, tt := range tests {
		cur, total := barValues(&tt.m, tt.s)
		if cur != tt.cur || total != tt.total {
			t.Errorf("%s: bar %d/%d, want %d/%d", tt.name, cur, total, tt.cur, tt.total)
		}
		if got := syncText(&tt.m, tt.s); got != tt.text {
			t.Errorf("%s: text %q, want %q", tt.name, got, tt.text)
		}
		if got := tt.m.lagText(); got != tt.lag {
			t.Errorf("%s: lag %q, want %q", tt.name, got, tt.lag)
		}
	}
	// A copy step keeps its counters' bar.
	if cur, total := barValues(&migration{}, step{Name: "full", Progress: 50, Counters: counters{Done: 5, Total: 10}}); cur != 5 || total != 10 {
		t.Errorf("full bar %d/%d", cur, total)
	}
	w := &watcher{rates: map[string]*rate{}}
	w.set(&migration{Name: "j", State: "running", CurrentStep: "incremental", Steps: []step{{Name: "incremental", State: "running", Counters: counters{Ops: 7, Unit: "rows", LagBytes: 2048}}}}, time.Now())
	if s := w.stats("incremental"); !strings.Contains(s, "7 rows applied") || !strings.Contains(s, "backlog 2.0 KiB") {
		t.Errorf("stats %q", s)
	}
}
