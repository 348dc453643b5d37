package verify

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/redis/go-redis/v9"
)

// equalReply compares two raw replies deeply.
func equalReply(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalReply(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[any]any:
		y, ok := b.(map[any]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, vx := range x {
			vy, ok := y[k]
			if !ok || !equalReply(vx, vy) {
				return false
			}
		}
		return true
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	default:
		return a == b
	}
}

// fields turns a RESP2 flat name/value array or a RESP3 map into a map.
func fields(v any) map[string]any {
	out := map[string]any{}
	switch x := v.(type) {
	case []any:
		for i := 0; i+1 < len(x); i += 2 {
			if k, ok := x[i].(string); ok {
				out[k] = x[i+1]
			}
		}
	case map[any]any:
		for k, val := range x {
			if ks, ok := k.(string); ok {
				out[ks] = val
			}
		}
	}
	return out
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return "(nil)"
	case string:
		return x
	case []byte:
		return string(x)
	default:
		return fmt.Sprint(x)
	}
}

func list(v any) []any {
	x, _ := v.([]any)
	return x
}

// firstStr is str of the first element of an array reply (a stream entry's
// or a pending entry's id); "(nil)" when v is not a non-empty array.
func firstStr(v any) string {
	if l := list(v); len(l) > 0 {
		return str(l[0])
	}
	return str(nil)
}

// compareStream compares a stream's entries (in chunks), its metadata, its
// consumer groups, their pending entries (in chunks) and consumers.
func (v *verifier) compareStream(ctx context.Context, src, dst redis.UniversalClient, key string) (Kind, string, error) {
	cl := [2]redis.UniversalClient{src, dst}
	// Entries.
	d, err := v.compareEntries(ctx, cl, key)
	if err != nil {
		return "", "", err
	}
	if d != "" {
		return Value, d, nil
	}
	// Metadata, groups and consumers.
	var infos [2]map[string]any
	err = both(func(s int) error {
		r, err := cl[s].Do(ctx, "XINFO", "STREAM", key, "FULL", "COUNT", 1).Result()
		if err != nil {
			return fmt.Errorf("verify: XINFO STREAM %q FULL: %w", key, err)
		}
		infos[s] = fields(r)
		return nil
	})
	if err != nil {
		return "", "", err
	}
	for _, f := range []string{"length", "last-generated-id", "max-deleted-entry-id", "entries-added", "recorded-first-entry-id"} {
		if a, b := str(infos[0][f]), str(infos[1][f]); a != b {
			return Stream, fmt.Sprintf("%s %s on the source, %s on the target", f, a, b), nil
		}
	}
	d, err = v.compareGroups(ctx, cl, key, list(infos[0]["groups"]), list(infos[1]["groups"]))
	if err != nil {
		return "", "", err
	}
	if d != "" {
		return Stream, d, nil
	}
	return "", "", nil
}

// comparePEL compares a group's pending entries in chunks: id, consumer and
// delivery count (idle times naturally differ).
func (v *verifier) comparePEL(ctx context.Context, cl [2]redis.UniversalClient, key, group string) (string, error) {
	what := fmt.Sprintf("XPENDING %q %q", key, group)
	start := "-"
	for {
		parts, err := rangeBoth(ctx, cl, what, "XPENDING", key, group, start, "+", v.opts.Chunk)
		if err != nil {
			return "", err
		}
		for j := range parts[0] {
			a := list(parts[0][j])
			if j >= len(parts[1]) {
				return fmt.Sprintf("group %s: pending entry %s missing on the target", q(group), firstStr(a)), nil
			}
			b := list(parts[1][j])
			if len(a) < 4 || len(b) < 4 {
				return "", fmt.Errorf("verify: XPENDING %q %q: unexpected reply", key, group)
			}
			if str(a[0]) != str(b[0]) {
				return fmt.Sprintf("group %s: pending entry %s on the source, %s on the target", q(group), str(a[0]), str(b[0])), nil
			}
			if str(a[1]) != str(b[1]) {
				return fmt.Sprintf("group %s: pending entry %s owned by consumer %s on the source, %s on the target", q(group), str(a[0]), q(str(a[1])), q(str(b[1]))), nil
			}
			if str(a[3]) != str(b[3]) {
				return fmt.Sprintf("group %s: pending entry %s delivered %s times on the source, %s on the target", q(group), str(a[0]), str(a[3]), str(b[3])), nil
			}
		}
		if len(parts[1]) > len(parts[0]) {
			return fmt.Sprintf("group %s: pending entry %s only on the target", q(group), firstStr(parts[1][len(parts[0])])), nil
		}
		if len(parts[0]) < v.opts.Chunk {
			return "", nil
		}
		start = "(" + firstStr(parts[0][len(parts[0])-1])
	}
}

