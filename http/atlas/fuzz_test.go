package atlas

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferrymigrate/ferry"
)

// FuzzLiveMigrationRequest feeds arbitrary bytes to the live migration
// create-body decoder: it must never panic, and a rejected body must always
// render as Atlas's JSON error body with a 400.
func FuzzLiveMigrationRequest(f *testing.F) {
	gid := "6543210fedcba98765432101"
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"source":{}}`, `{"source":1}`,
		`{"source":{"clusterName":"a","groupId":"6543210fedcba98765432101","ssl":true},"destination":{"clusterName":"b","groupId":"6543210fedcba98765432101","hostnameSchemaType":"PUBLIC"},"migrationHosts":["h"]}`,
		`{"sharding":{"createSupportingIndexes":true,"shardingEntries":[{"database":"d","collection":"c","shardCollection":{"key":[{"a":1}]}}]}}`,
		`{"source":{"clusterName":"a","x":[1,{"y":2}]}}`, "{\"a\":\"\xff\"}", `{"migrationHosts":[1,2]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseLiveMigration(gid, body)
		if err == nil {
			if m == nil || m.ProjectID != gid || m.Engine != ferry.KindMongoDB || m.Source.Name == "" || m.Target.Name == "" {
				t.Fatalf("accepted body gave job %+v", m)
			}
			return
		}
		rec := httptest.NewRecorder()
		writeError(rec, nil, httptest.NewRequest("POST", "/", nil), opts{}, err)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.Bytes())
		}
		var ae map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &ae); err != nil {
			t.Fatalf("error body is not JSON: %v: %s", err, rec.Body.Bytes())
		}
		if ae["error"] != float64(400) || ae["errorCode"] == "" || ae["reason"] != "Bad Request" || ae["detail"] == "" {
			t.Fatalf("error body %v", ae)
		}
	})
}
