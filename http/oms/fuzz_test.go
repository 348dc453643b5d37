package oms

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

// FuzzDecodeCreate feeds arbitrary bodies to the create decoder: it must
// never panic, must either map the body to a job or fail with an EINVALID
// error, and that error must render as OMS's error wrapper.
func FuzzDecodeCreate(f *testing.F) {
	seed, _ := json.Marshal(createBody("0123456789abcdef01234567"))
	for _, s := range []string{string(seed), "", "null", "[]", `{"name":1}`, `{"name":"a","source":{"port":"x"}}`, `{"transferMapping":{"databases":[{"tables":[{}]}]}}`,
		`{"name":"a","source":{"type":"TIDB","host":"h","port":4000},"sinkEndpointId":"x","enableFullMigration":true}`, "{\"name\":\"\xff\"}", `{"a":1}{`} {
		f.Add([]byte(s))
	}
	h := &handler{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, m, err := parseCreate(body, "0123456789abcdef01234567")
		if err == nil {
			if m == nil || m.Engine != ferry.KindMySQL || m.Dialect != "oms" {
				t.Fatalf("parsed job: %+v", m)
			}
			return
		}
		fe := ferry.AsError(err)
		if fe == nil || fe.Code != ferry.EINVALID {
			t.Fatalf("error is not EINVALID: %#v", err)
		}
		rec := httptest.NewRecorder()
		h.writeError(rec, httptest.NewRequest("POST", "/api/omsp/v2/migrations", nil), &call{start: time.Now(), requestID: "r"}, err)
		var env map[string]any
		if rec.Code != 400 || json.Unmarshal(rec.Body.Bytes(), &env) != nil || env["success"] != false || env["code"] != CodeParamError || env["requestId"] != "r" {
			t.Fatalf("error answer %d: %s", rec.Code, rec.Body.Bytes())
		}
		if _, ok := env["message"].(string); !ok {
			t.Fatalf("message: %s", rec.Body.Bytes())
		}
	})
}

// FuzzDecodeV4Create feeds arbitrary bodies to the V4 CreateProject
// decoder: no panic; a job or an EINVALID/ENOTIMPLEMENTED error that
// renders as V4's wrapper.
func FuzzDecodeV4Create(f *testing.F) {
	seed, _ := json.Marshal(v4CreateBody("0123456789abcdef01234567", "0123456789abcdef01234568", "n"))
	for _, s := range []string{string(seed), "{}", "null", `{"enableFullTransfer":true,"sourceEndpointId":"a","sinkEndpointId":"b","name":"x"}`,
		`{"x":1}`, `{"transferMapping":{"databases":[{"name":"d","tables":[{"name":"t","whereClause":"1"}]}]}}`, `{"incrTransferConfig":{"startTimestamp":[1]}}`} {
		f.Add([]byte(s))
	}
	h := &handler{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req v4CreateRequest
		err := decodeStrict(body, &req, "CreateProject")
		if err == nil {
			var m *ferry.Migration
			if m, err = req.toMigration("0123456789abcdef01234567"); err == nil {
				if m == nil || m.Engine != ferry.KindMySQL || m.Dialect != "oms" {
					t.Fatalf("parsed job: %+v", m)
				}
				return
			}
		}
		fe := ferry.AsError(err)
		if fe == nil || (fe.Code != ferry.EINVALID && fe.Code != ferry.ENOTIMPLEMENTED) {
			t.Fatalf("error is not EINVALID or ENOTIMPLEMENTED: %#v", err)
		}
		rec := httptest.NewRecorder()
		h.writeV4Error(rec, httptest.NewRequest("POST", V4Path+"?Action=CreateProject", nil), &call{start: time.Now(), requestID: "r"}, err)
		var env map[string]any
		if (rec.Code != 400 && rec.Code != 501) || json.Unmarshal(rec.Body.Bytes(), &env) != nil || env["success"] != false || env["requestId"] != "r" || env["errorDetail"] == nil {
			t.Fatalf("error answer %d: %s", rec.Code, rec.Body.Bytes())
		}
	})
}
