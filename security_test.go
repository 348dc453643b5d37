package ferry_test

import (
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

func TestValidateName(t *testing.T) {
	dec, _ := url.PathUnescape("e%2f%2e%2e")
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"Cluster0", true},
		{"my cluster-1_a.b", true},
		{"数据库 迁移", true},
		{"café", true},
		{"a.b.c", true},
		{strings.Repeat("x", ferry.MaxNameLen), true},
		{"", false},
		{"   ", false},
		{"a/b", false},
		{`a\b`, false},
		{"..", false},
		{"e/../../../../X", false},
		{"x..y", false},
		{dec, false},          // %2e%2e after the router decoded it
		{"e%2f%2e%2e", false}, // still encoded: checked decoded too
		{"%2e%2e", false},
		{"evil\u202Egpj.exe", false}, // RIGHT-TO-LEFT OVERRIDE
		{"a\u2066b", false},          // LEFT-TO-RIGHT ISOLATE
		{"a\u200Bb", false},          // ZERO WIDTH SPACE
		{"a\x00b", false},            // NUL
		{"a\nb", false},
		{"a\tb", false},
		{"a\x7fb", false},
		{"a\u2028b", false},
		{"bad\xffutf8", false},
		{strings.Repeat("x", ferry.MaxNameLen+1), false},
	} {
		err := ferry.ValidateName("name", tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil {
			e := ferry.AsError(err)
			if e == nil || e.Code != ferry.EINVALID || e.Field != "name" {
				t.Errorf("ValidateName(%q): %#v, want an EINVALID error on field name", tc.name, err)
			}
		}
	}
}

func TestRedactURI(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mongodb://admin:s3cret@h1:27017,h2:27017/db?replicaSet=rs0", "mongodb://admin:******@h1:27017,h2:27017/db?replicaSet=rs0"},
		{"mongodb+srv://u:p%40ss@cluster0.example.net/?retryWrites=true", "mongodb+srv://u:******@cluster0.example.net/?retryWrites=true"},
		{"mongodb://u:pa@ss@h/db", "mongodb://u:******@h/db"},
		{"redis://:hunter2@127.0.0.1:6379/0", "redis://:******@127.0.0.1:6379/0"},
		{"postgres://ferry:pw@db/ferry?sslmode=disable", "postgres://ferry:******@db/ferry?sslmode=disable"},
		{"mongodb://h/db?tlsCertificateKeyFilePassword=abc&authSource=admin", "mongodb://h/db?tlsCertificateKeyFilePassword=******&authSource=admin"},
		{"mongodb://user@h/db", "mongodb://user@h/db"},
		{"root:toor@tcp(127.0.0.1:3306)/shop?parseTime=true", "root:******@tcp(127.0.0.1:3306)/shop?parseTime=true"},
		{"host=db user=ferry password=secret dbname=x", "host=db user=ferry password=****** dbname=x"},
		{"plain value", "plain value"},
		{"", ""},
	} {
		if got := ferry.RedactURI(tc.in); got != tc.want {
			t.Errorf("RedactURI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := ferry.RedactText(`cannot connect to mongodb://a:topsecret@h:1/x: refused`); strings.Contains(got, "topsecret") {
		t.Errorf("RedactText left the password: %s", got)
	}
	e := ferry.Endpoint{Kind: ferry.KindMongoDB, Password: "p1", Options: map[string]string{"uri": "mongodb://u:p2@h/db", "sslKeyPassword": "p3", "replicaSet": "rs0"}}
	r := e.Redacted()
	if r.Password != "" || strings.Contains(r.Options["uri"], "p2") || r.Options["sslKeyPassword"] != "" || r.Options["replicaSet"] != "rs0" {
		t.Errorf("Redacted: %+v", r)
	}
	if e.Options["uri"] != "mongodb://u:p2@h/db" {
		t.Error("Redacted changed the original's options")
	}
}

func TestAESBox(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.key")
	box, created, err := ferry.LoadOrCreateSecretKey(path)
	if err != nil || !created {
		t.Fatalf("create key: %v %v", created, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", st.Mode().Perm(), err)
	}
	again, created, err := ferry.LoadOrCreateSecretKey(path)
	if err != nil || created || again.KeyID() != box.KeyID() {
		t.Fatalf("reload key: %v %v", created, err)
	}
	c1, err := box.Seal("hunter2")
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := box.Seal("hunter2")
	if !ferry.IsSealed(c1) || strings.Contains(c1, "hunter2") || c1 == c2 {
		t.Fatalf("sealed %q %q", c1, c2)
	}
	if p, err := again.Open(c1); err != nil || p != "hunter2" {
		t.Fatalf("open: %q %v", p, err)
	}
	// Garbled: one character of the ciphertext changed.
	b := []byte(c1)
	b[len(b)-3] ^= 1
	if _, err := box.Open(string(b)); err == nil {
		t.Fatal("a garbled value opened")
	}
	if _, err := box.Open("fsb1:" + box.KeyID() + ":!!"); err == nil {
		t.Fatal("a damaged value opened")
	}
	other, err := ferry.NewAESBox([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(c1); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Fatalf("other key: %v", err)
	}
	if _, err := box.Open("hunter2"); err == nil {
		t.Fatal("plaintext opened as a sealed value")
	}
	// A key file others can read is refused.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ferry.LoadSecretKey(path); err == nil {
		t.Fatal("a world-readable key file was used")
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("short"), 0o600)
	if _, err := ferry.LoadSecretKey(bad); err == nil {
		t.Fatal("a short key was used")
	}
}

func TestRedactLogAttr(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: ferry.RedactLogAttr}))
	log.Error("connect", "err", errors.New("dial mongodb://u:LogPw1@h:1/x: refused"), "uri", "redis://:LogPw2@h:6379", "dsn", "root:LogPw3@tcp(h:3306)/db")
	log.Info("cannot reach postgres://ferry:LogPw4@db/ferry")
	for _, pw := range []string{"LogPw1", "LogPw2", "LogPw3", "LogPw4"} {
		if strings.Contains(b.String(), pw) {
			t.Errorf("the log holds %s: %s", pw, b.String())
		}
	}
	if !strings.Contains(b.String(), "mongodb://u:******@h:1/x") {
		t.Errorf("the log lost the rest of the URI: %s", b.String())
	}
}
