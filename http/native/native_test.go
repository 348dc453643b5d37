package native

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/sqlite"
)

// testEngine is a test-only redis engine: it accepts every job and its
// precheck succeeds. No agent runs in these tests; they move jobs through
// the store where an agent would.
type testEngine struct{}

func (testEngine) Kind() ferry.EngineKind         { return ferry.KindRedis }
func (testEngine) Check(m *ferry.Migration) error { return nil }
func (testEngine) RunStep(ctx context.Context, m *ferry.Migration, step ferry.StepName, rt ferry.StepRuntime) error {
	return nil
}

// testExporter is a test-only mongodb pipeline exporter.
type testExporter struct{ deleted atomic.Int32 }

func (*testExporter) Kind() ferry.EngineKind                             { return ferry.KindMongoDB }
func (*testExporter) Check(p *ferry.Pipeline, src *ferry.Endpoint) error { return nil }
func (*testExporter) Export(ctx context.Context, p *ferry.Pipeline, src *ferry.Endpoint, run *ferry.PipelineRun, rt ferry.RunRuntime) error {
	return nil
}
func (e *testExporter) DeleteDataset(ctx context.Context, p *ferry.Pipeline, run *ferry.PipelineRun) error {
	e.deleted.Add(1)
	return nil
}

type key struct{ pub, priv string }

type env struct {
	t       *testing.T
	srv     *httptest.Server
	svc     *ferry.Service
	db      *sqlite.DB
	exp     *testExporter
	org     *ferry.Organization
	proj    *ferry.Project
	owner   key
	handler *Handler
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := ferry.NewRegistry()
	reg.Register(testEngine{})
	exp := &testExporter{}
	reg.RegisterExporter(exp)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := ferry.NewService(db, reg, logger)
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "acme")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := svc.CreateProject(sys, org.ID, "default")
	if err != nil {
		t.Fatal(err)
	}
	k, priv, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "owner")
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(svc, httpauth.New(svc), logger)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, svc: svc, db: db, exp: exp, org: org, proj: proj, owner: key{k.PublicKey, priv}, handler: h}
}

func (e *env) newKey(role ferry.Role, projectID string) key {
	e.t.Helper()
	k, priv, err := e.svc.CreateAPIKey(ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal), e.org.ID, projectID, role, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return key{k.PublicKey, priv}
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// call sends a request with Basic auth as k (no auth when k is zero). body
// is JSON-encoded unless it is a string (sent as is).
func (e *env) call(k key, method, path string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if k.pub != "" {
		req.SetBasicAuth(k.pub, k.priv)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) resp {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s %s: body is not a JSON object: %v: %s", req.Method, req.URL.Path, err, raw)
		}
	}
	return r
}

func (r resp) want(t *testing.T, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// wantError checks a native error body.
func (r resp) wantError(t *testing.T, status int, code, reason, field string) {
	t.Helper()
	r.want(t, status)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	exactKeys(t, r.body, "error")
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("error is %T", r.body["error"])
	}
	if e["code"] != code {
		t.Errorf("error.code = %v, want %s (%s)", e["code"], code, r.raw)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Errorf("error.message is empty")
	}
	if reason != "" && e["reason"] != reason {
		t.Errorf("error.reason = %v, want %s (%s)", e["reason"], reason, r.raw)
	}
	if field != "" && e["field"] != field {
		t.Errorf("error.field = %v, want %s (%s)", e["field"], field, r.raw)
	}
	for k := range e {
		if !slices.Contains([]string{"code", "message", "field", "reason", "advice"}, k) {
			t.Errorf("unexpected error key %q", k)
		}
	}
}

// exactKeys checks that m has exactly keys.
func exactKeys(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	var got []string
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	want := slices.Clone(keys)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
}

// noSecrets checks that raw holds none of the given secrets nor any key
// named like one.
func noSecrets(t *testing.T, raw []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && bytes.Contains(raw, []byte(s)) {
			t.Errorf("a secret leaked into the answer: %s", raw)
		}
	}
	for _, k := range []string{`"password"`, `"privateKey"`, `"secretHash"`, `"digestHA1"`, `"checkpoint"`, `"SecretHash"`, `"DigestHA1"`} {
		if bytes.Contains(raw, []byte(k)) {
			t.Errorf("answer has key %s: %s", k, raw)
		}
	}
}

func asObj(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is %T, not an object", v, v)
	}
	return m
}

func items(t *testing.T, r resp) []any {
	t.Helper()
	exactKeys(t, r.body, "items", "total", "offset", "limit")
	it, ok := r.body["items"].([]any)
	if !ok {
		t.Fatalf("items is %T", r.body["items"])
	}
	return it
}

// ---- tests ----

func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := setup(t)
	r := e.call(key{}, "GET", "/api/v1/openapi.json", nil).want(t, 200)
	if !json.Valid(r.raw) {
		t.Fatal("openapi.json is not valid JSON")
	}
	if r.body["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v", r.body["openapi"])
	}
	paths := asObj(t, r.body["paths"])
	if len(e.handler.routes) < 38 {
		t.Fatalf("only %d routes registered", len(e.handler.routes))
	}
	registered := map[string]bool{}
	for _, rt := range e.handler.routes {
		registered[rt.method+" "+rt.path] = true
		item, ok := paths[rt.path].(map[string]any)
		if !ok {
			t.Errorf("route %s %s is not in openapi.json", rt.method, rt.path)
			continue
		}
		op, ok := item[strings.ToLower(rt.method)].(map[string]any)
		if !ok {
			t.Errorf("route %s %s: method missing in openapi.json", rt.method, rt.path)
			continue
		}
		if len(asObj(t, op["responses"])) == 0 {
			t.Errorf("%s %s documents no response", rt.method, rt.path)
		}
		// Every path parameter is documented.
		for _, m := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(rt.path, -1) {
			if !strings.Contains(fmt.Sprint(op["parameters"]), "#/components/parameters/"+m[1]) {
				t.Errorf("%s %s: parameter %s undocumented", rt.method, rt.path, m[1])
			}
		}
	}
	for p, item := range paths {
		for m := range asObj(t, item) {
			if !registered[strings.ToUpper(m)+" "+p] {
				t.Errorf("openapi.json documents %s %s, which is not registered", strings.ToUpper(m), p)
			}
		}
	}
	// Every $ref resolves.
	comps := asObj(t, r.body["components"])
	for _, m := range regexp.MustCompile(`"#/components/(\w+)/([\w.]+)"`).FindAllStringSubmatch(string(r.raw), -1) {
		sect, ok := comps[m[1]].(map[string]any)
		if !ok || sect[m[2]] == nil {
			t.Errorf("dangling $ref #/components/%s/%s", m[1], m[2])
		}
	}
}

