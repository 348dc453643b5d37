package writer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSetsAcrossDBs(t *testing.T) {
	srv := startRedis(t)
	w := mustNew(t, Options{Addrs: []string{srv.Addr}})
	const n = 20000
	for i := 0; i < n; i++ {
		do(t, w, i%4, "SET", "k"+strconv.Itoa(i), "v"+strconv.Itoa(i))
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := w.Applied(); got != n {
		t.Fatalf("Applied = %d, want %d", got, n)
	}
	ctx := context.Background()
	for db := 0; db < 4; db++ {
		c := client(t, srv.Addr, db)
		if sz := c.DBSize(ctx).Val(); sz != n/4 {
			t.Fatalf("db %d: %d keys, want %d", db, sz, n/4)
		}
	}
	if v := client(t, srv.Addr, 3).Get(ctx, "k7").Val(); v != "v7" {
		t.Fatalf("k7 = %q", v)
	}
}

func TestBinarySafe(t *testing.T) {
	srv := startRedis(t)
	w := mustNew(t, Options{Addrs: []string{srv.Addr}, Conns: 3})
	key := []byte("k\r\n\x00\xff{x}")
	val := []byte("\r\n*3\r\n$1\x00\xfe")
	if err := w.Do(0, []byte("SET"), key, val); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := client(t, srv.Addr, 0).Get(context.Background(), string(key)).Bytes()
	if err != nil || string(got) != string(val) {
		t.Fatalf("got %q %v", got, err)
	}
}

// TestOrderPerKey interleaves order-sensitive commands on many keys.
func TestOrderPerKey(t *testing.T) {
	srv := startRedis(t)
	w := mustNew(t, Options{Addrs: []string{srv.Addr}, Batch: 7})
	want := map[string]string{}
	for i := 0; i < 3000; i++ {
		k := "a" + strconv.Itoa(i%97)
		s := strconv.Itoa(i % 10)
		if i%13 == 0 {
			do(t, w, 0, "SET", k, s)
			want[k] = s
		} else {
			do(t, w, 0, "APPEND", k, s)
			want[k] += s
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := client(t, srv.Addr, 0)
	for k, v := range want {
		if got := c.Get(context.Background(), k).Val(); got != v {
			t.Fatalf("%s = %q, want %q", k, got, v)
		}
	}
}

// stream generates a random but valid command stream over typed key spaces,
// with multi-key commands, transactions, SWAPDB and FLUSHDB.
func stream(seed int64, n int) [][]string {
	r := rand.New(rand.NewSource(seed))
	k := func(prefix string) string { return prefix + strconv.Itoa(r.Intn(40)) }
	v := func() string { return strconv.Itoa(r.Intn(1000)) }
	one := func() []string {
		switch r.Intn(20) {
		case 0, 1:
			return []string{"SET", k("s"), v()}
		case 2:
			return []string{"APPEND", k("s"), v()}
		case 3:
			return []string{"INCRBY", k("c"), v()}
		case 4:
			return []string{"MSET", k("s"), v(), k("s"), v(), k("s"), v()}
		case 5:
			return []string{"DEL", k("s"), k("l"), k("set")}
		case 6, 7:
			return []string{"SADD", k("set"), v(), v()}
		case 8:
			return []string{"SMOVE", k("set"), k("set"), v()}
		case 9:
			return []string{"SUNIONSTORE", k("set"), k("set"), k("set")}
		case 10, 11:
			return []string{"RPUSH", k("l"), v(), v()}
		case 12:
			return []string{"LMOVE", k("l"), k("l"), "LEFT", "RIGHT"}
		case 13:
			return []string{"HSET", k("h"), v(), v()}
		case 14:
			return []string{"ZADD", k("z"), v(), v()}
		case 15:
			return []string{"ZUNIONSTORE", k("z"), "2", k("z"), k("z"), "WEIGHTS", "1", "2"}
		case 16:
			return []string{"PEXPIREAT", k("s"), "4102444800000"}
		case 17:
			return []string{"UNLINK", k("h"), k("z")}
		case 18:
			return []string{"LPUSH", k("l"), v()}
		default:
			return []string{"HINCRBY", k("h"), "f", v()}
		}
	}
	var out [][]string
	db := 0
	for len(out) < n {
		if r.Intn(30) == 0 {
			db = r.Intn(3)
		}
		sel := []string{"#db", strconv.Itoa(db)}
		switch x := r.Intn(200); {
		case x < 6: // transaction
			out = append(out, sel, []string{"MULTI"})
			for j := 0; j < 1+r.Intn(4); j++ {
				out = append(out, one())
			}
			out = append(out, []string{"EXEC"})
		case x == 6:
			out = append(out, sel, []string{"SWAPDB", "0", strconv.Itoa(1 + r.Intn(2))})
		case x == 7 && r.Intn(4) == 0:
			out = append(out, sel, []string{"FLUSHDB"})
		case x == 8:
			src, dst := k("s"), k("s")
			out = append(out, sel, []string{"SET", src, v()}, []string{"RENAME", src, dst})
		default:
			out = append(out, sel, one())
		}
	}
	return out
}

// applySequential applies the stream on one plain connection, in order.
func applySequential(t *testing.T, addr string, cmds [][]string) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	db := -1
	send := func(args [][]byte) {
		if _, err := roundTrip(nc, br, args); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
	}
	for _, c := range cmds {
		if c[0] == "#db" {
			if d, _ := strconv.Atoi(c[1]); d != db {
				send(bs("SELECT", c[1]))
				db = d
			}
			continue
		}
		if _, err := nc.Write(appendCommand(nil, bs(c...))); err != nil {
			t.Fatal(err)
		}
		v, err := readValue(br)
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := v.(replyError); ok {
			t.Fatalf("%q: %v", c, e)
		}
	}
}

func applyWriter(t *testing.T, w *Writer, cmds [][]string) {
	db := 0
	for _, c := range cmds {
		if c[0] == "#db" {
			db, _ = strconv.Atoi(c[1])
			continue
		}
		do(t, w, db, c...)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestStreamMatchesSequential applies one random stream through the writer
// (8 connections, small batches) and on a single connection in order: every
// db must end with the same DEBUG DIGEST.
func TestStreamMatchesSequential(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(strconv.Itoa(int(seed)), func(t *testing.T) {
			a, b := startRedis(t), startRedis(t)
			cmds := stream(seed, 20000)
			w := mustNew(t, Options{Addrs: []string{a.Addr}, Batch: 16})
			applyWriter(t, w, cmds)
			applySequential(t, b.Addr, cmds)
			for db := 0; db < 3; db++ {
				da, db2 := digest(t, a.Addr, db), digest(t, b.Addr, db)
				if da != db2 {
					t.Fatalf("db %d: writer digest %s, sequential %s", db, da, db2)
				}
				if da == strings.Repeat("0", 40) && db == 0 {
					t.Fatalf("db 0 empty: the stream did nothing")
				}
			}
		})
	}
}

// TestMultiExecOneBlock checks with MONITOR that a MULTI/EXEC block whose
// keys are on different connections is sent contiguously by one client.
func TestMultiExecOneBlock(t *testing.T) {
	srv := startRedis(t)
	mon, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	mbr := bufio.NewReader(mon)
	if _, err := roundTrip(mon, mbr, bs("MONITOR")); err != nil {
		t.Fatal(err)
	}
	w := mustNew(t, Options{Addrs: []string{srv.Addr}})
	// Background traffic on many keys.
	for i := 0; i < 500; i++ {
		do(t, w, 0, "SET", "bg"+strconv.Itoa(i), "x")
	}
	do(t, w, 1, "MULTI")
	do(t, w, 1, "SET", "ta", "1")
	do(t, w, 1, "INCR", "tb")
	do(t, w, 1, "RPUSH", "tc", "x")
	do(t, w, 1, "EXEC")
	for i := 0; i < 500; i++ {
		do(t, w, 0, "SET", "bg"+strconv.Itoa(i), "y")
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	do(t, w, 0, "SET", "end-marker", "1")
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := client(t, srv.Addr, 1).Get(context.Background(), "tb").Val(); n != "1" {
		t.Fatalf("tb = %q", n)
	}
	// Read the monitor until the end marker.
	var lines []string
	mon.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		l, err := mbr.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
		if strings.Contains(l, "end-marker") {
			break
		}
	}
	start := -1
	for i, l := range lines {
		if strings.Contains(l, `"MULTI"`) {
			start = i
			break
		}
	}
	if start < 0 || start+4 >= len(lines) {
		t.Fatalf("no MULTI in monitor output")
	}
	client := func(l string) string {
		i := strings.Index(l, "[")
		j := strings.Index(l, "]")
		return l[i:j]
	}
	want := []string{`"MULTI"`, `"SET" "ta"`, `"INCR" "tb"`, `"RPUSH" "tc"`, `"EXEC"`}
	for j, wnt := range want {
		l := lines[start+j]
		if !strings.Contains(l, wnt) || client(l) != client(lines[start]) {
			t.Fatalf("monitor line %d = %q, want %s from %s", j, l, wnt, client(lines[start]))
		}
	}
}

func TestErrorReplyNamesCommandAndKey(t *testing.T) {
	srv := startRedis(t)
	w := mustNew(t, Options{Addrs: []string{srv.Addr}})
	do(t, w, 0, "SET", "str", "x")
	do(t, w, 0, "LPUSH", "str", "y")
	err := w.Flush(context.Background())
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Command != "LPUSH" || ce.Key != "str" || !strings.HasPrefix(ce.Msg, "WRONGTYPE") {
		t.Fatalf("Flush = %v", err)
	}
	if err := w.Do(0, bs("SET", "a", "b")...); err == nil {
		t.Fatal("Do after a failure must fail")
	}
}

func TestErrorInsideExec(t *testing.T) {
	srv := startRedis(t)
	w := mustNew(t, Options{Addrs: []string{srv.Addr}})
	do(t, w, 2, "SET", "str", "x")
	do(t, w, 2, "MULTI")
	do(t, w, 2, "SET", "other", "1")
	do(t, w, 2, "SADD", "str", "m")
	err := w.Do(2, bs("EXEC")...) // a barrier: it may already report the error
	if err == nil {
		err = w.Flush(context.Background())
	}
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Command != "SADD" || ce.Key != "str" || ce.DB != 2 {
		t.Fatalf("Flush = %v (%+v)", err, ce)
	}
}

func TestOnReplyErrorSkips(t *testing.T) {
	srv := startRedis(t)
	var mu sync.Mutex
	var seen []string
	w := mustNew(t, Options{Addrs: []string{srv.Addr}, OnReplyError: func(ce *CommandError) error {
		mu.Lock()
		seen = append(seen, ce.Command+" "+ce.Key)
		mu.Unlock()
		return nil
	}})
	do(t, w, 0, "SET", "str", "x")
	do(t, w, 0, "LPUSH", "str", "y")
	do(t, w, 0, "SET", "after", "1")
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.Skipped() != 1 || len(seen) != 1 || seen[0] != "LPUSH str" || w.Applied() != 3 {
		t.Fatalf("skipped %d applied %d seen %v", w.Skipped(), w.Applied(), seen)
	}
	if client(t, srv.Addr, 0).Get(context.Background(), "after").Val() != "1" {
		t.Fatal("command after the skipped one not applied")
	}
}

// TestBigHashBoundedMemory sends a 50 MB hash as HSET chunks: the bytes
// queued and in flight never exceed the bound.
func TestBigHashBoundedMemory(t *testing.T) {
	srv := startRedis(t)
	const limit = 4 << 20
	w := mustNew(t, Options{Addrs: []string{srv.Addr}, MaxQueueBytes: limit, BatchBytes: 256 << 10})
	val := make([]byte, 1000)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	const fields = 50_000 // 50 MB of values
	const chunk = 100
	args := make([][]byte, 0, 2+2*chunk)
	for i := 0; i < fields; i += chunk {
		args = append(args[:0], []byte("HSET"), []byte("bighash"))
		for j := i; j < i+chunk; j++ {
			args = append(args, []byte("f"+strconv.Itoa(j)), val)
		}
		if err := w.Do(0, args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := client(t, srv.Addr, 0).HLen(context.Background(), "bighash").Val(); n != fields {
		t.Fatalf("HLEN = %d", n)
	}
	hw := w.sa.budget.highWater()
	t.Logf("queue high water: %d bytes (limit %d)", hw, limit)
	if hw > limit+(256<<10)+200<<10 {
		t.Fatalf("queued %d bytes, bound is %d", hw, limit)
	}
}

func TestKeyPositionsFromCOMMAND(t *testing.T) {
	srv := startRedis(t)
	w := mustNew(t, Options{Addrs: []string{srv.Addr}, Conns: 1})
	cases := []struct {
		cmd  string
		keys string // space-separated, "?" for unknown
	}{
		{"SET k v", "k"},
		{"MSET a 1 b 2 c 3", "a b c"},
		{"DEL a b", "a b"},
		{"RENAME a b", "a b"},
		{"SMOVE s d m", "s d"},
		{"LMOVE s d LEFT RIGHT", "s d"},
		{"SUNIONSTORE d a b", "d a b"},
		{"ZUNIONSTORE d 2 a b WEIGHTS 1 2", "d a b"},
		{"XGROUP CREATE st g $", "st"},
		{"XGROUP SETID st g 0", "st"},
		{"XCLAIM st g c 0 1-1", "st"},
		{"RESTORE k 0 payload", "k"},
		{"PEXPIREAT k 1", "k"},
		{"EVAL script 2 a b x", "a b"},
		{"SORT k BY x STORE d", "?"},
		{"FLUSHALL", ""},
		{"BITOP AND d a b", "d a b"},
		{"GEORADIUS k 1 2 3 m STORE d", "k d"},
		{"LMPOP 2 a b LEFT", "a b"},
	}
	for _, c := range cases {
		args := bs(strings.Fields(c.cmd)...)
		var nb [32]byte
		ci := w.table.lookup(string(lowerName(&nb, args[0])), args)
		pos, class := ci.keys(args, nil)
		var got []string
		for _, p := range pos {
			got = append(got, string(args[p]))
		}
		g := strings.Join(got, " ")
		if class == keysUnknown {
			g = "?"
		}
		if g != c.keys {
			t.Errorf("%s: keys %q, want %q", c.cmd, g, c.keys)
		}
	}
}

// TestNoKeyCommandsAreBarriers: FLUSHDB between writes must not lose later
// writes nor keep earlier ones, whatever connection they were on.
func TestNoKeyCommandsAreBarriers(t *testing.T) {
	srv := startRedis(t)
	w := mustNew(t, Options{Addrs: []string{srv.Addr}})
	for round := 0; round < 20; round++ {
		for i := 0; i < 200; i++ {
			do(t, w, 0, "SET", fmt.Sprintf("k%d", i), "old")
		}
		do(t, w, 0, "FLUSHDB")
		for i := 0; i < 100; i++ {
			do(t, w, 0, "SET", fmt.Sprintf("k%d", i), "new")
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := client(t, srv.Addr, 0)
	if n := c.DBSize(context.Background()).Val(); n != 100 {
		t.Fatalf("dbsize %d, want 100", n)
	}
}

func TestLingerSendsWithoutFlush(t *testing.T) {
	srv := startRedis(t)
	w := mustNew(t, Options{Addrs: []string{srv.Addr}})
	do(t, w, 0, "SET", "lonely", "1")
	c := client(t, srv.Addr, 0)
	deadline := time.Now().Add(2 * time.Second)
	for c.Exists(context.Background(), "lonely").Val() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a partial batch was not sent without Flush")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAuth(t *testing.T) {
	srv := startRedis(t, "--requirepass", "s3cret")
	if _, err := New(context.Background(), Options{Addrs: []string{srv.Addr}, Password: "wrong"}); err == nil {
		t.Fatal("wrong password accepted")
	}
	w := mustNew(t, Options{Addrs: []string{srv.Addr}, Password: "s3cret", Conns: 2})
	do(t, w, 0, "SET", "a", "1")
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestCloseUnblocksBackpressure: Do blocked on a full queue (the target
// paused) returns once Close is called.
func TestCloseUnblocksBackpressure(t *testing.T) {
	srv := startRedis(t)
	w, err := New(context.Background(), Options{Addrs: []string{srv.Addr}, Conns: 2, MaxQueueBytes: 64 << 10, BatchBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := client(t, srv.Addr, 0).Do(context.Background(), "CLIENT", "PAUSE", "3000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 1024)
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if err := w.Do(0, []byte("SET"), []byte("k"+strconv.Itoa(i)), val); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Do did not block on a paused target: %v", err)
	default:
	}
	if hw := w.sa.budget.highWater(); hw > 64<<10+8<<10+2048 {
		t.Fatalf("queued %d bytes", hw)
	}
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Do after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Do still blocked after Close")
	}
}
