package rdb

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// synthFile starts a file of RDB version ver with the redis-ver aux field
// redisVer. n scales its long values: 10, or 1 when big is false.
func synthFile(ver int, redisVer string, big bool) (w *rdbBuilder, n int) {
	n = 1
	if big {
		n = 10
	}
	w = newRDB(ver)
	w.byte(opAux).str("redis-ver").str(redisVer)
	return w, n
}

// oldFile builds a v9 file with the encodings of Redis 2.x to 6.x.
func oldFile() *rdbBuilder { return oldFileSized(true) }

// oldFileSized builds it without its long values when big is false (fuzz seeds).
func oldFileSized(big bool) *rdbBuilder {
	w, n := synthFile(9, "5.0.0", big)
	w.byte(opAux).str("redis-bits").intStr(0, 64)
	w.byte(opSelectDB).len(0).byte(opResizeDB).len(20).len(2)
	w.key(TypeString, "s:int8").intStr(0, -100).done("s:int8")
	w.key(TypeString, "s:int16").intStr(1, -30000).done("s:int16")
	w.key(TypeString, "s:int32").intStr(2, 2000000000).done("s:int32")
	w.key(TypeString, "s:lzf").lzfStr(strings.Repeat("hello lzf ", 20*n)).done("s:lzf")
	w.byte(opExpireTime).u32(1900000000)
	w.key(TypeString, "s:expsec").str("v").done("s:expsec")
	w.byte(opExpireTimeMs).u64(1900000000123).byte(opIdle).len(77).byte(opFreq).byte(9)
	w.key(TypeList, "l:plain").len(3).str("a").intStr(0, 5).lzfStr(strings.Repeat("z", 100)).done("l:plain")
	w.key(TypeListZiplist, "l:ziplist").raw(nil)
	zl := ziplist("a", int64(0), int64(12), int64(13), int64(-1), int64(127), int64(-128), int64(300), int64(-30000),
		int64(8388607), int64(-8388608), int64(2147483647), int64(-2147483648), int64(1<<40), int64(math.MinInt64),
		strings.Repeat("m", 100), strings.Repeat("L", 300), strings.Repeat("B", 1700*n), "")
	w.str(string(zl)).done("l:ziplist")
	w.key(TypeListQuicklist, "l:quicklist").len(2).str(string(ziplist("q1", int64(1)))).lzfStr(string(ziplist("q2", strings.Repeat("c", 80), int64(2)))).done("l:quicklist")
	w.key(TypeSet, "set:plain").len(2).str("x").str("y").done("set:plain")
	w.key(TypeSetIntset, "set:intset2").str(string(intset(2, -5, 1, 300))).done("set:intset2")
	w.key(TypeSetIntset, "set:intset4").str(string(intset(4, -70000, 1))).done("set:intset4")
	w.key(TypeSetIntset, "set:intset8").str(string(intset(8, math.MinInt64, 1<<40))).done("set:intset8")
	w.key(TypeZSet, "z:old").len(6).str("a").byte(3).raw([]byte("1.5")).str("b").byte(253).str("c").byte(254).str("d").byte(255).
		str("e").byte(18).raw([]byte("0.1000000000000000")).str("f").byte(2).raw([]byte("-0")).done("z:old")
	w.key(TypeZSet2, "z:2").len(2).str("a").u64(math.Float64bits(1.0 / 3)).str("b").u64(math.Float64bits(math.Inf(-1))).done("z:2")
	w.key(TypeZSetZiplist, "z:ziplist").str(string(ziplist("a", "0.1", "b", int64(7), "c", "inf", "d", "-1e+308"))).done("z:ziplist")
	w.key(TypeHash, "h:plain").len(2).str("f").str("v").str("n").intStr(1, 1000).done("h:plain")
	w.key(TypeHashZipmap, "h:zipmap").str(string(zipmap("f1", "v1", "f2", strings.Repeat("V", 300), "", "empty"))).done("h:zipmap")
	w.key(TypeHashZiplist, "h:ziplist").str(string(ziplist("f", "v", "i", int64(-7)))).done("h:ziplist")
	// stream v1 with a group
	node := streamNode(1000, 0, []string{"a", "b"}, []sEntry{
		{1000, 0, []string{"a", "1", "b", "2"}, false},
		{1000, 1, []string{"a", "1", "b", "2"}, true},
		{1001, 0, []string{"x", "y"}, false},
	})
	w.key(TypeStreamListpacks, "st:v1").len(1).str(rawID(1000, 0)).str(string(node)).
		len(2).len(1001).len(0).                                      // length, last id
		len(1).str("grp").len(1000).len(0).                           // group, last delivered
		len(1).raw([]byte(rawID(1000, 0))).u64(1700000000000).len(2). // PEL
		len(1).str("cons").u64(1700000000500).len(1).raw([]byte(rawID(1000, 0))).done("st:v1")
	// module value: id, then uint, string, double, EOF
	modID := uint64(12345)<<10 | 3
	w.key(TypeModule2, "mod").len(modID).len(2).len(99).len(5).str("payload").len(4).u64(math.Float64bits(2.5)).len(0).done("mod")
	w.byte(opModuleAux).len(modID).len(2).len(1).len(2).len(7).len(0)
	w.byte(opFunctionPreGA).str("oldlib").str("LUA").len(1).str("desc").str("return 1")
	w.byte(opSelectDB).len(7)
	w.key(TypeString, "db7").str("seven").done("db7")
	return w
}

