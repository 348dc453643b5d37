package pipeline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// TestFastParsers compares the allocation-free parsers with strconv, time
// and math/big on edge cases and random values.
func TestFastParsers(t *testing.T) {
	ints := []string{"0", "-0", "1", "-1", "127", "-128", "2147483647", "-2147483648", "2147483648", "-2147483649",
		"9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
		"18446744073709551615", "18446744073709551616", "", "-", "+5", "1a", " 1", "99999999999999999999999"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		ints = append(ints, strconv.FormatInt(r.Int64()>>r.IntN(63), 10), strconv.FormatInt(-r.Int64()>>r.IntN(63), 10))
	}
	for _, s := range ints {
		for _, bits := range []int{32, 64} {
			want, err := strconv.ParseInt(s, 10, bits)
			got, ok := parseInt([]byte(s), bits)
			if ok != (err == nil) || ok && got != want {
				t.Fatalf("parseInt(%q, %d) = %d %v, strconv %d %v", s, bits, got, ok, want, err)
			}
			wantU, err := strconv.ParseUint(s, 10, bits)
			gotU, ok := parseUint([]byte(s), bits)
			if s != "" && s[0] == '+' {
				continue // strconv.ParseUint rejects a sign too, but not the same way
			}
			if ok != (err == nil) || ok && gotU != wantU {
				t.Fatalf("parseUint(%q, %d) = %d %v, strconv %d %v", s, bits, gotU, ok, wantU, err)
			}
		}
	}
	decs := []string{"0.00", "-0.01", "1.5", "123456789012.34", "-999999999999999.99", "0", "12", "-3.14159"}
	for range 2000 {
		decs = append(decs, fmt.Sprintf("%d.%02d", r.Int64N(1e12)-5e11, r.IntN(100)))
	}
	for _, s := range decs {
		for _, scale := range []int{0, 2, 5} {
			u, ok1 := unscaled([]byte(s), scale)
			got, ok2 := parseDecimal64([]byte(s), scale)
			if ok2 && (!ok1 || !u.IsInt64() || u.Int64() != got) {
				t.Fatalf("parseDecimal64(%q, %d) = %d, unscaled %v %v", s, scale, got, u, ok1)
			}
			if !ok2 && ok1 && u.IsInt64() && math.Abs(float64(u.Int64())) < 1e17 {
				t.Fatalf("parseDecimal64(%q, %d) refused, unscaled %v", s, scale, u)
			}
		}
	}
	times := []string{"2024-01-01 00:00:00", "1970-01-01 00:00:00.000001", "1969-12-31 23:59:59.5", "0001-01-01 00:00:00",
		"9999-12-31 23:59:59.999999", "2000-02-29 12:00:00", "2001-02-29 12:00:00", "0000-00-00 00:00:00", "2024-13-01 00:00:00",
		"2024-01-01 24:00:00", "2024-01-01", "2024-01-01 00:00:00.", "1600-03-01 01:02:03.123"}
	for range 2000 {
		ts := time.Unix(r.Int64N(400e9)-200e9, r.Int64N(1e9)).UTC().Truncate(time.Microsecond)
		if ts.Year() > 0 && ts.Year() < 10000 {
			times = append(times, ts.Format("2006-01-02 15:04:05.999999"), ts.Format("2006-01-02"))
		}
	}
	for _, s := range times {
		want, err := time.Parse("2006-01-02 15:04:05.999999", s)
		got, ok := parseDateTimeMicros([]byte(s))
		if ok != (err == nil) || ok && got != want.UnixMicro() {
			t.Fatalf("parseDateTimeMicros(%q) = %d %v, time %d %v", s, got, ok, want.UnixMicro(), err)
		}
		wd, err := time.Parse("2006-01-02", s)
		gd, ok := parseDateDays([]byte(s))
		if ok != (err == nil) || ok && int64(gd) != wd.Unix()/86400 && !(wd.Unix() < 0 && int64(gd) == (wd.Unix()-86399)/86400) {
			t.Fatalf("parseDateDays(%q) = %d %v, time %v %v", s, gd, ok, wd, err)
		}
	}
}
