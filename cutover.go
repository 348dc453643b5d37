package ferry

import (
	"context"
	"fmt"
	"time"
)

// Ways an engine stops the source's writes at cutover
// (CutoverInfo.SourceWriteBlock).
const (
	// WriteBlockClientPause: Redis CLIENT PAUSE <ms> WRITE; the pause
	// lasts until SourceBlockedUntil unless released earlier.
	WriteBlockClientPause = "client_pause_write"
	// WriteBlockReadOnly: MySQL SET GLOBAL read_only=ON (opt-in); it lasts
	// until released (it does not block users with SUPER / READ_ONLY ADMIN).
	WriteBlockReadOnly = "read_only"
	// WriteBlockNone: ferry did not stop the source's writes; a change made
	// on the source after the final position is not on the target.
	WriteBlockNone = "none"
)

// CutoverInfo is the record of a job's cutover: what ferry did to the
// source, up to which position the target holds the source's changes, and
// what verification found after. It is stored with the job.
type CutoverInfo struct {
	RequestedAt *time.Time `json:"requestedAt,omitempty"`
	// SourceWriteBlock says how the source's writes were stopped (one of
	// the WriteBlock constants); "" until the engine reports it.
	SourceWriteBlock string `json:"sourceWriteBlock,omitempty"`
	// SourceBlockedAt is when the source stopped taking writes;
	// SourceBlockedUntil when the block lifts by itself (a Redis pause),
	// nil when it lasts until released.
	SourceBlockedAt    *time.Time `json:"sourceBlockedAt,omitempty"`
	SourceBlockedUntil *time.Time `json:"sourceBlockedUntil,omitempty"`
	// SourceReleasedAt is when ferry lifted the block (release-source).
	SourceReleasedAt *time.Time `json:"sourceReleasedAt,omitempty"`
	// SourcePosition is the source's final position, read once its writes
	// were stopped (or, without a block, when cutover was asked for).
	SourcePosition string `json:"sourcePosition,omitempty"`
	// DrainedPosition is the source position the target held all changes
	// up to when the forward sync ended; DrainedAt when that was.
	DrainedPosition string     `json:"drainedPosition,omitempty"`
	DrainedAt       *time.Time `json:"drainedAt,omitempty"`
	// Verification is the result of the verification step that followed.
	Verification *CutoverVerification `json:"verification,omitempty"`
	// Notes say in words what the DBA must know (the source stays paused).
	Notes []string `json:"notes,omitempty"`
}

// CutoverVerification is a verification step's outcome, kept in the
// cutover record.
type CutoverVerification struct {
	State     StepState  `json:"state"` // done (equal) or failed
	Checked   int64      `json:"checked"`
	Missing   int64      `json:"missing"`
	Extra     int64      `json:"extra"`
	Different int64      `json:"different"`
	Unit      string     `json:"unit,omitempty"`
	Message   string     `json:"message,omitempty"`
	At        *time.Time `json:"at,omitempty"`
}

// Source states (CutoverInfo.SourceState).
const (
	SourceWritable    = "writable"
	SourceWritePaused = "write_paused"
	SourceReadOnly    = "read_only"
)

// SourceBlocked reports whether the block ferry put on the source's writes
// still holds at now.
func (c *CutoverInfo) SourceBlocked(now time.Time) bool {
	if c == nil || c.SourceBlockedAt == nil || c.SourceReleasedAt != nil {
		return false
	}
	if c.SourceWriteBlock == "" || c.SourceWriteBlock == WriteBlockNone {
		return false
	}
	return c.SourceBlockedUntil == nil || now.Before(*c.SourceBlockedUntil)
}

// SourceState says whether the source takes writes at now, as far as
// ferry's own block goes.
func (c *CutoverInfo) SourceState(now time.Time) string {
	if !c.SourceBlocked(now) {
		return SourceWritable
	}
	if c.SourceWriteBlock == WriteBlockReadOnly {
		return SourceReadOnly
	}
	return SourceWritePaused
}

