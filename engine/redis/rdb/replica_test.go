package rdb

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry/engine/redis/resp"
)

// TestReplicaStream connects to a real master as a replica, parses the RDB
// straight from the socket, and checks that the command stream starts
// exactly where the parser stopped.
func TestReplicaStream(t *testing.T) {
	for _, diskless := range []bool{false, true} {
		t.Run(fmt.Sprintf("diskless=%v", diskless), func(t *testing.T) {
			yes := map[bool]string{true: "yes", false: "no"}[diskless]
			addr := startRedis(t, "--repl-diskless-sync", yes, "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "60")
			populate(t, addr)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			r := resp.NewReader(conn)
			call := func(args ...string) resp.Value {
				t.Helper()
				if _, err := conn.Write(resp.AppendCommandString(nil, args...)); err != nil {
					t.Fatal(err)
				}
				v, err := r.ReadValue()
				if err != nil {
					t.Fatal(err)
				}
				if err := v.Err(); err != nil {
					t.Fatalf("%v: %v", args, err)
				}
				return v
			}
			call("REPLCONF", "listening-port", "6390")
			call("REPLCONF", "capa", "eof", "capa", "psync2")
			v := call("PSYNC", "?", "-1")
			f := strings.Fields(string(v.Str))
			if len(f) != 3 || f[0] != "FULLRESYNC" {
				t.Fatalf("PSYNC: %v", v)
			}
			replOff, _ := strconv.ParseInt(f[2], 10, 64)
			pre, err := r.ReadRDBPreamble()
			if err != nil {
				t.Fatal(err)
			}
			if pre.Diskless() != diskless {
				t.Fatalf("preamble %+v", pre)
			}
			start := r.Offset()
			col := newCollector(Options{})
			info, err := Parse(r, col)
			if err != nil {
				t.Fatal(err)
			}
			if r.Offset()-start != info.Bytes {
				t.Fatalf("reader consumed %d, parser says %d", r.Offset()-start, info.Bytes)
			}
			if !diskless && info.Bytes != pre.Size {
				t.Fatalf("parsed %d bytes of a %d-byte payload", info.Bytes, pre.Size)
			}
			if diskless {
				if err := r.ReadEOFMark(pre.EOFMark); err != nil {
					t.Fatal(err)
				}
			}
			if info.Aux["repl-id"] != f[1] || info.Aux["repl-offset"] != f[2] {
				t.Errorf("aux repl-id %q repl-offset %q, PSYNC said %v", info.Aux["repl-id"], info.Aux["repl-offset"], f)
			}
			checkAgainstServer(t, addr, col)

			streamStart := r.Offset()
			conn.Write(resp.AppendCommandString(nil, "REPLCONF", "ACK", f[2]))
			c := newClient(t, addr, 3)
			ctx := context.Background()
			if err := c.Set(ctx, "after\x00rdb", "v\r\n", 0).Err(); err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for {
				args, err := r.ReadCommand()
				if err != nil {
					t.Fatal(err)
				}
				var s []string
				for _, a := range args {
					s = append(s, string(a))
				}
				got = append(got, s)
				if strings.EqualFold(s[0], "set") {
					break
				}
			}
			want := [][]string{{"SELECT", "3"}, {"set", "after\x00rdb", "v\r\n"}}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("command stream %q, want %q", got, want)
			}
			infoRepl := c.Info(ctx, "replication").Val()
			var masterOff int64 = -1
			for _, line := range strings.Split(infoRepl, "\r\n") {
				if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
					masterOff, _ = strconv.ParseInt(v, 10, 64)
				}
			}
			if mine := replOff + r.Offset() - streamStart; mine != masterOff {
				t.Fatalf("replica offset %d, master_repl_offset %d", mine, masterOff)
			}
			if diskless {
				return
			}
			// the master's periodic PING is a RESP array, in the offset
			if err := c.ConfigSet(ctx, "repl-ping-replica-period", "1").Err(); err != nil {
				t.Fatal(err)
			}
			before := r.Offset()
			args, err := r.ReadCommand()
			if err != nil {
				t.Fatal(err)
			}
			if len(args) != 1 || !strings.EqualFold(string(args[0]), "PING") || r.Offset()-before != int64(len("*1\r\n$4\r\nPING\r\n")) {
				t.Fatalf("ping: %q, %d bytes", args, r.Offset()-before)
			}
		})
	}
}
