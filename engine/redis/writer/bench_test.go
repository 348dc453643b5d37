package writer

import (
	"context"
	"math/rand"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisBenchmarkSET runs redis-benchmark -q -P 64 -n n -t set -r 1000000
// against addr and returns its SET requests per second (0 if redis-benchmark
// is not installed).
func redisBenchmarkSET(tb testing.TB, addr string, n int) float64 {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		tb.Logf("redis-benchmark not found (redis-tools): no ceiling to compare with")
		return 0
	}
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command(bin, "-h", host, "-p", port, "-q", "-P", "64", "-n", strconv.Itoa(n),
		"-t", "set", "-r", "1000000").CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-benchmark: %v: %s", err, out)
	}
	// Output ends with lines like "SET: 549450.56 requests per second, p50=..."
	m := regexp.MustCompile(`SET: ([0-9.]+) requests per second`).FindAllSubmatch(out, -1)
	if len(m) == 0 {
		tb.Fatalf("redis-benchmark output not understood: %q", out)
	}
	v, _ := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	return v
}

// BenchmarkWriterSET writes 1M small SETs (random keys among 1M, 3-byte
// values: what redis-benchmark -t set -r 1000000 sends) per iteration into a
// real redis-server and reports SET/s, next to redis-benchmark -P 64 against
// the same server in the same run, and their ratio.
//
//	go test -run '^$' -bench WriterSET -benchtime 3x ./engine/redis/writer
func BenchmarkWriterSET(b *testing.B) {
	srv := startRedis(b)
	const n = 1_000_000
	ceiling := redisBenchmarkSET(b, srv.Addr, n)
	ctx := context.Background()
	c := client(b, srv.Addr, 0)
	w := mustNew(b, Options{Addrs: []string{srv.Addr}})
	r := rand.New(rand.NewSource(1))
	keys := make([]int, n)
	for i := range keys {
		keys[i] = r.Intn(1_000_000)
	}
	cmd := []byte("SET")
	val := []byte("xxx")
	key := []byte("key:000000000000")
	b.ResetTimer()
	var total time.Duration
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		c.FlushAll(ctx)
		b.StartTimer()
		start := time.Now()
		for _, k := range keys {
			// key:%012d, like redis-benchmark's __rand_int__.
			for p := len(key) - 1; p >= 4; p-- {
				key[p] = byte('0' + k%10)
				k /= 10
			}
			if err := w.Do(0, cmd, key, val); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.StopTimer()
	rate := float64(n*b.N) / total.Seconds()
	b.ReportMetric(rate, "SET/s")
	if ceiling > 0 {
		b.ReportMetric(ceiling, "redis-benchmark-SET/s")
		b.ReportMetric(rate/ceiling, "ratio")
	}
	b.Logf("writer: %.0f SET/s; redis-benchmark -P 64: %.0f SET/s; ratio %.2f (applied %d)", rate, ceiling, rate/ceiling, w.Applied())
}
