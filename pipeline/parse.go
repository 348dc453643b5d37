package pipeline

import (
	"math"
	"time"
)

// Allocation-free parsers of the MySQL text protocol's values (the hot
// path of an export: every value of every row goes through one).

// parseInt parses a base-10 integer that fits in bits (signed).
func parseInt(b []byte, bits int) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := false
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	u, ok := parseUint(b, 64)
	if !ok {
		return 0, false
	}
	lim := uint64(1) << (bits - 1)
	if neg {
		if u > lim {
			return 0, false
		}
		return -int64(u), true // -(1<<63) wraps correctly
	}
	if u >= lim {
		return 0, false
	}
	return int64(u), true
}

// parseUint parses a base-10 unsigned integer that fits in bits.
func parseUint(b []byte, bits int) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	if bits < 64 && u >= 1<<bits {
		return 0, false
	}
	return u, true
}

// parseDecimal64 parses a DECIMAL's text into its unscaled integer at
// scale, when it fits in 18 digits (ok false otherwise: use unscaled).
func parseDecimal64(b []byte, scale int) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := false
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		b = b[1:]
	}
	var u int64
	digits, frac, dot, seen := 0, 0, false, false
	for _, c := range b {
		if c == '.' {
			if dot {
				return 0, false
			}
			dot = true
			continue
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		seen = true
		if dot {
			if frac == scale {
				continue // truncated, as unscaled does
			}
			frac++
		}
		if digits > 0 || c != '0' {
			digits++
		}
		if digits > 18 {
			return 0, false
		}
		u = u*10 + int64(c-'0')
	}
	if !seen {
		return 0, false // "", "-", ".": no digit
	}
	for ; frac < scale; frac++ {
		if digits > 0 {
			digits++
		}
		if digits > 18 {
			return 0, false
		}
		u *= 10
	}
	if neg {
		u = -u
	}
	return u, true
}

func digits2(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// parseDate parses YYYY-MM-DD (a zero or invalid date: ok false).
func parseDate(b []byte) (y, m, d int, ok bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, 0, 0, false
	}
	hi, ok1 := digits2(b[0:2])
	lo, ok2 := digits2(b[2:4])
	m, ok3 := digits2(b[5:7])
	d, ok4 := digits2(b[8:10])
	y = hi*100 + lo
	if !(ok1 && ok2 && ok3 && ok4) || m < 1 || m > 12 || d < 1 || d > daysIn(m, y) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days since 1970-01-01 of a proleptic
// Gregorian date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// parseDateDays parses YYYY-MM-DD into days since the epoch.
func parseDateDays(b []byte) (int32, bool) {
	y, m, d, ok := parseDate(b)
	if !ok {
		return 0, false
	}
	return int32(daysFromCivil(y, m, d)), true
}

// parseDateTimeMicros parses YYYY-MM-DD HH:MM:SS[.ffffff] (UTC) into
// microseconds since the epoch.
func parseDateTimeMicros(b []byte) (int64, bool) {
	if len(b) < 19 || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	y, mo, d, ok := parseDate(b[:10])
	if !ok {
		return 0, false
	}
	h, ok1 := digits2(b[11:13])
	mi, ok2 := digits2(b[14:16])
	s, ok3 := digits2(b[17:19])
	if !(ok1 && ok2 && ok3) || h > 23 || mi > 59 || s > 59 {
		return 0, false
	}
	var us int64
	if len(b) > 19 {
		if b[19] != '.' || len(b) > 26 || len(b) == 20 {
			return 0, false
		}
		n := 0
		for _, c := range b[20:] {
			if c < '0' || c > '9' {
				return 0, false
			}
			us = us*10 + int64(c-'0')
			n++
		}
		for ; n < 6; n++ {
			us *= 10
		}
	}
	secs := daysFromCivil(y, mo, d)*86400 + int64(h)*3600 + int64(mi)*60 + int64(s)
	return secs*int64(time.Second/time.Microsecond) + us, true
}
