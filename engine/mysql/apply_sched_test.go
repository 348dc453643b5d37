package mysql

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestSchedPlace drives the conflict scheduler's pure logic through a
// table of steps: each step either dispatches a transaction (its keys, or a
// barrier) and checks the worker it gets (-1: it must wait), or completes
// an in-flight transaction.
func TestSchedPlace(t *testing.T) {
	type step struct {
		finish  uint64   // complete this seq (0: dispatch)
		keys    []string // dispatch: conflict keys
		barrier bool
		want    int // dispatch: worker, or -1 to wait
	}
	cases := []struct {
		name     string
		workers  int
		maxQueue int
		fill     int
		steps    []step
	}{
		{"disjoint keys spread over the least loaded workers", 3, 10, 1, []step{
			{keys: []string{"a"}, want: 0},
			{keys: []string{"b"}, want: 1},
			{keys: []string{"c"}, want: 2},
			{keys: []string{"d"}, want: 0},
			{finish: 2},
			{keys: []string{"e"}, want: 1},
		}},
		{"a conflict follows the worker holding the key", 3, 10, 1, []step{
			{keys: []string{"a"}, want: 0},
			{keys: []string{"b"}, want: 1},
			{keys: []string{"a", "x"}, want: 0},
			{keys: []string{"x"}, want: 0}, // x is now owned by worker 0 (seq 3)
			{keys: []string{"b", "y"}, want: 1},
		}},
		{"conflicts on two workers wait until one is done", 2, 10, 1, []step{
			{keys: []string{"a"}, want: 0},
			{keys: []string{"b"}, want: 1},
			{keys: []string{"a", "b"}, want: -1},
			{finish: 1},
			{keys: []string{"a", "b"}, want: 1},
		}},
		{"a key is released only by its last transaction", 2, 10, 1, []step{
			{keys: []string{"k"}, want: 0},
			{keys: []string{"k"}, want: 0},
			{finish: 1},
			{keys: []string{"j"}, want: 1},
			{keys: []string{"k", "j"}, want: -1}, // k still held by seq 2 on worker 0
			{finish: 2},
			{keys: []string{"k", "j"}, want: 1},
		}},
		{"a barrier waits for everything in flight and runs alone", 2, 10, 1, []step{
			{keys: []string{"a"}, want: 0},
			{barrier: true, want: -1},
			{finish: 1},
			{barrier: true, want: 0},
		}},
		{"a full queue makes the reader wait", 2, 1, 1, []step{
			{keys: []string{"a"}, want: 0},
			{keys: []string{"b"}, want: 1},
			{keys: []string{"c"}, want: -1},
			{keys: []string{"a"}, want: -1},
			{finish: 1},
			{keys: []string{"a"}, want: 0},
		}},
		{"no keys (nothing to conflict on) still spread", 2, 10, 1, []step{
			{want: 0},
			{want: 1},
		}},
		{"a worker fills up to fill before the next joins in", 3, 10, 2, []step{
			{keys: []string{"a"}, want: 0},
			{keys: []string{"b"}, want: 0},
			{keys: []string{"c"}, want: 1},
			{keys: []string{"d"}, want: 1},
			{finish: 1},
			{keys: []string{"e"}, want: 0},
			{keys: []string{"f"}, want: 2},
			{keys: []string{"g"}, want: 2},
			{keys: []string{"h"}, want: 0}, // all full: the least loaded, lowest first
			{keys: []string{"b"}, want: 0}, // a conflict still follows its worker
			{keys: []string{"c", "i"}, want: 1},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSched(c.workers, c.maxQueue, c.fill)
			inflight := map[uint64]struct {
				t *txn
				w int
			}{}
			var seq uint64
			for i, st := range c.steps {
				if st.finish != 0 {
					f, ok := inflight[st.finish]
					if !ok {
						t.Fatalf("step %d: seq %d not in flight", i, st.finish)
					}
					s.finish(f.t, f.w)
					delete(inflight, st.finish)
					continue
				}
				tx := &txn{seq: seq + 1, keys: st.keys, barrier: st.barrier}
				got := s.place(tx)
				if got != st.want {
					t.Fatalf("step %d (keys %v barrier %v): worker %d, want %d", i, st.keys, st.barrier, got, st.want)
				}
				if got >= 0 {
					seq++
					s.assign(tx, got)
					inflight[tx.seq] = struct {
						t *txn
						w int
					}{tx, got}
				}
			}
			for _, f := range inflight {
				s.finish(f.t, f.w)
			}
			if s.total != 0 || len(s.owner) != 0 || !reflect.DeepEqual(s.load, make([]int, c.workers)) {
				t.Fatalf("after finishing everything: total %d, owners %v, load %v", s.total, s.owner, s.load)
			}
		})
	}
}

