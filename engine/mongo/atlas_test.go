package mongo_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/atlas-sdk/v20250312010/admin"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/atlas"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// TestAtlasLiveMigration drives a live migration between two FerretDB
// servers through the Atlas dialect with the official Atlas Go SDK:
// validate (success, and failure against an unreachable source), create,
// WORKING with lagTimeSeconds and readyForCutover, cutover (202), COMPLETE
// with the agent as migration host.
func TestAtlasLiveMigration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	insertDocs(t, e.src.Database("app").Collection("things"), typedDocs())
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := e.svc.CreateOrg(sys, "atlas-org")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := e.svc.CreateProject(sys, org.ID, "atlas-project")
	if err != nil {
		t.Fatal(err)
	}
	key, priv, err := e.svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "sdk")
	if err != nil {
		t.Fatal(err)
	}
	for name, addr := range map[string]string{"Source0": e.srcAddr, "Dest0": e.dstAddr, "Down0": "127.0.0.1:1"} {
		ep := &ferry.Endpoint{ProjectID: proj.ID, Name: name, Kind: ferry.KindMongoDB, Addrs: []string{addr},
			Options: map[string]string{"serverSelectionTimeoutMS": "1500", "connectTimeoutMS": "1000"}}
		if err := e.svc.CreateEndpoint(sys, ep); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(atlas.New(e.svc, httpauth.New(e.svc), logger(t)))
	t.Cleanup(srv.Close)
	client, err := admin.NewClient(admin.UseBaseURL(srv.URL), admin.UseDigestAuth(key.PublicKey, priv))
	if err != nil {
		t.Fatal(err)
	}
	api := client.CloudMigrationServiceApi
	req := func(source string) *admin.LiveMigrationRequest20240530 {
		return &admin.LiveMigrationRequest20240530{
			Source:              admin.Source{ClusterName: source, GroupId: proj.ID},
			Destination:         admin.Destination{ClusterName: "Dest0", GroupId: proj.ID, HostnameSchemaType: "PUBLIC"},
			DropDestinationData: admin.PtrBool(true),
		}
	}
	validate := func(source string) *admin.LiveImportValidation {
		v, _, err := api.ValidateLiveMigrations(ctx, proj.ID, req(source)).Execute()
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			got, _, err := api.GetMigrationValidateStatus(ctx, proj.ID, v.GetId()).Execute()
			if err != nil {
				t.Fatal(err)
			}
			if s := got.GetStatus(); s == "SUCCESS" || s == "FAILED" {
				return got
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("validation %s did not finish", v.GetId())
		return nil
	}
	if v := validate("Source0"); v.GetStatus() != "SUCCESS" || v.GetErrorMessage() != "" {
		t.Fatalf("validate: %s %q", v.GetStatus(), v.GetErrorMessage())
	}
	if v := validate("Down0"); v.GetStatus() != "FAILED" || !strings.Contains(v.GetErrorMessage(), "cannot connect to the source 127.0.0.1:1") {
		t.Fatalf("validate against an unreachable source: %s %q", v.GetStatus(), v.GetErrorMessage())
	}

	a, _ := e.agent("migration-host-1")
	lm, resp, err := api.CreateGroupLiveMigration(ctx, proj.ID, req("Source0")).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || lm.GetStatus() != "WORKING" {
		t.Fatalf("create: %d %+v", resp.StatusCode, lm)
	}
	var got *admin.LiveMigrationResponse
	deadline := time.Now().Add(90 * time.Second)
	for {
		got, _, err = api.GetGroupLiveMigration(ctx, proj.ID, lm.GetId()).Execute()
		if err != nil {
			t.Fatal(err)
		}
		if got.GetStatus() == "WORKING" && got.LagTimeSeconds != nil && got.GetReadyForCutover() {
			break
		}
		if got.GetStatus() == "FAILED" || time.Now().After(deadline) {
			m, _ := e.store.GetMigration(ctx, lm.GetId())
			t.Fatalf("live migration never became ready: %+v (%s)", got, m.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.GetLagTimeSeconds() > 5 {
		t.Fatalf("lagTimeSeconds %d", got.GetLagTimeSeconds())
	}
	// A change during the sync arrives before the cutover completes.
	if _, err := e.src.Database("app").Collection("things").InsertOne(ctx, bson.D{{Key: "_id", Value: "late"}, {Key: "v", Value: int32(1)}}); err != nil {
		t.Fatal(err)
	}
	resp, err = api.CutoverMigration(ctx, proj.ID, lm.GetId()).Execute()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cutover: %v %v", resp, err)
	}
	deadline = time.Now().Add(90 * time.Second)
	for {
		got, _, err = api.GetGroupLiveMigration(ctx, proj.ID, lm.GetId()).Execute()
		if err != nil {
			t.Fatal(err)
		}
		if got.GetStatus() == "COMPLETE" {
			break
		}
		if got.GetStatus() == "FAILED" || time.Now().After(deadline) {
			m, _ := e.store.GetMigration(ctx, lm.GetId())
			t.Fatalf("live migration did not complete: %+v (%s)", got, m.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if hosts := got.GetMigrationHosts(); len(hosts) != 1 || hosts[0] != a.ID() || got.LagTimeSeconds != nil {
		t.Fatalf("complete: hosts %v lag %v", hosts, got.LagTimeSeconds)
	}
	n := sameBytes(t, e.src, e.dst, "app.things")
	m, _ := e.store.GetMigration(ctx, lm.GetId())
	t.Logf("COMPLETE on %v; %d documents equal byte for byte; verify: %s", got.GetMigrationHosts(), n, m.Step(ferry.StepVerify).Message)
}
