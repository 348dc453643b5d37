package testharness

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skipf and Fatalf instead of acting.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantSkip bool
	}{{"", true}, {"false", true}, {"true", false}, {"TRUE", false}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			unavailable(r, "Redis", "no redis-server", installRedis)
			msg := r.skipped + r.fatal
			if (r.skipped != "") != tc.wantSkip || (r.fatal != "") == tc.wantSkip {
				t.Fatalf("skipped %q, fatal %q; want skip=%v", r.skipped, r.fatal, tc.wantSkip)
			}
			if !strings.Contains(msg, "Redis") || !strings.Contains(msg, "apt-get install -y redis-server") {
				t.Fatalf("message %q does not say what is missing and how to install it", msg)
			}
		})
	}
}

func TestDBName(t *testing.T) {
	n := dbName(12, "TestStore/Claim Migration#01/"+strings.Repeat("x", 100))
	if len(n) > 63 || !strings.HasPrefix(n, "t12_teststore_claim_migration_01_") {
		t.Fatalf("dbName = %q", n)
	}
}
