package mongo_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.mongodb.org/atlas-sdk/v20250312010/admin"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	"github.com/ferrymigrate/ferry/http/atlas"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// atlasAPI serves the Atlas dialect over the env's service and returns the
// official SDK's live-migration client, authenticated with a key of the
// env's organization.
func (e *env) atlasAPI() admin.CloudMigrationServiceApi {
	e.t.Helper()
	key, priv, err := e.svc.CreateAPIKey(e.ctx, e.proj.OrgID, "", ferry.RoleOrgOwner, "sdk")
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(atlas.New(e.svc, httpauth.New(e.svc), logger(e.t)))
	e.t.Cleanup(srv.Close)
	client, err := admin.NewClient(admin.UseBaseURL(srv.URL), admin.UseDigestAuth(key.PublicKey, priv))
	if err != nil {
		e.t.Fatal(err)
	}
	return client.CloudMigrationServiceApi
}

// TestReadyJobExpiresAfterCutoverWindow leaves a live migration ready for
// cutover past its deadline (the agent's cutover window shortened from 120
// hours to 3 seconds): the Atlas GET first shows the running job's live
// lagTimeSeconds, migrationHosts and readyForCutover, then EXPIRED; the
// job stops syncing (a later write to the source never reaches the target),
// gives its lease back, and refuses a cutover.
func TestReadyJobExpiresAfterCutoverWindow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	insertDocs(t, e.src.Database("app").Collection("things"), typedDocs())
	m := e.create(ferry.Modes{Full: true, Incremental: true, Verify: true}, ferry.Options{})
	api := e.atlasAPI()
	const window = 3 * time.Second
	a, _ := e.agentWith("expiring-host", func(c *agent.Config) { c.CutoverWindow = window })

	// A change during the sync arrives while the job is ready.
	var got *admin.LiveMigrationResponse
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		got, _, err = api.GetGroupLiveMigration(ctx, e.proj.ID, m.ID).Execute()
		if err != nil {
			t.Fatal(err)
		}
		if got.GetStatus() == "WORKING" && got.GetReadyForCutover() && got.LagTimeSeconds != nil {
			break
		}
		if got.GetStatus() != "NEW" && got.GetStatus() != "WORKING" || time.Now().After(deadline) {
			sm, _ := e.store.GetMigration(ctx, m.ID)
			t.Fatalf("never ready for cutover: %+v (%s)", got, sm.Error)
		}
		time.Sleep(25 * time.Millisecond)
	}
	readyAt := time.Now()
	if hosts := got.GetMigrationHosts(); len(hosts) != 1 || hosts[0] != a.ID() || got.GetLagTimeSeconds() > 5 {
		t.Fatalf("running job: hosts %v lag %d", hosts, got.GetLagTimeSeconds())
	}
	sm, err := e.store.GetMigration(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sm.CutoverDeadline == nil || sm.CutoverDeadline.After(readyAt.Add(window)) || sm.CutoverDeadline.Before(readyAt.Add(-window)) {
		t.Fatalf("cutover deadline %v, want about %s after %v", sm.CutoverDeadline, window, readyAt)
	}
	if _, err := e.src.Database("app").Collection("things").InsertOne(ctx, bson.D{{Key: "_id", Value: "while-ready"}}); err != nil {
		t.Fatal(err)
	}
	// Nobody cuts over.
	deadline = time.Now().Add(60 * time.Second)
	for {
		got, _, err = api.GetGroupLiveMigration(ctx, e.proj.ID, m.ID).Execute()
		if err != nil {
			t.Fatal(err)
		}
		if got.GetStatus() == "EXPIRED" {
			break
		}
		if got.GetStatus() != "WORKING" || time.Now().After(deadline) {
			t.Fatalf("not expired: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expiredAfter := time.Since(readyAt)
	if got.LagTimeSeconds != nil || got.GetReadyForCutover() || expiredAfter < window-time.Second {
		t.Fatalf("expired job: lag %v ready %v after %s", got.LagTimeSeconds, got.GetReadyForCutover(), expiredAfter)
	}
	sm = e.wait(m.ID, "expired without a lease", 10*time.Second, func(m *ferry.Migration) bool {
		return m.State == ferry.StateExpired && m.Lease == nil && m.FinishedAt != nil
	})
	if s := sm.Step(ferry.StepIncremental); s.State != ferry.StepRunning && s.State != ferry.StepPending {
		t.Fatalf("incremental step %s after expiry", s.State)
	}
	if v := sm.Step(ferry.StepVerify); v.State != ferry.StepPending {
		t.Fatalf("verify step %s after expiry", v.State)
	}
	// The change made while it was ready arrived; the sync stopped after.
	things := e.dst.Database("app").Collection("things")
	if err := things.FindOne(ctx, bson.D{{Key: "_id", Value: "while-ready"}}).Err(); err != nil {
		t.Fatalf("change made while ready for cutover: %v", err)
	}
	waitIdle(t, a)
	if _, err := e.src.Database("app").Collection("things").InsertOne(ctx, bson.D{{Key: "_id", Value: "after-expiry"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // several sync polls and heartbeats
	if err := things.FindOne(ctx, bson.D{{Key: "_id", Value: "after-expiry"}}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("a write after expiry reached the target: %v", err)
	}
	if resp, err := api.CutoverMigration(ctx, e.proj.ID, m.ID).Execute(); err == nil || resp == nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("cutover of an expired live migration: %v %v", resp, err)
	}
	if got, _, err = api.GetGroupLiveMigration(ctx, e.proj.ID, m.ID).Execute(); err != nil || got.GetStatus() != "EXPIRED" {
		t.Fatalf("after the refused cutover: %+v %v", got, err)
	}
	t.Logf("ready for cutover at deadline %s; EXPIRED %s later; sync stopped (a later write stayed on the source); cutover refused",
		sm.CutoverDeadline.Format(time.RFC3339Nano), expiredAfter.Round(time.Millisecond))
}

// waitIdle waits until the agent runs no job.
func waitIdle(t *testing.T, a *agent.Agent) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(a.Running()) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("agent still runs %v", a.Running())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
