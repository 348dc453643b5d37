package kit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
)

// PauseSource pauses the source's writes for cutover (CLIENT PAUSE WRITE
// for the job's pause seconds) and returns the master offset that then
// holds every write.
func PauseSource(ctx context.Context, c goredis.UniversalClient, m *ferry.Migration) (int64, error) {
	sec := config.PauseSeconds(m)
	if err := c.Do(ctx, "CLIENT", "PAUSE", strconv.Itoa(sec*1000), "WRITE").Err(); err != nil {
		return 0, fmt.Errorf("cutover: CLIENT PAUSE WRITE on the source: %w", err)
	}
	off, err := MasterOffset(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("cutover: source offset: %w", err)
	}
	return off, nil
}

// RecordPause reports the source's write pause to the job's cutover record.
func RecordPause(rt ferry.StepRuntime, m *ferry.Migration, at time.Time, pos string) {
	sec := config.PauseSeconds(m)
	until := at.Add(time.Duration(sec) * time.Second)
	ferry.RecordCutover(rt, func(c *ferry.CutoverInfo) {
		c.SourceWriteBlock = ferry.WriteBlockClientPause
		if c.SourceBlockedAt == nil || c.SourceReleasedAt != nil { // a resumed cutover pauses again: keep the first time
			c.SourceBlockedAt = &at
		}
		c.SourceBlockedUntil, c.SourceReleasedAt = &until, nil
		c.SourcePosition = pos
		c.Notes = []string{fmt.Sprintf("the source's writes are paused (CLIENT PAUSE WRITE for %d s, until %s): clients writing to it wait; switch them to the target, or lift the pause with release-source", sec, until.UTC().Format(time.RFC3339))}
	})
}

// RecordDrained reports the position the target holds every change up to.
func RecordDrained(rt ferry.StepRuntime, pos string) {
	now := time.Now()
	ferry.RecordCutover(rt, func(c *ferry.CutoverInfo) {
		c.DrainedPosition, c.DrainedAt = pos, &now
	})
}

// PauseNote says what cutover left on the source, for the cutover step's
// message.
func PauseNote(m *ferry.Migration) string {
	if n := m.Cutover.Summary(time.Now()); n != "" {
		return n
	}
	return fmt.Sprintf("the source's writes stay paused (CLIENT PAUSE WRITE, %d s from the cutover): switch the clients to the target, or lift the pause with release-source", config.PauseSeconds(m))
}

// CutoverPlan says what cutover does to the source (ferry.CutoverPlanner).
func CutoverPlan(m *ferry.Migration) string {
	if config.NoPause(m) {
		return "cutover does not pause the source's writes (cutover_pause=none): stop the application's writes before cutting over"
	}
	if m.Options.ReleaseSourceAfterCutover {
		return fmt.Sprintf("cutover pauses the source's writes (CLIENT PAUSE WRITE for %d s) while it drains and verifies, and lifts the pause when the job completes (releaseSourceAfterCutover): writes to the source after that are not migrated", config.PauseSeconds(m))
	}
	return fmt.Sprintf("cutover pauses the source's writes (CLIENT PAUSE WRITE for %d s) and leaves them paused after the target has every change: switch the clients to the target, or lift the pause with release-source", config.PauseSeconds(m))
}

// ReleaseSource lifts the write pause cutover put on the source (CLIENT
// UNPAUSE on it, on every master of a cluster source).
func ReleaseSource(ctx context.Context, m *ferry.Migration) error {
	c := Client(&m.Source, 0)
	defer c.Close()
	unpause := func(ctx context.Context, c goredis.UniversalClient) error {
		return c.Do(ctx, "CLIENT", "UNPAUSE").Err()
	}
	var err error
	if cc, ok := c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return unpause(ctx, n) })
	} else {
		err = unpause(ctx, c)
	}
	if err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "SOURCE_RELEASE_FAILED",
			Message: fmt.Sprintf("CLIENT UNPAUSE on the source %s: %v", strings.Join(m.Source.Addrs, ","), err),
			Advice:  "run CLIENT UNPAUSE on the source yourself (Redis 6.2 or newer), or wait for the pause to end"}
	}
	return nil
}
