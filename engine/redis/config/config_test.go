package config

import (
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

func TestParseFileSpecs(t *testing.T) {
	got, err := decodeFiles(`[{"file_name":"/a/dump.rdb","size":"12","update_at":"x"},{"file_name":"b.aof","size":7},{"file_name":"c"}]`, true)
	want := []BackupFile{{"a/dump.rdb", 12, "x"}, {"b.aof", 7, ""}, {"c", -1, ""}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v %v", got, err)
	}
	got, err = decodeFiles(" x.rdb, dir/y.aof ,", true)
	if err != nil || !reflect.DeepEqual(got, []BackupFile{{"x.rdb", -1, ""}, {"dir/y.aof", -1, ""}}) {
		t.Fatalf("got %+v %v", got, err)
	}
	for _, bad := range []string{`[{"file_name":"../etc/passwd"}]`, `[{"file_name":"a","size":-1}]`, `[`, `a,../b`} {
		if _, err := decodeFiles(bad, true); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// FuzzParseFileSpecs feeds arbitrary backup_files values (the job's
// engine setting a DCS body or a native job sets) to decodeFiles: it
// must not panic, must fail with an EINVALID ferry error, and every name it
// accepts is relative, clean and stays inside the backup directory.
func FuzzParseFileSpecs(f *testing.F) {
	for _, s := range []string{
		`[{"file_name":"/a/dump.rdb","size":"12","update_at":"x"},{"file_name":"b.aof","size":7},{"file_name":"c"}]`,
		" x.rdb, dir/y.aof ,", `[{"file_name":"../etc/passwd"}]`, `[{"file_name":"a","size":-1}]`, `[`, `a,../b`,
		"//etc/passwd", `[{"file_name":"//etc/shadow"}]`, "a/../../b", "./.", `[{"file_name":"x","size":"1e3"}]`, `[{"file_name":"x","size":null}]`, `[1]`, `[{"file_name":5}]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		specs, err := decodeFiles(s, true)
		if err != nil {
			if fe := ferry.AsError(err); fe == nil || fe.Code != ferry.EINVALID || fe.Field == "" {
				t.Fatalf("%q: error %#v is not an EINVALID field error", s, err)
			}
			return
		}
		for _, sp := range specs {
			n := sp.Name
			if n == "" || n == "." || n == ".." || strings.HasPrefix(n, "/") || strings.HasPrefix(n, "../") || path.Clean(n) != n {
				t.Fatalf("%q: accepted file name %q", s, n)
			}
			if j := path.Join("imports", n); !strings.HasPrefix(j, "imports/") {
				t.Fatalf("%q: file name %q leaves the directory (%q)", s, n, j)
			}
			if sp.Size < -1 {
				t.Fatalf("%q: size %d", s, sp.Size)
			}
		}
	})
}
