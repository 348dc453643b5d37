package rdb

import (
	"bytes"
	"testing"
	"time"
)

// touch reads every byte handed to it, so that a slice pointing outside its
// buffer shows up.
type touch struct {
	NopHandler
	sum int
}

func (h *touch) add(b []byte) {
	for _, c := range b {
		h.sum += int(c)
	}
}

func (h *touch) Aux(k, v []byte) error { h.add(k); h.add(v); return nil }
func (h *touch) Function(b []byte) error {
	h.add(b)
	return nil
}
func (h *touch) Chunk(c *Chunk) error {
	h.add(c.Key)
	h.add(c.Value)
	h.add(c.Raw)
	for _, e := range c.Elems {
		h.add(e)
	}
	for _, m := range c.Members {
		h.add(m.Member)
	}
	for _, f := range c.Fields {
		h.add(f.Field)
		h.add(f.Value)
	}
	for _, e := range c.Entries {
		for _, f := range e.Fields {
			h.add(f)
		}
	}
	if c.Stream != nil {
		for _, g := range c.Stream.Groups {
			h.add(g.Name)
			for _, p := range g.PEL {
				h.add(p.Consumer)
			}
		}
	}
	return nil
}

func FuzzParse(f *testing.F) {
	f.Add(oldFileSized(false).eof(true))
	f.Add(oldFileSized(false).eof(false))
	f.Add(newFileSized(false).eof(true))
	f.Add(newFileSized(false).eof(false))
	w := newRDB(10)
	w.key(TypeString, "k").lzfStr("abcabcabcabcabcabc")
	f.Add(w.eof(false))
	f.Add(DumpPayload([]byte("\x00\x05hello"), 10))
	f.Add(append(append([]byte{}, newFileSized(false).raws["st:v3"]...), 12, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		o := Options{CaptureRaw: true, MaxRawBytes: 4096}
		if len(data) > 0 && data[len(data)-1]&1 == 1 {
			o.MaxChunkElems, o.MaxChunkBytes = 2, 16
		}
		tm := time.AfterFunc(20*time.Second, func() { panic("FuzzParse: one parse took over 20s (hang?)") })
		defer tm.Stop()
		h := &touch{}
		info, err := ParseOptions(bytes.NewReader(data), h, o)
		if info.Bytes > int64(len(data)) {
			t.Fatalf("consumed %d of %d bytes", info.Bytes, len(data))
		}
		if err == nil && info.Version >= 5 && info.Bytes < 18 {
			t.Fatalf("success after %d bytes", info.Bytes)
		}
		// the same bytes as a DUMP payload
		_ = ParseDump(data, []byte("k"), h, o)
	})
}
