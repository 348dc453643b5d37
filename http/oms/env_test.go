package oms

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
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/sqlite"
)

// testEngine is a test-only engine: it accepts every job and never runs one
// (no agent runs in these tests; progress is driven through the store).
type testEngine struct{ kind ferry.EngineKind }

func (e testEngine) Kind() ferry.EngineKind         { return e.kind }
func (e testEngine) Check(m *ferry.Migration) error { return nil }
func (e testEngine) RunStep(ctx context.Context, m *ferry.Migration, step ferry.StepName, rt ferry.StepRuntime) error {
	<-ctx.Done()
	return ctx.Err()
}

type key struct{ pub, priv string }

// env is a real service on a SQLite store behind an httptest server.
type env struct {
	t     *testing.T
	store *sqlite.DB
	svc   *ferry.Service
	srv   *httptest.Server

	org, org2               *ferry.Organization
	projA, projB, projOther *ferry.Project
	orgOwner                key // ORG_OWNER of org
	orgRead                 key // ORG_READ_ONLY of org
	groupA                  key // GROUP_OWNER of projA
	groupReadA              key // GROUP_READ_ONLY of projA
	otherOrg                key // ORG_OWNER of org2

	mu     sync.Mutex
	bodies [][]byte // every response body, for the secret scan
}

func newEnv(t *testing.T, engines ...ferry.EngineKind) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := ferry.NewRegistry()
	for _, k := range engines {
		reg.Register(testEngine{kind: k})
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := ferry.NewService(db, reg, logger)
	e := &env{t: t, store: db, svc: svc}
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	e.org, err = svc.CreateOrg(sys, "org")
	must(err)
	e.org2, err = svc.CreateOrg(sys, "org2")
	must(err)
	e.projA, err = svc.CreateProject(sys, e.org.ID, "a")
	must(err)
	e.projB, err = svc.CreateProject(sys, e.org.ID, "b")
	must(err)
	e.projOther, err = svc.CreateProject(sys, e.org2.ID, "other")
	must(err)
	mk := func(org, proj string, role ferry.Role) key {
		t.Helper()
		k, priv, err := svc.CreateAPIKey(sys, org, proj, role, "test")
		must(err)
		return key{k.PublicKey, priv}
	}
	e.orgOwner = mk(e.org.ID, "", ferry.RoleOrgOwner)
	e.orgRead = mk(e.org.ID, "", ferry.RoleOrgReadOnly)
	e.groupA = mk(e.org.ID, e.projA.ID, ferry.RoleGroupOwner)
	e.groupReadA = mk(e.org.ID, e.projA.ID, ferry.RoleGroupReadOnly)
	e.otherOrg = mk(e.org2.ID, "", ferry.RoleOrgOwner)
	e.srv = httptest.NewServer(New(svc, httpauth.New(svc), logger))
	t.Cleanup(e.srv.Close)
	return e
}

// resp is a decoded answer.
type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request with Basic credentials (k.pub == "" sends none).
func (e *env) do(method, path string, k key, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
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
	return e.send(req)
}

func (e *env) send(req *http.Request) resp {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.bodies = append(e.bodies, append(raw, []byte(fmt.Sprint(res.Header))...))
	e.mu.Unlock()
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		e.t.Fatalf("%s %s: answer is not a JSON object: %v: %s", req.Method, req.URL.Path, err, raw)
	}
	return r
}

// assertNoSecret fails if any answer so far contains secret.
func (e *env) assertNoSecret(secret string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.bodies) == 0 {
		e.t.Fatal("no answers recorded")
	}
	for _, b := range e.bodies {
		if bytes.Contains(b, []byte(secret)) {
			e.t.Fatalf("an answer contains the secret %q: %s", secret, b)
		}
		if regexp.MustCompile(`(?i)"[a-z_]*password"\s*:`).Match(b) {
			e.t.Fatalf("an answer has a password field: %s", b)
		}
	}
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not an object: %#v", v)
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func assertKeys(t *testing.T, v any, want ...string) {
	t.Helper()
	sort.Strings(want)
	got := keysOf(t, v)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("keys = %v, want %v", got, want)
	}
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
