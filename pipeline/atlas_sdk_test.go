package pipeline_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/atlas-sdk/v20250312010/admin"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	"github.com/ferrymigrate/ferry/http/atlas"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/pipeline"
)

// TestAtlasSDKPipelineSnapshots drives the pipeline snapshot flow with the
// official Atlas Go SDK against an agent exporting a real FerretDB
// collection: a triggered run shows EXPORT with documents counted while it
// runs (the agent at its default heartbeat); its snapshot is listed by
// availableSnapshots; a trigger with that snapshotId exports that
// snapshot's data (not the collection as it is now); two triggers in one
// second both end DONE with datasets of their own; availableSchedules
// gives the policy items a PERIODIC_CPS pipeline takes as policyItemId.
func TestAtlasSDKPipelineSnapshots(t *testing.T) {
	e := newEnv(t, pipeline.Config{RowGroupBytes: 128 << 10})
	const n = 20000
	cl := e.startFerretDB("Mongo0", n)
	srv := httptest.NewServer(atlas.New(e.svc, httpauth.New(e.svc), slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	k, priv, err := e.svc.CreateAPIKey(e.ctx, e.proj.OrgID, "", ferry.RoleOrgOwner, "sdk")
	if err != nil {
		t.Fatal(err)
	}
	client, err := admin.NewClient(admin.UseBaseURL(srv.URL), admin.UseDigestAuth(k.PublicKey, priv))
	if err != nil {
		t.Fatal(err)
	}
	api := client.DataLakePipelinesApi
	ctx := context.Background()
	gid := e.proj.ID

	_, _, err = api.CreatePipeline(ctx, gid, &admin.DataLakeIngestionPipeline{
		Name: admin.PtrString("events-lake"),
		Source: &admin.IngestionSource{Type: admin.PtrString("ON_DEMAND_CPS"), ClusterName: admin.PtrString("Mongo0"),
			DatabaseName: admin.PtrString("shop"), CollectionName: admin.PtrString("events")},
		Sink: &admin.IngestionSink{Type: admin.PtrString("DLS")},
	}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	// An agent with the default heartbeat (5 s): live stats must not wait
	// for it.
	a := agent.New(agent.Config{Store: e.db, Registry: e.reg, Service: e.svc, Logger: logger(t), PollInterval: 100 * time.Millisecond})
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(actx) }()
	t.Cleanup(func() { cancel(); <-done })

	wait := func(runID string) (*admin.IngestionPipelineRun, bool) {
		t.Helper()
		sawLive := false
		deadline := time.Now().Add(3 * time.Minute)
		for {
			run, _, err := api.GetPipelineRun(ctx, gid, "events-lake", runID).Execute()
			if err != nil {
				t.Fatal(err)
			}
			if run.GetState() == "IN_PROGRESS" && run.GetPhase() == "EXPORT" && run.Stats != nil && run.Stats.GetNumDocs() > 0 && run.Stats.GetNumDocs() < n {
				sawLive = true
			}
			if s := run.GetState(); s == "DONE" || s == "FAILED" {
				return run, sawLive
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s not done: %+v", runID, run)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// 1. A new snapshot (the SDK always sends snapshotId; empty: a new one).
	run1, _, err := api.TriggerPipeline(ctx, gid, "events-lake", &admin.TriggerIngestionPipelineRequest{}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	run1, live := wait(run1.GetId())
	if run1.GetState() != "DONE" || run1.Stats.GetNumDocs() != n || !ferry.ValidID(run1.GetSnapshotId()) {
		t.Fatalf("first run %+v stats %+v", run1, run1.Stats)
	}
	if !live {
		t.Fatalf("the run was never seen IN_PROGRESS in EXPORT with documents counted")
	}

	// The collection changes after the snapshot.
	extra := make([]any, 0, 500)
	for i := 0; i < 500; i++ {
		extra = append(extra, bson.D{{Key: "_id", Value: int64(n + 1000 + i)}, {Key: "region", Value: "eu"}})
	}
	if _, err := cl.Database("shop").Collection("events").InsertMany(ctx, extra); err != nil {
		t.Fatal(err)
	}

	// 2. availableSnapshots lists the first run's snapshot.
	snaps, _, err := api.GetAvailablePipelineSnapshots(ctx, gid, "events-lake").Execute()
	if err != nil {
		t.Fatal(err)
	}
	if snaps.GetTotalCount() != 1 || len(snaps.GetResults()) != 1 || snaps.GetResults()[0].GetId() != run1.GetSnapshotId() ||
		snaps.GetResults()[0].GetStatus() != "completed" || snaps.GetResults()[0].GetStorageSizeBytes() != run1.Stats.GetBytesExported() {
		t.Fatalf("availableSnapshots %+v", snaps.GetResults())
	}
	if later, _, err := api.GetAvailablePipelineSnapshots(ctx, gid, "events-lake").CompletedAfter(time.Now().Add(time.Hour)).Execute(); err != nil || later.GetTotalCount() != 0 {
		t.Fatalf("completedAfter in the future: %v %+v", err, later)
	}

	// 3. A trigger with that snapshot id exports that snapshot: n documents,
	// not the n+500 the collection has now.
	run2, _, err := api.TriggerPipeline(ctx, gid, "events-lake", &admin.TriggerIngestionPipelineRequest{SnapshotId: run1.GetSnapshotId()}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if run2.GetSnapshotId() != run1.GetSnapshotId() {
		t.Fatalf("triggered run snapshotId %q, want %q", run2.GetSnapshotId(), run1.GetSnapshotId())
	}
	run2, _ = wait(run2.GetId())
	if run2.GetState() != "DONE" || run2.Stats.GetNumDocs() != n || run2.GetSnapshotId() != run1.GetSnapshotId() || run2.GetDatasetName() == run1.GetDatasetName() {
		t.Fatalf("snapshot run %+v stats %+v (first run's dataset %s)", run2, run2.Stats, run1.GetDatasetName())
	}
	m1, m2 := e.manifest(t, run1.GetDatasetName()), e.manifest(t, run2.GetDatasetName())
	if m2.Rows != n || m2.SnapshotID != m1.SnapshotID || !m2.SnapshotAt.Equal(m1.SnapshotAt) || m2.RunID != run2.GetId() || len(m2.Files) != len(m1.Files) {
		t.Fatalf("snapshot dataset manifest %+v, first %+v", m2, m1)
	}
	// An unknown snapshot id is a clear 404.
	_, _, err = api.TriggerPipeline(ctx, gid, "events-lake", &admin.TriggerIngestionPipelineRequest{SnapshotId: ferry.NewID()}).Execute()
	if !admin.IsErrorCode(err, "SNAPSHOT_NOT_FOUND") {
		t.Fatalf("trigger of an unknown snapshot: %v", err)
	}

	// 4. Two triggers in the same second: both DONE, datasets of their own.
	var ids [2]string
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := api.TriggerPipeline(ctx, gid, "events-lake", &admin.TriggerIngestionPipelineRequest{}).Execute()
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = r.GetId()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ra, _ := wait(ids[0])
	rb, _ := wait(ids[1])
	if ra.GetState() != "DONE" || rb.GetState() != "DONE" || ra.GetDatasetName() == rb.GetDatasetName() ||
		ra.Stats.GetNumDocs() != n+500 || rb.Stats.GetNumDocs() != n+500 {
		t.Fatalf("two runs: %s %s %d / %s %s %d", ra.GetState(), ra.GetDatasetName(), ra.Stats.GetNumDocs(), rb.GetState(), rb.GetDatasetName(), rb.Stats.GetNumDocs())
	}
	t.Logf("same-second runs: %s and %s", ra.GetDatasetName(), rb.GetDatasetName())

	// 5. availableSchedules, and a PERIODIC_CPS pipeline by policyItemId.
	items, _, err := api.GetAvailablePipelineSchedules(ctx, gid, "events-lake").Execute()
	if err != nil {
		t.Fatal(err)
	}
	var daily admin.DiskBackupApiPolicyItem
	for _, it := range items {
		if it.GetFrequencyType() == "daily" {
			daily = it
		}
	}
	if len(items) != 5 || !ferry.ValidID(daily.GetId()) || daily.FrequencyInterval != 1 {
		t.Fatalf("availableSchedules %+v", items)
	}
	p, _, err := api.CreatePipeline(ctx, gid, &admin.DataLakeIngestionPipeline{
		Name: admin.PtrString("events-daily"),
		Source: &admin.IngestionSource{Type: admin.PtrString("PERIODIC_CPS"), ClusterName: admin.PtrString("Mongo0"),
			DatabaseName: admin.PtrString("shop"), CollectionName: admin.PtrString("events"), PolicyItemId: daily.Id},
		Sink: &admin.IngestionSink{Type: admin.PtrString("DLS")},
	}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if p.Source.GetPolicyItemId() != daily.GetId() || p.Source.GetType() != "PERIODIC_CPS" {
		t.Fatalf("periodic pipeline %+v", p.Source)
	}
	stored, err := e.svc.GetPipeline(e.ctx, gid, "events-daily")
	if err != nil || stored.BackupFrequencyType != "DAILY" || stored.NextRunAt == nil {
		t.Fatalf("stored periodic pipeline %+v %v", stored, err)
	}
	if got, _, err := api.GetAvailablePipelineSchedules(ctx, gid, "events-daily").Execute(); err != nil || len(got) != 5 || got[1].GetId() != daily.GetId() {
		t.Fatalf("schedules of the periodic pipeline: %v %+v", err, got)
	}
	_, _, err = api.CreatePipeline(ctx, gid, &admin.DataLakeIngestionPipeline{
		Name: admin.PtrString("events-bad"),
		Source: &admin.IngestionSource{Type: admin.PtrString("PERIODIC_CPS"), ClusterName: admin.PtrString("Mongo0"),
			DatabaseName: admin.PtrString("shop"), CollectionName: admin.PtrString("events"), PolicyItemId: admin.PtrString(ferry.NewID())},
	}).Execute()
	if !admin.IsErrorCode(err, "INVALID_POLICY_ITEM") {
		t.Fatalf("unknown policy item: %v", err)
	}
}

func (e *env) manifest(t *testing.T, dataset string) *pipeline.Manifest {
	t.Helper()
	m, err := e.mongo.ReadManifest(e.ctx, e.proj.ID, "", dataset)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
