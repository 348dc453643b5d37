package pipeline

import (
	"errors"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// fuzzTypes are the MySQL column types FuzzMySQLValue maps (mapColumn).
var fuzzTypes = []string{"tinyint", "smallint", "mediumint", "int", "bigint", "year", "decimal", "float", "double", "bit", "date", "datetime", "timestamp", "varchar", "blob"}

// FuzzMySQLValue feeds arbitrary text-protocol values to the pipeline's
// MySQL value parsers. The fast parsers agree with strconv, time and
// math/big; a converted value is rendered (as a partition directory does)
// and parses back to the same value; a DECIMAL(p, s) value is the input
// truncated at s digits, or refused when it has more digits than p.
func FuzzMySQLValue(f *testing.F) {
	for _, s := range []string{"0", "-1", "+5", "127", "-128", "255", "2147483647", "-2147483648", "4294967295",
		"9223372036854775807", "-9223372036854775808", "18446744073709551615", "18446744073709551616", "",
		"-", "+", ".", "-.", "1.", ".5", "-0.00", "123.456", "1.2.3", "1.2x", "99999999999999999999.99", "1e5",
		"2024-02-29", "2023-02-29", "0000-00-00", "0000-01-01", "9999-12-31", "1969-12-31 23:59:59.999999",
		"2024-01-01 00:00:00.", "2024-01-01 24:00:00", "1600-03-01 01:02:03.123", "0001-01-01 00:00:00", "\xff\x00", "NaN", "inf"} {
		for _, typ := range []uint8{0, 3, 4, 6, 10, 11} {
			f.Add([]byte(s), typ, uint8(10), uint8(2), false)
		}
	}
	f.Add([]byte("18446744073709551615"), uint8(4), uint8(0), uint8(0), true)
	f.Add([]byte("4294967295"), uint8(3), uint8(0), uint8(0), true)
	f.Add([]byte("-12345678901234567890123456789012345.678"), uint8(6), uint8(38), uint8(3), false)
	f.Add([]byte("99999.99"), uint8(6), uint8(7), uint8(2), false)
	f.Add([]byte("100000.00"), uint8(6), uint8(7), uint8(2), false)
	f.Fuzz(func(t *testing.T, b []byte, typ, prec, scale uint8, unsigned bool) {
		s := string(b)
		checkFastParsers(t, b)
		mc := &mysqlColumn{name: "c", dataType: fuzzTypes[int(typ)%len(fuzzTypes)], unsigned: unsigned}
		if mc.dataType == "decimal" {
			mc.precision = 1 + int(prec)%65
			mc.scale = int(scale) % (min(30, mc.precision) + 1)
		}
		c := (&mysqlReader{}).mapColumn(mc)
		v, ok := mc.conv(b)
		if !ok {
			return
		}
		text := c.text(v)
		back := text
		switch mc.dataType {
		case "float", "double", "bit", "varchar", "blob":
			return // no text round trip (floats: the writer's formatting; bit: binary)
		case "datetime", "timestamp":
			back = strings.TrimSuffix(strings.Replace(text, "T", " ", 1), "Z")
		}
		v2, ok := mc.conv([]byte(back))
		if !ok || !parquet.Equal(v, v2) {
			t.Fatalf("%s %q -> %v -> %q -> %v (ok %v)", mc.dataType, s, v, back, v2, ok)
		}
		if mc.dataType == "decimal" && mc.precision <= 38 {
			want, ok := unscaled(b, mc.scale)
			got, ok2 := unscaled([]byte(text), mc.scale)
			if !ok || !ok2 || want.Cmp(got) != 0 {
				t.Fatalf("DECIMAL(%d,%d) %q rendered %q", mc.precision, mc.scale, s, text)
			}
			lim := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(mc.precision)), nil)
			if want.CmpAbs(lim) >= 0 {
				t.Fatalf("DECIMAL(%d,%d) accepted %q (more than %d digits)", mc.precision, mc.scale, s, mc.precision)
			}
		}
	})
}

// checkFastParsers compares the allocation-free parsers with the standard
// library on b.
func checkFastParsers(t *testing.T, b []byte) {
	s := string(b)
	for _, bits := range []int{8, 16, 32, 64} {
		want, err := strconv.ParseInt(s, 10, bits)
		got, ok := parseInt(b, bits)
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("parseInt(%q, %d) = %d %v; strconv %d %v", s, bits, got, ok, want, err)
		}
		if len(s) > 0 && s[0] == '+' {
			continue // strconv.ParseUint takes no sign
		}
		wantU, err := strconv.ParseUint(s, 10, bits)
		gotU, ok := parseUint(b, bits)
		if ok != (err == nil) || ok && gotU != wantU {
			t.Fatalf("parseUint(%q, %d) = %d %v; strconv %d %v", s, bits, gotU, ok, wantU, err)
		}
	}
	for _, scale := range []int{0, 1, 2, 5, 18} {
		got, ok := parseDecimal64(b, scale)
		u, ok2 := unscaled(b, scale)
		if ok && (!ok2 || !u.IsInt64() || u.Int64() != got) {
			t.Fatalf("parseDecimal64(%q, %d) = %d; unscaled %v %v", s, scale, got, u, ok2)
		}
		if ok2 && !ok && u.IsInt64() && u.CmpAbs(big.NewInt(1e17)) < 0 && len(s) < 19 {
			t.Fatalf("parseDecimal64(%q, %d) refused; unscaled %v", s, scale, u)
		}
		if ok2 {
			// What unscaled accepts is a decimal number: big.Rat agrees.
			r, okr := new(big.Rat).SetString(strings.TrimSuffix(strings.Replace(s, "-.", "-0.", 1), "."))
			if !okr {
				t.Fatalf("unscaled accepted %q, which is no number", s)
			}
			r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
			q := new(big.Int).Quo(r.Num(), r.Denom()) // truncation toward zero
			if q.Cmp(u) != 0 {
				t.Fatalf("unscaled(%q, %d) = %v, want %v", s, scale, u, q)
			}
		}
	}
	want, err := time.Parse("2006-01-02 15:04:05.999999", s)
	got, ok := parseDateTimeMicros(b)
	// time.Parse is more lenient than MySQL's output (a comma before the
	// fraction, more than 6 fraction digits): compare on MySQL's shape.
	if err == nil && !mysqlDateTime.MatchString(s) {
		err = errShape
	}
	if ok != (err == nil) || ok && got != want.UnixMicro() {
		t.Fatalf("parseDateTimeMicros(%q) = %d %v; time %v %v", s, got, ok, want, err)
	}
	wd, err := time.Parse("2006-01-02", s)
	gd, ok := parseDateDays(b)
	if ok != (err == nil) || ok && int64(gd)*86400 != wd.Unix() {
		t.Fatalf("parseDateDays(%q) = %d %v; time %v %v", s, gd, ok, wd, err)
	}
}

var (
	mysqlDateTime = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$`)
	errShape      = errors.New("not MySQL's DATETIME text")
)
