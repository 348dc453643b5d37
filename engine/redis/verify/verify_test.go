package verify

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry/internal/testharness"
)

var ctx = context.Background()

const expireAt = int64(4102444800000) // 2100-01-01, absolute

// populate writes the same data set on a server: every type, small and big
// (chunked) keys, exotic scores, streams with groups, consumers and pending
// entries, TTLs, binary keys, two dbs.
func populate(t *testing.T, addr string) {
	t.Helper()
	c := testharness.RedisClient(t, addr, 0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := c.Pipeline()
	for i := 0; i < 200; i++ {
		p.Set(ctx, "s:"+strconv.Itoa(i), "value-"+strconv.Itoa(i), 0)
	}
	p.Set(ctx, "bin:\x00\xff\r\n", "\x00\x01\xfe", 0)
	p.Set(ctx, "bigstr", string(make([]byte, 3<<20)), 0)
	p.RPush(ctx, "list:small", "a", "b", "c", "a")
	for i := 0; i < 5000; i += 500 {
		vals := make([]any, 500)
		for j := range vals {
			vals[j] = "e" + strconv.Itoa(i+j)
		}
		p.RPush(ctx, "list:big", vals...)
		p.SAdd(ctx, "set:big", vals...)
		hv := make([]any, 0, 1000)
		zs := make([]redis.Z, 0, 500)
		for j := range vals {
			hv = append(hv, vals[j], strconv.Itoa(j))
			zs = append(zs, redis.Z{Score: float64(i+j) / 3, Member: vals[j]})
		}
		p.HSet(ctx, "hash:big", hv...)
		p.ZAdd(ctx, "zset:big", zs...)
	}
	p.SAdd(ctx, "set:small", "x", "y", "z")
	p.HSet(ctx, "hash:small", "f1", "v1", "f2", "v2")
	p.ZAdd(ctx, "zset:small",
		redis.Z{Score: 0.1, Member: "tenth"},
		redis.Z{Score: 1.0 / 3, Member: "third"},
		redis.Z{Score: math.Inf(-1), Member: "minf"},
		redis.Z{Score: 1e-300, Member: "tiny"},
		redis.Z{Score: 123456789.123456789, Member: "big"})
	for i := 0; i < 5; i++ {
		p.Set(ctx, "ttl:"+strconv.Itoa(i), "x", 0)
		p.PExpireAt(ctx, "ttl:"+strconv.Itoa(i), time.UnixMilli(expireAt+int64(i)))
	}
	_, err := p.Exec(ctx)
	must(err)
	// Streams with explicit ids, groups, consumers and pending entries.
	for _, st := range []string{"st:1", "st:2"} {
		for i := 1; i <= 30; i++ {
			must(c.XAdd(ctx, &redis.XAddArgs{Stream: st, ID: fmt.Sprintf("1-%d", i), Values: []any{"f", strconv.Itoa(i), "f", "dup"}}).Err())
		}
		must(c.XGroupCreate(ctx, st, "g1", "0").Err())
		must(c.XGroupCreate(ctx, st, "g2", "1-10").Err())
		must(c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g1", Consumer: "c1", Streams: []string{st, ">"}, Count: 5}).Err())
		must(c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g1", Consumer: "c2", Streams: []string{st, ">"}, Count: 5}).Err())
		must(c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g2", Consumer: "c3", Streams: []string{st, ">"}, Count: 3}).Err())
		must(c.XAck(ctx, st, "g1", "1-2").Err())
		must(c.XDel(ctx, st, "1-20").Err())
	}
	// A stream whose PEL spans several chunks.
	for i := 1; i <= 2500; i++ {
		p.XAdd(ctx, &redis.XAddArgs{Stream: "st:big", ID: fmt.Sprintf("2-%d", i), Values: []any{"n", strconv.Itoa(i)}})
	}
	_, err = p.Exec(ctx)
	must(err)
	must(c.XGroupCreate(ctx, "st:big", "g", "0").Err())
	must(c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"st:big", ">"}, Count: 1200}).Err())
	must(c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "d", Streams: []string{"st:big", ">"}, Count: 1200}).Err())
	c3 := testharness.RedisClient(t, addr, 3)
	must(c3.Set(ctx, "db3:a", "1", 0).Err())
	must(c3.RPush(ctx, "db3:l", "1", "2").Err())
}

