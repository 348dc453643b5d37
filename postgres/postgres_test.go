package postgres_test

import (
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/postgres"
	"github.com/ferrymigrate/ferry/storetest"
)

func TestMain(m *testing.M) { testharness.Main(m) }

func open(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ferry.Store {
		return open(t, testharness.StartPostgres(t))
	})
}

// TestSecrets: endpoint and job secrets are ciphertext in the raw rows.
func TestSecrets(t *testing.T) {
	storetest.RunSecrets(t, func(t *testing.T) (ferry.Store, storetest.RawData) {
		url := testharness.StartPostgres(t)
		db := open(t, url)
		return db, func(t *testing.T, table, id string) string {
			conn, err := pgx.Connect(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(t.Context())
			var data string
			if err := conn.QueryRow(t.Context(), "SELECT data::text FROM "+table+" WHERE id = $1", id).Scan(&data); err != nil {
				t.Fatalf("raw %s %s: %v", table, id, err)
			}
			return data
		}
	})
}

// Agents starting together against a fresh database apply the schema once.
func TestConcurrentOpen(t *testing.T) {
	url := testharness.StartPostgres(t)
	const n = 6
	dbs := make([]*postgres.DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = postgres.Open(t.Context(), url)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		defer dbs[i].Close()
	}
	v, err := dbs[0].SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v != 2 {
		t.Fatalf("schema version %d, want 2", v)
	}
	// Reopening applies nothing and keeps the data.
	if err := dbs[1].CreateOrg(t.Context(), &ferry.Organization{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	again := open(t, url)
	orgs, err := again.ListOrgs(t.Context())
	if err != nil || len(orgs) != 1 {
		t.Fatalf("after reopen: %d orgs, %v", len(orgs), err)
	}
}
