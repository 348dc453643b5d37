package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The change-stream reader is for real MongoDB 4.4+ (replica sets and
// sharded clusters). FerretDB has no change streams: the reader is tested
// against a real MongoDB when FERRY_TEST_MONGODB_URI names one
// (TestChangeStreamOnRealMongoDB) and otherwise by unit tests of its event
// handling (parseEvent).

// openStream opens a deployment-wide change stream with whole documents
// for updates, resuming after token, or at startAt, or from now.
// showExpandedEvents (6.0+: create, createIndexes, dropIndexes, modify) is
// asked for and dropped when the server does not know it.
func openStream(ctx context.Context, c *mongo.Client, token bson.Raw, startAt bson.Timestamp) (*mongo.ChangeStream, error) {
	mk := func(expanded bool) *options.ChangeStreamOptionsBuilder {
		o := options.ChangeStream().SetFullDocument(options.UpdateLookup).SetMaxAwaitTime(time.Second).SetBatchSize(1000)
		if expanded {
			o.SetShowExpandedEvents(true)
		}
		switch {
		case token != nil:
			o.SetStartAfter(token)
		case !tsIsZero(startAt):
			o.SetStartAtOperationTime(&startAt)
		}
		return o
	}
	cs, err := c.Watch(ctx, mongo.Pipeline{}, mk(true))
	if err != nil && (errCode(err) == 40415 || errCode(err) == 9 || errCode(err) == 40324) {
		cs, err = c.Watch(ctx, mongo.Pipeline{}, mk(false))
	}
	return cs, err
}

// streamReader reads a change stream.
type streamReader struct {
	c     *mongo.Client
	f     *filter
	cs    *mongo.ChangeStream
	token bson.Raw
	last  position
}

func newStreamReader(c *mongo.Client, f *filter, token bson.Raw) *streamReader {
	return &streamReader{c: c, f: f, token: token, last: position{Token: token}}
}

func (r *streamReader) close() {
	if r.cs != nil {
		_ = r.cs.Close(context.Background())
		r.cs = nil
	}
}

func (r *streamReader) next(ctx context.Context) (readResult, error) {
	res := readResult{pos: r.last}
	if r.cs == nil {
		cs, err := openStream(ctx, r.c, r.token, bson.Timestamp{})
		if err != nil {
			if errCode(err) == 286 || errCode(err) == 280 {
				return res, lostResumeError()
			}
			return res, fmt.Errorf("open the source's change stream: %w", err)
		}
		r.cs = cs
	}
	var events []bson.Raw
	if r.cs.TryNext(ctx) {
		events = append(events, append(bson.Raw(nil), r.cs.Current...))
		for r.cs.RemainingBatchLength() > 0 && r.cs.TryNext(ctx) {
			events = append(events, append(bson.Raw(nil), r.cs.Current...))
		}
	}
	if err := r.cs.Err(); err != nil {
		r.close()
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if errCode(err) == 286 || errCode(err) == 280 {
			return res, lostResumeError()
		}
		return res, fmt.Errorf("read the source's change stream: %w", err)
	}
	if tok := r.cs.ResumeToken(); tok != nil {
		r.token = append(bson.Raw(nil), tok...)
		res.pos.Token = r.token
	}
	if len(events) == 0 {
		res.caughtUp = true
		r.last = res.pos
		return res, nil
	}
	res.entries = len(events)
	for _, ev := range events {
		cs, err := parseEvent(ev, r.f)
		if err != nil {
			return res, err
		}
		res.changes = append(res.changes, cs...)
		if t, i, ok := ev.Lookup("clusterTime").TimestampOK(); ok {
			res.pos.TS = bson.Timestamp{T: t, I: i}
			res.pos.Wall = time.Unix(int64(t), 0)
		}
		if w, ok := ev.Lookup("wallTime").DateTimeOK(); ok {
			res.pos.Wall = time.UnixMilli(w)
		}
		if res.first.IsZero() {
			res.first = res.pos.Wall
		}
	}
	r.last = res.pos
	return res, nil
}

// behind: a change stream answers an empty batch only after its await
// found nothing newer, so an empty read of an open stream is proof enough;
// the sync asks only after such a read.
func (r *streamReader) behind(ctx context.Context, at position) (bool, time.Time, error) {
	return false, time.Time{}, nil
}

// parseEvent turns one change event into changes.
func parseEvent(ev bson.Raw, f *filter) ([]change, error) {
	op, _ := ev.Lookup("operationType").StringValueOK()
	nsDoc, _ := ev.Lookup("ns").DocumentOK()
	db, _ := nsDoc.Lookup("db").StringValueOK()
	coll, _ := nsDoc.Lookup("coll").StringValueOK()
	key, _ := ev.Lookup("documentKey").DocumentOK()
	id, _ := key.LookupErr("_id")
	full, hasFull := ev.Lookup("fullDocument").DocumentOK()
	desc, _ := ev.Lookup("operationDescription").DocumentOK()
	mk := func(d *ddl) []change { return []change{{kind: opDDL, db: db, coll: coll, ddl: d}} }
	switch op {
	case "insert", "update", "replace", "delete":
		if !f.ns(db, coll) {
			return nil, nil
		}
		if id.Type == 0 {
			return nil, fmt.Errorf("%s event without documentKey._id in %s.%s", op, db, coll)
		}
		c := change{db: db, coll: coll, id: id}
		switch {
		case op == "delete":
			c.kind = opDelete
		case op == "insert" && hasFull:
			c.kind, c.doc = opInsert, full
		case hasFull:
			c.kind, c.doc = opReplace, withID(full, id)
		default:
			// The document is gone since (updateLookup found none): read it.
			c.kind = opFetch
		}
		return []change{c}, nil
	case "drop":
		if !f.ns(db, coll) {
			return nil, nil
		}
		return mk(&ddl{op: "drop"}), nil
	case "rename":
		to, _ := ev.Lookup("to").DocumentOK()
		tdb, _ := to.Lookup("db").StringValueOK()
		tcoll, _ := to.Lookup("coll").StringValueOK()
		fin, tin := f.ns(db, coll), f.ns(tdb, tcoll)
		switch {
		case fin && tin:
			return mk(&ddl{op: "rename", to: tdb + "." + tcoll, dropTgt: true}), nil
		case fin:
			return mk(&ddl{op: "drop"}), nil
		case tin:
			return []change{{kind: opDDL, db: tdb, coll: tcoll, ddl: &ddl{op: "recopy"}}}, nil
		}
		return nil, nil
	case "dropDatabase":
		if !f.db(db) {
			return nil, nil
		}
		return []change{{kind: opDDL, db: db, ddl: &ddl{op: "dropDatabase"}}}, nil
	case "create":
		if !f.ns(db, coll) {
			return nil, nil
		}
		return mk(&ddl{op: "create", options: desc}), nil
	case "createIndexes":
		if !f.ns(db, coll) {
			return nil, nil
		}
		d := &ddl{op: "createIndexes"}
		arr, _ := desc.Lookup("indexes").ArrayOK()
		vals, _ := arr.Values()
		for _, v := range vals {
			if s, ok := v.DocumentOK(); ok {
				d.indexes = append(d.indexes, s)
			}
		}
		return mk(d), nil
	case "dropIndexes":
		if !f.ns(db, coll) {
			return nil, nil
		}
		d := &ddl{op: "dropIndexes"}
		arr, _ := desc.Lookup("indexes").ArrayOK()
		vals, _ := arr.Values()
		for _, v := range vals {
			if s, ok := v.DocumentOK(); ok {
				if n, ok := s.Lookup("name").StringValueOK(); ok {
					d.names = append(d.names, n)
				}
			}
		}
		return mk(d), nil
	case "invalidate":
		return nil, fmt.Errorf("the source's change stream was invalidated")
	}
	// modify, shardCollection, refineCollectionShardKey, reshardCollection:
	// nothing ferry replays.
	return nil, nil
}
