package mongo_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/enginetest"
)

func checkpointOf(t *testing.T, s *ferry.Step) map[string]any { return enginetest.Checkpoint(t, s) }

// TestKillAgentMidCopyAndMidSync runs the engine conformance suite:
// `ferry agent` processes are killed with SIGKILL during the initial sync
// and during the continuous sync while the application writes on; the
// agent processes that take over resume from the checkpoints (the copy
// skips the finished collections and copies the others again over what
// they left, the sync restarts from the saved oplog position) and the
// target ends equal to the source: verification reports 0 differences and
// every document is equal byte for byte.
func TestKillAgentMidCopyAndMidSync(t *testing.T) {
	enginetest.Run(t, func(t *testing.T) *enginetest.Engine {
		e := newEnv(t)
		return &enginetest.Engine{
			Registry: e.reg,
			Source:   ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{e.srcAddr}},
			Target:   ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{e.dstAddr}},
			// 1 MB/s makes the ~3 MB copy take a few seconds.
			Options: ferry.Options{Filters: ferry.Filters{ExcludeDBs: []string{"scratch"}}, Parallelism: 2, BandwidthLimitMB: 1},
			Seed:    func(t *testing.T) { seed(t, e.src, 12000) },
			StartWriter: func(t *testing.T) func() int64 {
				w := startWriter(t, e.src, "k", 200*time.Millisecond)
				return func() int64 { return int64(w.halt()) }
			},
			WriteDuringFull: true,
			// Kill the copy once some collections are finished and others not.
			FullUnderWay: func(t *testing.T, s *ferry.Step) bool {
				done := 0
				if cp := enginetest.Checkpoint(t, s); cp != nil {
					parts, _ := cp["partitions"].([]any)
					for _, p := range parts {
						if p.(map[string]any)["done"] == true {
							done++
						}
					}
				}
				return done >= 2 && s.Counters.Done > 1000
			},
			FullRunsKey:    "copies",
			MinReadyOps:    6,
			IncrementalOps: 3,
			Outage:         time.Second,
			ResumesKey:     "resumes",
			MinVerified:    12000,
			Check: func(t *testing.T, m *ferry.Migration, writes int64) string {
				return fmt.Sprintf("%d documents equal byte for byte", sameBytes(t, e.src, e.dst, movedNS...))
			},
		}
	})
}
