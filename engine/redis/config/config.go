// Package config is the Redis engine's typed job options: the keys of
// Options.Extra the engine reads (spelled here and nowhere else), parsed
// once into Options, and the backup import's file spec, which the DCS
// dialect builds and the backup mode reads. It knows no network and no
// driver, so an API dialect may import it.
package config

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/ferrymigrate/ferry"
)

// Mode is how a Redis job moves its data (Options.Extra["mode"]).
type Mode string

// Modes of the Redis engine.
const (
	ModePSYNC        Mode = "psync"         // online: replication (default)
	ModeScan         Mode = "scan"          // online for sources that forbid PSYNC
	ModeBackupImport Mode = "backup_import" // RDB/AOF files
)

// Keys of Options.Extra the Redis engine reads.
const (
	KeyMode                 = "mode"
	KeyCutoverPauseSeconds  = "cutover_pause_seconds"
	KeyCutoverPause         = "cutover_pause"
	KeyNotifyKeyspaceEvents = "notify_keyspace_events"
	KeyScanCopy             = "scan_copy"
	KeyScanBigKeyBytes      = "scan_big_key_bytes"
	KeyScanCount            = "scan_count"
	KeyScanMaxPendingKeys   = "scan_max_pending_keys"
	KeyBackupDir            = "backup_dir"
	KeyBackupBucket         = "backup_bucket"
	KeyBackupFiles          = "backup_files"
	KeyBackupFileSource     = "backup_file_source"
	KeyBackupID             = "backup_id"
	// KeyAOFLoadTruncated "yes" accepts a truncated last command at the
	// end of the last AOF file (Redis's aof-load-truncated), dropping it.
	KeyAOFLoadTruncated = "aof_load_truncated"
)

// Defaults of the options.
const (
	DefaultPauseSeconds = 300
	DefaultBigKeyBytes  = 64 << 20  // scan_big_key_bytes
	DefaultScanCount    = 512       // scan_count: SCAN COUNT and keys per pipeline
	DefaultMaxPending   = 1_000_000 // scan_max_pending_keys: distinct changed keys queued
	maxScanCount        = 100000
)

// Options are a Redis job's engine options, parsed.
type Options struct {
	Mode Mode
	// PauseSeconds is how long cutover pauses the source's writes.
	PauseSeconds int
	Scan         Scan   // scan mode only
	Backup       Backup // backup_import mode only
}

// Scan are the scan mode's options.
type Scan struct {
	BigKeyBytes   int64
	Count         int
	MaxPending    int
	CommandsOnly  bool // scan_copy=commands: type-specific commands instead of RESTORE
	Preconfigured bool // notify_keyspace_events=preconfigured: do not CONFIG GET/SET
	NoPause       bool // cutover_pause=none: the source refuses CLIENT PAUSE; the user stopped writes
}

// ModeOf is a job's mode as given, "" read as psync. It does not check it:
// Parse does.
func ModeOf(m *ferry.Migration) Mode {
	if v := Mode(m.Options.Extra[KeyMode]); v != "" {
		return v
	}
	return ModePSYNC
}

// IsBackupImport reports a backup import job.
func IsBackupImport(m *ferry.Migration) bool { return ModeOf(m) == ModeBackupImport }

// Parse reads a job's engine options: the mode, and the options of that
// mode, without touching the network.
func Parse(m *ferry.Migration) (*Options, error) {
	o := &Options{Mode: ModeOf(m), PauseSeconds: PauseSeconds(m)}
	var err error
	switch o.Mode {
	case ModePSYNC:
	case ModeScan:
		o.Scan, err = parseScan(m.Options.Extra)
	case ModeBackupImport:
		o.Backup, err = ParseBackup(m.Options.Extra)
	default:
		return nil, ferry.FieldError("options.extra.mode", "unknown redis mode %q (psync, scan, backup_import)", string(o.Mode))
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// PauseSeconds is how long cutover pauses the source's writes:
// options.extra.cutover_pause_seconds, 300 by default (a value that is not
// a positive number reads as the default).
func PauseSeconds(m *ferry.Migration) int {
	if v, err := strconv.Atoi(m.Options.Extra[KeyCutoverPauseSeconds]); err == nil && v > 0 {
		return v
	}
	return DefaultPauseSeconds
}

// NoPause reports a scan-mode job whose cutover does not pause the source.
func NoPause(m *ferry.Migration) bool {
	return ModeOf(m) == ModeScan && m.Options.Extra[KeyCutoverPause] == "none"
}

// positive reads an optional positive integer option into dst.
func positive(x map[string]string, name string, dst *int64) error {
	if v, ok := x[name]; ok && v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return ferry.FieldError("options.extra."+name, "must be a positive integer, got %q", v)
		}
		*dst = n
	}
	return nil
}