// compareEntries compares a stream's entries (id, fields and values), a
// chunk at a time.
func (v *verifier) compareEntries(ctx context.Context, cl [2]redis.UniversalClient, key string) (string, error) {
	chunk := v.opts.Chunk
	what := fmt.Sprintf("XRANGE %q", key)
	start := "-"
	for {
		parts, err := rangeBoth(ctx, cl, what, "XRANGE", key, start, "+", "COUNT", chunk)
		if err != nil {
			return "", err
		}
		for j := range parts[0] {
			if j >= len(parts[1]) {
				return fmt.Sprintf("stream entry %s missing on the target", firstStr(parts[0][j])), nil
			}
			if !equalReply(parts[0][j], parts[1][j]) {
				return fmt.Sprintf("stream entry %s on the source, %s on the target differ", firstStr(parts[0][j]), firstStr(parts[1][j])), nil
			}
		}
		if len(parts[1]) > len(parts[0]) {
			return fmt.Sprintf("stream entry %s only on the target", firstStr(parts[1][len(parts[0])])), nil
		}
		if len(parts[0]) < chunk {
			return "", nil
		}
		start = "(" + firstStr(parts[0][len(parts[0])-1])
	}
}

// compareGroups compares a stream's consumer groups ga and gb (XINFO STREAM
// FULL): names, positions, consumers and pending entries.
func (v *verifier) compareGroups(ctx context.Context, cl [2]redis.UniversalClient, key string, ga, gb []any) (string, error) {
	groups := func(l []any) (map[string]map[string]any, []string) {
		m := map[string]map[string]any{}
		var names []string
		for _, g := range l {
			gf := fields(g)
			n := str(gf["name"])
			m[n] = gf
			names = append(names, n)
		}
		sort.Strings(names)
		return m, names
	}
	gma, namesA := groups(ga)
	gmb, namesB := groups(gb)
	for _, n := range namesA {
		if _, ok := gmb[n]; !ok {
			return fmt.Sprintf("consumer group %s missing on the target", q(n)), nil
		}
	}
	for _, n := range namesB {
		if _, ok := gma[n]; !ok {
			return fmt.Sprintf("consumer group %s only on the target", q(n)), nil
		}
	}
	for _, n := range namesA {
		a, b := gma[n], gmb[n]
		for _, f := range []string{"last-delivered-id", "entries-read", "lag", "pel-count"} {
			if x, y := str(a[f]), str(b[f]); x != y {
				return fmt.Sprintf("group %s: %s %s on the source, %s on the target", q(n), f, x, y), nil
			}
		}
		consumers := func(l []any) map[string]string {
			m := map[string]string{}
			for _, c := range l {
				cf := fields(c)
				m[str(cf["name"])] = str(cf["pel-count"])
			}
			return m
		}
		ca, cb := consumers(list(a["consumers"])), consumers(list(b["consumers"]))
		for name, pa := range ca {
			pb, ok := cb[name]
			if !ok {
				return fmt.Sprintf("group %s: consumer %s missing on the target", q(n), q(name)), nil
			}
			if pa != pb {
				return fmt.Sprintf("group %s: consumer %s has %s pending entries on the source, %s on the target", q(n), q(name), pa, pb), nil
			}
		}
		for name := range cb {
			if _, ok := ca[name]; !ok {
				return fmt.Sprintf("group %s: consumer %s only on the target", q(n), q(name)), nil
			}
		}
		if d, err := v.comparePEL(ctx, cl, key, n); err != nil || d != "" {
			return d, err
		}
	}
	return "", nil
}

// rangeBoth runs a range command (XRANGE, XPENDING) on both sides; what
// names it in errors.
func rangeBoth(ctx context.Context, cl [2]redis.UniversalClient, what string, args ...any) ([2][]any, error) {
	var parts [2][]any
	err := both(func(s int) error {
		r, err := cl[s].Do(ctx, args...).Result()
		if err != nil && err != redis.Nil {
			return fmt.Errorf("verify: %s: %w", what, err)
		}
		parts[s] = list(r)
		return nil
	})
	return parts, err
}
