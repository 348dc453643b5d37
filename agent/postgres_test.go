package agent_test

import (
	"context"
	"testing"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
	"github.com/ferrymigrate/ferry/postgres"
)

func TestMain(m *testing.M) { testharness.Main(m) }

func openPostgres(t *testing.T) ferry.Store {
	t.Helper()
	db, err := postgres.Open(context.Background(), testharness.StartPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Two agents share one PostgreSQL; the one running a job is killed and the
// other takes the job over once the lease expires, from its checkpoint.
func TestTakeoverPostgres(t *testing.T) { TakeoverSuite(t, openPostgres(t)) }

func TestLifecycleToCutoverPostgres(t *testing.T) {
	eng := &countEngine{Items: 10, Lag: 0}
	f := newFixture(t, openPostgres(t), eng)
	m := f.create(t, ferry.Modes{Full: true, Incremental: true})
	f.agent(t, "agent-a", 2e9)
	f.agent(t, "agent-b", 2e9)
	f.waitFor(t, m.ID, "ready", func(m *ferry.Migration) bool { return m.ReadyForCutover })
	if _, err := f.svc.CutoverMigration(f.ctx, f.proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = f.waitFor(t, m.ID, "completed", func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	if len(m.Hosts) != 1 {
		t.Fatalf("one job ran on %v", m.Hosts)
	}
}
