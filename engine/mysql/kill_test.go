package mysql_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/enginetest"
)

func checkpointOf(t *testing.T, s *ferry.Step) map[string]any { return enginetest.Checkpoint(t, s) }

// TestKillAgentMidFullAndMidIncremental runs the engine conformance suite:
// `ferry agent` processes are killed with SIGKILL during the full copy and
// during the incremental sync while the application writes on; the agents
// that take over resume (the full copy under a new snapshot, the stream
// from the target's marker) and the target ends equal to the source:
// mysqldump of both sides identical, verification with 0 differences
// (key-less rows would be doubled by a change applied twice).
func TestKillAgentMidFullAndMidIncremental(t *testing.T) {
	enginetest.Run(t, func(t *testing.T) *enginetest.Engine {
		e := newEnv(t)
		return &enginetest.Engine{
			Registry: e.reg,
			Source:   endpoint(e.src),
			Target:   endpoint(e.dst),
			// 1 MB/s makes the ~4 MB copy take a few seconds. The schema
			// step is off: the full step creates the tables.
			Options: ferry.Options{BandwidthLimitMB: 1, Parallelism: 2},
			Seed:    func(t *testing.T) { seed(t, e.srcDB, 60000) },
			StartWriter: func(t *testing.T) func() int64 {
				w := startWriter(t, e.srcDB, 2)
				return func() int64 { return w.halt(t) }
			},
			WriteDuringFull: true,
			FullUnderWay:    func(t *testing.T, s *ferry.Step) bool { return s.Counters.Done > 20000 },
			FullRunsKey:     "snapshots",
			MinReadyOps:     1,
			IncrementalOps:  300,
			Outage:          300 * time.Millisecond,
			ResumesKey:      "resumes",
			MinVerified:     60000,
			Check: func(t *testing.T, m *ferry.Migration, writes int64) string {
				// No schema step: the full step created the tables, not the view.
				src := dump(t, e.src, "shop", "--ignore-table=shop.big_even")
				compareDumps(t, src, dump(t, e.dst, "shop"))
				var left int
				if err := e.dstDB.QueryRow("SELECT COUNT(*) FROM ferry_meta.checkpoint").Scan(&left); err != nil {
					t.Errorf("counting the marker rows left on the target: %v", err)
				}
				if left != 0 {
					t.Errorf("%d marker rows left on the target after cutover", left)
				}
				return fmt.Sprintf("mysqldump of shop identical on both sides (%d bytes); %d marker rows left", len(src), left)
			},
		}
	})
}
