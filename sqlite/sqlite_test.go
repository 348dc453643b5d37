package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/sqlite"
	"github.com/ferrymigrate/ferry/storetest"
)

func open(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ferry.Store { return open(t) })
}

// TestSecrets: endpoint and job secrets are ciphertext in the raw rows.
func TestSecrets(t *testing.T) {
	storetest.RunSecrets(t, func(t *testing.T) (ferry.Store, storetest.RawData) {
		db := open(t)
		return db, func(t *testing.T, table, id string) string {
			raw, err := sql.Open("sqlite", db.Path()+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var data string
			if err := raw.QueryRowContext(t.Context(), "SELECT data FROM "+table+" WHERE id = ?", id).Scan(&data); err != nil {
				t.Fatalf("raw %s %s: %v", table, id, err)
			}
			return data
		}
	})
}

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ferry.Store {
		db, err := sqlite.Open(t.Context(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	o := &ferry.Organization{Name: "kept"}
	if err := db.CreateOrg(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(t.Context()); err != nil || v != 2 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	got, err := db.GetOrg(t.Context(), o.ID)
	if err != nil || got.Name != "kept" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

// Two handles on one file (as two processes would have) still serialize
// their read-modify-writes.
func TestTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	a, b := openPath(t, path), openPath(t, path)
	m := &ferry.Migration{ProjectID: ferry.NewID(), Engine: ferry.KindRedis, State: ferry.StateRunning}
	if err := a.CreateMigration(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.UpdateMigration(t.Context(), m.ID, func(m *ferry.Migration) error { m.Attempts++; return nil })
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.GetMigration(t.Context(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 2*n || got.Version != 2*n+1 {
		t.Fatalf("attempts %d version %d, want %d and %d", got.Attempts, got.Version, 2*n, 2*n+1)
	}
}

func openPath(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestBadPath(t *testing.T) {
	for _, p := range []string{"", "a?b.db", "a#b.db"} {
		if db, err := sqlite.Open(t.Context(), p); err == nil {
			db.Close()
			t.Fatalf("Open(%q) succeeded", p)
		}
	}
}

// TestFileModes: the database and its -wal and -shm files are readable by
// their owner only, also when an older ferry left them world-readable.
func TestFileModes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ferry.db")
	check := func() {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %04o, want 0600", filepath.Base(p), st.Mode().Perm())
			}
		}
	}
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateOrg(t.Context(), &ferry.Organization{Name: "o"}); err != nil {
		t.Fatal(err)
	}
	check()
	db.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o644) // as an older ferry left them
	}
	db, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateOrg(t.Context(), &ferry.Organization{Name: "p"}); err != nil {
		t.Fatal(err)
	}
	check()
}
