package oms

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/sqlite"
)

// FuzzListQuery feeds arbitrary query strings (and body project ids) to the
// OMS list parameters and the tenant resolution: no panic; a refusal is an
// EINVALID error; an accepted page is in range and its parameters, sent
// again, give the same page; the tenant is a valid project id, the one the
// request named or else the caller key's own project.
func FuzzListQuery(f *testing.F) {
	const own = "0123456789abcdef01234567"
	for _, s := range []string{"", "pageNumber=2&pageSize=50", "pageNumber=0", "pageSize=101", "pageNumber=1073741825", "pageNumber=99999999999999999999",
		"status=RUNNING,FAILED&status=%20INIT%20", "status=running", "status=", "status=,", "projectId=0123456789abcdef01234567",
		"groupId=0123456789abcdef01234567&projectId=fedcba9876543210fedcba98", "projectId=../x", "projectId=0123456789ABCDEF01234567", "%zz&pageSize=+7"} {
		f.Add(s, "", true)
		f.Add(s, "fedcba9876543210fedcba98", false)
	}
	f.Fuzz(func(t *testing.T, rawQuery, bodyProject string, groupKey bool) {
		q, _ := url.ParseQuery(rawQuery)
		number, size, states, err := listParams(q)
		if err != nil {
			if fe := ferry.AsError(err); fe == nil || fe.Code != ferry.EINVALID || fe.Field == "" {
				t.Fatalf("%q: %#v", rawQuery, err)
			}
		} else {
			if number < 1 || number > 1<<30 || size < 1 || size > MaxPageSize || (number-1)*size < 0 {
				t.Fatalf("%q: page %d size %d", rawQuery, number, size)
			}
			var names []string
			for _, st := range states {
				if !slices.Contains(allStates, st) {
					t.Fatalf("%q: state %q", rawQuery, st)
				}
				names = append(names, Status(st))
			}
			again := url.Values{"pageNumber": {strconv.Itoa(number)}, "pageSize": {strconv.Itoa(size)}}
			if len(names) > 0 {
				again["status"] = []string{strings.Join(names, ",")}
			}
			n2, s2, st2, err := listParams(again)
			if err != nil || n2 != number || s2 != size || !sameStates(states, st2) {
				t.Fatalf("%q: page %d/%d %v; again %d/%d %v (%v)", rawQuery, number, size, states, n2, s2, st2, err)
			}
		}
		p := &ferry.Principal{OrgID: "org", Role: ferry.RoleOrgOwner}
		if groupKey {
			p = &ferry.Principal{OrgID: "org", ProjectID: own, Role: ferry.RoleGroupOwner}
		}
		r := &http.Request{URL: &url.URL{RawQuery: rawQuery}}
		id, err := tenant(ferry.WithPrincipal(context.Background(), p), r, bodyProject)
		if err != nil {
			if fe := ferry.AsError(err); fe == nil || fe.Code != ferry.EINVALID {
				t.Fatalf("%q: %#v", rawQuery, err)
			}
			return
		}
		named := slices.DeleteFunc([]string{q.Get("projectId"), q.Get("groupId"), bodyProject}, func(s string) bool { return s == "" })
		if !ferry.ValidID(id) || len(named) == 0 && id != p.ProjectID || len(named) > 0 && !slices.Contains(named, id) {
			t.Fatalf("%q (body %q): tenant %q", rawQuery, bodyProject, id)
		}
		for _, n := range named {
			if n != id {
				t.Fatalf("%q (body %q): tenant %q though %q was named too", rawQuery, bodyProject, id, n)
			}
		}
	})
}

var allStates = []ferry.State{ferry.StateCreated, ferry.StateRunning, ferry.StatePaused, ferry.StateCuttingOver, ferry.StateCompleted,
	ferry.StateFailed, ferry.StateExpired, ferry.StateReleasing, ferry.StateReleased, ferry.StateDeleted}

