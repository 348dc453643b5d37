package psync_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/internal/redistest"
)

func TestOnlineMigrationEndToEnd(t *testing.T) {
	e := redistest.NewEnv(t)
	redistest.Populate(t, e.SrcC, "pre:")
	m := e.Create(ferry.Modes{Full: true, Incremental: true, Verify: true}, ferry.Options{})
	e.Agent("agent-1")

	// Writes during the whole sync: they must arrive through the stream.
	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var written int
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				written = i
				return
			default:
			}
			pipe := e.SrcC.Pipeline()
			pipe.Set(context.Background(), fmt.Sprintf("live:%d", i), i, 0)
			pipe.HIncrBy(context.Background(), "live:counter", "n", 1)
			pipe.ZAdd(context.Background(), "live:z", goredis.Z{Score: float64(i) / 3, Member: fmt.Sprint(i)})
			if i%10 == 0 {
				pipe.Del(context.Background(), fmt.Sprintf("live:%d", i-5))
			}
			if _, err := pipe.Exec(context.Background()); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	m = e.Wait(m.ID, "ready for cutover", 60*time.Second, func(m *ferry.Migration) bool { return m.ReadyForCutover })
	full := m.Step(ferry.StepFull)
	if full.State != ferry.StepDone || full.Counters.Done < 3*25 {
		t.Fatalf("full step %+v", full)
	}
	// More writes in incremental, then stop the application and cut over.
	time.Sleep(300 * time.Millisecond)
	close(stopWriting)
	wg.Wait()
	redistest.Populate(t, e.SrcC, "post:")
	if _, err := e.Svc.CutoverMigration(e.Ctx, e.Proj.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	m = e.Wait(m.ID, "completed", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	v := m.Step(ferry.StepVerify)
	if v.Counters.Missing != 0 || v.Counters.Extra != 0 || v.Counters.Different != 0 || v.Counters.Done == 0 {
		t.Fatalf("verify counters %+v (%s)", v.Counters, v.Message)
	}
	inc := m.Step(ferry.StepIncremental)
	if inc.Counters.Ops == 0 {
		t.Fatalf("incremental applied no command: %+v", inc)
	}
	// The application's writes all arrived.
	n, err := e.DstC.HGet(context.Background(), "live:counter", "n").Int()
	if err != nil || n != written {
		t.Fatalf("live:counter = %d (%v), want %d", n, err, written)
	}
	// Every db, byte for byte: DEBUG DIGEST covers all dbs, values and TTLs
	// (absolute times, so they match to the millisecond).
	if a, b := redistest.Digest(t, e.SrcC), redistest.Digest(t, e.DstC); a != b {
		t.Fatalf("DEBUG DIGEST differs: source %s target %s", a, b)
	}
	if fn, _ := e.DstC.Do(context.Background(), "FCALL", "ferryfn", 0).Int(); fn != 1 {
		t.Fatal("function library not migrated")
	}
	// Verification on demand: a verify-only job over the same endpoints;
	// then a planted difference makes it fail with the numbers.
	vj, err := e.Svc.VerifyMigration(e.Ctx, e.Proj.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	vj = e.Wait(vj.ID, "on-demand verification", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	if c := vj.Step(ferry.StepVerify).Counters; c.Done != v.Counters.Done || c.Missing+c.Extra+c.Different != 0 {
		t.Fatalf("on-demand verify %+v", c)
	}
	if err := e.DstC.Del(context.Background(), "pre:str:0").Err(); err != nil {
		t.Fatal(err)
	}
	vj, err = e.Svc.VerifyMigration(e.Ctx, e.Proj.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	vj = e.Wait(vj.ID, "failed verification", 60*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateFailed })
	if c := vj.Step(ferry.StepVerify).Counters; c.Missing != 1 || c.Extra != 0 || c.Different != 0 || !strings.Contains(vj.Error, `"pre:str:0" missing`) {
		t.Fatalf("planted difference: counters %+v, error %q", c, vj.Error)
	}
	t.Logf("full: %d keys in %v; incremental: %d commands; verify: %d keys equal; %d app writes during sync",
		full.Counters.Done, full.FinishedAt.Sub(*full.StartedAt).Round(time.Millisecond), inc.Counters.Ops, v.Counters.Done, written)
}
