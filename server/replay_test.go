package server

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

// TestDigestReplayCreatesNoKey reproduces the reported attack: a Digest
// header captured from an Atlas pipeline resume call, replayed on the
// native API-key creation route, must not create an ORG_OWNER key (nor may
// the header be replayed on its own route).
func TestDigestReplayCreatesNoKey(t *testing.T) {
	e := setup(t)
	ctx := ferry.WithPrincipal(context.Background(), ferry.SystemPrincipal)
	if err := e.db.CreatePipeline(ctx, &ferry.Pipeline{ProjectID: e.proj.ID, Name: "x", State: ferry.PipelinePaused}); err != nil {
		t.Fatal(err)
	}
	send := func(method, path, authz, body string) (int, string) {
		req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if authz == "" {
			return res.StatusCode, res.Header.Get("WWW-Authenticate")
		}
		return res.StatusCode, string(b)
	}
	resume := "/api/atlas/v2/groups/" + e.proj.ID + "/pipelines/x/resume"
	st, chal := send("POST", resume, "", "")
	if st != 401 {
		t.Fatalf("challenge: %d", st)
	}
	var nonce string
	for _, part := range strings.Split(strings.TrimPrefix(chal, "Digest "), ",") {
		if k, v, _ := strings.Cut(strings.TrimSpace(part), "="); k == "nonce" {
			nonce = strings.Trim(v, `"`)
		}
	}
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	ha1 := h(e.pub + ":" + ferry.DigestRealm + ":" + e.priv)
	resp := h(ha1 + ":" + nonce + ":00000001:abcdef:auth:" + h("POST:"+resume))
	captured := fmt.Sprintf(`Digest username=%q, realm=%q, nonce=%q, uri=%q, algorithm=MD5, qop=auth, nc=00000001, cnonce="abcdef", response=%q`,
		e.pub, ferry.DigestRealm, nonce, resume, resp)
	if st, body := send("POST", resume, captured, ""); st != 200 {
		t.Fatalf("the genuine resume: %d %s", st, body)
	}
	keysBefore, _ := e.db.ListAPIKeys(ctx, e.proj.OrgID)
	keys := "/api/v1/orgs/" + e.proj.OrgID + "/api-keys"
	if st, body := send("POST", keys, captured, `{"role":"ORG_OWNER","description":"attacker"}`); st != 401 {
		t.Errorf("the resume header replayed on %s: %d %s", keys, st, body)
	}
	if st, body := send("POST", resume, captured, ""); st != 401 {
		t.Errorf("the resume header replayed on its own route: %d %s", st, body)
	}
	keysAfter, _ := e.db.ListAPIKeys(ctx, e.proj.OrgID)
	if len(keysAfter) != len(keysBefore) {
		t.Errorf("%d API keys after the replay, %d before", len(keysAfter), len(keysBefore))
	}
}
