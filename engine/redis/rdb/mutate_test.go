package rdb

import (
	"bytes"
	"math/rand"
	"testing"
	"time"
)

func TestRandomMutations(t *testing.T) {
	seeds := [][]byte{oldFile().eof(false), newFile().eof(false)}
	rnd := rand.New(rand.NewSource(1))
	var worst time.Duration
	var worstIn []byte
	for i := 0; i < 20000; i++ {
		d := append([]byte{}, seeds[i%2]...)
		for k := 0; k < 1+rnd.Intn(4) && len(d) > 1; k++ {
			switch rnd.Intn(3) {
			case 0:
				d[rnd.Intn(len(d))] = byte(rnd.Intn(256))
			case 1:
				p := rnd.Intn(len(d))
				d = d[:p+copy(d[p:], d[p+1:])]
			case 2:
				d = d[:rnd.Intn(len(d))]
			}
		}
		st := time.Now()
		ParseOptions(bytes.NewReader(d), &touch{}, Options{CaptureRaw: true, MaxRawBytes: 4096})
		if e := time.Since(st); e > worst {
			worst, worstIn = e, d
		}
	}
	if worst > time.Second {
		t.Errorf("slowest mutated input took %v (%d bytes)", worst, len(worstIn))
	}
}
