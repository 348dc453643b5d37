package rdb

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// heapWatch records the peak live heap seen at chunk boundaries.
type heapWatch struct {
	NopHandler
	peak   uint64
	chunks map[string]int
	elems  map[string]int
}

func (h *heapWatch) Chunk(c *Chunk) error {
	k := string(c.Key)
	h.chunks[k]++
	h.elems[k] += len(c.Elems) + len(c.Fields)
	if h.chunks[k]%16 == 1 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		h.peak = max(h.peak, m.HeapAlloc)
	}
	return nil
}

// TestBigKeysBoundedMemory parses a 1M-element list and a ~50 MB hash while
// watching the live heap: it must stay far below the size of either key.
func TestBigKeysBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("big keys: skipped in -short")
	}
	addr := startRedis(t)
	c := newClient(t, addr, 0)
	ctx := context.Background()
	start := time.Now()
	pipe := c.Pipeline()
	batch := make([]any, 0, 10000)
	for i := 0; i < 1000000; i++ {
		batch = append(batch, i)
		if len(batch) == cap(batch) {
			pipe.RPush(ctx, "biglist", batch...)
			batch = batch[:0]
		}
	}
	val := strings.Repeat("v", 100)
	for i := 0; i < 500000; i += 5000 {
		args := make([]any, 0, 10000)
		for j := i; j < i+5000; j++ {
			args = append(args, fmt.Sprintf("field:%07d", j), val)
		}
		pipe.HSet(ctx, "bighash", args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	path := saveRDB(t, addr)
	st, _ := os.Stat(path)
	t.Logf("populated and saved in %v, RDB %d MB", time.Since(start), st.Size()>>20)

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	h := &heapWatch{chunks: map[string]int{}, elems: map[string]int{}}
	start = time.Now()
	if _, err := Parse(bufio.NewReader(f), h); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("parsed in %v (%.0f MB/s); peak heap %d MB over a base of %d MB; chunks %v", el,
		float64(st.Size())/el.Seconds()/1e6, (h.peak-min(h.peak, base.HeapAlloc))>>20, base.HeapAlloc>>20, h.chunks)
	if h.elems["biglist"] != 1000000 || h.elems["bighash"] != 500000 {
		t.Fatalf("elements %v", h.elems)
	}
	if grow := h.peak - min(h.peak, base.HeapAlloc); grow > 16<<20 {
		t.Fatalf("live heap grew by %d MB while parsing", grow>>20)
	}
}
