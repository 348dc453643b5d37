package mongo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ferrymigrate/ferry"
)

// partition is one unit of the copy: a whole collection, a range of its
// _ids within one type bracket, or (Rest) the documents whose _id is of
// another type than the ranges'.
type partition struct {
	DB   string `json:"db"`
	Coll string `json:"coll"`
	// Lo and Hi are _id bounds as a BSON type byte followed by the value's
	// bytes; nil is unbounded. Bracket names the $type aliases of the ranges.
	Lo      []byte   `json:"lo,omitempty"`
	Hi      []byte   `json:"hi,omitempty"`
	Bracket []string `json:"bracket,omitempty"`
	Rest    bool     `json:"rest,omitempty"`
	Done    bool     `json:"done,omitempty"`
	Docs    int64    `json:"docs,omitempty"`
	Bytes   int64    `json:"bytes,omitempty"`
}

func (p *partition) ns() string { return p.DB + "." + p.Coll }

func rawValue(b []byte) bson.RawValue {
	return bson.RawValue{Type: bson.Type(b[0]), Value: b[1:]}
}

func valueBytes(v bson.RawValue) []byte { return append([]byte{byte(v.Type)}, v.Value...) }

// filter is the find filter of a partition.
func (p *partition) filter() bson.D {
	if p.Rest {
		return bson.D{{Key: "_id", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$type", Value: p.Bracket}}}}}}
	}
	var cond bson.D
	if p.Lo != nil {
		cond = append(cond, bson.E{Key: "$gte", Value: rawValue(p.Lo)})
	}
	if p.Hi != nil {
		cond = append(cond, bson.E{Key: "$lt", Value: rawValue(p.Hi)})
	}
	if cond == nil {
		return bson.D{}
	}
	return bson.D{{Key: "_id", Value: cond}}
}

// full runs the initial sync.
func (e *Engine) full(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime) error {
	log := rt.Logger()
	f, err := newFilter(m)
	if err != nil {
		return err
	}
	cp, err := decodeJSON[fullCheckpoint](rt.Checkpoint())
	if err != nil {
		return err
	}
	if cp != nil && cp.Finished {
		return nil
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
	ss, err := describe(ctx, src)
	if err != nil {
		return err
	}
	save := func() error {
		b, _ := json.Marshal(cp)
		return rt.Save(ctx, b)
	}

	// 1. The resume point, before anything is read.
	fresh := cp == nil || cp.Reader == "" && tsIsZero(cp.TS) && cp.Token == nil
	if fresh {
		cp = &fullCheckpoint{}
		if m.Modes.Incremental {
			probeReaders(ctx, src, &ss)
			reader, err := pickReader(m, ss)
			if err != nil {
				return err
			}
			cp.Reader = reader
			if err := recordResumePoint(ctx, src, cp); err != nil {
				return err
			}
		}
		if err := save(); err != nil {
			return err
		}
		log.Info("resume point recorded", "reader", cp.Reader, "ts", cp.TS)
	}
	cp.Copies++

	// 2. Namespaces, target prepared, the copy planned.
	nss, err := listNamespaces(ctx, src, f)
	if err != nil {
		return fmt.Errorf("list the source's collections: %w", err)
	}
	var notes []string
	if !cp.Planned {
		if m.Options.DropTarget && cp.Copies == 1 {
			rt.Message("dropping the included namespaces on the target (dropDestinationData)")
			for _, ns := range nss {
				if err := dst.Database(ns.DB).Collection(ns.Coll).Drop(ctx); err != nil {
					return fmt.Errorf("drop %s on the target: %w", ns, err)
				}
			}
		}
		notes = append(notes, createCollections(ctx, dst, nss, log)...)
		rt.Message("planning the copy")
		parts, err := e.plan(ctx, src, ss, nss, m)
		if err != nil {
			return err
		}
		cp.Partitions, cp.Planned = parts, true
	} else {
		notes = append(notes, createCollections(ctx, dst, nss, log)...)
	}
	if err := save(); err != nil {
		return err
	}

	// 3. The copy.
	var estDocs, estBytes int64
	for _, ns := range nss {
		estDocs += ns.Count
		estBytes += ns.Size
	}
	start := time.Now()
	if err := e.copyAll(ctx, m, rt, src, dst, cp, save, estDocs, estBytes, !ss.FerretDB); err != nil {
		return err
	}
	elapsed := time.Since(start)

	// 4. Indexes, after the data.
	if !cp.Indexes {
		rt.Message(fmt.Sprintf("copied %d documents (%s); building indexes", cp.Docs, mb(cp.Bytes)))
		n, inotes, err := copyIndexes(ctx, src, dst, nss, log)
		if err != nil {
			return err
		}
		notes = append(notes, inotes...)
		cp.Indexes = true
		log.Info("indexes built", "count", n)
	}
	cp.Finished = true
	if err := save(); err != nil {
		return err
	}
	rate := float64(cp.Docs) / math.Max(elapsed.Seconds(), 0.001)
	rt.Progress(ferry.Counters{Done: cp.Docs, Total: cp.Docs, Bytes: cp.Bytes, BytesTotal: cp.Bytes, RatePerSec: rate, Unit: "documents"}, 100)
	msg := fmt.Sprintf("initial sync done: %d documents (%s) in %d collections, %s (%.0f documents/s, %.1f MB/s); indexes built",
		cp.Docs, mb(cp.Bytes), len(nss), elapsed.Round(time.Millisecond), rate, float64(cp.Bytes)/1e6/math.Max(elapsed.Seconds(), 0.001))
	if len(notes) > 0 {
		msg += "; notes: " + strings.Join(notes, "; ")
	}
	rt.Message(msg)
	return nil
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// recordResumePoint notes where continuous sync will start.
func recordResumePoint(ctx context.Context, src *mongo.Client, cp *fullCheckpoint) error {
	switch cp.Reader {
	case ReaderOplog:
		ts, err := lastOplogTS(ctx, src)
		if err != nil {
			return fmt.Errorf("read the source's oplog: %w", err)
		}
		cp.TS = ts
	case ReaderChangeStream:
		cs, err := openStream(ctx, src, nil, bson.Timestamp{})
		if err != nil {
			return fmt.Errorf("open a change stream on the source: %w", err)
		}
		defer cs.Close(context.Background())
		// The first getMore makes the post-batch resume token current.
		cs.TryNext(ctx)
		if err := cs.Err(); err != nil {
			return fmt.Errorf("change stream: %w", err)
		}
		tok := cs.ResumeToken()
		if tok == nil {
			return errors.New("the source's change stream gave no resume token")
		}
		cp.Token = append([]byte(nil), tok...)
	}
	return nil
}

// createCollections creates the included collections on the target with
// their options (where the target takes them), then the views.
func createCollections(ctx context.Context, dst *mongo.Client, nss []namespace, log interface {
	Warn(string, ...any)
}) []string {
	var notes []string
	existing := map[string]map[string]bool{}
	exists := func(db, coll string) bool {
		if existing[db] == nil {
			names, _ := dst.Database(db).ListCollectionNames(ctx, bson.D{})
			existing[db] = map[string]bool{}
			for _, n := range names {
				existing[db][n] = true
			}
		}
		return existing[db][coll]
	}
	for _, views := range []bool{false, true} {
		for _, ns := range nss {
			if (ns.Type == "view") != views || exists(ns.DB, ns.Coll) {
				continue
			}
			if ns.Type == "timeseries" {
				notes = append(notes, ns.String()+" is a time-series collection: not migrated (not built yet)")
				continue
			}
			cmd := bson.D{{Key: "create", Value: ns.Coll}}
			if ns.Options != nil {
				elems, _ := ns.Options.Elements()
				for _, el := range elems {
					cmd = append(cmd, bson.E{Key: el.Key(), Value: el.Value()})
				}
			}
			err := dst.Database(ns.DB).RunCommand(ctx, cmd).Err()
			if err != nil && errCode(err) != codeNamespaceExists && len(cmd) > 1 && !views {
				log.Warn("target refused the collection's options; created without them", "ns", ns.String(), "options", ns.Options.String(), "err", err)
				notes = append(notes, fmt.Sprintf("%s created without its options %s (the target refused them: %v)", ns, ns.Options, err))
				err = dst.Database(ns.DB).RunCommand(ctx, bson.D{{Key: "create", Value: ns.Coll}}).Err()
			}
			if err != nil && errCode(err) != codeNamespaceExists {
				log.Warn("create on the target failed", "ns", ns.String(), "err", err)
				notes = append(notes, fmt.Sprintf("%s not created on the target: %v", ns, err))
			}
		}
	}
	return notes
}

// copyIndexes builds the source's indexes on the target.
func copyIndexes(ctx context.Context, src, dst *mongo.Client, nss []namespace, log interface {
	Warn(string, ...any)
}) (int, []string, error) {
	var notes []string
	n := 0
	for _, ns := range nss {
		if ns.Type != "collection" {
			continue
		}
		specs, err := indexSpecs(ctx, src.Database(ns.DB).Collection(ns.Coll))
		if err != nil {
			return n, notes, fmt.Errorf("list the indexes of %s: %w", ns, err)
		}
		for _, spec := range specs {
			err := createIndex(ctx, dst.Database(ns.DB), ns.Coll, spec)
			if err != nil {
				name, _ := spec.Lookup("name").StringValueOK()
				log.Warn("the target refused an index", "ns", ns.String(), "index", name, "err", err)
				notes = append(notes, fmt.Sprintf("index %s of %s not built on the target: %v", name, ns, err))
				continue
			}
			n++
		}
	}
	return n, notes, nil
}

// indexSpecs lists a collection's index specs other than _id_.
func indexSpecs(ctx context.Context, c *mongo.Collection) ([]bson.Raw, error) {
	cur, err := c.Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	var all []bson.Raw
	if err := cur.All(ctx, &all); err != nil {
		return nil, err
	}
	var out []bson.Raw
	for _, s := range all {
		if name, _ := s.Lookup("name").StringValueOK(); name == "_id_" {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// createIndex creates one index from a listIndexes spec (or an oplog one).
func createIndex(ctx context.Context, db *mongo.Database, coll string, spec bson.Raw) error {
	clean := bson.D{}
	elems, _ := spec.Elements()
	for _, el := range elems {
		switch el.Key() {
		case "ns", "background", "createIndexes", "v":
			// v: the target builds its own index version (FerretDB refuses the field).
			continue
		}
		clean = append(clean, bson.E{Key: el.Key(), Value: el.Value()})
	}
	return db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: bson.A{clean}}}).Err()
}

// plan lays out the copy's partitions.
func (e *Engine) plan(ctx context.Context, src *mongo.Client, ss server, nss []namespace, m *ferry.Migration) ([]partition, error) {
	var parts []partition
	par := parallelism(m)
	for _, ns := range nss {
		if ns.Type != "collection" {
			continue
		}
		whole := partition{DB: ns.DB, Coll: ns.Coll}
		if ns.Count < e.splitDocs() || hasCollation(ns.Options) {
			parts = append(parts, whole)
			continue
		}
		k := int(ns.Count / (e.splitDocs() / 2))
		if k < 2 {
			k = 2
		}
		if k > 4*par {
			k = 4 * par
		}
		ranges, err := e.splitRanges(ctx, src.Database(ns.DB).Collection(ns.Coll), k)
		if err != nil {
			return nil, err
		}
		if ranges == nil {
			parts = append(parts, whole)
			continue
		}
		parts = append(parts, ranges...)
	}
	return parts, nil
}

func hasCollation(o bson.Raw) bool {
	if o == nil {
		return false
	}
	_, err := o.LookupErr("collation")
	return err == nil
}

func parallelism(m *ferry.Migration) int {
	if m.Options.Parallelism > 0 {
		return m.Options.Parallelism
	}
	return 4
}

// bracketOf names the type bracket of an _id for range splitting; ""
// for types ferry does not split on.
func bracketOf(t bson.Type) (string, []string) {
	switch t {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return "number", []string{"number"}
	case bson.TypeString, bson.TypeSymbol:
		return "string", []string{"string"} // a symbol _id, in both: its duplicate is ignored
	case bson.TypeObjectID:
		return "objectId", []string{"objectId"}
	case bson.TypeDateTime:
		return "date", []string{"date"}
	}
	return "", nil
}

// compareSame orders two _ids of one bracket as the server does (binary
// string comparison: collections with a collation are not split).
func compareSame(a, b bson.RawValue) int {
	switch a.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		x, y := num(a), num(b)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case bson.TypeString:
		return strings.Compare(a.StringValue(), b.StringValue())
	case bson.TypeObjectID:
		x, y := a.ObjectID(), b.ObjectID()
		return bytes.Compare(x[:], y[:])
	case bson.TypeDateTime:
		x, y := a.DateTime(), b.DateTime()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

func num(v bson.RawValue) float64 {
	switch v.Type {
	case bson.TypeInt32:
		return float64(v.Int32())
	case bson.TypeInt64:
		return float64(v.Int64())
	case bson.TypeDouble:
		return v.Double()
	}
	return math.NaN()
}

// splitRanges samples a collection's _ids and cuts them into about k
// ranges of the most common type bracket, plus a partition for the _ids of
// the other types. nil means: copy it whole.
func (e *Engine) splitRanges(ctx context.Context, c *mongo.Collection, k int) ([]partition, error) {
	var ids []bson.RawValue
	cur, err := c.Aggregate(ctx, mongo.Pipeline{{{Key: "$sample", Value: bson.D{{Key: "size", Value: k * 50}}}}, {{Key: "$project", Value: bson.D{{Key: "_id", Value: 1}}}}})
	if err != nil {
		if !e.ForceSplit {
			return nil, nil
		}
		// No $sample here (FerretDB): scan the _ids.
		cur, err = c.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("scan the _ids of %s: %w", c.Name(), err)
		}
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		v := cur.Current.Lookup("_id")
		ids = append(ids, bson.RawValue{Type: v.Type, Value: append([]byte(nil), v.Value...)})
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("sample the _ids of %s: %w", c.Name(), err)
	}
	counts := map[string]int{}
	for _, v := range ids {
		if b, _ := bracketOf(v.Type); b != "" && !(v.Type == bson.TypeDouble && math.IsNaN(v.Double())) {
			counts[b]++
		}
	}
	best, bestN := "", 0
	for b, n := range counts {
		if n > bestN || n == bestN && b < best {
			best, bestN = b, n
		}
	}
	if bestN < 2 {
		return nil, nil
	}
	var same []bson.RawValue
	var aliases []string
	for _, v := range ids {
		if b, al := bracketOf(v.Type); b == best && !(v.Type == bson.TypeDouble && math.IsNaN(v.Double())) && v.Type != bson.TypeDecimal128 {
			same, aliases = append(same, v), al
		}
	}
	sort.Slice(same, func(i, j int) bool { return compareSame(same[i], same[j]) < 0 })
	var bounds []bson.RawValue
	for i := 1; i < k; i++ {
		b := same[i*len(same)/k]
		if len(bounds) > 0 && compareSame(bounds[len(bounds)-1], b) == 0 {
			continue
		}
		bounds = append(bounds, b)
	}
	if len(bounds) == 0 {
		return nil, nil
	}
	db := c.Database().Name()
	var parts []partition
	var lo []byte
	for _, b := range bounds {
		parts = append(parts, partition{DB: db, Coll: c.Name(), Lo: lo, Hi: valueBytes(b), Bracket: aliases})
		lo = valueBytes(b)
	}
	parts = append(parts, partition{DB: db, Coll: c.Name(), Lo: lo, Bracket: aliases})
	// {_id: {$lt: b}} matches only its bracket: the first range has no
	// lower bound but still excludes the other types, which Rest takes.
	parts = append(parts, partition{DB: db, Coll: c.Name(), Rest: true, Bracket: aliases})
	return parts, nil
}

// batch is a set of raw documents for one insertMany.
type batch struct {
	p     *partition
	docs  []any
	bytes int64
	wg    *sync.WaitGroup
}

// copyAll copies the partitions not yet done: readers fill batches, a pool
// of writers inserts them (unordered insertMany of the raw documents).
func (e *Engine) copyAll(ctx context.Context, m *ferry.Migration, rt ferry.StepRuntime, src, dst *mongo.Client, cp *fullCheckpoint,
	save func() error, estDocs, estBytes int64, noTimeout bool) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	par := parallelism(m)
	var docs, byteCount atomic.Int64
	for _, p := range cp.Partitions {
		if p.Done {
			docs.Add(p.Docs)
			byteCount.Add(p.Bytes)
		}
	}
	var saveMu sync.Mutex
	// Per-collection progress for the status line.
	var colMu sync.Mutex
	colDocs := map[string]int64{}
	active := map[string]int{}

	work := make(chan *partition)
	batches := make(chan *batch, 2*par)
	limiter := newLimiter(m.Options.BandwidthLimitMB)

	var writers sync.WaitGroup
	for i := 0; i < 2*par; i++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for b := range batches {
				if ctx.Err() == nil {
					if err := insertRaw(ctx, dst.Database(b.p.DB).Collection(b.p.Coll), b.docs); err != nil {
						cancel(fmt.Errorf("insert into %s on the target: %w", b.p.ns(), err))
					} else {
						docs.Add(int64(len(b.docs)))
						byteCount.Add(b.bytes)
						colMu.Lock()
						colDocs[b.p.ns()] += int64(len(b.docs))
						colMu.Unlock()
					}
				}
				b.wg.Done()
			}
		}()
	}
	var readers sync.WaitGroup
	for i := 0; i < par; i++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for p := range work {
				colMu.Lock()
				active[p.ns()]++
				colMu.Unlock()
				n, nb, err := e.copyPartition(ctx, src, p, batches, limiter, noTimeout)
				colMu.Lock()
				active[p.ns()]--
				colMu.Unlock()
				if err != nil {
					cancel(err)
					continue
				}
				if ctx.Err() != nil {
					continue
				}
				saveMu.Lock()
				p.Done, p.Docs, p.Bytes = true, n, nb
				cp.Docs, cp.Bytes = docs.Load(), byteCount.Load()
				err = save()
				saveMu.Unlock()
				if err != nil {
					cancel(err)
				}
			}
		}()
	}
	// Progress.
	stop := make(chan struct{})
	progressDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(progressDone)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			d, b := docs.Load(), byteCount.Load()
			total, btotal := max(estDocs, d), max(estBytes, b)
			pct := 0.0
			if total > 0 {
				pct = math.Min(99, 100*float64(d)/float64(total))
			}
			rt.Progress(ferry.Counters{Done: d, Total: total, Bytes: b, BytesTotal: btotal, Unit: "documents",
				RatePerSec: float64(d) / math.Max(time.Since(start).Seconds(), 0.001)}, pct)
			colMu.Lock()
			var cols []string
			for ns, n := range active {
				if n > 0 {
					cols = append(cols, fmt.Sprintf("%s %d docs", ns, colDocs[ns]))
				}
			}
			colMu.Unlock()
			sort.Strings(cols)
			if len(cols) > 4 {
				cols = append(cols[:4], fmt.Sprintf("+%d more", len(cols)-4))
			}
			rt.Message(fmt.Sprintf("copying: %d of ~%d documents (%s of ~%s); now %s", d, total, mb(b), mb(btotal), strings.Join(cols, ", ")))
		}
	}()
