package verify

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// q quotes a value for a message, shortened.
func q(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "..."
	}
	return strconv.Quote(s)
}

func diffSmall(typ string, a, b redis.Cmder) string {
	switch typ {
	case "string":
		x, y := a.(*redis.StringCmd).Val(), b.(*redis.StringCmd).Val()
		if x != y {
			return fmt.Sprintf("string %s on the source, %s on the target", q(x), q(y))
		}
	case "list":
		return diffList(a.(*redis.StringSliceCmd).Val(), b.(*redis.StringSliceCmd).Val(), 0)
	case "set":
		x, y := a.(*redis.StringSliceCmd).Val(), b.(*redis.StringSliceCmd).Val()
		sort.Strings(x)
		sort.Strings(y)
		for j := range x {
			if j >= len(y) || x[j] != y[j] {
				return diffSetMembers(x, y)
			}
		}
		if len(x) != len(y) {
			return diffSetMembers(x, y)
		}
	case "hash":
		x, y := a.(*redis.MapStringStringCmd).Val(), b.(*redis.MapStringStringCmd).Val()
		for f, vx := range x {
			vy, ok := y[f]
			if !ok {
				return fmt.Sprintf("field %s missing on the target", q(f))
			}
			if vx != vy {
				return fmt.Sprintf("field %s: %s on the source, %s on the target", q(f), q(vx), q(vy))
			}
		}
		for f := range y {
			if _, ok := x[f]; !ok {
				return fmt.Sprintf("field %s only on the target", q(f))
			}
		}
	case "zset":
		return diffZ(a.(*redis.ZSliceCmd).Val(), b.(*redis.ZSliceCmd).Val(), 0)
	}
	return ""
}

func diffList(x, y []string, offset int64) string {
	for j := range x {
		if j >= len(y) {
			return fmt.Sprintf("list element %d missing on the target", offset+int64(j))
		}
		if x[j] != y[j] {
			return fmt.Sprintf("list element %d: %s on the source, %s on the target", offset+int64(j), q(x[j]), q(y[j]))
		}
	}
	if len(y) > len(x) {
		return fmt.Sprintf("list element %d only on the target", offset+int64(len(x)))
	}
	return ""
}

func diffSetMembers(x, y []string) string {
	if s, ok := firstNotIn(x, y); ok {
		return fmt.Sprintf("member %s missing on the target", q(s))
	}
	if s, ok := firstNotIn(y, x); ok {
		return fmt.Sprintf("member %s only on the target", q(s))
	}
	return "members differ"
}

// firstNotIn returns the first element of x that y does not hold.
func firstNotIn(x, y []string) (string, bool) {
	in := make(map[string]bool, len(y))
	for _, s := range y {
		in[s] = true
	}
	for _, s := range x {
		if !in[s] {
			return s, true
		}
	}
	return "", false
}

func zmember(z redis.Z) string {
	switch m := z.Member.(type) {
	case string:
		return m
	case []byte:
		return string(m)
	}
	return fmt.Sprint(z.Member)
}

// diffZ compares zset ranges: members in order and scores bit for bit.
func diffZ(x, y []redis.Z, offset int64) string {
	for j := range x {
		if j >= len(y) {
			return fmt.Sprintf("zset rank %d missing on the target", offset+int64(j))
		}
		mx, my := zmember(x[j]), zmember(y[j])
		if mx != my {
			return fmt.Sprintf("zset rank %d: member %s on the source, %s on the target", offset+int64(j), q(mx), q(my))
		}
		if math.Float64bits(x[j].Score) != math.Float64bits(y[j].Score) {
			return fmt.Sprintf("zset member %s: score %s on the source, %s on the target", q(mx),
				strconv.FormatFloat(x[j].Score, 'g', -1, 64), strconv.FormatFloat(y[j].Score, 'g', -1, 64))
		}
	}
	if len(y) > len(x) {
		return fmt.Sprintf("zset rank %d only on the target", offset+int64(len(x)))
	}
	return ""
}
