package mongo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// applier writes changes to the target: data changes in parallel across
// documents (a document's changes always go to the same worker, in
// order), DDL alone between them.
type applier struct {
	src, dst *mongo.Client
	workers  int
	log      *slog.Logger
	// Fetches counts updates resolved by reading the source.
	fetches int64
}

// apply applies changes in order and returns once all are on the target.
func (a *applier) apply(ctx context.Context, changes []change) error {
	start := 0
	for i := range changes {
		if changes[i].kind == opDDL {
			if err := a.applyData(ctx, changes[start:i]); err != nil {
				return err
			}
			if err := a.applyDDL(ctx, &changes[i]); err != nil {
				return err
			}
			start = i + 1
		}
	}
	return a.applyData(ctx, changes[start:])
}

func workerOf(c *change, n int) int {
	h := fnv.New32a()
	h.Write([]byte(c.db))
	h.Write([]byte{0})
	h.Write([]byte(c.coll))
	h.Write([]byte{byte(c.id.Type)})
	h.Write(c.id.Value)
	return int(h.Sum32() % uint32(n))
}

func (a *applier) applyData(ctx context.Context, changes []change) error {
	if len(changes) == 0 {
		return nil
	}
	n := a.workers
	if n < 1 {
		n = 1
	}
	if len(changes) < 4 {
		n = 1
	}
	lanes := make([][]*change, n)
	for i := range changes {
		w := workerOf(&changes[i], n)
		lanes[w] = append(lanes[w], &changes[i])
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	var fetches int64
	var mu sync.Mutex
	for w := range lanes {
		if len(lanes[w]) == 0 {
			continue
		}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			f, err := a.applyLane(ctx, lanes[w])
			errs[w] = err
			mu.Lock()
			fetches += f
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	a.fetches += fetches
	return errors.Join(errs...)
}

// applyLane applies one worker's changes in order, runs of the same kind
// and namespace together.
func (a *applier) applyLane(ctx context.Context, lane []*change) (int64, error) {
	var fetches int64
	for i := 0; i < len(lane); {
		j := i + 1
		for j < len(lane) && j-i < 500 && lane[j].kind == lane[i].kind && lane[j].db == lane[i].db && lane[j].coll == lane[i].coll &&
			(lane[i].kind == opInsert || lane[i].kind == opDelete || lane[i].kind == opReplace) {
			j++
		}
		run := lane[i:j]
		coll := a.dst.Database(run[0].db).Collection(run[0].coll)
		var err error
		switch run[0].kind {
		case opInsert:
			err = a.insertRun(ctx, coll, run)
		case opDelete:
			ids := make(bson.A, len(run))
			for k, c := range run {
				ids[k] = c.id
			}
			filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}
			if len(run) == 1 {
				filter = bson.D{{Key: "_id", Value: run[0].id}}
			}
			_, err = coll.DeleteMany(ctx, filter)
		case opReplace:
			models := make([]mongo.WriteModel, len(run))
			for k, c := range run {
				models[k] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: c.id}}).SetReplacement(c.doc).SetUpsert(true)
			}
			_, err = coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true).SetBypassDocumentValidation(true))
		case opUpdate:
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: run[0].id}}, run[0].update)
			if err != nil && ctx.Err() == nil && isServerError(err) {
				// The update does not apply to the target's document as
				// it is (a replayed change, a path conflict): read the
				// source's document instead.
				a.log.Debug("update failed on the target; fetching the document", "ns", run[0].ns(), "err", err)
				fetches++
				err = a.fetch(ctx, run[0])
			}
		case opFetch:
			fetches++
			err = a.fetch(ctx, run[0])
		}
		if err != nil {
			return fetches, fmt.Errorf("apply %s to %s on the target: %w", run[0].kind, run[0].ns(), err)
		}
		i = j
	}
	return fetches, nil
}

func isServerError(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se)
}

// insertRun inserts documents; those whose _id exists already (a change
// replayed after a resume) replace the existing document instead.
func (a *applier) insertRun(ctx context.Context, coll *mongo.Collection, run []*change) error {
	docs := make([]any, len(run))
	for k, c := range run {
		docs[k] = c.doc
	}
	_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false).SetBypassDocumentValidation(true))
	if err == nil {
		return nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return err
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != codeDuplicateKey {
			return err
		}
	}
	for _, we := range bwe.WriteErrors {
		c := run[we.Index]
		if _, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: c.id}}, c.doc, options.Replace().SetUpsert(true).SetBypassDocumentValidation(true)); err != nil {
			return err
		}
	}
	return nil
}

