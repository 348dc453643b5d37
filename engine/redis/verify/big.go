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
		return compareScanned(func(cursor uint64) ([]string, uint64, error) {
			return src.SScan(ctx, key, cursor, "", chunk).Result()
		}, func(members []string) (string, error) { return membersOn(ctx, dst, key, members) })
	case "hash":
		return compareScanned(func(cursor uint64) ([]string, uint64, error) {
			return src.HScan(ctx, key, cursor, "", chunk).Result()
		}, func(kv []string) (string, error) { return fieldsOn(ctx, dst, key, kv) })
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

// compareScanned walks a set or hash of the source with scan (SSCAN, HSCAN)
// and has check look each chunk up on the target; a difference check reports
// is a Value difference.
func compareScanned(scan func(cursor uint64) ([]string, uint64, error), check func(chunk []string) (string, error)) (Kind, string, error) {
	var cursor uint64
	for {
		chunk, next, err := scan(cursor)
		if err != nil {
			return "", "", err
		}
		if len(chunk) > 0 {
			d, err := check(chunk)
			if err != nil {
				return "", "", err
			}
			if d != "" {
				return Value, d, nil
			}
		}
		if next == 0 {
			return "", "", nil
		}
		cursor = next
	}
}

// membersOn reports the first of members not in the set key of dst.
func membersOn(ctx context.Context, dst redis.UniversalClient, key string, members []string) (string, error) {
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	in, err := dst.SMIsMember(ctx, key, args...).Result()
	if err != nil {
		return "", err
	}
	for i, ok := range in {
		if !ok {
			return fmt.Sprintf("member %s missing on the target", q(members[i])), nil
		}
	}
	return "", nil
}

// fieldsOn reports the first field of kv (HSCAN's field, value pairs) missing
// or with another value in the hash key of dst.
func fieldsOn(ctx context.Context, dst redis.UniversalClient, key string, kv []string) (string, error) {
	fields := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		fields = append(fields, kv[i])
	}
	vals, err := dst.HMGet(ctx, key, fields...).Result()
	if err != nil {
		return "", err
	}
	for i, f := range fields {
		s, ok := vals[i].(string)
		if !ok {
			return fmt.Sprintf("field %s missing on the target", q(f)), nil
		}
		if s != kv[2*i+1] {
			return fmt.Sprintf("field %s: %s on the source, %s on the target", q(f), q(kv[2*i+1]), q(s)), nil
		}
	}
	return "", nil
}
