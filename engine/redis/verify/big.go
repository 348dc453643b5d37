package verify

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// compareBig compares one big key (or a stream) in chunks.
func (v *verifier) compareBig(ctx context.Context, src, dst redis.UniversalClient, key, typ string) (Kind, string, error) {
	cl := [2]redis.UniversalClient{src, dst}
	chunk := int64(v.opts.Chunk)
	switch typ {
	case "string":
		return compareChunks(bigString, func(s int, off int64) (string, error) {
			return cl[s].GetRange(ctx, key, off, off+bigString-1).Result()
		}, func(x, y string, off int64) string {
			if x != y {
				return fmt.Sprintf("string differs within bytes %d-%d", off, off+bigString-1)
			}
			return ""
		})
	case "list":
		return compareChunks(chunk, func(s int, off int64) ([]string, error) {
			return cl[s].LRange(ctx, key, off, off+chunk-1).Result()
		}, diffList)
	case "zset":
		return compareChunks(chunk, func(s int, off int64) ([]redis.Z, error) {
			return cl[s].ZRangeWithScores(ctx, key, off, off+chunk-1).Result()
		}, diffZ)
	case "set":
		// Same cardinality (checked) and every source member on the target.
		var cursor uint64
		for {
			members, next, err := src.SScan(ctx, key, cursor, "", chunk).Result()
			if err != nil {
				return "", "", err
			}
			if len(members) > 0 {
				args := make([]any, len(members))
				for i, m := range members {
					args[i] = m
				}
				in, err := dst.SMIsMember(ctx, key, args...).Result()
				if err != nil {
					return "", "", err
				}
				for i, ok := range in {
					if !ok {
						return Value, fmt.Sprintf("member %s missing on the target", q(members[i])), nil
					}
				}
			}
			if next == 0 {
				return "", "", nil
			}
			cursor = next
		}
	case "hash":
		var cursor uint64
		for {
			kv, next, err := src.HScan(ctx, key, cursor, "", chunk).Result()
			if err != nil {
				return "", "", err
			}
			if len(kv) > 0 {
				fields := make([]string, 0, len(kv)/2)
				for i := 0; i+1 < len(kv); i += 2 {
					fields = append(fields, kv[i])
				}
				vals, err := dst.HMGet(ctx, key, fields...).Result()
				if err != nil {
					return "", "", err
				}
				for i, f := range fields {
					s, ok := vals[i].(string)
					if !ok {
						return Value, fmt.Sprintf("field %s missing on the target", q(f)), nil
					}
					if s != kv[2*i+1] {
						return Value, fmt.Sprintf("field %s: %s on the source, %s on the target", q(f), q(kv[2*i+1]), q(s)), nil
					}
				}
			}
			if next == 0 {
				return "", "", nil
			}
			cursor = next
		}
	case "stream":
		return v.compareStream(ctx, src, dst, key)
	}
	return "", "", nil
}

// compareChunks compares a key read a range at a time from both sides
// (concurrently): from offset 0 in steps of step until diff reports a
// difference (a Value difference) or the source's range is shorter than step
// (the end of the key).
func compareChunks[T string | []string | []redis.Z](step int64, read func(side int, off int64) (T, error), diff func(src, dst T, off int64) string) (Kind, string, error) {
	for off := int64(0); ; off += step {
		var parts [2]T
		err := both(func(s int) (err error) {
			parts[s], err = read(s, off)
			return
		})
		if err != nil {
			return "", "", err
		}
		if d := diff(parts[0], parts[1], off); d != "" {
			return Value, d, nil
		}
		if int64(len(parts[0])) < step {
			return "", "", nil
		}
	}
}
