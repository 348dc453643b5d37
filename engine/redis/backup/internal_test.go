package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
)

func TestParseManifest(t *testing.T) {
	m := "file appendonly.aof.1.base.rdb seq 1 type b\n" +
		"file appendonly.aof.1.incr.aof seq 1 type h\n" +
		"# a comment\n" +
		"file \"apx\\x41 nd.aof.3.incr.aof\" seq 3 type i\r\n" +
		"file appendonly.aof.2.incr.aof seq 2 type i\n"
	base, incr, err := parseManifest([]byte(m))
	if err != nil {
		t.Fatal(err)
	}
	if base == nil || base.File != "appendonly.aof.1.base.rdb" || len(incr) != 2 || incr[0].File != "appendonly.aof.2.incr.aof" || incr[1].File != "apxA nd.aof.3.incr.aof" {
		t.Fatalf("base %+v incr %+v", base, incr)
	}
	for _, bad := range []string{
		"file a seq 1 type b\nfile b seq 2 type b\n",
		"file a seq x type b\n",
		"file a seq 1\n",
		"file a seq 1 type z\n",
		"file ../a seq 1 type b\n",
		"file \"a seq 1 type b\n",
		"# nothing\n",
	} {
		if _, _, err := parseManifest([]byte(bad)); err == nil {
			t.Errorf("manifest %q accepted", bad)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	for in, want := range map[string][]string{
		`a b  c`:             {"a", "b", "c"},
		`"a b" 'c d'`:        {"a b", "c d"},
		`"\x00\n\\" 'it\'s'`: {"\x00\n\\", "it's"},
		``:                   nil,
	} {
		got, err := splitArgs(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`"abc`, `'abc`, `"a"b`} {
		if _, err := splitArgs(bad); err == nil {
			t.Errorf("splitArgs(%q) accepted", bad)
		}
	}
}

// check is the engine's Check of a backup import: the options parsed,
// then the mode's checks.
func (e *Mode) check(m *ferry.Migration) error {
	o, err := config.Parse(m)
	if err != nil {
		return err
	}
	return e.Check(m, o)
}

// resolveJob resolves the files of a job's backup spec.
func (e *Mode) resolveJob(ctx context.Context, m *ferry.Migration) (*importSource, error) {
	o, err := config.Parse(m)
	if err != nil {
		return nil, err
	}
	return e.resolve(ctx, &o.Backup)
}

func TestCheckImport(t *testing.T) {
	e := &Mode{Config: &Config{}}
	e.Config.AllowedDirs = []string{"/srv/backups"}
	job := func(modes ferry.Modes, x map[string]string) *ferry.Migration {
		x["mode"] = string(config.ModeBackupImport)
		return &ferry.Migration{Engine: ferry.KindRedis, Modes: modes, Options: ferry.Options{Extra: x}}
	}
	full := ferry.Modes{Full: true}
	for _, tc := range []struct {
		m    *ferry.Migration
		want string
	}{
		{job(full, map[string]string{"backup_dir": "/srv/backups/x", "backup_files": "dump.rdb"}), ""},
		{job(full, map[string]string{"backup_file_source": "backup_record", "backup_id": "abc"}), ""},
		{job(full, map[string]string{"backup_file_source": "self_build_obs", "backup_bucket": "b", "backup_files": `[{"file_name":"d.rdb"}]`}), ""},
		{job(full, map[string]string{"backup_dir": "/etc", "backup_files": "passwd"}), "outside"},
		{job(full, map[string]string{"backup_dir": "rel", "backup_files": "x"}), "absolute"},
		{job(full, map[string]string{"backup_dir": "/srv/backups"}), "name the files"},
		{job(full, map[string]string{}), "backup_dir"},
		{job(full, map[string]string{"backup_file_source": "backup_record"}), "backup_id"},
		{job(full, map[string]string{"backup_file_source": "ftp", "backup_bucket": "b"}), "unknown value"},
		{job(ferry.Modes{Full: true, Incremental: true}, map[string]string{"backup_id": "a"}), "no incremental"},
		{job(ferry.Modes{Verify: true}, map[string]string{"backup_id": "a"}), "enable full"},
	} {
		err := e.check(tc.m)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.m.Options.Extra, err, tc.want)
		}
	}
}

func TestDirStoreStaysInside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.rdb"), []byte("REDIS0010"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	st := &dirStore{dir: dir}
	ctx := context.Background()
	if fi, err := st.Stat(ctx, "a.rdb"); err != nil || fi.Size != 9 {
		t.Fatalf("stat: %+v %v", fi, err)
	}
	if _, err := st.Open(ctx, "link", 0); err == nil {
		t.Fatal("a symlink out of the directory was followed")
	}
	if _, err := st.Open(ctx, "none", 0); !errors.Is(err, errNotFound) {
		t.Fatalf("missing file: %v", err)
	}
	files, err := expandFile(ctx, st, config.BackupFile{Name: "a.rdb", Size: -1})
	if err != nil || len(files) != 1 || files[0].Kind != kindRDB || files[0].RDBVersion != 10 {
		t.Fatalf("expand: %+v %v", files, err)
	}
}

