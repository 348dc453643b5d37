package redis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/enginetest"
	"github.com/ferrymigrate/ferry/engine/redis/internal/redistest"
)

// TestKillAgentMidFullAndMidIncremental runs the engine conformance suite:
// `ferry agent` processes are killed with SIGKILL during the full sync and
// during the incremental sync; the agents that take over resume (the full
// sync again, the incremental by partial resync) and the target ends equal
// to the source (DEBUG DIGEST).
func TestKillAgentMidFullAndMidIncremental(t *testing.T) {
	enginetest.Run(t, func(t *testing.T) *enginetest.Engine {
		e := redistest.NewEnv(t, "--repl-diskless-sync-delay", "0")
		ctx := context.Background()
		return &enginetest.Engine{
			Registry: e.Reg,
			Source:   ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Src}},
			Target:   ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{e.Dst}},
			// 2 MB/s on the source stream makes the ~15 MB RDB take a few seconds.
			Options: ferry.Options{BandwidthLimitMB: 2},
			Seed: func(t *testing.T) {
				// 60k keys of 200 random (incompressible) bytes: a ~13 MB RDB.
				rnd := rand.New(rand.NewPCG(1, 2))
				val := make([]byte, 200)
				for i := 0; i < 60; i++ {
					pipe := e.SrcC.Pipeline()
					for j := 0; j < 1000; j++ {
						for k := range val {
							val[k] = byte(rnd.Uint32())
						}
						pipe.Set(ctx, fmt.Sprintf("bulk:%d", i*1000+j), string(val), 0)
					}
					if _, err := pipe.Exec(ctx); err != nil {
						t.Fatal(err)
					}
				}
				redistest.Populate(t, e.SrcC, "pre:")
			},
			StartWriter: func(t *testing.T) func() int64 {
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				var n int64
				go func() {
					defer wg.Done()
					for ; ; n++ {
						select {
						case <-stop:
							return
						default:
						}
						if err := e.SrcC.Set(ctx, fmt.Sprintf("live:%d", n), n, 0).Err(); err != nil {
							t.Error(err)
							return
						}
						if err := e.SrcC.Incr(ctx, "live:n").Err(); err != nil {
							t.Error(err)
							return
						}
						time.Sleep(time.Millisecond)
					}
				}()
				return func() int64 { close(stop); wg.Wait(); return n }
			},
			FullUnderWay: func(t *testing.T, s *ferry.Step) bool { return s.Counters.Bytes > 1<<20 },
			FullRunsKey:  "fullResyncs",
			// The writer starts once ready: 200 of its commands, then the kill.
			IncrementalOps: 200,
			Outage:         500 * time.Millisecond, // shorter than the backlog holds
			ResumesKey:     "partialResyncs",
			MinVerified:    60000,
			Check: func(t *testing.T, m *ferry.Migration, n int64) string {
				cp := enginetest.Checkpoint(t, m.Step(ferry.StepIncremental))
				if cp["fullResyncs"] != 2.0 || cp["partialResyncs"] != 1.0 {
					t.Errorf("incremental checkpoint %v: want the partial resync after the kill and no further full sync", cp)
				}
				if got, _ := e.DstC.Get(ctx, "live:n").Int64(); got != n {
					t.Fatalf("live:n = %d on the target, %d writes on the source", got, n)
				}
				a, b := redistest.Digest(t, e.SrcC), redistest.Digest(t, e.DstC)
				if a != b {
					t.Fatalf("DEBUG DIGEST differs: %s vs %s", a, b)
				}
				return fmt.Sprintf("live:n = %d on the target; DEBUG DIGEST equal (%s)", n, a)
			},
		}
	})
}
