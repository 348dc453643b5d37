package server

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

// matrixMarker prefixes every name of tenant A's resources: no answer to
// another tenant's key may contain it.
const matrixMarker = "tenantA-secret-"

// dialectRoutes returns every route pattern of every dialect, from the
// dialects' muxes.
func dialectRoutes(t *testing.T, s *Server) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range s.matchers {
		r, ok := m.handler.(interface{ Routes() []string })
		if !ok {
			t.Fatalf("dialect %s does not list its routes", m.dialect)
		}
		out[m.dialect] = r.Routes()
	}
	return out
}

// matrixEnv is tenant A (an org, a project with resources, an owner and a
// read-only key) and tenant B (an org with an owner key).
type matrixEnv struct {
	*env
	orgA, orgB          string
	projA               *ferry.Project
	roA, ownerB, ownerA [2]string
	params              map[string]map[string]string // dialect -> path parameter -> value
	secrets             []string                     // tenant A's names and ids
	epName              string
}

func newMatrixEnv(t *testing.T) *matrixEnv {
	e := setup(t)
	ctx := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	me := &matrixEnv{env: e, orgA: e.proj.OrgID, ownerA: [2]string{e.pub, e.priv}}
	var err error
	if me.projA, err = e.svc.RenameProject(ctx, e.proj.ID, matrixMarker+"project"); err != nil {
		t.Fatal(err)
	}
	ro, roPriv, err := e.svc.CreateAPIKey(ctx, me.orgA, "", ferry.RoleOrgReadOnly, matrixMarker+"ro-key")
	if err != nil {
		t.Fatal(err)
	}
	me.roA = [2]string{ro.PublicKey, roPriv}
	orgB, err := e.svc.CreateOrg(ctx, "tenant-b")
	if err != nil {
		t.Fatal(err)
	}
	me.orgB = orgB.ID
	if _, err := e.svc.CreateProject(ctx, orgB.ID, "b-project"); err != nil {
		t.Fatal(err)
	}
	kb, privB, err := e.svc.CreateAPIKey(ctx, orgB.ID, "", ferry.RoleOrgOwner, "")
	if err != nil {
		t.Fatal(err)
	}
	me.ownerB = [2]string{kb.PublicKey, privB}

	// Tenant A's resources, one of each kind the routes name.
	ep := &ferry.Endpoint{ProjectID: me.projA.ID, Name: matrixMarker + "endpoint", Kind: ferry.KindRedis,
		Addrs: []string{"10.0.0.1:6379"}, Password: matrixMarker + "password"}
	if err := e.db.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	me.epName = ep.Name
	mig := func(kind ferry.EngineKind) string {
		m := &ferry.Migration{ProjectID: me.projA.ID, Name: matrixMarker + string(kind), Engine: kind, State: ferry.StateRunning,
			Source: ferry.Endpoint{Kind: kind, Addrs: []string{"10.0.0.2:1"}, Password: matrixMarker + "src-password"},
			Target: ferry.Endpoint{Kind: kind, Addrs: []string{"10.0.0.3:1"}},
			Modes:  ferry.Modes{Full: true, Incremental: true}}
		if err := e.db.CreateMigration(ctx, m); err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	redisID, mysqlID, mongoID := mig(ferry.KindRedis), mig(ferry.KindMySQL), mig(ferry.KindMongoDB)
	pl := &ferry.Pipeline{ProjectID: me.projA.ID, Name: matrixMarker + "pipeline", State: ferry.PipelineActive}
	if err := e.db.CreatePipeline(ctx, pl); err != nil {
		t.Fatal(err)
	}
	run := &ferry.PipelineRun{ProjectID: me.projA.ID, PipelineID: pl.ID, PipelineName: pl.Name, State: ferry.RunDone}
	if err := e.db.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	val := &ferry.Validation{ProjectID: me.projA.ID, Status: "SUCCESS"}
	if err := e.db.CreateValidation(ctx, val); err != nil {
		t.Fatal(err)
	}
	common := map[string]string{
		"orgId": me.orgA, "projectId": me.projA.ID, "groupId": me.projA.ID, "project_id": me.projA.ID,
		"keyId": ro.ID, "endpoint": ep.ID, "validationId": val.ID, "pipelineName": pl.Name,
		"runId": run.ID, "pipelineRunId": run.ID,
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	me.secrets = []string{me.projA.Name, ep.Name, matrixMarker + "redis", matrixMarker + "mysql", matrixMarker + "mongodb", pl.Name,
		matrixMarker + "ro-key", matrixMarker + "password", matrixMarker + "src-password", me.orgA, me.projA.ID, ro.ID, ro.PublicKey, ep.ID, redisID, mysqlID, mongoID, pl.ID, run.ID, val.ID}
	me.params = map[string]map[string]string{
		"native": with(map[string]string{"migrationId": redisID}),
		"atlas":  with(map[string]string{"liveMigrationId": mongoID}),
		"oms":    with(map[string]string{"id": mysqlID}),
		"dcs":    with(map[string]string{"task_id": redisID}),
	}
	return me
}

// target turns a route pattern into a request target of tenant A.
func (me *matrixEnv) target(t *testing.T, dialect, pattern string) (method, path string, ownsA bool) {
	method, path, _ = strings.Cut(pattern, " ")
	if strings.HasSuffix(path, "/groups/{groupId}/{groupName}") {
		// Atlas's GET /groups/byName/{groupName}.
		return method, strings.TrimSuffix(path, "{groupId}/{groupName}") + "byName/" + url.PathEscape(me.projA.Name), true
	}
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(path[i:], '}') + i
		name := strings.TrimSuffix(path[i+1:j], "...")
		v, ok := me.params[dialect][name]
		if !ok {
			t.Fatalf("route %s: no test value for path parameter {%s}: add one to newMatrixEnv", pattern, name)
		}
		path = path[:i] + v + path[j+1:]
		ownsA = true
	}
	if dialect == "oms" { // OMS names the tenant in the query
		path += "?projectId=" + me.projA.ID
		ownsA = true
	}
	return method, path, ownsA
}

// validBodies are well-formed bodies of the mutating routes that validate
// their body before they authorize, so that the read-only and other-tenant
// cases reach the authorization check.
func (me *matrixEnv) validBodies() map[string]string {
	p, o := me.projA.ID, me.orgA
	lm := `{"source":{"clusterName":"` + me.epName + `","groupId":"` + p + `","managedAuthentication":false,"ssl":true,"username":"u","password":"pw"},` +
		`"destination":{"clusterName":"` + me.epName + `","groupId":"` + p + `","hostnameSchemaType":"PUBLIC"},"migrationHosts":["vm001"],"dropDestinationData":false}`
	return map[string]string{
		"POST /api/atlas/v2/groups":                                   `{"name":"new-project","orgId":"` + o + `"}`,
		"POST /api/atlas/v2/groups/{groupId}/liveMigrations":          lm,
		"POST /api/atlas/v2/groups/{groupId}/liveMigrations/validate": lm,
		"POST /api/atlas/v2/groups/{groupId}/pipelines": `{"name":"new-pipeline","source":{"type":"ON_DEMAND_CPS","clusterName":"` + me.epName +
			`","databaseName":"shop","collectionName":"orders"},"sink":{"type":"DLS","metadataProvider":"AWS","metadataRegion":"US_EAST_1","partitionFields":[]}}`,
		"POST /v2/{project_id}/migration-task": `{"task_name":"t","migration_type":"online_migration","migration_method":"full_amount_migration",` +
			`"source_instance":{"addrs":"10.0.0.1:6379"},"target_instance":{"addrs":"10.0.0.2:6379"}}`,
		"POST /v2/{project_id}/migration/instance": `{"name":"t2","description":"d"}`,
		"POST /v2/{project_id}/migration/{task_id}/task": `{"migration_method":"full_amount_migration","resume_mode":"auto",` +
			`"source_instance":{"addrs":"10.0.0.1:6379"},"target_instance":{"addrs":"10.0.0.2:6379"}}`,
		"POST /v2/{project_id}/migration-task/batch-stop":                           `{"migration_tasks":["` + me.params["dcs"]["task_id"] + `"]}`,
		"POST /v2/{project_id}/migration-tasks/batch-restart":                       `{"migration_tasks":["` + me.params["dcs"]["task_id"] + `"]}`,
		"PUT /v2/{project_id}/migration-task/{task_id}":                             `{"resume_mode":"manual"}`,
		"DELETE /v2/{project_id}/migration-tasks/delete":                            `{"task_id_list":["` + me.params["dcs"]["task_id"] + `"]}`,
		"DELETE /v2/{project_id}/migration-tasks":                                   `{"task_id_list":["` + me.params["dcs"]["task_id"] + `"]}`,
		"POST /api/v1/orgs/{orgId}/api-keys":                                        `{"role":"ORG_OWNER"}`,
		"POST /api/v1/projects":                                                     `{"name":"new-project","orgId":"` + o + `"}`,
		"PATCH /api/v1/projects/{projectId}":                                        `{"name":"renamed"}`,
		"POST /api/v1/projects/{projectId}/migrations/{migrationId}/extend-cutover": `{"hours":2}`,
		"POST /api/omsp/v2/migrations": `{"name":"n","projectId":"` + p + `","source":{"type":"MYSQL","host":"10.0.0.1","port":3306,"userName":"root","password":"x","database":"shop"},` +
			`"sink":{"type":"MYSQL","host":"10.0.0.2","port":3306,"userName":"root","password":"y"},"enableFullMigration":true}`,
	}
}

// credential cases
const (
	caseNone      = "no credentials"
	caseWrong     = "wrong password"
	caseMalformed = "malformed header"
	caseReplay    = "replayed Digest from another path"
	caseReadOnly  = "read-only key on a mutating route"
	caseOtherOrg  = "another tenant's key"
	caseBadToken  = "unknown bearer token"
)

var matrixCases = []string{caseNone, caseWrong, caseMalformed, caseReplay, caseReadOnly, caseOtherOrg, caseBadToken}

func basicHeader(k [2]string) string { return "Basic " + basic(k[0], k[1]) }

// tokenRoute reports whether a route takes its key pair in the body.
func tokenRoute(pattern string) bool {
	return pattern == "POST /api/oauth/token" || pattern == "POST /api/oauth/revoke" || pattern == "POST /v3/auth/tokens"
}

// TestRoutesTimesCredentials tries every route of every dialect with every
// credential case and checks that nothing succeeds that should not, that no
// answer carries tenant A's data to anyone else, that every failure is in
// the dialect's own error body, and that nothing answers 500.
func TestRoutesTimesCredentials(t *testing.T) {
	me := newMatrixEnv(t)
	routes := dialectRoutes(t, me.srv)
	for _, d := range []string{"native", "atlas", "oms", "dcs"} {
		if len(routes[d]) == 0 {
			t.Fatalf("dialect %s lists no routes", d)
		}
	}
	replay := me.capturedDigest(t)
	bodies := me.validBodies()
	tried := 0
	statuses := map[string]int{}
	var dialects []string
	for d := range routes {
		dialects = append(dialects, d)
	}
	sort.Strings(dialects)
	for _, d := range dialects {
		for _, pattern := range routes[d] {
			method, path, ownsA := me.target(t, d, pattern)
			mutating := method != http.MethodGet
			for _, c := range matrixCases {
				if c == caseReadOnly && !mutating {
					continue
				}
				if tokenRoute(pattern) && (c == caseReadOnly || c == caseOtherOrg) {
					continue // issuing a token to one's own key is what these routes are for
				}
				tried++
				hdr, body, ct := http.Header{}, "{}", "application/json"
				if b, ok := bodies[pattern]; ok {
					body = b
				}
				if tokenRoute(pattern) {
					body, ct = me.tokenBody(pattern, c)
				}
				switch c {
				case caseWrong:
					hdr.Set("Authorization", basicHeader([2]string{me.ownerA[0], "wrong-password"}))
				case caseMalformed:
					hdr.Set("Authorization", `Digest username="`+me.ownerA[0]+`", nonce=, ,,="\`)
				case caseReplay:
					hdr.Set("Authorization", replay)
				case caseReadOnly:
					hdr.Set("Authorization", basicHeader(me.roA))
				case caseOtherOrg:
					hdr.Set("Authorization", basicHeader(me.ownerB))
				case caseBadToken:
					hdr.Set("Authorization", "Bearer ferry_0123456789abcdef0123456789abcdef0123456789abcdef")
					hdr.Set("X-Auth-Token", "ferry_0123456789abcdef0123456789abcdef0123456789abcdef")
				}
				st, raw := me.do(t, method, path, ct, body, hdr)
				statuses[c+" "+fmt.Sprint(st)]++
				if st < 300 && c == caseOtherOrg {
					t.Logf("allowed for another tenant (its own scope, checked for leaks): %s %s -> %d", d, pattern, st)
				}
				if st == 400 && (c == caseReadOnly || c == caseOtherOrg) {
					t.Errorf("%s %s [%s]: 400 before the authorization check: give the route a valid body in validBodies: %.200s", d, pattern, c, raw)
				}
				name := fmt.Sprintf("%s %s [%s]", d, pattern, c)
				sent := path + "\n" + body
				namesA := ownsA
				for _, secret := range me.secrets {
					namesA = namesA || strings.Contains(body, secret)
				}
				me.judge(t, name, d, pattern, sent, c, namesA, st, raw)
			}
		}
	}
	t.Logf("%d routes × credential cases tried; answers by case and status: %v", tried, statuses)

	// Control: tenant A's owner reads every GET route's target, so the
	// targets above name real resources (else a refusal proves nothing).
	var failed []string
	for _, d := range dialects {
		for _, pattern := range routes[d] {
			method, path, _ := me.target(t, d, pattern)
			if method != http.MethodGet {
				continue
			}
			hdr := http.Header{}
			hdr.Set("Authorization", basicHeader(me.ownerA))
			if st, raw := me.do(t, method, path, "application/json", "", hdr); st != 200 {
				failed = append(failed, fmt.Sprintf("%s %s: %d %.200s", d, pattern, st, raw))
			}
		}
	}
	if len(failed) > 0 {
		t.Errorf("the owner cannot read %d targets:\n%s", len(failed), strings.Join(failed, "\n"))
	}
}

func (me *matrixEnv) tokenBody(pattern, c string) (string, string) {
	if pattern == "POST /v3/auth/tokens" {
		switch c {
		case caseWrong:
			return iamBody(me.ownerA[0], "wrong-password", ""), "application/json"
		case caseMalformed:
			return `{"auth":{"identity":`, "application/json"
		}
		return `{"auth":{"identity":{"methods":["password"]}}}`, "application/json"
	}
	switch c {
	case caseWrong:
		return oauthForm(me.ownerA[0], "wrong-password") + "&token=x", formCT
	case caseMalformed:
		return "%zz=%", formCT
	}
	return "grant_type=client_credentials&token=x", formCT
}

func (me *matrixEnv) do(t *testing.T, method, path, ct, body string, hdr http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, me.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr
	req.Header.Set("Content-Type", ct)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

// judge checks one answer.
func (me *matrixEnv) judge(t *testing.T, name, dialect, pattern, sent, c string, ownsA bool, st int, raw []byte) {
	t.Helper()
	if st >= 500 {
		t.Errorf("%s: %d %.300s", name, st, raw)
		return
	}
	public := pattern == "GET /api/v1/openapi.json"
	if st < 300 {
		switch {
		case public:
			return
		case c == caseOtherOrg && !ownsA:
			// A list or create in the caller's own tenant: allowed, as
			// long as nothing of tenant A is in it.
		default:
			t.Errorf("%s: succeeded with %d: %.300s", name, st, raw)
			return
		}
	}
	if c == caseOtherOrg || c == caseReadOnly || st >= 400 {
		s := string(raw)
		if strings.Contains(s, matrixMarker+"password") || strings.Contains(s, matrixMarker+"src-password") {
			t.Errorf("%s: a password in the answer: %.300s", name, raw)
		}
		// Tenant A's names and ids, except what the caller sent itself in
		// the path or body (an error may echo it).
		leak := ""
		for _, secret := range me.secrets {
			if strings.Contains(s, secret) && !strings.Contains(sent, secret) {
				leak = secret
			}
		}
		if c == caseOtherOrg && leak != "" {
			t.Errorf("%s: tenant A's data in the answer to tenant B: %.300s", name, raw)
		}
	}
	if st < 400 {
		return
	}
	if err := dialectErrorBody(dialect, pattern, raw); err != nil {
		t.Errorf("%s: %d: %v: %.300s", name, st, err, raw)
	}
}

// dialectErrorBody checks that raw is the dialect's error body.
func dialectErrorBody(dialect, pattern string, raw []byte) error {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	has := func(keys ...string) error {
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				return fmt.Errorf("no %q in the %s error body", k, dialect)
			}
		}
		return nil
	}
	switch {
	case strings.HasPrefix(pattern, "POST /api/oauth/"):
		if _, ok := m["error"].(string); !ok {
			return fmt.Errorf("not an RFC 6749 error body")
		}
		return nil
	case dialect == "native":
		e, ok := m["error"].(map[string]any)
		if !ok || e["code"] == nil || e["message"] == nil {
			return fmt.Errorf("not a native error body")
		}
		return nil
	case dialect == "atlas":
		return has("error", "errorCode", "detail", "reason")
	case dialect == "oms":
		if m["success"] != false {
			return fmt.Errorf("OMS error without success=false")
		}
		return has("code", "message", "requestId")
	case dialect == "dcs":
		return has("error_code", "error_msg")
	}
	return fmt.Errorf("unknown dialect %s", dialect)
}

// capturedDigest returns a Digest header tenant A's owner sent (and the
// server accepted) for another request: what an eavesdropper captures.
func (me *matrixEnv) capturedDigest(t *testing.T) string {
	t.Helper()
	const uri = "/api/v1/agents?captured=1"
	st, raw := me.do(t, "GET", uri, "application/json", "", http.Header{})
	if st != 401 {
		t.Fatalf("challenge: %d %s", st, raw)
	}
	req, _ := http.NewRequest("GET", me.ts.URL+uri, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	chal := res.Header.Get("WWW-Authenticate")
	var nonce string
	for _, part := range strings.Split(strings.TrimPrefix(chal, "Digest "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if k == "nonce" {
			nonce = strings.Trim(v, `"`)
		}
	}
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	ha1 := h(me.ownerA[0] + ":" + ferry.DigestRealm + ":" + me.ownerA[1])
	resp := h(ha1 + ":" + nonce + ":00000001:c0ffee:auth:" + h("GET:"+uri))
	hdr := fmt.Sprintf(`Digest username=%q, realm=%q, nonce=%q, uri=%q, algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee", response=%q`,
		me.ownerA[0], ferry.DigestRealm, nonce, uri, resp)
	hh := http.Header{}
	hh.Set("Authorization", hdr)
	if st, raw := me.do(t, "GET", uri, "application/json", "", hh); st != 200 {
		t.Fatalf("the genuine Digest request: %d %s", st, raw)
	}
	return hdr
}
