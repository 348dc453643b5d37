package httpauth

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

const goodSig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseSDKAuthorization(t *testing.T) {
	ok := "SDK-HMAC-SHA256 Access=ak1, SignedHeaders=user-agent;x-project-id;x-sdk-date, Signature=" + goodSig
	a, err := ParseSDKAuthorization(ok)
	if err != nil || a.Access != "ak1" || strings.Join(a.SignedHeaders, ";") != "user-agent;x-project-id;x-sdk-date" || len(a.Signature) != 32 {
		t.Fatalf("%+v %v", a, err)
	}
	for _, tc := range []struct{ h, want string }{
		{"Basic abc", "not of scheme"},
		{"SDK-HMAC-SHA256", "not of scheme"},
		{"SDK-HMAC-SHA256 Access=ak, SignedHeaders=x-sdk-date", "lack Signature"},
		{"SDK-HMAC-SHA256 SignedHeaders=x-sdk-date, Signature=" + goodSig, "lack Access"},
		{"SDK-HMAC-SHA256 Access=ak, Signature=" + goodSig, "lack SignedHeaders"},
		{"SDK-HMAC-SHA256 Access=ak, Access=b, SignedHeaders=x-sdk-date, Signature=" + goodSig, "twice"},
		{"SDK-HMAC-SHA256 Access=ak, SignedHeaders=x-sdk-date, Signature=abc", "64 hex"},
		{"SDK-HMAC-SHA256 Access=ak, SignedHeaders=x-sdk-date, Signature=" + strings.Repeat("z", 64), "64 hex"},
		{"SDK-HMAC-SHA256 Access=ak, SignedHeaders=X-Sdk-Date, Signature=" + goodSig, "malformed signed header"},
		{"SDK-HMAC-SHA256 Access=ak, SignedHeaders=a;;b, Signature=" + goodSig, "malformed signed header"},
		{"SDK-HMAC-SHA256 Access=ak, SignedHeaders=a;a, Signature=" + goodSig, "listed twice"},
		{"SDK-HMAC-SHA256 Access=ak, SignedHeaders=" + strings.Repeat("a;", 70) + "b, Signature=" + goodSig, "more than"},
		{"SDK-HMAC-SHA256 Access=ak, Foo=1, SignedHeaders=a, Signature=" + goodSig, "unknown"},
		{"SDK-HMAC-SHA256 Access, SignedHeaders=a, Signature=" + goodSig, "malformed"},
		{"SDK-HMAC-SHA256 " + strings.Repeat("x", 9000), "exceeds"},
	} {
		_, err := ParseSDKAuthorization(tc.h)
		if err == nil || ferry.ErrorCode(err) != ferry.EUNAUTHORIZED || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60q: err %v, want EUNAUTHORIZED containing %q", tc.h, err, tc.want)
		}
	}
}

func TestSDKCanonicalForms(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/v2/p/migration-tasks", "/v2/p/migration-tasks/"},
		{"/", "/"},
		{"", "/"},
		{"/a b/c~d_e.f-g/", "/a%20b/c~d_e.f-g/"},
		{"/x/%", "/x/%25/"},
	} {
		if got := SDKCanonicalURI(tc.in); got != tc.want {
			t.Errorf("URI %q = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"offset=0&limit=10", "limit=10&offset=0"},
		{"name=a%20b&name=A", "name=A&name=a%20b"},
		{"flag&x=1", "flag=&x=1"},
		{"k%2Bv=1%2B2", "k%2Bv=1%2B2"},
	} {
		got, err := SDKCanonicalQuery(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("query %q = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := SDKCanonicalQuery("a=%zz"); err == nil {
		t.Error("a malformed query was accepted")
	}
}

func TestReplayGuard(t *testing.T) {
	g := newReplayGuard(30*time.Minute, 3)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s1, s2, s3, s4 := []byte{1}, []byte{2}, []byte{3}, []byte{4}
	steps := []struct {
		sig  []byte
		at   time.Duration
		want replayResult
	}{
		{s1, 0, replayNew},
		{s1, time.Second, replaySeen},
		{s2, 29 * time.Minute, replayNew},
		{s2, 31 * time.Minute, replaySeen}, // rotated: s1, s2 now in prev
		{s1, 59 * time.Minute, replaySeen},
		{s3, 60 * time.Minute, replayNew},
		{s4, 60 * time.Minute, replayFull}, // cap 3: s1, s2 (prev), s3
		{s2, 62 * time.Minute, replayNew},  // rotated at 62: s1, s2 dropped (31 min generation older than 30 min)
		{s1, 200 * time.Minute, replayNew},
	}
	for i, st := range steps {
		if got := g.check(st.sig, t0.Add(st.at)); got != st.want {
			t.Fatalf("step %d: %v, want %v", i, got, st.want)
		}
	}
}

// FuzzParseSDKAuthorization: the parser never panics, and what it accepts
// is well formed (an Access without separators, 1..64 lower-case unique
// header names, a 32-byte signature).
func FuzzParseSDKAuthorization(f *testing.F) {
	f.Add("SDK-HMAC-SHA256 Access=ak1, SignedHeaders=user-agent;x-project-id;x-sdk-date, Signature=" + goodSig)
	f.Add("SDK-HMAC-SHA256 Access=a,SignedHeaders=x,Signature=" + goodSig + ",")
	f.Add("sdk-hmac-sha256 access=a, signedheaders=host, signature=" + strings.ToUpper(goodSig))
	f.Add("SDK-HMAC-SHA256 Access==, SignedHeaders=;, Signature==")
	f.Add("Digest username=x")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseSDKAuthorization(h)
		if err != nil {
			if a != nil || ferry.ErrorCode(err) != ferry.EUNAUTHORIZED {
				t.Fatalf("error %v with %+v", err, a)
			}
			return
		}
		if a.Access == "" || strings.ContainsAny(a.Access, " ,;") || len(a.Signature) != 32 || len(a.SignedHeaders) == 0 || len(a.SignedHeaders) > maxSignedHeaders {
			t.Fatalf("accepted a malformed header: %+v", a)
		}
		seen := map[string]bool{}
		for _, n := range a.SignedHeaders {
			if n == "" || n != strings.ToLower(n) || seen[n] || !headerToken(n) {
				t.Fatalf("bad signed header %q in %+v", n, a)
			}
			seen[n] = true
		}
	})
}
