package pipeline

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ferrymigrate/ferry"
	mongoengine "github.com/ferrymigrate/ferry/engine/mongo"
)

// mongoSource reads a collection.
//
// Read point: on MongoDB, one read in a snapshot session (readConcern
// "snapshot": every batch at the cluster time of the first, recorded as
// the position; the server keeps that history about 5 minutes by default,
// minSnapshotHistoryWindowInSeconds). FerretDB has no snapshot reads: the
// collection is read once, and the manifest's consistency and
// the run's log say that writes during the read may or may not be seen.
// Both read in natural order (no sort: FerretDB would sort in memory).
//
// The collection is read once: each document is spilled as raw BSON to a
// temporary file while the schema is inferred, then the spill is written
// as Parquet — one read of the source at its read point, memory bounded
// (the spill is on disk).
//
// Schema rule, per field path (fields in first-seen order, every field
// OPTIONAL but _id, a missing field and null both null):
//
//	one BSON type seen      a typed column: double DOUBLE, string STRING,
//	                        int32 INT(32), int64 INT(64), bool BOOLEAN,
//	                        date TIMESTAMP(MILLIS, UTC), objectId STRING (24 hex),
//	                        decimal128 STRING (its exact text), binData BYTE_ARRAY
//	                        (one subtype; the subtype is in the manifest),
//	                        document a GROUP of its fields, array a LIST of
//	                        its elements' (merged) type
//	several BSON types      STRING holding each value as canonical Extended JSON
//	(e.g. int32 and string, (so {"$numberInt":"1"} and "1" stay distinct), the
//	int32 and int64)        types seen listed in the manifest (source), encoding "extjson"
//	other types (regex, timestamp, javascript, minKey, …) and binData of
//	several subtypes        the same Extended JSON STRING
//
// No value is lost: a reader recovers every BSON value and its type from
// the column type, or from the Extended JSON.
type mongoSource struct{}

func (s *mongoSource) check(p *ferry.Pipeline, ep *ferry.Endpoint) error { return nil }

type mongoReader struct {
	client      *mongo.Client
	p           *ferry.Pipeline
	excluded    map[string]bool
	pos         map[string]any
	consistency string
	spill       *os.File
	docs        int64
	root        *shape
	rootCol     *col
	convs       []mconv
	index       map[string]int
}

func (s *mongoSource) open(ctx context.Context, p *ferry.Pipeline, ep *ferry.Endpoint, excluded map[string]bool) (reader, error) {
	opts := options.Client().SetConnectTimeout(10 * time.Second).SetServerSelectionTimeout(15 * time.Second).
		SetAppName("ferry-pipeline").ApplyURI(mongoengine.URI(ep))
	c, err := mongo.Connect(opts)
	if err != nil {
		return nil, sourceErr(err)
	}
	r := &mongoReader{client: c, p: p, excluded: excluded, pos: map[string]any{}, root: newShape()}
	if err := r.read(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *mongoReader) close() {
	if r.spill != nil {
		r.spill.Close()
		os.Remove(r.spill.Name())
	}
	_ = r.client.Disconnect(context.Background())
}

func (r *mongoReader) position() (map[string]any, string) { return r.pos, r.consistency }

// read takes the snapshot and spills the collection.
func (r *mongoReader) read(ctx context.Context) error {
	db := r.client.Database(r.p.Source.DatabaseName)
	var bi bson.M
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err != nil {
		return sourceErr(err)
	}
	r.pos["serverVersion"] = bi["version"]
	_, ferret := bi["ferretdbVersion"]
	names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: r.p.Source.CollectionName}})
	if err != nil {
		return sourceErr(err)
	}
	if len(names) == 0 {
		return &ferry.Error{Code: ferry.ENOTFOUND, Field: "source.collectionName", Reason: "COLLECTION_NOT_FOUND",
			Message: fmt.Sprintf("no collection %s.%s on the source", r.p.Source.DatabaseName, r.p.Source.CollectionName)}
	}
	if r.spill, err = createTemp("spill"); err != nil {
		return err
	}
	coll := db.Collection(r.p.Source.CollectionName)
	// Natural order: MongoDB's snapshot read needs no order to be
	// consistent, and on FerretDB (no snapshot either way) an _id sort
	// only adds the server's sorting work.
	find := options.Find().SetBatchSize(1000)
	if ferret {
		r.consistency = "none: FerretDB has no snapshot reads; the collection was read once in natural order, and writes made during the read may or may not be in the dataset"
		r.pos["ferretdbVersion"] = bi["ferretdbVersion"]
		return r.spillAll(ctx, coll, find)
	}
	sess, err := r.client.StartSession(options.Session().SetSnapshot(true))
	if err != nil {
		return sourceErr(err)
	}
	defer sess.EndSession(context.Background())
	sctx := mongo.NewSessionContext(ctx, sess)
	r.consistency = "snapshot: readConcern snapshot at the recorded cluster time"
	err = r.spillAll(sctx, coll, find)
	if ct := sess.OperationTime(); ct != nil {
		r.pos["clusterTime"] = map[string]any{"t": ct.T, "i": ct.I}
	}
	return err
}