func keyCount(t *testing.T, addr string, dbs ...int) int64 {
	var n int64
	for _, db := range dbs {
		n += testharness.RedisClient(t, addr, db).DBSize(ctx).Val()
	}
	return n
}

func compare(t *testing.T, src, dst string, o Options) *Report {
	t.Helper()
	s, d := testharness.RedisClient(t, src, 0), testharness.RedisClient(t, dst, 0)
	if o.RecheckDelay == 0 {
		o.RecheckDelay = 50 * time.Millisecond
	}
	rep, err := Compare(ctx, s, d, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestIdentical(t *testing.T) {
	a, b := testharness.StartRedisDebug(t), testharness.StartRedisDebug(t)
	populate(t, a.Addr)
	populate(t, b.Addr)
	rep := compare(t, a.Addr, b.Addr, Options{Chunk: 100})
	if !rep.Equal() || rep.Missing+rep.Extra+rep.Different != 0 {
		t.Fatalf("identical data: %v %+v", rep, rep.Samples)
	}
	if want := keyCount(t, a.Addr, 0, 3); rep.Checked != want {
		t.Fatalf("checked %d keys, want %d", rep.Checked, want)
	}
	if rep.DBs[3] == nil || rep.DBs[3].Checked != 2 {
		t.Fatalf("db 3 not compared: %+v", rep.DBs)
	}
	if rep.Rounds != 1 {
		t.Fatalf("rounds %d", rep.Rounds)
	}
}

func TestEachDifferenceReportedOnce(t *testing.T) {
	a, b := testharness.StartRedisDebug(t), testharness.StartRedisDebug(t)
	populate(t, a.Addr)
	populate(t, b.Addr)
	d := testharness.RedisClient(t, b.Addr, 0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Del(ctx, "s:1").Err())                        // missing
	must(d.Set(ctx, "extra:1", "x", 0).Err())            // extra
	must(d.Set(ctx, "s:2", "changed", 0).Err())          // string
	must(d.LSet(ctx, "list:small", 2, "C").Err())        // one list element
	must(d.LSet(ctx, "list:big", 4321, "changed").Err()) // one element of a chunked list
	score := 1.0 / 3
	must(d.ZAdd(ctx, "zset:small", redis.Z{Score: math.Nextafter(score, 1), Member: "third"}).Err()) // one ULP
	bigScore := float64(3210) / 3
	must(d.ZAdd(ctx, "zset:big", redis.Z{Score: math.Nextafter(bigScore, 0), Member: "e3210"}).Err())
	must(d.PExpireAt(ctx, "ttl:3", time.UnixMilli(expireAt+3+10_000)).Err()) // TTL off by 10 s
	must(d.Persist(ctx, "ttl:4").Err())                                      // TTL gone
	must(d.XGroupSetID(ctx, "st:1", "g2", "1-12").Err())                     // group last-delivered-id
	// Pending entries: swap the owners of two entries (per-consumer counts
	// stay the same: only the PEL itself differs).
	must(d.XClaimJustID(ctx, &redis.XClaimArgs{Stream: "st:2", Group: "g1", Consumer: "c2", Messages: []string{"1-1"}}).Err())
	must(d.XClaimJustID(ctx, &redis.XClaimArgs{Stream: "st:2", Group: "g1", Consumer: "c1", Messages: []string{"1-6"}}).Err())
	must(d.XClaimJustID(ctx, &redis.XClaimArgs{Stream: "st:big", Group: "g", Consumer: "c", Messages: []string{"2-2222"}}).Err())
	must(d.XClaimJustID(ctx, &redis.XClaimArgs{Stream: "st:big", Group: "g", Consumer: "d", Messages: []string{"2-1150"}}).Err())
	must(d.HSet(ctx, "hash:big", "e4999", "changed").Err())
	must(d.SRem(ctx, "set:big", "e17").Err())
	must(d.SAdd(ctx, "set:big", "intruder").Err())
	must(d.Del(ctx, "hash:small").Err())
	must(d.SAdd(ctx, "hash:small", "f1").Err()) // type
	must(d.SetRange(ctx, "bigstr", 2<<20+5, "x").Err())
	must(testharness.RedisClient(t, b.Addr, 3).Del(ctx, "db3:l").Err()) // missing in db 3

	want := map[string]Kind{
		"s:1": Missing, "extra:1": Extra, "s:2": Value, "list:small": Value, "list:big": Value,
		"zset:small": Value, "zset:big": Value, "ttl:3": TTL, "ttl:4": TTL, "st:1": Stream, "st:2": Stream,
		"st:big": Stream, "hash:big": Value, "set:big": Value, "hash:small": Type, "bigstr": Value, "db3:l": Missing,
	}
	rep := compare(t, a.Addr, b.Addr, Options{Chunk: 100, Rounds: 2})
	t.Log(rep)
	seen := map[string]int{}
	for _, s := range rep.Samples {
		t.Logf("db%d %q %s: %s", s.DB, s.Key, s.Kind, s.Detail)
		seen[s.Key]++
		if want[s.Key] != s.Kind {
			t.Errorf("%q reported as %s, want %s (%s)", s.Key, s.Kind, want[s.Key], s.Detail)
		}
	}
	for k := range want {
		if seen[k] != 1 {
			t.Errorf("%q reported %d times", k, seen[k])
		}
	}
	if rep.Missing != 2 || rep.Extra != 1 || rep.Different != int64(len(want)-3) {
		t.Errorf("counts %v", rep)
	}
	if rep.DBs[3].Missing != 1 || rep.DBs[0].Missing != 1 {
		t.Errorf("per-db counts: db0 %+v db3 %+v", rep.DBs[0], rep.DBs[3])
	}
	if rep.ByKind[Stream] != 3 || rep.ByKind[TTL] != 2 {
		t.Errorf("by kind %v", rep.ByKind)
	}
}

// TestTTLWithinTolerance: expiries 1 s apart are equal with the default 2 s.
func TestTTLWithinTolerance(t *testing.T) {
	a, b := testharness.StartRedisDebug(t), testharness.StartRedisDebug(t)
	testharness.RedisClient(t, a.Addr, 0).Set(ctx, "k", "v", 0)
	testharness.RedisClient(t, a.Addr, 0).PExpireAt(ctx, "k", time.UnixMilli(expireAt))
	testharness.RedisClient(t, b.Addr, 0).Set(ctx, "k", "v", 0)
	testharness.RedisClient(t, b.Addr, 0).PExpireAt(ctx, "k", time.UnixMilli(expireAt+1000))
	if rep := compare(t, a.Addr, b.Addr, Options{}); !rep.Equal() {
		t.Fatalf("%v %+v", rep, rep.Samples)
	}
	if rep := compare(t, a.Addr, b.Addr, Options{TTLTolerance: 500 * time.Millisecond}); rep.ByKind[TTL] != 1 {
		t.Fatalf("%v %+v", rep, rep.Samples)
	}
}

// TestConverges: a key that differs in round 1 and is fixed before round 2
// (a change still being replicated) is not reported.
func TestConverges(t *testing.T) {
	a, b := testharness.StartRedisDebug(t), testharness.StartRedisDebug(t)
	populate(t, a.Addr)
	populate(t, b.Addr)
	d := testharness.RedisClient(t, b.Addr, 0)
	d.Set(ctx, "s:7", "stale", 0)
	d.Del(ctx, "s:8")
	d.Set(ctx, "s:9", "stays wrong", 0)
	var rounds []int
	rep := compare(t, a.Addr, b.Addr, Options{Rounds: 3, OnRound: func(round, pending int) {
		rounds = append(rounds, pending)
		if round == 1 {
			d.Set(ctx, "s:7", "value-7", 0)
			d.Set(ctx, "s:8", "value-8", 0)
		}
	}})
	if rep.Different != 1 || rep.Missing != 0 || len(rep.Samples) != 1 || rep.Samples[0].Key != "s:9" {
		t.Fatalf("%v %+v", rep, rep.Samples)
	}
	if len(rounds) != 3 || rounds[0] != 3 || rounds[1] != 1 || rounds[2] != 1 {
		t.Fatalf("pending per round %v", rounds)
	}
}

func TestKeyFilterAndDBs(t *testing.T) {
	a, b := testharness.StartRedisDebug(t), testharness.StartRedisDebug(t)
	populate(t, a.Addr)
	populate(t, b.Addr)
	testharness.RedisClient(t, b.Addr, 0).Set(ctx, "s:3", "changed", 0)
	testharness.RedisClient(t, b.Addr, 3).Set(ctx, "db3:a", "changed", 0)
	rep := compare(t, a.Addr, b.Addr, Options{DBs: []int{3}})
	if rep.Different != 1 || rep.Samples[0].Key != "db3:a" {
		t.Fatalf("%v %+v", rep, rep.Samples)
	}
	rep = compare(t, a.Addr, b.Addr, Options{KeyFilter: func(k []byte) bool { return k[0] == 'l' }})
	if !rep.Equal() || rep.Checked != 2 {
		t.Fatalf("%v", rep)
	}
}

// TestRESP3 runs the comparison through RESP3 clients (scores as doubles,
// maps for XINFO).
func TestRESP3(t *testing.T) {
	a, b := testharness.StartRedisDebug(t), testharness.StartRedisDebug(t)
	populate(t, a.Addr)
	populate(t, b.Addr)
	d := redis.NewClient(&redis.Options{Addr: b.Addr, Protocol: 3})
	defer d.Close()
	s := redis.NewClient(&redis.Options{Addr: a.Addr, Protocol: 3})
	defer s.Close()
	rep, err := Compare(ctx, s, d, Options{Chunk: 100})
	if err != nil || !rep.Equal() {
		t.Fatalf("%v %v %+v", err, rep, rep.Samples)
	}
	d.XGroupSetID(ctx, "st:1", "g2", "1-12")
	d.ZAdd(ctx, "zset:small", redis.Z{Score: math.Nextafter(0.1, 1), Member: "tenth"})
	rep, err = Compare(ctx, s, d, Options{Chunk: 100, RecheckDelay: time.Millisecond})
	if err != nil || rep.Different != 2 || rep.ByKind[Stream] != 1 || rep.ByKind[Value] != 1 {
		t.Fatalf("%v %v %+v", err, rep, rep.Samples)
	}
}

func fillSimple(t *testing.T, c redis.Cmdable) {
	t.Helper()
	for i := 0; i < 3000; i++ {
		k := "k" + strconv.Itoa(i)
		switch i % 4 {
		case 0:
			c.Set(ctx, k, strconv.Itoa(i), 0)
		case 1:
			c.RPush(ctx, k, "a", strconv.Itoa(i))
		case 2:
			c.ZAdd(ctx, k, redis.Z{Score: float64(i) / 7, Member: "m"})
		case 3:
			c.HSet(ctx, k, "f", strconv.Itoa(i))
		}
	}
	c.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "5-1", Values: []any{"a", "b"}})
	c.XGroupCreate(ctx, "st", "g", "0")
	c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"st", ">"}})
}

