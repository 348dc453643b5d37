package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	"github.com/ferrymigrate/ferry/sqlite"
)

// ---------------------------------------------------------------------------
// HOOK: ferry's own measurement.
//
// newEngine builds ferry's MySQL engine. It is nil in a plain build and set
// by engine_ferrymysql.go, which imports
// engine/mysql: so this bench builds and measures the baselines whether or
// not that package exists or compiles yet. When it is nil, measureFerry
// returns errEngineNotBuilt and the bench prints "ferry: engine not built
// yet": it never makes a figure up.
var newEngine func(logger *slog.Logger) ferry.Engine

var errEngineNotBuilt = errors.New("the MySQL engine is not built into this binary")

// incrResult is the incremental measurement: ferry applying what sysbench
// oltp_write_only writes to the source.
type incrResult struct {
	load          time.Duration
	loadTPS       float64 // sysbench transactions/s on the source
	loadWrites    float64 // sysbench write statements/s on the source
	applied       int64   // changes ferry applied (its incremental counter)
	appliedPerSec float64 // over the load and the catch-up after it
	maxLag        int64   // seconds, as ferry reported while the load ran
	catchUp       time.Duration
	heartbeat     string // the lag measured outside ferry (incr.go)
	backlog       string // the apply capacity on a backlog (incr.go)
}

func (r *incrResult) print() {
	fmt.Printf("ferry incremental: %.0f changes/s applied (%d in %s) while sysbench oltp_write_only ran %.0f tps, %.0f writes/s on the source; lag max %ds; cutover drained in %s after the load\n",
		r.appliedPerSec, r.applied, r.load.Round(time.Millisecond), r.loadTPS, r.loadWrites, r.maxLag, r.catchUp.Round(time.Millisecond))
	fmt.Println("  " + r.heartbeat)
	if r.backlog != "" {
		fmt.Println(r.backlog)
	}
}

// measureFerry runs one migration job (schema, full and, with -incr,
// incremental sync under sysbench oltp_write_only, then cutover) from src
// to dst through an in-process agent with an SQLite store, and returns the
// full load's figures: source rows over the time from the job's start to
// the end of its full step (precheck and schema included, as a dump's
// CREATE TABLEs are).
func measureFerry(ctx context.Context, dir string, src, dst *server, srcDB *sql.DB, withIncr bool) (*result, error) {
	if newEngine == nil {
		return nil, errEngineNotBuilt
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := sqlite.Open(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		return nil, err
	}
	defer store.Close()
	reg := ferry.NewRegistry()
	reg.Register(newEngine(logger))
	svc := ferry.NewService(store, reg, logger)
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "bench")
	if err != nil {
		return nil, err
	}
	proj, err := svc.CreateProject(sys, org.ID, "bench")
	if err != nil {
		return nil, err
	}
	ep := func(s *server) ferry.Endpoint {
		return ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{fmt.Sprintf("127.0.0.1:%d", s.port)}, Username: "root"}
	}
	m := &ferry.Migration{ProjectID: proj.ID, Name: "bench", Engine: ferry.KindMySQL, Source: ep(src), Target: ep(dst),
		Modes: ferry.Modes{Schema: true, Full: true, Incremental: withIncr && *incr > 0},
		Options: ferry.Options{Filters: ferry.Filters{IncludeDBs: []string{dbName}}, Parallelism: *threads,
			Conflict: ferry.ConflictFail, Extra: ferryExtra}}
	if err := svc.CreateMigration(sys, m, true); err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := agent.New(agent.Config{ID: "bench", Store: store, Registry: reg, Service: svc, Logger: logger,
		PollInterval: 20 * time.Millisecond, Heartbeat: 200 * time.Millisecond})
	go a.Run(actx)

	get := func() (*ferry.Migration, error) {
		m, err := store.GetMigration(ctx, m.ID)
		if err == nil && m.State == ferry.StateFailed {
			err = fmt.Errorf("migration failed: %s", m.Error)
		}
		return m, err
	}
	// The full load.
	for {
		if m, err = get(); err != nil {
			return nil, err
		}
		if f := m.Step(ferry.StepFull); f != nil && f.State == ferry.StepDone || m.State == ferry.StateCompleted {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	full := m.Step(ferry.StepFull)
	r := &result{wall: full.FinishedAt.Sub(*m.StartedAt),
		parts: fmt.Sprintf("full step %s, %d rows counted by ferry", full.FinishedAt.Sub(*full.StartedAt).Round(time.Millisecond), full.Counters.Done)}
	if !m.Modes.Incremental {
		return r, nil
	}

	// Incremental: sysbench oltp_write_only on the source.
	for !m.ReadyForCutover {
		time.Sleep(20 * time.Millisecond)
		if m, err = get(); err != nil {
			return nil, err
		}
	}
	ir := &incrResult{}
	startOps := m.Step(ferry.StepIncremental).Counters.Ops
	type sbOut struct {
		out []byte
		err error
	}
	done := make(chan sbOut, 1)
	probe := startLagProbe(ctx, srcDB, dst)
	loadStart := time.Now()
	go func() {
		args := append(sysbenchArgs(src, *threads), "--time="+strconv.Itoa(int(incr.Seconds())), "--report-interval=0", "run")
		out, err := exec.Command(lookPath("sysbench"), append([]string{"oltp_write_only"}, args...)...).CombinedOutput()
		done <- sbOut{out, err}
	}()
	var sb sbOut
wait:
	for {
		select {
		case sb = <-done:
			break wait
		case <-time.After(250 * time.Millisecond):
			if m, err = get(); err != nil {
				return nil, err
			}
			if m.LagSeconds != nil && *m.LagSeconds > ir.maxLag {
				ir.maxLag = *m.LagSeconds
			}
		}
	}
	ir.load = time.Since(loadStart)
	ir.heartbeat = probe.finish()
	if sb.err != nil {
		return nil, fmt.Errorf("sysbench oltp_write_only: %v\n%s", sb.err, sb.out)
	}
	ir.loadTPS = perSec(sb.out, `transactions:\s+\d+\s+\(([0-9.]+) per sec`)
	if w := perSec(sb.out, `write:\s+(\d+)`); w > 0 {
		ir.loadWrites = w / ir.load.Seconds()
	}
	// Cutover drains to the source's position at that time.
	loadEnd := time.Now()
	if _, err := svc.CutoverMigration(sys, proj.ID, m.ID); err != nil {
		return nil, err
	}
	for m.State != ferry.StateCompleted {
		time.Sleep(20 * time.Millisecond)
		if m, err = get(); err != nil {
			return nil, err
		}
	}
	ir.catchUp = time.Since(loadEnd)
	ir.applied = m.Step(ferry.StepIncremental).Counters.Ops - startOps
	ir.appliedPerSec = float64(ir.applied) / time.Since(loadStart).Seconds()
	ir.backlog = measureBacklog(ctx, src, dst, srcDB)
	r.incr = ir
	return r, nil
}

func perSec(out []byte, re string) float64 {
	m := regexp.MustCompile(re).FindSubmatch(out)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.TrimSpace(string(m[1])), 64)
	return v
}
