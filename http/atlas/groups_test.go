package atlas

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

func wantGroup(t *testing.T, what string, g map[string]any, srvURL string, p *ferry.Project, clusters int) {
	t.Helper()
	wantKeys(t, what, g, "clusterCount", "created", "id", "links", "name", "orgId")
	wantField(t, what, g, "id", p.ID)
	wantField(t, what, g, "name", p.Name)
	wantField(t, what, g, "orgId", p.OrgID)
	wantField(t, what, g, "clusterCount", clusters)
	created, _ := g["created"].(string)
	if _, err := time.Parse(time.RFC3339, created); err != nil || !strings.HasSuffix(created, "Z") {
		t.Fatalf("%s: created %q is not RFC 3339 UTC", what, created)
	}
	links := arr(t, g, "links")
	if len(links) != 1 {
		t.Fatalf("%s: links %v", what, links)
	}
	l := links[0].(map[string]any)
	wantKeys(t, what+" link", l, "href", "rel")
	wantField(t, what, l, "rel", "self")
	wantField(t, what, l, "href", srvURL+"/api/atlas/v2/groups/"+p.ID)
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, true)

	r := e.do(req{method: "GET", path: "/api/atlas/v2/groups"})
	wantError(t, "no credentials", r, 401, "UNAUTHORIZED")
	if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Digest ") || !strings.Contains(ch, `realm="ferry"`) || !strings.Contains(ch, "nonce=") {
		t.Fatalf("challenge %q", ch)
	}

	bad := key{e.owner.pub, "not-the-private-key"}
	r = e.do(req{method: "GET", path: "/api/atlas/v2/groups", key: &bad})
	wantError(t, "wrong private key", r, 401, "UNAUTHORIZED")

	r = e.do(req{method: "GET", path: "/api/atlas/v2/groups", bearer: "ferry_not-a-token"})
	wantError(t, "unknown bearer token", r, 401, "UNAUTHORIZED")

	r = e.get("/api/atlas/v2/groups")
	wantStatus(t, "digest", r, 200)
}