// newFile builds a v12 file with the encodings of Redis 7.2 and 7.4.
func newFile() *rdbBuilder { return newFileSized(true) }

func newFileSized(big bool) *rdbBuilder {
	w, n := synthFile(12, "7.4.0", big)
	w.byte(opFunction2).str("#!lua name=lib\nredis.register_function('f', function() return 1 end)")
	w.byte(opSelectDB).len(0).byte(opResizeDB).len(10).len(0)
	w.byte(opSlotInfo).len(1234).len(10).len(0)
	w.key(TypeSetListpack, "set:lp").str(string(listpack("a", int64(-5), int64(100000), strings.Repeat("s", 500*n)))).done("set:lp")
	w.key(TypeListQuicklist2, "l:q2").len(3).len(2).str(string(listpack("a", int64(1)))).len(1).str("PLAIN NODE").len(2).lzfStr(string(listpack(strings.Repeat("r", 100), int64(-4096), int64(4095), int64(1<<50)))).done("l:q2")
	w.key(TypeZSetListpack, "z:lp").str(string(listpack("a", "0.1", "b", int64(3), "c", "-inf", "d", "5e-324"))).done("z:lp")
	w.key(TypeHashListpack, "h:lp").str(string(listpack("f", "v", "n", int64(12)))).done("h:lp")
	// hash field TTLs
	w.key(TypeHashMetadata, "h:meta").u64(1800000000000).len(2).
		len(0).str("nottl").str("v1").
		len(5).str("ttl").str("v2").done("h:meta")
	w.key(TypeHashMetadataPreGA, "h:metapre").len(1).len(1800000000001).str("f").str("v").done("h:metapre")
	w.key(TypeHashListpackEx, "h:lpex").u64(1800000000000).str(string(listpack("f1", "v1", int64(0), "f2", "v2", int64(1800000000000)))).done("h:lpex")
	w.key(TypeHashListpackExPreGA, "h:lpexpre").str(string(listpack("f", "v", int64(1800000000002)))).done("h:lpexpre")
	// stream v3: two nodes, deleted entries, groups with entries-read, consumers with active time
	n1 := streamNode(5, 0, []string{"k"}, []sEntry{{5, 0, []string{"k", "v0"}, false}, {5, 1, []string{"k", "v1"}, true}})
	n2 := streamNode(6, 0, []string{"k"}, []sEntry{{6, 0, []string{"other", "x", "k", "y"}, false}, {7, 3, []string{"k", "v3"}, false}})
	w.key(TypeStreamListpacks3, "st:v3").len(2).str(rawID(5, 0)).str(string(n1)).str(rawID(6, 0)).str(string(n2)).
		len(3).len(7).len(3).               // length, last id
		len(5).len(0).len(5).len(1).len(4). // first id, max deleted id, entries added
		len(2).
		str("g1").len(6).len(0).len(3). // name, last delivered, entries read
		len(2).raw([]byte(rawID(5, 0))).u64(1700000000001).len(1).raw([]byte(rawID(6, 0))).u64(1700000000002).len(3).
		len(2).
		str("c1").u64(1700000000010).u64(1700000000011).len(1).raw([]byte(rawID(6, 0))).
		str("c2").u64(1700000000020).u64(1700000000021).len(1).raw([]byte(rawID(5, 0))).
		str("g2").len(0).len(0).len(0).len(0).len(0).done("st:v3")
	return w
}

