package pipeline

import (
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The exporter's temporary files (a MongoDB collection's spill, the Parquet
// files spooled for an S3 upload) are named tmpPrefix* in os.TempDir() and
// locked (flock) for as long as they are open: a process that dies leaves
// them unlocked, and sweepTemp removes them.
const tmpPrefix = "ferry-pipeline-"

// createTemp creates a locked temporary file.
func createTemp(kind string) (*os.File, error) {
	f, err := os.CreateTemp("", tmpPrefix+kind+"-*")
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// sweepTemp removes the temporary files that no live process holds (older
// than minAge, so that a file is never taken between its creation and its
// lock), and returns how many.
func sweepTemp(log *slog.Logger, minAge time.Duration) int {
	names, _ := filepath.Glob(filepath.Join(os.TempDir(), tmpPrefix+"*"))
	n := 0
	for _, name := range names {
		st, err := os.Lstat(name)
		if err != nil || !st.Mode().IsRegular() || time.Since(st.ModTime()) < minAge {
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if os.Remove(name) == nil {
				n++
				log.Info("removed a temporary file left by a dead export", "file", name, "bytes", st.Size())
			}
		}
		f.Close()
	}
	return n
}
