package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
)

// fileKind is what a backup file holds, from its first bytes.
type fileKind int

const (
	kindRDB      fileKind = iota + 1 // "REDIS..." (an RDB, or an AOF with an RDB preamble)
	kindAOF                          // RESP commands (possibly empty)
	kindManifest                     // a Redis 7 multi-part AOF manifest
)

func (k fileKind) String() string {
	switch k {
	case kindRDB:
		return "RDB"
	case kindAOF:
		return "AOF"
	case kindManifest:
		return "AOF manifest"
	}
	return "unknown"
}

// sniff tells a file's kind from its first bytes.
func sniff(head []byte) (fileKind, bool) {
	switch {
	case len(head) == 0:
		return kindAOF, true // an empty AOF (Redis makes empty incremental files)
	case bytes.HasPrefix(head, []byte("REDIS")):
		return kindRDB, true
	case head[0] == '*' || head[0] == '#':
		return kindAOF, true
	case bytes.HasPrefix(head, []byte("file ")):
		return kindManifest, true
	}
	return 0, false
}

// importFile is one file of an import, in the order it is applied.
type importFile struct {
	Name       string // path in the store
	Size       int64
	Want       int64    // the size the job gave (-1: none)
	Kind       fileKind // kindRDB or kindAOF
	RDBVersion int
	// Part is "base" or "incr" for the files of a multi-part AOF.
	Part string
}

// importSource is the resolved files of a job.
type importSource struct {
	store fileStore
	files []importFile
	where string // for messages: "bucket b on http://...", "backup <id> of host:port"
}

func (s *importSource) total() int64 {
	var n int64
	for _, f := range s.files {
		n += f.Size
	}
	return n
}

func (s *importSource) label(f importFile) string { return f.Name + " in " + s.store.String() }

func notFound(where, name string, err error) error {
	return &ferry.Error{Code: ferry.EINVALID, Field: "backup_files.files", Reason: "BACKUP_FILE_NOT_FOUND",
		Message: fmt.Sprintf("backup file %s not found in %s: %v", name, where, err),
		Advice:  "check the file names, the bucket and ferry's bucket configuration"}
}

// resolve finds a job's files, expands multi-part AOF manifests and reads
// each file's size and kind. It reads the first bytes of every file, so it
// also checks that they are readable.
func (e *Mode) resolve(ctx context.Context, b *config.Backup) (*importSource, error) {
	specs := b.Files
	src := &importSource{}
	var err error
	switch {
	case b.FileSource == config.SourceRecord:
		rec, store, err := e.Config.findBackup(ctx, b.ID)
		if err != nil {
			return nil, err
		}
		src.store = store
		src.where = fmt.Sprintf("backup %s of %s taken %s (%s)", rec.ID, rec.Source, rec.CreatedAt.UTC().Format("2006-01-02 15:04:05"), store)
		specs = []config.BackupFile{{Name: rec.File, Size: rec.Size}}
	case b.Dir != "":
		ds, err := e.Config.importStore(b.Dir)
		if err != nil {
			return nil, err
		}
		src.store = ds
		src.where = src.store.String()
	default:
		if src.store, err = e.Config.bucketStore(b.Bucket); err != nil {
			return nil, err
		}
		src.where = src.store.String()
	}
	for _, sp := range specs {
		files, err := expandFile(ctx, src.store, sp)
		if err != nil {
			return nil, err
		}
		src.files = append(src.files, files...)
	}
	return src, nil
}

