package server

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrymigrate/ferry"
)

// ---- HTTP metrics ----

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_http_requests_total",
			Help: "HTTP requests served, by API dialect, route and status code.",
		}, []string{"dialect", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_http_request_duration_seconds",
			Help:    "HTTP request latency, by API dialect and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"dialect", "route"}),
	}
}

func (m *httpMetrics) observe(dialect, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(dialect, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(dialect, route).Observe(d.Seconds())
}

func (m *httpMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.latency.Describe(ch)
}

func (m *httpMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.latency.Collect(ch)
}

// ---- the model, read from the store on every scrape ----

// storeCollector computes ferry's job metrics from the store when scraped,
// so that every ferry process (and every agent anywhere) reports the same
// figures.
type storeCollector struct {
	store   ferry.Store
	log     *slog.Logger
	timeout time.Duration
	now     func() time.Time
}

// EndedJobRetention is how long after a migration ended (completed, failed,
// expired, released) its per-job series stay on /metrics; it is still
// counted in ferry_migrations afterwards.
const EndedJobRetention = time.Hour

func newStoreCollector(st ferry.Store, log *slog.Logger) *storeCollector {
	return &storeCollector{store: st, log: log, timeout: 10 * time.Second, now: time.Now}
}

// ended reports whether m ended more than EndedJobRetention before now.
func ended(m *ferry.Migration, now time.Time) bool {
	if !m.State.Terminal() {
		return false
	}
	// When it ended: FinishedAt (or ReleasedAt, if later); the last update
	// for a job that has neither.
	var at time.Time
	if m.FinishedAt != nil {
		at = *m.FinishedAt
	}
	if m.ReleasedAt != nil && m.ReleasedAt.After(at) {
		at = *m.ReleasedAt
	}
	if at.IsZero() {
		at = m.UpdatedAt
	}
	return now.Sub(at) > EndedJobRetention
}

var (
	jobLabels  = []string{"project", "migration", "name", "engine"}
	stepLabels = append(append([]string{}, jobLabels...), "step")

	descUp        = prometheus.NewDesc("ferry_store_up", "1 when the last scrape could read the store, else 0.", nil, nil)
	descBuild     = prometheus.NewDesc("ferry_build_info", "ferry's version.", []string{"version"}, nil)
	descJobs      = prometheus.NewDesc("ferry_migrations", "Migration jobs by engine and state (deleted jobs excluded).", []string{"engine", "state"}, nil)
	descProgress  = prometheus.NewDesc("ferry_migration_step_progress_percent", "Percent done of a migration step (0-100).", stepLabels, nil)
	descStepState = prometheus.NewDesc("ferry_migration_step_running", "1 while a migration step runs, else 0.", stepLabels, nil)
	descDone      = prometheus.NewDesc("ferry_migration_step_units_done_total", "Units (keys, rows or documents) a migration step has done.", append(append([]string{}, stepLabels...), "unit"), nil)
	descTotal     = prometheus.NewDesc("ferry_migration_step_units", "Units (keys, rows or documents) a migration step has to do, when known.", append(append([]string{}, stepLabels...), "unit"), nil)
	descBytes     = prometheus.NewDesc("ferry_migration_step_bytes_total", "Bytes a migration step has moved.", stepLabels, nil)
	descOps       = prometheus.NewDesc("ferry_migration_step_ops_total", "Changes a sync step has applied.", stepLabels, nil)
	descErrors    = prometheus.NewDesc("ferry_migration_step_errors_total", "Units a migration step failed to move.", stepLabels, nil)
	descRate      = prometheus.NewDesc("ferry_migration_step_rate_per_second", "A migration step's current rate, as its engine reports it.", stepLabels, nil)
	descLag       = prometheus.NewDesc("ferry_migration_lag_seconds", "Replication lag of a migration in incremental sync.", jobLabels, nil)
	descLagBytes  = prometheus.NewDesc("ferry_migration_lag_bytes", "Replication lag in bytes of a sync step, when the engine knows it.", stepLabels, nil)
	descReady     = prometheus.NewDesc("ferry_migration_ready_for_cutover", "1 when a migration is ready for cutover, else 0.", jobLabels, nil)
	descDeadline  = prometheus.NewDesc("ferry_migration_cutover_deadline_timestamp_seconds", "When a migration expires unless cut over (Unix time).", jobLabels, nil)
	descRuns      = prometheus.NewDesc("ferry_pipeline_runs", "Pipeline runs by state.", []string{"state"}, nil)
	descRunBytes  = prometheus.NewDesc("ferry_pipeline_run_bytes_exported_total", "Bytes exported by the runs of a pipeline.", []string{"project", "pipeline"}, nil)
	descRunDocs   = prometheus.NewDesc("ferry_pipeline_run_docs_exported_total", "Documents or rows exported by the runs of a pipeline.", []string{"project", "pipeline"}, nil)
	descAgents    = prometheus.NewDesc("ferry_agents", "Agents (migration hosts) that have announced themselves.", nil, nil)
	descAgentSeen = prometheus.NewDesc("ferry_agent_last_seen_timestamp_seconds", "When an agent last heartbeat (Unix time).", []string{"agent", "hostname", "version"}, nil)
)

var runStates = []string{ferry.RunPending, ferry.RunInProgress, ferry.RunDone, ferry.RunFailed, ferry.RunDatasetDeleted}

var jobStates = []ferry.State{ferry.StateCreated, ferry.StateRunning, ferry.StatePaused, ferry.StateCuttingOver, ferry.StateCompleted,
	ferry.StateFailed, ferry.StateExpired, ferry.StateReleasing, ferry.StateReleased}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descBuild, descJobs, descProgress, descStepState, descDone, descTotal, descBytes, descOps,
		descErrors, descRate, descLag, descLagBytes, descReady, descDeadline, descRuns, descRunBytes, descRunDocs, descAgents, descAgentSeen} {
		ch <- d
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- gauge(descBuild, 1, ferry.Version)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.collect(ctx, ch); err != nil {
		c.log.Error("metrics: read the store", "err", err)
		ch <- gauge(descUp, 0)
		return
	}
	ch <- gauge(descUp, 1)
}

