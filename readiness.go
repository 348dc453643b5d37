package ferry

import (
	"fmt"
	"time"
)

// Readiness says whether a job can be cut over now and, when not, why (like
// mongosync's canCommit): every reason that holds, most important first.
type Readiness struct {
	Ready   bool              `json:"ready"`
	Reasons []ReadinessReason `json:"reasons"`
}

// ReadinessReason is one reason a job is not ready for cutover.
type ReadinessReason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Advice says what to do about it.
	Advice string `json:"advice,omitempty"`
}

// Readiness reason codes.
const (
	ReasonNoIncremental     = "NO_INCREMENTAL"      // the job does not sync: nothing to cut over
	ReasonNotStarted        = "NOT_STARTED"         // created, waiting for start
	ReasonPaused            = "PAUSED"              // paused by the user
	ReasonFailed            = "FAILED"              // a step failed for good
	ReasonRetrying          = "RETRYING"            // a step failed and is retried
	ReasonCuttingOver       = "CUTTING_OVER"        // cutover asked for, draining
	ReasonCutOver           = "CUT_OVER"            // already cut over
	ReasonEnded             = "ENDED"               // completed, expired, released
	ReasonNotYetIncremental = "NOT_YET_INCREMENTAL" // still in precheck, schema or full copy
	ReasonNoAgent           = "NO_AGENT"            // no agent holds the job's lease
	ReasonLagUnknown        = "LAG_UNKNOWN"         // incremental sync has not measured its lag yet
	ReasonLagHigh           = "LAG_HIGH"            // lag above the threshold
	ReasonBacklog           = "BACKLOG"             // changes read from the source but not applied
)

// CutoverLagThreshold is the lag (seconds) at or below which a syncing job
// is ready: options.cutoverLagSeconds, 5 by default.
func (m *Migration) CutoverLagThreshold() int64 {
	if m.Options.CutoverLagSeconds > 0 {
		return int64(m.Options.CutoverLagSeconds)
	}
	return 5
}

// Readiness computes the job's cutover readiness from its state, steps,
// lag and lease at now.
func (m *Migration) Readiness(now time.Time) Readiness {
	var rs []ReadinessReason
	add := func(code, advice, format string, args ...any) {
		rs = append(rs, ReadinessReason{Code: code, Message: fmt.Sprintf(format, args...), Advice: advice})
	}
	inc := m.Step(StepIncremental)
	switch {
	case inc == nil:
		add(ReasonNoIncremental, "", "the job runs no incremental sync (modes: %s): it ends by itself, there is nothing to cut over", m.modeList())
	case m.CutOver():
		add(ReasonCutOver, "", "the job was cut over")
	case m.State == StateCuttingOver:
		add(ReasonCuttingOver, "", "cutover is under way: the agent drains the source's last changes")
	case m.State == StateCreated:
		add(ReasonNotStarted, "start it (POST …/start, ferry migrations start ID)", "the job has not been started")
	case m.State == StatePaused:
		add(ReasonPaused, "resume it first (POST …/resume, ferry migrations resume ID), then cut over once it is ready", "the job is paused: nothing syncs and the lag is unknown")
	case m.State == StateFailed:
		add(ReasonFailed, "start it again (POST …/start, ferry migrations start ID) to retry from its checkpoint", "the job failed%s", colonMsg(m.Error))
	case m.State.Terminal() || m.State == StateReleasing:
		add(ReasonEnded, "", "the job is %s", m.State)
	}
	if len(rs) > 0 {
		return Readiness{Reasons: rs}
	}
	// Running.
	if m.CurrentStep != StepIncremental {
		msg := fmt.Sprintf("the job is still in step %s", m.CurrentStep)
		if s := m.Step(m.CurrentStep); s != nil && (m.CurrentStep == StepFull || m.CurrentStep == StepSchema) {
			msg = fmt.Sprintf("the job is still in step %s (%.1f%% done)", m.CurrentStep, s.Progress)
			if s.Counters.Total > 0 {
				msg = fmt.Sprintf("the job is still in step %s (%.1f%%: %d of %d %s)", m.CurrentStep, s.Progress, s.Counters.Done, s.Counters.Total, unitOr(s.Counters.Unit))
			}
		}
		add(ReasonNotYetIncremental, "wait: incremental sync starts after the copy; cut over when the job is ready", "%s", msg)
	}
	if m.Error != "" && m.Attempts > 0 {
		add(ReasonRetrying, "wait for the retry, or look at the error", "a step failed and is retried (attempt %d): %s", m.Attempts, m.Error)
	}
	if m.Lease == nil || !m.Lease.ExpiresAt.After(now) {
		add(ReasonNoAgent, "start an agent (ferry serve, or ferry agent) that can reach the source and the target", "no agent is running the job")
	}
	if m.CurrentStep == StepIncremental {
		th := m.CutoverLagThreshold()
		var backlog int64
		if inc != nil {
			backlog = inc.Counters.LagBytes
		}
		switch {
		case m.LagSeconds == nil:
			add(ReasonLagUnknown, "wait a few seconds", "incremental sync has not measured its lag yet")
		case *m.LagSeconds > th:
			add(ReasonLagHigh, "wait for the target to catch up, or raise options.cutoverLagSeconds", "lag is %d s, above the cutover threshold of %d s", *m.LagSeconds, th)
			if backlog > 0 {
				add(ReasonBacklog, "", "%d bytes of the source's changes are not applied yet", backlog)
			}
		}
	}
	return Readiness{Ready: len(rs) == 0, Reasons: rs}
}

func colonMsg(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func unitOr(u string) string {
	if u == "" {
		return "items"
	}
	return u
}

func (m *Migration) modeList() string {
	var s string
	for _, x := range []struct {
		on   bool
		name string
	}{{m.Modes.Schema, "schema"}, {m.Modes.Full, "full"}, {m.Modes.Incremental, "incremental"}, {m.Modes.Verify, "verify"}} {
		if x.on {
			if s != "" {
				s += ", "
			}
			s += x.name
		}
	}
	return s
}

// cutoverRefusal is the error of a cutover asked for when the job cannot
// be cut over, with the advice of its first readiness reason.
func (m *Migration) cutoverRefusal(now time.Time) *Error {
	r := m.Readiness(now)
	e := &Error{Code: ECONFLICT, Reason: "CUTOVER_NOT_ALLOWED",
		Message: fmt.Sprintf("migration %s is %s in step %s; cutover is possible only during incremental sync", m.ID, m.State, m.CurrentStep),
		Advice:  "wait until the migration reports readyForCutover"}
	for _, x := range r.Reasons {
		if x.Code == ReasonNoAgent || x.Code == ReasonLagUnknown || x.Code == ReasonLagHigh || x.Code == ReasonBacklog {
			continue
		}
		e.Message = fmt.Sprintf("migration %s cannot be cut over (%s): %s", m.ID, x.Code, x.Message)
		if x.Advice != "" {
			e.Advice = x.Advice
		}
		break
	}
	return e
}
