package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestFitWidth(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abcdef", 4, "abc…"},
		{"a·b·c", 4, "a·b…"},
		{"abc", 0, ""},
		{"abc", -3, ""},
	} {
		if got := fitWidth(tc.in, tc.n); got != tc.want {
			t.Errorf("fitWidth(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestBarsKeepTheirBar: a step with a long message still draws its bar on a
// 120-column line (the width a non-terminal output renders at), as it does on
// an ordinary terminal.
func TestBarsKeepTheirBar(t *testing.T) {
	long := "full sync done: 1000 keys (0 filtered out), 0 functions, RDB v10 of 12944 bytes in 2ms, and then some more words"
	m := &migration{ID: "m1", Name: "sessions", State: "running", CurrentStep: "incremental", Steps: []step{
		{Name: "full", State: "done", Progress: 100, Counters: counters{Done: 1000, Total: 1000, Unit: "keys", Bytes: 13000}, Message: long},
		{Name: "incremental", State: "running", Message: long},
	}}
	w := &watcher{rates: map[string]*rate{}}
	w.set(m, time.Now())
	var out bytes.Buffer
	ui := newBarsUI(context.Background(), &out, w, m)
	ui.update(m)
	ui.finish(m)
	var full string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "full ") {
			full = line
		}
	}
	if !regexp.MustCompile(`\[={10,}`).MatchString(full) {
		t.Fatalf("no bar on the done step's line %q; output:\n%s", full, out.String())
	}
	if !strings.Contains(full, "1,000/1,000 keys") || !strings.Contains(full, "…") {
		t.Errorf("the line lost its counts or was not cut: %q", full)
	}
	if n := len([]rune(full)); n > 120 {
		t.Errorf("line of %d columns: %q", n, full)
	}
}