// choice reads an optional option with two values: "" and the first are
// false, the second true.
func choice(x map[string]string, name, off, on, msg string) (bool, error) {
	switch v := x[name]; v {
	case "", off:
		return false, nil
	case on:
		return true, nil
	default:
		return false, ferry.FieldError("options.extra."+name, "must be %s, got %q", msg, v)
	}
}

func parseScan(x map[string]string) (Scan, error) {
	o := Scan{BigKeyBytes: DefaultBigKeyBytes}
	count, pending := int64(DefaultScanCount), int64(DefaultMaxPending)
	for _, n := range []struct {
		key string
		dst *int64
	}{{KeyScanBigKeyBytes, &o.BigKeyBytes}, {KeyScanCount, &count}, {KeyScanMaxPendingKeys, &pending}} {
		if err := positive(x, n.key, n.dst); err != nil {
			return o, err
		}
	}
	o.Count, o.MaxPending = int(min(count, maxScanCount)), int(pending)
	var err error
	if o.CommandsOnly, err = choice(x, KeyScanCopy, "auto", "commands",
		"auto (DUMP/RESTORE, type-specific commands when the target refuses the payload) or commands"); err != nil {
		return o, err
	}
	if o.Preconfigured, err = choice(x, KeyNotifyKeyspaceEvents, "auto", "preconfigured",
		"auto (ferry sets it with CONFIG SET) or preconfigured (already includes \"KA\" on the source)"); err != nil {
		return o, err
	}
	if o.NoPause, err = choice(x, KeyCutoverPause, "write", "none",
		"write (CLIENT PAUSE WRITE on the source at cutover) or none (the source refuses CLIENT PAUSE: stop the application's writes before cutting over)"); err != nil {
		return o, err
	}
	return o, nil
}

// Specs lists the Options.Extra keys of the Redis engine, for
// ferry.OptionLister.
func Specs() []ferry.OptionSpec {
	return []ferry.OptionSpec{
		{Key: KeyMode, Values: []string{string(ModePSYNC), string(ModeScan), string(ModeBackupImport)}, Doc: "psync (replication, default), scan (SCAN + DUMP/RESTORE and keyspace notifications), backup_import (RDB/AOF files)"},
		{Key: KeyCutoverPauseSeconds, Doc: "how long cutover pauses the source's writes (CLIENT PAUSE WRITE; default 300); release-source lifts it earlier"},
		{Key: KeyCutoverPause, Values: []string{"write", "none"}, Doc: "scan mode: write (CLIENT PAUSE WRITE at cutover) or none (the source refuses it; stop the application's writes yourself)"},
		{Key: KeyNotifyKeyspaceEvents, Values: []string{"auto", "preconfigured"}, Doc: "scan mode: ferry sets notify-keyspace-events, or the source's operator did"},
		{Key: KeyScanCopy, Values: []string{"auto", "commands"}, Doc: "scan mode: DUMP/RESTORE, or type-specific commands only"},
		{Key: KeyScanBigKeyBytes, Doc: "scan mode: MEMORY USAGE above which a key is copied in chunks (default 64 MiB)"},
		{Key: KeyScanCount, Doc: "scan mode: SCAN COUNT and keys per pipeline (default 512)"},
		{Key: KeyScanMaxPendingKeys, Doc: "scan mode: changed keys queued before ferry rescans (default 1M)"},
		{Key: KeyBackupDir, Doc: "backup import: a local directory with the files"},
		{Key: KeyBackupBucket, Doc: "backup import: an S3-compatible bucket with the files"},
		{Key: KeyBackupFiles, Doc: "backup import: the files, comma-separated"},
		{Key: KeyBackupFileSource, Values: []string{SourceBucket, SourceRecord}, Doc: "backup import: where the files are (DCS names)"},
		{Key: KeyBackupID, Doc: "backup import: a backup taken by ferry backups create"},
		{Key: KeyAOFLoadTruncated, Values: []string{"yes", "no"}, Doc: "backup import: accept a truncated last AOF command"},
	}
}

// CleanName checks a file name given by a job: relative, without "..".
func CleanName(name string) (string, error) {
	n := strings.TrimLeft(strings.TrimSpace(name), "/")
	n = path.Clean(n)
	if n == "." || n == "" {
		return "", fmt.Errorf("empty file name %q", name)
	}
	if n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("file name %q leaves its directory", name)
	}
	return n, nil
}
