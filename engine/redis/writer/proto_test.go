package writer

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestCommandRoundTrip(t *testing.T) {
	cmds := [][][]byte{
		bs("SET", "k", "v"),
		{[]byte("SET"), []byte("\r\n\x00"), []byte("")},
		bs("PING"),
	}
	var buf []byte
	for _, c := range cmds {
		buf = appendCommand(buf, c)
	}
	buf = appendSelect(buf, 12)
	for i, c := range cmds {
		got := commandAt(buf, i)
		if len(got) != len(c) {
			t.Fatalf("command %d: %q", i, got)
		}
		for j := range c {
			if !bytes.Equal(got[j], c[j]) {
				t.Fatalf("command %d arg %d: %q", i, j, got[j])
			}
		}
	}
	if sel := commandAt(buf, 3); len(sel) != 2 || string(sel[0]) != "SELECT" || string(sel[1]) != "12" {
		t.Fatalf("select: %q", sel)
	}
	if commandAt(buf, 4) != nil {
		t.Fatal("past the end")
	}
}

func TestSkipReply(t *testing.T) {
	in := "+OK\r\n:12\r\n$3\r\nabc\r\n$-1\r\n*3\r\n+QUEUED\r\n-ERR inner\r\n*1\r\n$1\r\nx\r\n-WRONGTYPE bad\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	var nested []nestedErr
	for i, want := range []string{"", "", "", "", "", "WRONGTYPE bad"} {
		collect := i == 4
		msg, err := skipReply(r, collect, &nested)
		if err != nil || msg != want {
			t.Fatalf("reply %d: %q %v", i, msg, err)
		}
	}
	if len(nested) != 1 || nested[0].index != 1 || nested[0].msg != "ERR inner" {
		t.Fatalf("nested %+v", nested)
	}
	if _, err := skipReply(bufio.NewReader(strings.NewReader("?x\r\n")), false, nil); err == nil {
		t.Fatal("bad type accepted")
	}
}

// TestParseInt covers the integer parser of lengths and integer replies at
// the edges of int64 (Redis replies with -9223372036854775808, e.g. from
// DECRBY).
func TestParseInt(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"-1", -1, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"-9223372036854775808", -9223372036854775808, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"", 0, false}, {"-", 0, false}, {"+1", 0, false}, {"1 ", 0, false}, {"1a", 0, false},
	} {
		n, err := parseInt([]byte(c.in))
		if (err == nil) != c.ok || n != c.want {
			t.Errorf("parseInt(%q) = %d, %v; want %d, ok %v", c.in, n, err, c.want, c.ok)
		}
	}
}
