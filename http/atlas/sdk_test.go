package atlas

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"go.mongodb.org/atlas-sdk/v20250312010/admin"
	"go.mongodb.org/atlas-sdk/v20250312010/auth"
)

// TestAtlasGoSDK drives the dialect with the official Atlas Go SDK: the
// strongest check that SDK users' programs work against ferry unchanged.
func TestAtlasGoSDK(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	client, err := admin.NewClient(admin.UseBaseURL(e.srv.URL), admin.UseDigestAuth(e.owner.pub, e.owner.priv))
	if err != nil {
		t.Fatal(err)
	}

	// Projects.
	groups, _, err := client.ProjectsApi.ListGroups(ctx).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if groups.GetTotalCount() != 1 || len(groups.GetResults()) != 1 {
		t.Fatalf("ListGroups: %d results, total %d", len(groups.GetResults()), groups.GetTotalCount())
	}
	g0 := groups.GetResults()[0]
	if g0.GetId() != e.proj.ID || g0.GetName() != "Project A" || g0.GetOrgId() != e.org.ID || g0.GetClusterCount() != 2 ||
		!g0.GetCreated().Equal(e.proj.CreatedAt.Truncate(time.Second)) {
		t.Fatalf("ListGroups result %+v", g0)
	}
	if links := groups.GetLinks(); len(links) != 1 || links[0].GetRel() != "self" {
		t.Fatalf("ListGroups links %+v", links)
	}

	created, resp, err := client.ProjectsApi.CreateGroup(ctx, &admin.Group{Name: "SDK Project", OrgId: e.org.ID}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !ferry.ValidID(created.GetId()) || created.GetName() != "SDK Project" || created.GetOrgId() != e.org.ID || created.GetCreated().IsZero() {
		t.Fatalf("CreateGroup: %d %+v", resp.StatusCode, created)
	}
	got, _, err := client.ProjectsApi.GetGroup(ctx, created.GetId()).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if got.GetId() != created.GetId() || got.GetName() != "SDK Project" || got.GetClusterCount() != 0 {
		t.Fatalf("GetGroup %+v", got)
	}
	byName, _, err := client.ProjectsApi.GetGroupByName(ctx, "SDK Project").Execute()
	if err != nil || byName.GetId() != created.GetId() {
		t.Fatalf("GetGroupByName: %v %+v", err, byName)
	}

	// Rename (PATCH with GroupUpdate), then a clash with an existing name.
	renamed, _, err := client.ProjectsApi.UpdateGroup(ctx, created.GetId(), &admin.GroupUpdate{Name: admin.PtrString("SDK Project 2")}).Execute()
	if err != nil || renamed.GetId() != created.GetId() || renamed.GetName() != "SDK Project 2" {
		t.Fatalf("UpdateGroup: %v %+v", err, renamed)
	}
	if got, _, err := client.ProjectsApi.GetGroupByName(ctx, "SDK Project 2").Execute(); err != nil || got.GetId() != created.GetId() {
		t.Fatalf("GetGroupByName after the rename: %v %+v", err, got)
	}
	_, _, err = client.ProjectsApi.UpdateGroup(ctx, created.GetId(), &admin.GroupUpdate{Name: admin.PtrString("Project A")}).Execute()
	if !admin.IsErrorCode(err, "GROUP_ALREADY_EXISTS") {
		t.Fatalf("UpdateGroup to a taken name: %v", err)
	}

	// Errors decode as the SDK's ApiError.
	_, _, err = client.ProjectsApi.GetGroup(ctx, ferry.NewID()).Execute()
	if !admin.IsErrorCode(err, "GROUP_NOT_FOUND") {
		t.Fatalf("GetGroup of an unknown id: %v", err)
	}
	if ae, ok := admin.AsError(err); !ok || ae.GetError() != 404 || ae.GetReason() != "Not Found" || ae.GetDetail() == "" {
		t.Fatalf("ApiError %+v", ae)
	}

	// Live migrations.
	lm, resp, err := client.CloudMigrationServiceApi.CreateGroupLiveMigration(ctx, e.proj.ID, &admin.LiveMigrationRequest20240530{
		Source: admin.Source{ClusterName: "Cluster0", GroupId: e.proj.ID, Ssl: true,
			Username: admin.PtrString("produser"), Password: admin.PtrString("prodsecret")},
		Destination:         admin.Destination{ClusterName: "Cluster1", GroupId: e.proj.ID, HostnameSchemaType: "PUBLIC"},
		MigrationHosts:      &[]string{"vm001.example.com"},
		DropDestinationData: admin.PtrBool(true),
	}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || !ferry.ValidID(lm.GetId()) || lm.GetStatus() != "WORKING" || lm.LagTimeSeconds != nil {
		t.Fatalf("CreateGroupLiveMigration: %d %+v", resp.StatusCode, lm)
	}
	if _, err := e.svc.Store.UpdateMigration(e.sys, lm.GetId(), func(m *ferry.Migration) error {
		lag := int64(42)
		m.CurrentStep, m.LagSeconds, m.ReadyForCutover, m.Hosts = ferry.StepIncremental, &lag, true, []string{"ferry-agent-7"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	lm2, _, err := client.CloudMigrationServiceApi.GetGroupLiveMigration(ctx, e.proj.ID, lm.GetId()).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if lm2.GetId() != lm.GetId() || lm2.GetStatus() != "WORKING" || lm2.GetLagTimeSeconds() != 42 || !lm2.GetReadyForCutover() ||
		len(lm2.GetMigrationHosts()) != 1 || lm2.GetMigrationHosts()[0] != "vm001.example.com" {
		t.Fatalf("GetGroupLiveMigration %+v", lm2)
	}
	resp, err = client.CloudMigrationServiceApi.CutoverMigration(ctx, e.proj.ID, lm.GetId()).Execute()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("CutoverMigration: %v", err)
	}
	v, _, err := client.CloudMigrationServiceApi.ValidateLiveMigrations(ctx, e.proj.ID, &admin.LiveMigrationRequest20240530{
		Source:      admin.Source{ClusterName: "Cluster0", GroupId: e.proj.ID, ManagedAuthentication: true},
		Destination: admin.Destination{ClusterName: "Cluster1", GroupId: e.proj.ID, HostnameSchemaType: "PUBLIC"},
	}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if !ferry.ValidID(v.GetId()) || v.GetGroupId() != e.proj.ID || v.GetSourceGroupId() != e.proj.ID {
		t.Fatalf("ValidateLiveMigrations %+v", v)
	}
	v2, _, err := client.CloudMigrationServiceApi.GetMigrationValidateStatus(ctx, e.proj.ID, v.GetId()).Execute()
	if err != nil || v2.GetId() != v.GetId() {
		t.Fatalf("GetMigrationValidateStatus: %v %+v", err, v2)
	}

	// Pipelines and runs.
	pl, _, err := client.DataLakePipelinesApi.CreatePipeline(ctx, e.proj.ID, &admin.DataLakeIngestionPipeline{
		Name:   admin.PtrString("sdk-pipeline"),
		Source: &admin.IngestionSource{Type: admin.PtrString("ON_DEMAND_CPS"), ClusterName: admin.PtrString("Cluster0"), DatabaseName: admin.PtrString("shop"), CollectionName: admin.PtrString("orders")},
		Sink: &admin.IngestionSink{Type: admin.PtrString("DLS"), MetadataProvider: admin.PtrString("AWS"), MetadataRegion: admin.PtrString("US_EAST_1"),
			PartitionFields: &[]admin.DataLakePipelinesPartitionField{{FieldName: "customer", Order: 0}}},
		DatasetRetentionPolicy: &admin.DatasetRetentionPolicy{Units: "DAYS", Value: 7},
	}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if pl.GetName() != "sdk-pipeline" || pl.GetState() != "ACTIVE" || pl.GetGroupId() != e.proj.ID || pl.Source.GetClusterName() != "Cluster0" ||
		len(pl.Sink.GetPartitionFields()) != 1 || pl.GetDatasetRetentionPolicy().Value != 7 {
		t.Fatalf("CreatePipeline %+v", pl)
	}
	list, _, err := client.DataLakePipelinesApi.ListPipelines(ctx, e.proj.ID).Execute()
	if err != nil || len(list) != 1 || list[0].GetId() != pl.GetId() {
		t.Fatalf("ListPipelines: %v %+v", err, list)
	}
	run, _, err := client.DataLakePipelinesApi.TriggerPipeline(ctx, e.proj.ID, "sdk-pipeline", &admin.TriggerIngestionPipelineRequest{}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if run.GetState() != "PENDING" || run.GetPipelineId() != pl.GetId() {
		t.Fatalf("TriggerPipeline %+v", run)
	}
	if _, err := e.svc.Store.UpdateRun(e.sys, run.GetId(), func(r *ferry.PipelineRun) error {
		r.State, r.Phase, r.DatasetName, r.SnapshotID = ferry.RunDone, ferry.PhaseIngestion, "v1$atlas$snapshot$Cluster0$shop$orders$1", ferry.NewID()
		r.Stats = ferry.RunStats{BytesExported: 4096, NumDocs: 42}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stored := must(e.svc.Store.GetRun(e.sys, run.GetId()))
	pr, _, err := client.DataLakePipelinesApi.GetPipelineRun(ctx, e.proj.ID, "sdk-pipeline", run.GetId()).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if pr.GetId() != run.GetId() || pr.GetState() != "DONE" || pr.GetPhase() != "INGESTION" || pr.GetDatasetName() != stored.DatasetName ||
		pr.GetSnapshotId() != stored.SnapshotID || pr.GetGroupId() != e.proj.ID || pr.GetPipelineId() != pl.GetId() ||
		pr.GetBackupFrequencyType() != "ON_DEMAND" || pr.Stats.GetBytesExported() != 4096 || pr.Stats.GetNumDocs() != 42 ||
		!pr.GetCreatedDate().Equal(stored.CreatedAt.Truncate(time.Second)) || !pr.GetScheduledDeletionDate().Equal(stored.ScheduledDeletionDate.Truncate(time.Second)) ||
		pr.GetDatasetRetentionPolicy().Units != "DAYS" || pr.GetDatasetRetentionPolicy().Value != 7 {
		t.Fatalf("GetPipelineRun %+v (stored %+v)", pr, stored)
	}
	runs, _, err := client.DataLakePipelinesApi.ListPipelineRuns(ctx, e.proj.ID, "sdk-pipeline").Execute()
	if err != nil {
		t.Fatal(err)
	}
	if runs.GetTotalCount() != 1 || len(runs.GetResults()) != 1 || runs.GetResults()[0].GetId() != run.GetId() || runs.GetResults()[0].GetState() != "DONE" {
		t.Fatalf("ListPipelineRuns %+v", runs)
	}
	if _, _, err := client.DataLakePipelinesApi.DeletePipelineRun(ctx, e.proj.ID, "sdk-pipeline", run.GetId()).Execute(); err != nil {
		t.Fatalf("DeletePipelineRun: %v", err)
	}
	if resp, err := client.DataLakePipelinesApi.DeletePipeline(ctx, e.proj.ID, "sdk-pipeline").Execute(); err != nil || resp.StatusCode != 200 {
		t.Fatalf("DeletePipeline: %v", err)
	}
	if resp, err := client.ProjectsApi.DeleteGroup(ctx, created.GetId()).Execute(); err != nil || resp.StatusCode != 204 {
		t.Fatalf("DeleteGroup: %v", err)
	}

	// A read-only key gets the SDK's 403 ApiError.
	gro := e.newKey(e.org.ID, e.proj.ID, ferry.RoleGroupReadOnly)
	roClient := must(admin.NewClient(admin.UseBaseURL(e.srv.URL), admin.UseDigestAuth(gro.pub, gro.priv)))
	_, _, err = roClient.CloudMigrationServiceApi.GetGroupLiveMigration(ctx, e.proj.ID, lm.GetId()).Execute()
	if !admin.IsErrorCode(err, "USER_UNAUTHORIZED") {
		t.Fatalf("read-only GetGroupLiveMigration: %v", err)
	}
}

// TestAtlasGoSDKOAuth authenticates the SDK with a service account's client
// credentials through /api/oauth/token.
func TestAtlasGoSDKOAuth(t *testing.T) {
	e := newEnv(t, true)
	// The SDK's UseOAuthAuth changes http.DefaultClient unless the context
	// carries a client; give it the test server's.
	ctx := context.WithValue(context.Background(), auth.HTTPClient, e.srv.Client())
	client, err := admin.NewClient(admin.UseBaseURL(e.srv.URL), admin.UseOAuthAuth(ctx, e.owner.pub, e.owner.priv))
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := client.ProjectsApi.GetGroup(ctx, e.proj.ID).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if g.GetId() != e.proj.ID || g.GetName() != "Project A" {
		t.Fatalf("GetGroup over OAuth %+v", g)
	}
	bad, err := admin.NewClient(admin.UseBaseURL(e.srv.URL), admin.UseOAuthAuth(ctx, e.owner.pub, "wrong"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bad.ProjectsApi.GetGroup(ctx, e.proj.ID).Execute(); err == nil {
		t.Fatal("a wrong client secret was accepted")
	}
}

// TestAtlasSDKLinkTokensAndAvailableProjects: the organization-level
// live-migration calls through the official SDK: a link token carries a
// working key of the organization until it is deleted; availableProjects
// lists the projects with their MongoDB endpoints and the agents.
func TestAtlasSDKLinkTokensAndAvailableProjects(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	client, err := admin.NewClient(admin.UseBaseURL(e.srv.URL), admin.UseDigestAuth(e.owner.pub, e.owner.priv))
	if err != nil {
		t.Fatal(err)
	}
	api := client.CloudMigrationServiceApi
	tok, _, err := api.CreateLinkToken(ctx, e.org.ID, &admin.TargetOrgRequest{}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := ferry.ParseLinkToken(tok.GetLinkToken())
	if err != nil || lt.OrgID != e.org.ID {
		t.Fatalf("link token %q: %v %+v", tok.GetLinkToken(), err, lt)
	}
	// The token's key works: it lists the organization's projects.
	linked, err := admin.NewClient(admin.UseBaseURL(e.srv.URL), admin.UseDigestAuth(lt.PublicKey, lt.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	if groups, _, err := linked.ProjectsApi.ListGroups(ctx).Execute(); err != nil || groups.GetTotalCount() != 1 {
		t.Fatalf("ListGroups with the link token's key: %v %+v", err, groups)
	}
	// A second token replaces the first.
	tok2, _, err := api.CreateLinkToken(ctx, e.org.ID, &admin.TargetOrgRequest{}).Execute()
	if err != nil || tok2.GetLinkToken() == tok.GetLinkToken() {
		t.Fatalf("second link token: %v", err)
	}
	if _, _, err := linked.ProjectsApi.ListGroups(ctx).Execute(); err == nil {
		t.Fatalf("the replaced token's key still works")
	}
	// Access lists are not enforced by ferry: refused, not ignored.
	_, _, err = api.CreateLinkToken(ctx, e.org.ID, &admin.TargetOrgRequest{AccessListIps: &[]string{"10.0.0.1"}}).Execute()
	if ae, ok := admin.AsError(err); !ok || ae.GetError() != 501 || ae.GetErrorCode() != "NOT_SUPPORTED" {
		t.Fatalf("accessListIps: %v", err)
	}
	// Only an ORG_OWNER of that organization may.
	ro := e.newKey(e.org.ID, "", ferry.RoleOrgReadOnly)
	roClient, _ := admin.NewClient(admin.UseBaseURL(e.srv.URL), admin.UseDigestAuth(ro.pub, ro.priv))
	if _, _, err := roClient.CloudMigrationServiceApi.CreateLinkToken(ctx, e.org.ID, &admin.TargetOrgRequest{}).Execute(); err == nil {
		t.Fatal("a read-only key created a link token")
	}
	resp, err := api.DeleteLinkTokens(ctx, e.org.ID).Execute()
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DeleteLinkTokens: %v", err)
	}
	lt2, _ := ferry.ParseLinkToken(tok2.GetLinkToken())
	gone, _ := admin.NewClient(admin.UseBaseURL(e.srv.URL), admin.UseDigestAuth(lt2.PublicKey, lt2.PrivateKey))
	if _, _, err := gone.ProjectsApi.ListGroups(ctx).Execute(); err == nil {
		t.Fatal("a deleted link token's key still works")
	}

	// Available projects, with the agents as migration hosts.
	now := time.Now().UTC()
	if err := e.db.UpsertAgent(ctx, &ferry.AgentInfo{ID: "agent-7", Hostname: "h7", Version: "test", StartedAt: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	aps, _, err := api.ListAvailableProjects(ctx, e.org.ID).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if len(aps) != 1 || aps[0].ProjectId != e.proj.ID || aps[0].Name != "Project A" || len(aps[0].GetDeployments()) != 2 ||
		aps[0].GetDeployments()[0].Name != "Cluster0" || len(aps[0].GetMigrationHosts()) != 1 || aps[0].GetMigrationHosts()[0] != "agent-7" {
		t.Fatalf("ListAvailableProjects %+v", aps)
	}
	other := must(e.svc.CreateOrg(e.sys, "Org B"))
	if _, _, err := api.ListAvailableProjects(ctx, other.ID).Execute(); err == nil {
		t.Fatal("another organization's projects were listed")
	}
}
