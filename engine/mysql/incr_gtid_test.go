package mysql

import "testing"

// FuzzGTIDPos: a GTID position read back from a checkpoint or a marker
// row parses without panicking, and what it prints parses to itself (the
// position ferry resumes from is the one it recorded).
func FuzzGTIDPos(f *testing.F) {
	for _, s := range []string{"", "0-1-5", "0-1-5,1-2-9", " 0-1-5 , 3-3-3", "0-1-5,0-2-6", "x", "1-2", "-1-2-3", "4294967295-4294967295-18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g := parseGTIDPos(s)
		if g == nil {
			return
		}
		out := g.String()
		h := parseGTIDPos(out)
		if h == nil || h.String() != out {
			t.Fatalf("%q -> %q -> %v", s, out, h)
		}
		if len(h) != len(g) {
			t.Fatalf("%q: %d domains, reparsed %d", s, len(g), len(h))
		}
	})
}

func TestGTIDPos(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"0-1-5":         "0-1-5",
		"1-2-9, 0-1-5":  "0-1-5,1-2-9",
		"0-1-5,0-2-6":   "0-2-6", // one GTID per domain: the last one
		"0-1-5,garbage": "nil",
		"0-1-5,,1-1-1":  "0-1-5,1-1-1",
	} {
		g := parseGTIDPos(in)
		got := "nil"
		if g != nil {
			got = g.String()
		}
		if got != want {
			t.Errorf("parseGTIDPos(%q) = %q, want %q", in, got, want)
		}
	}
}
