package scan

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry/engine/redis/rdb"
)

// SetScanPayloadHook makes the scan mode rewrite each DUMP payload (tests
// of the type-specific fallbacks); the returned func undoes it.
func SetScanPayloadHook(h func([]byte) []byte) func() {
	old := scanPayloadHook
	scanPayloadHook = h
	return func() { scanPayloadHook = old }
}

func isStreamPayload(p []byte) bool { return rdb.Type(p[0]).Kind() == rdb.KindStream }

// BumpPayloadVersion rewrites a payload (not a stream's) as if a newer
// Redis had produced it: RDB version + 1, checksum recomputed.
func BumpPayloadVersion(p []byte) []byte {
	if isStreamPayload(p) {
		return p
	}
	q := append([]byte(nil), p[:len(p)-8]...)
	v := binary.LittleEndian.Uint16(q[len(q)-2:])
	binary.LittleEndian.PutUint16(q[len(q)-2:], v+1)
	return binary.LittleEndian.AppendUint64(q, rdb.CRC64(0, q))
}

// ZeroPayloadChecksum clears a payload's (not a stream's) checksum: Redis
// refuses it ("DUMP payload version or checksum are wrong"), package rdb
// reads it (a zero checksum is not checked).
func ZeroPayloadChecksum(p []byte) []byte {
	if isStreamPayload(p) {
		return p
	}
	q := append([]byte(nil), p...)
	clear(q[len(q)-8:])
	return q
}

func TestChangeQueue(t *testing.T) {
	q := newChangeQueue(3)
	t0 := time.Unix(100, 0)
	q.add(qkey{0, "a"}, t0)
	q.add(qkey{0, "b"}, t0.Add(time.Second))
	q.add(qkey{0, "a"}, t0.Add(2*time.Second)) // already queued
	q.add(qkey{1, "a"}, t0.Add(3*time.Second)) // another db
	if q.len() != 3 {
		t.Fatalf("len %d", q.len())
	}
	if at, _ := q.oldest(); !at.Equal(t0) {
		t.Fatalf("oldest %v", at)
	}
	got := q.take(2)
	if len(got) != 2 || got[0].k != (qkey{0, "a"}) || got[1].k != (qkey{0, "b"}) {
		t.Fatalf("take %v", got)
	}
	// Changed again after being taken: queued again, behind the others.
	q.add(qkey{0, "a"}, t0.Add(4*time.Second))
	// A failed write puts the taken keys back in front (not twice).
	q.requeue(got)
	var order []qkey
	for _, e := range q.take(10) {
		order = append(order, e.k)
	}
	want := []qkey{{0, "b"}, {1, "a"}, {0, "a"}}
	if len(order) != len(want) {
		t.Fatalf("order %v", order)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	// Overflow: more distinct keys than the bound.
	for i := 0; i < 5; i++ {
		q.add(qkey{0, string(rune('a' + i))}, t0)
	}
	if !q.overflowed() {
		t.Fatal("no overflow")
	}
	q.reset()
	if q.overflowed() || q.len() != 0 {
		t.Fatal("reset")
	}
}

func TestNotifyFlags(t *testing.T) {
	for flags, ok := range map[string]bool{"": false, "KA": true, "AK": true, "AKE": true, "EA": false, "Kg$lshzxet": true, "Kg$lshzx": false, "K": false} {
		if notifyFlagsOK(flags) != ok {
			t.Errorf("notifyFlagsOK(%q) = %v", flags, !ok)
		}
	}
	for v, want := range map[string]int{"7.0.15": 10, "7.2.4": 11, "7.4.1": 12, "6.2.14": 9, "5.0.7": 9, "4.0.14": 8, "3.2.12": 7, "8.0.0": 0, "": 0} {
		if got := rdbVersionOf(v); got != want {
			t.Errorf("rdbVersionOf(%q) = %d, want %d", v, got, want)
		}
	}
}
