package atlas

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
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/sqlite"
)

// testEngine is a test-only mongodb engine: it accepts every job; its
// precheck fails only for the source user "baduser" (so validation
// failures can be seen). No agent runs in these tests: they move jobs
// through the store where an agent would.
type testEngine struct {
	lastPrecheck atomic.Pointer[ferry.Migration]
}

func (*testEngine) Kind() ferry.EngineKind         { return ferry.KindMongoDB }
func (*testEngine) Check(m *ferry.Migration) error { return nil }
func (e *testEngine) RunStep(ctx context.Context, m *ferry.Migration, step ferry.StepName, rt ferry.StepRuntime) error {
	c := *m
	e.lastPrecheck.Store(&c)
	if step == ferry.StepPrecheck && m.Source.Username == "baduser" {
		return ferry.Errorf(ferry.EINVALID, "authentication failed for user baduser on the source")
	}
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
	t    *testing.T
	srv  *httptest.Server
	svc  *ferry.Service
	db   *sqlite.DB
	eng  *testEngine
	exp  *testExporter
	sys  context.Context
	org  *ferry.Organization
	proj *ferry.Project
	// owner is an ORG_OWNER key of org.
	owner key
}

// newEnv starts the dialect over a real SQLite store with a test engine and
// exporter registered (withEngines) or none.
func newEnv(t *testing.T, withEngines bool) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := ferry.NewRegistry()
	e := &env{t: t, db: db, eng: &testEngine{}, exp: &testExporter{}}
	if withEngines {
		reg.Register(e.eng)
		reg.RegisterExporter(e.exp)
	}
	logger := slog.New(slog.DiscardHandler)
	e.svc = ferry.NewService(db, reg, logger)
	e.srv = httptest.NewServer(New(e.svc, httpauth.New(e.svc), logger))
	t.Cleanup(e.srv.Close)
	e.sys = ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	e.org = must(e.svc.CreateOrg(e.sys, "Org A"))
	e.owner = e.newKey(e.org.ID, "", ferry.RoleOrgOwner)
	e.proj = must(e.svc.CreateProject(e.sys, e.org.ID, "Project A"))
	for _, name := range []string{"Cluster0", "Cluster1"} {
		ep := &ferry.Endpoint{ProjectID: e.proj.ID, Name: name, Kind: ferry.KindMongoDB, Addrs: []string{"127.0.0.1:27017"},
			Username: "reguser", Password: "regsecret-" + name}
		if err := e.svc.CreateEndpoint(e.sys, ep); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (e *env) newKey(orgID, projectID string, role ferry.Role) key {
	e.t.Helper()
	k, priv, err := e.svc.CreateAPIKey(e.sys, orgID, projectID, role, string(role))
	if err != nil {
		e.t.Fatal(err)
	}
	return key{k.PublicKey, priv}
}

// response is an answer with its body decoded (when it is JSON).
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
	list   []any
}

// req describes a request.
type req struct {
	method, path string
	body         any // string, []byte or a value to marshal
	accept       string
	header       map[string]string
	key          *key   // Digest credentials; nil sends none
	bearer       string // Authorization: Bearer
}

// do sends a request the way a Digest client does: first without
// credentials, then, from the 401 challenge, with a Digest response.
func (e *env) do(r req) response {
	e.t.Helper()
	var body []byte
	switch b := r.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	case []byte:
		body = b
	default:
		body = must(json.Marshal(b))
	}
	send := func(authz string) *http.Response {
		hr, err := http.NewRequest(r.method, e.srv.URL+r.path, bytes.NewReader(body))
		if err != nil {
			e.t.Fatal(err)
		}
		if body != nil {
			hr.Header.Set("Content-Type", "application/json")
		}
		if r.accept != "" {
			hr.Header.Set("Accept", r.accept)
		}
		for k, v := range r.header {
			hr.Header.Set(k, v)
		}
		if authz != "" {
			hr.Header.Set("Authorization", authz)
		}
		resp, err := e.srv.Client().Do(hr)
		if err != nil {
			e.t.Fatal(err)
		}
		return resp
	}
	var resp *http.Response
	switch {
	case r.bearer != "":
		resp = send("Bearer " + r.bearer)
	case r.key != nil:
		first := send("")
		io.Copy(io.Discard, first.Body)
		first.Body.Close()
		chal := first.Header.Get("WWW-Authenticate")
		if first.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(chal, "Digest ") {
			e.t.Fatalf("%s %s: first request answered %d with challenge %q, want 401 and a Digest challenge", r.method, r.path, first.StatusCode, chal)
		}
		resp = send(digestAuthorization(chal, r.method, r.path, r.key.pub, r.key.priv))
	default:
		resp = send("")
	}
	defer resp.Body.Close()
	out := response{status: resp.StatusCode, header: resp.Header, raw: must(io.ReadAll(resp.Body))}
	if len(bytes.TrimSpace(out.raw)) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		var v any
		if err := json.Unmarshal(out.raw, &v); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %v\n%s", r.method, r.path, err, out.raw)
		}
		switch x := v.(type) {
		case map[string]any:
			out.body = x
		case []any:
			out.list = x
		}
	}
	return out
}

