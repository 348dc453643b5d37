package pipeline

import (
	"reflect"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
)

// col is one node of a dataset's schema: a leaf (a Parquet column), a group
// (a nested document) or a list. Fields keep the source's order (a MySQL
// table's column order, a collection's first-seen field order), which
// parquet.Group (a sorted map) would not.
type col struct {
	Name     string
	Leaf     parquet.Node // nil for groups and lists
	Fields   []*col       // group
	Elem     *col         // list element
	Optional bool
	// Source describes the source type (a MySQL COLUMN_TYPE, BSON type
	// names) for the manifest.
	Source string
	// Encoding notes how values are written when that is not obvious
	// ("extjson": canonical MongoDB Extended JSON text).
	Encoding string

	// Text renders a leaf value for a partition directory (default: the
	// value's own text).
	Text func(parquet.Value) string

	leafIndex int // column index of a leaf, set by index()
}

func (c *col) text(v parquet.Value) string {
	if c.Text != nil {
		return c.Text(v)
	}
	return v.String()
}

func (c *col) isGroup() bool { return c.Leaf == nil && c.Elem == nil }
func (c *col) isList() bool  { return c.Elem != nil }

// node returns the Parquet node of c.
func (c *col) node() parquet.Node {
	var n parquet.Node
	switch {
	case c.isList():
		n = parquet.List(c.Elem.node())
	case c.Leaf != nil:
		n = c.Leaf
	default:
		n = &orderedGroup{fields: c.Fields}
	}
	if c.Optional {
		n = parquet.Optional(n)
	}
	return n
}

// index numbers the leaves in schema order (the order of Parquet columns).
func (c *col) index() int {
	n := 0
	var walk func(c *col)
	walk = func(c *col) {
		switch {
		case c.isList():
			walk(c.Elem)
		case c.Leaf != nil:
			c.leafIndex = n
			n++
		default:
			for _, f := range c.Fields {
				walk(f)
			}
		}
	}
	walk(c)
	return n
}

// orderedGroup is a Parquet group whose fields keep the given order.
type orderedGroup struct{ fields []*col }

func (g *orderedGroup) ID() int                     { return 0 }
func (g *orderedGroup) String() string              { return "group" }
func (g *orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g *orderedGroup) Optional() bool              { return false }
func (g *orderedGroup) Repeated() bool              { return false }
func (g *orderedGroup) Required() bool              { return true }
func (g *orderedGroup) Leaf() bool                  { return false }
func (g *orderedGroup) Encoding() encoding.Encoding { return nil }
func (g *orderedGroup) Compression() compress.Codec { return nil }
func (g *orderedGroup) GoType() reflect.Type        { return reflect.TypeOf(map[string]any(nil)) }
func (g *orderedGroup) Fields() []parquet.Field {
	fs := make([]parquet.Field, len(g.fields))
	for i, c := range g.fields {
		fs[i] = &field{Node: c.node(), name: c.Name}
	}
	return fs
}

type field struct {
	parquet.Node
	name string
}

func (f *field) Name() string { return f.name }
func (f *field) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Map {
		return base.MapIndex(reflect.ValueOf(f.name))
	}
	return reflect.Value{}
}

// rowBuilder turns a record (a tree of values matching a schema) into a
// parquet.Row by Dremel striping: each leaf gets its values with their
// repetition and definition levels, columns concatenated in schema order.
type rowBuilder struct {
	root *col
	cols [][]parquet.Value
}

func newRowBuilder(root *col) *rowBuilder {
	n := root.index()
	return &rowBuilder{root: root, cols: make([][]parquet.Value, n)}
}

// record is what a source hands the writer for one row: values of the
// root group's fields, by position. A group value is a record, a list
// value is []any, a leaf value is a parquet.Value (its Kind set), nil is
// null/missing.
type record []any

// build appends rec's striped values to row.
func (b *rowBuilder) build(rec record, row parquet.Row) parquet.Row {
	for i := range b.cols {
		b.cols[i] = b.cols[i][:0]
	}
	for i, f := range b.root.Fields {
		var v any
		if i < len(rec) {
			v = rec[i]
		}
		b.put(f, v, 0, 0, 0)
	}
	for _, c := range b.cols {
		row = append(row, c...)
	}
	return row
}

// put writes value v of node c; rep is the repetition level to give the
// first value, def the definition level reached by c's parent, repDepth the
// number of repeated ancestors.
func (b *rowBuilder) put(c *col, v any, rep, def, repDepth int) {
	if v == nil {
		b.nulls(c, rep, def)
		return
	}
	if c.Optional {
		def++
	}
	switch {
	case c.isList():
		items, _ := v.([]any)
		// LIST: optional/required group (def above) > repeated group list > element
		if len(items) == 0 {
			b.nulls(c.Elem, rep, def)
			return
		}
		for i, it := range items {
			r := rep
			if i > 0 {
				r = repDepth + 1
			}
			b.put(c.Elem, it, r, def+1, repDepth+1)
		}
	case c.Leaf != nil:
		pv := v.(parquet.Value)
		b.cols[c.leafIndex] = append(b.cols[c.leafIndex], pv.Level(rep, def, c.leafIndex))
	default:
		rec, _ := v.(record)
		for i, f := range c.Fields {
			var fv any
			if i < len(rec) {
				fv = rec[i]
			}
			b.put(f, fv, rep, def, repDepth)
		}
	}
}

// nulls writes a null at definition level def in every leaf under c.
func (b *rowBuilder) nulls(c *col, rep, def int) {
	switch {
	case c.isList():
		b.nulls(c.Elem, rep, def)
	case c.Leaf != nil:
		b.cols[c.leafIndex] = append(b.cols[c.leafIndex], parquet.NullValue().Level(rep, def, c.leafIndex))
	default:
		for _, f := range c.Fields {
			b.nulls(f, rep, def)
		}
	}
}

// SchemaField describes a dataset column in the manifest.
type SchemaField struct {
	Name     string        `json:"name"`
	Type     string        `json:"type"` // Parquet type and annotation, or group / list
	Optional bool          `json:"optional,omitempty"`
	Source   string        `json:"source,omitempty"`
	Encoding string        `json:"encoding,omitempty"`
	Fields   []SchemaField `json:"fields,omitempty"`
	Element  *SchemaField  `json:"element,omitempty"`
}

func describe(c *col) SchemaField {
	f := SchemaField{Name: c.Name, Optional: c.Optional, Source: c.Source, Encoding: c.Encoding}
	switch {
	case c.isList():
		f.Type = "list"
		e := describe(c.Elem)
		f.Element = &e
	case c.Leaf != nil:
		t := c.Leaf.Type()
		f.Type = t.String()
	default:
		f.Type = "group"
		for _, x := range c.Fields {
			f.Fields = append(f.Fields, describe(x))
		}
	}
	return f
}