func TestAuthentication(t *testing.T) {
	e := setup(t)
	// No credentials: 401 with a Digest challenge.
	r := e.call(key{}, "GET", "/api/v1/projects", nil)
	r.wantError(t, 401, ferry.EUNAUTHORIZED, "", "")
	ch := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(ch, "Digest ") {
		t.Fatalf("challenge %q", ch)
	}
	// Wrong Basic pair: 401 and no challenge (a browser must not prompt).
	r = e.call(key{e.owner.pub, "wrong"}, "GET", "/api/v1/projects", nil)
	r.wantError(t, 401, ferry.EUNAUTHORIZED, "", "")
	if r.header.Get("WWW-Authenticate") != "" {
		t.Errorf("Basic failure got a challenge")
	}
	// Basic.
	e.call(e.owner, "GET", "/api/v1/projects", nil).want(t, 200)
	// Digest, answering the challenge.
	nonce := regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(ch)[1]
	uri := "/api/v1/projects"
	ha1 := md5hex(e.owner.pub + ":" + ferry.DigestRealm + ":" + e.owner.priv)
	ha2 := md5hex("GET:" + uri)
	resp := md5hex(ha1 + ":" + nonce + ":00000001:abc:auth:" + ha2)
	req, _ := http.NewRequest("GET", e.srv.URL+uri, nil)
	req.Header.Set("Authorization", fmt.Sprintf(`Digest username="%s", realm="ferry", nonce="%s", uri="%s", qop=auth, nc=00000001, cnonce="abc", response="%s"`, e.owner.pub, nonce, uri, resp))
	e.do(req).want(t, 200)
	// Bearer.
	tok, _, err := e.svc.IssueToken(context.Background(), e.owner.pub, e.owner.priv)
	if err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("GET", e.srv.URL+uri, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	e.do(req).want(t, 200)
	req, _ = http.NewRequest("GET", e.srv.URL+uri, nil)
	req.Header.Set("Authorization", "Bearer nope")
	e.do(req).wantError(t, 401, ferry.EUNAUTHORIZED, "", "")
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestRouting(t *testing.T) {
	e := setup(t)
	e.call(e.owner, "GET", "/api/v1/nope", nil).wantError(t, 404, ferry.ENOTFOUND, "NO_SUCH_ROUTE", "")
	r := e.call(e.owner, "PUT", "/api/v1/projects", nil)
	r.wantError(t, 405, ferry.EINVALID, "METHOD_NOT_ALLOWED", "")
	if got := r.header.Get("Allow"); got != "GET, POST" {
		t.Errorf("Allow %q", got)
	}
}

func TestOrgs(t *testing.T) {
	e := setup(t)
	r := e.call(e.owner, "GET", "/api/v1/orgs", nil).want(t, 200)
	it := items(t, r)
	if len(it) != 1 || r.body["total"] != 1.0 || r.body["offset"] != 0.0 || r.body["limit"] != float64(DefaultLimit) {
		t.Fatalf("orgs %s", r.raw)
	}
	o := asObj(t, it[0])
	exactKeys(t, o, "id", "name", "createdAt")
	if o["id"] != e.org.ID || o["name"] != "acme" {
		t.Errorf("org %v", o)
	}
	r = e.call(e.owner, "GET", "/api/v1/orgs/"+e.org.ID, nil).want(t, 200)
	if r.body["id"] != e.org.ID || r.body["name"] != "acme" {
		t.Errorf("org %s", r.raw)
	}
	e.call(e.owner, "GET", "/api/v1/orgs/"+ferry.NewID(), nil).wantError(t, 404, ferry.ENOTFOUND, "ORG_NOT_FOUND", "")
	e.call(e.owner, "GET", "/api/v1/orgs/xyz", nil).wantError(t, 400, ferry.EINVALID, "INVALID_ORG_ID", "orgId")
}

func TestAPIKeys(t *testing.T) {
	e := setup(t)
	base := "/api/v1/orgs/" + e.org.ID + "/api-keys"
	r := e.call(e.owner, "POST", base, map[string]any{"role": "GROUP_READ_ONLY", "projectId": e.proj.ID, "description": "ci"}).want(t, 201)
	exactKeys(t, r.body, "id", "orgId", "projectId", "publicKey", "role", "description", "createdAt", "privateKey")
	if r.body["role"] != "GROUP_READ_ONLY" || r.body["projectId"] != e.proj.ID || r.body["orgId"] != e.org.ID || r.body["description"] != "ci" {
		t.Errorf("created %s", r.raw)
	}
	if r.header.Get("Location") != base+"/"+r.body["id"].(string) {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	ro := key{r.body["publicKey"].(string), r.body["privateKey"].(string)}
	if len(ro.priv) < 32 {
		t.Errorf("private key %q too short", ro.priv)
	}
	roID := r.body["id"].(string)
	// The new key works, and sees only its project.
	r = e.call(ro, "GET", "/api/v1/projects", nil).want(t, 200)
	if it := items(t, r); len(it) != 1 || asObj(t, it[0])["id"] != e.proj.ID {
		t.Errorf("read-only key sees %s", r.raw)
	}
	// Lists never carry secrets.
	r = e.call(e.owner, "GET", base, nil).want(t, 200)
	it := items(t, r)
	if len(it) != 2 {
		t.Fatalf("keys %s", r.raw)
	}
	for _, k := range it {
		m := asObj(t, k)
		if _, ok := m["privateKey"]; ok {
			t.Errorf("list carries a private key")
		}
		if m["publicKey"] == "" || m["role"] == "" {
			t.Errorf("key %v", m)
		}
	}
	noSecrets(t, r.raw, ro.priv, e.owner.priv)
	// Only ORG_OWNER manages keys.
	e.call(ro, "GET", base, nil).wantError(t, 403, ferry.EFORBIDDEN, "INSUFFICIENT_ROLE", "")
	member := e.newKey(ferry.RoleOrgMember, "")
	e.call(member, "POST", base, map[string]any{"role": "ORG_OWNER"}).wantError(t, 403, ferry.EFORBIDDEN, "", "")
	e.call(member, "DELETE", base+"/"+roID, nil).wantError(t, 403, ferry.EFORBIDDEN, "", "")
	// Bad input.
	e.call(e.owner, "POST", base, map[string]any{}).wantError(t, 400, ferry.EINVALID, "", "role")
	e.call(e.owner, "POST", base, map[string]any{"role": "KING"}).wantError(t, 400, ferry.EINVALID, "", "role")
	e.call(e.owner, "POST", base, map[string]any{"role": "GROUP_OWNER"}).wantError(t, 400, ferry.EINVALID, "", "projectId")
	e.call(e.owner, "POST", base, map[string]any{"role": 7}).wantError(t, 400, ferry.EINVALID, "INVALID_TYPE", "role")
	e.call(e.owner, "DELETE", base+"/"+ferry.NewID(), nil).wantError(t, 404, ferry.ENOTFOUND, "API_KEY_NOT_FOUND", "")
	e.call(e.owner, "DELETE", base+"/zz", nil).wantError(t, 400, ferry.EINVALID, "", "apiUserId")
	// Delete: the key stops working.
	e.call(e.owner, "DELETE", base+"/"+roID, nil).want(t, 204)
	e.call(ro, "GET", "/api/v1/projects", nil).wantError(t, 401, ferry.EUNAUTHORIZED, "", "")
}

func TestProjects(t *testing.T) {
	e := setup(t)
	r := e.call(e.owner, "POST", "/api/v1/projects", map[string]any{"name": "alpha"}).want(t, 201)
	exactKeys(t, r.body, "id", "orgId", "name", "createdAt")
	if r.body["name"] != "alpha" || r.body["orgId"] != e.org.ID || !ferry.ValidID(r.body["id"].(string)) {
		t.Errorf("created %s", r.raw)
	}
	alpha := r.body["id"].(string)
	if r.header.Get("Location") != "/api/v1/projects/"+alpha {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	e.call(e.owner, "POST", "/api/v1/projects", map[string]any{"name": "beta"}).want(t, 201)
	e.call(e.owner, "POST", "/api/v1/projects", map[string]any{"name": "alpha"}).wantError(t, 409, ferry.ECONFLICT, "GROUP_ALREADY_EXISTS", "name")

	r = e.call(e.owner, "GET", "/api/v1/projects?offset=1&limit=1", nil).want(t, 200)
	it := items(t, r)
	if len(it) != 1 || r.body["total"] != 3.0 || r.body["offset"] != 1.0 || r.body["limit"] != 1.0 {
		t.Errorf("page %s", r.raw)
	}
	r = e.call(e.owner, "GET", "/api/v1/projects/"+alpha, nil).want(t, 200)
	if r.body["id"] != alpha || r.body["name"] != "alpha" {
		t.Errorf("get %s", r.raw)
	}
	// Bad input, each with a clear field.
	e.call(e.owner, "GET", "/api/v1/projects?limit=0", nil).wantError(t, 400, ferry.EINVALID, "INVALID_PARAMETER", "limit")
	e.call(e.owner, "GET", "/api/v1/projects?limit=501", nil).wantError(t, 400, ferry.EINVALID, "INVALID_PARAMETER", "limit")
	e.call(e.owner, "GET", "/api/v1/projects?offset=-1", nil).wantError(t, 400, ferry.EINVALID, "INVALID_PARAMETER", "offset")
	e.call(e.owner, "GET", "/api/v1/projects?orgId=x", nil).wantError(t, 400, ferry.EINVALID, "INVALID_ID", "orgId")
	e.call(e.owner, "POST", "/api/v1/projects", `{"name":`).wantError(t, 400, ferry.EINVALID, "MALFORMED_JSON", "")
	e.call(e.owner, "POST", "/api/v1/projects", `{"name":"x"} {}`).wantError(t, 400, ferry.EINVALID, "MALFORMED_JSON", "")
	e.call(e.owner, "POST", "/api/v1/projects", `[1]`).wantError(t, 400, ferry.EINVALID, "MALFORMED_JSON", "")
	e.call(e.owner, "POST", "/api/v1/projects", nil).wantError(t, 400, ferry.EINVALID, "BODY_REQUIRED", "")
	e.call(e.owner, "POST", "/api/v1/projects", map[string]any{"name": 5}).wantError(t, 400, ferry.EINVALID, "INVALID_TYPE", "name")
	e.call(e.owner, "POST", "/api/v1/projects", map[string]any{"name": "x", "colour": "red"}).wantError(t, 400, ferry.EINVALID, "UNKNOWN_FIELD", "colour")
	e.call(e.owner, "POST", "/api/v1/projects", map[string]any{"name": ""}).wantError(t, 400, ferry.EINVALID, "", "name")
	e.call(e.owner, "GET", "/api/v1/projects/nothex", nil).wantError(t, 400, ferry.EINVALID, "INVALID_GROUP_ID", "groupId")
	e.call(e.owner, "GET", "/api/v1/projects/"+ferry.NewID(), nil).wantError(t, 404, ferry.ENOTFOUND, "GROUP_NOT_FOUND", "")
	big := `{"name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	e.call(e.owner, "POST", "/api/v1/projects", big).wantError(t, 413, ferry.ETOOLARGE, "BODY_TOO_LARGE", "")
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/projects", strings.NewReader("name=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(e.owner.pub, e.owner.priv)
	e.do(req).wantError(t, 400, ferry.EINVALID, "UNSUPPORTED_MEDIA_TYPE", "")

	// Roles: a read-only key cannot create or delete.
	ro := e.newKey(ferry.RoleOrgReadOnly, "")
	e.call(ro, "POST", "/api/v1/projects", map[string]any{"name": "gamma"}).wantError(t, 403, ferry.EFORBIDDEN, "INSUFFICIENT_ROLE", "")
	e.call(ro, "DELETE", "/api/v1/projects/"+alpha, nil).wantError(t, 403, ferry.EFORBIDDEN, "INSUFFICIENT_ROLE", "")

	// Rename: the owner only, names unique in the organization.
	r = e.call(e.owner, "PATCH", "/api/v1/projects/"+alpha, map[string]any{"name": "alpha-2"}).want(t, 200)
	if r.body["id"] != alpha || r.body["name"] != "alpha-2" {
		t.Errorf("renamed %s", r.raw)
	}
	e.call(e.owner, "PATCH", "/api/v1/projects/"+alpha, map[string]any{"name": "beta"}).wantError(t, 409, ferry.ECONFLICT, "GROUP_ALREADY_EXISTS", "name")
	e.call(e.owner, "PATCH", "/api/v1/projects/"+alpha, map[string]any{"name": ""}).wantError(t, 400, ferry.EINVALID, "", "name")
	e.call(ro, "PATCH", "/api/v1/projects/"+alpha, map[string]any{"name": "x"}).wantError(t, 403, ferry.EFORBIDDEN, "INSUFFICIENT_ROLE", "")

	e.call(e.owner, "DELETE", "/api/v1/projects/"+alpha, nil).want(t, 204)
	e.call(e.owner, "GET", "/api/v1/projects/"+alpha, nil).wantError(t, 404, ferry.ENOTFOUND, "", "")
}

func TestEndpointsNeverReturnPasswords(t *testing.T) {
	e := setup(t)
	base := "/api/v1/projects/" + e.proj.ID + "/endpoints"
	const pw = "s3cr3t-Pa55w0rd"
	r := e.call(e.owner, "POST", base, map[string]any{"name": "cache", "kind": "redis", "addrs": []string{"10.0.0.1:6379"},
		"username": "app", "password": pw, "options": map[string]string{"authToken": "tok-123", "db": "3"}}).want(t, 201)
	exactKeys(t, r.body, "id", "projectId", "name", "kind", "addrs", "username", "hasPassword", "tls", "tlsSkipVerify", "cluster", "options", "createdAt")
	if r.body["hasPassword"] != true || r.body["name"] != "cache" || r.body["kind"] != "redis" || r.body["username"] != "app" || r.body["projectId"] != e.proj.ID {
		t.Errorf("created %s", r.raw)
	}
	if opts := asObj(t, r.body["options"]); opts["authToken"] != "" || opts["db"] != "3" {
		t.Errorf("options %v", opts)
	}
	noSecrets(t, r.raw, pw, "tok-123")
	id := r.body["id"].(string)
	e.call(e.owner, "POST", base, map[string]any{"name": "nopw", "kind": "redis", "addrs": []string{"10.0.0.2:6379"}}).want(t, 201)

	r = e.call(e.owner, "GET", base, nil).want(t, 200)
	it := items(t, r)
	if len(it) != 2 || r.body["total"] != 2.0 {
		t.Fatalf("list %s", r.raw)
	}
	noSecrets(t, r.raw, pw, "tok-123")
	for _, x := range it {
		m := asObj(t, x)
		want := m["name"] == "cache"
		if m["hasPassword"] != want {
			t.Errorf("%v hasPassword = %v", m["name"], m["hasPassword"])
		}
	}
	for _, ref := range []string{id, "cache"} {
		r = e.call(e.owner, "GET", base+"/"+ref, nil).want(t, 200)
		if r.body["id"] != id || r.body["hasPassword"] != true {
			t.Errorf("get %s: %s", ref, r.raw)
		}
		noSecrets(t, r.raw, pw, "tok-123")
	}
	// The password is stored (engines need it).
	stored, err := e.db.GetEndpoint(context.Background(), id)
	if err != nil || stored.Password != pw {
		t.Errorf("stored password %q, %v", stored.Password, err)
	}
	e.call(e.owner, "POST", base, map[string]any{"name": "cache", "kind": "redis", "addrs": []string{"x:1"}}).wantError(t, 409, ferry.ECONFLICT, "", "")
	e.call(e.owner, "POST", base, map[string]any{"name": "bad", "kind": "oracle", "addrs": []string{"x:1"}}).wantError(t, 400, ferry.EINVALID, "", "endpoint.kind")
	e.call(e.owner, "POST", base, map[string]any{"name": "bad", "kind": "redis"}).wantError(t, 400, ferry.EINVALID, "", "endpoint.addrs")
	e.call(e.owner, "POST", base, map[string]any{"name": "bad", "kind": "redis", "addrs": "x:1"}).wantError(t, 400, ferry.EINVALID, "INVALID_TYPE", "addrs")
	e.call(e.owner, "POST", base, map[string]any{"name": "bad", "kind": "redis", "addrs": []string{"x:1"}, "hasPassword": true}).wantError(t, 400, ferry.EINVALID, "UNKNOWN_FIELD", "hasPassword")

	// PATCH changes only the fields given; the password stays unless given.
	r = e.call(e.owner, "PATCH", base+"/cache", map[string]any{"addrs": []string{"10.0.0.9:6380"}, "tls": true}).want(t, 200)
	if r.body["hasPassword"] != true || r.body["tls"] != true || r.body["addrs"].([]any)[0] != "10.0.0.9:6380" || r.body["username"] != "app" {
		t.Errorf("patched %s", r.raw)
	}
	noSecrets(t, r.raw, pw, "tok-123")
	const pw2 = "n3w-Pa55w0rd"
	r = e.call(e.owner, "PATCH", base+"/"+id, map[string]any{"password": pw2, "name": "cache2"}).want(t, 200)
	noSecrets(t, r.raw, pw2)
	if stored, _ := e.db.GetEndpoint(context.Background(), id); stored.Password != pw2 || stored.Name != "cache2" || stored.Addrs[0] != "10.0.0.9:6380" {
		t.Errorf("stored after PATCH %+v", stored.Redacted())
	}
	e.call(e.owner, "PATCH", base+"/cache2", map[string]any{"kind": "mysql"}).wantError(t, 400, ferry.EINVALID, "", "kind")
	e.call(e.owner, "PATCH", base+"/cache2", map[string]any{"addrs": []string{}}).wantError(t, 400, ferry.EINVALID, "", "endpoint.addrs")
	e.call(e.owner, "PATCH", base+"/cache2", map[string]any{"name": "nopw"}).wantError(t, 409, ferry.ECONFLICT, "", "name")
	e.call(e.owner, "PATCH", base+"/cache2", map[string]any{"colour": "red"}).wantError(t, 400, ferry.EINVALID, "UNKNOWN_FIELD", "colour")
	e.call(e.owner, "PATCH", base+"/nothere", map[string]any{"tls": true}).wantError(t, 404, ferry.ENOTFOUND, "CLUSTER_NOT_FOUND", "")
	e.call(e.owner, "DELETE", base+"/cache2", nil).want(t, 204)
	e.call(e.owner, "GET", base+"/cache2", nil).wantError(t, 404, ferry.ENOTFOUND, "CLUSTER_NOT_FOUND", "")
}

func migrationBody(engine string, start bool) map[string]any {
	return map[string]any{
		"name":   "orders",
		"engine": engine,
		"source": map[string]any{"kind": engine, "addrs": []string{"10.0.0.1:6379"}, "password": "src-pw-1"},
		"target": map[string]any{"kind": engine, "addrs": []string{"10.0.0.2:6379"}, "password": "dst-pw-2"},
		"modes":  map[string]any{"full": true, "incremental": true, "verify": true},
		"options": map[string]any{"bandwidthLimitMb": 50, "cutoverLagSeconds": 3,
			"extra": map[string]string{"mode": "psync", "backupSecretKey": "AKIA-SECRET"}},
		"start": start,
	}
}

func TestMigrationsLifecycle(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	base := "/api/v1/projects/" + e.proj.ID + "/migrations"

	// An engine that is not built: a clear error.
	e.call(e.owner, "POST", base, migrationBody("mysql", true)).wantError(t, 400, ferry.EINVALID, "ENGINE_NOT_AVAILABLE", "engine")
	e.call(e.owner, "POST", base, migrationBody("oracle", true)).wantError(t, 400, ferry.EINVALID, "", "engine")
	e.call(e.owner, "POST", base, map[string]any{"source": map[string]any{"kind": "redis"}}).wantError(t, 400, ferry.EINVALID, "", "engine")
	e.call(e.owner, "POST", base, map[string]any{"start": "yes"}).wantError(t, 400, ferry.EINVALID, "INVALID_TYPE", "start")
	e.call(e.owner, "POST", base, map[string]any{"modes": map[string]any{"full": 1}}).wantError(t, 400, ferry.EINVALID, "INVALID_TYPE", "modes.full")

	r := e.call(e.owner, "POST", base, migrationBody("redis", false)).want(t, 201)
	exactKeys(t, r.body, "id", "projectId", "name", "engine", "source", "target", "modes", "options", "importance", "dialect",
		"state", "currentStep", "progress", "steps", "readyForCutover", "readiness", "hosts", "attempts", "createdAt", "updatedAt", "version")
	noSecrets(t, r.raw, "src-pw-1", "dst-pw-2", "AKIA-SECRET")
	id := r.body["id"].(string)
	if r.body["state"] != "created" || r.body["engine"] != "redis" || r.body["dialect"] != "native" || r.body["currentStep"] != "precheck" ||
		r.body["readyForCutover"] != false || r.body["importance"] != "MEDIUM" || r.header.Get("Location") != base+"/"+id {
		t.Errorf("created %s", r.raw)
	}
	if src := asObj(t, r.body["source"]); src["hasPassword"] != true || src["kind"] != "redis" {
		t.Errorf("source %v", src)
	}
	if x := asObj(t, asObj(t, r.body["options"])["extra"]); x["mode"] != "psync" || x["backupSecretKey"] != "" {
		t.Errorf("extra %v", x)
	}
	var names []string
	for _, s := range r.body["steps"].([]any) {
		st := asObj(t, s)
		exactKeys(t, st, "name", "state", "progress", "counters", "hasCheckpoint")
		names = append(names, st["name"].(string))
		if st["state"] != "pending" || st["hasCheckpoint"] != false {
			t.Errorf("step %v", st)
		}
	}
	if strings.Join(names, ",") != "precheck,full,incremental,cutover,verify" {
		t.Errorf("steps %v", names)
	}
	// Default modes.
	body := migrationBody("redis", true)
	delete(body, "modes")
	body["name"] = "second"
	r = e.call(e.owner, "POST", base, body).want(t, 201)
	second := r.body["id"].(string)
	if m := asObj(t, r.body["modes"]); m["full"] != true || m["incremental"] != true || m["verify"] != false || r.body["state"] != "running" {
		t.Errorf("defaults %s", r.raw)
	}

	// List and filters.
	r = e.call(e.owner, "GET", base, nil).want(t, 200)
	if it := items(t, r); len(it) != 2 || r.body["total"] != 2.0 {
		t.Errorf("list %s", r.raw)
	}
	noSecrets(t, r.raw, "src-pw-1", "dst-pw-2", "AKIA-SECRET")
	r = e.call(e.owner, "GET", base+"?state=created", nil).want(t, 200)
	if it := items(t, r); len(it) != 1 || asObj(t, it[0])["id"] != id {
		t.Errorf("state filter %s", r.raw)
	}
	r = e.call(e.owner, "GET", base+"?state=created,running&engine=redis&limit=1", nil).want(t, 200)
	if it := items(t, r); len(it) != 1 || r.body["total"] != 2.0 {
		t.Errorf("state+engine filter %s", r.raw)
	}
	r = e.call(e.owner, "GET", base+"?engine=mongodb", nil).want(t, 200)
	if it := items(t, r); len(it) != 0 || r.body["total"] != 0.0 {
		t.Errorf("engine filter %s", r.raw)
	}
	e.call(e.owner, "GET", base+"?state=bogus", nil).wantError(t, 400, ferry.EINVALID, "INVALID_PARAMETER", "state")
	e.call(e.owner, "GET", base+"?engine=oracle", nil).wantError(t, 400, ferry.EINVALID, "INVALID_PARAMETER", "engine")

	// Actions.
	e.call(e.owner, "GET", base+"/nothex", nil).wantError(t, 400, ferry.EINVALID, "INVALID_ID", "migrationId")
	e.call(e.owner, "GET", base+"/"+ferry.NewID(), nil).wantError(t, 404, ferry.ENOTFOUND, "MIGRATION_NOT_FOUND", "")
	e.call(e.owner, "POST", base+"/"+id+"/resume", nil).wantError(t, 409, ferry.ECONFLICT, "ILLEGAL_STATE_TRANSITION", "")
	r = e.call(e.owner, "POST", base+"/"+id+"/start", nil).want(t, 200)
	if r.body["state"] != "running" || r.body["startedAt"] == nil {
		t.Errorf("start %s", r.raw)
	}
	e.call(e.owner, "POST", base+"/"+id+"/cutover", nil).wantError(t, 409, ferry.ECONFLICT, "CUTOVER_NOT_ALLOWED", "")
	e.call(e.owner, "POST", base+"/"+id+"/extend-cutover", map[string]any{"hours": 2}).wantError(t, 409, ferry.ECONFLICT, "", "")

	// Where an agent would: the job reaches incremental sync with a small lag.
	applied := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	_, err := e.db.UpdateMigration(ctx, id, func(m *ferry.Migration) error {
		for i := range m.Steps {
			switch m.Steps[i].Name {
			case ferry.StepPrecheck, ferry.StepFull:
				m.Steps[i].State, m.Steps[i].Progress = ferry.StepDone, 100
				m.Steps[i].Counters = ferry.Counters{Done: 1000, Total: 1000, Bytes: 4096, Unit: "keys"}
			case ferry.StepIncremental:
				m.Steps[i].State = ferry.StepRunning
				m.Steps[i].Checkpoint = json.RawMessage(`{"offset":12345,"replid":"secret-ish"}`)
				m.Steps[i].CheckpointTime = &applied
				m.Steps[i].Counters = ferry.Counters{Ops: 77, Unit: "keys"}
			}
		}
		m.CurrentStep = ferry.StepIncremental
		lag := int64(2)
		m.LagSeconds = &lag
		m.Hosts = []string{"agent-1"}
		m.UpdateReadiness(time.Now().UTC())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r = e.call(e.owner, "GET", base+"/"+id, nil).want(t, 200)
	if r.body["lagSeconds"] != 2.0 || r.body["readyForCutover"] != true || r.body["currentStep"] != "incremental" || r.body["progress"] != 100.0 {
		t.Errorf("sync %s", r.raw)
	}
	if h := r.body["hosts"].([]any); len(h) != 1 || h[0] != "agent-1" {
		t.Errorf("hosts %v", h)
	}
	deadline, err := time.Parse(time.RFC3339Nano, r.body["cutoverDeadline"].(string))
	if err != nil || time.Until(deadline) < 119*time.Hour {
		t.Errorf("cutoverDeadline %v %v", r.body["cutoverDeadline"], err)
	}
	noSecrets(t, r.raw, "secret-ish", "12345")
	for _, s := range r.body["steps"].([]any) {
		st := asObj(t, s)
		switch st["name"] {
		case "full":
			c := asObj(t, st["counters"])
			if c["done"] != 1000.0 || c["total"] != 1000.0 || c["bytes"] != 4096.0 || c["unit"] != "keys" || st["progress"] != 100.0 || st["state"] != "done" {
				t.Errorf("full %v", st)
			}
		case "incremental":
			if st["hasCheckpoint"] != true || st["checkpointTime"] != "2026-11-22T10:00:00Z" || asObj(t, st["counters"])["ops"] != 77.0 {
				t.Errorf("incremental %v", st)
			}
		}
	}
	r = e.call(e.owner, "POST", base+"/"+id+"/extend-cutover", map[string]any{"hours": 1}).want(t, 200)
	d2, _ := time.Parse(time.RFC3339Nano, r.body["cutoverDeadline"].(string))
	if d2.Sub(deadline) != time.Hour {
		t.Errorf("extended by %v", d2.Sub(deadline))
	}
	e.call(e.owner, "POST", base+"/"+id+"/extend-cutover", map[string]any{"hours": 0}).wantError(t, 400, ferry.EINVALID, "", "hours")
	e.call(e.owner, "POST", base+"/"+id+"/extend-cutover", nil).wantError(t, 400, ferry.EINVALID, "BODY_REQUIRED", "")

	r = e.call(e.owner, "POST", base+"/"+id+"/pause", nil).want(t, 200)
	if r.body["state"] != "paused" {
		t.Errorf("pause %s", r.raw)
	}
	r = e.call(e.owner, "POST", base+"/"+id+"/resume", nil).want(t, 200)
	if r.body["state"] != "running" {
		t.Errorf("resume %s", r.raw)
	}
	r = e.call(e.owner, "POST", base+"/"+id+"/cutover", nil).want(t, 200)
	if r.body["state"] != "cutting_over" {
		t.Errorf("cutover %s", r.raw)
	}
	e.call(e.owner, "POST", base+"/"+id+"/release", nil).wantError(t, 409, ferry.ECONFLICT, "ILLEGAL_STATE_TRANSITION", "")
	e.call(e.owner, "DELETE", base+"/"+id, nil).wantError(t, 409, ferry.ECONFLICT, "MIGRATION_RUNNING", "")

	// A read-only key reads but cannot act.
	ro := e.newKey(ferry.RoleGroupReadOnly, e.proj.ID)
	e.call(ro, "GET", base+"/"+second, nil).want(t, 200)
	e.call(ro, "POST", base+"/"+second+"/pause", nil).wantError(t, 403, ferry.EFORBIDDEN, "INSUFFICIENT_ROLE", "")
	e.call(ro, "POST", base, migrationBody("redis", true)).wantError(t, 403, ferry.EFORBIDDEN, "", "")

	// Release (no agent holds it) then delete.
	r = e.call(e.owner, "POST", base+"/"+second+"/release", nil).want(t, 200)
	if r.body["state"] != "released" || r.body["releasedAt"] == nil {
		t.Errorf("release %s", r.raw)
	}
	e.call(e.owner, "DELETE", base+"/"+second, nil).want(t, 204)
	e.call(e.owner, "GET", base+"/"+second, nil).wantError(t, 404, ferry.ENOTFOUND, "MIGRATION_NOT_FOUND", "")
	r = e.call(e.owner, "GET", base, nil).want(t, 200)
	if it := items(t, r); len(it) != 1 {
		t.Errorf("after delete %s", r.raw)
	}

	// A job using a registered endpoint by name.
	e.call(e.owner, "POST", "/api/v1/projects/"+e.proj.ID+"/endpoints", map[string]any{"name": "src", "kind": "redis", "addrs": []string{"10.1.1.1:6379"}, "password": "reg-pw"}).want(t, 201)
	r = e.call(e.owner, "POST", base, map[string]any{"source": map[string]any{"name": "src"}, "target": map[string]any{"kind": "redis", "addrs": []string{"10.1.1.2:6379"}}}).want(t, 201)
	if src := asObj(t, r.body["source"]); src["name"] != "src" || src["hasPassword"] != true || r.body["engine"] != "redis" {
		t.Errorf("by name %s", r.raw)
	}
	noSecrets(t, r.raw, "reg-pw")
	e.call(e.owner, "POST", base, map[string]any{"source": map[string]any{"name": "ghost"}, "target": map[string]any{"kind": "redis", "addrs": []string{"x:1"}}}).
		wantError(t, 400, ferry.EINVALID, "CLUSTER_NOT_FOUND", "source.clusterName")
}

func TestValidations(t *testing.T) {
	e := setup(t)
	base := "/api/v1/projects/" + e.proj.ID + "/validations"
	body := migrationBody("redis", false)
	delete(body, "start")
	r := e.call(e.owner, "POST", base, body).want(t, 201)
	exactKeys(t, r.body, "id", "projectId", "status", "createdAt")
	if r.body["status"] != "PENDING" {
		t.Errorf("created %s", r.raw)
	}
	id := r.body["id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = e.call(e.owner, "GET", base+"/"+id, nil).want(t, 200)
		if r.body["status"] != "PENDING" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.body["status"] != "SUCCESS" || r.body["id"] != id {
		t.Errorf("validation %s", r.raw)
	}
	e.call(e.owner, "POST", base, migrationBody("mysql", false)).wantError(t, 400, ferry.EINVALID, "UNKNOWN_FIELD", "start")
	b := migrationBody("mysql", false)
	delete(b, "start")
	e.call(e.owner, "POST", base, b).wantError(t, 400, ferry.EINVALID, "ENGINE_NOT_AVAILABLE", "engine")
	e.call(e.owner, "GET", base+"/"+ferry.NewID(), nil).wantError(t, 404, ferry.ENOTFOUND, "VALIDATION_NOT_FOUND", "")
	e.call(e.owner, "GET", base+"/x", nil).wantError(t, 400, ferry.EINVALID, "INVALID_ID", "validationId")
}

func TestPipelinesAndRuns(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	pbase := "/api/v1/projects/" + e.proj.ID
	e.call(e.owner, "POST", pbase+"/endpoints", map[string]any{"name": "docs", "kind": "mongodb", "addrs": []string{"10.0.0.9:27017"}}).want(t, 201)
	base := pbase + "/pipelines"
	r := e.call(e.owner, "POST", base, map[string]any{
		"name":                   "nightly",
		"source":                 map[string]any{"type": "ON_DEMAND_CPS", "clusterName": "docs", "databaseName": "shop", "collectionName": "orders"},
		"sink":                   map[string]any{"type": "DLS", "partitionFields": []map[string]any{{"fieldName": "year", "order": 0}}},
		"datasetRetentionPolicy": map[string]any{"units": "DAYS", "value": 7},
	}).want(t, 201)
	if r.body["name"] != "nightly" || r.body["state"] != "ACTIVE" || r.body["backupFrequencyType"] != "ON_DEMAND" ||
		asObj(t, r.body["source"])["collectionName"] != "orders" || asObj(t, r.body["datasetRetentionPolicy"])["value"] != 7.0 {
		t.Errorf("created %s", r.raw)
	}
	e.call(e.owner, "POST", base, map[string]any{"name": "bad name", "source": map[string]any{"type": "ON_DEMAND_CPS"}}).wantError(t, 400, ferry.EINVALID, "", "name")
	e.call(e.owner, "POST", base, map[string]any{"name": "p2", "source": map[string]any{"type": "ON_DEMAND_CPS", "clusterName": "ghost", "databaseName": "a", "collectionName": "b"}}).
		wantError(t, 400, ferry.EINVALID, "CLUSTER_NOT_FOUND", "source.clusterName")
	e.call(e.owner, "POST", base, map[string]any{"name": "nightly", "source": map[string]any{"type": "ON_DEMAND_CPS", "clusterName": "docs", "databaseName": "a", "collectionName": "b"}}).
		wantError(t, 409, ferry.ECONFLICT, "DUPLICATE_PIPELINE_NAME", "name")

	r = e.call(e.owner, "GET", base, nil).want(t, 200)
	if it := items(t, r); len(it) != 1 || asObj(t, it[0])["name"] != "nightly" {
		t.Errorf("list %s", r.raw)
	}
	r = e.call(e.owner, "GET", base+"/nightly", nil).want(t, 200)
	if r.body["name"] != "nightly" {
		t.Errorf("get %s", r.raw)
	}
	e.call(e.owner, "GET", base+"/ghost", nil).wantError(t, 404, ferry.ENOTFOUND, "PIPELINE_NOT_FOUND", "")
	r = e.call(e.owner, "PATCH", base+"/nightly", map[string]any{"datasetRetentionPolicy": map[string]any{"units": "WEEKS", "value": 2}}).want(t, 200)
	if rp := asObj(t, r.body["datasetRetentionPolicy"]); rp["units"] != "WEEKS" || rp["value"] != 2.0 || asObj(t, r.body["source"])["collectionName"] != "orders" {
		t.Errorf("patch %s", r.raw)
	}
	e.call(e.owner, "PATCH", base+"/nightly", map[string]any{"name": "renamed"}).wantError(t, 400, ferry.EINVALID, "", "name")
	e.call(e.owner, "PATCH", base+"/nightly", map[string]any{"state": "PAUSED"}).wantError(t, 400, ferry.EINVALID, "UNKNOWN_FIELD", "state")

	r = e.call(e.owner, "POST", base+"/nightly/pause", nil).want(t, 200)
	if r.body["state"] != "PAUSED" {
		t.Errorf("pause %s", r.raw)
	}
	e.call(e.owner, "POST", base+"/nightly/trigger", nil).wantError(t, 409, ferry.ECONFLICT, "PIPELINE_PAUSED", "")
	r = e.call(e.owner, "POST", base+"/nightly/resume", nil).want(t, 200)
	if r.body["state"] != "ACTIVE" {
		t.Errorf("resume %s", r.raw)
	}
	r = e.call(e.owner, "POST", base+"/nightly/trigger", nil).want(t, 201)
	if r.body["state"] != "PENDING" || r.body["phase"] != "SNAPSHOT" || r.body["pipelineName"] != "nightly" || r.body["scheduledDeletionDate"] == nil {
		t.Errorf("trigger %s", r.raw)
	}
	runID := r.body["id"].(string)
	// A snapshot id must name one of the pipeline's available snapshots.
	e.call(e.owner, "POST", base+"/nightly/trigger", map[string]any{"snapshotId": ferry.NewID()}).wantError(t, 404, ferry.ENOTFOUND, "SNAPSHOT_NOT_FOUND", "snapshotId")
	e.call(e.owner, "POST", base+"/nightly/trigger", map[string]any{}).want(t, 201)
	e.call(e.owner, "POST", base+"/nightly/trigger", map[string]any{"snapshotId": "x"}).wantError(t, 400, ferry.EINVALID, "", "snapshotId")

	r = e.call(e.owner, "GET", base+"/nightly/runs?limit=1", nil).want(t, 200)
	if it := items(t, r); len(it) != 1 || r.body["total"] != 2.0 {
		t.Errorf("runs %s", r.raw)
	}
	r = e.call(e.owner, "GET", base+"/nightly/runs/"+runID, nil).want(t, 200)
	if r.body["id"] != runID || r.body["state"] != "PENDING" {
		t.Errorf("run %s", r.raw)
	}
	e.call(e.owner, "GET", base+"/nightly/runs/"+ferry.NewID(), nil).wantError(t, 404, ferry.ENOTFOUND, "PIPELINE_RUN_NOT_FOUND", "")
	e.call(e.owner, "DELETE", base+"/nightly/runs/"+runID, nil).wantError(t, 409, ferry.ECONFLICT, "PIPELINE_RUN_IN_PROGRESS", "")
	e.call(e.owner, "DELETE", base+"/nightly", nil).wantError(t, 409, ferry.ECONFLICT, "PIPELINE_RUN_IN_PROGRESS", "")

	// Where an agent would: both runs finish; their checkpoints stay internal.
	runs, _, err := e.db.ListRuns(ctx, ferry.RunFilter{ProjectID: e.proj.ID})
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %v %v", runs, err)
	}
	for _, run := range runs {
		if _, err := e.db.UpdateRun(ctx, run.ID, func(r *ferry.PipelineRun) error {
			r.State, r.Phase, r.DatasetName = ferry.RunDone, ferry.PhaseIngestion, "shop.orders."+r.ID
			r.Stats = ferry.RunStats{BytesExported: 2048, NumDocs: 10}
			r.Checkpoint = []byte("internal-checkpoint")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	r = e.call(e.owner, "GET", base+"/nightly/runs/"+runID, nil).want(t, 200)
	if st := asObj(t, r.body["stats"]); st["numDocs"] != 10.0 || st["bytesExported"] != 2048.0 || r.body["state"] != "DONE" {
		t.Errorf("done run %s", r.raw)
	}
	noSecrets(t, r.raw, "internal-checkpoint")
	r = e.call(e.owner, "DELETE", base+"/nightly/runs/"+runID, nil).want(t, 200)
	if r.body["state"] != "DATASET_DELETED" || e.exp.deleted.Load() != 1 {
		t.Errorf("delete dataset %s (exporter calls %d)", r.raw, e.exp.deleted.Load())
	}
	e.call(e.owner, "DELETE", base+"/nightly", nil).want(t, 204)
	e.call(e.owner, "GET", base+"/nightly", nil).wantError(t, 404, ferry.ENOTFOUND, "PIPELINE_NOT_FOUND", "")
}

func TestAgents(t *testing.T) {
	e := setup(t)
	r := e.call(e.owner, "GET", "/api/v1/agents", nil).want(t, 200)
	if it := items(t, r); len(it) != 0 {
		t.Errorf("agents %s", r.raw)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := e.db.UpsertAgent(context.Background(), &ferry.AgentInfo{ID: "agent-1", Hostname: "host-a", Version: "test", StartedAt: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	r = e.call(e.owner, "GET", "/api/v1/agents", nil).want(t, 200)
	it := items(t, r)
	if len(it) != 1 {
		t.Fatalf("agents %s", r.raw)
	}
	a := asObj(t, it[0])
	exactKeys(t, a, "id", "hostname", "version", "startedAt", "lastSeen")
	if a["id"] != "agent-1" || a["hostname"] != "host-a" || a["version"] != "test" {
		t.Errorf("agent %v", a)
	}
	e.call(key{}, "GET", "/api/v1/agents", nil).wantError(t, 401, ferry.EUNAUTHORIZED, "", "")
}

func TestTenantIsolation(t *testing.T) {
	e := setup(t)
	sys := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	other, err := e.svc.CreateOrg(sys, "other")
	if err != nil {
		t.Fatal(err)
	}
	otherProj, err := e.svc.CreateProject(sys, other.ID, "theirs")
	if err != nil {
		t.Fatal(err)
	}
	e.call(e.owner, "GET", "/api/v1/projects/"+otherProj.ID, nil).wantError(t, 404, ferry.ENOTFOUND, "GROUP_NOT_FOUND", "")
	e.call(e.owner, "GET", "/api/v1/projects/"+otherProj.ID+"/migrations", nil).wantError(t, 404, ferry.ENOTFOUND, "GROUP_NOT_FOUND", "")
	e.call(e.owner, "GET", "/api/v1/orgs/"+other.ID+"/api-keys", nil).wantError(t, 404, ferry.ENOTFOUND, "ORG_NOT_FOUND", "")
	e.call(e.owner, "GET", "/api/v1/projects?orgId="+other.ID, nil).wantError(t, 404, ferry.ENOTFOUND, "ORG_NOT_FOUND", "")
	// Creating a key in another organization does not reveal it exists.
	e.call(e.owner, "POST", "/api/v1/orgs/"+other.ID+"/api-keys", map[string]any{"role": "ORG_OWNER"}).wantError(t, 404, ferry.ENOTFOUND, "ORG_NOT_FOUND", "")
	e.call(e.owner, "POST", "/api/v1/orgs/"+ferry.NewID()+"/api-keys", map[string]any{"role": "ORG_OWNER"}).wantError(t, 404, ferry.ENOTFOUND, "ORG_NOT_FOUND", "")
	r := e.call(e.owner, "GET", "/api/v1/projects", nil).want(t, 200)
	if it := items(t, r); len(it) != 1 || asObj(t, it[0])["id"] != e.proj.ID {
		t.Errorf("projects %s", r.raw)
	}
}