// get and friends send with the owner's Digest credentials.
func (e *env) get(path string) response { return e.do(req{method: "GET", path: path, key: &e.owner}) }
func (e *env) send(method, path string, body any) response {
	return e.do(req{method: method, path: path, body: body, key: &e.owner})
}

// digestAuthorization computes an RFC 7616 MD5/qop=auth answer to chal.
func digestAuthorization(chal, method, uri, user, pass string) string {
	p := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(chal, "Digest "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			p[strings.ToLower(k)] = strings.Trim(v, `"`)
		}
	}
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	nc, cnonce := "00000001", "6f2e0c1d9a"
	ha1 := h(user + ":" + p["realm"] + ":" + pass)
	ha2 := h(method + ":" + uri)
	resp := h(ha1 + ":" + p["nonce"] + ":" + nc + ":" + cnonce + ":auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="%s", response="%s"`,
		user, p["realm"], p["nonce"], uri, nc, cnonce, resp)
}

// keysOf returns m's keys, sorted.
func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// wantKeys fails unless m has exactly keys.
func wantKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	sort.Strings(keys)
	if got := keysOf(m); strings.Join(got, ",") != strings.Join(keys, ",") {
		t.Fatalf("%s: keys %v, want %v (body %v)", what, got, keys, m)
	}
}

// wantField fails unless m[k] equals want (numbers compare as float64).
func wantField(t *testing.T, what string, m map[string]any, k string, want any) {
	t.Helper()
	got, ok := m[k]
	if !ok {
		t.Fatalf("%s: no %q in %v", what, k, m)
	}
	switch w := want.(type) {
	case int:
		want = float64(w)
	case int64:
		want = float64(w)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || (got == nil) != (want == nil) {
		t.Fatalf("%s: %s = %#v, want %#v", what, k, got, want)
	}
}

// wantStatus fails unless the answer has status.
func wantStatus(t *testing.T, what string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.raw)
	}
}

// wantError checks an Atlas error answer field by field.
func wantError(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	wantStatus(t, what, r, status)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: error Content-Type %q", what, ct)
	}
	if r.body == nil {
		t.Fatalf("%s: no JSON error body: %s", what, r.raw)
	}
	allowed := map[string]bool{"detail": true, "error": true, "errorCode": true, "parameters": true, "reason": true, "badRequestDetail": true}
	for k := range r.body {
		if !allowed[k] {
			t.Fatalf("%s: unexpected key %q in error %v", what, k, r.body)
		}
	}
	wantField(t, what, r.body, "error", status)
	wantField(t, what, r.body, "errorCode", code)
	wantField(t, what, r.body, "reason", http.StatusText(status))
	if d, _ := r.body["detail"].(string); d == "" {
		t.Fatalf("%s: empty detail in %v", what, r.body)
	}
	if _, ok := r.body["parameters"].([]any); !ok {
		t.Fatalf("%s: parameters is not an array in %v", what, r.body)
	}
}

// wantBadField checks that a 400 names field in badRequestDetail.
func wantBadField(t *testing.T, what string, r response, code, field string) {
	t.Helper()
	wantError(t, what, r, http.StatusBadRequest, code)
	bd, ok := r.body["badRequestDetail"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no badRequestDetail in %v", what, r.body)
	}
	fields, _ := bd["fields"].([]any)
	if len(fields) != 1 {
		t.Fatalf("%s: badRequestDetail.fields = %v", what, bd["fields"])
	}
	f := fields[0].(map[string]any)
	wantKeys(t, what+" field violation", f, "description", "field")
	wantField(t, what, f, "field", field)
}

// obj returns m[k] as an object.
func obj(t *testing.T, m map[string]any, k string) map[string]any {
	t.Helper()
	v, ok := m[k].(map[string]any)
	if !ok {
		t.Fatalf("%q is not an object in %v", k, m)
	}
	return v
}

// arr returns m[k] as an array.
func arr(t *testing.T, m map[string]any, k string) []any {
	t.Helper()
	v, ok := m[k].([]any)
	if !ok {
		t.Fatalf("%q is not an array in %v", k, m)
	}
	return v
}

// noSecrets fails if the raw answer carries a secret.
func noSecrets(t *testing.T, what string, raw []byte, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, `"password"`, `"username"`, "regsecret") {
		if bytes.Contains(raw, []byte(s)) {
			t.Fatalf("%s: answer contains %q: %s", what, s, raw)
		}
	}
}
