package atlas

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

// lmBody is a LiveMigrationRequest20240530 for the env's project; extra
// replaces top-level attributes (a nil value deletes one).
func (e *env) lmBody(extra map[string]any) map[string]any {
	b := map[string]any{
		"source": map[string]any{
			"clusterName": "Cluster0", "groupId": e.proj.ID, "managedAuthentication": false, "ssl": true,
			"username": "produser", "password": "prodsecret", "caCertificatePath": "/etc/ssl/source-ca.pem",
		},
		"destination":         map[string]any{"clusterName": "Cluster1", "groupId": e.proj.ID, "hostnameSchemaType": "PUBLIC"},
		"migrationHosts":      []string{"vm001.example.com"},
		"dropDestinationData": true,
	}
	for k, v := range extra {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

func wantLiveMigration(t *testing.T, what string, m map[string]any, id, status string, lag any, ready bool, hosts ...string) {
	t.Helper()
	wantKeys(t, what, m, "_id", "lagTimeSeconds", "migrationHosts", "readyForCutover", "status")
	wantField(t, what, m, "_id", id)
	wantField(t, what, m, "status", status)
	wantField(t, what, m, "lagTimeSeconds", lag)
	wantField(t, what, m, "readyForCutover", ready)
	got := arr(t, m, "migrationHosts")
	if len(got) != len(hosts) {
		t.Fatalf("%s: migrationHosts %v, want %v", what, got, hosts)
	}
	for i := range hosts {
		if got[i] != hosts[i] {
			t.Fatalf("%s: migrationHosts %v, want %v", what, got, hosts)
		}
	}
}

func TestLiveMigrationLifecycle(t *testing.T) {
	e := newEnv(t, true)
	g := "/api/atlas/v2/groups/" + e.proj.ID

	r := e.do(req{method: "POST", path: g + "/liveMigrations", key: &e.owner, body: e.lmBody(nil), accept: "application/vnd.atlas.2024-05-30+json"})
	wantStatus(t, "create", r, 201)
	if ct := r.header.Get("Content-Type"); ct != "application/vnd.atlas.2024-05-30+json" {
		t.Fatalf("create Content-Type %q", ct)
	}
	id, _ := r.body["_id"].(string)
	if !ferry.ValidID(id) {
		t.Fatalf("_id %q", id)
	}
	// migrationHosts echoes what the request named (as Atlas does).
	wantLiveMigration(t, "create", r.body, id, "WORKING", nil, false, "vm001.example.com")
	noSecrets(t, "create", r.raw, "prodsecret", "produser")

	// What the service stored: a started MongoDB job between the
	// registered endpoints, with the request's credentials on the source.
	m := must(e.svc.Store.GetMigration(e.sys, id))
	if m.Engine != ferry.KindMongoDB || m.Dialect != "atlas" || m.State != ferry.StateRunning {
		t.Fatalf("stored job: engine %s dialect %s state %s", m.Engine, m.Dialect, m.State)
	}
	if m.Modes != (ferry.Modes{Full: true, Incremental: true, Verify: true}) {
		t.Fatalf("modes %+v", m.Modes)
	}
	if m.Source.Name != "Cluster0" || m.Target.Name != "Cluster1" || len(m.Source.Addrs) != 1 {
		t.Fatalf("endpoints %+v -> %+v", m.Source.Redacted(), m.Target.Redacted())
	}
	if m.Source.Username != "produser" || m.Source.Password != "prodsecret" || !m.Source.TLS || m.Source.Options["caCertificatePath"] != "/etc/ssl/source-ca.pem" {
		t.Fatalf("source overrides not applied: %+v", m.Source.Redacted())
	}
	if m.Target.Username != "reguser" || m.Target.Password != "regsecret-Cluster1" {
		t.Fatalf("target should keep its registered credentials")
	}
	if !m.Options.DropTarget || m.Labels["sourceGroupId"] != e.proj.ID || m.Labels["hostnameSchemaType"] != "PUBLIC" || m.Labels["migrationHost"] != "vm001.example.com" {
		t.Fatalf("options %+v labels %v", m.Options, m.Labels)
	}

	// Read it back: working, no lag before the incremental step.
	r = e.get(g + "/liveMigrations/" + id)
	wantStatus(t, "get", r, 200)
	wantLiveMigration(t, "get", r.body, id, "WORKING", nil, false, "vm001.example.com")
	noSecrets(t, "get", r.raw, "prodsecret", "produser")

	// Cutover is refused before the incremental step.
	r = e.send("PUT", g+"/liveMigrations/"+id+"/cutover", nil)
	wantError(t, "early cutover", r, 409, "CUTOVER_NOT_ALLOWED")

	// An agent reaches incremental sync with 42 s of lag: Atlas still shows
	// the named host; the agent is reported in ferry's own API (hosts).
	if _, err := e.svc.Store.UpdateMigration(e.sys, id, func(m *ferry.Migration) error {
		lag := int64(42)
		m.CurrentStep, m.LagSeconds, m.ReadyForCutover = ferry.StepIncremental, &lag, true
		m.Hosts = []string{"ferry-agent-1"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r = e.get(g + "/liveMigrations/" + id)
	wantLiveMigration(t, "syncing", r.body, id, "WORKING", 42, true, "vm001.example.com")

	r = e.send("PUT", g+"/liveMigrations/"+id+"/cutover", nil)
	wantStatus(t, "cutover", r, 202)
	if len(r.raw) != 0 {
		t.Fatalf("cutover answered a body: %s", r.raw)
	}
	if got := must(e.svc.Store.GetMigration(e.sys, id)).State; got != ferry.StateCuttingOver {
		t.Fatalf("state after cutover %s", got)
	}
	r = e.get(g + "/liveMigrations/" + id)
	wantLiveMigration(t, "cutting over", r.body, id, "WORKING", nil, true, "vm001.example.com")

	// List.
	r = e.get(g + "/liveMigrations")
	wantStatus(t, "list", r, 200)
	wantKeys(t, "list", r.body, "links", "results", "totalCount")
	wantField(t, "list", r.body, "totalCount", 1)
	wantLiveMigration(t, "listed", arr(t, r.body, "results")[0].(map[string]any), id, "WORKING", nil, true, "vm001.example.com")

	// The job completes.
	if _, err := e.svc.Store.UpdateMigration(e.sys, id, func(m *ferry.Migration) error {
		return m.Transition(ferry.StateCompleted, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	r = e.get(g + "/liveMigrations/" + id)
	wantLiveMigration(t, "completed", r.body, id, "COMPLETE", nil, false, "vm001.example.com") // nothing left to cut over

	// Unknown ids and roles.
	r = e.get(g + "/liveMigrations/" + ferry.NewID())
	wantError(t, "unknown migration", r, 404, "MIGRATION_NOT_FOUND")
	gro := e.newKey(e.org.ID, e.proj.ID, ferry.RoleGroupReadOnly)
	r = e.do(req{method: "GET", path: g + "/liveMigrations/" + id, key: &gro})
	wantError(t, "group read-only reads a live migration", r, 403, "USER_UNAUTHORIZED")
	r = e.do(req{method: "GET", path: g + "/liveMigrations", key: &gro})
	wantError(t, "group read-only lists live migrations", r, 403, "USER_UNAUTHORIZED")
	member := e.newKey(e.org.ID, "", ferry.RoleOrgMember)
	r = e.do(req{method: "GET", path: g + "/liveMigrations/" + id, key: &member})
	wantStatus(t, "org member reads a live migration", r, 200)
}

func TestLiveMigrationStatusMapping(t *testing.T) {
	want := map[ferry.State]string{
		ferry.StateCreated: "NEW", ferry.StateRunning: "WORKING", ferry.StatePaused: "WORKING",
		ferry.StateCuttingOver: "WORKING", ferry.StateReleasing: "WORKING",
		ferry.StateCompleted: "COMPLETE", ferry.StateReleased: "COMPLETE",
		ferry.StateFailed: "FAILED", ferry.StateExpired: "EXPIRED",
	}
	for s, w := range want {
		if got := liveMigrationStatus(s); got != w {
			t.Errorf("%s -> %s, want %s", s, got, w)
		}
	}
	// Lag shows only while running in the incremental step.
	lag := int64(7)
	for _, c := range []struct {
		state ferry.State
		step  ferry.StepName
		show  bool
	}{
		{ferry.StateRunning, ferry.StepIncremental, true},
		{ferry.StateRunning, ferry.StepFull, false},
		{ferry.StateCuttingOver, ferry.StepIncremental, false},
		{ferry.StatePaused, ferry.StepIncremental, false},
	} {
		v := liveMigrationViewOf(&ferry.Migration{ID: "x", State: c.state, CurrentStep: c.step, LagSeconds: &lag})
		if (v.LagTimeSeconds != nil) != c.show {
			t.Errorf("%s/%s: lag shown %v", c.state, c.step, v.LagTimeSeconds != nil)
		}
	}
}

func TestLiveMigrationBadRequests(t *testing.T) {
	e := newEnv(t, true)
	p := "/api/atlas/v2/groups/" + e.proj.ID + "/liveMigrations"
	src := func(k string, v any) map[string]any {
		s := e.lmBody(nil)["source"].(map[string]any)
		if v == nil {
			delete(s, k)
		} else {
			s[k] = v
		}
		return map[string]any{"source": s}
	}
	for _, c := range []struct {
		name  string
		body  any
		code  string
		field string
	}{
		{"unknown top-level attribute", e.lmBody(map[string]any{"speed": 3}), "INVALID_ATTRIBUTE", "speed"},
		{"unknown nested attribute", e.lmBody(src("port", 27017)), "INVALID_ATTRIBUTE", "source.port"},
		{"case matters", e.lmBody(map[string]any{"Source": map[string]any{}}), "INVALID_ATTRIBUTE", "Source"},
		{"wrong type", e.lmBody(src("ssl", "yes")), "INVALID_JSON_ATTRIBUTE", "source.ssl"},
		{"wrong array type", e.lmBody(map[string]any{"migrationHosts": "vm001"}), "INVALID_JSON_ATTRIBUTE", "migrationHosts"},
		{"no source", e.lmBody(map[string]any{"source": nil}), "MISSING_ATTRIBUTE", "source"},
		{"no destination", e.lmBody(map[string]any{"destination": nil}), "MISSING_ATTRIBUTE", "destination"},
		{"no cluster", e.lmBody(src("clusterName", nil)), "MISSING_ATTRIBUTE", "source.clusterName"},
		{"bad source group", e.lmBody(src("groupId", "123")), "INVALID_GROUP_ID", "source.groupId"},
		{"other destination group", e.lmBody(map[string]any{"destination": map[string]any{"clusterName": "Cluster1", "groupId": ferry.NewID(), "hostnameSchemaType": "PUBLIC"}}), "VALIDATION_ERROR", "destination.groupId"},
		{"no hostname schema", e.lmBody(map[string]any{"destination": map[string]any{"clusterName": "Cluster1", "groupId": e.proj.ID}}), "MISSING_ATTRIBUTE", "destination.hostnameSchemaType"},
		{"unknown hostname schema", e.lmBody(map[string]any{"destination": map[string]any{"clusterName": "Cluster1", "groupId": e.proj.ID, "hostnameSchemaType": "CARRIER_PIGEON"}}), "INVALID_ENUM_VALUE", "destination.hostnameSchemaType"},
		{"two hosts", e.lmBody(map[string]any{"migrationHosts": []string{"a", "b"}}), "VALIDATION_ERROR", "migrationHosts"},
		{"managed with password", e.lmBody(src("managedAuthentication", true)), "VALIDATION_ERROR", "source.managedAuthentication"},
		{"unknown cluster", e.lmBody(src("clusterName", "Nope")), "CLUSTER_NOT_FOUND", "source.clusterName"},
	} {
		r := e.send("POST", p, c.body)
		wantBadField(t, c.name, r, c.code, c.field)
		noSecrets(t, c.name, r.raw, "prodsecret")
	}
	for _, body := range []string{"", "{", "[]", `{"source": {}} trailing`, "null", `"str"`} {
		r := e.send("POST", p, body)
		wantError(t, "malformed "+body, r, 400, "INVALID_JSON")
	}
	if n := must2(e.svc.Store.ListMigrations(e.sys, ferry.MigrationFilter{ProjectID: e.proj.ID})); n != 0 {
		t.Fatalf("%d jobs were created by bad requests", n)
	}

	// The 2023-01-01 name of dropDestinationData.
	r := e.send("POST", p, e.lmBody(map[string]any{"dropDestinationData": nil, "dropEnabled": true}))
	wantStatus(t, "dropEnabled", r, 201)
	if !must(e.svc.Store.GetMigration(e.sys, r.body["_id"].(string))).Options.DropTarget {
		t.Fatal("dropEnabled did not set DropTarget")
	}
	// Managed authentication keeps the registered credentials; sharding is kept for the engine.
	s := e.lmBody(nil)["source"].(map[string]any)
	delete(s, "username")
	delete(s, "password")
	s["managedAuthentication"] = true
	r = e.send("POST", p, e.lmBody(map[string]any{"source": s, "sharding": map[string]any{
		"createSupportingIndexes": true,
		"shardingEntries":         []any{map[string]any{"database": "db", "collection": "c", "shardCollection": map[string]any{"key": []any{map[string]any{"_id": "hashed"}}}}},
	}}))
	wantStatus(t, "managed authentication", r, 201)
	m := must(e.svc.Store.GetMigration(e.sys, r.body["_id"].(string)))
	if m.Source.Username != "reguser" || m.Source.Password != "regsecret-Cluster0" {
		t.Fatal("managed authentication should keep the registered credentials")
	}
	if !strings.Contains(m.Options.Extra["sharding"], `"createSupportingIndexes":true`) || !strings.Contains(m.Options.Extra["sharding"], `"hashed"`) {
		t.Fatalf("sharding %q", m.Options.Extra["sharding"])
	}
}

func must2[A, B any](a A, b B, err error) B {
	if err != nil {
		panic(err)
	}
	return b
}

func TestEngineNotBuilt(t *testing.T) {
	e := newEnv(t, false)
	g := "/api/atlas/v2/groups/" + e.proj.ID
	r := e.send("POST", g+"/liveMigrations", e.lmBody(nil))
	wantBadField(t, "no mongodb engine", r, "VALIDATION_ERROR", "engine")
	if d := r.body["detail"].(string); !strings.Contains(d, "not built") {
		t.Fatalf("detail %q", d)
	}
	r = e.send("POST", g+"/liveMigrations/validate", e.lmBody(nil))
	wantBadField(t, "validate without engine", r, "VALIDATION_ERROR", "engine")
	r = e.send("POST", g+"/pipelines", e.pipelineBody("p1"))
	wantBadField(t, "no exporter", r, "VALIDATION_ERROR", "source")
	if d := r.body["detail"].(string); !strings.Contains(d, "not built") {
		t.Fatalf("detail %q", d)
	}
}

func TestLiveMigrationValidation(t *testing.T) {
	e := newEnv(t, true)
	g := "/api/atlas/v2/groups/" + e.proj.ID

	wait := func(id, want string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := e.get(g + "/liveMigrations/validate/" + id)
			wantStatus(t, "get validation", r, 200)
			if r.body["status"] == want || time.Now().After(deadline) {
				wantField(t, "validation", r.body, "status", want)
				return r.body
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	r := e.send("POST", g+"/liveMigrations/validate", e.lmBody(nil))
	wantStatus(t, "validate", r, 200)
	wantKeys(t, "validate", r.body, "_id", "errorMessage", "groupId", "sourceGroupId", "status")
	wantField(t, "validate", r.body, "groupId", e.proj.ID)
	wantField(t, "validate", r.body, "sourceGroupId", e.proj.ID)
	wantField(t, "validate", r.body, "errorMessage", nil)
	id := r.body["_id"].(string)
	if st := r.body["status"]; st != "PENDING" && st != "SUCCESS" {
		t.Fatalf("status %v", st)
	}
	v := wait(id, "SUCCESS")
	wantKeys(t, "validated", v, "_id", "errorMessage", "groupId", "sourceGroupId", "status")
	wantField(t, "validated", v, "_id", id)
	wantField(t, "validated", v, "errorMessage", nil)
	if n := must2(e.svc.Store.ListMigrations(e.sys, ferry.MigrationFilter{ProjectID: e.proj.ID})); n != 0 {
		t.Fatalf("validation created %d jobs", n)
	}
	if pc := e.eng.lastPrecheck.Load(); pc == nil || pc.Source.Username != "produser" || !pc.Source.TLS {
		t.Fatalf("the precheck did not see the request's source settings")
	}

	s := e.lmBody(nil)["source"].(map[string]any)
	s["username"] = "baduser"
	r = e.send("POST", g+"/liveMigrations/validate", e.lmBody(map[string]any{"source": s}))
	wantStatus(t, "validate bad user", r, 200)
	v = wait(r.body["_id"].(string), "FAILED")
	if msg, _ := v["errorMessage"].(string); !strings.Contains(msg, "authentication failed for user baduser") {
		t.Fatalf("errorMessage %v", v["errorMessage"])
	}
	noSecrets(t, "failed validation", []byte(e.get(g+"/liveMigrations/validate/"+r.body["_id"].(string)).raw), "prodsecret")

	r = e.get(g + "/liveMigrations/validate/" + ferry.NewID())
	wantError(t, "unknown validation", r, 404, "VALIDATION_NOT_FOUND")
	r = e.send("POST", g+"/liveMigrations/validate", `{"source": 1}`)
	wantBadField(t, "bad validate body", r, "INVALID_JSON_ATTRIBUTE", "source")
	_ = http.StatusOK
}
