package atlas

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

func (e *env) pipelineBody(name string) map[string]any {
	return map[string]any{
		"name": name,
		"source": map[string]any{
			"type": "ON_DEMAND_CPS", "clusterName": "Cluster0", "databaseName": "shop", "collectionName": "orders",
		},
		"sink": map[string]any{
			"type": "DLS", "metadataProvider": "AWS", "metadataRegion": "US_EAST_1",
			"partitionFields": []any{map[string]any{"fieldName": "customer", "order": 0}},
		},
		"transformations":        []any{map[string]any{"field": "ssn", "type": "EXCLUDE"}},
		"datasetRetentionPolicy": map[string]any{"units": "DAYS", "value": 7},
	}
}

func isAtlasTime(s any) bool {
	str, ok := s.(string)
	if !ok {
		return false
	}
	_, err := time.Parse("2006-01-02T15:04:05Z", str)
	return err == nil
}

func wantPipeline(t *testing.T, what string, p map[string]any, groupID, name, state string) {
	t.Helper()
	wantKeys(t, what, p, "_id", "backupFrequencyType", "createdDate", "datasetRetentionPolicy", "groupId", "lastUpdatedDate", "name", "sink", "source", "state", "transformations")
	if !ferry.ValidID(p["_id"].(string)) || !isAtlasTime(p["createdDate"]) || !isAtlasTime(p["lastUpdatedDate"]) {
		t.Fatalf("%s: id/dates %v", what, p)
	}
	wantField(t, what, p, "name", name)
	wantField(t, what, p, "groupId", groupID)
	wantField(t, what, p, "state", state)
	wantField(t, what, p, "backupFrequencyType", "ON_DEMAND")
	src := obj(t, p, "source")
	wantKeys(t, what+" source", src, "clusterName", "collectionName", "databaseName", "groupId", "type")
	wantField(t, what, src, "type", "ON_DEMAND_CPS")
	wantField(t, what, src, "clusterName", "Cluster0")
	wantField(t, what, src, "databaseName", "shop")
	wantField(t, what, src, "collectionName", "orders")
	wantField(t, what, src, "groupId", groupID)
	sink := obj(t, p, "sink")
	wantKeys(t, what+" sink", sink, "metadataProvider", "metadataRegion", "partitionFields", "type")
	wantField(t, what, sink, "type", "DLS")
	wantField(t, what, sink, "metadataProvider", "AWS")
	pf := arr(t, sink, "partitionFields")
	if len(pf) != 1 {
		t.Fatalf("%s: partitionFields %v", what, pf)
	}
	wantKeys(t, what+" partition field", pf[0].(map[string]any), "fieldName", "order")
	wantField(t, what, pf[0].(map[string]any), "fieldName", "customer")
	tr := arr(t, p, "transformations")
	if len(tr) != 1 || tr[0].(map[string]any)["field"] != "ssn" || tr[0].(map[string]any)["type"] != "EXCLUDE" {
		t.Fatalf("%s: transformations %v", what, tr)
	}
}

