package redis

import "github.com/ferrymigrate/ferry"

// KnownOptions lists the Options.Extra keys the Redis engine reads
// (ferry.OptionLister).
func (e *Engine) KnownOptions() []ferry.OptionSpec {
	return []ferry.OptionSpec{
		{Key: "mode", Values: []string{ModePSYNC, ModeScan, ModeBackupImport}, Doc: "psync (replication, default), scan (SCAN + DUMP/RESTORE and keyspace notifications), backup_import (RDB/AOF files)"},
		{Key: "cutover_pause_seconds", Doc: "how long cutover pauses the source's writes (CLIENT PAUSE WRITE; default 300); release-source lifts it earlier"},
		{Key: "cutover_pause", Values: []string{"write", "none"}, Doc: "scan mode: write (CLIENT PAUSE WRITE at cutover) or none (the source refuses it; stop the application's writes yourself)"},
		{Key: "notify_keyspace_events", Values: []string{"auto", "preconfigured"}, Doc: "scan mode: ferry sets notify-keyspace-events, or the source's operator did"},
		{Key: "scan_copy", Values: []string{"auto", "commands"}, Doc: "scan mode: DUMP/RESTORE, or type-specific commands only"},
		{Key: "scan_big_key_bytes", Doc: "scan mode: MEMORY USAGE above which a key is copied in chunks (default 64 MiB)"},
		{Key: "scan_count", Doc: "scan mode: SCAN COUNT and keys per pipeline (default 512)"},
		{Key: "scan_max_pending_keys", Doc: "scan mode: changed keys queued before ferry rescans (default 1M)"},
		{Key: extraBackupDir, Doc: "backup import: a local directory with the files"},
		{Key: extraBackupBucket, Doc: "backup import: an S3-compatible bucket with the files"},
		{Key: extraBackupFiles, Doc: "backup import: the files, comma-separated"},
		{Key: extraBackupFileSource, Values: []string{sourceBucket, sourceRecord}, Doc: "backup import: where the files are (DCS names)"},
		{Key: extraBackupID, Doc: "backup import: a backup taken by ferry backups create"},
		{Key: extraAOFLoadTruncated, Values: []string{"yes", "no"}, Doc: "backup import: accept a truncated last AOF command"},
	}
}