// open reads a step's filter and resolves its files.
func (e *Mode) open(ctx context.Context, m *ferry.Migration, b *config.Backup) (*kit.Filter, *importSource, error) {
	f, err := kit.NewFilter(m)
	if err != nil {
		return nil, nil, err
	}
	src, err := e.resolve(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	return f, src, nil
}

// head reads up to n bytes from the start of a file.
func head(ctx context.Context, st fileStore, name string, n int) ([]byte, error) {
	rc, err := st.Open(ctx, name, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(rc, b)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return b[:k], err
}

// expandFile stats one named file; a manifest (or a directory holding one)
// becomes its base and incremental files.
func expandFile(ctx context.Context, st fileStore, sp config.BackupFile) ([]importFile, error) {
	fi, err := st.Stat(ctx, sp.Name)
	if err != nil {
		if errors.Is(err, errNotFound) {
			return nil, notFound(st.String(), sp.Name, err)
		}
		return nil, fmt.Errorf("stat %s in %s: %w", sp.Name, st, err)
	}
	if fi.Dir {
		ents, err := st.List(ctx, sp.Name)
		if err != nil {
			return nil, fmt.Errorf("list %s in %s: %w", sp.Name, st, err)
		}
		var manifests []string
		for _, e := range ents {
			if !e.Dir && strings.HasSuffix(e.Name, ".manifest") {
				manifests = append(manifests, e.Name)
			}
		}
		if len(manifests) != 1 {
			return nil, &ferry.Error{Code: ferry.EINVALID, Field: "backup_files.files", Reason: "BACKUP_FILE_NOT_FOUND",
				Message: fmt.Sprintf("%s in %s is a directory with %d AOF manifests (*.manifest): name a file, or a Redis 7 appendonly directory with one manifest", sp.Name, st, len(manifests))}
		}
		return expandManifest(ctx, st, manifests[0])
	}
	if sp.Size >= 0 && sp.Size != fi.Size {
		return nil, &ferry.Error{Code: ferry.EINVALID, Field: "backup_files.files", Reason: "BACKUP_FILE_CHANGED",
			Message: fmt.Sprintf("backup file %s in %s is %d bytes, but the task says %d: it changed since the task was made", sp.Name, st, fi.Size, sp.Size),
			Advice:  "create the task again with the file's current size"}
	}
	h, err := head(ctx, st, sp.Name, 9)
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", sp.Name, st, err)
	}
	kind, ok := sniff(h)
	if !ok {
		return nil, corruptFile(st.String(), sp.Name, 0, "not an RDB file, an AOF file or an AOF manifest (it starts with none of their signatures)")
	}
	if kind == kindManifest {
		return expandManifest(ctx, st, sp.Name)
	}
	f := importFile{Name: sp.Name, Size: fi.Size, Want: sp.Size, Kind: kind}
	if kind == kindRDB && len(h) == 9 {
		f.RDBVersion, _ = strconv.Atoi(string(h[5:9]))
	}
	return []importFile{f}, nil
}

// maxManifestBytes bounds a manifest read into memory.
const maxManifestBytes = 1 << 20

// manifestEntry is a line of a multi-part AOF manifest.
type manifestEntry struct {
	File string
	Seq  int64
	Type string // "b" base, "h" history, "i" incremental
}

// parseManifest reads a Redis 7 appendonly.aof.manifest: lines of
// "file <name> seq <n> type <b|h|i>" (names may be quoted as Redis's
// sdssplitargs reads them); '#' lines are comments. It returns the base (if
// any) and the incremental files in seq order; history files are dropped.
func parseManifest(b []byte) (base *manifestEntry, incr []manifestEntry, err error) {
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		args, err := splitArgs(line)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		if len(args)%2 != 0 {
			return nil, nil, fmt.Errorf("line %d: odd number of fields", i+1)
		}
		var e manifestEntry
		seqSet := false
		for j := 0; j < len(args); j += 2 {
			switch args[j] {
			case "file":
				e.File = args[j+1]
			case "seq":
				n, err := strconv.ParseInt(args[j+1], 10, 64)
				if err != nil {
					return nil, nil, fmt.Errorf("line %d: bad seq (not a number)", i+1)
				}
				e.Seq, seqSet = n, true
			case "type":
				e.Type = args[j+1]
			}
		}
		if e.File == "" || !seqSet || e.Type == "" {
			return nil, nil, fmt.Errorf("line %d: want file, seq and type", i+1)
		}
		if strings.Contains(e.File, "/") || e.File == "." || e.File == ".." {
			// A manifest names files of its own directory (Redis writes
			// bare names); "." and ".." would resolve outside it.
			return nil, nil, fmt.Errorf("line %d: a file name is not a bare name of the manifest's directory", i+1)
		}
		switch e.Type {
		case "b":
			if base != nil {
				return nil, nil, fmt.Errorf("line %d: a second base file", i+1)
			}
			be := e
			base = &be
		case "i":
			incr = append(incr, e)
		case "h":
		default:
			return nil, nil, fmt.Errorf("line %d: unknown file type (want b, h or i)", i+1)
		}
	}
	if base == nil && len(incr) == 0 {
		return nil, nil, errors.New("it names no base and no incremental file")
	}
	sort.SliceStable(incr, func(i, j int) bool { return incr[i].Seq < incr[j].Seq })
	return base, incr, nil
}

