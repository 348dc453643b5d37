package dcs

import (
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

// TestListShowsFailureReason: a failed task's list item carries the
// reason; the instance statuses follow the task.
func TestListShowsFailureReason(t *testing.T) {
	e := newEnv(t, ferry.KindRedis)
	a := e.token(e.groupA)
	id := e.create(a, e.projA.ID, onlineBody("incremental_migration"))
	stepOnly := e.create(a, e.projA.ID, onlineBody("full_amount_migration"))
	e.update(id, func(m *ferry.Migration) {
		m.State, m.CurrentStep, m.Error = ferry.StateFailed, ferry.StepIncremental, "source link lost: EOF"
	})
	e.update(stepOnly, func(m *ferry.Migration) {
		m.State, m.CurrentStep = ferry.StateFailed, ferry.StepFull
		m.Step(ferry.StepFull).State = ferry.StepFailed
		m.Step(ferry.StepFull).Message = "target is full (OOM)"
	})
	r := e.do("GET", "/v2/"+e.projA.ID+"/migration-tasks?limit=10", a, nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	got := map[string]map[string]any{}
	for _, it := range r.body["migration_tasks"].([]any) {
		m := it.(map[string]any)
		got[m["task_id"].(string)] = m
	}
	if it := got[id]; it["status"] != "MIGRATION_FAILED" || it["error_message"] != "source link lost: EOF" || it["source_instance_status"] != "MIGRATION_FAILED" {
		t.Fatalf("failed item: %v", it)
	}
	if it := got[stepOnly]; !strings.Contains(it["error_message"].(string), "target is full (OOM)") {
		t.Fatalf("failed step item: %v", it)
	}
}
