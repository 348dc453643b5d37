package mongo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ferrymigrate/ferry"
)

// Diff is one document that differs between source and target.
type Diff struct {
	NS   string
	ID   string // the _id as extended JSON
	Kind string // missing (on the target), extra (on the target), different
}

// CollectionReport is the comparison of one collection.
type CollectionReport struct {
	NS                        string
	SourceDocs, TargetDocs    int64
	SourceHash, TargetHash    string // SHA-256 over the documents' digests in the order of their _ids
	Missing, Extra, Different int64
	Diffs                     []Diff // up to 100
}

// Report is a verification's result.
type Report struct {
	Collections               []CollectionReport
	Docs                      int64
	Missing, Extra, Different int64
	Rounds                    int
	Duration                  time.Duration
}

// Equal reports whether no difference is left.
func (r *Report) Equal() bool { return r.Missing+r.Extra+r.Different == 0 }

// VerifyOptions tune Compare.
type VerifyOptions struct {
	// Rounds re-checks the differing documents this many times, Pause
	// apart, so that documents changed during the compare converge
	// (default 4 rounds, 500 ms).
	Rounds int
	Pause  time.Duration
	// OnRound is told how many documents still differ after each round.
	OnRound func(round int, pending int)
}

// sideScan is one side of one collection.
type sideScan struct {
	docs map[string][16]byte // _id (type byte + value) -> digest
	hash string
	n    int64
}

// scanSide reads a collection in its natural order (a sort by _id costs
// servers without an index-ordered scan, FerretDB among them, a sort of the
// whole collection) and digests every document; the collection's hash is
// SHA-256 over the (_id, digest) pairs in the order of the _ids' BSON
// encodings, the same on both sides whatever order they were read in.
func scanSide(ctx context.Context, c *mongo.Collection) (*sideScan, error) {
	s := &sideScan{docs: map[string][16]byte{}}
	cur, err := c.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		raw := cur.Current
		id := raw.Lookup("_id")
		sum := sha256.Sum256(raw)
		var d [16]byte
		copy(d[:], sum[:16])
		s.docs[string(valueBytes(id))] = d
		s.n++
	}
	if err := cur.Err(); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(s.docs))
	for k := range s.docs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		d := s.docs[k]
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], uint32(len(k)))
		h.Write(l[:])
		h.Write([]byte(k))
		h.Write(d[:])
	}
	s.hash = fmt.Sprintf("%x", h.Sum(nil))
	return s, nil
}

func idString(key string) string {
	v := rawValue([]byte(key))
	return v.String()
}

