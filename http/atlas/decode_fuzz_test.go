package atlas

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"

	"github.com/ferrymigrate/ferry"
)

// assertAtlas400 checks err is an EINVALID error rendered as Atlas's 400
// ApiError body.
func assertAtlas400(t *testing.T, input any, err error) {
	t.Helper()
	if fe := ferry.AsError(err); fe == nil || fe.Code != ferry.EINVALID {
		t.Fatalf("%q: error is not EINVALID: %#v", input, err)
	}
	rec := httptest.NewRecorder()
	writeError(rec, nil, httptest.NewRequest("POST", "/", nil), opts{}, err)
	var ae map[string]any
	if rec.Code != http.StatusBadRequest || json.Unmarshal(rec.Body.Bytes(), &ae) != nil {
		t.Fatalf("%q: answer %d %s", input, rec.Code, rec.Body.Bytes())
	}
	if ae["error"] != float64(400) || ae["errorCode"] == "" || ae["reason"] != "Bad Request" || ae["detail"] == "" {
		t.Fatalf("%q: error body %v", input, ae)
	}
}

// FuzzPipelineBody feeds arbitrary bodies of POST/PATCH .../pipelines to the
// strict decoder and the mapping onto a pipeline: no panic; a rejected body
// is Atlas's 400; an accepted one maps to a pipeline whose answer, sent back
// as a body (what a client that fetched it does), is accepted and maps to
// the same pipeline.
func FuzzPipelineBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"p1","source":{"type":"ON_DEMAND_CPS","clusterName":"Cluster0","databaseName":"shop","collectionName":"orders"},"sink":{"type":"DLS","metadataProvider":"AWS","metadataRegion":"us-east-1","partitionFields":[{"fieldName":"a","order":0}]},"transformations":[{"field":"secret","type":"EXCLUDE"}],"datasetRetentionPolicy":{"units":"DAYS","value":7}}`,
		`{"_id":"6543210fedcba98765432101","createdDate":"x","groupId":"y","state":"ACTIVE","name":"p","source":{"groupId":"z","policyItemId":"6543210fedcba98765432101"}}`,
		`{"source":{"policyItemId":"nothex"}}`, `{"source":{"policyItemId":""}}`, `{"Name":"p"}`, `{"name":1}`, `{"sink":{"partitionFields":[{"fieldName":"a","order":"x"}]}}`,
		`{"sink":{"partitionFields":[{"fieldName":"a","extra":1}]}}`, `{"transformations":null}`, `{"datasetRetentionPolicy":{"value":1e99}}`,
		`{"backupFrequencyType":"DAILY","datasetRetentionPolicy":{"lastModifiedDate":"2024-01-01T00:00:00Z","units":"WEEKS"}}`,
		``, `null`, `[]`, `{}`, `{"a":1}{`, "{\"name\":\"\xff\"}", `{"name":"a","name":"b"}`,
	} {
		f.Add([]byte(s))
	}
	const gid = "6543210fedcba98765432101"
	f.Fuzz(func(t *testing.T, body []byte) {
		var b pipelineBody
		if err := decodeStrict(body, &b); err != nil {
			assertAtlas400(t, body, err)
			return
		}
		p := &ferry.Pipeline{ProjectID: gid}
		if err := b.apply(p); err != nil {
			assertAtlas400(t, body, err)
			return
		}
		v := pipelineViewOf(p)
		sent, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var b2 pipelineBody
		if err := decodeStrict(sent, &b2); err != nil {
			t.Fatalf("%q: the answer %s is refused as a body: %v", body, sent, err)
		}
		p2 := &ferry.Pipeline{ProjectID: gid}
		if err := b2.apply(p2); err != nil {
			t.Fatalf("%q: the answer %s does not apply: %v", body, sent, err)
		}
		if v2 := pipelineViewOf(p2); !reflect.DeepEqual(v, v2) {
			t.Fatalf("%q: pipeline %+v, sent back %+v", body, v, v2)
		}
	})
}

// FuzzGroupBody: the createGroup/updateGroup body (the Go SDK's Group).
// No panic; a rejected body is Atlas's 400; an accepted one, encoded
// again, decodes to the same value; attributes are matched exactly
// (encoding/json alone would take "NAME" for "name").
func FuzzGroupBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"proj","orgId":"6543210fedcba98765432101","clusterCount":0,"created":"2024-01-01T00:00:00Z","links":[{"href":"h","rel":"self"}],"withDefaultAlertsSettings":true}`,
		`{"name":"proj","tags":[{"key":"k","value":"v"}]}`, `{"NAME":"x"}`, `{"name":"x","links":[{"href":1}]}`, `{"links":[{"other":1}]}`,
		`{"clusterCount":1.5}`, `{"clusterCount":9223372036854775808}`, `{"regionUsageRestrictions":null}`, ``, `1`, `"x"`, `{"name":"a"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var b groupBody
		if err := decodeStrict(body, &b); err != nil {
			assertAtlas400(t, body, err)
			return
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatalf("%q accepted, but is no JSON object: %v", body, err)
		}
		fields := jsonFields(reflect.TypeOf(b))
		for k := range raw {
			if _, ok := fields[k]; !ok {
				t.Fatalf("%q: unknown attribute %q accepted", body, k)
			}
		}
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var b2 groupBody
		if err := decodeStrict(enc, &b2); err != nil || !reflect.DeepEqual(b, b2) {
			t.Fatalf("%q decoded to %+v; encoded %s decoded to %+v (%v)", body, b, enc, b2, err)
		}
	})
}

// FuzzListQuery feeds arbitrary query strings to Atlas's list parameters
// (itemsPerPage, pageNum, includeCount, envelope, pretty): no panic; a
// refused one is Atlas's 400; an accepted page is in range, and the
// self/next/previous links it builds parse back to their pages.
func FuzzListQuery(f *testing.F) {
	for _, s := range []string{"", "itemsPerPage=10&pageNum=3", "itemsPerPage=0", "itemsPerPage=501", "pageNum=-1", "pageNum=1000001",
		"pageNum=99999999999999999999", "itemsPerPage=+5", "includeCount=FALSE", "includeCount=yes", "envelope=true&pretty=true",
		"pageNum=2&itemsPerPage=500&name=a%20b&x=%zz", "pageNum=1&pageNum=2", ";;&&==", "itemsPerPage=1e2"} {
		f.Add(s, 1000)
	}
	f.Add("pageNum=1000000&itemsPerPage=1", 9_999_999)
	f.Fuzz(func(t *testing.T, rawQuery string, total int) {
		r := &http.Request{Method: "GET", Host: "ferry.test", URL: &url.URL{Path: apiPrefix + "/orgs", RawQuery: rawQuery}, Header: http.Header{}}
		if _, err := parseOpts(r); err != nil {
			assertAtlas400(t, rawQuery, err)
		}
		p, err := parsePage(r)
		if err != nil {
			assertAtlas400(t, rawQuery, err)
			return
		}
		if p.size < 1 || p.size > maxItemsPerPage || p.num < 1 || p.num > maxPageNum || p.offset() < 0 {
			t.Fatalf("%q: page %+v", rawQuery, p)
		}
		total = max(0, total%10_000_000)
		l := newList(r, p, []int{}, total)
		if (l.TotalCount != nil) != p.includeCount {
			t.Fatalf("%q: includeCount %v, totalCount %v", rawQuery, p.includeCount, l.TotalCount)
		}
		want := map[string]int{"self": p.num, "previous": p.num - 1, "next": p.num + 1}
		for _, ln := range l.Links {
			u, err := url.Parse(ln.Href)
			if err != nil || u.Host != "ferry.test" || u.Path != r.URL.Path {
				t.Fatalf("%q: link %q (%v)", rawQuery, ln.Href, err)
			}
			p2, err := parsePage(&http.Request{URL: u})
			if err != nil || p2.num != want[ln.Rel] || p2.size != p.size || p2.includeCount != p.includeCount {
				t.Fatalf("%q: %s link %q parses to %+v (%v)", rawQuery, ln.Rel, ln.Href, p2, err)
			}
		}
	})
}
