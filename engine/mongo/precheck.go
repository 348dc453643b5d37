package mongo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ferrymigrate/ferry"
)

// precheck checks both sides before anything is written. It is also what
// Atlas's liveMigrations/validate runs. It writes nothing.
func (e *Engine) precheck(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	src, err := connect(ctx, &m.Source, "source")
	if err != nil {
		return err
	}
	defer disconnect(src)
	ss, err := describe(ctx, src)
	if err != nil {
		return unreachable("source", &m.Source, err)
	}
	probeReaders(ctx, src, &ss)
	reader := ""
	if m.Modes.Incremental {
		if reader, err = pickReader(m, ss); err != nil {
			return err
		}
		if reader == ReaderOplog {
			if _, err := lastOplogTS(ctx, src); err != nil {
				return &ferry.Error{Code: ferry.EINVALID, Field: "source", Reason: "OPLOG_NOT_READABLE",
					Message: fmt.Sprintf("cannot read the source's oplog local.oplog.rs: %v", err), Advice: "grant the user read on the local database"}
			}
		}
	}
	dst, err := connect(ctx, &m.Target, "target")
	if err != nil {
		return err
	}
	defer disconnect(dst)
	ds, err := describe(ctx, dst)
	if err != nil {
		return unreachable("target", &m.Target, err)
	}
	if !ds.Primary && ds.Msg != "isdbgrid" {
		return &ferry.Error{Code: ferry.EINVALID, Field: "target", Reason: "TARGET_NOT_WRITABLE",
			Message: "the target (" + ds.String() + ") is not a writable primary", Advice: "give the target's primary or its replica set name"}
	}
	nss, err := listNamespaces(ctx, src, f)
	if err != nil {
		return &ferry.Error{Code: ferry.EINVALID, Field: "source", Reason: "SOURCE_LIST_FAILED",
			Message: fmt.Sprintf("cannot list the source's databases and collections: %v", err), Advice: "grant the user listDatabases and read on the databases to move"}
	}
	if len(m.Options.Filters.IncludeDBs)+len(m.Options.Filters.IncludeTables) > 0 && len(nss) == 0 {
		return &ferry.Error{Code: ferry.EINVALID, Field: "options.filters", Reason: "NOTHING_TO_MIGRATE",
			Message: "the namespace filters select no collection of the source"}
	}
	if (m.Modes.Full || m.Modes.Incremental) && !m.Options.DropTarget && m.Options.Conflict != ferry.ConflictReplace {
		var busy []string
		for _, ns := range nss {
			n, err := dst.Database(ns.DB).Collection(ns.Coll).EstimatedDocumentCount(ctx)
			if err == nil && n > 0 {
				busy = append(busy, fmt.Sprintf("%s.%s: %d documents", ns.DB, ns.Coll, n))
			}
		}
		sort.Strings(busy)
		if len(busy) > 0 {
			if len(busy) > 5 {
				busy = append(busy[:5], fmt.Sprintf("and %d more", len(busy)-5))
			}
			return &ferry.Error{Code: ferry.EINVALID, Field: "target", Reason: "TARGET_NOT_EMPTY",
				Message: "the target already holds documents where the migration would write (" + strings.Join(busy, ", ") + ")",
				Advice:  "empty those collections, or ask to drop the destination's data (dropDestinationData / dropTarget)"}
		}
	}
	var docs int64
	for _, ns := range nss {
		docs += ns.Count
	}
	msg := fmt.Sprintf("source %s with %d collections (~%d documents) to move; target %s", ss, len(nss), docs, ds)
	if reader != "" {
		msg += "; continuous sync by " + map[string]string{ReaderOplog: "oplog tailing", ReaderChangeStream: "change streams"}[reader]
	}
	if m.Options.DropTarget {
		msg += "; the included namespaces will be dropped on the target first"
	}
	rt.Message(msg)
	rt.Progress(ferry.Counters{Done: 1, Total: 1}, 100)
	return nil
}

// namespace is one collection (or view) of the source.
type namespace struct {
	DB, Coll string
	Type     string   // collection, view, timeseries
	Options  bson.Raw // listCollections options
	Count    int64    // estimated
	Size     int64    // bytes, estimated
}

func (n namespace) String() string { return n.DB + "." + n.Coll }

// listNamespaces lists the source's collections the filter includes, with
// their estimated counts and sizes.
func listNamespaces(ctx context.Context, c *mongo.Client, f *filter) ([]namespace, error) {
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	sort.Strings(dbs)
	var out []namespace
	for _, db := range dbs {
		if !f.db(db) {
			continue
		}
		cur, err := c.Database(db).ListCollections(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("listCollections %s: %w", db, err)
		}
		var specs []bson.Raw
		if err := cur.All(ctx, &specs); err != nil {
			return nil, err
		}
		for _, s := range specs {
			name, _ := s.Lookup("name").StringValueOK()
			typ, _ := s.Lookup("type").StringValueOK()
			if name == "" || !f.ns(db, name) {
				continue
			}
			ns := namespace{DB: db, Coll: name, Type: typ}
			if o, ok := s.Lookup("options").DocumentOK(); ok {
				ns.Options = o
			}
			if typ == "" || typ == "collection" {
				ns.Type = "collection"
				ns.Count, ns.Size = collStats(ctx, c.Database(db), name)
			}
			out = append(out, ns)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// collStats returns a collection's estimated count and data size.
func collStats(ctx context.Context, db *mongo.Database, coll string) (int64, int64) {
	var r bson.Raw
	err := db.RunCommand(ctx, bson.D{{Key: "collStats", Value: coll}}).Decode(&r)
	if err != nil {
		n, _ := db.Collection(coll).EstimatedDocumentCount(ctx)
		return n, 0
	}
	n, _ := r.Lookup("count").AsInt64OK()
	size, _ := r.Lookup("size").AsInt64OK()
	if n == 0 {
		n, _ = db.Collection(coll).EstimatedDocumentCount(ctx)
	}
	return n, size
}

// lastOplogTS returns the ts of the oplog's newest entry (zero when the
// oplog is empty).
func lastOplogTS(ctx context.Context, c *mongo.Client) (bson.Timestamp, error) {
	var doc bson.Raw
	err := c.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}}).SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&doc)
	if err == mongo.ErrNoDocuments {
		return bson.Timestamp{}, nil
	}
	if err != nil {
		return bson.Timestamp{}, err
	}
	t, i, ok := doc.Lookup("ts").TimestampOK()
	if !ok {
		return bson.Timestamp{}, fmt.Errorf("oplog entry without ts: %s", doc)
	}
	return bson.Timestamp{T: t, I: i}, nil
}
