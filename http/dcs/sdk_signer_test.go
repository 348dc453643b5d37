package dcs

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/request"

	"github.com/ferrymigrate/ferry"
)

// signedReq is a request signed by the SDK's own signer (core/auth/signer),
// kept as parts so that a test can tamper with one and send it (again).
type signedReq struct {
	method, url string
	header      http.Header
	body        []byte
}

// sign builds a request the way the SDK's HTTP client does and signs it
// with the SDK's signer.
func (e *sdkEnv) sign(method, path string, query map[string]string, body string, extra map[string]string, ak, sk string) *signedReq {
	e.t.Helper()
	b := request.NewHttpRequestBuilder().WithEndpoint(e.srv.URL).WithMethod(method).WithPath(path).
		AddHeaderParam("User-Agent", "huaweicloud-usdk-go/3.0").AddHeaderParam("X-Project-Id", e.proj.ID)
	if body != "" {
		b.WithBody("", body).AddHeaderParam("Content-Type", "application/json;charset=UTF-8")
	}
	for k, v := range query {
		b.AddQueryParam(k, reflect.ValueOf(v))
	}
	for k, v := range extra {
		b.AddHeaderParam(k, v)
	}
	req := b.Build()
	add, err := signer.Sign(req, ak, sk)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range add {
		req.AddHeaderParam(k, v)
	}
	hr, err := req.ConvertRequest()
	if err != nil {
		e.t.Fatal(err)
	}
	raw := []byte{}
	if hr.Body != nil {
		raw, _ = io.ReadAll(hr.Body)
	}
	return &signedReq{method: hr.Method, url: hr.URL.String(), header: hr.Header.Clone(), body: raw}
}

func (s *signedReq) clone() *signedReq {
	c := *s
	c.header = s.header.Clone()
	c.body = append([]byte(nil), s.body...)
	return &c
}

// send sends s and decodes the JSON answer.
func (e *sdkEnv) send(s *signedReq) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(s.method, s.url, bytes.NewReader(s.body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = s.header.Clone()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("answer is not JSON: %s", raw)
	}
	if strings.Contains(string(raw), e.priv) {
		e.t.Fatalf("an answer contains the SK: %s", raw)
	}
	return res.StatusCode, out
}

func (e *sdkEnv) expect401(name string, s *signedReq, msgPart string) {
	e.t.Helper()
	status, body := e.send(s)
	if status != http.StatusUnauthorized {
		e.t.Fatalf("%s: status %d, want 401: %v", name, status, body)
	}
	assertKeys(e.t, body, "error_msg", "error_code", "error_ext_msg")
	if body["error_code"] != CodeUnauthorized || !strings.Contains(body["error_msg"].(string), msgPart) {
		e.t.Fatalf("%s: %v, want DCS.4010 containing %q", name, body, msgPart)
	}
}

