package mysql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Parallel apply of the binlog.
//
// The reader (binlog.go) cuts the stream into whole source transactions
// (txn) and hands them, in stream order, to N workers, each with its own
// connection to the written side. Two transactions conflict when they
// touch a common (table, unique key value) — the primary key or any unique
// key, in the before or the after image of a row. The scheduler (sched)
// sends a transaction:
//
//   - to the worker that holds the in-flight transactions it conflicts
//     with, when they are all on one worker: a worker applies its queue in
//     order, so changes to one key keep the source's order;
//   - to the least loaded worker when it conflicts with nothing in flight;
//   - nowhere yet when it conflicts with transactions on two or more
//     workers: the reader waits until all but one of them are done.
//
// Transactions that change a key-less table, and DDL, are barriers: they
// wait until nothing is in flight and run alone.
//
// A worker takes several queued transactions into one target transaction
// (group commit), where the changes of each keyed table collapse to the
// last image of each key (applier). Atomicity: a source transaction is
// never split across target transactions.
//
// Checkpoint (low watermark): transactions complete out of order, so the
// position ferry records is the end of the last transaction at or below
// which every transaction is applied. After a kill the stream restarts
// there and re-applies what some workers had already done after it: the
// changes of keyed tables are row images written by key (REPLACE of the
// after image, DELETE by key) replayed in the source's order, so the
// replay ends in the source's state. Key-less tables, whose changes are a
// multiset, are applied exactly once: their transactions are barriers that
// commit with their own end as the recorded position.

// txn is one source transaction (or statement) in stream order.
type txn struct {
	seq       uint64
	end       pos // binlog position after it (and the GTID state)
	eventTime int64
	recv      time.Time // when the reader read its end
	changes   []change
	ops       int64
	keys      []string // conflict keys
	barrier   bool     // run alone (key-less table)
	done      bool
	// applied: changes of moved tables (false: skipped, guarded, or only
	// tables that do not move).
	applied bool
	ddl     bool
	guarded bool
}

// change is one row change of a source transaction.
type change struct {
	t      *table
	kind   byte  // 'i' insert, 'u' update, 'd' delete
	before []any // the row (insert, delete) or its before image (update)
	after  []any // update: the after image
	upsert bool  // the table has no unique key but its key (see applier.upsert)
}

// sched is the conflict scheduler's pure logic: which worker a transaction
// goes to. It is driven by one goroutine (the reader).
type sched struct {
	n        int
	maxQueue int                 // transactions a worker may hold
	owner    map[string]keyOwner // conflict key -> last in-flight transaction touching it
	load     []int               // in-flight transactions per worker
	total    int
	fill     int // see place
}

type keyOwner struct {
	worker int
	seq    uint64
}

// schedFill is how many transactions a worker holds before the scheduler
// hands non-conflicting ones to the next (see place).
var schedFill = 4

func newSched(workers, maxQueue, fill int) *sched {
	if workers < 1 {
		workers = 1
	}
	if maxQueue < 1 {
		maxQueue = 1
	}
	if fill < 1 {
		fill = 1
	}
	return &sched{n: workers, maxQueue: maxQueue, fill: min(fill, maxQueue), owner: map[string]keyOwner{}, load: make([]int, workers)}
}

// place returns the worker t goes to, or -1 when it must wait for
// in-flight transactions to complete first.
func (s *sched) place(t *txn) int {
	if t.barrier {
		if s.total == 0 {
			return 0
		}
		return -1
	}
	w := -1
	for _, k := range t.keys {
		o, ok := s.owner[k]
		if !ok {
			continue
		}
		if w >= 0 && o.worker != w {
			return -1 // conflicts on two workers
		}
		w = o.worker
	}
	if w >= 0 {
		if s.load[w] >= s.maxQueue {
			return -1
		}
		return w
	}
	// The first worker holding fewer than fill transactions: while it
	// keeps up, the transactions queue behind its commit and it takes them
	// as one group (fewer, larger target transactions); the next worker
	// joins in when its queue grows. Then the least loaded.
	for i := 0; i < s.n; i++ {
		if s.load[i] < s.fill {
			return i
		}
	}
	best := 0
	for i := 1; i < s.n; i++ {
		if s.load[i] < s.load[best] {
			best = i
		}
	}
	if s.load[best] >= s.maxQueue {
		return -1
	}
	return best
}

