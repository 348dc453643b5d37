package atlas

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestCurlDigest runs the real curl with --digest, as Atlas's documentation
// shows, against the dialect.
func TestCurlDigest(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is required for this test (Debian package curl)")
	}
	e := newEnv(t, true)
	run := func(args ...string) (map[string]any, string) {
		t.Helper()
		base := []string{"--silent", "--show-error", "--digest", "--user", e.owner.pub + ":" + e.owner.priv,
			"--header", "Accept: application/vnd.atlas.2025-03-12+json", "--write-out", "\n%{http_code} %{content_type}"}
		out, err := exec.Command(curl, append(base, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		s := string(out)
		i := strings.LastIndex(s, "\n")
		var body map[string]any
		if err := json.Unmarshal([]byte(s[:i]), &body); err != nil {
			t.Fatalf("curl body is not JSON: %v\n%s", err, s)
		}
		return body, s[i+1:]
	}

	body, status := run("-X", "GET", e.srv.URL+"/api/atlas/v2/groups/"+e.proj.ID+"?pretty=true")
	if status != "200 application/vnd.atlas.2025-03-12+json" {
		t.Fatalf("curl GET: %s", status)
	}
	wantGroup(t, "curl GET", body, e.srv.URL, e.proj, 2)

	body, status = run("--header", "Content-Type: application/json", "-X", "POST",
		e.srv.URL+"/api/atlas/v2/groups", "--data", `{"name":"From curl","orgId":"`+e.org.ID+`"}`)
	if status != "200 application/vnd.atlas.2025-03-12+json" {
		t.Fatalf("curl POST: %s %v", status, body)
	}
	wantField(t, "curl POST", body, "name", "From curl")
	wantField(t, "curl POST", body, "orgId", e.org.ID)

	body, status = run("-X", "GET", e.srv.URL+"/api/atlas/v2/groups/"+e.proj.ID+"/liveMigrations/nothex")
	if !strings.HasPrefix(status, "400 ") {
		t.Fatalf("curl malformed id: %s", status)
	}
	wantField(t, "curl malformed id", body, "errorCode", "VALIDATION_ERROR")
}