func (r *mongoReader) spillAll(ctx context.Context, coll *mongo.Collection, find *options.FindOptionsBuilder) error {
	cur, err := coll.Find(ctx, bson.D{}, find)
	if err != nil {
		return fmt.Errorf("read %s: %w", coll.Name(), err)
	}
	defer cur.Close(ctx)
	w := bufio.NewWriterSize(r.spill, 1<<20)
	for cur.Next(ctx) {
		doc := cur.Current
		if err := r.root.addDoc(doc, "", r.excluded); err != nil {
			return err
		}
		if _, err := w.Write(doc); err != nil {
			return err
		}
		r.docs++
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read %s: %w", coll.Name(), err)
	}
	return w.Flush()
}

// shape accumulates what was seen at one field path.
type shape struct {
	types    map[bson.Type]int
	subtypes map[byte]bool
	fields   []string
	byName   map[string]*shape
	elem     *shape
}

func newShape() *shape { return &shape{types: map[bson.Type]int{}, byName: map[string]*shape{}} }

func (s *shape) addDoc(doc bson.Raw, prefix string, excluded map[string]bool) error {
	els, err := doc.Elements()
	if err != nil {
		return err
	}
	for _, el := range els {
		k := el.Key()
		if excluded[prefix+k] {
			continue
		}
		f := s.byName[k]
		if f == nil {
			f = newShape()
			s.byName[k] = f
			s.fields = append(s.fields, k)
		}
		if err := f.add(el.Value(), prefix+k+".", excluded); err != nil {
			return err
		}
	}
	return nil
}

func (s *shape) add(v bson.RawValue, prefix string, excluded map[string]bool) error {
	if v.Type == bson.TypeNull {
		return nil
	}
	s.types[v.Type]++
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		return s.addDoc(v.Document(), prefix, excluded)
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return err
		}
		if s.elem == nil {
			s.elem = newShape()
		}
		for _, x := range vals {
			if err := s.elem.add(x, prefix, excluded); err != nil {
				return err
			}
		}
	case bson.TypeBinary:
		st, _ := v.Binary()
		if s.subtypes == nil {
			s.subtypes = map[byte]bool{}
		}
		s.subtypes[st] = true
	}
	return nil
}

var bsonTypeNames = map[bson.Type]string{
	bson.TypeDouble: "double", bson.TypeString: "string", bson.TypeEmbeddedDocument: "object", bson.TypeArray: "array",
	bson.TypeBinary: "binData", bson.TypeUndefined: "undefined", bson.TypeObjectID: "objectId", bson.TypeBoolean: "bool",
	bson.TypeDateTime: "date", bson.TypeRegex: "regex", bson.TypeDBPointer: "dbPointer", bson.TypeJavaScript: "javascript",
	bson.TypeSymbol: "symbol", bson.TypeCodeWithScope: "javascriptWithScope", bson.TypeInt32: "int", bson.TypeTimestamp: "timestamp",
	bson.TypeInt64: "long", bson.TypeDecimal128: "decimal", bson.TypeMaxKey: "maxKey", bson.TypeMinKey: "minKey",
}

