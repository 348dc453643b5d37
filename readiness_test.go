package ferry

import (
	"strings"
	"testing"
	"time"
)

func TestReadiness(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	lease := &Lease{AgentID: "a1", ExpiresAt: now.Add(10 * time.Second)}
	expired := &Lease{AgentID: "a1", ExpiresAt: now.Add(-time.Second)}
	i64 := func(v int64) *int64 { return &v }
	job := func(state State, step StepName, f func(m *Migration)) *Migration {
		m := &Migration{ID: "j", State: state, CurrentStep: step, Modes: Modes{Full: true, Incremental: true, Verify: true}, Lease: lease}
		m.InitSteps()
		if f != nil {
			f(m)
		}
		return m
	}
	tests := []struct {
		name  string
		m     *Migration
		ready bool
		codes []string
		// advice is a substring of the first reason's advice.
		advice string
	}{
		{"ready", job(StateRunning, StepIncremental, func(m *Migration) { m.LagSeconds = i64(1) }), true, nil, ""},
		{"lag at the threshold", job(StateRunning, StepIncremental, func(m *Migration) { m.LagSeconds = i64(5) }), true, nil, ""},
		{"own threshold", job(StateRunning, StepIncremental, func(m *Migration) { m.LagSeconds = i64(20); m.Options.CutoverLagSeconds = 30 }), true, nil, ""},
		{"lag high", job(StateRunning, StepIncremental, func(m *Migration) { m.LagSeconds = i64(60) }), false, []string{ReasonLagHigh}, "catch up"},
		{"lag high with backlog", job(StateRunning, StepIncremental, func(m *Migration) {
			m.LagSeconds = i64(60)
			m.Step(StepIncremental).Counters.LagBytes = 4096
		}), false, []string{ReasonLagHigh, ReasonBacklog}, ""},
		{"lag unknown", job(StateRunning, StepIncremental, nil), false, []string{ReasonLagUnknown}, ""},
		{"no agent", job(StateRunning, StepIncremental, func(m *Migration) { m.LagSeconds = i64(0); m.Lease = expired }), false, []string{ReasonNoAgent}, "agent"},
		{"full copy", job(StateRunning, StepFull, func(m *Migration) {
			s := m.Step(StepFull)
			s.Progress, s.Counters = 42, Counters{Done: 42, Total: 100, Unit: "rows"}
		}), false, []string{ReasonNotYetIncremental}, "wait"},
		{"retrying in full copy", job(StateRunning, StepFull, func(m *Migration) { m.Error = "full: connection reset"; m.Attempts = 2 }), false,
			[]string{ReasonNotYetIncremental, ReasonRetrying}, ""},
		{"paused", job(StatePaused, StepIncremental, func(m *Migration) { m.LagSeconds = nil }), false, []string{ReasonPaused}, "resume it first"},
		{"failed", job(StateFailed, StepIncremental, func(m *Migration) { m.Error = "incremental: boom" }), false, []string{ReasonFailed}, "start it again"},
		{"created", job(StateCreated, StepPrecheck, func(m *Migration) { m.Lease = nil }), false, []string{ReasonNotStarted}, "start it"},
		{"cutting over", job(StateCuttingOver, StepIncremental, nil), false, []string{ReasonCuttingOver}, ""},
		{"cut over", job(StateRunning, StepVerify, func(m *Migration) { m.Step(StepCutover).State = StepDone }), false, []string{ReasonCutOver}, ""},
		{"completed", job(StateCompleted, "", func(m *Migration) { m.Step(StepIncremental).State = StepDone }), false, []string{ReasonEnded}, ""},
		{"no incremental", &Migration{State: StateRunning, CurrentStep: StepFull, Modes: Modes{Full: true}, Steps: []Step{{Name: StepPrecheck}, {Name: StepFull}}},
			false, []string{ReasonNoIncremental}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.m.Readiness(now)
			var codes []string
			for _, x := range r.Reasons {
				codes = append(codes, x.Code)
				if x.Message == "" {
					t.Errorf("reason %s has no message", x.Code)
				}
			}
			if r.Ready != tt.ready || strings.Join(codes, ",") != strings.Join(tt.codes, ",") {
				t.Fatalf("ready=%v reasons=%v, want ready=%v %v", r.Ready, codes, tt.ready, tt.codes)
			}
			if tt.advice != "" && !strings.Contains(r.Reasons[0].Advice, tt.advice) {
				t.Errorf("advice %q lacks %q", r.Reasons[0].Advice, tt.advice)
			}
			// Ready agrees with readyForCutover where the lease is valid.
			if tt.m.Lease == lease {
				c := *tt.m
				c.UpdateReadiness(now)
				if c.ReadyForCutover != r.Ready {
					t.Errorf("readyForCutover %v, readiness %v", c.ReadyForCutover, r.Ready)
				}
			}
		})
	}
}

func TestCutoverRefusalAdvice(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		state  State
		step   StepName
		reason string
		advice string
	}{
		{StatePaused, StepIncremental, ReasonPaused, "resume it first"},
		{StateFailed, StepIncremental, ReasonFailed, "start it again"},
		{StateRunning, StepFull, ReasonNotYetIncremental, "incremental sync starts after the copy"},
		{StateCreated, StepPrecheck, ReasonNotStarted, "start it"},
	}
	for _, tt := range tests {
		m := &Migration{ID: "j", State: tt.state, CurrentStep: tt.step, Modes: Modes{Full: true, Incremental: true}}
		m.InitSteps()
		e := m.cutoverRefusal(now)
		if e.Code != ECONFLICT || e.Reason != "CUTOVER_NOT_ALLOWED" || !strings.Contains(e.Message, tt.reason) || !strings.Contains(e.Advice, tt.advice) {
			t.Errorf("%s/%s: %+v", tt.state, tt.step, e)
		}
	}
}

func TestCutoverInfoSourceState(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	at, until, later := now.Add(-time.Minute), now.Add(4*time.Minute), now.Add(10*time.Minute)
	tests := []struct {
		name    string
		c       *CutoverInfo
		at      time.Time
		state   string
		summary string
	}{
		{"nil", nil, now, SourceWritable, ""},
		{"redis paused", &CutoverInfo{SourceWriteBlock: WriteBlockClientPause, SourceBlockedAt: &at, SourceBlockedUntil: &until}, now, SourceWritePaused, "stays write-paused"},
		{"redis pause over", &CutoverInfo{SourceWriteBlock: WriteBlockClientPause, SourceBlockedAt: &at, SourceBlockedUntil: &until}, later, SourceWritable, "pause ended"},
		{"redis released", &CutoverInfo{SourceWriteBlock: WriteBlockClientPause, SourceBlockedAt: &at, SourceBlockedUntil: &until, SourceReleasedAt: &now}, now, SourceWritable, "lifted"},
		{"mysql read-only", &CutoverInfo{SourceWriteBlock: WriteBlockReadOnly, SourceBlockedAt: &at}, later, SourceReadOnly, "read-only"},
		{"mysql no block", &CutoverInfo{SourceWriteBlock: WriteBlockNone, SourcePosition: "bin.000001:42"}, now, SourceWritable, "bin.000001:42"},
	}
	for _, tt := range tests {
		if got := tt.c.SourceState(tt.at); got != tt.state {
			t.Errorf("%s: state %s, want %s", tt.name, got, tt.state)
		}
		if got := tt.c.Summary(tt.at); !strings.Contains(got, tt.summary) || (tt.summary == "") != (got == "") {
			t.Errorf("%s: summary %q, want %q", tt.name, got, tt.summary)
		}
	}
}
