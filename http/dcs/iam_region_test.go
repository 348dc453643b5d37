package dcs

import (
	"net/http"
	"testing"
)

func scopeNameBody(k key, name string) map[string]any {
	b := tokenBody(k.pub, k.priv, "")
	b["auth"].(map[string]any)["scope"] = map[string]any{"project": map[string]any{"name": name}}
	return b
}

func TestIAMTokenRegionScope(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		k      key
		scope  string
		status int
		proj   string
		code   string
	}{
		{"group key, region", e.groupA, "cn-north-4", http.StatusCreated, e.projA.ID, ""},
		{"group key, sub-project region", e.groupA, "ap-southeast-1_prod", http.StatusCreated, e.projA.ID, ""},
		{"org with one project, region", e.otherOrg, "eu-west-101", http.StatusCreated, e.projOther.ID, ""},
		{"org with two projects, region", e.orgOwner, "cn-north-4", http.StatusBadRequest, "", CodeInvalidParam},
		{"project name still wins", e.orgOwner, "b", http.StatusCreated, e.projB.ID, ""},
		{"not a region, no project", e.groupA, "no-such-project", http.StatusNotFound, "", CodeNotFound},
	} {
		r := e.do("POST", "/v3/auth/tokens", auth{}, scopeNameBody(tc.k, tc.scope))
		if r.status != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.raw)
		}
		if tc.code != "" {
			if r.body["error_code"] != tc.code {
				t.Fatalf("%s: %s", tc.name, r.raw)
			}
			continue
		}
		proj, _ := r.body["token"].(map[string]any)["project"].(map[string]any)
		if proj["id"] != tc.proj || r.header.Get(SubjectTokenHeader) == "" {
			t.Fatalf("%s: token project %v, want %s: %s", tc.name, proj, tc.proj, r.raw)
		}
	}
}