func (s *shape) typeList() string {
	var ns []string
	for t := range s.types {
		ns = append(ns, bsonTypeNames[t])
	}
	sort.Strings(ns)
	return strings.Join(ns, ",")
}

// mconv converts a BSON value to a record value of its column.
type mconv func(v bson.RawValue) (any, error)

// build turns a shape into a schema node and a converter.
func build(name string, s *shape, optional bool) (*col, mconv) {
	c := &col{Name: name, Optional: optional, Source: s.typeList()}
	extjson := func() (*col, mconv) {
		c.Leaf = parquet.String()
		c.Encoding = "extjson"
		c.Fields, c.Elem = nil, nil
		return c, func(v bson.RawValue) (any, error) {
			b, err := extJSON(v)
			return parquet.ByteArrayValue(b), err
		}
	}
	if len(s.types) == 0 {
		c.Leaf = parquet.String()
		c.Source = "null"
		return c, func(v bson.RawValue) (any, error) { return nil, nil }
	}
	if len(s.types) > 1 {
		return extjson()
	}
	var t bson.Type
	for t = range s.types {
	}
	switch t {
	case bson.TypeDouble:
		c.Leaf = parquet.Leaf(parquet.DoubleType)
		return c, func(v bson.RawValue) (any, error) { return parquet.DoubleValue(v.Double()), nil }
	case bson.TypeString:
		c.Leaf = parquet.String()
		return c, func(v bson.RawValue) (any, error) { return parquet.ByteArrayValue([]byte(v.StringValue())), nil }
	case bson.TypeInt32:
		c.Leaf = parquet.Int(32)
		return c, func(v bson.RawValue) (any, error) { return parquet.Int32Value(v.Int32()), nil }
	case bson.TypeInt64:
		c.Leaf = parquet.Int(64)
		return c, func(v bson.RawValue) (any, error) { return parquet.Int64Value(v.Int64()), nil }
	case bson.TypeBoolean:
		c.Leaf = parquet.Leaf(parquet.BooleanType)
		return c, func(v bson.RawValue) (any, error) { return parquet.BooleanValue(v.Boolean()), nil }
	case bson.TypeDateTime:
		c.Leaf = parquet.TimestampAdjusted(parquet.Millisecond, true)
		c.Text = func(v parquet.Value) string {
			return time.UnixMilli(v.Int64()).UTC().Format("2006-01-02T15:04:05.999Z")
		}
		return c, func(v bson.RawValue) (any, error) { return parquet.Int64Value(v.DateTime()), nil }
	case bson.TypeObjectID:
		c.Leaf = parquet.String()
		c.Encoding = "hex"
		return c, func(v bson.RawValue) (any, error) { return parquet.ByteArrayValue([]byte(v.ObjectID().Hex())), nil }
	case bson.TypeDecimal128:
		c.Leaf = parquet.String()
		c.Encoding = "decimal128 text"
		return c, func(v bson.RawValue) (any, error) {
			return parquet.ByteArrayValue([]byte(v.Decimal128().String())), nil
		}
	case bson.TypeBinary:
		if len(s.subtypes) != 1 {
			return extjson()
		}
		for st := range s.subtypes {
			c.Source = fmt.Sprintf("binData subtype %d", st)
		}
		c.Leaf = parquet.Leaf(parquet.ByteArrayType)
		return c, func(v bson.RawValue) (any, error) { _, b := v.Binary(); return parquet.ByteArrayValue(b), nil }
	case bson.TypeEmbeddedDocument:
		convs := make([]mconv, len(s.fields))
		index := map[string]int{}
		for i, f := range s.fields {
			fc, conv := build(f, s.byName[f], true)
			c.Fields = append(c.Fields, fc)
			convs[i] = conv
			index[f] = i
		}
		if len(c.Fields) == 0 { // only empty documents: keep them as {}
			return extjson()
		}
		return c, func(v bson.RawValue) (any, error) { return docRecord(v.Document(), index, convs) }
	case bson.TypeArray:
		if s.elem == nil {
			s.elem = newShape()
		}
		ec, econv := build("element", s.elem, true)
		c.Elem = ec
		return c, func(v bson.RawValue) (any, error) {
			vals, err := v.Array().Values()
			if err != nil {
				return nil, err
			}
			out := make([]any, len(vals))
			for i, x := range vals {
				if x.Type == bson.TypeNull {
					continue
				}
				if out[i], err = econv(x); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
	}
	return extjson()
}

func docRecord(doc bson.Raw, index map[string]int, convs []mconv) (record, error) {
	els, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	rec := make(record, len(convs))
	for _, el := range els {
		i, ok := index[el.Key()]
		if !ok {
			continue // excluded
		}
		v := el.Value()
		if v.Type == bson.TypeNull {
			continue
		}
		if rec[i], err = convs[i](v); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// extJSON renders one value as canonical Extended JSON.
func extJSON(v bson.RawValue) ([]byte, error) {
	b, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, true, false)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	s = strings.TrimPrefix(s, `{"v":`)
	s = strings.TrimSuffix(s, "}")
	return []byte(s), nil
}

func (r *mongoReader) schema(ctx context.Context) (*col, error) {
	root := &col{Name: "record"}
	var convs []mconv
	index := map[string]int{}
	for i, f := range r.root.fields {
		fc, conv := build(f, r.root.byName[f], f != "_id")
		root.Fields = append(root.Fields, fc)
		convs = append(convs, conv)
		index[f] = i
	}
	if len(root.Fields) == 0 {
		root.Fields = []*col{{Name: "_id", Leaf: parquet.String(), Optional: true, Source: "none (empty collection)"}}
		convs = []mconv{func(bson.RawValue) (any, error) { return nil, nil }}
		index["_id"] = 0
	}
	r.rootCol = root
	r.convs, r.index = convs, index
	return root, nil
}

func (r *mongoReader) each(ctx context.Context, fn func(fields [][]byte) error) error {
	if _, err := r.spill.Seek(0, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(r.spill, 1<<20)
	var buf []byte
	fields := make([][]byte, 1)
	for n := int64(0); n < r.docs; n++ {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return fmt.Errorf("spill: %w", err)
		}
		size := int(binary.LittleEndian.Uint32(hdr[:]))
		if size < 5 {
			return errors.New("spill: bad document")
		}
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		copy(buf, hdr[:])
		if _, err := io.ReadFull(br, buf[4:]); err != nil {
			return fmt.Errorf("spill: %w", err)
		}
		fields[0] = buf
		if err := fn(fields); err != nil {
			return err
		}
	}
	return nil
}

func (r *mongoReader) converter() converter {
	rb := newRowBuilder(r.rootCol)
	return func(fields [][]byte, row parquet.Row) (parquet.Row, error) {
		rec, err := docRecord(bson.Raw(fields[0]), r.index, r.convs)
		if err != nil {
			return row, err
		}
		return rb.build(rec, row), nil
	}
}

// partKey: the partition fields' BSON types and bytes (missing and null
// alike).
func (r *mongoReader) partKey(fields [][]byte, parts []partCol, key []byte) []byte {
	doc := bson.Raw(fields[0])
	for _, pc := range parts {
		v, err := doc.LookupErr(pc.col.Name)
		if err != nil || v.Type == bson.TypeNull {
			key = append(key, 0)
			continue
		}
		key = append(key, 1, byte(v.Type))
		key = binary.AppendUvarint(key, uint64(len(v.Value)))
		key = append(key, v.Value...)
	}
	return key
}
