// Package grow reads announced lengths from untrusted input: a length an
// RDB file or a RESP reply claims is never allocated before its bytes
// arrive.
package grow

import "slices"

// step is the most appended before the bytes that make room for it arrive
// (doubling from there).
const step = 64 << 10

// Append appends n bytes to dst, read by fill into each slice it is given
// (fill fills it whole or fails). Memory grows with what actually arrived,
// whatever n claims; on an error, dst holds what was read before it.
func Append(dst []byte, n uint64, fill func([]byte) error) ([]byte, error) {
	for n > 0 {
		k := uint64(len(dst))
		if k < step {
			k = step
		}
		if k > n {
			k = n
		}
		l := len(dst)
		dst = slices.Grow(dst, int(k))[:l+int(k)]
		if err := fill(dst[l:]); err != nil {
			return dst[:l], err
		}
		n -= k
	}
	return dst, nil
}
