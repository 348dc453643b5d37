package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

// RawData reads the data column of the row with key id in table, as the
// store keeps it (no decryption).
type RawData func(t *testing.T, table, id string) string

// RunSecrets checks the encryption at rest of endpoint and job secrets
// (ferry.SealStore) over a store: open returns a fresh, empty store and a
// reader of its raw rows. Each subtest seals with its own random key.
func RunSecrets(t *testing.T, open func(t *testing.T) (ferry.Store, RawData)) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, inner ferry.Store, raw RawData)
	}{
		{"SealedAtRest", testSealedAtRest},
		{"MigratePlaintext", testMigratePlaintext},
		{"WrongOrGarbledKey", testWrongOrGarbledKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, raw := open(t)
			tc.fn(t, st, raw)
		})
	}
}

const (
	pw1 = "pw-Hunter2-one"
	pw2 = "pw-Hunter2-two"
	pw3 = "pw-Hunter2-uri"
)

func newBox(t *testing.T) *ferry.AESBox {
	t.Helper()
	box, err := ferry.NewAESBox([]byte(ferry.RandomHex(16)))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

func secretEndpoint(projectID string) *ferry.Endpoint {
	return &ferry.Endpoint{ProjectID: projectID, Name: "src", Kind: ferry.KindMongoDB, Addrs: []string{"h:27017"}, Username: "u", Password: pw1,
		Options: map[string]string{"uri": "mongodb://u:" + pw3 + "@h:27017/admin", "replicaSet": "rs0"}}
}

func secretMigration(projectID string) *ferry.Migration {
	return &ferry.Migration{ProjectID: projectID, Name: "m", Engine: ferry.KindMongoDB, State: ferry.StateRunning,
		Source:  ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{"a:1"}, Password: pw1, Options: map[string]string{"uri": "mongodb://u:" + pw3 + "@a:1/"}},
		Target:  ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{"b:1"}, Password: pw2},
		Options: ferry.Options{Extra: map[string]string{"backup_s3_secret": pw2, "mode": "x"}}}
}

func noPlaintext(t *testing.T, raw RawData, table, id string) string {
	t.Helper()
	d := raw(t, table, id)
	for _, p := range []string{pw1, pw2, pw3} {
		if strings.Contains(d, p) {
			t.Fatalf("%s %s holds the plaintext %q: %s", table, id, p, d)
		}
	}
	if !strings.Contains(d, "fsb1:") {
		t.Fatalf("%s %s holds no ciphertext: %s", table, id, d)
	}
	return d
}

func checkEndpoint(t *testing.T, e *ferry.Endpoint, pw string) {
	t.Helper()
	if e.Password != pw || e.Options["uri"] != "mongodb://u:"+pw3+"@h:27017/admin" || e.Options["replicaSet"] != "rs0" {
		t.Fatalf("endpoint read back: password %q options %v", e.Password, e.Options)
	}
}

func checkMigration(t *testing.T, m *ferry.Migration) {
	t.Helper()
	if m.Source.Password != pw1 || m.Target.Password != pw2 || m.Source.Options["uri"] != "mongodb://u:"+pw3+"@a:1/" ||
		m.Options.Extra["backup_s3_secret"] != pw2 || m.Options.Extra["mode"] != "x" {
		t.Fatalf("migration read back: %+v %+v %v", m.Source, m.Target, m.Options.Extra)
	}
}