func TestPipelinesAndRuns(t *testing.T) {
	e := newEnv(t, true)
	g := "/api/atlas/v2/groups/" + e.proj.ID

	r := e.send("POST", g+"/pipelines", e.pipelineBody("orders-export"))
	wantStatus(t, "create pipeline", r, 200)
	wantPipeline(t, "create pipeline", r.body, e.proj.ID, "orders-export", "ACTIVE")
	rp := obj(t, r.body, "datasetRetentionPolicy")
	wantKeys(t, "retention", rp, "lastModifiedDate", "units", "value")
	wantField(t, "retention", rp, "units", "DAYS")
	wantField(t, "retention", rp, "value", 7)
	pid := r.body["_id"].(string)

	r = e.send("POST", g+"/pipelines", e.pipelineBody("orders-export"))
	wantError(t, "duplicate pipeline", r, 409, "DUPLICATE_PIPELINE_NAME")
	bad := e.pipelineBody("x")
	bad["sink"].(map[string]any)["partitionFields"] = []any{map[string]any{"fieldName": "a", "order": 0, "extra": 1}}
	r = e.send("POST", g+"/pipelines", bad)
	wantBadField(t, "unknown nested attribute", r, "INVALID_ATTRIBUTE", "sink.partitionFields[0].extra")
	bad = e.pipelineBody("x")
	bad["source"].(map[string]any)["type"] = "HOURLY_MAGIC"
	r = e.send("POST", g+"/pipelines", bad)
	wantBadField(t, "bad source type", r, "VALIDATION_ERROR", "source.type")
	r = e.send("POST", g+"/pipelines", e.pipelineBody("bad name"))
	wantBadField(t, "bad name", r, "VALIDATION_ERROR", "name")

	r = e.get(g + "/pipelines/orders-export")
	wantStatus(t, "get pipeline", r, 200)
	wantPipeline(t, "get pipeline", r.body, e.proj.ID, "orders-export", "ACTIVE")
	r = e.get(g + "/pipelines")
	wantStatus(t, "list pipelines", r, 200)
	if len(r.list) != 1 || r.list[0].(map[string]any)["_id"] != pid {
		t.Fatalf("list pipelines %s", r.raw)
	}
	r = e.get(g + "/pipelines/nope")
	wantError(t, "unknown pipeline", r, 404, "PIPELINE_NOT_FOUND")

	// PATCH a part of the retention policy; a fetched pipeline can be sent back.
	r = e.send("PATCH", g+"/pipelines/orders-export", map[string]any{"datasetRetentionPolicy": map[string]any{"value": 30}})
	wantStatus(t, "patch", r, 200)
	wantField(t, "patch", obj(t, r.body, "datasetRetentionPolicy"), "value", 30)
	wantField(t, "patch", obj(t, r.body, "datasetRetentionPolicy"), "units", "DAYS")
	r = e.send("PATCH", g+"/pipelines/orders-export", r.body)
	wantStatus(t, "patch with a fetched body", r, 200)
	r = e.send("PATCH", g+"/pipelines/orders-export", map[string]any{"name": "renamed"})
	wantBadField(t, "rename", r, "VALIDATION_ERROR", "name")

	// Pause refuses triggers; resume allows them.
	r = e.send("POST", g+"/pipelines/orders-export/pause", nil)
	wantStatus(t, "pause", r, 200)
	wantField(t, "pause", r.body, "state", "PAUSED")
	r = e.send("POST", g+"/pipelines/orders-export/trigger", map[string]any{})
	wantError(t, "trigger paused", r, 409, "PIPELINE_PAUSED")
	r = e.send("POST", g+"/pipelines/orders-export/resume", nil)
	wantField(t, "resume", r.body, "state", "ACTIVE")

	// A snapshot id must be one of the pipeline's available snapshots.
	snap := ferry.NewID()
	r = e.send("POST", g+"/pipelines/orders-export/trigger", map[string]any{"snapshotId": snap})
	wantError(t, "trigger of an unknown snapshot", r, 404, "SNAPSHOT_NOT_FOUND")
	r = e.send("POST", g+"/pipelines/orders-export/trigger", map[string]any{"datasetRetentionPolicy": map[string]any{"units": "WEEKS", "value": 2}})
	wantStatus(t, "trigger", r, 200)
	wantKeys(t, "triggered run", r.body, "_id", "backupFrequencyType", "createdDate", "datasetRetentionPolicy", "groupId", "lastUpdatedDate", "phase", "pipelineId", "scheduledDeletionDate", "state", "stats")
	wantField(t, "triggered run", r.body, "state", "PENDING")
	wantField(t, "triggered run", r.body, "phase", "SNAPSHOT")
	wantField(t, "triggered run", r.body, "pipelineId", pid)
	runID := r.body["_id"].(string)
	r = e.send("POST", g+"/pipelines/orders-export/trigger", map[string]any{"snapshotId": "nope"})
	wantBadField(t, "bad snapshot id", r, "VALIDATION_ERROR", "snapshotId")

	// The agent finishes the run.
	created := must(e.svc.Store.GetRun(e.sys, runID)).CreatedAt
	if _, err := e.svc.Store.UpdateRun(e.sys, runID, func(r *ferry.PipelineRun) error {
		r.State, r.Phase, r.SnapshotID = ferry.RunDone, ferry.PhaseIngestion, snap
		r.DatasetName = "v1$atlas$snapshot$Cluster0$shop$orders$19700101T000000Z"
		r.Stats = ferry.RunStats{BytesExported: 4096, NumDocs: 42}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	run := must(e.svc.Store.GetRun(e.sys, runID))

	gro := e.newKey(e.org.ID, e.proj.ID, ferry.RoleGroupReadOnly)
	r = e.do(req{method: "GET", path: g + "/pipelines/orders-export/runs/" + runID, key: &gro})
	wantStatus(t, "get run (group read-only)", r, 200)
	wantKeys(t, "run", r.body, "_id", "backupFrequencyType", "createdDate", "datasetName", "datasetRetentionPolicy", "groupId", "lastUpdatedDate", "phase", "pipelineId", "scheduledDeletionDate", "snapshotId", "state", "stats")
	wantField(t, "run", r.body, "_id", runID)
	wantField(t, "run", r.body, "backupFrequencyType", "ON_DEMAND")
	wantField(t, "run", r.body, "createdDate", created.UTC().Format("2006-01-02T15:04:05Z"))
	wantField(t, "run", r.body, "lastUpdatedDate", run.UpdatedAt.UTC().Format("2006-01-02T15:04:05Z"))
	wantField(t, "run", r.body, "datasetName", "v1$atlas$snapshot$Cluster0$shop$orders$19700101T000000Z")
	wantField(t, "run", r.body, "groupId", e.proj.ID)
	wantField(t, "run", r.body, "phase", "INGESTION")
	wantField(t, "run", r.body, "pipelineId", pid)
	wantField(t, "run", r.body, "snapshotId", snap)
	wantField(t, "run", r.body, "state", "DONE")
	wantField(t, "run", r.body, "scheduledDeletionDate", run.ScheduledDeletionDate.UTC().Format("2006-01-02T15:04:05Z"))
	if d := run.ScheduledDeletionDate.Sub(created); d < 14*24*time.Hour-time.Second || d > 14*24*time.Hour+time.Second {
		t.Fatalf("scheduled deletion %v after creation, want 2 weeks", d)
	}
	rrp := obj(t, r.body, "datasetRetentionPolicy")
	wantKeys(t, "run retention", rrp, "lastModifiedDate", "units", "value")
	wantField(t, "run retention", rrp, "units", "WEEKS")
	wantField(t, "run retention", rrp, "value", 2)
	if !isAtlasTime(rrp["lastModifiedDate"]) {
		t.Fatalf("lastModifiedDate %v", rrp["lastModifiedDate"])
	}
	st := obj(t, r.body, "stats")
	wantKeys(t, "stats", st, "bytesExported", "numDocs")
	wantField(t, "stats", st, "bytesExported", 4096)
	wantField(t, "stats", st, "numDocs", 42)
	if !strings.HasSuffix(r.body["createdDate"].(string), "Z") {
		t.Fatal("createdDate must end in Z")
	}

	// A second run; the list is newest first and paginated.
	r = e.send("POST", g+"/pipelines/orders-export/trigger", map[string]any{})
	wantStatus(t, "second trigger", r, 200)
	run2 := r.body["_id"].(string)
	wantKeys(t, "run without snapshot", r.body, "_id", "backupFrequencyType", "createdDate", "datasetRetentionPolicy", "groupId", "lastUpdatedDate", "phase", "pipelineId", "scheduledDeletionDate", "state", "stats")
	wantField(t, "run with the pipeline's policy", obj(t, r.body, "datasetRetentionPolicy"), "value", 30)
	r = e.do(req{method: "GET", path: g + "/pipelines/orders-export/runs?itemsPerPage=1", key: &gro})
	wantStatus(t, "list runs", r, 200)
	wantKeys(t, "list runs", r.body, "links", "results", "totalCount")
	wantField(t, "list runs", r.body, "totalCount", 2)
	res := arr(t, r.body, "results")
	if len(res) != 1 {
		t.Fatalf("runs page %v", res)
	}
	first := res[0].(map[string]any)["_id"]
	if first != run2 && first != runID {
		t.Fatalf("unexpected run %v", first)
	}
	r = e.get(g + "/pipelines/orders-export/runs?createdBefore=2000-01-01T00:00:00Z")
	wantField(t, "runs created before 2000", r.body, "totalCount", 0)
	r = e.get(g + "/pipelines/orders-export/runs?createdBefore=yesterday")
	wantBadField(t, "bad createdBefore", r, "INVALID_QUERY_PARAMETER", "createdBefore")
	r = e.get(g + "/pipelines/orders-export/runs/" + ferry.NewID())
	wantError(t, "unknown run", r, 404, "PIPELINE_RUN_NOT_FOUND")

	// Deleting a run's dataset: 202; deleting a pending run's is refused.
	r = e.send("DELETE", g+"/pipelines/orders-export/runs/"+run2, nil)
	wantError(t, "delete pending run", r, 409, "PIPELINE_RUN_IN_PROGRESS")
	r = e.do(req{method: "DELETE", path: g + "/pipelines/orders-export/runs/" + runID, key: &gro})
	wantError(t, "read-only deletes a run", r, 403, "USER_UNAUTHORIZED")
	r = e.send("DELETE", g+"/pipelines/orders-export/runs/"+runID, nil)
	wantStatus(t, "delete run", r, 202)
	wantKeys(t, "delete run", r.body)
	if e.exp.deleted.Load() != 1 {
		t.Fatalf("exporter deleted %d datasets", e.exp.deleted.Load())
	}
	r = e.get(g + "/pipelines/orders-export/runs/" + runID)
	wantField(t, "deleted run", r.body, "state", "DATASET_DELETED")

	// Deleting the pipeline: refused while a run is pending, then 200.
	r = e.send("DELETE", g+"/pipelines/orders-export", nil)
	wantError(t, "delete pipeline with a pending run", r, 409, "PIPELINE_RUN_IN_PROGRESS")
	if _, err := e.svc.Store.UpdateRun(e.sys, run2, func(r *ferry.PipelineRun) error { r.State = ferry.RunFailed; return nil }); err != nil {
		t.Fatal(err)
	}
	r = e.send("DELETE", g+"/pipelines/orders-export", nil)
	wantStatus(t, "delete pipeline", r, 200)
	r = e.get(g + "/pipelines/orders-export")
	wantError(t, "deleted pipeline", r, 404, "PIPELINE_NOT_FOUND")
}
