package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/sqlite"
)

// TestSecretKeyFile: serve creates <data-dir>/secret.key (0600) and seals
// the plaintext passwords an older ferry stored; an agent without the key
// file, or with another key, refuses to start with an error that says
// what to do.
func TestSecretKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sf := storeFlags{dataDir: dir, store: "sqlite"}
	st, _, err := sf.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A plaintext row, as an older ferry wrote it.
	o := &ferry.Organization{Name: "o"}
	p := &ferry.Project{Name: "p"}
	if err := st.CreateOrg(ctx, o); err != nil {
		t.Fatal(err)
	}
	p.OrgID = o.ID
	if err := st.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	e := &ferry.Endpoint{ProjectID: p.ID, Name: "r", Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:6379"}, Password: "plain-old-pw"}
	if err := st.CreateEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}

	// An agent needs the key file: it never makes one of its own.
	if _, err := sf.seal(ctx, st, false, discardLogger()); err == nil || !strings.Contains(err.Error(), "--secret-key-file") {
		t.Fatalf("agent without a key file: %v", err)
	}
	sealed, err := sf.seal(ctx, st, true, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "secret.key")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret.key: %v %v", fi, err)
	}
	raw, err := sqlite.Open(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if in, err := raw.GetEndpoint(ctx, e.ID); err != nil || !ferry.IsSealed(in.Password) {
		t.Fatalf("after serve started the row is %+v %v", in, err)
	}
	if got, err := sealed.GetEndpoint(ctx, e.ID); err != nil || got.Password != "plain-old-pw" {
		t.Fatalf("sealed read: %+v %v", got, err)
	}
	// The agent with the same file reads it; with another key it stops.
	if _, err := sf.seal(ctx, st, false, discardLogger()); err != nil {
		t.Fatalf("agent with the key file: %v", err)
	}
	other := storeFlags{dataDir: dir, store: "sqlite", secretKeyFile: filepath.Join(t.TempDir(), "other.key")}
	if _, err := other.seal(ctx, st, true, discardLogger()); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Fatalf("another key: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ferry.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ferry.db: %v %v", fi, err)
	}
}
