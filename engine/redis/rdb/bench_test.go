package rdb

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkParseSmallKeys parses 100k small string keys and 10k small
// listpack hashes; reports keys/s besides MB/s.
func BenchmarkParseSmallKeys(b *testing.B) {
	w := newRDB(10)
	w.byte(opSelectDB).len(0)
	lp := listpack("field1", "value1", "field2", int64(12345), "field3", "some longer value here")
	for i := 0; i < 100000; i++ {
		w.key(TypeString, fmt.Sprintf("key:%08d", i)).str(fmt.Sprintf("value-%d-xxxxxxxxxxxxxxxx", i))
		if i%10 == 0 {
			w.key(TypeHashListpack, fmt.Sprintf("hash:%08d", i)).str(string(lp))
		}
	}
	data := w.eof(true)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var keys int64
	for i := 0; i < b.N; i++ {
		info, err := Parse(bytes.NewReader(data), NopHandler{})
		if err != nil {
			b.Fatal(err)
		}
		keys += info.Keys
	}
	b.ReportMetric(float64(keys)/b.Elapsed().Seconds(), "keys/s")
}