// TestConflictKeys: the primary key and every unique key, before and after
// images, NULLs skipped, strings of a collation folded.
func TestConflictKeys(t *testing.T) {
	tb := &table{DB: "d", Name: "t", Cols: []column{
		{Name: "id", DataType: "int"},
		{Name: "email", DataType: "varchar", Collation: "utf8mb4_general_ci"},
		{Name: "code", DataType: "varbinary"},
	}, Key: []int{0}}
	uniq := [][]int{{0}, {1}, {2}}
	up := &change{t: tb, kind: 'u', before: []any{int32(1), "A@x ", []byte("k")}, after: []any{int32(2), "a@x", nil}}
	got := conflictKeys(nil, tb, uniq, up)
	want := []string{"d.t\x000\x001", "d.t\x001\x00a@x", "d.t\x002\x00k", "d.t\x000\x002", "d.t\x001\x00a@x"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
	// Values that differ only around the separator stay apart.
	two := &table{DB: "d", Name: "t2", Cols: []column{{Name: "a", DataType: "varbinary"}, {Name: "b", DataType: "varbinary"}}, Key: []int{0, 1}}
	k1 := conflictKeys(nil, two, [][]int{{0, 1}}, &change{t: two, kind: 'i', before: []any{[]byte("a\x00"), []byte("b")}})
	k2 := conflictKeys(nil, two, [][]int{{0, 1}}, &change{t: two, kind: 'i', before: []any{[]byte("a"), []byte("\x00b")}})
	if k1[0] == k2[0] {
		t.Fatalf("distinct keys collide: %q", k1[0])
	}
	if fmt.Sprint(collapsible(tb), collapsible(&table{Cols: tb.Cols, Key: []int{1}}), collapsible(&table{Cols: tb.Cols})) != "true false false" {
		t.Fatal("collapsible: int key yes, collated string key no, key-less no")
	}
}

// TestTracker: the watermark passes only transactions whose predecessors
// are all done.
func TestTracker(t *testing.T) {
	var k tracker
	txs := make([]*txn, 5)
	for i := range txs {
		txs[i] = &txn{end: pos{File: "b.000001", Pos: uint32(100 * (i + 1))}}
		k.push(txs[i])
	}
	var passed []uint32
	f := func(t *txn) { passed = append(passed, t.end.Pos) }
	txs[1].done, txs[3].done = true, true
	k.advance(f)
	if len(passed) != 0 || k.pending() != 5 {
		t.Fatalf("passed %v with the first transaction open", passed)
	}
	txs[0].done = true
	k.advance(f)
	if !reflect.DeepEqual(passed, []uint32{100, 200}) || k.pending() != 3 {
		t.Fatalf("passed %v pending %d", passed, k.pending())
	}
	txs[2].done, txs[4].done = true, true
	k.advance(f)
	if !reflect.DeepEqual(passed, []uint32{100, 200, 300, 400, 500}) || k.pending() != 0 {
		t.Fatalf("passed %v pending %d", passed, k.pending())
	}
}

// TestLagOf: a change stamped at second s happened in [s, s+1) and no
// later than it was read.
func TestLagOf(t *testing.T) {
	at := time.Unix(1000, 0)
	ms := time.Millisecond
	for _, c := range []struct {
		recv, now time.Time
		want      time.Duration
	}{
		{time.Time{}, at.Add(2 * time.Second), 1500 * ms},                 // not known when read: the middle of the second
		{at.Add(900 * ms), at.Add(2 * time.Second), 1500 * ms},            // read late in the second: the middle
		{at.Add(100 * ms), at.Add(150 * ms), 50 * ms},                     // read early: no earlier than it was read
		{at.Add(100 * ms), at.Add(50 * ms), 0},                            // clocks apart: never negative
		{at.Add(-2 * time.Second), at.Add(-1 * time.Second), time.Second}, // source clock ahead: from when it was read
	} {
		if got := lagOf(at, c.recv, c.now); got != c.want {
			t.Errorf("lagOf(recv %v, now %v) = %v, want %v", c.recv.Sub(at), c.now.Sub(at), got, c.want)
		}
	}
}
