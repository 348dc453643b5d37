package scan_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	redisengine "github.com/ferrymigrate/ferry/engine/redis"
	"github.com/ferrymigrate/ferry/engine/redis/internal/redistest"
	"github.com/ferrymigrate/ferry/engine/redis/scan"
	"github.com/ferrymigrate/ferry/engine/redis/verify"
	"github.com/ferrymigrate/ferry/internal/testharness"
)

// noPSYNC starts a source the way a managed service looks to a replica:
// PSYNC and SYNC do not exist.
var noPSYNC = []string{"--rename-command", "PSYNC", "", "--rename-command", "SYNC", ""}

func scanOpts(extra map[string]string) ferry.Options {
	x := map[string]string{"mode": "scan"}
	for k, v := range extra {
		x[k] = v
	}
	return ferry.Options{Extra: x}
}

// agentOwnEngine starts an agent with an engine of its own, as a separate
// process would have (no session handed over in memory).
func agentOwnEngine(e *redistest.Env, id string) *agent.Agent {
	reg := ferry.NewRegistry()
	reg.Register(redisengine.New(redistest.Logger(e.T)))
	return e.AgentOn(id, reg)
}

type scanCP struct {
	Session   string `json:"session"`
	DB        int    `json:"db"`
	Cursor    uint64 `json:"cursor"`
	Complete  bool   `json:"complete"`
	Done      int64  `json:"done"`
	Ops       int64  `json:"ops"`
	Rescans   int    `json:"rescans"`
	Reconcile bool   `json:"reconcile"`
}

func stepCP(t *testing.T, m *ferry.Migration, step ferry.StepName) scanCP {
	t.Helper()
	var cp scanCP
	if s := m.Step(step); s != nil && len(s.Checkpoint) > 0 {
		if err := json.Unmarshal(s.Checkpoint, &cp); err != nil {
			t.Fatal(err)
		}
	}
	return cp
}

// checkEqual asserts the verification step's numbers and that DEBUG DIGEST
// (every db, values and the presence of TTLs) is the same on both sides.
func checkEqual(e *redistest.Env, m *ferry.Migration) {
	e.T.Helper()
	if v := m.Step(ferry.StepVerify); v != nil {
		if v.Counters.Missing != 0 || v.Counters.Extra != 0 || v.Counters.Different != 0 || v.Counters.Done == 0 {
			e.T.Fatalf("verify counters %+v (%s)", v.Counters, v.Message)
		}
	}
	rep, err := verify.Compare(context.Background(), e.SrcC, e.DstC, verify.Options{Rounds: 2, RecheckDelay: 200 * time.Millisecond})
	if err != nil {
		e.T.Fatal(err)
	}
	if !rep.Equal() {
		e.T.Fatalf("verify: %s %+v", rep, rep.Samples)
	}
	if a, b := redistest.Digest(e.T, e.SrcC), redistest.Digest(e.T, e.DstC); a != b {
		e.T.Fatalf("DEBUG DIGEST differs: source %s target %s", a, b)
	}
}