// assign records t as in flight on worker w.
func (s *sched) assign(t *txn, w int) {
	for _, k := range t.keys {
		s.owner[k] = keyOwner{worker: w, seq: t.seq}
	}
	s.load[w]++
	s.total++
}

// finish records t (assigned to w) as applied.
func (s *sched) finish(t *txn, w int) {
	for _, k := range t.keys {
		if o, ok := s.owner[k]; ok && o.seq == t.seq {
			delete(s.owner, k)
		}
	}
	s.load[w]--
	s.total--
}

// conflictKeys lists the (table, unique key value) pairs a change touches:
// for each unique index (the primary key included) of the table, the
// values of its columns in the row's before and after images. An index
// with a NULL in a row is skipped for that row (NULLs never collide).
// String values of non-binary collations are folded (lower case, trailing
// spaces dropped) so that values the target compares equal give one key
// (a coarser key only costs parallelism).
func conflictKeys(dst []string, t *table, uniq [][]int, c *change) []string {
	rows := [][]any{c.before}
	if c.kind == 'u' {
		rows = append(rows, c.after)
	}
	var sb strings.Builder
	for _, r := range rows {
		for ui, cols := range uniq {
			sb.Reset()
			sb.WriteString(t.DB)
			sb.WriteByte('.')
			sb.WriteString(t.Name)
			sb.WriteByte(0)
			sb.WriteString(strconv.Itoa(ui))
			ok := true
			for _, ci := range cols {
				if ci >= len(r) || r[ci] == nil {
					ok = false
					break
				}
				sb.WriteByte(0)
				writeKeyValue(&sb, r[ci], foldable(&t.Cols[ci]))
			}
			if ok {
				dst = append(dst, sb.String())
			}
		}
	}
	return dst
}

// foldable reports whether a column compares strings by a collation that
// may equate different bytes.
func foldable(c *column) bool {
	switch c.DataType {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		return c.Collation != "" && c.Collation != "binary"
	}
	return false
}

// writeKeyValue writes a binlog value in a canonical form.
func writeKeyValue(sb *strings.Builder, v any, fold bool) {
	switch x := v.(type) {
	case int8:
		sb.WriteString(strconv.FormatInt(int64(x), 10))
	case int16:
		sb.WriteString(strconv.FormatInt(int64(x), 10))
	case int32:
		sb.WriteString(strconv.FormatInt(int64(x), 10))
	case int64:
		sb.WriteString(strconv.FormatInt(x, 10))
	case int:
		sb.WriteString(strconv.FormatInt(int64(x), 10))
	case uint8:
		sb.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint16:
		sb.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint32:
		sb.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint64:
		sb.WriteString(strconv.FormatUint(x, 10))
	case float32:
		sb.WriteString(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		if math.IsNaN(x) {
			sb.WriteString("NaN")
		} else {
			sb.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
	case string:
		writeKeyString(sb, x, fold)
	case []byte:
		writeKeyString(sb, string(x), fold)
	default:
		sb.WriteString(strings.ReplaceAll(strings.TrimSpace(fmt.Sprint(x)), "\x00", "\x01"))
	}
}

func writeKeyString(sb *strings.Builder, s string, fold bool) {
	if fold {
		s = strings.ToLower(strings.TrimRight(s, " "))
	}
	// Escape the separator so that ("a\x00", "b") and ("a", "\x00b") differ.
	if strings.IndexByte(s, 0) >= 0 || strings.IndexByte(s, 1) >= 0 {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\x01", "\x01\x01"), "\x00", "\x01\x02")
	}
	sb.WriteString(s)
}

// collapsible reports whether the changes of a table may collapse to the
// last image of each key inside one target transaction: its key's values
// must be equal on the target exactly when their binlog forms are equal
// (numbers, dates, binary strings; not strings of a collation, where 'a'
// and 'A ' may be one row).
func collapsible(t *table) bool {
	if t.keyless() {
		return false
	}
	for _, ci := range t.Key {
		switch t.Cols[ci].DataType {
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal",
			"date", "datetime", "timestamp", "time", "year", "varbinary":
		default:
			return false
		}
	}
	return true
}
