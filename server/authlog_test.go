package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDigestChallengeLoggedAtDebug checks that the 401 challenge of a
// Digest handshake (a request without credentials) is a DEBUG line while a
// 401 for wrong credentials stays INFO.
func TestDigestChallengeLoggedAtDebug(t *testing.T) {
	e := setup(t)
	if st, hdr, _ := e.get(t, "/api/atlas/v2/groups", nil); st != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Digest ") {
		t.Fatalf("challenge: %d %q", st, hdr.Get("WWW-Authenticate"))
	}
	if st, _, _ := e.get(t, "/api/v1/projects", map[string]string{"Authorization": "Basic " + basic(e.pub, "wrong")}); st != 401 {
		t.Fatalf("wrong credentials: %d", st)
	}
	levels := map[string]string{}
	for l := range strings.SplitSeq(e.logs.String(), "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) != nil || line["msg"] != "http request" {
			continue
		}
		levels[line["path"].(string)] = line["level"].(string)
	}
	if levels["/api/atlas/v2/groups"] != "DEBUG" {
		t.Errorf("the Digest challenge was logged at %q, want DEBUG", levels["/api/atlas/v2/groups"])
	}
	if levels["/api/v1/projects"] != "INFO" {
		t.Errorf("a 401 for wrong credentials was logged at %q, want INFO", levels["/api/v1/projects"])
	}
}
