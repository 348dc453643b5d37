package rdb

import "testing"

func TestCRC64(t *testing.T) {
	if got := CRC64(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("CRC64 = %x", got)
	}
	// incremental == one shot, across the slicing-by-8 boundary
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i*7 + i/3)
	}
	want := CRC64(0, data)
	for split := 0; split < 20; split++ {
		if got := CRC64(CRC64(0, data[:split]), data[split:]); got != want {
			t.Fatalf("split %d: %x != %x", split, got, want)
		}
	}
	// bytewise reference
	c := uint64(0)
	for _, b := range data {
		c = crcTables[0][byte(c)^b] ^ c>>8
	}
	if c != want {
		t.Fatalf("bytewise %x != %x", c, want)
	}
}
