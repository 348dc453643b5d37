package dcs

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/sqlite"
)

// FuzzListQuery feeds arbitrary query strings to the DCS list parameters
// (offset, limit, name): no panic; a refusal is DCS's 400 body; an
// accepted page is in range, and its parameters sent again give it back.
func FuzzListQuery(f *testing.F) {
	for _, s := range []string{"", "offset=0&limit=10", "offset=-1", "limit=0", "limit=1001", "offset=1073741825", "offset=99999999999999999999",
		"name=Task", "name=%E2%80%AE", "limit=+5", "offset=1e3", "%zz&limit=2", "name=a&name=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, _ := url.ParseQuery(rawQuery)
		offset, limit, name, err := listParams(q)
		if err != nil {
			assertDCSError(t, err)
			return
		}
		if offset < 0 || offset > 1<<30 || limit < 1 || limit > MaxLimit || name != strings.ToLower(q.Get("name")) {
			t.Fatalf("%q: offset %d limit %d name %q", rawQuery, offset, limit, name)
		}
		again := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}, "name": {name}}
		o2, l2, n2, err := listParams(again)
		if err != nil || o2 != offset || l2 != limit || n2 != name {
			t.Fatalf("%q: %d/%d/%q, again %d/%d/%q (%v)", rawQuery, offset, limit, name, o2, l2, n2, err)
		}
	})
}

// fuzzEnv is a real service on SQLite behind the DCS handler: project A
// (the caller's GROUP_OWNER key) and project B of another organization,
// each with a Redis task.
type fuzzEnv struct {
	h            http.Handler
	key          key
	projA, projB string
	jobA, jobB   string
}

const fuzzSecret = "pw-of-project-b"

func newFuzzEnv(f *testing.F) *fuzzEnv {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "ferry.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	reg := ferry.NewRegistry()
	reg.Register(testEngine{kind: ferry.KindRedis})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := ferry.NewService(db, reg, logger)
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	must := func(err error) {
		if err != nil {
			f.Fatal(err)
		}
	}
	orgA, err := svc.CreateOrg(sys, "a")
	must(err)
	orgB, err := svc.CreateOrg(sys, "b")
	must(err)
	pa, err := svc.CreateProject(sys, orgA.ID, "a")
	must(err)
	pb, err := svc.CreateProject(sys, orgB.ID, "b")
	must(err)
	job := func(proj, name, pw string) string {
		m := &ferry.Migration{ProjectID: proj, Name: name, Engine: ferry.KindRedis, Dialect: "dcs", Modes: ferry.Modes{Full: true},
			Source: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:1"}, Password: pw},
			Target: ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:2"}, Password: pw}}
		must(svc.CreateMigration(sys, m, false))
		return m.ID
	}
	e := &fuzzEnv{projA: pa.ID, projB: pb.ID}
	e.jobA = job(pa.ID, "task-a", "pw-a")
	e.jobB = job(pb.ID, "task-of-project-b", fuzzSecret)
	k, priv, err := svc.CreateAPIKey(sys, orgA.ID, pa.ID, ferry.RoleGroupOwner, "fuzz")
	must(err)
	e.key = key{k.PublicKey, priv}
	e.h = New(svc, httpauth.New(svc), logger)
	return e
}

// expand replaces the placeholders @A @B (task ids) and @PA @PB (project
// ids), so that the corpus does not depend on the ids of one run.
func (e *fuzzEnv) expand(s string) string {
	return strings.NewReplacer("@PA", e.projA, "@PB", e.projB, "@A", e.jobA, "@B", e.jobB).Replace(s)
}

// FuzzRequest sends arbitrary project ids, task ids and query strings
// through the DCS handler (routing, project id check, authentication,
// store) as project A's key: no panic and no 500; every error is DCS's
// error body; project B's task is never shown (not its name, not its
// password), whatever the path.
func FuzzRequest(f *testing.F) {
	e := newFuzzEnv(f)
	for _, s := range []struct {
		route    uint8
		pid, id  string
		rawQuery string
	}{
		{0, "@PA", "@A", ""}, {1, "@PA", "@A", ""}, {2, "@PA", "", "offset=0&limit=1000&name=TASK"}, {0, "@PA", "@B", ""}, {0, "@PB", "@B", ""},
		{1, "@PB", "@B", ""}, {2, "@PB", "", ""}, {2, "@PA", "", "offset=1073741824&name=a"}, {0, "../@PA", "@A", ""}, {0, "@PA", "..", ""},
		{0, "0123456789ABCDEF01234567", "@A", ""}, {2, "", "", ""}, {0, "@PA", "%2F", ""}, {2, "@PA", "", "limit=x"}, {0, "@PA", "\xff", ""},
	} {
		f.Add(s.route, s.pid, s.id, s.rawQuery)
	}
	f.Fuzz(func(t *testing.T, route uint8, pid, id, rawQuery string) {
		pid, id, rawQuery = e.expand(pid), e.expand(id), e.expand(rawQuery)
		var path string
		switch route % 3 {
		case 0:
			path = PrefixV2 + url.PathEscape(pid) + "/migration-task/" + url.PathEscape(id)
		case 1:
			path = PrefixV2 + url.PathEscape(pid) + "/migration-task/" + url.PathEscape(id) + "/stats"
		default:
			path = PrefixV2 + url.PathEscape(pid) + "/migration-tasks"
		}
		u, err := url.Parse(path + "?" + rawQuery)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r := (&http.Request{Method: "GET", URL: u, Host: "ferry.test", Header: http.Header{}, Body: http.NoBody, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(ctx)
		r.SetBasicAuth(e.key.pub, e.key.priv)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, r)
		body := rec.Body.String()
		switch rec.Code {
		case 200:
		case 400, 403, 404, 405:
			var eb map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb["error_code"] == "" || eb["error_msg"] == "" {
				t.Fatalf("GET %s: %d %s", u, rec.Code, body)
			}
		case 301, 307, 308:
			return // ServeMux cleaning the path
		default:
			t.Fatalf("GET %s: %d %s", u, rec.Code, body)
		}
		if pid == e.projA && id == e.jobA && route%3 == 0 && rec.Code != 200 {
			t.Fatalf("GET %s: the caller's own task: %d %s", u, rec.Code, body)
		}
		if strings.Contains(body, "task-of-project-b") || strings.Contains(body, fuzzSecret) {
			t.Fatalf("GET %s shows project B's task: %s", u, body)
		}
	})
}
