package ferry

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
)

func TestSignHMACMatchesStandardHMAC(t *testing.T) {
	for _, private := range []string{"0123456789abcdef0123456789abcdef", "", "k", strings.Repeat("x", 64), strings.Repeat("y", 65), strings.Repeat("z", 200)} {
		k := &APIKey{PublicKey: "pub"}
		k.SetSecret(private)
		if !k.CanSign() {
			t.Fatalf("key %q: no signing state", private)
		}
		if strings.Contains(k.SigningState, private) && private != "" {
			t.Fatalf("signing state contains the private key")
		}
		for _, msg := range []string{"", "SDK-HMAC-SHA256\n20240101T000000Z\nabc", strings.Repeat("m", 1000)} {
			m := hmac.New(sha256.New, []byte(private))
			m.Write([]byte(msg))
			want := m.Sum(nil)
			got, ok := k.SignHMAC([]byte(msg))
			if !ok || !hmac.Equal(got, want) {
				t.Fatalf("key %q msg %q: SignHMAC = %x, want %x", private, msg, got, want)
			}
			if !k.VerifyHMAC([]byte(msg), want) {
				t.Fatal("VerifyHMAC refused the right MAC")
			}
			bad := append([]byte(nil), want...)
			bad[0] ^= 1
			if k.VerifyHMAC([]byte(msg), bad) || k.VerifyHMAC([]byte(msg), want[:31]) {
				t.Fatal("VerifyHMAC accepted a wrong MAC")
			}
		}
	}
}

func TestSignHMACWithoutState(t *testing.T) {
	for _, st := range []string{"", "hs256v1:", "hs256v1:zz.zz", "hs256v1:00.00", "other"} {
		k := &APIKey{SigningState: st}
		if _, ok := k.SignHMAC([]byte("m")); ok {
			t.Fatalf("state %q: SignHMAC succeeded", st)
		}
		if k.VerifyHMAC([]byte("m"), make([]byte, 32)) {
			t.Fatalf("state %q: VerifyHMAC succeeded", st)
		}
	}
}
