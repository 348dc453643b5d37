package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

func job(x map[string]string) *ferry.Migration {
	return &ferry.Migration{Options: ferry.Options{Extra: x}}
}

func TestParse(t *testing.T) {
	o, err := Parse(job(nil))
	if err != nil || o.Mode != ModePSYNC || o.PauseSeconds != DefaultPauseSeconds {
		t.Fatalf("default: %+v %v", o, err)
	}
	o, err = Parse(job(map[string]string{KeyMode: "scan", KeyScanCount: "200000", KeyScanCopy: "commands", KeyCutoverPause: "none", KeyCutoverPauseSeconds: "30"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Scan{BigKeyBytes: DefaultBigKeyBytes, Count: 100000, MaxPending: DefaultMaxPending, CommandsOnly: true, NoPause: true}
	if o.Scan != want || o.PauseSeconds != 30 {
		t.Fatalf("scan options %+v, pause %d", o.Scan, o.PauseSeconds)
	}
	// Options of another mode are not read: a psync job with a bad scan
	// option is valid, as it was.
	if _, err := Parse(job(map[string]string{KeyScanCount: "x"})); err != nil {
		t.Fatalf("psync job with a scan option: %v", err)
	}
	for _, tc := range []struct {
		x     map[string]string
		field string
		text  string
	}{
		{map[string]string{KeyMode: "sync"}, "options.extra.mode", `unknown redis mode "sync"`},
		{map[string]string{KeyMode: "scan", KeyScanCount: "0"}, "options.extra.scan_count", "must be a positive integer"},
		{map[string]string{KeyMode: "scan", KeyScanBigKeyBytes: "1e3"}, "options.extra.scan_big_key_bytes", "must be a positive integer"},
		{map[string]string{KeyMode: "scan", KeyNotifyKeyspaceEvents: "KEA"}, "options.extra.notify_keyspace_events", `preconfigured (already includes "KA" on the source), got "KEA"`},
		{map[string]string{KeyMode: "scan", KeyCutoverPause: "all"}, "options.extra.cutover_pause", `got "all"`},
		{map[string]string{KeyMode: "backup_import"}, "options.extra", "a backup import names its files"},
		{map[string]string{KeyMode: "backup_import", KeyBackupDir: "/d", KeyBackupBucket: "b", KeyBackupFiles: "x"}, "options.extra.backup_dir", "not both"},
	} {
		_, err := Parse(job(tc.x))
		e := ferry.AsError(err)
		if e == nil || e.Code != ferry.EINVALID || e.Field != tc.field || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%v: %v, want %s: %s", tc.x, err, tc.field, tc.text)
		}
	}
	// cutover_pause_seconds that is not a positive number reads as the default.
	if n := PauseSeconds(job(map[string]string{KeyCutoverPauseSeconds: "-4"})); n != DefaultPauseSeconds {
		t.Errorf("PauseSeconds = %d", n)
	}
	if !NoPause(job(map[string]string{KeyMode: "scan", KeyCutoverPause: "none"})) || NoPause(job(map[string]string{KeyCutoverPause: "none"})) {
		t.Error("NoPause is for scan-mode jobs only")
	}
}

func TestBackupSpecRoundTrip(t *testing.T) {
	spec := Backup{FileSource: SourceBucket, Bucket: "b", Files: []BackupFile{{Name: "a/dump.rdb", Size: 12, UpdateAt: "2026-01-02"}, {Name: "x.aof", Size: -1}}}
	x := map[string]string{}
	if err := spec.Encode(x); err != nil {
		t.Fatal(err)
	}
	if x[KeyMode] != string(ModeBackupImport) || x[KeyBackupBucket] != "b" || x[KeyBackupDir] != "" {
		t.Fatalf("encoded %v", x)
	}
	got, err := ParseBackup(x)
	if err != nil || !reflect.DeepEqual(got, spec) {
		t.Fatalf("parsed %+v %v, want %+v", got, err, spec)
	}
	if !IsBackupImport(job(x)) {
		t.Fatal("not a backup import")
	}
	// A record named by id alone reads as file source backup_record.
	got, err = ParseBackup(map[string]string{KeyBackupID: "abc"})
	if err != nil || got.FileSource != SourceRecord {
		t.Fatalf("id only: %+v %v", got, err)
	}
	// Views read the stored spec as it is, names uncleaned.
	if b := BackupOf(map[string]string{KeyBackupFiles: `[{"file_name":"/abs","size":"3"}]`}); len(b.Files) != 1 || b.Files[0].Name != "/abs" || b.Files[0].Size != 3 {
		t.Fatalf("BackupOf %+v", b)
	}
}
