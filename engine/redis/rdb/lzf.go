package rdb

import "errors"

var errLZF = errors.New("corrupt LZF data")

// lzfMaxRatio bounds how much LZF can expand: the longest back reference
// (3 bytes) produces 264 bytes, so no valid stream expands more than 88x.
const lzfMaxRatio = 88

// lzfDecompress decompresses in (LZF format, as written by Redis's lzf_c.c)
// into out, which must have exactly the expected decompressed length. It
// returns an error unless the input decodes to exactly len(out) bytes.
func lzfDecompress(in, out []byte) error {
	ip, op := 0, 0
	for ip < len(in) {
		ctrl := int(in[ip])
		ip++
		if ctrl < 32 { // literal run of ctrl+1 bytes
			n := ctrl + 1
			if ip+n > len(in) || op+n > len(out) {
				return errLZF
			}
			copy(out[op:op+n], in[ip:ip+n])
			ip += n
			op += n
			continue
		}
		// back reference
		n := ctrl >> 5
		ref := op - (ctrl&0x1f)<<8 - 1
		if n == 7 {
			if ip >= len(in) {
				return errLZF
			}
			n += int(in[ip])
			ip++
		}
		if ip >= len(in) {
			return errLZF
		}
		ref -= int(in[ip])
		ip++
		n += 2
		if ref < 0 || op+n > len(out) {
			return errLZF
		}
		if ref+n <= op { // no overlap
			copy(out[op:op+n], out[ref:ref+n])
			op += n
		} else {
			for i := 0; i < n; i++ {
				out[op] = out[ref]
				op++
				ref++
			}
		}
	}
	if op != len(out) {
		return errLZF
	}
	return nil
}
