package mongo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ferrymigrate/ferry"
)

// opKind is what applying a change does on the target.
type opKind int

const (
	opInsert  opKind = iota // insert doc; an existing _id is replaced by it
	opReplace               // replace (upsert) the document by _id with doc
	opUpdate                // apply update ($set/$unset) to the document by _id
	opFetch                 // read the document from the source by _id: replace with it, or delete when gone
	opDelete                // delete by _id
	opDDL                   // a collection-level change (cmd)
)

func (k opKind) String() string {
	return [...]string{"insert", "replace", "update", "fetch", "delete", "ddl"}[k]
}

// change is one thing to apply to the target. Every kind is idempotent:
// inserts and replaces carry the whole document, deletes and DDL tolerate
// a target that already has them, updates fall back to fetching the
// document from the source.
type change struct {
	kind     opKind
	db, coll string
	id       bson.RawValue
	doc      bson.Raw
	update   bson.D
	ddl      *ddl
}

func (c *change) ns() string { return c.db + "." + c.coll }

// ddl is a collection-level change.
type ddl struct {
	op      string // create, drop, rename, dropDatabase, createIndexes, dropIndexes, collMod
	options bson.Raw
	to      string // rename: "db.coll"
	dropTgt bool
	indexes []bson.Raw // createIndexes: specs
	names   []string   // dropIndexes
	cmd     bson.D     // collMod
}

// position is where the reader stands: the last change read.
type position struct {
	TS    bson.Timestamp
	Token bson.Raw
	Wall  time.Time
}

// readResult is what one read gives.
type readResult struct {
	changes []change
	pos     position
	// caughtUp: nothing more to read right now.
	caughtUp bool
	// entries read (including those filtered out or already applied).
	entries int
	// first is the source time of the first new change read (zero if none).
	first time.Time
}

// reader is a continuous-sync source: oplog tailing or change streams.
type reader interface {
	next(ctx context.Context) (readResult, error)
	// behind tells whether the source has changes after position at (a
	// position next returned) and, if so, the source time of the oldest of
	// them (zero when unknown). A read that returns nothing is no proof of
	// being caught up (a cursor the server closed, a batch not yet
	// filled): readiness for cutover needs this answer. It may run
	// concurrently with next.
	behind(ctx context.Context, at position) (bool, time.Time, error)
	close()
}

// errResumeLost: the source no longer holds the resume point.
var errResumeLost = errors.New("the source's oplog no longer holds the resume point")

// txnBuffer holds the operations of multi-document transactions until
// they commit (partialTxn applyOps chains, prepared transactions).
type txnBuffer map[string][]bson.Raw

func txnKey(entry bson.Raw) string {
	lsid := entry.Lookup("lsid")
	n := entry.Lookup("txnNumber")
	if lsid.Type == 0 {
		return ""
	}
	return string(lsid.Value) + "/" + string(n.Value)
}

// parseOplog turns one oplog entry into changes. It understands real
// MongoDB's format (inserts, replacements, $v:1 and $v:2 updates, deletes,
// 'c' commands with applyOps and transactions, no-ops) and FerretDB's
// (updates logged as {$v:1, $set: <whole document>}).
//
// The entry comes from the source server: it is validated first, so that a
// malformed document is an error rather than a change carrying it.
func parseOplog(entry bson.Raw, f *filter, txns txnBuffer) ([]change, error) {
	if err := validateDeep(entry, 0); err != nil {
		return nil, fmt.Errorf("malformed oplog entry: %w", err)
	}
	return parseEntry(entry, f, txns)
}

// maxBSONDepth bounds the nesting validateDeep walks (MongoDB's own limit
// is 100 levels).
const maxBSONDepth = 200

// validateDeep checks doc and every document and array inside it
// (bson.Raw.Validate checks only the framing of nested ones).
func validateDeep(doc bson.Raw, depth int) error {
	if depth > maxBSONDepth {
		return fmt.Errorf("nested deeper than %d levels", maxBSONDepth)
	}
	if err := doc.Validate(); err != nil {
		return err
	}
	elems, err := doc.Elements()
	if err != nil {
		return err
	}
	for _, el := range elems {
		v := el.Value()
		switch v.Type {
		case bson.TypeEmbeddedDocument, bson.TypeArray:
			if err := validateDeep(bson.Raw(v.Value), depth+1); err != nil {
				return fmt.Errorf("%s: %w", el.Key(), err)
			}
		}
	}
	return nil
}

