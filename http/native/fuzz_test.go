package native

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"

	"github.com/ferrymigrate/ferry"
)

// assertNative400 checks err is an EINVALID ferry error rendered as the
// native API's 400 error body.
func assertNative400(t *testing.T, input any, err error) {
	t.Helper()
	fe := ferry.AsError(err)
	if fe == nil || fe.Code != ferry.EINVALID || fe.Message == "" {
		t.Fatalf("%q: error is not EINVALID: %#v", input, err)
	}
	h := &Handler{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rec := httptest.NewRecorder()
	h.writeError(rec, httptest.NewRequest("POST", "/api/v1/x", nil), err)
	var body struct {
		Error errorDetail `json:"error"`
	}
	if rec.Code != http.StatusBadRequest || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != ferry.EINVALID || body.Error.Message == "" {
		t.Fatalf("%q: answer %d %s", input, rec.Code, rec.Body.Bytes())
	}
}

// nativeBodies are the request bodies the native API decodes.
var nativeBodies = []func() any{
	func() any { return &migrationInput{} },
	func() any { return &jobSpec{} },
	func() any { return &endpointInput{} },
	func() any { return &endpointPatch{} },
	func() any { return &pipelineInput{} },
	func() any { return &pipelinePatch{} },
	func() any { return &apiKeyInput{} },
	func() any { return &projectInput{} },
	func() any { return &extendInput{} },
	func() any { return &triggerInput{} },
}

// FuzzNativeBody feeds arbitrary bodies (and content types) to the native
// API's decoder for each of its request bodies: no panic; a refusal is an
// EINVALID error rendered as the 400 error body; an accepted body, encoded
// and decoded again, encodes the same (nothing is lost or invented).
func FuzzNativeBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"m1","engine":"redis","source":{"addrs":["127.0.0.1:6379"],"password":"pw"},"target":{"name":"dst"},"modes":{"full":true,"incremental":true},"options":{"filters":{"includeDbs":["0"]},"extra":{"mode":"scan"},"parallelism":4},"labels":{"a":"b"},"start":true}`,
		`{"name":"p","source":{"type":"ON_DEMAND_CPS","clusterName":"c","databaseName":"d","collectionName":"e"},"sink":{"type":"DLS","partitionFields":[{"fieldName":"a","order":0}]},"datasetRetentionPolicy":{"units":"DAYS","value":3,"lastModifiedDate":"2024-01-02T03:04:05Z"}}`,
		`{"role":"GROUP_OWNER","projectId":"6543210fedcba98765432101"}`, `{"hours":24}`, `{"hours":1e400}`, `{"hours":"x"}`,
		`{"options":{"extra":{}}}`, `{"datasetRetentionPolicy":{"lastModifiedDate":"yesterday"}}`, `{"modes":null}`, `{"unknown":1}`, `{"NAME":"case"}`,
		``, ` `, `null`, `[]`, `{}`, `{}{}`, `{"name":"a"`, "{\"name\":\"\xff\"}", `"x"`, `{"addrs":"h:1"}`,
	} {
		for k := range nativeBodies {
			f.Add(uint8(k), "application/json", []byte(s))
		}
	}
	f.Add(uint8(0), "text/plain", []byte(`{}`))
	f.Add(uint8(0), "", []byte(`{"name":"x"}`))
	f.Fuzz(func(t *testing.T, kind uint8, contentType string, body []byte) {
		newV := nativeBodies[int(kind)%len(nativeBodies)]
		v := newV()
		r := httptest.NewRequest("POST", "/api/v1/x", bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if err := decode(httptest.NewRecorder(), r, v); err != nil {
			assertNative400(t, body, err)
			return
		}
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%q: decoded value does not encode: %v", body, err)
		}
		v2 := newV()
		r2 := httptest.NewRequest("POST", "/api/v1/x", bytes.NewReader(enc))
		if err := decode(httptest.NewRecorder(), r2, v2); err != nil {
			t.Fatalf("%q decoded to %s, which is refused: %v", body, enc, err)
		}
		if enc2, _ := json.Marshal(v2); !bytes.Equal(enc, enc2) {
			t.Fatalf("%q: %s, then %s", body, enc, enc2)
		}
	})
}

// FuzzNativeParams feeds arbitrary query strings and path ids to paging
// (?offset=&limit=) and the 24-hex id parameters: no panic; a refusal is
// the 400 error body; an accepted page is in range and slices any list
// within bounds; an accepted id is a ferry id.
func FuzzNativeParams(f *testing.F) {
	for _, s := range []string{"", "offset=0&limit=1", "offset=-1", "limit=0", "limit=501", "limit=500&offset=99999999999999999999",
		"offset=9223372036854775807&limit=500", "offset=+3", "limit=1e2", "offset=1&offset=2", "%zz", ";"} {
		f.Add(s, "6543210fedcba98765432101", 7)
	}
	f.Add("", "6543210FEDCBA98765432101", 0)
	f.Add("", "../../etc/passwd", 0)
	f.Add("", "", 0)
	f.Fuzz(func(t *testing.T, rawQuery, id string, n int) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/api/v1/projects", RawQuery: rawQuery}, Header: http.Header{}}
		r.SetPathValue("projectId", id)
		if got, err := idParam(r, "projectId"); err != nil {
			assertNative400(t, id, err)
		} else if got != id || !ferry.ValidID(got) {
			t.Fatalf("id %q accepted as %q", id, got)
		}
		p, err := paging(r)
		if err != nil {
			assertNative400(t, rawQuery, err)
			return
		}
		if p.offset < 0 || p.limit < 1 || p.limit > MaxLimit {
			t.Fatalf("%q: page %+v", rawQuery, p)
		}
		all := make([]int, max(0, n%2000))
		items, total := pageSlice(all, p)
		if total != len(all) || len(items) > p.limit || len(items) > 0 && p.offset >= len(all) {
			t.Fatalf("%q over %d items: %d items, total %d", rawQuery, len(all), len(items), total)
		}
		l := newList(items, total, p)
		if l.Items == nil || l.Offset != p.offset || l.Limit != p.limit {
			t.Fatalf("%q: list %+v", rawQuery, l)
		}
		// The page's own parameters, sent again, give the same page.
		q := url.Values{"offset": {fmt.Sprint(p.offset)}, "limit": {fmt.Sprint(p.limit)}}
		p2, err := paging(&http.Request{URL: &url.URL{RawQuery: q.Encode()}})
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("%q: page %+v, again %+v (%v)", rawQuery, p, p2, err)
		}
	})
}