func setupProject(t *testing.T, s ferry.Store) *ferry.Project {
	t.Helper()
	ctx := context.Background()
	o := &ferry.Organization{Name: "org"}
	if err := s.CreateOrg(ctx, o); err != nil {
		t.Fatal(err)
	}
	p := &ferry.Project{OrgID: o.ID, Name: "p"}
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func testSealedAtRest(t *testing.T, inner ferry.Store, raw RawData) {
	ctx := context.Background()
	s := ferry.SealStore(inner, newBox(t))
	p := setupProject(t, s)
	e := secretEndpoint(p.ID)
	if err := s.CreateEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	if e.ID == "" || e.Password != pw1 {
		t.Fatalf("create changed the caller's endpoint: %+v", e)
	}
	noPlaintext(t, raw, "endpoints", e.ID)
	got, err := s.GetEndpoint(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkEndpoint(t, got, pw1)
	if got, err = s.GetEndpointByName(ctx, p.ID, "src"); err != nil {
		t.Fatal(err)
	}
	checkEndpoint(t, got, pw1)
	list, err := s.ListEndpoints(ctx, p.ID)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
	checkEndpoint(t, list[0], pw1)
	up, err := s.UpdateEndpoint(ctx, e.ID, func(e *ferry.Endpoint) error {
		if e.Password != pw1 {
			t.Errorf("update fn sees password %q", e.Password)
		}
		e.Password = pw2
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkEndpoint(t, up, pw2)
	noPlaintext(t, raw, "endpoints", e.ID)
	// The inner store holds ciphertext only.
	in, err := inner.GetEndpoint(ctx, e.ID)
	if err != nil || !ferry.IsSealed(in.Password) || !ferry.IsSealed(in.Options["uri"]) || in.Options["replicaSet"] != "rs0" {
		t.Fatalf("inner row %+v %v", in, err)
	}

	m := secretMigration(p.ID)
	if err := s.CreateMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	checkMigration(t, m)
	noPlaintext(t, raw, "migrations", m.ID)
	gm, err := s.GetMigration(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkMigration(t, gm)
	ms, _, err := s.ListMigrations(ctx, ferry.MigrationFilter{ProjectID: p.ID})
	if err != nil || len(ms) != 1 {
		t.Fatalf("list %v %v", ms, err)
	}
	checkMigration(t, ms[0])
	um, err := s.UpdateMigration(ctx, m.ID, func(m *ferry.Migration) error {
		checkMigration(t, m)
		m.Error = "x"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkMigration(t, um)
	noPlaintext(t, raw, "migrations", m.ID)
	cm, err := s.ClaimMigration(ctx, "agent-1", time.Now(), time.Minute)
	if err != nil || cm == nil {
		t.Fatalf("claim %v %v", cm, err)
	}
	checkMigration(t, cm)
	noPlaintext(t, raw, "migrations", m.ID)
}

func testMigratePlaintext(t *testing.T, inner ferry.Store, raw RawData) {
	ctx := context.Background()
	p := setupProject(t, inner)
	// Rows written before encryption was turned on.
	e := secretEndpoint(p.ID)
	if err := inner.CreateEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	m := secretMigration(p.ID)
	if err := inner.CreateMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	plain := &ferry.Endpoint{ProjectID: p.ID, Name: "nopass", Kind: ferry.KindRedis, Addrs: []string{"r:6379"}}
	if err := inner.CreateEndpoint(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if d := raw(t, "endpoints", e.ID); !strings.Contains(d, pw1) {
		t.Fatalf("the plaintext row is not plaintext: %s", d)
	}
	s := ferry.SealStore(inner, newBox(t))
	// Readable before the migration (plaintext is read as it is) ...
	if got, err := s.GetEndpoint(ctx, e.ID); err != nil || got.Password != pw1 {
		t.Fatalf("plaintext row through the sealed store: %+v %v", got, err)
	}
	n, err := ferry.MigrateSecrets(ctx, s)
	if err != nil || n != 2 {
		t.Fatalf("MigrateSecrets: %d rows, %v; want 2", n, err)
	}
	// ... and rewritten sealed by it.
	noPlaintext(t, raw, "endpoints", e.ID)
	noPlaintext(t, raw, "migrations", m.ID)
	got, err := s.GetEndpoint(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkEndpoint(t, got, pw1)
	gm, err := s.GetMigration(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkMigration(t, gm)
	if n, err := ferry.MigrateSecrets(ctx, s); err != nil || n != 0 {
		t.Fatalf("second MigrateSecrets: %d rows, %v; want 0", n, err)
	}
}

func testWrongOrGarbledKey(t *testing.T, inner ferry.Store, raw RawData) {
	ctx := context.Background()
	a := ferry.SealStore(inner, newBox(t))
	p := setupProject(t, a)
	e := secretEndpoint(p.ID)
	if err := a.CreateEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	b := ferry.SealStore(inner, newBox(t))
	for _, read := range []func() error{
		func() error { _, err := b.GetEndpoint(ctx, e.ID); return err },
		func() error { _, err := b.ListEndpoints(ctx, p.ID); return err },
		func() error { _, err := ferry.MigrateSecrets(ctx, b); return err },
	} {
		err := read()
		if err == nil || !strings.Contains(err.Error(), "another key") {
			t.Fatalf("read with another key: %v", err)
		}
	}
	// A damaged ciphertext (same key id) is an error, never used.
	box := newBox(t)
	c := ferry.SealStore(inner, box)
	good, _ := box.Seal(pw1)
	bad := good[:len(good)-4] + "AAAA"
	g := &ferry.Endpoint{ProjectID: p.ID, Name: "garbled", Kind: ferry.KindRedis, Addrs: []string{"r:1"}, Password: bad}
	if err := inner.CreateEndpoint(ctx, g); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetEndpoint(ctx, g.ID)
	if err == nil || ferry.AsError(err) == nil || ferry.AsError(err).Reason != "SECRET_UNREADABLE" {
		t.Fatalf("garbled: %+v %v", got, err)
	}
	if strings.Contains(err.Error(), bad) {
		t.Fatalf("the error quotes the ciphertext: %v", err)
	}
}