// Summary is one sentence on the source after cutover, for answers and the
// CLI.
func (c *CutoverInfo) Summary(now time.Time) string {
	if c == nil {
		return ""
	}
	switch {
	case c.SourceReleasedAt != nil:
		return "the source's write block was lifted at " + c.SourceReleasedAt.UTC().Format(time.RFC3339) + ": it takes writes again, and they are not migrated"
	case c.SourceBlocked(now) && c.SourceWriteBlock == WriteBlockClientPause:
		s := "the source stays write-paused (CLIENT PAUSE WRITE)"
		if c.SourceBlockedUntil != nil {
			s += " until " + c.SourceBlockedUntil.UTC().Format(time.RFC3339)
		}
		return s + ": switch the clients to the target, or release the source (release-source) to lift the pause"
	case c.SourceBlocked(now) && c.SourceWriteBlock == WriteBlockReadOnly:
		return "the source stays read-only (SET GLOBAL read_only=ON; users with SUPER or READ_ONLY ADMIN can still write) until released: release the source (release-source) to lift it"
	case c.SourceWriteBlock == WriteBlockClientPause && c.SourceBlockedUntil != nil:
		return "the source's write pause ended at " + c.SourceBlockedUntil.UTC().Format(time.RFC3339) + ": it takes writes again, and they are not migrated"
	case c.SourceWriteBlock == WriteBlockNone:
		return "ferry did not stop the source's writes: a change made on the source after " + orDash(c.SourcePosition) + " is not on the target"
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "the final position"
	}
	return s
}

// CutoverRecorder is implemented by a StepRuntime that keeps a cutover
// record (the agent's): engines report what they did to the source
// through it. fn runs on the stored job's record (never nil) at the next
// flush; it must only set fields.
type CutoverRecorder interface {
	RecordCutover(fn func(c *CutoverInfo))
}

// RecordCutover reports to rt's cutover record if rt keeps one.
func RecordCutover(rt StepRuntime, fn func(c *CutoverInfo)) {
	for rt != nil {
		if r, ok := rt.(CutoverRecorder); ok {
			r.RecordCutover(fn)
			return
		}
		u, ok := rt.(interface{ Unwrap() StepRuntime })
		if !ok {
			return
		}
		rt = u.Unwrap()
	}
}

// SourceReleaser is implemented by engines that can lift the write block
// they put on a source at cutover.
type SourceReleaser interface {
	ReleaseSource(ctx context.Context, m *Migration) error
}

// CutoverPlanner is implemented by engines that say beforehand what their
// cutover will do to the job's source (the answer to a cutover request
// carries it in the cutover record's notes until the engine reports).
type CutoverPlanner interface {
	CutoverPlan(m *Migration) string
}

// RecordVerification copies the verification step's outcome into the
// cutover record of a job that was cut over.
func (m *Migration) RecordVerification(now time.Time) {
	v := m.Step(StepVerify)
	if v == nil || m.Cutover == nil || !m.CutOver() || (v.State != StepDone && v.State != StepFailed) {
		return
	}
	t := now
	m.Cutover.Verification = &CutoverVerification{State: v.State, Checked: v.Counters.Done, Missing: v.Counters.Missing,
		Extra: v.Counters.Extra, Different: v.Counters.Different, Unit: v.Counters.Unit, Message: v.Message, At: &t}
}

// ReleaseSource lifts the write block the job's cutover put on its source
// (Redis CLIENT UNPAUSE, MySQL SET GLOBAL read_only=OFF) and records it.
// It runs in this process, like validations, over the job's source
// connection settings.
func (s *Service) ReleaseSource(ctx context.Context, projectID, id string) (*Migration, error) {
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	m, err := s.getMigration(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	c := m.Cutover
	if c == nil || c.SourceBlockedAt == nil || c.SourceWriteBlock == "" || c.SourceWriteBlock == WriteBlockNone {
		return nil, &Error{Code: ECONFLICT, Reason: "SOURCE_NOT_BLOCKED",
			Message: fmt.Sprintf("migration %s has not blocked its source's writes (state %s); there is nothing to release", m.ID, m.State),
			Advice:  "release-source lifts the write block a cutover put on the source; cut over first"}
	}
	if c.SourceReleasedAt != nil {
		return m, nil
	}
	if !m.CutOver() && m.State == StateCuttingOver {
		return nil, &Error{Code: ECONFLICT, Reason: "CUTOVER_IN_PROGRESS",
			Message: fmt.Sprintf("migration %s is still draining the source; releasing its writes now would lose changes", m.ID),
			Advice:  "wait for the cutover step to finish, then release the source"}
	}
	eng, err := s.Registry.Engine(m.Engine)
	if err != nil {
		return nil, err
	}
	rel, ok := eng.(SourceReleaser)
	if !ok {
		return nil, &Error{Code: ENOTIMPLEMENTED, Message: fmt.Sprintf("the %s engine cannot lift a source's write block", m.Engine)}
	}
	if err := rel.ReleaseSource(ctx, m); err != nil {
		return nil, err
	}
	return s.Store.UpdateMigration(ctx, id, func(m *Migration) error {
		if m.Cutover != nil && m.Cutover.SourceReleasedAt == nil {
			m.Cutover.SourceReleasedAt = &now
		}
		m.UpdatedAt = now
		return nil
	})
}
