package kit

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

func TestFilter(t *testing.T) {
	m := &ferry.Migration{Options: ferry.Options{Filters: ferry.Filters{
		IncludeDBs: []string{"0", "2"}, Renames: map[string]string{"2": "5"},
		IncludeKeys: []string{"user:"}, ExcludeKeys: []string{"re:^user:tmp"}}}}
	f, err := NewFilter(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		db, to int
		ok     bool
	}{{0, 0, true}, {1, 0, false}, {2, 5, true}} {
		if to, ok := f.DB(tc.db); ok != tc.ok || ok && to != tc.to {
			t.Errorf("DB(%d) = %d, %v", tc.db, to, ok)
		}
	}
	for key, want := range map[string]bool{"user:1": true, "user:tmp1": false, "order:1": false} {
		if f.Key([]byte(key)) != want {
			t.Errorf("Key(%q) != %v", key, want)
		}
	}
	if !f.DBsFiltered() || !f.Remaps() || !f.KeysFiltered() {
		t.Errorf("filtered %v remaps %v keys %v", f.DBsFiltered(), f.Remaps(), f.KeysFiltered())
	}
	if p, ok := f.OnlyPrefix(); !ok || p != "user:" {
		t.Errorf("OnlyPrefix = %q, %v", p, ok)
	}
	m.Options.Filters.IncludeKeys = []string{"re:^a"}
	if f, _ = NewFilter(m); f != nil {
		if _, ok := f.OnlyPrefix(); ok {
			t.Error("a regular expression is not a prefix")
		}
	}
	for _, bad := range []ferry.Filters{{IncludeDBs: []string{"x"}}, {Renames: map[string]string{"0": "a"}}, {IncludeKeys: []string{"re:("}}} {
		if _, err := NewFilter(&ferry.Migration{Options: ferry.Options{Filters: bad}}); ferry.ErrorCode(err) != ferry.EINVALID {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	cluster := &ferry.Migration{Target: ferry.Endpoint{Cluster: true}, Options: ferry.Options{Filters: ferry.Filters{Renames: map[string]string{"0": "1"}}}}
	if _, err := NewFilter(cluster); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Errorf("cluster target remap to db 1: %v", err)
	}
}

type closer struct{ closed atomic.Int32 }

func (c *closer) Close() { c.closed.Add(1) }

func TestParking(t *testing.T) {
	var p Parking
	a, b := &closer{}, &closer{}
	p.Park("job", a, time.Minute)
	p.Park("job", a, time.Minute) // parking the same link again keeps it open
	if a.closed.Load() != 0 {
		t.Fatal("re-parked link closed")
	}
	p.Park("job", b, time.Minute) // another link for the job closes the first
	if a.closed.Load() != 1 || p.Len() != 1 {
		t.Fatalf("closed %d, len %d", a.closed.Load(), p.Len())
	}
	if got := p.Take("job"); got != b || p.Take("job") != nil || b.closed.Load() != 0 {
		t.Fatalf("Take = %v", got)
	}
	p.Park("job", b, time.Minute)
	p.Drop("job")
	p.Drop("job")
	if b.closed.Load() != 1 || p.Len() != 0 {
		t.Fatalf("Drop: closed %d len %d", b.closed.Load(), p.Len())
	}
	c := &closer{}
	p.Park("other", c, 20*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for c.closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if c.closed.Load() != 1 || p.Take("other") != nil {
		t.Fatalf("a link no step took back is closed after its TTL: closed %d", c.closed.Load())
	}
}

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"6.2.14", "7.0", true}, {"7.0.15", "7.0", false}, {"7.10.0", "7.9.9", false}, {"7", "7.0", true}} {
		if got := VersionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("VersionLess(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
	if !IsKeyless("FLUSHALL") || IsKeyless("SET") {
		t.Error("IsKeyless")
	}
}