func parseBytes(t *testing.T, data []byte, o Options) (*collector, Info) {
	t.Helper()
	col := newCollector(o)
	info, err := ParseOptions(bytes.NewReader(data), col, o)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(col.errs) > 0 {
		t.Fatalf("chunk protocol: %v", col.errs)
	}
	return col, info
}

// builtKey returns key k (DB 0) of col, failing t if it is missing, and
// checks that its captured raw bytes are the ones w wrote.
func builtKey(t *testing.T, col *collector, w *rdbBuilder, k string) *collected {
	t.Helper()
	c := col.get(0, k)
	if c == nil {
		t.Fatalf("%s missing", k)
	}
	if !bytes.Equal(c.raw, w.raws[k]) {
		t.Errorf("%s: raw %.64x (%d bytes), want %.64x (%d bytes)", k, c.raw, len(c.raw), w.raws[k], len(w.raws[k]))
	}
	return c
}

func strs(k *collected) []string { return toStrings(k.elems) }

func TestOldEncodings(t *testing.T) {
	w := oldFile()
	data := w.eof(true)
	for _, o := range []Options{{CaptureRaw: true}, {CaptureRaw: true, MaxChunkElems: 2, MaxChunkBytes: 10}} {
		col, info := parseBytes(t, data, o)
		if info.Version != 9 || !info.Verified || info.Bytes != int64(len(data)) || info.Functions != 1 || col.modAux != 1 {
			t.Fatalf("info %+v", info)
		}
		get := func(k string) *collected { return builtKey(t, col, w, k) }
		eq := func(k string, got, want any) {
			t.Helper()
			if g, w := strings.Join(toAny(got), "|"), strings.Join(toAny(want), "|"); g != w {
				t.Errorf("%s: got %q, want %q", k, g, w)
			}
		}
		eq("s:int8", string(get("s:int8").str), "-100")
		eq("s:int16", string(get("s:int16").str), "-30000")
		eq("s:int32", string(get("s:int32").str), "2000000000")
		eq("s:lzf", string(get("s:lzf").str), strings.Repeat("hello lzf ", 200))
		if k := get("s:expsec"); k.expire != 1900000000000 {
			t.Errorf("expire %d", k.expire)
		}
		if k := get("l:plain"); k.expire != 1900000000123 {
			t.Errorf("expire %d", k.expire)
		}
		if k := get("s:int8"); k.expire != NoExpire {
			t.Errorf("expire leaked: %d", k.expire)
		}
		eq("l:plain", strs(get("l:plain")), []string{"a", "5", strings.Repeat("z", 100)})
		eq("l:ziplist", strs(get("l:ziplist")), []string{"a", "0", "12", "13", "-1", "127", "-128", "300", "-30000",
			"8388607", "-8388608", "2147483647", "-2147483648", "1099511627776", "-9223372036854775808",
			strings.Repeat("m", 100), strings.Repeat("L", 300), strings.Repeat("B", 17000), ""})
		eq("l:quicklist", strs(get("l:quicklist")), []string{"q1", "1", "q2", strings.Repeat("c", 80), "2"})
		eq("set:plain", strs(get("set:plain")), []string{"x", "y"})
		eq("set:intset2", strs(get("set:intset2")), []string{"-5", "1", "300"})
		eq("set:intset4", strs(get("set:intset4")), []string{"-70000", "1"})
		eq("set:intset8", strs(get("set:intset8")), []string{"-9223372036854775808", "1099511627776"})
		zs := func(k string) []string {
			var out []string
			for _, m := range get(k).members {
				out = append(out, string(m.Member)+"="+FormatScore(m.Score))
			}
			return out
		}
		eq("z:old", zs("z:old"), []string{"a=1.5", "b=nan", "c=inf", "d=-inf", "e=0.1", "f=-0"})
		eq("z:2", zs("z:2"), []string{"a=0.3333333333333333", "b=-inf"})
		eq("z:ziplist", zs("z:ziplist"), []string{"a=0.1", "b=7", "c=inf", "d=-1e+308"})
		hs := func(k string) []string {
			var out []string
			for _, f := range get(k).fields {
				out = append(out, string(f.Field)+"="+string(f.Value))
			}
			return out
		}
		eq("h:plain", hs("h:plain"), []string{"f=v", "n=1000"})
		eq("h:zipmap", hs("h:zipmap"), []string{"f1=v1", "f2=" + strings.Repeat("V", 300), "=empty"})
		eq("h:ziplist", hs("h:ziplist"), []string{"f=v", "i=-7"})
		st := get("st:v1")
		eq("st:v1", entries(st), []string{"1000-0 a=1 b=2", "1001-0 x=y"})
		m := st.stream
		if m.Length != 2 || m.LastID != (StreamID{1001, 0}) || m.EntriesAdded != 2 || m.FirstID != (StreamID{1000, 0}) ||
			len(m.Groups) != 1 || m.Groups[0].EntriesRead != -1 || string(m.Groups[0].PEL[0].Consumer) != "cons" ||
			m.Groups[0].PEL[0].DeliveryCount != 2 || m.Groups[0].Consumers[0].ActiveTime != 1700000000500 {
			t.Errorf("stream meta %+v", m)
		}
		mod := get("mod")
		if mod.module == nil || mod.module.ID != uint64(12345)<<10|3 || mod.module.EncVer != 3 {
			t.Errorf("module %+v", mod.module)
		}
		if len(col.functions) != 1 || col.functions[0] != "#!lua name=oldlib\nreturn 1" {
			t.Errorf("functions %q", col.functions)
		}
		if col.get(7, "db7") == nil || string(col.get(7, "db7").str) != "seven" {
			t.Errorf("db7")
		}
		if col.aux["redis-bits"] != "64" {
			t.Errorf("aux %v", col.aux)
		}
	}
}

