package dcs

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

// assertDCSError renders err through the dialect's error writer and checks
// it is an EINVALID error answered as DCS's 400 error body.
func assertDCSError(t *testing.T, err error) {
	t.Helper()
	fe := ferry.AsError(err)
	if fe == nil || fe.Code != ferry.EINVALID {
		t.Fatalf("error is not EINVALID: %#v", err)
	}
	h := &handler{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rec := httptest.NewRecorder()
	h.writeError(rec, httptest.NewRequest("POST", "/v2/x/migration-task", nil), err)
	var body map[string]any
	if rec.Code != 400 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body) != 3 {
		t.Fatalf("error answer %d: %s", rec.Code, rec.Body.Bytes())
	}
	code, _ := body["error_code"].(string)
	msg, _ := body["error_msg"].(string)
	if (code != CodeInvalidParam && code != CodeInvalidProjectID) || msg == "" || len(msg) > 1024 {
		t.Fatalf("error body: %s", rec.Body.Bytes())
	}
	if _, ok := body["error_ext_msg"]; !ok {
		t.Fatalf("error_ext_msg missing: %s", rec.Body.Bytes())
	}
}

// FuzzDecodeCreate: the create decoder never panics and either maps the
// body to a Redis job or fails with DCS's 400 body.
func FuzzDecodeCreate(f *testing.F) {
	on, _ := json.Marshal(onlineBody("incremental_migration"))
	bk, _ := json.Marshal(backupBody())
	for _, s := range []string{string(on), string(bk), "", "null", "{}", `{"task_name":"t","migration_type":"online_migration","migration_method":"full_amount_migration","source_instance":{"ip":"h","port":1},"target_instance":{"id":"x"}}`,
		`{"bandwidth_limit_mb":1e99}`, `{"source_instance":{"port":{}}}`, `{"backup_files":{"files":[{"size":-1}]}}`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseCreate(body, "0123456789abcdef01234567")
		if err != nil {
			assertDCSError(t, err)
			return
		}
		if m.Engine != ferry.KindRedis || m.Target.Kind != ferry.KindRedis || m.Name == "" {
			t.Fatalf("parsed job: %+v", m)
		}
	})
}

// FuzzDecodeDelete: the batch delete decoder.
func FuzzDecodeDelete(f *testing.F) {
	for _, s := range []string{`{"task_id_list":["a","b","a"]}`, `{"task_id_list":[]}`, `{"task_id_list":[""]}`, `{"task_id_list":"x"}`, "", "[]", "{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, err := parseDelete(body)
		if err != nil {
			assertDCSError(t, err)
			return
		}
		if len(ids) == 0 || len(ids) > 100 {
			t.Fatalf("ids: %v", ids)
		}
	})
}

// FuzzDecodeToken: the IAM token body decoder.
func FuzzDecodeToken(f *testing.F) {
	good, _ := json.Marshal(tokenBody("pub", "priv", "0123456789abcdef01234567"))
	for _, s := range []string{string(good), `{"auth":{"identity":{"methods":["token"]}}}`, `{"auth":{"scope":{"project":{"id":"x"}}}}`, "", `{"auth":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseTokenRequest(body)
		if err != nil {
			assertDCSError(t, err)
			return
		}
		if req.Auth.Identity.Password.User.Name == "" || req.Auth.Identity.Password.User.Password == "" {
			t.Fatalf("accepted a token body without credentials: %s", body)
		}
	})
}

// FuzzDecodeBatch: the batch stop/restart decoder never panics and either
// returns 1..100 non-empty ids or fails with DCS's 400 body.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"migration_tasks":["0123456789abcdef01234567"]}`))
	f.Add([]byte(`{"migration_tasks":[]}`))
	f.Add([]byte(`{"migration_tasks":[""," "]}`))
	f.Add([]byte(`{"migration_tasks":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, err := parseBatch(body)
		if err != nil {
			assertDCSError(t, err)
			return
		}
		if len(ids) == 0 || len(ids) > 100 {
			t.Fatalf("ids %v", ids)
		}
		for _, id := range ids {
			if strings.TrimSpace(id) == "" {
				t.Fatalf("empty id accepted: %q", ids)
			}
		}
	})
}