func TestSDKSignatureRefusals(t *testing.T) {
	e := newSDKEnv(t)
	list := "/v2/" + e.proj.ID + "/migration-tasks"
	stop := "/v2/" + e.proj.ID + "/migration-task/batch-stop"
	q := map[string]string{"offset": "0", "limit": "5", "name": "a b+c"}
	stopBody := `{"migration_tasks":["0123456789abcdef01234567"]}`

	// The untouched request passes, once.
	good := e.sign("GET", list, q, "", nil, e.pub, e.priv)
	if status, body := e.send(good); status != 200 || body["count"] != 0.0 {
		t.Fatalf("signed list: %d %v", status, body)
	}
	e.expect401("replayed signature", good.clone(), "replayed request")
	post := e.sign("POST", stop, nil, stopBody, nil, e.pub, e.priv)
	if status, body := e.send(post.clone()); status != 200 || body["migration_tasks"] == nil {
		t.Fatalf("signed batch-stop: %d %v", status, body)
	}

	// Tampering with what the signature covers.
	s := e.sign("GET", list, q, "", map[string]string{"X-Extra": "1"}, e.pub, e.priv)
	s.header.Set("User-Agent", "evil/1.0")
	e.expect401("tampered signed header", s, "signature does not match")
	s = e.sign("GET", list, q, "", nil, e.pub, e.priv)
	s.header.Set("X-Project-Id", "0123456789abcdef01234567")
	e.expect401("tampered project header", s, "signature does not match")
	s = e.sign("GET", list, q, "", map[string]string{"X-Extra": "1"}, e.pub, e.priv)
	s.header.Del("X-Extra")
	e.expect401("signed header removed", s, "signed header x-extra is not in the request")
	s = e.sign("GET", list, q, "", nil, e.pub, e.priv)
	s.url = strings.Replace(s.url, e.proj.ID, "0123456789abcdef01234567", 1)
	e.expect401("tampered path", s, "signature does not match")
	s = e.sign("GET", list, q, "", nil, e.pub, e.priv)
	s.url = strings.Replace(s.url, "limit=5", "limit=6", 1)
	e.expect401("tampered query", s, "signature does not match")
	s = e.sign("POST", stop, nil, stopBody, nil, e.pub, e.priv)
	s.body = []byte(`{"migration_tasks":["0123456789abcdef01234568"]}`)
	e.expect401("tampered body", s, "signature does not match")
	s = e.sign("POST", stop, nil, stopBody, map[string]string{"X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"}, e.pub, e.priv)
	e.expect401("unsigned payload with a body", s, "requires a signed payload")
	s = e.sign("GET", list, q, "", nil, e.pub, e.priv)
	s.method = "DELETE"
	e.expect401("tampered method", s, "signature does not match")

	// Dates.
	stale := time.Now().Add(-16 * time.Minute).UTC().Format("20060102T150405Z")
	e.expect401("stale X-Sdk-Date", e.sign("GET", list, q, "", map[string]string{"X-Sdk-Date": stale}, e.pub, e.priv), "away from the server's clock")
	future := time.Now().Add(16 * time.Minute).UTC().Format("20060102T150405Z")
	e.expect401("future X-Sdk-Date", e.sign("GET", list, q, "", map[string]string{"X-Sdk-Date": future}, e.pub, e.priv), "away from the server's clock")
	s = e.sign("GET", list, q, "", nil, e.pub, e.priv)
	s.header.Set("Authorization", strings.Replace(s.header.Get("Authorization"), ";x-sdk-date", "", 1))
	e.expect401("unsigned X-Sdk-Date", s, "X-Sdk-Date must be a signed header")
	// Still inside the window: accepted.
	recent := time.Now().Add(-10 * time.Minute).UTC().Format("20060102T150405Z")
	if status, _ := e.send(e.sign("GET", list, q, "", map[string]string{"X-Sdk-Date": recent}, e.pub, e.priv)); status != 200 {
		t.Fatalf("a 10-minute-old date: %d", status)
	}

	// Keys.
	e.expect401("wrong SK", e.sign("GET", list, q, "", nil, e.pub, strings.Repeat("f", len(e.priv))), "signature does not match")
	e.expect401("unknown AK", e.sign("GET", list, q, "", nil, "nosuchkey", e.priv), "signature does not match")
	s = e.sign("GET", list, q, "", nil, e.pub, e.priv)
	s.header.Set("Authorization", "SDK-HMAC-SHA256 Access="+e.pub+", SignedHeaders=x-sdk-date, Signature=xyz")
	e.expect401("malformed Authorization", s, "Signature must be 64 hex digits")

	// A key from before AK/SK signing (no signing state) is told to be
	// replaced; its other credentials still work.
	k, priv, err := e.svc.CreateAPIKey(e.ctx, e.proj.OrgID, e.proj.ID, ferry.RoleGroupOwner, "old")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE api_keys SET signing_state = '' WHERE id = ?`, k.ID); err != nil {
		t.Fatal(err)
	}
	e.expect401("key without signing state", e.sign("GET", list, q, "", nil, k.PublicKey, priv), "create a new API key")
	s = e.sign("GET", list, q, "", nil, k.PublicKey, priv)
	s.header.Del("Authorization")
	s.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(k.PublicKey+":"+priv)))
	if status, body := e.send(s); status != 200 {
		t.Fatalf("basic with the old key: %d %v", status, body)
	}
}