// parseEntry is parseOplog of a validated entry (or an operation inside
// one).
func parseEntry(entry bson.Raw, f *filter, txns txnBuffer) ([]change, error) {
	op, _ := entry.Lookup("op").StringValueOK()
	ns, _ := entry.Lookup("ns").StringValueOK()
	o, _ := entry.Lookup("o").DocumentOK()
	o2, _ := entry.Lookup("o2").DocumentOK()
	db, coll := splitNS(ns)
	switch op {
	case "n", "":
		return nil, nil
	case "i", "u", "d":
		if !f.ns(db, coll) {
			return nil, nil
		}
	}
	switch op {
	case "i":
		id, err := o.LookupErr("_id")
		if err != nil {
			return nil, fmt.Errorf("insert entry without _id in %s", ns)
		}
		return []change{{kind: opInsert, db: db, coll: coll, id: id, doc: o}}, nil
	case "d":
		id, err := o.LookupErr("_id")
		if err != nil {
			return nil, fmt.Errorf("delete entry without _id in %s", ns)
		}
		return []change{{kind: opDelete, db: db, coll: coll, id: id}}, nil
	case "u":
		id, err := o2.LookupErr("_id")
		if err != nil {
			return nil, fmt.Errorf("update entry without o2._id in %s", ns)
		}
		return []change{parseUpdate(db, coll, id, o)}, nil
	case "c":
		return parseCommand(entry, db, o, f, txns)
	}
	return nil, nil
}

// parseUpdate reads the 'o' of an update entry.
func parseUpdate(db, coll string, id bson.RawValue, o bson.Raw) change {
	c := change{db: db, coll: coll, id: id}
	elems, _ := o.Elements()
	isOp := false
	for _, el := range elems {
		if strings.HasPrefix(el.Key(), "$") || el.Key() == "diff" {
			isOp = true
		}
	}
	if !isOp {
		// A replacement: the whole new document.
		c.kind, c.doc = opReplace, withID(o, id)
		return c
	}
	v, _ := o.Lookup("$v").AsInt64OK()
	if diff, ok := o.Lookup("diff").DocumentOK(); ok && (v == 2 || v == 0) {
		u := &updateBuilder{}
		if u.diff("", diff) && u.inserts <= 1 && len(u.doc()) > 0 {
			c.kind, c.update = opUpdate, u.doc()
		} else {
			c.kind = opFetch
		}
		return c
	}
	set, hasSet := o.Lookup("$set").DocumentOK()
	unset, hasUnset := o.Lookup("$unset").DocumentOK()
	if hasSet && !hasUnset {
		if _, err := set.LookupErr("_id"); err == nil {
			// FerretDB logs every update (and replacement) as the whole
			// post-image in $set, _id included: a replacement.
			c.kind, c.doc = opReplace, set
			return c
		}
	}
	for _, el := range elems {
		switch el.Key() {
		case "$v", "$set", "$unset":
		default:
			c.kind = opFetch
			return c
		}
	}
	u := &updateBuilder{}
	if hasSet {
		se, _ := set.Elements()
		if len(se) > 1 {
			// Several fields set at once: if some are new, the order
			// they get on the target may differ; read the document.
			c.kind = opFetch
			return c
		}
		for _, el := range se {
			u.set = append(u.set, bson.E{Key: el.Key(), Value: el.Value()})
		}
	}
	if hasUnset {
		ue, _ := unset.Elements()
		for _, el := range ue {
			u.unset = append(u.unset, bson.E{Key: el.Key(), Value: ""})
		}
	}
	if len(u.doc()) == 0 {
		// Nothing to $set or $unset (an empty $set): an update document
		// without operators is refused by the target; read the document.
		c.kind = opFetch
		return c
	}
	c.kind, c.update = opUpdate, u.doc()
	return c
}

// withID returns doc with _id first if it lacks one.
func withID(doc bson.Raw, id bson.RawValue) bson.Raw {
	if _, err := doc.LookupErr("_id"); err == nil {
		return doc
	}
	d := bson.D{{Key: "_id", Value: id}}
	elems, _ := doc.Elements()
	for _, el := range elems {
		d = append(d, bson.E{Key: el.Key(), Value: el.Value()})
	}
	b, _ := bson.Marshal(d)
	return b
}