// TestClusterSides compares a 3-master cluster with a standalone server,
// both ways round.
func TestClusterSides(t *testing.T) {
	nodes := testharness.StartRedisCluster(t, 3, 0)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].Addr}})
	defer cc.Close()
	single := testharness.StartRedisDebug(t)
	sc := testharness.RedisClient(t, single.Addr, 0)
	fillSimple(t, cc)
	fillSimple(t, sc)
	for _, dir := range []struct {
		name     string
		src, dst redis.UniversalClient
	}{{"cluster-to-standalone", cc, sc}, {"standalone-to-cluster", sc, cc}} {
		rep, err := Compare(ctx, dir.src, dir.dst, Options{RecheckDelay: time.Millisecond})
		if err != nil || !rep.Equal() || rep.Checked != 3001 {
			t.Fatalf("%s: %v %v %+v", dir.name, err, rep, rep.Samples)
		}
	}
	cc.Set(ctx, "only-in-cluster", "1", 0)
	cc.ZAdd(ctx, "k2", redis.Z{Score: math.Nextafter(2.0/7, 0), Member: "m"})
	sc.Set(ctx, "only-in-single", "1", 0)
	rep, err := Compare(ctx, cc, sc, Options{RecheckDelay: time.Millisecond})
	if err != nil || rep.Missing != 1 || rep.Extra != 1 || rep.Different != 1 {
		t.Fatalf("%v %v %+v", err, rep, rep.Samples)
	}
	rep, err = Compare(ctx, sc, cc, Options{RecheckDelay: time.Millisecond})
	if err != nil || rep.Missing != 1 || rep.Extra != 1 || rep.Different != 1 || rep.Samples[0].Key != "k2" && rep.Samples[1].Key != "k2" {
		t.Fatalf("%v %v %+v", err, rep, rep.Samples)
	}
}