// TestBackupImportOutsideAllowedDir: with no import directory configured no
// backup_dir is read; with one, a backup_dir outside it (or a symlink in it
// that leads outside) is refused, and no answer tells whether a file exists
// out there, how big it is or what it starts with.
func TestBackupImportOutsideAllowedDir(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	secret := "TOPSECRET-CONTENT-0123456789"
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	allowed := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(allowed, "notes.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	job := func(dir, files string) *ferry.Migration {
		return &ferry.Migration{Engine: ferry.KindRedis, Modes: ferry.Modes{Full: true},
			Options: ferry.Options{Extra: map[string]string{"mode": string(config.ModeBackupImport), "backup_dir": dir, "backup_files": files}}}
	}
	leaks := func(err error) bool {
		s := err.Error() + ferry.ErrorMessage(err)
		return strings.Contains(s, "TOPSECRET") || strings.Contains(s, "bytes")
	}

	// No import directory configured: nothing is read.
	e := &Mode{Config: &Config{}}
	for _, m := range []*ferry.Migration{job(outside, "secret.txt"), job("/etc", "passwd")} {
		err := e.check(m)
		if ferry.ErrorCode(err) != ferry.EINVALID || leaks(err) {
			t.Errorf("no import dirs, Check %v: %v", m.Options.Extra, err)
		}
		if _, err := e.resolveJob(ctx, m); ferry.ErrorCode(err) != ferry.EINVALID || leaks(err) {
			t.Errorf("no import dirs, resolve %v: %v", m.Options.Extra, err)
		}
	}

	e.Config.AllowedDirs = []string{allowed}
	// A directory outside: refused before anything is read, the same for
	// files that exist and files that do not.
	errExists := e.check(job(outside, "secret.txt"))
	errMissing := e.check(job(outside, "nothing.txt"))
	if ferry.ErrorCode(errExists) != ferry.EINVALID || leaks(errExists) || errExists.Error() != errMissing.Error() {
		t.Errorf("outside: %v / %v", errExists, errMissing)
	}
	// A symlink inside leading outside: not followed; a file that exists out
	// there answers as one that does not.
	_, errExists = e.resolveJob(ctx, job(filepath.Join(allowed, "escape"), "secret.txt"))
	_, errMissing = e.resolveJob(ctx, job(filepath.Join(allowed, "escape"), "nothing.txt"))
	if errExists == nil || leaks(errExists) || strings.Replace(errExists.Error(), "secret.txt", "X", 1) != strings.Replace(errMissing.Error(), "nothing.txt", "X", 1) {
		t.Errorf("symlink out: %v / %v", errExists, errMissing)
	}
	_, err := e.resolveJob(ctx, job(allowed, "escape/secret.txt"))
	if err == nil || leaks(err) {
		t.Errorf("file through a symlink out: %v", err)
	}
	// A file inside that is not a backup: corrupt, without its first bytes.
	_, err = e.resolveJob(ctx, job(allowed, "notes.txt"))
	if ferry.AsError(err) == nil || ferry.AsError(err).Reason != "BACKUP_FILE_CORRUPT" || strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("not a backup: %v", err)
	}
}
