package verify

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry/internal/testharness"
)

// BenchmarkCompare compares 200k small keys (strings, hashes, lists, zsets)
// between two identical servers and reports keys/s.
func BenchmarkCompare(b *testing.B) {
	const n = 200_000
	var addrs [2]string
	for s := range addrs {
		addrs[s] = testharness.StartRedisDebug(b).Addr
		c := redis.NewClient(&redis.Options{Addr: addrs[s]})
		p := c.Pipeline()
		for i := 0; i < n; i++ {
			k := "key:" + strconv.Itoa(i)
			switch i % 4 {
			case 0, 1:
				p.Set(ctx, k, "value-"+strconv.Itoa(i), 0)
			case 2:
				p.HSet(ctx, k, "a", "1", "b", strconv.Itoa(i))
			case 3:
				p.ZAdd(ctx, k, redis.Z{Score: float64(i) / 3, Member: "m"})
			}
			if p.Len() >= 10000 {
				if _, err := p.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	src := redis.NewClient(&redis.Options{Addr: addrs[0]})
	dst := redis.NewClient(&redis.Options{Addr: addrs[1]})
	defer src.Close()
	defer dst.Close()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		rep, err := Compare(ctx, src, dst, Options{})
		if err != nil || !rep.Equal() || rep.Checked != n {
			b.Fatalf("%v %v", err, rep)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "keys/s")
}
