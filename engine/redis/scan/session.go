package scan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ferrymigrate/ferry/engine/redis/config"
)

// scanCheckpoint is what the scan mode saves.
type scanCheckpoint struct {
	Mode string `json:"mode"` // "scan"
	// Session names the keyspace-notification subscription the progress
	// relies on: a full scan resumes from Node/DB/Cursor only while it is
	// still alive (the keys already copied are covered by it).
	Session string `json:"session,omitempty"`
	// Where the full scan continues: the source master (index into the
	// sorted master addresses; 0 for a standalone source), the db and the
	// SCAN cursor.
	Node     int    `json:"node"`
	DB       int    `json:"db"`
	Cursor   uint64 `json:"cursor"`
	Complete bool   `json:"complete,omitempty"`
	// Reconcile: the scan must end by removing from the target the keys
	// gone from the source (changes were lost before it started).
	Reconcile bool  `json:"reconcile,omitempty"`
	Done      int64 `json:"done,omitempty"`
	Bytes     int64 `json:"bytes,omitempty"`
	Ops       int64 `json:"ops,omitempty"` // incremental: keys copied again
	Rescans   int   `json:"rescans,omitempty"`
	// NotifyOriginal holds, per source node, notify-keyspace-events as it
	// was before ferry changed it; cutover puts it back.
	NotifyOriginal map[string]string `json:"notifyOriginal,omitempty"`
}

func readScanCheckpoint(raw json.RawMessage) (*scanCheckpoint, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c scanCheckpoint
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("bad redis scan checkpoint: %w", err)
	}
	if c.Mode != string(config.ModeScan) {
		return nil, nil
	}
	return &c, nil
}

// ---------------------------------------------------------------------------
// The session: the subscriptions of every source node and their queue. It
// outlives a step: the full step hands it to the incremental step, and a
// step retried on the same agent takes it back.

type scanSession struct {
	id    string
	q     *changeQueue
	ns    []*notifier
	nodes []string
	// flushSig is INFO commandstats' FLUSHDB/FLUSHALL/SWAPDB calls per node
	// when the subscription began ("" when unavailable).
	flushSig map[string]string
	// dirty: a rescan was started and has not completed.
	dirty string
}

// Close ends the subscriptions (kit.Parked).
func (s *scanSession) Close() {
	if s == nil {
		return
	}
	for _, n := range s.ns {
		n.close()
	}
	s.ns = nil
}

// broken says, without network round trips, why the session no longer
// covers every change (nil: it does).
func (s *scanSession) broken() error {
	if err := s.lostNow(); err != nil {
		return err
	}
	if s.dirty != "" {
		return errors.New("a rescan was interrupted (" + s.dirty + ")")
	}
	return nil
}

// lostNow is broken without the interrupted-rescan mark.
func (s *scanSession) lostNow() error {
	if s == nil {
		return errors.New("no keyspace notification subscription")
	}
	if len(s.ns) == 0 {
		return errors.New("keyspace notification subscription closed")
	}
	for _, n := range s.ns {
		if err := n.lost(); err != nil {
			return err
		}
	}
	if s.q.overflowed() {
		return fmt.Errorf("more than %d distinct changed keys were queued (options.extra.scan_max_pending_keys)", s.q.max)
	}
	return nil
}

// check is broken plus what needs the network: FLUSHDB/FLUSHALL/SWAPDB on
// the source (no notification says what they removed or moved) and, for a
// cluster source, a change of masters.
func (s *scanSession) check(ctx context.Context, src *scanSource) error {
	if err := s.broken(); err != nil {
		return err
	}
	for i, addr := range s.nodes {
		old := s.flushSig[addr]
		if old == "" {
			continue
		}
		sig, err := flushSignature(ctx, src.node(i, 0))
		if err != nil {
			continue // INFO failing now: the next check will tell
		}
		if sig != old {
			return fmt.Errorf("FLUSHDB, FLUSHALL or SWAPDB ran on the source %s (INFO commandstats: %s, was %s)", addr, sig, old)
		}
	}
	if src.cluster {
		ms, err := src.masters(ctx)
		if err == nil && strings.Join(ms, ",") != strings.Join(s.nodes, ",") {
			return fmt.Errorf("the source cluster's masters changed (%s, were %s)", strings.Join(ms, " "), strings.Join(s.nodes, " "))
		}
	}
	return nil
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// subscribe (re)starts the session's subscriptions on every master: it
// enables notifications, records the flush counters and subscribes. What
// was queued is dropped: the caller scans everything next.
func (s *scanSession) subscribe(ctx context.Context, sc *scanner) error {
	for _, n := range s.ns {
		n.close()
	}
	s.ns = nil
	if sc.src.cluster {
		ms, err := sc.src.masters(ctx)
		if err != nil {
			return fmt.Errorf("source cluster topology: %w", err)
		}
		sc.src.nodes = ms
	}
	s.nodes = append([]string(nil), sc.src.nodes...)
	s.q.reset()
	s.flushSig = map[string]string{}
	for i, addr := range s.nodes {
		c := sc.src.node(i, 0)
		if !sc.opts.Preconfigured {
			orig, changed, err := ensureNotifications(ctx, c, addr)
			if err != nil {
				if sc.m.Modes.Incremental {
					return err
				}
				sc.notes = append(sc.notes, "keyspace notifications unavailable, so keys changed during the scan may be copied in an intermediate state")
				s.Close()
				return nil
			}
			if changed {
				if sc.cp.NotifyOriginal == nil {
					sc.cp.NotifyOriginal = map[string]string{}
				}
				if _, ok := sc.cp.NotifyOriginal[addr]; !ok {
					sc.cp.NotifyOriginal[addr] = orig
				}
			}
		}
		sig, _ := flushSignature(ctx, c)
		s.flushSig[addr] = sig
	}
	for _, addr := range s.nodes {
		n, err := startNotifier(ctx, sc.src.ep, addr, sc.f, sc.src.cluster, s.q)
		if err != nil {
			s.Close()
			return fmt.Errorf("subscribe to keyspace notifications: %w", err)
		}
		s.ns = append(s.ns, n)
	}
	s.id = newSessionID()
	s.dirty = ""
	return nil
}

// restoreNotifications puts back notify-keyspace-events where ferry changed it.
func (sc *scanner) restoreNotifications(ctx context.Context) {
	for i, addr := range sc.src.nodes {
		orig, ok := sc.cp.NotifyOriginal[addr]
		if !ok {
			continue
		}
		if err := sc.src.node(i, 0).ConfigSet(ctx, "notify-keyspace-events", orig).Err(); err != nil {
			sc.notes = append(sc.notes, fmt.Sprintf("could not restore notify-keyspace-events %q on %s: %v", orig, addr, err))
			continue
		}
		delete(sc.cp.NotifyOriginal, addr)
	}
}
