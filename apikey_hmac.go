package ferry

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"encoding/hex"
	"hash"
	"strings"
)

// HMAC-SHA256 signing keys (Huawei Cloud's SDK-HMAC-SHA256 AK/SK scheme,
// where AK is an API key's public key and SK its private key).
//
// Checking an HMAC needs the key, and ferry keeps only hashes of private
// keys. So when a key is created, ferry keeps the two SHA-256 states HMAC
// computes from the key before it reads the message (RFC 2104, section 4:
// the inner state after hashing key XOR ipad, the outer one after key XOR
// opad). From them it computes HMAC-SHA256(private, message) for any
// message without the private key. They do not give the private key back
// (Basic, Digest and IAM token calls still need it), but they are as strong
// as the key for signing: they are a secret like the Digest HA1, kept in a
// column of their own and never returned by an API.
//
// Keys created before this existed have no states: AK/SK signing answers
// that such a key must be replaced.

// hmacStatePrefix tags the stored value's format (version 1: hex of the
// inner state, ".", hex of the outer state, each a marshalled crypto/sha256
// digest).
const hmacStatePrefix = "hs256v1:"

// HMACSigningState returns the stored form of private's HMAC-SHA256 states.
func HMACSigningState(private string) string {
	key := []byte(private)
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	var ipad, opad [sha256.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	in, out := sha256.New(), sha256.New()
	in.Write(ipad[:])
	out.Write(opad[:])
	ib, err1 := in.(encoding.BinaryMarshaler).MarshalBinary()
	ob, err2 := out.(encoding.BinaryMarshaler).MarshalBinary()
	if err1 != nil || err2 != nil {
		return ""
	}
	return hmacStatePrefix + hex.EncodeToString(ib) + "." + hex.EncodeToString(ob)
}

func restoreState(s string) (hash.Hash, bool) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, false
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		return nil, false
	}
	return h, true
}

// CanSign reports whether k has HMAC signing states (keys created before
// AK/SK signing have none).
func (k *APIKey) CanSign() bool { return strings.HasPrefix(k.SigningState, hmacStatePrefix) }

// SignHMAC returns HMAC-SHA256(k's private key, msg), or false when k has
// no (or corrupt) signing states.
func (k *APIKey) SignHMAC(msg []byte) ([]byte, bool) {
	if !k.CanSign() {
		return nil, false
	}
	is, os, ok := strings.Cut(strings.TrimPrefix(k.SigningState, hmacStatePrefix), ".")
	if !ok {
		return nil, false
	}
	in, ok1 := restoreState(is)
	out, ok2 := restoreState(os)
	if !ok1 || !ok2 {
		return nil, false
	}
	in.Write(msg)
	out.Write(in.Sum(nil))
	return out.Sum(nil), true
}

// VerifyHMAC reports, in constant time, whether mac is k's HMAC-SHA256 of
// msg.
func (k *APIKey) VerifyHMAC(msg, mac []byte) bool {
	want, ok := k.SignHMAC(msg)
	if !ok || len(mac) != len(want) {
		return false
	}
	return subtle.ConstantTimeCompare(want, mac) == 1
}
