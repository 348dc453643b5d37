// Package scan is the Redis engine's scan mode, for sources that forbid
// PSYNC (managed services): no replication link, only client commands. The
// full step subscribes to keyspace notifications and then SCANs and copies
// every key (DUMP/RESTORE, big keys in chunks by type); the incremental
// step copies again the keys notified since; cutover pauses the source's
// writes and copies what is left. Weaker than PSYNC, and its messages say so.
package scan

// How the scan mode works.
//
// Full step: before anything is copied ferry subscribes to the source's
// keyspace notifications (PSUBSCRIBE __keyspace@<db>__:*, after CONFIG SET
// notify-keyspace-events when needed), so every key changed from then on is
// queued. It then SCANs every included db (cluster source: every master),
// sizes each batch of keys with MEMORY USAGE, and copies the small ones with
// one pipeline of DUMP + PEXPIRETIME (PTTL before 7.0) and RESTORE key
// <abs-ttl> payload REPLACE ABSTTL through package writer. Keys bigger than
// scan_big_key_bytes (64 MiB) are copied by type in bounded chunks (GETRANGE,
// LRANGE, SSCAN, ZSCAN, HSCAN into SET/APPEND, RPUSH, SADD, ZADD with exact
// scores, HSET, then PEXPIREAT), so the agent's memory does not grow with a
// key. When the target cannot RESTORE the source's payloads (an older
// target: "DUMP payload version or checksum are wrong"), the payload ferry
// already holds is decoded with package rdb and written with the same
// type-specific commands (strings, lists, sets, zsets, hashes; streams and
// module values need RESTORE).
//
// Incremental step: the queued keys are copied again (DUMP/RESTORE, or DEL
// on the target when the key is gone from the source), de-duplicated, in
// the order of their first notification. Lag is the age of the oldest change
// not yet copied. Cutover pauses the source's writes (CLIENT PAUSE WRITE),
// makes sure every notification sent before the pause has arrived (a PING
// on the subscription comes back after them), copies what is left and ends.
//
// This is weaker than PSYNC replication, and the step messages say so:
// notifications are fire-and-forget (a dropped subscription loses them: ferry
// then subscribes again and rescans every db, removing from the target the
// keys gone from the source); a key's intermediate states are not replayed,
// only its latest value is copied; FLUSHDB, FLUSHALL and SWAPDB send no
// notification (ferry watches INFO commandstats and rescans when they ran);
// and there is no resumable offset: after an agent restart the incremental
// step scans everything again. The full step checkpoints the db and SCAN
// cursor it reached, which a retry on the same agent resumes from while the
// subscription that covers the keys already copied is still alive; without
// it the scan starts over and ends by removing stale keys from the target.
//
// Options.Extra settings of the scan mode (package config): scan_big_key_bytes (MEMORY USAGE
// above which a key is copied in chunks; default 64 MiB), scan_count (SCAN
// COUNT and keys per pipeline; 512), scan_max_pending_keys (distinct changed
// keys queued before ferry gives up on the queue and rescans; 1M), scan_copy
// (auto | commands: never RESTORE strings, lists, sets, zsets, hashes),
// notify_keyspace_events (auto: CONFIG GET/SET | preconfigured: the source's
// operator set "KA"), cutover_pause (write: CLIENT PAUSE WRITE | none: the
// source refuses it and the application has stopped writing).

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/engine/redis/kit"
)

// weakNote is appended to the scan mode's step messages.
const weakNote = "scan mode is weaker than PSYNC replication: keyspace notifications are fire-and-forget " +
	"(a lost subscription makes ferry rescan every db), a key's intermediate states are not replayed (only its latest value is copied), " +
	"and there is no resumable offset (after an agent restart the full scan runs again)"

// Sizes and limits of the scan mode (its options are config.Scan).
const (
	dumpBatchBytes = 32 << 20 // bytes of DUMP payloads read in one pipeline
	chunkElems     = 1000     // elements per chunk of a big key
	chunkBytes     = 1 << 20  // bytes per chunk of a big string
	scanSessionTTL = 2 * time.Minute
	maxRescans     = 5 // rescans in a row (one step run) before giving up
)

// Mode runs the steps of scan-mode jobs; its Links hold the keyspace subscriptions that outlive a step.
type Mode struct{ kit.Deps }

// Check validates a scan-mode job without touching the network.
func (e *Mode) Check(m *ferry.Migration, _ *config.Options) error {
	if err := m.ValidateSource(); err != nil {
		return err
	}
	if err := kit.CheckCommon(m); err != nil {
		return err
	}
	if m.Modes.Incremental && !m.Modes.Full {
		return ferry.FieldError("modes.incremental", "scan-mode incremental sync re-copies the keys changed since its full scan: enable full too")
	}
	if len(m.Source.Addrs) == 0 || (!m.Source.Cluster && len(m.Source.Addrs) != 1) {
		return ferry.FieldError("source.addrs", "give the one source server (or, for a Redis Cluster source, its seed nodes)")
	}
	f, err := kit.NewFilter(m)
	if err != nil {
		return err
	}
	if m.Source.Cluster {
		if _, ok := f.DB(0); !ok {
			return ferry.FieldError("options.filters.includeDbs", "a Redis Cluster source has only db 0, which the filters exclude")
		}
	}
	return nil
}

// RunStep runs one step of a scan-mode job.
func (e *Mode) RunStep(ctx context.Context, m *ferry.Migration, o *config.Options, step ferry.StepName, rt ferry.StepRuntime) error {
	switch step {
	case ferry.StepPrecheck:
		return e.scanPrecheck(ctx, m, &o.Scan, rt)
	case ferry.StepFull:
		return e.scanFull(ctx, m, &o.Scan, rt)
	case ferry.StepIncremental:
		return e.scanIncremental(ctx, m, &o.Scan, rt)
	case ferry.StepCutover:
		e.Links.Drop(m.ID)
		rt.Message("every key changed before the pause was copied again; " + kit.PauseNote(m))
		return nil
	case ferry.StepVerify:
		return kit.Verify(ctx, m, rt)
	}
	return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("the redis engine has no step %s", step)}
}

// takeSession takes the session parked for a job (nil when none is).
func (e *Mode) takeSession(id string) *scanSession {
	s, _ := e.Links.Take(id).(*scanSession)
	return s
}

// msgRuntime keeps the last message of a wrapped runtime's step.
type msgRuntime struct {
	ferry.StepRuntime
	msg string
}

func (r *msgRuntime) Message(s string) { r.msg = s; r.StepRuntime.Message(s) }

// Unwrap returns the wrapped runtime (ferry.RecordCutover reaches the
// agent's cutover record through it).
func (r *msgRuntime) Unwrap() ferry.StepRuntime { return r.StepRuntime }
