package ferry

import (
	"fmt"
	"sort"
	"time"
)

// Event is one entry of a job's history (a vendor's "task log").
type Event struct {
	Time    time.Time
	Level   string // "INFO" or "ERROR"
	Code    string // CREATED, STARTED, STEP_STARTED, STEP_DONE, STEP_FAILED, FAILED, PAUSED, CUTTING_OVER, COMPLETED, EXPIRED, RELEASED
	Message string
	// Keywords are the names the message is about (the step, the state).
	Keywords []string
}

// Events returns the job's history, oldest first, as its record holds it:
// creation, start, each step's start and end (with its counters or its
// failure), and the state it is in now. ferry keeps no separate log of a
// job, so an event that left no trace in the record (a pause later resumed,
// an automatic retry) is not listed.
func (m *Migration) Events() []Event {
	var ev []Event
	add := func(t *time.Time, level, code, msg string, kw ...string) {
		if t == nil || t.IsZero() {
			return
		}
		ev = append(ev, Event{Time: t.UTC(), Level: level, Code: code, Message: msg, Keywords: kw})
	}
	add(&m.CreatedAt, "INFO", "CREATED", fmt.Sprintf("migration %s (%s) created", m.Name, m.Engine))
	add(m.StartedAt, "INFO", "STARTED", "migration started")
	for _, s := range m.Steps {
		add(s.StartedAt, "INFO", "STEP_STARTED", fmt.Sprintf("step %s started", s.Name), string(s.Name))
		switch s.State {
		case StepDone:
			msg := fmt.Sprintf("step %s done", s.Name)
			if c := s.Counters; c.Total > 0 || c.Done > 0 || c.Ops > 0 {
				unit := c.Unit
				if unit == "" {
					unit = "items"
				}
				msg += fmt.Sprintf(": %d of %d %s", c.Done, c.Total, unit)
				if c.Ops > 0 {
					msg += fmt.Sprintf(", %d changes applied", c.Ops)
				}
				if s.Name == StepVerify {
					msg += fmt.Sprintf(", %d missing, %d extra, %d different", c.Missing, c.Extra, c.Different)
				}
			}
			add(s.FinishedAt, "INFO", "STEP_DONE", msg, string(s.Name))
		case StepFailed:
			t := s.FinishedAt
			if t == nil {
				t = &m.UpdatedAt
			}
			msg := fmt.Sprintf("step %s failed", s.Name)
			if s.Message != "" {
				msg += ": " + s.Message
			}
			add(t, "ERROR", "STEP_FAILED", msg, string(s.Name))
		}
	}
	switch m.State {
	case StateFailed:
		t := m.FinishedAt
		if t == nil {
			t = &m.UpdatedAt
		}
		msg := "migration failed"
		if m.Error != "" {
			msg += ": " + m.Error
		}
		add(t, "ERROR", "FAILED", msg, string(m.State))
	case StatePaused:
		add(&m.UpdatedAt, "INFO", "PAUSED", "migration stopped by the user; it can be restarted from its checkpoint", string(m.State))
	case StateCuttingOver:
		add(&m.UpdatedAt, "INFO", "CUTTING_OVER", "cutover requested: writes to the source stop and the sync drains", string(m.State))
	case StateCompleted:
		add(m.FinishedAt, "INFO", "COMPLETED", "migration completed", string(m.State))
	case StateExpired:
		add(m.FinishedAt, "INFO", "EXPIRED", "the cutover window ended without a cutover", string(m.State))
	case StateReleased:
		add(m.ReleasedAt, "INFO", "RELEASED", "migration released", string(m.State))
	}
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].Time.Before(ev[j].Time) })
	return ev
}
