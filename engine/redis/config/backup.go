package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrymigrate/ferry"
)

// File sources of a backup import (DCS's names).
const (
	SourceBucket = "self_build_obs" // files in a bucket
	SourceRecord = "backup_record"  // a backup taken by ferry backups create
)

// Backup is where a backup import's files are.
type Backup struct {
	// FileSource is SourceBucket or SourceRecord; "" reads as SourceRecord
	// when only ID is given, else as files in Dir or Bucket.
	FileSource string
	Dir        string // a local directory (inside the agent's import dirs)
	Bucket     string // an S3-compatible bucket
	ID         string // a backup record
	Files      []BackupFile
	// LoadTruncatedAOF accepts a truncated last command at the end of the
	// last AOF file, dropping it.
	LoadTruncatedAOF bool
}

// BackupFile is a file a job names.
type BackupFile struct {
	Name string
	Size int64 // -1: not given
	// UpdateAt is the caller's modification time, kept as given.
	UpdateAt string
}

// storedFile is a BackupFile as Options.Extra["backup_files"] holds it: a
// JSON array of {file_name, size, update_at} (size a number, or a string
// in jobs stored before the typed spec).
type storedFile struct {
	FileName string    `json:"file_name"`
	Size     *flexSize `json:"size,omitempty"`
	UpdateAt string    `json:"update_at,omitempty"`
}

// flexSize is a size stored as a JSON number or string.
type flexSize int64

func (s *flexSize) UnmarshalJSON(b []byte) error {
	str := strings.Trim(string(b), `"`)
	if str == "" || str == "null" {
		*s = -1
		return nil
	}
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("bad size %s", b)
	}
	*s = flexSize(n)
	return nil
}

// Encode stores the spec in a job's Options.Extra, with the mode.
func (b *Backup) Encode(x map[string]string) error {
	x[KeyMode] = string(ModeBackupImport)
	set := func(k, v string) {
		if v != "" {
			x[k] = v
		}
	}
	set(KeyBackupFileSource, b.FileSource)
	set(KeyBackupDir, b.Dir)
	set(KeyBackupBucket, b.Bucket)
	set(KeyBackupID, b.ID)
	if b.LoadTruncatedAOF {
		x[KeyAOFLoadTruncated] = "yes"
	}
	if len(b.Files) > 0 {
		files := make([]storedFile, len(b.Files))
		for i, f := range b.Files {
			files[i] = storedFile{FileName: f.Name, UpdateAt: f.UpdateAt}
			if f.Size >= 0 {
				n := flexSize(f.Size)
				files[i].Size = &n
			}
		}
		raw, err := json.Marshal(files)
		if err != nil {
			return err
		}
		x[KeyBackupFiles] = string(raw)
	}
	return nil
}

// BackupOf reads the spec stored in Options.Extra as it is, for views:
// names are not cleaned and the location is not checked (ParseBackup does).
func BackupOf(x map[string]string) Backup {
	b := Backup{FileSource: x[KeyBackupFileSource], Dir: x[KeyBackupDir], Bucket: x[KeyBackupBucket], ID: x[KeyBackupID],
		LoadTruncatedAOF: x[KeyAOFLoadTruncated] == "yes"}
	b.Files, _ = decodeFiles(x[KeyBackupFiles], false)
	return b
}

// ParseBackup reads and checks a backup import's spec: where the files
// are, and their names (relative, without "..").
func ParseBackup(x map[string]string) (Backup, error) {
	b := BackupOf(x)
	var err error
	if b.Files, err = decodeFiles(x[KeyBackupFiles], true); err != nil {
		return b, err
	}
	err = b.check()
	return b, err
}

// decodeFiles reads backup_files: a JSON array of {file_name, size,
// update_at} or a comma-separated list of names.
func decodeFiles(s string, clean bool) ([]BackupFile, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	name := func(n string) (string, error) {
		if !clean {
			return n, nil
		}
		return CleanName(n)
	}
	var out []BackupFile
	if strings.HasPrefix(s, "[") {
		var files []storedFile
		if err := json.Unmarshal([]byte(s), &files); err != nil {
			return nil, ferry.FieldError("options.extra.backup_files", "not a JSON array of {\"file_name\", \"size\", \"update_at\"}: %v", err)
		}
		for i, f := range files {
			n, err := name(f.FileName)
			if err != nil {
				return nil, ferry.FieldError(fmt.Sprintf("backup_files.files[%d].file_name", i), "%v", err)
			}
			size := int64(-1)
			if f.Size != nil {
				size = int64(*f.Size)
			}
			out = append(out, BackupFile{Name: n, Size: size, UpdateAt: f.UpdateAt})
		}
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		n, err := name(part)
		if err != nil {
			return nil, ferry.FieldError("options.extra.backup_files", "%v", err)
		}
		out = append(out, BackupFile{Name: n, Size: -1})
	}
	return out, nil
}

// check says whether the spec names its files, without network.
func (b *Backup) check() error {
	switch b.FileSource {
	case SourceRecord:
		if b.ID == "" {
			return ferry.FieldError("backup_files.backup_id", "is mandatory when file_source is backup_record")
		}
		return nil
	case SourceBucket:
		if b.Bucket == "" {
			return ferry.FieldError("backup_files.bucket_name", "is mandatory when file_source is self_build_obs")
		}
	case "":
		if b.ID != "" && b.Dir == "" && b.Bucket == "" {
			b.FileSource = SourceRecord
			return nil
		}
		if b.Dir == "" && b.Bucket == "" {
			return ferry.FieldError("options.extra", "a backup import names its files: backup_dir (a local directory) or backup_bucket, with backup_files; or backup_id (a backup taken by ferry backups create)")
		}
	default:
		return ferry.FieldError("backup_files.file_source", "unknown value %q (self_build_obs or backup_record)", b.FileSource)
	}
	if b.Dir != "" && b.Bucket != "" {
		return ferry.FieldError("options.extra.backup_dir", "give backup_dir or backup_bucket, not both")
	}
	if len(b.Files) == 0 {
		return ferry.FieldError("backup_files.files", "name the files to import")
	}
	return nil
}
