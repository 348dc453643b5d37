package backup

import (
	"fmt"
	"path"
	"reflect"
	"strings"
	"testing"
)

// quoteArg quotes s as Redis writes a manifest's file names (sdscatrepr):
// printable ASCII as is, the rest as \xHH.
func quoteArg(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// FuzzParseManifest feeds arbitrary bytes, as a multi-part AOF manifest
// read from a tenant's bucket or directory, to parseManifest. It must not
// panic; every file it names is one name inside the manifest's directory
// (no '/', not "." or ".."); incremental files come in seq order; and the
// manifest written back from what it parsed parses to the same files.
func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{
		"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
		"file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.1.base.rdb seq 1 type h\nfile appendonly.aof.3.incr.aof seq 3 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n",
		"# comment\r\nfile \"a b\\x41.aof\" seq 1 type i\r\n", "file 'it\\'s' seq 1 type b\n",
		"file .. seq 1 type b\n", "file . seq 1 type i\n", "file a/b seq 1 type b\n", "file \"..\" seq 1 type b\n",
		"file a seq 1 type b\nfile b seq 2 type b\n", "file a seq x type b\n", "file a seq 1\n", "file a seq 1 type z\n",
		"file \"a seq 1 type b\n", "file \"a\"b seq 1 type b\n", "seq 1 type b file a\n", "", "# only\n", "file a seq -9223372036854775808 type i\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		base, incr, err := parseManifest(b)
		if err != nil {
			if base != nil || incr != nil {
				t.Fatalf("error %v with files %+v %+v", err, base, incr)
			}
			return
		}
		all := append([]manifestEntry(nil), incr...)
		if base != nil {
			all = append(all, *base)
		}
		if len(all) == 0 {
			t.Fatal("accepted a manifest with no file")
		}
		for _, e := range all {
			if j := path.Join("backups/x", e.File); path.Dir(j) != "backups/x" || e.File == "" {
				t.Fatalf("file %q resolves to %q, outside the manifest's directory", e.File, j)
			}
		}
		for i := 1; i < len(incr); i++ {
			if incr[i-1].Seq > incr[i].Seq {
				t.Fatalf("incr files out of seq order: %+v", incr)
			}
		}
		var out strings.Builder
		for _, e := range all {
			fmt.Fprintf(&out, "file %s seq %d type %s\n", quoteArg(e.File), e.Seq, e.Type)
		}
		base2, incr2, err := parseManifest([]byte(out.String()))
		if err != nil || !reflect.DeepEqual(base, base2) || len(incr) != len(incr2) || len(incr) > 0 && !reflect.DeepEqual(incr, incr2) {
			t.Fatalf("%q parsed to %+v %+v; written back %q parsed to %+v %+v (%v)", b, base, incr, out.String(), base2, incr2, err)
		}
	})
}

// FuzzSplitArgs: splitArgs (Redis's sdssplitargs) never panics, and the
// arguments it returns, quoted back, split to themselves.
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{`a b  c`, `"a b" 'c d'`, `"\x00\n\\" 'it\'s'`, `"abc`, `'abc`, `"a"b`, `"\x4`, `"\`, "\t\r\n", `''`, `""x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args, err := splitArgs(line)
		if err != nil {
			return
		}
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = quoteArg(a)
		}
		again, err := splitArgs(strings.Join(q, " "))
		if err != nil || len(again) != len(args) || len(args) > 0 && !reflect.DeepEqual(args, again) {
			t.Fatalf("%q -> %q -> %q (%v)", line, args, again, err)
		}
	})
}
