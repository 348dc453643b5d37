package writer

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzParseCommand feeds arbitrary bytes to the parser that reads commands
// back out of a batch buffer (commandAt, used to name a failed command). It
// must never panic; what it accepts re-encodes and parses to the same
// arguments; and arguments encoded by appendCommand parse back unchanged.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
		"*1\r\n$4\r\nPING\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n",
		"*0\r\n", "*-1\r\n", "*1\r\n$-1\r\n", "*1\r\n$-5\r\nabc\r\n", "*2\r\n$3\r\nabc\r\n",
		"*9999999999999\r\n", "*1\r\n$99999999999999999999\r\nx\r\n", "*1\r\n$3\r\nab", "*", "$3\r\nabc\r\n", "",
	} {
		f.Add([]byte(s), 1)
	}
	f.Fuzz(func(t *testing.T, buf []byte, idx int) {
		_ = commandAt(buf, idx%8)
		args, rest, ok := parseCommand(buf)
		if ok {
			if len(rest) > len(buf) || !bytes.HasSuffix(buf, rest) {
				t.Fatalf("rest %q is not a suffix of %q", rest, buf)
			}
			enc := appendCommand(nil, args)
			again, rest2, ok2 := parseCommand(enc)
			if !ok2 || len(rest2) != 0 || !sameArgs(args, again) {
				t.Fatalf("%q parsed to %q, re-encoded %q parsed to %q (ok %v, rest %q)", buf, args, enc, again, ok2, rest2)
			}
		}
		// Round trip of arguments cut out of the input.
		in := bytes.Split(buf, []byte{0xff})
		enc := appendCommand(nil, in)
		enc = appendSelect(enc, len(buf))
		got := commandAt(enc, 0)
		if !sameArgs(in, got) {
			t.Fatalf("args %q encoded %q parsed %q", in, enc, got)
		}
		if sel := commandAt(enc, 1); len(sel) != 2 || string(sel[0]) != "SELECT" {
			t.Fatalf("select after %q: %q", in, sel)
		}
	})
}

func sameArgs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FuzzReply feeds arbitrary bytes, as a target server (named by a tenant)
// could send them, to the reply decoders: readValue (handshake, COMMAND)
// and skipReply (the hot path) must not panic or allocate what was never
// sent, and a decoded COMMAND table must give key positions that are
// arguments of the command (never the name, never past the end).
func FuzzReply(f *testing.F) {
	// Shapes of Redis 7's COMMAND INFO replies (legacy and key specs).
	set := "*10\r\n$3\r\nset\r\n:-3\r\n*2\r\n+write\r\n+denyoom\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n" +
		"*1\r\n*8\r\n$5\r\nflags\r\n*2\r\n+RW\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n" +
		"$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n" +
		"$11\r\nnotes_extra\r\n$0\r\n\r\n*0\r\n"
	zunion := "*10\r\n$11\r\nzunionstore\r\n:-4\r\n*1\r\n+movablekeys\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n" +
		"*2\r\n*6\r\n$5\r\nflags\r\n*0\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n" +
		"*6\r\n$5\r\nflags\r\n*0\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$6\r\nkeynum\r\n$4\r\nspec\r\n*6\r\n$9\r\nkeynumidx\r\n:0\r\n$8\r\nfirstkey\r\n:1\r\n$7\r\nkeystep\r\n:1\r\n" +
		"*0\r\n"
	migrate := "*10\r\n$7\r\nmigrate\r\n:-6\r\n*1\r\n+movablekeys\r\n:3\r\n:3\r\n:1\r\n*0\r\n*0\r\n" +
		"*1\r\n*6\r\n$5\r\nflags\r\n*0\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$7\r\nkeyword\r\n$4\r\nspec\r\n*4\r\n$7\r\nkeyword\r\n$4\r\nKEYS\r\n$9\r\nstartfrom\r\n:-2\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:-1\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n" +
		"*0\r\n"
	legacy := "*6\r\n$4\r\nmset\r\n:-3\r\n*0\r\n:1\r\n:-1\r\n:2\r\n"
	for _, s := range []string{
		"*1\r\n" + set, "*3\r\n" + set + zunion + migrate, "*1\r\n" + legacy,
		"+OK\r\n", "-ERR unknown command\r\n", ":12\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n",
		"$9999999999999\r\n", "*9999999999999\r\n", "$-3\r\n", "*1\r\n*1\r\n*1\r\n", "?x\r\n", "\r\n", ":99999999999999999999999\r\n",
	} {
		f.Add([]byte(s), []byte("zunionstore\xffdst\xff2\xffa\xffb\xffweights\xff1\xff2"))
	}
	f.Add([]byte("*1\r\n"+migrate), []byte("migrate\xffh\xff6379\xff\xff0\xff5000\xffKEYS\xffa\xffb"))
	f.Add([]byte("*1\r\n"+legacy), []byte("mset\xffa\xff1\xffb\xff2"))
	f.Fuzz(func(t *testing.T, reply, cmd []byte) {
		_, _ = skipReply(bufio.NewReader(bytes.NewReader(reply)), true, &[]nestedErr{})
		v, err := readValue(bufio.NewReaderSize(bytes.NewReader(reply), 64))
		if err != nil {
			return
		}
		if n := size(v); n > len(reply) {
			t.Fatalf("decoded %d bytes of values from a %d-byte reply", n, len(reply))
		}
		table, err := parseCommandTable(v)
		if err != nil {
			return
		}
		args := bytes.Split(cmd, []byte{0xff})
		var nb [32]byte
		ci := table.lookup(string(lowerName(&nb, args[0])), args)
		pos, class := ci.keys(args, nil)
		if class == keysUnknown {
			return
		}
		for _, p := range pos {
			if p < 1 || p >= len(args) {
				t.Fatalf("key position %d of %q (%d args)", p, args, len(args))
			}
		}
	})
}

// size is the number of payload bytes a decoded reply holds, counting each
// element as at least one byte (every element costs bytes on the wire).
func size(v any) int {
	switch x := v.(type) {
	case string:
		return max(1, len(x))
	case replyError:
		return max(1, len(x))
	case []any:
		n := 1
		for _, e := range x {
			n += size(e)
		}
		return n
	}
	return 1
}