// cutOverAndCheck stops the application writer (first its keys that
// expire, so that none is left to expire on one side only), cuts over,
// waits for the job to complete and checks that both sides are equal and
// that every write of the writer arrived.
func cutOverAndCheck(t *testing.T, e *redistest.Env, m *ferry.Migration, lw *liveWriter, timeout time.Duration) (*ferry.Migration, int) {
	t.Helper()
	lw.noTTL.Store(true)
	time.Sleep(300 * time.Millisecond)
	written := lw.halt()
	waitNoExpiring(t, e.SrcC)
	if _, err := e.Svc.CutoverMigration(e.Ctx, e.Proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.Wait(m.ID, "completed", timeout, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	checkEqual(e, m)
	if n, err := e.DstC.HGet(context.Background(), "live:counter", "n").Int(); err != nil || n != written {
		t.Fatalf("live:counter = %d (%v), want %d", n, err, written)
	}
	return m, written
}

// liveWriter writes to the source like an application: strings, a counter,
// a zset, deletes, keys that expire, renames, a list used as a queue, a
// stream read by a consumer group, in db 0 and db 1.
type liveWriter struct {
	once    sync.Once
	stop    chan struct{}
	wg      sync.WaitGroup
	n       atomic.Int64
	noTTL   atomic.Bool // stop writing keys that expire
	counter int
}

func startLiveWriter(t *testing.T, addr string) *liveWriter {
	w := &liveWriter{stop: make(chan struct{})}
	t.Cleanup(func() { w.halt() })
	c0 := goredis.NewClient(&goredis.Options{Addr: addr})
	c1 := goredis.NewClient(&goredis.Options{Addr: addr, DB: 1})
	ctx := context.Background()
	c0.Set(ctx, "live:ren:0", "moving", 0)
	c0.XGroupCreateMkStream(ctx, "live:stream", "grp", "$")
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer c0.Close()
		defer c1.Close()
		for i := 1; ; i++ {
			select {
			case <-w.stop:
				w.counter = i - 1
				return
			default:
			}
			p := c0.Pipeline()
			p.Set(ctx, fmt.Sprintf("live:%d", i), i, 0)
			p.HIncrBy(ctx, "live:counter", "n", 1)
			p.ZAdd(ctx, "live:z", goredis.Z{Score: float64(i) / 3, Member: fmt.Sprint(i)})
			p.Rename(ctx, fmt.Sprintf("live:ren:%d", i-1), fmt.Sprintf("live:ren:%d", i))
			p.LPush(ctx, "live:queue", i)
			if i%3 == 0 {
				p.RPop(ctx, "live:queue")
			}
			if i%10 == 0 {
				p.Del(ctx, fmt.Sprintf("live:%d", i-5))
			}
			if i%7 == 0 && !w.noTTL.Load() {
				p.Set(ctx, fmt.Sprintf("live:ttl:%d", i), "short", 150*time.Millisecond)
			}
			p.XAdd(ctx, &goredis.XAddArgs{Stream: "live:stream", Values: []any{"i", i}})
			if i%4 == 0 {
				p.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "grp", Consumer: "c1", Streams: []string{"live:stream", ">"}, Count: 2, NoAck: false})
			}
			if _, err := p.Exec(ctx); err != nil && err != goredis.Nil {
				t.Error(err)
				return
			}
			p1 := c1.Pipeline()
			p1.SAdd(ctx, "live:set1", i%50)
			if i%5 == 0 {
				p1.SRem(ctx, "live:set1", (i/5)%50)
			}
			p1.IncrBy(ctx, "live:db1counter", 1)
			if _, err := p1.Exec(ctx); err != nil {
				t.Error(err)
				return
			}
			w.n.Store(int64(i))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

func (w *liveWriter) halt() int {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
	return w.counter
}

// waitNoExpiring waits until the keys with short TTLs (and the extra keys
// given, which expire) are gone from the source: SCAN and EXISTS delete the
// expired keys they meet, which KEYS does not; so both sides hold the same
// keys for DEBUG DIGEST.
func waitNoExpiring(t *testing.T, c *goredis.Client, extra ...string) {
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		iter := c.Scan(ctx, 0, "live:ttl:*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		if len(extra) > 0 {
			x, _ := c.Exists(ctx, extra...).Result()
			n += int(x)
		}
		if n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("short-TTL keys do not expire on the source")
}

func TestScanEndToEnd(t *testing.T) {
	e := redistest.NewEnv(t, noPSYNC...)
	redistest.Populate(t, e.SrcC, "pre:")
	e.Agent("agent-1")

	// PSYNC mode cannot work on this source, and says what to do.
	p := e.Create(ferry.Modes{Full: true, Incremental: true}, ferry.Options{})
	p = e.Wait(p.ID, "psync job to fail", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateFailed })
	if !strings.Contains(p.Error, "PSYNC") || !strings.Contains(p.Error, "use mode scan") {
		t.Fatalf("psync job error %q does not point to scan mode", p.Error)
	}
	if n, _ := e.DstC.DBSize(context.Background()).Result(); n != 0 {
		t.Fatalf("the failed psync job wrote %d keys", n)
	}

	// Scan mode: big keys (over 16 KiB here) go by chunks, the rest by
	// DUMP/RESTORE; the application writes during the whole migration.
	lw := startLiveWriter(t, e.Src)
	m := e.Create(ferry.Modes{Full: true, Incremental: true, Verify: true}, scanOpts(map[string]string{"scan_big_key_bytes": "16384", "scan_count": "64"}))
	m = e.Wait(m.ID, "ready for cutover", 60*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	full := m.Step(ferry.StepFull)
	if full.State != ferry.StepDone || full.Counters.Done < 3*15 || !strings.Contains(full.Message, "weaker than PSYNC") || !strings.Contains(full.Message, "big keys in chunks") {
		t.Fatalf("full step %+v", full)
	}
	if strings.Contains(full.Message, " 0 big keys") {
		t.Fatalf("no big key went by chunks: %s", full.Message)
	}
	inc := m.Step(ferry.StepIncremental)
	if !strings.Contains(inc.Message, "weaker than PSYNC") {
		t.Fatalf("incremental message does not say the mode is weaker: %q", inc.Message)
	}
	// Changes during the incremental step: more writes, deletes of
	// pre-existing keys, expirations, a whole new set of keys.
	time.Sleep(500 * time.Millisecond)
	ctx := context.Background()
	e.SrcC.Del(ctx, "pre:str:0", "pre:bighash:0")
	e.SrcC.Set(ctx, "pre:int:0", "changed", 0)
	e.SrcC.PExpire(ctx, "pre:list:0", 200*time.Millisecond)
	redistest.Populate(t, e.SrcC, "post:")
	lw.noTTL.Store(true)
	time.Sleep(300 * time.Millisecond)
	written := lw.halt()
	waitNoExpiring(t, e.SrcC, "pre:list:0")
	m = e.Wait(m.ID, "caught up", 30*time.Second, func(m *ferry.Migration) bool { return m.LagSeconds != nil && *m.LagSeconds == 0 })
	if _, err := e.Svc.CutoverMigration(e.Ctx, e.Proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.Wait(m.ID, "completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	checkEqual(e, m)
	inc = m.Step(ferry.StepIncremental)
	if inc.Counters.Ops == 0 || !strings.Contains(inc.Message, "cutover") {
		t.Fatalf("incremental step %+v", inc)
	}
	if n, err := e.DstC.HGet(ctx, "live:counter", "n").Int(); err != nil || n != written {
		t.Fatalf("live:counter = %d (%v), want %d", n, err, written)
	}
	if ex, _ := e.DstC.Exists(ctx, fmt.Sprintf("live:ren:%d", written), "pre:str:0", "pre:list:0").Result(); ex != 1 {
		t.Fatalf("renamed/deleted/expired keys: %d of the 3 exist on the target, want only the renamed one", ex)
	}
	if fn, _ := e.DstC.Do(ctx, "FCALL", "ferryfn", 0).Int(); fn != 1 {
		t.Fatal("function library not migrated")
	}
	// ferry put back the source's notify-keyspace-events.
	if v, _ := e.SrcC.ConfigGet(ctx, "notify-keyspace-events").Result(); v["notify-keyspace-events"] != "" {
		t.Fatalf("notify-keyspace-events left at %q", v["notify-keyspace-events"])
	}
	t.Logf("full: %d keys in %v (%s); incremental: %d keys re-copied; %d app writes",
		full.Counters.Done, full.FinishedAt.Sub(*full.StartedAt).Round(time.Millisecond), full.Message, inc.Counters.Ops, written)
}

func TestScanKillAndResume(t *testing.T) {
	e := redistest.NewEnv(t, noPSYNC...)
	redistest.Populate(t, e.SrcC, "pre:")
	ctx := context.Background()
	// Enough keys, scanned 5 at a time, for the full scan to be killed
	// in the middle.
	for db := 0; db < 2; db++ {
		c := goredis.NewClient(&goredis.Options{Addr: e.Src, DB: db})
		// 20k keys a db: at 5 keys a SCAN the copy takes long enough to be
		// killed in the middle, and still ends in time on a loaded machine
		// (100k keys took over two minutes there).
		for b := 0; b < 20; b++ {
			p := c.Pipeline()
			for i := 0; i < 1000; i++ {
				p.Set(ctx, fmt.Sprintf("bulk:%d:%d", b, i), strings.Repeat("x", i%40), 0)
			}
			if _, err := p.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	m := e.Create(ferry.Modes{Full: true, Incremental: true, Verify: true}, scanOpts(map[string]string{"scan_count": "5"}))
	a1 := e.Agent("agent-1")
	lw := startLiveWriter(t, e.Src)
	m = e.Wait(m.ID, "full scan under way", 60*time.Second, func(m *ferry.Migration) bool {
		cp := stepCP(t, m, ferry.StepFull)
		return m.CurrentStep == ferry.StepFull && cp.Done > 1000 && cp.Cursor != 0
	})
	a1.Kill()
	cp1 := stepCP(t, m, ferry.StepFull)
	e.SrcC.Del(ctx, "bulk:0:1", "bulk:0:2") // scanned already, most likely

	// Same process (the engine keeps the subscription): the scan resumes
	// from its cursor.
	a2 := e.Agent("agent-2")
	m = e.Wait(m.ID, "ready for cutover", 120*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	cp2 := stepCP(t, m, ferry.StepFull)
	if cp2.Rescans != 0 || !cp2.Complete {
		t.Fatalf("the full scan did not resume from its cursor: before %+v, after %+v", cp1, cp2)
	}

	// A new process: the subscription is gone, so the incremental step
	// rescans; what changed while no agent ran arrives, including deletes
	// and a FLUSHDB, which send no notification.
	a2.Kill()
	e.SrcC.Del(ctx, "bulk:1:1", "pre:set:0", "pre:stream:0")
	e.SrcC.HSet(ctx, "pre:hash:0", "new", "field")
	c2 := goredis.NewClient(&goredis.Options{Addr: e.Src, DB: 2})
	c2.FlushDB(ctx)
	c2.Set(ctx, "after-flush", "1", 0)
	agentOwnEngine(e, "agent-3")
	m = e.Wait(m.ID, "incremental again", 120*time.Second, func(m *ferry.Migration) bool {
		return m.ReadyForCutover && stepCP(t, m, ferry.StepIncremental).Rescans > 0 && m.Lease != nil && m.Lease.AgentID == "agent-3"
	})
	// FLUSHDB during the incremental step: found by INFO commandstats.
	c2.FlushDB(ctx)
	c2.Set(ctx, "after-second-flush", "1", 0)
	c2.Close()
	time.Sleep(2500 * time.Millisecond)
	m, written := cutOverAndCheck(t, e, m, lw, 120*time.Second)
	icp := stepCP(t, m, ferry.StepIncremental)
	if icp.Rescans < 2 {
		t.Fatalf("want a rescan after the restart and one after FLUSHDB, checkpoint %+v", icp)
	}
	t.Logf("killed mid-full at %d keys (cursor %d), resumed; incremental rescans %d, %d keys re-copied, %d app writes", cp1.Done, cp1.Cursor, icp.Rescans, icp.Ops, written)
}

func TestScanNotificationsForbidden(t *testing.T) {
	// A managed source: no PSYNC, no CONFIG, no CLIENT (so no CLIENT
	// PAUSE); notifications set by its operator (a parameter group).
	e := redistest.NewEnv(t, append(noPSYNC, "--rename-command", "CONFIG", "", "--rename-command", "CLIENT", "", "--notify-keyspace-events", "KA")...)
	redistest.Populate(t, e.SrcC, "pre:")
	e.Agent("agent-1")
	m := e.Create(ferry.Modes{Full: true, Incremental: true}, scanOpts(nil))
	m = e.Wait(m.ID, "scan job to fail", 30*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateFailed })
	if !strings.Contains(m.Error, "notify-keyspace-events") || !strings.Contains(m.Error, "preconfigured") || m.Step(ferry.StepFull).State != ferry.StepPending {
		t.Fatalf("error %q does not explain how to enable notifications (or the job went past precheck)", m.Error)
	}
	lw := startLiveWriter(t, e.Src)
	m = e.Create(ferry.Modes{Full: true, Incremental: true, Verify: true}, scanOpts(map[string]string{"notify_keyspace_events": "preconfigured", "cutover_pause": "none"}))
	m = e.Wait(m.ID, "ready for cutover", 60*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	m, _ = cutOverAndCheck(t, e, m, lw, 60*time.Second)
	if msg := m.Step(ferry.StepIncremental).Message; !strings.Contains(msg, "not paused by ferry") {
		t.Fatalf("incremental message %q does not say the source was not paused", msg)
	}
}

// TestScanTypeSpecificCopies copies every type without RESTORE: by
// option, when the target is known to be too old for the payloads, and
// when the target refuses them.
func TestScanTypeSpecificCopies(t *testing.T) {
	cases := []struct {
		name  string
		extra map[string]string
		hook  func([]byte) []byte
		note  string
	}{
		{name: "commands", extra: map[string]string{"scan_copy": "commands"}},
		// A payload of a newer RDB version than the target's: known
		// before RESTORE is tried.
		{name: "newer-payload", hook: scan.BumpPayloadVersion, note: "type-specific"},
		// A payload the target refuses ("DUMP payload version or checksum
		// are wrong"): found by the RESTORE's error reply.
		{name: "refused-payload", hook: scan.ZeroPayloadChecksum, note: "refused the source"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := redistest.NewEnv(t)
			redistest.Populate(t, e.SrcC, "pre:")
			if tc.hook != nil {
				t.Cleanup(scan.SetScanPayloadHook(tc.hook))
			}
			e.Agent("agent-1")
			m := e.Create(ferry.Modes{Full: true, Verify: true}, scanOpts(tc.extra))
			m = e.Wait(m.ID, "completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
			checkEqual(e, m)
			full := m.Step(ferry.StepFull)
			if strings.Contains(full.Message, " 0 by type-specific commands") || !strings.Contains(full.Message, tc.note) {
				t.Fatalf("full step: %s", full.Message)
			}
			if fn, _ := e.DstC.Do(context.Background(), "FCALL", "ferryfn", 0).Int(); fn != 1 {
				t.Fatal("function library not migrated")
			}
		})
	}
}

// TestScanBigKeys copies a 1M-element list, a ~50 MB hash, a big zset and
// a big string in chunks; the test process's heap is sampled meanwhile.
func TestScanBigKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("big keys")
	}
	e := redistest.NewEnv(t)
	ctx := context.Background()
	fill := func(n, per int, add func(p goredis.Pipeliner, from, to int)) {
		for i := 0; i < n; i += per {
			p := e.SrcC.Pipeline()
			add(p, i, min(i+per, n))
			if _, err := p.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill(1_000_000, 10000, func(p goredis.Pipeliner, from, to int) {
		vals := make([]any, 0, to-from)
		for i := from; i < to; i++ {
			vals = append(vals, i)
		}
		p.RPush(ctx, "big:list", vals...)
	})
	val := strings.Repeat("v", 90)
	fill(500_000, 5000, func(p goredis.Pipeliner, from, to int) {
		vals := make([]any, 0, 2*(to-from))
		for i := from; i < to; i++ {
			vals = append(vals, fmt.Sprintf("field-%d", i), val)
		}
		p.HSet(ctx, "big:hash", vals...)
	})
	fill(200_000, 5000, func(p goredis.Pipeliner, from, to int) {
		zs := make([]goredis.Z, 0, to-from)
		for i := from; i < to; i++ {
			zs = append(zs, goredis.Z{Score: float64(i) / 7, Member: fmt.Sprint(i)})
		}
		p.ZAdd(ctx, "big:zset", zs...)
	})
	fill(100_000, 5000, func(p goredis.Pipeliner, from, to int) {
		vals := make([]any, 0, to-from)
		for i := from; i < to; i++ {
			vals = append(vals, fmt.Sprintf("member-%d", i))
		}
		p.SAdd(ctx, "big:set", vals...)
	})
	e.SrcC.Set(ctx, "big:string", strings.Repeat("0123456789abcdef", 1<<20), 0) // 16 MiB
	e.SrcC.PExpire(ctx, "big:hash", time.Hour)
	mem, _ := e.SrcC.MemoryUsage(ctx, "big:hash").Result()

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	e.Agent("agent-1")
	m := e.Create(ferry.Modes{Full: true}, scanOpts(map[string]string{"scan_big_key_bytes": "4194304"}))
	m = e.Wait(m.ID, "completed", 300*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	close(stop)
	wg.Wait()
	full := m.Step(ferry.StepFull)
	if !strings.Contains(full.Message, "5 big keys in chunks") {
		t.Fatalf("full step: %s", full.Message)
	}
	if a, b := redistest.Digest(t, e.SrcC), redistest.Digest(t, e.DstC); a != b {
		t.Fatalf("DEBUG DIGEST differs: source %s target %s", a, b)
	}
	rep, err := verify.Compare(ctx, e.SrcC, e.DstC, verify.Options{Rounds: 1})
	if err != nil || !rep.Equal() {
		t.Fatalf("verify: %v %v", rep, err)
	}
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("big keys (hash of %d MB in memory) copied in %v; test process heap grew by at most %d MiB",
		mem>>20, full.FinishedAt.Sub(*full.StartedAt).Round(time.Millisecond), growth>>20)
	if growth > 96<<20 {
		t.Fatalf("heap grew by %d MiB while copying big keys in chunks", growth>>20)
	}
}

// TestScanClusterSource migrates a 3-master Redis Cluster (every master
// scanned and subscribed to) into a standalone server.
func TestScanClusterSource(t *testing.T) {
	nodes := testharness.StartRedisCluster(t, 3, 0)
	e := redistest.NewEnv(t)
	ctx := context.Background()
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.Addr)
	}
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: seeds})
	t.Cleanup(func() { cc.Close() })
	for i := 0; i < 3000; i++ {
		k := fmt.Sprintf("k:%d", i)
		var err error
		switch i % 6 {
		case 0:
			err = cc.Set(ctx, k, strings.Repeat("s", i%300), 0).Err()
		case 1:
			err = cc.RPush(ctx, k, "a", "b", i).Err()
		case 2:
			err = cc.SAdd(ctx, k, i, i+1, "x").Err()
		case 3:
			err = cc.ZAdd(ctx, k, goredis.Z{Score: 1.0 / float64(i), Member: "m"}, goredis.Z{Score: -float64(i) / 3, Member: "n"}).Err()
		case 4:
			err = cc.HSet(ctx, k, "f", i, "g", "v").Err()
		case 5:
			err = cc.XAdd(ctx, &goredis.XAddArgs{Stream: k, Values: []any{"i", i}}).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%11 == 0 {
			cc.PExpire(ctx, k, time.Hour)
		}
	}
	for i := 0; i < 5000; i++ {
		cc.HSet(ctx, "bighash", fmt.Sprintf("f%d", i), strings.Repeat("v", 20))
	}
	m := &ferry.Migration{ProjectID: e.Proj.ID, Engine: ferry.KindRedis,
		Source:  ferry.Endpoint{Kind: ferry.KindRedis, Addrs: seeds[:1], Cluster: true},
		Target:  ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Dst}},
		Modes:   ferry.Modes{Full: true, Incremental: true, Verify: true},
		Options: scanOpts(map[string]string{"scan_big_key_bytes": "65536"})}
	if err := e.Svc.CreateMigration(e.Ctx, m, true); err != nil {
		t.Fatal(err)
	}
	e.Agent("agent-1")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				written = i
				return
			default:
			}
			cc.Set(ctx, fmt.Sprintf("live:%d", i), i, 0)
			cc.HIncrBy(ctx, "live:counter", "n", 1)
			cc.Del(ctx, fmt.Sprintf("k:%d", i))
			time.Sleep(time.Millisecond)
		}
	}()
	m = e.Wait(m.ID, "ready for cutover", 60*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if _, err := e.Svc.CutoverMigration(e.Ctx, e.Proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.Wait(m.ID, "completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing != 0 || v.Counters.Extra != 0 || v.Counters.Different != 0 || v.Counters.Done < 3000 {
		t.Fatalf("verify counters %+v (%s)", v.Counters, v.Message)
	}
	if n, err := e.DstC.HGet(ctx, "live:counter", "n").Int(); err != nil || n != written {
		t.Fatalf("live:counter = %d (%v), want %d", n, err, written)
	}
	full := m.Step(ferry.StepFull)
	t.Logf("cluster source: %s; incremental %d keys; verified %d keys", full.Message[:strings.Index(full.Message, " (scan mode")], m.Step(ferry.StepIncremental).Counters.Ops, v.Counters.Done)
}
