package mongo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ferrymigrate/ferry"
)

// TestReadyOnlyWhenBacklogApplied: changes written during the initial sync
// are a backlog the continuous sync must apply before the job may say it
// is ready for cutover. A writer inserts during the full copy and stops;
// every time the job is seen ready (lag within the threshold), the target
// must already hold every document the writer wrote (the source is idle by
// then, so ready means caught up).
func TestReadyOnlyWhenBacklogApplied(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var big []bson.D
	for i := 0; i < 6000; i++ {
		big = append(big, bson.D{{Key: "_id", Value: int32(i)}, {Key: "pad", Value: fmt.Sprintf("%0200d", i)}})
	}
	insertDocs(t, e.src.Database("app").Collection("big"), big)
	live := e.src.Database("app").Collection("live")
	m := e.create(ferry.Modes{Full: true, Incremental: true}, ferry.Options{CutoverLagSeconds: 1})
	e.agent("agent-1")
	// Write while the initial sync runs, then stop.
	e.wait(m.ID, "full copy running", 60*time.Second, func(m *ferry.Migration) bool { return m.CurrentStep == ferry.StepFull })
	written := 0
	for m := e.get(m.ID); m.CurrentStep == ferry.StepFull || written < 200; m = e.get(m.ID) {
		time.Sleep(50 * time.Millisecond)
		var docs []any
		for j := 0; j < 5; j++ {
			docs = append(docs, bson.D{{Key: "_id", Value: int32(written)}, {Key: "pad", Value: fmt.Sprintf("%0300d", written)}})
			written++
		}
		if _, err := live.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
		if written > 5000 {
			break
		}
	}
	t.Logf("%d documents written during the initial sync", written)
	// The job may be ready while the writer still writes (lag within the
	// 1 s threshold, which LagSeconds truncates: under 2 s). Only a
	// readiness computed well after the last write says the backlog is
	// applied: by then the lag of anything unapplied is over 2 s.
	stopped := time.Now()
	target := e.dst.Database("app").Collection("live")
	deadline := time.Now().Add(120 * time.Second)
	checks := 0
	for {
		m := e.get(m.ID)
		if m.ReadyForCutover && m.UpdatedAt.After(stopped.Add(3*time.Second)) {
			n, err := target.CountDocuments(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			checks++
			if int(n) != written {
				t.Fatalf("ready for cutover (lag %v) with %d of %d backlog documents applied", deref(m.LagSeconds), n, written)
			}
			if checks >= 20 {
				break
			}
		}
		if m.State == ferry.StateFailed || time.Now().After(deadline) {
			t.Fatalf("not ready: state %s step %s lag %v error %q", m.State, m.CurrentStep, deref(m.LagSeconds), m.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func (e *env) get(id string) *ferry.Migration {
	e.t.Helper()
	m, err := e.store.GetMigration(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}