func toAny(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []string:
		return x
	}
	return nil
}

func entries(k *collected) []string {
	var out []string
	for _, e := range k.entries {
		s := e.ID.String()
		for i := 0; i+1 < len(e.Fields); i += 2 {
			s += " " + string(e.Fields[i]) + "=" + string(e.Fields[i+1])
		}
		out = append(out, s)
	}
	return out
}

func TestNewEncodings(t *testing.T) {
	w := newFile()
	data := w.eof(true)
	for _, o := range []Options{{CaptureRaw: true}, {CaptureRaw: true, MaxChunkElems: 1, MaxChunkBytes: 1}} {
		col, info := parseBytes(t, data, o)
		if info.Version != 12 || !info.Verified || info.Functions != 1 {
			t.Fatalf("info %+v", info)
		}
		get := func(k string) *collected { return builtKey(t, col, w, k) }
		eq := func(k string, got, want []string) {
			t.Helper()
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s: got %q, want %q", k, got, want)
			}
		}
		eq("set:lp", strs(get("set:lp")), []string{"a", "-5", "100000", strings.Repeat("s", 5000)})
		eq("l:q2", strs(get("l:q2")), []string{"a", "1", "PLAIN NODE", strings.Repeat("r", 100), "-4096", "4095", "1125899906842624"})
		var zs []string
		for _, m := range get("z:lp").members {
			zs = append(zs, string(m.Member)+"="+FormatScore(m.Score))
		}
		eq("z:lp", zs, []string{"a=0.1", "b=3", "c=-inf", "d=5e-324"})
		hs := func(k string) []string {
			var out []string
			for _, f := range get(k).fields {
				s := string(f.Field) + "=" + string(f.Value)
				if f.ExpireAt != NoExpire {
					s += "@" + strconv.FormatInt(f.ExpireAt, 10)
				}
				out = append(out, s)
			}
			return out
		}
		eq("h:lp", hs("h:lp"), []string{"f=v", "n=12"})
		eq("h:meta", hs("h:meta"), []string{"nottl=v1", "ttl=v2@1800000000004"})
		eq("h:metapre", hs("h:metapre"), []string{"f=v@1800000000001"})
		eq("h:lpex", hs("h:lpex"), []string{"f1=v1", "f2=v2@1800000000000"})
		eq("h:lpexpre", hs("h:lpexpre"), []string{"f=v@1800000000002"})
		st := get("st:v3")
		eq("st:v3", entries(st), []string{"5-0 k=v0", "6-0 other=x k=y", "7-3 k=v3"})
		m := st.stream
		if m.Length != 3 || m.LastID != (StreamID{7, 3}) || m.FirstID != (StreamID{5, 0}) || m.MaxDeletedID != (StreamID{5, 1}) ||
			m.EntriesAdded != 4 || len(m.Groups) != 2 {
			t.Fatalf("stream meta %+v", m)
		}
		g := m.Groups[0]
		if string(g.Name) != "g1" || g.LastID != (StreamID{6, 0}) || g.EntriesRead != 3 || len(g.PEL) != 2 ||
			string(g.PEL[0].Consumer) != "c2" || string(g.PEL[1].Consumer) != "c1" || g.PEL[1].DeliveryCount != 3 ||
			g.PEL[0].DeliveryTime != 1700000000001 || len(g.Consumers) != 2 || g.Consumers[0].ActiveTime != 1700000000011 ||
			g.Consumers[1].SeenTime != 1700000000020 {
			t.Errorf("group %+v", g)
		}
		if g2 := m.Groups[1]; string(g2.Name) != "g2" || g2.EntriesRead != 0 || len(g2.PEL) != 0 {
			t.Errorf("group 2 %+v", g2)
		}
	}
}

