package resp

import (
	"bytes"
	"testing"
)

func BenchmarkReadCommand(b *testing.B) {
	var buf []byte
	for i := 0; i < 1000; i++ {
		buf = AppendCommandString(buf, "SET", "key:000000123", "value-value-value-value")
	}
	b.SetBytes(int64(len(buf)))
	rd := bytes.NewReader(buf)
	for i := 0; i < b.N; i++ {
		rd.Reset(buf)
		r := NewReader(rd)
		for j := 0; j < 1000; j++ {
			if _, err := r.ReadCommand(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "cmds/s")
}