// expandManifest resolves a manifest to its base and incremental files,
// which are in the manifest's directory.
func expandManifest(ctx context.Context, st fileStore, name string) ([]importFile, error) {
	rc, err := st.Open(ctx, name, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", name, st, err)
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestBytes+1))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", name, st, err)
	}
	if len(b) > maxManifestBytes {
		return nil, corruptFile(st.String(), name, maxManifestBytes, "an AOF manifest larger than 1 MiB")
	}
	base, incr, err := parseManifest(b)
	if err != nil {
		return nil, &ferry.Error{Code: ferry.EINVALID, Field: "backup_files.files", Reason: "BACKUP_FILE_CORRUPT",
			Message: fmt.Sprintf("AOF manifest %s in %s: %v", name, st, err)}
	}
	dir := path.Dir(name)
	var out []importFile
	add := func(e manifestEntry, part string) error {
		fn := path.Join(dir, e.File)
		fi, err := st.Stat(ctx, fn)
		if err != nil {
			if errors.Is(err, errNotFound) {
				return notFound(st.String(), fn, fmt.Errorf("named by the manifest %s", name))
			}
			return fmt.Errorf("stat %s in %s: %w", fn, st, err)
		}
		h, err := head(ctx, st, fn, 9)
		if err != nil {
			return fmt.Errorf("read %s in %s: %w", fn, st, err)
		}
		kind, ok := sniff(h)
		if !ok || kind == kindManifest {
			return corruptFile(st.String(), fn, 0, fmt.Sprintf("the manifest's %s file is neither an RDB nor an AOF (it starts with none of their signatures)", part))
		}
		f := importFile{Name: fn, Size: fi.Size, Want: -1, Kind: kind, Part: part}
		if kind == kindRDB && len(h) == 9 {
			f.RDBVersion, _ = strconv.Atoi(string(h[5:9]))
		}
		out = append(out, f)
		return nil
	}
	if base != nil {
		if err := add(*base, "base"); err != nil {
			return nil, err
		}
	}
	for _, e := range incr {
		if err := add(e, "incr"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// splitArgs splits a line as Redis's sdssplitargs does: spaces separate
// arguments; "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes;
// 'single quotes' take \'.
func splitArgs(line string) ([]string, error) {
	var out []string
	i := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n') {
			i++
		}
		if i >= len(line) {
			return out, nil
		}
		var cur []byte
		inq, insq := false, false
		for done := false; !done; {
			if i >= len(line) {
				if inq || insq {
					return nil, errors.New("unbalanced quotes")
				}
				break
			}
			c := line[i]
			switch {
			case inq:
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHexDigit(line[i+2]) && isHexDigit(line[i+3]):
					v, _ := strconv.ParseUint(line[i+2:i+4], 16, 8)
					cur = append(cur, byte(v))
					i += 3
				case c == '\\' && i+1 < len(line):
					i++
					switch line[i] {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, line[i])
					}
				case c == '"':
					if i+1 < len(line) && line[i+1] != ' ' && line[i+1] != '\t' {
						return nil, errors.New("closing quote must be followed by a space")
					}
					done = true
				default:
					cur = append(cur, c)
				}
			case insq:
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					cur = append(cur, '\'')
				case c == '\'':
					if i+1 < len(line) && line[i+1] != ' ' && line[i+1] != '\t' {
						return nil, errors.New("closing quote must be followed by a space")
					}
					done = true
				default:
					cur = append(cur, c)
				}
			default:
				switch c {
				case ' ', '\t', '\n', '\r':
					done = true
					continue
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, c)
				}
			}
			i++
		}
		out = append(out, string(cur))
	}
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// corruptFile is the error of a file that is not what it should be.
func corruptFile(where, name string, off int64, msg string) error {
	return &ferry.Error{Code: ferry.EINVALID, Field: "backup_files.files", Reason: "BACKUP_FILE_CORRUPT",
		Message: fmt.Sprintf("backup file %s in %s is corrupt at byte offset %d: %s", name, where, off, msg),
		Advice:  "check the file (redis-check-rdb, redis-check-aof) or import another backup"}
}
