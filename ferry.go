// Package ferry is the domain of the ferry live data migration service: jobs,
// steps, states, checkpoints, progress, endpoints, tenants and keys. It knows
// no HTTP and no database driver; adapters (stores, engines, API dialects)
// sit around it in their own packages.
package ferry

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"regexp"
	"sync/atomic"
	"time"
)

// Version is the build version reported by the service.
var Version = "0.1.0-dev"

var idPattern = regexp.MustCompile(`^([a-f0-9]{24})$`)

var idCounter atomic.Uint32

func init() {
	var b [4]byte
	_, _ = rand.Read(b[:])
	idCounter.Store(binary.BigEndian.Uint32(b[:]))
}

// NewID returns a new 24-hex identifier shaped like a MongoDB ObjectId
// (4 bytes of seconds, 5 random bytes, 3 bytes of counter), the id form all
// of ferry's resources use.
func NewID() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(time.Now().Unix()))
	_, _ = rand.Read(b[4:9])
	c := idCounter.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s is a 24-hex identifier.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// RandomHex returns n random bytes hex-encoded.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