// fetch reads a document from the source and writes it as it is now, or
// deletes it on the target when it is gone from the source.
func (a *applier) fetch(ctx context.Context, c *change) error {
	var doc bson.Raw
	err := a.src.Database(c.db).Collection(c.coll).FindOne(ctx, bson.D{{Key: "_id", Value: c.id}}).Decode(&doc)
	coll := a.dst.Database(c.db).Collection(c.coll)
	if errors.Is(err, mongo.ErrNoDocuments) {
		_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: c.id}})
		return err
	}
	if err != nil {
		return fmt.Errorf("read the document from the source: %w", err)
	}
	_, err = coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: c.id}}, doc, options.Replace().SetUpsert(true).SetBypassDocumentValidation(true))
	return err
}

// applyDDL applies a collection-level change, tolerating one already done.
func (a *applier) applyDDL(ctx context.Context, c *change) error {
	d := c.ddl
	db := a.dst.Database(c.db)
	a.log.Info("applying DDL", "op", d.op, "ns", c.ns(), "to", d.to)
	var err error
	switch d.op {
	case "create":
		cmd := bson.D{{Key: "create", Value: c.coll}}
		if d.options != nil {
			elems, _ := d.options.Elements()
			for _, el := range elems {
				if el.Key() != "idIndex" && el.Key() != "create" {
					cmd = append(cmd, bson.E{Key: el.Key(), Value: el.Value()})
				}
			}
		}
		err = db.RunCommand(ctx, cmd).Err()
		if err != nil && errCode(err) != codeNamespaceExists && len(cmd) > 1 {
			a.log.Warn("the target refused a collection's options; creating it without them", "ns", c.ns(), "err", err)
			err = db.RunCommand(ctx, bson.D{{Key: "create", Value: c.coll}}).Err()
		}
		if errCode(err) == codeNamespaceExists {
			err = nil
		}
	case "drop":
		err = db.Collection(c.coll).Drop(ctx)
	case "dropDatabase":
		err = db.Drop(ctx)
	case "rename":
		err = a.dst.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: c.ns()}, {Key: "to", Value: d.to}, {Key: "dropTarget", Value: true}}).Err()
		if errCode(err) == codeNamespaceNotFound {
			err = nil // replayed: renamed already
		}
	case "recopy":
		err = a.recopy(ctx, c)
	case "createIndexes":
		for _, spec := range d.indexes {
			if e := createIndex(ctx, db, c.coll, spec); e != nil {
				a.log.Warn("the target refused an index", "ns", c.ns(), "spec", spec.String(), "err", e)
			}
		}
	case "dropIndexes":
		for _, name := range d.names {
			e := db.RunCommand(ctx, bson.D{{Key: "dropIndexes", Value: c.coll}, {Key: "index", Value: name}}).Err()
			if e != nil && errCode(e) != codeIndexNotFound && errCode(e) != codeNamespaceNotFound {
				a.log.Warn("drop index on the target", "ns", c.ns(), "index", name, "err", e)
			}
		}
	case "collMod":
		if e := db.RunCommand(ctx, d.cmd).Err(); e != nil {
			a.log.Warn("collMod on the target", "ns", c.ns(), "err", e)
		}
	}
	if err != nil {
		return fmt.Errorf("apply %s of %s on the target: %w", d.op, c.ns(), err)
	}
	return nil
}

// recopy copies a whole collection that was renamed into the migrated
// namespaces.
func (a *applier) recopy(ctx context.Context, c *change) error {
	dst := a.dst.Database(c.db).Collection(c.coll)
	if err := dst.Drop(ctx); err != nil {
		return err
	}
	cur, err := a.src.Database(c.db).Collection(c.coll).Find(ctx, bson.D{})
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	var docs []any
	for cur.Next(ctx) {
		docs = append(docs, bson.Raw(append([]byte(nil), cur.Current...)))
		if len(docs) == 1000 {
			if err := insertRaw(ctx, dst, docs); err != nil {
				return err
			}
			docs = nil
		}
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if len(docs) > 0 {
		return insertRaw(ctx, dst, docs)
	}
	return nil
}