func TestGroupsAndOrgs(t *testing.T) {
	e := newEnv(t, true)

	// List: the owner's organization has one project with two clusters.
	r := e.get("/api/atlas/v2/groups")
	wantStatus(t, "list groups", r, 200)
	if ct := r.header.Get("Content-Type"); ct != "application/vnd.atlas.2023-01-01+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	wantKeys(t, "list groups", r.body, "links", "results", "totalCount")
	wantField(t, "list groups", r.body, "totalCount", 1)
	res := arr(t, r.body, "results")
	if len(res) != 1 {
		t.Fatalf("results %v", res)
	}
	wantGroup(t, "listed group", res[0].(map[string]any), e.srv.URL, e.proj, 2)

	// Create.
	r = e.send("POST", "/api/atlas/v2/groups", map[string]any{"name": "Project B", "orgId": e.org.ID})
	wantStatus(t, "create group", r, 200)
	id, _ := r.body["id"].(string)
	if !ferry.ValidID(id) {
		t.Fatalf("created id %q", id)
	}
	pb := must(e.svc.Store.GetProject(e.sys, id))
	wantGroup(t, "created group", r.body, e.srv.URL, pb, 0)

	// Without orgId the key's organization is used; duplicate names conflict.
	r = e.send("POST", "/api/atlas/v2/groups", map[string]any{"name": "Project C"})
	wantStatus(t, "create group without orgId", r, 200)
	wantField(t, "create group without orgId", r.body, "orgId", e.org.ID)
	r = e.send("POST", "/api/atlas/v2/groups", map[string]any{"name": "Project C", "orgId": e.org.ID})
	wantError(t, "duplicate name", r, 409, "GROUP_ALREADY_EXISTS")
	r = e.send("POST", "/api/atlas/v2/groups", map[string]any{"orgId": e.org.ID})
	wantBadField(t, "no name", r, "MISSING_ATTRIBUTE", "name")
	r = e.send("POST", "/api/atlas/v2/groups", map[string]any{"name": "X", "color": "red"})
	wantBadField(t, "unknown attribute", r, "INVALID_ATTRIBUTE", "color")
	r = e.send("POST", "/api/atlas/v2/groups", map[string]any{"name": 5})
	wantBadField(t, "wrong type", r, "INVALID_JSON_ATTRIBUTE", "name")
	r = e.send("POST", "/api/atlas/v2/groups", `{"name": "X"`)
	wantError(t, "malformed", r, 400, "INVALID_JSON")
	r = e.send("POST", "/api/atlas/v2/groups", map[string]any{"name": "X", "orgId": "nope"})
	wantBadField(t, "bad orgId", r, "INVALID_ORG_ID", "orgId")

	// Get, by name.
	r = e.get("/api/atlas/v2/groups/" + e.proj.ID)
	wantStatus(t, "get group", r, 200)
	wantGroup(t, "get group", r.body, e.srv.URL, e.proj, 2)
	r = e.get("/api/atlas/v2/groups/byName/Project%20A")
	wantStatus(t, "get group by name", r, 200)
	wantGroup(t, "get group by name", r.body, e.srv.URL, e.proj, 2)
	// Project names that are also sub-resource names still resolve by name.
	for _, name := range []string{"pipelines", "liveMigrations"} {
		p := must(e.svc.CreateProject(e.sys, e.org.ID, name))
		r = e.get("/api/atlas/v2/groups/byName/" + name)
		wantStatus(t, "by name "+name, r, 200)
		wantGroup(t, "by name "+name, r.body, e.srv.URL, p, 0)
		if err := e.svc.DeleteProject(e.sys, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	r = e.get("/api/atlas/v2/groups/byName/Nope")
	wantError(t, "unknown name", r, 404, "GROUP_NAME_NOT_FOUND")
	r = e.get("/api/atlas/v2/groups/" + ferry.NewID())
	wantError(t, "unknown id", r, 404, "GROUP_NOT_FOUND")

	// Pagination: 3 projects, 2 per page.
	r = e.get("/api/atlas/v2/groups?itemsPerPage=2&pageNum=1")
	wantStatus(t, "page 1", r, 200)
	wantField(t, "page 1", r.body, "totalCount", 3)
	if n := len(arr(t, r.body, "results")); n != 2 {
		t.Fatalf("page 1 has %d results", n)
	}
	wantLinks(t, "page 1", r.body, map[string]string{
		"self": e.srv.URL + "/api/atlas/v2/groups?itemsPerPage=2&pageNum=1",
		"next": e.srv.URL + "/api/atlas/v2/groups?itemsPerPage=2&pageNum=2",
	})
	r = e.get("/api/atlas/v2/groups?itemsPerPage=2&pageNum=2&includeCount=false")
	wantStatus(t, "page 2", r, 200)
	wantKeys(t, "page 2 without count", r.body, "links", "results")
	if n := len(arr(t, r.body, "results")); n != 1 {
		t.Fatalf("page 2 has %d results", n)
	}
	wantLinks(t, "page 2", r.body, map[string]string{
		"self":     e.srv.URL + "/api/atlas/v2/groups?includeCount=false&itemsPerPage=2&pageNum=2",
		"previous": e.srv.URL + "/api/atlas/v2/groups?includeCount=false&itemsPerPage=2&pageNum=1",
	})
	r = e.get("/api/atlas/v2/groups?pageNum=9")
	wantStatus(t, "page beyond the end", r, 200)
	if n := len(arr(t, r.body, "results")); n != 0 {
		t.Fatalf("page 9 has %d results", n)
	}
	for _, q := range []string{"itemsPerPage=501", "itemsPerPage=0", "itemsPerPage=x", "pageNum=0", "includeCount=maybe"} {
		r = e.get("/api/atlas/v2/groups?" + q)
		wantError(t, q, r, 400, "INVALID_QUERY_PARAMETER")
	}
	r = e.get("/api/atlas/v2/groups?itemsPerPage=500")
	wantStatus(t, "itemsPerPage=500", r, 200)

	// Organizations.
	r = e.get("/api/atlas/v2/orgs")
	wantStatus(t, "list orgs", r, 200)
	wantField(t, "list orgs", r.body, "totalCount", 1)
	o := arr(t, r.body, "results")[0].(map[string]any)
	wantKeys(t, "org", o, "id", "isDeleted", "links", "name")
	wantField(t, "org", o, "id", e.org.ID)
	wantField(t, "org", o, "name", "Org A")
	wantField(t, "org", o, "isDeleted", false)
	r = e.get("/api/atlas/v2/orgs/" + e.org.ID)
	wantStatus(t, "get org", r, 200)
	wantKeys(t, "get org", r.body, "id", "isDeleted", "links", "name")
	wantField(t, "get org", r.body, "id", e.org.ID)
	l := arr(t, r.body, "links")[0].(map[string]any)
	wantField(t, "org link", l, "href", e.srv.URL+"/api/atlas/v2/orgs/"+e.org.ID)
	r = e.get("/api/atlas/v2/orgs/" + e.org.ID + "/groups?name=project%20b")
	wantStatus(t, "org groups by name", r, 200)
	wantField(t, "org groups by name", r.body, "totalCount", 1)
	wantGroup(t, "org groups by name", arr(t, r.body, "results")[0].(map[string]any), e.srv.URL, pb, 0)
	r = e.get("/api/atlas/v2/orgs/" + e.org.ID + "/groups")
	wantField(t, "org groups", r.body, "totalCount", 3)
	r = e.get("/api/atlas/v2/orgs/xyz")
	wantBadField(t, "malformed org id", r, "INVALID_ORG_ID", "orgId")

	// Delete: 204; refused while a migration runs.
	r = e.send("DELETE", "/api/atlas/v2/groups/"+pb.ID, nil)
	wantStatus(t, "delete group", r, 204)
	if len(r.raw) != 0 {
		t.Fatalf("delete answered a body: %s", r.raw)
	}
	r = e.get("/api/atlas/v2/groups/" + pb.ID)
	wantError(t, "deleted group", r, 404, "GROUP_NOT_FOUND")
	r = e.send("POST", "/api/atlas/v2/groups/"+e.proj.ID+"/liveMigrations", e.lmBody(nil))
	wantStatus(t, "create live migration", r, 201)
	r = e.send("DELETE", "/api/atlas/v2/groups/"+e.proj.ID, nil)
	wantError(t, "delete group with a running migration", r, 409, "CANNOT_CLOSE_GROUP_ACTIVE_MIGRATIONS")
}

func wantLinks(t *testing.T, what string, body map[string]any, want map[string]string) {
	t.Helper()
	links := arr(t, body, "links")
	got := map[string]string{}
	for _, l := range links {
		m := l.(map[string]any)
		wantKeys(t, what+" link", m, "href", "rel")
		got[m["rel"].(string)] = m["href"].(string)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: links %v, want %v", what, got, want)
	}
	for rel, href := range want {
		if got[rel] != href {
			t.Fatalf("%s: link %s = %q, want %q", what, rel, got[rel], href)
		}
	}
}

func TestTenantIsolationAndRoles(t *testing.T) {
	e := newEnv(t, true)
	orgB := must(e.svc.CreateOrg(e.sys, "Org B"))
	ownerB := e.newKey(orgB.ID, "", ferry.RoleOrgOwner)
	projB := must(e.svc.CreateProject(e.sys, orgB.ID, "Project B"))

	// Another organization's project, organization and listings.
	for _, path := range []string{
		"/api/atlas/v2/groups/" + e.proj.ID,
		"/api/atlas/v2/groups/" + e.proj.ID + "/pipelines",
		"/api/atlas/v2/groups/" + e.proj.ID + "/liveMigrations",
	} {
		r := e.do(req{method: "GET", path: path, key: &ownerB})
		wantError(t, "org B reads "+path, r, 404, "GROUP_NOT_FOUND")
	}
	r := e.do(req{method: "GET", path: "/api/atlas/v2/orgs/" + e.org.ID, key: &ownerB})
	wantError(t, "org B reads org A", r, 404, "ORG_NOT_FOUND")
	r = e.do(req{method: "GET", path: "/api/atlas/v2/groups", key: &ownerB})
	wantField(t, "org B lists", r.body, "totalCount", 1)
	wantField(t, "org B lists", arr(t, r.body, "results")[0].(map[string]any), "id", projB.ID)
	r = e.do(req{method: "POST", path: "/api/atlas/v2/groups", key: &ownerB, body: map[string]any{"name": "Sneaky", "orgId": e.org.ID}})
	wantError(t, "org B creates in org A", r, 404, "ORG_NOT_FOUND")
	r = e.do(req{method: "DELETE", path: "/api/atlas/v2/groups/" + e.proj.ID, key: &ownerB})
	wantError(t, "org B deletes org A's project", r, 404, "GROUP_NOT_FOUND")

	// Read-only keys.
	ro := e.newKey(e.org.ID, "", ferry.RoleOrgReadOnly)
	r = e.do(req{method: "POST", path: "/api/atlas/v2/groups", key: &ro, body: map[string]any{"name": "Nope"}})
	wantError(t, "read-only key creates a project", r, 403, "USER_UNAUTHORIZED")
	r = e.do(req{method: "GET", path: "/api/atlas/v2/groups", key: &ro})
	wantStatus(t, "read-only key lists", r, 200)

	gro := e.newKey(e.org.ID, e.proj.ID, ferry.RoleGroupReadOnly)
	r = e.do(req{method: "GET", path: "/api/atlas/v2/groups/" + e.proj.ID, key: &gro})
	wantStatus(t, "group read-only reads its project", r, 200)
	r = e.do(req{method: "DELETE", path: "/api/atlas/v2/groups/" + e.proj.ID, key: &gro})
	wantError(t, "group read-only deletes", r, 403, "USER_UNAUTHORIZED")
	other := must(e.svc.CreateProject(e.sys, e.org.ID, "Other"))
	r = e.do(req{method: "GET", path: "/api/atlas/v2/groups/" + other.ID, key: &gro})
	wantError(t, "group key reads another project", r, 404, "GROUP_NOT_FOUND")
	r = e.do(req{method: "GET", path: "/api/atlas/v2/groups", key: &gro})
	wantField(t, "group key lists", r.body, "totalCount", 1)
}

func TestRoutingAndNegotiation(t *testing.T) {
	e := newEnv(t, true)
	g := "/api/atlas/v2/groups/" + e.proj.ID

	r := e.get("/api/atlas/v2/nothing/here")
	wantError(t, "unknown path", r, 404, "RESOURCE_NOT_FOUND")
	r = e.get(g + "/clusters")
	wantError(t, "unknown sub-resource", r, 404, "RESOURCE_NOT_FOUND")
	r = e.send("PUT", g, map[string]any{"name": "x"})
	wantError(t, "unsupported method", r, 405, "METHOD_NOT_ALLOWED")
	if a := r.header.Get("Allow"); a != "GET, PATCH, DELETE" {
		t.Fatalf("Allow %q", a)
	}
	r = e.do(req{method: "GET", path: "/api/atlas/v2/nothing"})
	wantError(t, "unknown path without credentials", r, 401, "UNAUTHORIZED")

	// Malformed ids.
	r = e.get("/api/atlas/v2/groups/12345")
	wantBadField(t, "malformed groupId", r, "INVALID_GROUP_ID", "groupId")
	wantField(t, "malformed groupId", r.body, "parameters", []any{"groupId"})
	r = e.get(g + "/liveMigrations/XYZ")
	wantBadField(t, "malformed liveMigrationId", r, "VALIDATION_ERROR", "liveMigrationId")
	r = e.get(g + "/liveMigrations/validate/abc")
	wantBadField(t, "malformed validationId", r, "VALIDATION_ERROR", "validationId")
	r = e.get(g + "/pipelines/p1/runs/abc")
	wantBadField(t, "malformed pipelineRunId", r, "VALIDATION_ERROR", "pipelineRunId")

	// Versions.
	for _, c := range []struct{ accept, want string }{
		{"", "application/vnd.atlas.2023-01-01+json"},
		{"application/json", "application/vnd.atlas.2023-01-01+json"},
		{"*/*", "application/vnd.atlas.2023-01-01+json"},
		{"application/vnd.atlas.2023-02-01+json", "application/vnd.atlas.2023-02-01+json"},
		{"application/vnd.atlas.2024-05-30+json", "application/vnd.atlas.2024-05-30+json"},
		{"application/vnd.atlas.2025-03-12+json;charset=utf-8", "application/vnd.atlas.2025-03-12+json"},
		{"text/plain, application/vnd.atlas.2024-08-05+json", "application/vnd.atlas.2024-08-05+json"},
	} {
		r := e.do(req{method: "GET", path: g, key: &e.owner, accept: c.accept})
		wantStatus(t, "Accept "+c.accept, r, 200)
		if ct := r.header.Get("Content-Type"); ct != c.want {
			t.Fatalf("Accept %q: Content-Type %q, want %q", c.accept, ct, c.want)
		}
	}
	for _, a := range []string{"application/vnd.atlas.2099-01-01+json", "application/vnd.atlas.2023-01-02+json", "text/html", "application/vnd.atlas.2023-01-01+csv"} {
		r := e.do(req{method: "GET", path: g, key: &e.owner, accept: a})
		wantError(t, "Accept "+a, r, 406, "INVALID_VERSION_DATE")
		wantField(t, "Accept "+a, r.body, "detail", "Invalid accept header or version date.")
	}
}

func TestEnvelopeAndPretty(t *testing.T) {
	e := newEnv(t, true)
	g := "/api/atlas/v2/groups/" + e.proj.ID

	r := e.get(g + "?envelope=true")
	wantStatus(t, "envelope", r, 200)
	wantKeys(t, "envelope", r.body, "content", "status")
	wantField(t, "envelope", r.body, "status", 200)
	wantGroup(t, "enveloped group", obj(t, r.body, "content"), e.srv.URL, e.proj, 2)

	// Lists use the results object as the envelope.
	r = e.get("/api/atlas/v2/groups?envelope=true")
	wantStatus(t, "list envelope", r, 200)
	wantKeys(t, "list envelope", r.body, "links", "results", "status", "totalCount")
	wantField(t, "list envelope", r.body, "status", 200)

	// Errors too: the HTTP status is 200 and the body says the real one.
	r = e.get("/api/atlas/v2/groups/" + ferry.NewID() + "?envelope=true")
	wantStatus(t, "error envelope", r, 200)
	wantKeys(t, "error envelope", r.body, "content", "status")
	wantField(t, "error envelope", r.body, "status", 404)
	c := obj(t, r.body, "content")
	wantField(t, "error envelope", c, "error", 404)
	wantField(t, "error envelope", c, "errorCode", "GROUP_NOT_FOUND")

	// A created resource: 201 goes into the body.
	r = e.send("POST", g+"/liveMigrations?envelope=true", e.lmBody(nil))
	wantStatus(t, "create envelope", r, 200)
	wantField(t, "create envelope", r.body, "status", 201)
	wantKeys(t, "create envelope content", obj(t, r.body, "content"), "_id", "lagTimeSeconds", "migrationHosts", "readyForCutover", "status")

	// pretty=true indents; the default is compact.
	r = e.get(g + "?pretty=true")
	if !strings.Contains(string(r.raw), "{\n  \"clusterCount\": 2,\n") {
		t.Fatalf("pretty body:\n%s", r.raw)
	}
	r = e.get(g)
	if strings.Contains(strings.TrimSpace(string(r.raw)), "\n") {
		t.Fatalf("compact body has newlines:\n%s", r.raw)
	}
	r = e.get(g + "?pretty=yes")
	wantBadField(t, "pretty=yes", r, "INVALID_QUERY_PARAMETER", "pretty")
}

func TestOAuthToken(t *testing.T) {
	e := newEnv(t, true)
	post := func(form string, basic *key) response {
		hr := must(http.NewRequest("POST", e.srv.URL+"/api/oauth/token", strings.NewReader(form)))
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic != nil {
			hr.SetBasicAuth(basic.pub, basic.priv)
		}
		return doRaw(t, e, hr)
	}
	r := post("grant_type=client_credentials", &e.owner)
	wantStatus(t, "token", r, 200)
	wantKeys(t, "token", r.body, "access_token", "expires_in", "token_type")
	wantField(t, "token", r.body, "token_type", "Bearer")
	wantField(t, "token", r.body, "expires_in", 3600)
	tok := r.body["access_token"].(string)
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}

	r = e.do(req{method: "GET", path: "/api/atlas/v2/groups/" + e.proj.ID, bearer: tok})
	wantStatus(t, "bearer", r, 200)
	wantField(t, "bearer", r.body, "id", e.proj.ID)

	r = post("grant_type=client_credentials&client_id="+e.owner.pub+"&client_secret="+e.owner.priv, nil)
	wantStatus(t, "token with form credentials", r, 200)

	r = post("grant_type=client_credentials", &key{e.owner.pub, "wrong"})
	wantStatus(t, "bad secret", r, 401)
	wantKeys(t, "bad secret", r.body, "error", "error_description")
	wantField(t, "bad secret", r.body, "error", "invalid_client")
	r = post("grant_type=client_credentials", nil)
	wantField(t, "no credentials", r.body, "error", "invalid_client")
	r = post("grant_type=password", &e.owner)
	wantStatus(t, "wrong grant", r, 400)
	wantField(t, "wrong grant", r.body, "error", "unsupported_grant_type")

	// Revocation: the token stops working at once.
	hr := must(http.NewRequest("POST", e.srv.URL+"/api/oauth/revoke", strings.NewReader("token="+tok+"&token_type_hint=access_token")))
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hr.SetBasicAuth(e.owner.pub, e.owner.priv)
	r = doRaw(t, e, hr)
	wantStatus(t, "revoke", r, 200)
	r = e.do(req{method: "GET", path: "/api/atlas/v2/groups/" + e.proj.ID, bearer: tok})
	wantError(t, "revoked token", r, 401, "UNAUTHORIZED")
}

func doRaw(t *testing.T, e *env, hr *http.Request) response {
	t.Helper()
	resp := must(e.srv.Client().Do(hr))
	defer resp.Body.Close()
	out := response{status: resp.StatusCode, header: resp.Header, raw: must(io.ReadAll(resp.Body))}
	if len(out.raw) > 0 {
		if err := json.Unmarshal(out.raw, &out.body); err != nil {
			t.Fatalf("body is not a JSON object: %v: %s", err, out.raw)
		}
	}
	return out
}