// Compare compares the collections nss (names as db.coll) of src and dst.
func Compare(ctx context.Context, src, dst *mongo.Client, nss []string, opt VerifyOptions) (*Report, error) {
	if opt.Rounds <= 0 {
		opt.Rounds = 4
	}
	if opt.Pause <= 0 {
		opt.Pause = 500 * time.Millisecond
	}
	start := time.Now()
	rep := &Report{}
	type pending struct {
		ns  string
		key string
	}
	var todo []pending
	for _, ns := range nss {
		db, coll := splitNS(ns)
		var ss, ds *sideScan
		var serr, derr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ss, serr = scanSide(ctx, src.Database(db).Collection(coll)) }()
		go func() { defer wg.Done(); ds, derr = scanSide(ctx, dst.Database(db).Collection(coll)) }()
		wg.Wait()
		if err := errors.Join(serr, derr); err != nil {
			return nil, fmt.Errorf("read %s: %w", ns, err)
		}
		cr := CollectionReport{NS: ns, SourceDocs: ss.n, TargetDocs: ds.n, SourceHash: ss.hash, TargetHash: ds.hash}
		rep.Docs += ss.n
		if ss.hash != ds.hash || ss.n != ds.n {
			for k, d := range ss.docs {
				if td, ok := ds.docs[k]; !ok || td != d {
					todo = append(todo, pending{ns, k})
				}
			}
			for k := range ds.docs {
				if _, ok := ss.docs[k]; !ok {
					todo = append(todo, pending{ns, k})
				}
			}
		}
		rep.Collections = append(rep.Collections, cr)
	}
	rep.Rounds = 1
	if opt.OnRound != nil {
		opt.OnRound(1, len(todo))
	}
	// Re-check the differing documents one by one until they converge.
	final := map[pending]string{}
	for round := 2; len(todo) > 0 && round <= opt.Rounds+1; round++ {
		sleep(ctx, opt.Pause)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var still []pending
		final = map[pending]string{}
		for _, p := range todo {
			db, coll := splitNS(p.ns)
			id := rawValue([]byte(p.key))
			a, aerr := findRaw(ctx, src.Database(db).Collection(coll), id)
			b, berr := findRaw(ctx, dst.Database(db).Collection(coll), id)
			if err := errors.Join(aerr, berr); err != nil {
				return nil, err
			}
			switch {
			case a == nil && b == nil:
			case a == nil:
				still, final[p] = append(still, p), "extra"
			case b == nil:
				still, final[p] = append(still, p), "missing"
			case string(a) != string(b):
				still, final[p] = append(still, p), "different"
			}
		}
		rep.Rounds = round
		if opt.OnRound != nil {
			opt.OnRound(round, len(still))
		}
		todo = still
	}
	byNS := map[string]*CollectionReport{}
	for i := range rep.Collections {
		byNS[rep.Collections[i].NS] = &rep.Collections[i]
	}
	sort.Slice(todo, func(i, j int) bool {
		return todo[i].ns < todo[j].ns || todo[i].ns == todo[j].ns && todo[i].key < todo[j].key
	})
	for _, p := range todo {
		cr := byNS[p.ns]
		kind := final[p]
		switch kind {
		case "missing":
			cr.Missing++
			rep.Missing++
		case "extra":
			cr.Extra++
			rep.Extra++
		default:
			kind = "different"
			cr.Different++
			rep.Different++
		}
		if len(cr.Diffs) < 100 {
			cr.Diffs = append(cr.Diffs, Diff{NS: p.ns, ID: idString(p.key), Kind: kind})
		}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func findRaw(ctx context.Context, c *mongo.Collection, id bson.RawValue) (bson.Raw, error) {
	var doc bson.Raw
	err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	return doc, err
}

// verify is the verification step.
func (e *Engine) verify(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	src, err := connect(ctx, &m.Source, "source")
	if err != nil {
		return err
	}
	defer disconnect(src)
	dst, err := connect(ctx, &m.Target, "target")
	if err != nil {
		return err
	}
	defer disconnect(dst)
	// Collections of either side.
	seen := map[string]bool{}
	var nss []string
	for _, c := range []*mongo.Client{src, dst} {
		list, err := listNamespaces(ctx, c, f)
		if err != nil {
			return fmt.Errorf("list collections: %w", err)
		}
		for _, ns := range list {
			if ns.Type == "collection" && !seen[ns.String()] {
				seen[ns.String()] = true
				nss = append(nss, ns.String())
			}
		}
	}
	sort.Strings(nss)
	rt.Message(fmt.Sprintf("comparing %d collections document by document", len(nss)))
	rep, err := Compare(ctx, src, dst, nss, VerifyOptions{OnRound: func(round, pending int) {
		rt.Message(fmt.Sprintf("verification round %d: %d documents still different", round, pending))
	}})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	rt.Progress(ferry.Counters{Done: rep.Docs, Total: rep.Docs, Missing: rep.Missing, Extra: rep.Extra, Different: rep.Different, Unit: "documents"}, 100)
	if !rep.Equal() {
		var ex []string
		for _, c := range rep.Collections {
			if c.Missing+c.Extra+c.Different == 0 {
				continue
			}
			var ids []string
			for i, d := range c.Diffs {
				if i == 5 {
					break
				}
				ids = append(ids, d.Kind+" "+d.ID)
			}
			ex = append(ex, fmt.Sprintf("%s: %d vs %d documents, %d missing, %d extra, %d different (%s)", c.NS, c.SourceDocs, c.TargetDocs, c.Missing, c.Extra, c.Different, strings.Join(ids, ", ")))
		}
		if len(ex) > 5 {
			ex = append(ex[:5], fmt.Sprintf("and %d more collections", len(ex)-5))
		}
		return &ferry.Error{Code: ferry.EINVALID, Reason: "VERIFY_FAILED",
			Message: fmt.Sprintf("target differs from source: %d missing, %d extra, %d different of %d documents in %d collections: %s",
				rep.Missing, rep.Extra, rep.Different, rep.Docs, len(rep.Collections), strings.Join(ex, "; ")),
			Advice: "a source written to during verification can cause this: verify again once writes stop"}
	}
	rt.Message(fmt.Sprintf("verified: %d collections, %d documents equal byte for byte (counts and SHA-256 over every document; 0 missing, 0 extra, 0 different) in %d rounds, %s",
		len(rep.Collections), rep.Docs, rep.Rounds, rep.Duration.Round(time.Millisecond)))
	return nil
}
