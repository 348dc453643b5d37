package ferry

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretBox seals secrets (endpoint passwords) for storage at rest and
// opens them again. The stores never see a plaintext password when the
// Service's store is wrapped by SealStore.
type SecretBox interface {
	// Seal returns the ciphertext of plaintext, a printable string that
	// IsSealed recognizes.
	Seal(plaintext string) (string, error)
	// Open returns the plaintext of a sealed value. A value sealed with
	// another key or damaged is an error, never returned as it is.
	Open(sealed string) (string, error)
}

// sealedPrefix starts every sealed value: "fsb1:<key id>:<base64 of nonce
// and AES-256-GCM ciphertext>".
const sealedPrefix = "fsb1:"

// IsSealed reports whether s is a sealed value (of any key).
func IsSealed(s string) bool { return strings.HasPrefix(s, sealedPrefix) }

// SecretKeySize is the size of a SecretBox key (AES-256).
const SecretKeySize = 32

// AESBox is the SecretBox of ferry: AES-256-GCM with a random 96-bit nonce
// per value; the key's id (8 hex digits of its SHA-256) is in each value so
// that a value sealed with another key is told apart from a damaged one.
type AESBox struct {
	aead  cipher.AEAD
	keyID string
}

// NewAESBox returns the box of a 32-byte key.
func NewAESBox(key []byte) (*AESBox, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("secret key: %d bytes, want %d", len(key), SecretKeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	sum := sha256.Sum256(key)
	return &AESBox{aead: g, keyID: hex.EncodeToString(sum[:4])}, nil
}

// KeyID names the key (not secret: a digest prefix).
func (b *AESBox) KeyID() string { return b.keyID }

// Seal implements SecretBox. The empty string stays empty.
func (b *AESBox) Seal(plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	ct := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(b.keyID))
	return sealedPrefix + b.keyID + ":" + base64.RawStdEncoding.EncodeToString(ct), nil
}

// ErrSealedOtherKey is returned when a value was sealed with another key.
var ErrSealedOtherKey = errors.New("the secret was encrypted with another key (check --secret-key-file)")

// Open implements SecretBox.
func (b *AESBox) Open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", errors.New("open secret: not an encrypted value")
	}
	id, body, ok := strings.Cut(rest, ":")
	if !ok {
		return "", errors.New("open secret: damaged encrypted value (no key id)")
	}
	if id != b.keyID {
		return "", fmt.Errorf("open secret: key %s, this ferry has key %s: %w", id, b.keyID, ErrSealedOtherKey)
	}
	ct, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(ct) < b.aead.NonceSize()+b.aead.Overhead() {
		return "", errors.New("open secret: damaged encrypted value")
	}
	n := b.aead.NonceSize()
	pt, err := b.aead.Open(nil, ct[:n], ct[n:], []byte(b.keyID))
	if err != nil {
		return "", errors.New("open secret: damaged encrypted value (authentication failed)")
	}
	return string(pt), nil
}

// LoadSecretKey reads the key file at path: 64 hex digits (what
// CreateSecretKey writes) or 32 raw bytes. A file that others can read
// (any group or other permission bit) is refused.
func LoadSecretKey(path string) (*AESBox, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s has mode %04o: it must be readable by its owner only (chmod 600)", path, st.Mode().Perm())
	}
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	raw := buf[:n]
	var key []byte
	if t := strings.TrimSpace(string(raw)); len(t) == 2*SecretKeySize {
		if k, err := hex.DecodeString(t); err == nil {
			key = k
		}
	}
	if key == nil && len(raw) == SecretKeySize {
		key = raw
	}
	if key == nil {
		return nil, fmt.Errorf("secret key file %s: want %d hex digits or %d raw bytes", path, 2*SecretKeySize, SecretKeySize)
	}
	return NewAESBox(key)
}

// LoadOrCreateSecretKey reads the key file at path, creating it (mode
// 0600, 32 random bytes as hex) when it does not exist. created says so.
func LoadOrCreateSecretKey(path string) (box *AESBox, created bool, err error) {
	box, err = LoadSecretKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return box, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("secret key file: %w", err)
	}
	key := make([]byte, SecretKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first: use that one.
		box, err = LoadSecretKey(path)
		return box, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("secret key file: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("secret key file: %w", err)
	}
	box, err = NewAESBox(key)
	return box, true, err
}
