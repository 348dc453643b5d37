package mysql

import (
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

func TestWriteBlockOption(t *testing.T) {
	tests := []struct {
		v       string
		reverse bool
		want    string
		err     string
	}{
		{"", false, writeBlockNone, ""},
		{"none", false, writeBlockNone, ""},
		{"read_only", false, writeBlockReadOnl, ""},
		{"read_only", true, "", "cannot be combined with reverse incremental sync"},
		{"none", true, writeBlockNone, ""},
		{"ftwrl", false, "", "must be none"},
	}
	e := New(nil)
	for _, tt := range tests {
		m := &ferry.Migration{Engine: ferry.KindMySQL, Source: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{"a:1"}}, Target: ferry.Endpoint{Addrs: []string{"b:1"}},
			Modes: ferry.Modes{Full: true, Incremental: true, ReverseIncremental: tt.reverse}, Options: ferry.Options{Extra: map[string]string{optWriteBlock: tt.v}}}
		got, err := writeBlock(m)
		cerr := e.Check(m)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || ferry.ErrorCode(cerr) != ferry.EINVALID {
				t.Errorf("%q reverse=%v: %v / Check %v, want %q", tt.v, tt.reverse, err, cerr, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want || cerr != nil {
			t.Errorf("%q reverse=%v: %q %v / Check %v", tt.v, tt.reverse, got, err, cerr)
		}
		plan := e.CutoverPlan(m)
		if (got == writeBlockReadOnl) != strings.Contains(plan, "read-only") {
			t.Errorf("%q: plan %q", tt.v, plan)
		}
	}
}
