package main

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"
)

// lagProbe measures the incremental sync's replication lag from outside
// ferry, pt-heartbeat style: every 50 ms it writes UTC_TIMESTAMP(6) to a
// one-row table on the source (sbtest.ferry_heartbeat, created on the
// source during the sync: ferry replicates the CREATE TABLE) and reads on
// the target how old the applied value is. A sample is the age of the
// newest heartbeat the target holds, so it counts up to one period (50 ms)
// more than the true lag. ferry's own lag figure is in whole seconds (the
// binlog's event timestamps have a resolution of one second).
type lagProbe struct {
	stop    chan struct{}
	done    chan struct{}
	samples []time.Duration
	err     error
}

const heartbeatEvery = 50 * time.Millisecond

func startLagProbe(ctx context.Context, srcDB *sql.DB, dst *server) *lagProbe {
	p := &lagProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = p.run(ctx, srcDB, dst)
	}()
	return p
}

func (p *lagProbe) run(ctx context.Context, srcDB *sql.DB, dst *server) error {
	dstDB := open(dst.dsn)
	defer dstDB.Close()
	if _, err := srcDB.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+dbName+".ferry_heartbeat (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL)"); err != nil {
		return fmt.Errorf("heartbeat table: %w", err)
	}
	if _, err := srcDB.ExecContext(ctx, "REPLACE INTO "+dbName+".ferry_heartbeat VALUES (1, UTC_TIMESTAMP(6))"); err != nil {
		return err
	}
	// ferry applies the CREATE TABLE and the first row.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if err := dstDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dbName+".ferry_heartbeat").Scan(&n); err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the heartbeat table did not reach the target in 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if _, err := srcDB.ExecContext(ctx, "UPDATE "+dbName+".ferry_heartbeat SET ts = UTC_TIMESTAMP(6) WHERE id = 1"); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		var us int64
		if err := dstDB.QueryRowContext(ctx, "SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) FROM "+dbName+".ferry_heartbeat WHERE id = 1").Scan(&us); err != nil {
			return fmt.Errorf("heartbeat on the target: %w", err)
		}
		p.samples = append(p.samples, time.Duration(us)*time.Microsecond)
	}
}

// finish stops the probe and returns its summary.
func (p *lagProbe) finish() string {
	close(p.stop)
	<-p.done
	if p.err != nil {
		return "heartbeat lag: " + p.err.Error()
	}
	if len(p.samples) == 0 {
		return "heartbeat lag: no samples"
	}
	s := append([]time.Duration(nil), p.samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))] }
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	over := 0
	for _, d := range s {
		if d >= time.Second {
			over++
		}
	}
	return fmt.Sprintf("heartbeat lag (every %s on the source, age on the target): avg %s, p50 %s, p99 %s, max %s over %d samples; %d samples (%.1f%%) at 1 s or more",
		heartbeatEvery, r(sum/time.Duration(len(s))), r(q(0.5)), r(q(0.99)), r(s[len(s)-1]), len(s), over, 100*float64(over)/float64(len(s)))
}