// updateBuilder translates a $v:2 oplog diff into $set/$unset.
type updateBuilder struct {
	set, unset bson.D
	inserts    int
}

func (u *updateBuilder) doc() bson.D {
	var d bson.D
	if len(u.set) > 0 {
		d = append(d, bson.E{Key: "$set", Value: u.set})
	}
	if len(u.unset) > 0 {
		d = append(d, bson.E{Key: "$unset", Value: u.unset})
	}
	return d
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func plainField(k string) bool {
	return k != "" && !strings.ContainsAny(k, ".") && !strings.HasPrefix(k, "$")
}

// diff walks an object diff: i (insert), u (update), d (delete), s<field>
// (a nested object or array diff). It returns false where $set/$unset
// cannot say it (array truncation, field names with dots or $).
func (u *updateBuilder) diff(prefix string, d bson.Raw) bool {
	elems, err := d.Elements()
	if err != nil {
		return false
	}
	for _, el := range elems {
		k := el.Key()
		switch {
		case k == "i" || k == "u":
			sub, ok := el.Value().DocumentOK()
			if !ok {
				return false
			}
			fields, _ := sub.Elements()
			for _, fe := range fields {
				if !plainField(fe.Key()) {
					return false
				}
				u.set = append(u.set, bson.E{Key: join(prefix, fe.Key()), Value: fe.Value()})
				if k == "i" {
					u.inserts++
				}
			}
		case k == "d":
			sub, ok := el.Value().DocumentOK()
			if !ok {
				return false
			}
			fields, _ := sub.Elements()
			for _, fe := range fields {
				if !plainField(fe.Key()) {
					return false
				}
				u.unset = append(u.unset, bson.E{Key: join(prefix, fe.Key()), Value: ""})
			}
		case strings.HasPrefix(k, "s"):
			field := k[1:]
			if !plainField(field) {
				return false
			}
			sub, ok := el.Value().DocumentOK()
			if !ok {
				return false
			}
			if a, _ := sub.Lookup("a").BooleanOK(); a {
				if !u.arrayDiff(join(prefix, field), sub) {
					return false
				}
			} else if !u.diff(join(prefix, field), sub) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// arrayDiff walks an array diff: a:true, l (new length), u<idx>, s<idx>.
func (u *updateBuilder) arrayDiff(prefix string, d bson.Raw) bool {
	elems, _ := d.Elements()
	for _, el := range elems {
		k := el.Key()
		switch {
		case k == "a":
		case k == "l":
			return false // truncation: not expressible with $set/$unset
		case strings.HasPrefix(k, "u"):
			if _, err := strconv.Atoi(k[1:]); err != nil {
				return false
			}
			u.set = append(u.set, bson.E{Key: join(prefix, k[1:]), Value: el.Value()})
		case strings.HasPrefix(k, "s"):
			if _, err := strconv.Atoi(k[1:]); err != nil {
				return false
			}
			sub, ok := el.Value().DocumentOK()
			if !ok {
				return false
			}
			if a, _ := sub.Lookup("a").BooleanOK(); a {
				if !u.arrayDiff(join(prefix, k[1:]), sub) {
					return false
				}
			} else if !u.diff(join(prefix, k[1:]), sub) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// parseCommand reads a 'c' entry.
func parseCommand(entry bson.Raw, db string, o bson.Raw, f *filter, txns txnBuffer) ([]change, error) {
	elems, err := o.Elements()
	if err != nil || len(elems) == 0 {
		return nil, nil
	}
	name := elems[0].Key()
	first := elems[0].Value()
	coll, _ := first.StringValueOK()
	mk := func(d *ddl) []change {
		return []change{{kind: opDDL, db: db, coll: coll, ddl: d}}
	}
	switch name {
	case "applyOps":
		ops, ok := first.ArrayOK()
		if !ok {
			return nil, nil
		}
		vals, _ := ops.Values()
		var inner []bson.Raw
		for _, v := range vals {
			if d, ok := v.DocumentOK(); ok {
				inner = append(inner, d)
			}
		}
		key := txnKey(entry)
		partial, _ := entry.Lookup("partialTxn").BooleanOK()
		prepare, _ := o.Lookup("prepare").BooleanOK()
		if key != "" && (partial || prepare) {
			txns[key] = append(txns[key], inner...)
			return nil, nil
		}
		if key != "" {
			inner = append(txns[key], inner...)
			delete(txns, key)
		}
		return expand(inner, f, txns)
	case "commitTransaction":
		key := txnKey(entry)
		inner := txns[key]
		delete(txns, key)
		return expand(inner, f, txns)
	case "abortTransaction":
		delete(txns, txnKey(entry))
		return nil, nil
	case "create":
		if !f.ns(db, coll) {
			return nil, nil
		}
		opts := bson.D{}
		for _, el := range elems[1:] {
			if el.Key() != "idIndex" {
				opts = append(opts, bson.E{Key: el.Key(), Value: el.Value()})
			}
		}
		b, _ := bson.Marshal(opts)
		return mk(&ddl{op: "create", options: b}), nil
	case "drop":
		if !f.ns(db, coll) {
			return nil, nil
		}
		return mk(&ddl{op: "drop"}), nil
	case "renameCollection":
		from, _ := first.StringValueOK()
		to, _ := o.Lookup("to").StringValueOK()
		dropTgt, _ := o.Lookup("dropTarget").BooleanOK()
		fdb, fcoll := splitNS(from)
		tdb, tcoll := splitNS(to)
		fin, tin := f.ns(fdb, fcoll), f.ns(tdb, tcoll)
		switch {
		case fin && tin:
			return []change{{kind: opDDL, db: fdb, coll: fcoll, ddl: &ddl{op: "rename", to: to, dropTgt: dropTgt}}}, nil
		case fin:
			return []change{{kind: opDDL, db: fdb, coll: fcoll, ddl: &ddl{op: "drop"}}}, nil
		case tin:
			// Renamed into the migrated namespaces: copy it whole.
			return []change{{kind: opDDL, db: tdb, coll: tcoll, ddl: &ddl{op: "recopy"}}}, nil
		}
		return nil, nil
	case "dropDatabase":
		if !f.db(db) {
			return nil, nil
		}
		return []change{{kind: opDDL, db: db, ddl: &ddl{op: "dropDatabase"}}}, nil
	case "createIndexes":
		if !f.ns(db, coll) {
			return nil, nil
		}
		spec := bson.D{}
		for _, el := range elems[1:] {
			spec = append(spec, bson.E{Key: el.Key(), Value: el.Value()})
		}
		b, _ := bson.Marshal(spec)
		return mk(&ddl{op: "createIndexes", indexes: []bson.Raw{b}}), nil
	case "commitIndexBuild":
		if !f.ns(db, coll) {
			return nil, nil
		}
		arr, _ := o.Lookup("indexes").ArrayOK()
		vals, _ := arr.Values()
		d := &ddl{op: "createIndexes"}
		for _, v := range vals {
			if s, ok := v.DocumentOK(); ok {
				d.indexes = append(d.indexes, s)
			}
		}
		return mk(d), nil
	case "dropIndexes", "deleteIndexes":
		if !f.ns(db, coll) {
			return nil, nil
		}
		d := &ddl{op: "dropIndexes"}
		switch v := o.Lookup("index"); v.Type {
		case bson.TypeString:
			d.names = []string{v.StringValue()}
		case bson.TypeArray:
			vals, _ := v.Array().Values()
			for _, x := range vals {
				if s, ok := x.StringValueOK(); ok {
					d.names = append(d.names, s)
				}
			}
		}
		if len(d.names) == 0 {
			return nil, nil
		}
		return mk(d), nil
	case "collMod":
		if !f.ns(db, coll) {
			return nil, nil
		}
		cmd := bson.D{}
		for _, el := range elems {
			cmd = append(cmd, bson.E{Key: el.Key(), Value: el.Value()})
		}
		return mk(&ddl{op: "collMod", cmd: cmd}), nil
	}
	// startIndexBuild, abortIndexBuild, convertToCapped, emptycapped,
	// shardCollection and the rest: nothing ferry replays.
	return nil, nil
}

// expand parses the operations of an applyOps.
func expand(ops []bson.Raw, f *filter, txns txnBuffer) ([]change, error) {
	var out []change
	for _, op := range ops {
		cs, err := parseEntry(op, f, txns)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// oplogReader tails local.oplog.rs with a tailable cursor.
//
// On MongoDB the oplog is strictly ordered by ts: entries at or below the
// last applied ts are dropped, and a resume point no longer in the oplog
// is an error. FerretDB (quirks) differs: its oplog is written after the
// data without a transaction, its tailable cursor re-delivers entries and
// ts can go backwards between writers, and a cursor whose first batch is
// not full is closed at once. There ferry opens with ts >= (resume point
// minus 2 s) and batch size 1, replays that window (every FerretDB entry
// carries a whole document, so replaying converges), drops entries it has
// already applied by their ts, and reopens closed cursors.
type oplogReader struct {
	c      *mongo.Client
	f      *filter
	quirks bool
	cur    *mongo.Cursor
	start  bson.Timestamp // where to (re)open
	last   bson.Timestamp // highest applied
	seen   map[bson.Timestamp]struct{}
	recent []bson.Timestamp // the last applied ts (FerretDB)
	txns   txnBuffer
	opened bool
}

// quirkWindow bounds how long (seconds) a FerretDB reader remembers
// applied entries to drop re-deliveries.
const quirkWindow = 120

// recentKeep is how many applied ts a FerretDB reader keeps in its
// checkpoint.
const recentKeep = 256

// newOplogReader tails from the entry after from. recent (FerretDB, when
// resuming from a checkpoint of its own) are the ts of the last entries
// applied: the reader reopens at the oldest of them and applies only the
// entries of that window it has not applied, those FerretDB wrote late.
// The initial sync's resume point needs no window: the copy started after
// it was read, so every entry with a lower ts is reflected in the copy.
func newOplogReader(c *mongo.Client, f *filter, from bson.Timestamp, quirks bool, recent []bson.Timestamp) *oplogReader {
	r := &oplogReader{c: c, f: f, quirks: quirks, last: from, start: from, seen: map[bson.Timestamp]struct{}{}, txns: txnBuffer{}}
	if !tsIsZero(from) {
		r.seen[from] = struct{}{} // applied (or in the copy) already
	}
	if quirks {
		for _, ts := range recent {
			r.seen[ts] = struct{}{}
			if tsLess(ts, r.start) {
				r.start = ts
			}
		}
		r.recent = append(r.recent, recent...)
	}
	return r
}

func (r *oplogReader) open(ctx context.Context) error {
	opts := options.Find().SetBatchSize(1)
	if r.quirks {
		opts.SetCursorType(options.Tailable)
	} else {
		opts.SetCursorType(options.TailableAwait).SetMaxAwaitTime(time.Second)
	}
	filter := bson.D{}
	if !tsIsZero(r.start) {
		filter = bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: r.start}}}}
	}
	cur, err := r.c.Database("local").Collection("oplog.rs").Find(ctx, filter, opts)
	if err != nil {
		return fmt.Errorf("tail the source's oplog: %w", err)
	}
	r.cur = cur
	return nil
}

func (r *oplogReader) close() {
	if r.cur != nil {
		_ = r.cur.Close(context.Background())
		r.cur = nil
	}
}

func (r *oplogReader) next(ctx context.Context) (readResult, error) {
	res := readResult{pos: position{TS: r.last}}
	if r.cur == nil {
		if err := r.open(ctx); err != nil {
			return res, err
		}
	}
	var entries []bson.Raw
	if r.cur.TryNext(ctx) {
		entries = append(entries, append(bson.Raw(nil), r.cur.Current...))
		for r.cur.RemainingBatchLength() > 0 && r.cur.TryNext(ctx) {
			entries = append(entries, append(bson.Raw(nil), r.cur.Current...))
		}
		r.cur.SetBatchSize(1000)
	}
	if err := r.cur.Err(); err != nil {
		r.close()
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if errCode(err) == 43 || errCode(err) == 136 || strings.Contains(err.Error(), "cursor") {
			// Cursor killed or lost: reopen from where we are.
			r.start = r.reopenFrom()
			res.caughtUp = true
			return res, nil
		}
		return res, fmt.Errorf("tail the source's oplog: %w", err)
	}
	if len(entries) == 0 {
		if r.cur.ID() == 0 {
			// Closed (FerretDB closes a tailable cursor whose first batch
			// is not full): reopen from where we are.
			r.close()
			r.start = r.reopenFrom()
		}
		res.caughtUp = true
		if r.quirks {
			sleep(ctx, 100*time.Millisecond)
		}
		return res, nil
	}
	res.entries = len(entries)
	for i, entry := range entries {
		t, inc, ok := entry.Lookup("ts").TimestampOK()
		if !ok {
			return res, fmt.Errorf("oplog entry without ts: %s", entry)
		}
		ts := bson.Timestamp{T: t, I: inc}
		if !r.opened && i == 0 {
			r.opened = true
			if !r.quirks && !tsIsZero(r.start) && tsLess(r.start, ts) {
				return res, errResumeLost
			}
		}
		if r.quirks {
			if _, dup := r.seen[ts]; dup {
				continue
			}
			if r.last.T > quirkWindow && ts.T < r.last.T-quirkWindow {
				continue
			}
			r.seen[ts] = struct{}{}
			r.recent = append(r.recent, ts)
			if len(r.recent) > 2*recentKeep {
				r.recent = append(r.recent[:0], r.recent[len(r.recent)-recentKeep:]...)
			}
		} else if !tsLess(r.last, ts) {
			continue
		}
		cs, err := parseOplog(entry, r.f, r.txns)
		if err != nil {
			return res, err
		}
		res.changes = append(res.changes, cs...)
		if tsLess(r.last, ts) {
			r.last = ts
		}
		res.pos.TS = r.last
		if w, ok := entry.Lookup("wall").DateTimeOK(); ok {
			res.pos.Wall = time.UnixMilli(w)
		} else {
			res.pos.Wall = time.Unix(int64(ts.T), 0)
		}
		if res.first.IsZero() {
			res.first = res.pos.Wall
		}
	}
	if r.quirks && len(r.seen) > 100000 {
		for ts := range r.seen {
			if r.last.T > quirkWindow && ts.T < r.last.T-quirkWindow {
				delete(r.seen, ts)
			}
		}
	}
	return res, nil
}

// behind looks for an oplog entry after at: on MongoDB the oplog is in ts
// order, so the first match is the oldest; on FerretDB (which scans the
// whole oplog for it, seconds on a big one) any match proves the reader
// behind.
func (r *oplogReader) behind(ctx context.Context, at position) (bool, time.Time, error) {
	filter := bson.D{}
	if !tsIsZero(at.TS) {
		filter = bson.D{{Key: "ts", Value: bson.D{{Key: "$gt", Value: at.TS}}}}
	}
	opts := options.FindOne().SetProjection(bson.D{{Key: "ts", Value: 1}, {Key: "wall", Value: 1}})
	raw, err := r.c.Database("local").Collection("oplog.rs").FindOne(ctx, filter, opts).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, time.Time{}, nil
	}
	if err != nil {
		return true, time.Time{}, fmt.Errorf("read the source's newest oplog entry: %w", err)
	}
	if w, ok := raw.Lookup("wall").DateTimeOK(); ok {
		return true, time.UnixMilli(w), nil
	}
	if t, _, ok := raw.Lookup("ts").TimestampOK(); ok {
		return true, time.Unix(int64(t), 0), nil
	}
	return true, time.Time{}, nil
}

func (r *oplogReader) reopenFrom() bson.Timestamp {
	from := r.last
	if r.quirks {
		for _, ts := range r.lastApplied() {
			if tsLess(ts, from) {
				from = ts
			}
		}
	}
	return from
}

// lastApplied returns the ts of the last entries applied (FerretDB).
func (r *oplogReader) lastApplied() []bson.Timestamp {
	if len(r.recent) > recentKeep {
		return append([]bson.Timestamp(nil), r.recent[len(r.recent)-recentKeep:]...)
	}
	return append([]bson.Timestamp(nil), r.recent...)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func lostResumeError() error {
	return &ferry.Error{Code: ferry.EINVALID, Reason: "RESUME_POINT_LOST",
		Message: "the source's oplog no longer holds the point continuous sync resumes from: changes were lost",
		Advice:  "give the source a larger oplog and restart the migration from the beginning"}
}
