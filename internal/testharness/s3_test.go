package testharness

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestStartS3(t *testing.T) {
	endpoint, ak, sk := StartS3(t)
	if endpoint == "" || ak == "" || len(sk) < 20 {
		t.Fatalf("StartS3 = %q, %q, %q", endpoint, ak, sk)
	}
	// An unsigned request is refused the S3 way.
	res, err := http.Get("http://" + endpoint + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "<Error>") {
		t.Fatalf("unsigned ListBuckets: %d %s", res.StatusCode, b)
	}
}