feed:
	for i := range cp.Partitions {
		p := &cp.Partitions[i]
		if p.Done {
			continue
		}
		select {
		case work <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	readers.Wait()
	close(batches)
	writers.Wait()
	close(stop)
	<-progressDone
	if err := context.Cause(ctx); err != nil {
		return err
	}
	cp.Docs, cp.Bytes = docs.Load(), byteCount.Load()
	return nil
}

// copyPartition reads one partition and hands its batches to the writers;
// it returns once they are all inserted.
// noTimeout keeps the cursor alive however slow the target is (FerretDB
// does not take the option).
func (e *Engine) copyPartition(ctx context.Context, src *mongo.Client, p *partition, out chan<- *batch, lim *limiter, noTimeout bool) (int64, int64, error) {
	coll := src.Database(p.DB).Collection(p.Coll)
	fo := options.Find().SetBatchSize(int32(e.batchDocs()))
	if noTimeout {
		fo.SetNoCursorTimeout(true)
	}
	cur, err := coll.Find(ctx, p.filter(), fo)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s from the source: %w", p.ns(), err)
	}
	defer cur.Close(context.Background())
	var wg sync.WaitGroup
	var n, nb int64
	b := &batch{p: p, wg: &wg}
	flush := func() bool {
		if len(b.docs) == 0 {
			return true
		}
		wg.Add(1)
		select {
		case out <- b:
		case <-ctx.Done():
			wg.Done()
			return false
		}
		b = &batch{p: p, wg: &wg}
		return true
	}
	for cur.Next(ctx) {
		raw := bson.Raw(append([]byte(nil), cur.Current...))
		b.docs = append(b.docs, raw)
		b.bytes += int64(len(raw))
		n++
		nb += int64(len(raw))
		lim.take(ctx, len(raw))
		if len(b.docs) >= e.batchDocs() || b.bytes >= int64(e.batchBytes()) {
			if !flush() {
				break
			}
		}
	}
	if err := cur.Err(); err != nil && ctx.Err() == nil {
		wg.Wait()
		return 0, 0, fmt.Errorf("read %s from the source: %w", p.ns(), err)
	}
	flush()
	wg.Wait()
	return n, nb, nil
}

// insertRaw inserts raw documents unordered; documents already there (a
// resumed copy) are left as they are: the sync replays every change since
// the resume point over them.
func insertRaw(ctx context.Context, c *mongo.Collection, docs []any) error {
	_, err := c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false).SetBypassDocumentValidation(true))
	if err == nil {
		return nil
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
		for _, we := range bwe.WriteErrors {
			if we.Code != codeDuplicateKey {
				return err
			}
		}
		return nil
	}
	return err
}

// limiter bounds the copy's read rate (Options.BandwidthLimitMB).
type limiter struct {
	mu    sync.Mutex
	rate  float64 // bytes per second; 0: unlimited
	start time.Time
	n     float64
}

func newLimiter(mbps int) *limiter {
	return &limiter{rate: float64(mbps) * 1e6, start: time.Now()}
}

func (l *limiter) take(ctx context.Context, n int) {
	if l == nil || l.rate <= 0 {
		return
	}
	l.mu.Lock()
	l.n += float64(n)
	wait := time.Duration(l.n/l.rate*float64(time.Second)) - time.Since(l.start)
	l.mu.Unlock()
	if wait > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}