// sameStates compares state lists as sets (a status may map to two
// states; the order of a repeated status does not matter).
func sameStates(a, b []ferry.State) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// fuzzEnv is a real service on SQLite behind the OMS handler: project A
// (the caller's GROUP_OWNER key) and project B of another organization,
// each with a MySQL job.
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
	reg.Register(testEngine{kind: ferry.KindMySQL})
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
		m := &ferry.Migration{ProjectID: proj, Name: name, Engine: ferry.KindMySQL, Dialect: "oms", Modes: ferry.Modes{Full: true},
			Source: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{"127.0.0.1:1"}, Password: pw},
			Target: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{"127.0.0.1:2"}, Password: pw}}
		must(svc.CreateMigration(sys, m, false))
		return m.ID
	}
	e := &fuzzEnv{projA: pa.ID, projB: pb.ID}
	e.jobA = job(pa.ID, "job-a", "pw-a")
	e.jobB = job(pb.ID, "job-of-project-b", fuzzSecret)
	k, priv, err := svc.CreateAPIKey(sys, orgA.ID, pa.ID, ferry.RoleGroupOwner, "fuzz")
	must(err)
	e.key = key{k.PublicKey, priv}
	e.h = New(svc, httpauth.New(svc), logger)
	return e
}

// expand replaces the placeholders @A @B (job ids) and @PA @PB (project
// ids), so that the corpus does not depend on the ids of one run.
func (e *fuzzEnv) expand(s string) string {
	return strings.NewReplacer("@PA", e.projA, "@PB", e.projB, "@A", e.jobA, "@B", e.jobB).Replace(s)
}

var fuzzRoutes = []string{"", "/progress", "/steps"}

// FuzzRequest sends arbitrary job ids and query strings through the OMS
// handler (authentication, routing, tenant, store) as project A's key: no
// panic and no 500; every answer is the OMS wrapper; project B's job is
// never shown (not its name, not its password), whatever the id or the
// projectId/groupId given.
func FuzzRequest(f *testing.F) {
	e := newFuzzEnv(f)
	for _, s := range []struct {
		route uint8
		id, q string
	}{
		{0, "@A", ""}, {1, "@A", ""}, {2, "@A", ""}, {0, "@B", ""}, {0, "@B", "projectId=@PB"}, {1, "@B", "groupId=@PB"},
		{3, "", ""}, {3, "", "pageNumber=1&pageSize=100&status=INIT"}, {3, "", "projectId=@PB"}, {3, "", "projectId=@PA&groupId=@PB"},
		{0, "../../x", ""}, {0, "@A/..", ""}, {0, "%00", ""}, {0, "0123456789abcdef0123456", ""}, {3, "", "pageSize=0"},
		{3, "", "status=RUNNING,NOPE"}, {0, "@A", "projectId=zz"}, {0, "\xff", ""},
	} {
		f.Add(s.route, s.id, s.q)
	}
	f.Fuzz(func(t *testing.T, route uint8, id, rawQuery string) {
		id, rawQuery = e.expand(id), e.expand(rawQuery)
		path := base + "/migrations"
		if int(route)%4 < 3 {
			path += "/" + url.PathEscape(id) + fuzzRoutes[int(route)%4]
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
		case 200, 400, 403, 404, 405:
		case 301, 307, 308:
			return // ServeMux cleaning the path
		default:
			t.Fatalf("GET %s: %d %s", u, rec.Code, body)
		}
		var env map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("GET %s: %d answer is not JSON: %s", u, rec.Code, body)
		}
		if ok, _ := env["success"].(bool); ok != (rec.Code == 200) || env["requestId"] == "" || env["code"] == "" {
			t.Fatalf("GET %s: %d %s", u, rec.Code, body)
		}
		if id == e.jobA && rawQuery == "" && rec.Code != 200 {
			t.Fatalf("GET %s: the caller's own job: %d %s", u, rec.Code, body)
		}
		if strings.Contains(body, "job-of-project-b") || strings.Contains(body, fuzzSecret) {
			t.Fatalf("GET %s shows project B's job: %s", u, body)
		}
	})
}