func (c *storeCollector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	now := c.now()
	orgs, err := c.store.ListOrgs(ctx)
	if err != nil {
		return err
	}
	type engState struct {
		engine ferry.EngineKind
		state  ferry.State
	}
	jobs := map[engState]int{}
	runs := map[string]int{}
	type pipeKey struct{ project, pipeline string }
	runBytes := map[pipeKey]int64{}
	runDocs := map[pipeKey]int64{}
	for _, o := range orgs {
		projects, _, err := c.store.ListProjects(ctx, ferry.ProjectFilter{OrgID: o.ID})
		if err != nil {
			return err
		}
		for _, p := range projects {
			ms, _, err := c.store.ListMigrations(ctx, ferry.MigrationFilter{ProjectID: p.ID, States: jobStates})
			if err != nil {
				return err
			}
			for _, m := range ms {
				jobs[engState{m.Engine, m.State}]++
				if m.State == ferry.StateReleased || ended(m, now) {
					continue
				}
				c.collectJob(ch, m)
			}
			rs, _, err := c.store.ListRuns(ctx, ferry.RunFilter{ProjectID: p.ID})
			if err != nil {
				return err
			}
			for _, r := range rs {
				runs[r.State]++
				k := pipeKey{p.ID, r.PipelineName}
				runBytes[k] += r.Stats.BytesExported
				runDocs[k] += r.Stats.NumDocs
			}
		}
	}
	for _, k := range ferry.Kinds {
		for _, s := range jobStates {
			ch <- gauge(descJobs, float64(jobs[engState{k, s}]), string(k), string(s))
			delete(jobs, engState{k, s})
		}
	}
	for k, n := range jobs { // engines or states this build does not list
		ch <- gauge(descJobs, float64(n), string(k.engine), string(k.state))
	}
	for _, s := range runStates {
		ch <- gauge(descRuns, float64(runs[s]), s)
	}
	for k, v := range runBytes {
		ch <- counter(descRunBytes, float64(v), k.project, k.pipeline)
		ch <- counter(descRunDocs, float64(runDocs[k]), k.project, k.pipeline)
	}
	agents, err := c.store.ListAgents(ctx)
	if err != nil {
		return err
	}
	ch <- gauge(descAgents, float64(len(agents)))
	for _, a := range agents {
		ch <- gauge(descAgentSeen, float64(a.LastSeen.UnixNano())/1e9, a.ID, a.Hostname, a.Version)
	}
	return nil
}

func (c *storeCollector) collectJob(ch chan<- prometheus.Metric, m *ferry.Migration) {
	job := []string{m.ProjectID, m.ID, m.Name, string(m.Engine)}
	for _, s := range m.Steps {
		l := append(append([]string{}, job...), string(s.Name))
		unit := s.Counters.Unit
		if unit == "" {
			unit = "units"
		}
		lu := append(append([]string{}, l...), unit)
		ch <- gauge(descProgress, s.Progress, l...)
		ch <- gauge(descStepState, b2f(s.State == ferry.StepRunning), l...)
		ch <- counter(descDone, float64(s.Counters.Done), lu...)
		if s.Counters.Total > 0 {
			ch <- gauge(descTotal, float64(s.Counters.Total), lu...)
		}
		ch <- counter(descBytes, float64(s.Counters.Bytes), l...)
		ch <- counter(descOps, float64(s.Counters.Ops), l...)
		ch <- counter(descErrors, float64(s.Counters.Errors), l...)
		if s.State == ferry.StepRunning {
			ch <- gauge(descRate, s.Counters.RatePerSec, l...)
			if s.Counters.LagBytes > 0 {
				ch <- gauge(descLagBytes, float64(s.Counters.LagBytes), l...)
			}
		}
	}
	if m.LagSeconds != nil {
		ch <- gauge(descLag, float64(*m.LagSeconds), job...)
	}
	ch <- gauge(descReady, b2f(m.ReadyForCutover), job...)
	if m.CutoverDeadline != nil {
		ch <- gauge(descDeadline, float64(m.CutoverDeadline.UnixNano())/1e9, job...)
	}
}