func TestExactEnd(t *testing.T) {
	data := oldFile().eof(true)
	tail := []byte("*1\r\n$4\r\nPING\r\n")
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(data), bytes.NewReader(tail)), 16)
	info, err := Parse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Bytes != int64(len(data)) {
		t.Fatalf("consumed %d of %d", info.Bytes, len(data))
	}
	rest, _ := io.ReadAll(br)
	if !bytes.Equal(rest, tail) {
		t.Fatalf("rest %q", rest)
	}
	// versions before 5 have no checksum
	w := newRDB(4)
	w.byte(opSelectDB).len(0).key(TypeString, "k").str("v")
	w.byte(opEOF)
	info, err = Parse(bytes.NewReader(append(w.b, 'X')), nil)
	if err != nil || info.Bytes != int64(len(w.b)) || info.Keys != 1 {
		t.Fatalf("v4: %+v %v", info, err)
	}
}

func TestErrors(t *testing.T) {
	good := oldFile().eof(true)
	// zero checksum: accepted, not verified
	zero := oldFile().eof(false)
	if info, err := Parse(bytes.NewReader(zero), nil); err != nil || info.Verified {
		t.Fatalf("zero checksum: %+v %v", info, err)
	}
	// bad checksum
	bad := append([]byte{}, good...)
	bad[len(bad)-1] ^= 1
	if _, err := Parse(bytes.NewReader(bad), nil); !errors.Is(err, ErrChecksum) {
		t.Fatalf("bad checksum: %v", err)
	}
	// a flipped byte in the data: checksum or format error, never a panic
	for i := 9; i < len(good)-8; i += 7 {
		b := append([]byte{}, good...)
		b[i] ^= 0x55
		if _, err := Parse(bytes.NewReader(b), nil); err == nil {
			t.Fatalf("flip at %d: no error", i)
		}
	}
	// every truncation fails
	for i := 0; i < len(good); i += 3 {
		if _, err := Parse(bytes.NewReader(good[:i]), nil); err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
	// unknown type names the type and the offset
	w := newRDB(11)
	w.byte(opSelectDB).len(0)
	off := len(w.b)
	w.byte(0x1e).str("k")
	_, err := Parse(bytes.NewReader(w.eof(true)), nil)
	var perr *Error
	if !errors.As(err, &perr) || perr.Offset != int64(off) || !strings.Contains(err.Error(), "0x1e") {
		t.Fatalf("unknown type: %v", err)
	}
	w = newRDB(11)
	w.key(TypeModulePreGA, "k")
	if _, err := Parse(bytes.NewReader(w.eof(true)), nil); err == nil || !strings.Contains(err.Error(), "module") {
		t.Fatalf("module pre-GA: %v", err)
	}
	if _, err := Parse(bytes.NewReader([]byte("REDIS0013\xff")), nil); err == nil {
		t.Fatal("version 13 accepted")
	}
	// huge lengths with little data: an error, no huge allocation
	w = newRDB(11)
	w.key(TypeString, "k").len(1 << 40)
	if _, err := Parse(bytes.NewReader(w.b), nil); err == nil {
		t.Fatal("huge string accepted")
	}
	w = newRDB(11)
	w.key(TypeList, "k").len(1 << 62).str("x")
	if _, err := Parse(bytes.NewReader(w.b), nil); err == nil {
		t.Fatal("huge list accepted")
	}
	// handler errors stop the parse and come back as they are
	stop := errors.New("stop")
	if _, err := Parse(bytes.NewReader(good), stopHandler{stop}); err != stop {
		t.Fatalf("handler error: %v", err)
	}
}

type stopHandler struct {
	err error
}

func (stopHandler) Aux(k, v []byte) error                  { return nil }
func (stopHandler) SelectDB(int) error                     { return nil }
func (stopHandler) ResizeDB(int, uint64, uint64) error     { return nil }
func (stopHandler) SlotInfo(uint64, uint64, uint64) error  { return nil }
func (stopHandler) Function([]byte) error                  { return nil }
func (stopHandler) ModuleAux(uint64, uint64, []byte) error { return nil }
func (s stopHandler) Chunk(*Chunk) error                   { return s.err }

func TestLZF(t *testing.T) {
	for _, s := range []string{"a", "abcabcabcabcabc", strings.Repeat("x", 1000), strings.Repeat("0123456789", 3000)} {
		c := lzfCompress([]byte(s))
		out := make([]byte, len(s))
		if err := lzfDecompress(c, out); err != nil || string(out) != s {
			t.Fatalf("%q: %v", s[:min(10, len(s))], err)
		}
		if len(s) > 1 && lzfDecompress(c, make([]byte, len(s)-1)) == nil {
			t.Fatal("short output accepted")
		}
	}
}

func TestDumpPayloadAndScore(t *testing.T) {
	// DUMP of SET k "hello" on Redis 7.0
	want := []byte("\x00\x05hello\x0a\x00")
	p := DumpPayload([]byte("\x00\x05hello"), 10)
	if !bytes.Equal(p[:len(want)], want) || len(p) != len(want)+8 {
		t.Fatalf("payload %q", p)
	}
	for f, s := range map[float64]string{math.Inf(1): "inf", math.Inf(-1): "-inf", math.NaN(): "nan", math.Copysign(0, -1): "-0",
		0.1: "0.1", 1e308: "1e+308", 5e-324: "5e-324", 1.0 / 3: "0.3333333333333333", 42: "42"} {
		if got := FormatScore(f); got != s {
			t.Errorf("FormatScore(%v) = %q, want %q", f, got, s)
		}
	}
	if n, e := ModuleTypeName(0); n != "AAAAAAAAA" || e != 0 {
		t.Fatal(n, e)
	}
}

func TestMaxRawBytes(t *testing.T) {
	w := newRDB(10)
	w.key(TypeString, "small").str("x").done("small")
	w.key(TypeString, "big").str(strings.Repeat("y", 200)).done("big")
	w.key(TypeModule2, "mod").len(7 << 10).len(5).str(strings.Repeat("m", 300)).len(0).done("mod")
	col, _ := parseBytes(t, w.eof(true), Options{CaptureRaw: true, MaxRawBytes: 100})
	if !bytes.Equal(col.get(0, "small").raw, w.raws["small"]) || col.get(0, "big").raw != nil {
		t.Fatal("MaxRawBytes not applied")
	}
	if !bytes.Equal(col.get(0, "mod").raw, w.raws["mod"]) {
		t.Fatal("module raw not captured whatever the limit")
	}
	w2 := newRDB(10)
	w2.key(TypeString, "k").str("v")
	if col, _ := parseBytes(t, w2.eof(true), Options{}); col.get(0, "k").raw != nil {
		t.Fatal("raw captured without CaptureRaw")
	}
}

func TestParseDump(t *testing.T) {
	w := newFile()
	w.eof(true)
	for k, raw := range w.raws {
		p := DumpPayload(raw, 12)
		col := newCollector(Options{})
		if err := ParseDump(p, []byte(k), col, Options{}); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if col.get(0, k) == nil || !col.get(0, k).done {
			t.Fatalf("%s: not decoded", k)
		}
		bad := append([]byte{}, p...)
		bad[1] ^= 1
		if err := ParseDump(bad, []byte(k), nil, Options{}); !errors.Is(err, ErrChecksum) {
			t.Fatalf("%s: corrupt payload: %v", k, err)
		}
		if err := ParseDump(DumpPayload(append(raw, 0), 12), []byte(k), nil, Options{}); err == nil {
			t.Fatalf("%s: trailing byte accepted", k)
		}
	}
	if err := ParseDump(DumpPayload([]byte{0, 1, 'x'}, 13), nil, nil, Options{}); err == nil {
		t.Fatal("version 13 accepted")
	}
}
