package verify

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// class is how a column's values are serialized for the row hash.
type class int

const (
	clsInt       class = iota // integers, YEAR: decimal text
	clsDecimal                // DECIMAL: text with its scale
	clsFloat                  // FLOAT: widened to DOUBLE
	clsDouble                 // DOUBLE: shortest round-trip text
	clsBit                    // BIT: as an unsigned integer
	clsEnum                   // ENUM, SET: text (keys: their number)
	clsTemporal               // DATE, DATETIME, TIMESTAMP, TIME: text in UTC
	clsText                   // CHAR, VARCHAR and other text: utf8mb4 bytes
	clsLOBText                // TEXT, JSON: length and MD5 of the utf8mb4 bytes
	clsBinary                 // BINARY, VARBINARY: raw bytes
	clsLOBBinary              // BLOB, spatial: length and MD5 of the bytes
	clsOther                  // anything else (INET6, UUID, ...): CAST AS CHAR
)

func classify(dataType string) class {
	switch strings.ToLower(dataType) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year":
		return clsInt
	case "decimal", "numeric", "dec", "fixed":
		return clsDecimal
	case "float":
		return clsFloat
	case "double", "real", "double precision":
		return clsDouble
	case "bit":
		return clsBit
	case "enum", "set":
		return clsEnum
	case "date", "datetime", "timestamp", "time":
		return clsTemporal
	case "char", "varchar", "nchar", "nvarchar":
		return clsText
	case "tinytext", "text", "mediumtext", "longtext", "json":
		return clsLOBText
	case "binary", "varbinary":
		return clsBinary
	case "tinyblob", "blob", "mediumblob", "longblob", "geometry", "point", "linestring", "polygon",
		"multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
		return clsLOBBinary
	}
	return clsOther
}

type column struct {
	name         string
	cls          class
	nullable     bool
	prec, scale  int64 // DECIMAL
	columnType   string
	dataTypeName string
	charset      string
}

// token is the column's part of the row serialization (see the package
// documentation). Scalars (numbers, temporal values) print without commas,
// so they end with one: v ',' or N, for NULL. Strings, whose bytes may be
// anything, are length-prefixed: LENGTH(v) ':' v (':' MD5(v) for TEXT and
// BLOB), or N for NULL. The column types tell which form each position
// takes, so the serialization reads back one way only.
func (c *column) token() string {
	q := quoteIdent(c.name)
	scalar := func(v string) string { return "IFNULL(CONCAT(" + v + ", ','), 'N,')" }
	str := func(v string, lob bool) string {
		if lob {
			return "IFNULL(CONCAT(LENGTH(" + v + "), ':', MD5(" + v + ")), 'N')"
		}
		return "IFNULL(CONCAT(LENGTH(" + v + "), ':', " + v + "), 'N')"
	}
	// Text as utf8mb4 bytes, as a binary string (no collation to mix).
	text := "CAST(" + q + " AS BINARY)"
	if !utf8Bytes[strings.ToLower(c.charset)] {
		text = "CAST(CONVERT(" + q + " USING utf8mb4) AS BINARY)"
	}
	switch c.cls {
	case clsInt, clsDecimal, clsDouble, clsTemporal:
		return scalar(q)
	case clsFloat:
		return scalar(q + " * 1e0")
	case clsBit:
		return scalar("CAST(" + q + " AS UNSIGNED)")
	case clsEnum, clsText:
		return str(text, false)
	case clsLOBText:
		return str(text, true)
	case clsBinary:
		return str(q, false)
	case clsLOBBinary:
		return str(q, true)
	default:
		return str("CAST(CAST("+q+" AS CHAR CHARACTER SET utf8mb4) AS BINARY)", false)
	}
}

// utf8Bytes are the character sets whose bytes are already those of
// utf8mb4 for every character they hold.
var utf8Bytes = map[string]bool{"": true, "utf8mb4": true, "utf8mb3": true, "utf8": true, "ascii": true, "binary": true}

// display is a short readable rendering of the column's value, for reports.
func (c *column) display() string {
	q := quoteIdent(c.name)
	switch c.cls {
	case clsFloat:
		return q + " * 1e0"
	case clsBit:
		return "CAST(" + q + " AS UNSIGNED)"
	case clsBinary, clsLOBBinary:
		return "CONCAT('0x', HEX(LEFT(" + q + ", 32)), IF(LENGTH(" + q + ") > 32, '...', ''))"
	case clsText, clsLOBText, clsEnum, clsOther:
		return "CONCAT(LEFT(CONVERT(" + q + " USING utf8mb4), 64), IF(CHAR_LENGTH(" + q + ") > 64, '...', ''))"
	}
	return q
}

// keyCol is one column of the key a table is chunked by.
type keyCol struct {
	column
}

// sel is what the key walk selects for the column: values that, passed back
// as parameters (see param), compare in the column's own order.
func (k *keyCol) sel() string {
	q := quoteIdent(k.name)
	switch k.cls {
	case clsBit, clsEnum:
		return "(" + q + " + 0)" // BIT as a number, ENUM/SET by index: their ORDER BY order
	case clsFloat:
		return "(" + q + " * 1e0)" // exact
	}
	return q
}

// placeholder is the parameter's SQL, typed so that it compares with the
// column as the column's values compare with each other.
func (k *keyCol) placeholder() string {
	if k.cls == clsDecimal && k.prec > 0 {
		return fmt.Sprintf("CAST(? AS DECIMAL(%d,%d))", k.prec, k.scale)
	}
	return "?"
}

// param turns a selected key value into a query parameter: integers as
// integers (exact to 2^64), floats as float64, binary values as bytes, and
// everything else as a string (so that text compares by the column's
// collation, temporal values as temporal values).
func (k *keyCol) param(b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	switch k.cls {
	case clsInt, clsBit, clsEnum:
		s := string(b)
		if strings.HasPrefix(s, "-") {
			return strconv.ParseInt(s, 10, 64)
		}
		return strconv.ParseUint(s, 10, 64)
	case clsFloat, clsDouble:
		return strconv.ParseFloat(string(b), 64)
	case clsBinary, clsLOBBinary:
		return append([]byte(nil), b...), nil
	}
	return string(b), nil
}

// tableInfo is one table being compared.
type tableInfo struct {
	t                    Table
	name                 string // db.table of the source
	srcQ, dstQ           string // quoted db.table
	srcExists, dstExists bool
	cols                 []string // compared columns, in source order
	srcCols, dstCols     []*column
	pairs                [][2]*column // compared columns: source, target
	key                  []*keyCol    // nil: multiset compare
	srcHash, dstHash     string       // MD5 of the row serialization
	estRows              int64
	rep                  *TableReport
}

func newTableInfo(t Table) *tableInfo {
	return &tableInfo{t: t, name: t.SrcDB + "." + t.SrcName,
		srcQ: quoteIdent(t.SrcDB) + "." + quoteIdent(t.SrcName),
		dstQ: quoteIdent(t.DstDB) + "." + quoteIdent(t.DstName),
		rep:  &TableReport{}}
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func loadColumns(ctx context.Context, c *sql.Conn, db, table string) ([]*column, error) {
	rows, err := c.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, NUMERIC_PRECISION, NUMERIC_SCALE, CHARACTER_SET_NAME
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, fmt.Errorf("verify: columns of %s.%s: %w", db, table, err)
	}
	defer rows.Close()
	var out []*column
	for rows.Next() {
		var (
			col                column
			dataType, nullable string
			precision, scale   sql.NullInt64
			charset            sql.NullString
		)
		if err := rows.Scan(&col.name, &dataType, &col.columnType, &nullable, &precision, &scale, &charset); err != nil {
			return nil, err
		}
		col.dataTypeName = dataType
		col.cls = classify(dataType)
		col.nullable = nullable == "YES"
		col.prec, col.scale = precision.Int64, scale.Int64
		col.charset = charset.String
		out = append(out, &col)
	}
	return out, rows.Err()
}

// loadKey returns the columns of the source's primary key or, without one,
// of its shortest unique key on NOT NULL columns; nil when there is none.
func loadKey(ctx context.Context, c *sql.Conn, db, table string, cols []*column) ([]*keyCol, error) {
	rows, err := c.QueryContext(ctx, `SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`, db, table)
	if err != nil {
		return nil, fmt.Errorf("verify: keys of %s.%s: %w", db, table, err)
	}
	defer rows.Close()
	byName := map[string]*column{}
	for _, col := range cols {
		byName[col.name] = col
	}
	idx := map[string][]string{}
	var order []string
	for rows.Next() {
		var name, col string
		if err := rows.Scan(&name, &col); err != nil {
			return nil, err
		}
		if _, ok := idx[name]; !ok {
			order = append(order, name)
		}
		idx[name] = append(idx[name], col)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	pick := func(names []string) []*keyCol {
		var out []*keyCol
		for _, n := range names {
			col := byName[n]
			if col == nil || col.nullable {
				return nil
			}
			out = append(out, &keyCol{column: *col})
		}
		return out
	}
	if k := pick(idx["PRIMARY"]); k != nil {
		return k, nil
	}
	var best []*keyCol
	for _, name := range order {
		if k := pick(idx[name]); k != nil && (best == nil || len(k) < len(best)) {
			best = k
		}
	}
	return best, nil
}

func tableExists(ctx context.Context, c *sql.Conn, db, table string) (exists bool, rows int64, err error) {
	var n sql.NullInt64
	err = c.QueryRowContext(ctx, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, table).Scan(&n)
	if err == sql.ErrNoRows {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("verify: look up %s.%s: %w", db, table, err)
	}
	return true, n.Int64, nil
}

// load reads the table's shape on both sides and builds its expressions.
func (t *tableInfo) load(ctx context.Context, src, dst *sql.Conn) error {
	var err error
	if t.srcExists, t.estRows, err = tableExists(ctx, src, t.t.SrcDB, t.t.SrcName); err != nil {
		return err
	}
	if t.dstExists, _, err = tableExists(ctx, dst, t.t.DstDB, t.t.DstName); err != nil {
		return err
	}
	switch {
	case !t.srcExists && !t.dstExists:
		return fmt.Errorf("verify: table %s exists on neither side", t.name)
	case !t.dstExists:
		t.rep.Schema = append(t.rep.Schema, fmt.Sprintf("table %s.%s does not exist on the target", t.t.DstDB, t.t.DstName))
		return nil
	case !t.srcExists:
		t.rep.Schema = append(t.rep.Schema, fmt.Sprintf("table %s does not exist on the source", t.name))
		return nil
	}
	if t.srcCols, err = loadColumns(ctx, src, t.t.SrcDB, t.t.SrcName); err != nil {
		return err
	}
	if t.dstCols, err = loadColumns(ctx, dst, t.t.DstDB, t.t.DstName); err != nil {
		return err
	}
	dstBy := map[string]*column{}
	for _, c := range t.dstCols {
		dstBy[strings.ToLower(c.name)] = c
	}
	srcBy := map[string]bool{}
	var srcToks, dstToks []string
	for _, c := range t.srcCols {
		srcBy[strings.ToLower(c.name)] = true
		d := dstBy[strings.ToLower(c.name)]
		if d == nil {
			t.rep.Schema = append(t.rep.Schema, fmt.Sprintf("column %s is missing on the target", c.name))
			continue
		}
		t.cols = append(t.cols, c.name)
		t.pairs = append(t.pairs, [2]*column{c, d})
		srcToks = append(srcToks, c.token())
		dstToks = append(dstToks, d.token())
	}
	for _, c := range t.dstCols {
		if !srcBy[strings.ToLower(c.name)] {
			t.rep.Schema = append(t.rep.Schema, fmt.Sprintf("column %s is extra on the target", c.name))
		}
	}
	if len(t.cols) == 0 {
		return fmt.Errorf("verify: tables %s and %s.%s have no column in common", t.name, t.t.DstDB, t.t.DstName)
	}
	t.srcHash = "MD5(CONCAT(" + strings.Join(srcToks, ", ") + "))"
	t.dstHash = "MD5(CONCAT(" + strings.Join(dstToks, ", ") + "))"
	if t.key, err = loadKey(ctx, src, t.t.SrcDB, t.t.SrcName, t.srcCols); err != nil {
		return err
	}
	for _, k := range t.key {
		if dstBy[strings.ToLower(k.name)] == nil {
			t.key = nil // the key is not there to range on: compare as a multiset
			break
		}
	}
	for _, k := range t.key {
		t.rep.Key = append(t.rep.Key, k.name)
	}
	return nil
}

// h64 is the 64-bit row hash of a side.
func h64(hash string) string {
	return "CAST(CONV(LEFT(" + hash + ", 16), 16, 10) AS UNSIGNED)"
}

func (t *tableInfo) keySel() string {
	s := make([]string, len(t.key))
	for i, k := range t.key {
		s[i] = k.sel()
	}
	return strings.Join(s, ", ")
}

func (t *tableInfo) keyOrder() string {
	s := make([]string, len(t.key))
	for i, k := range t.key {
		s[i] = quoteIdent(k.name)
	}
	return strings.Join(s, ", ")
}

// cmp writes the row-value comparison (k1, ..., kn) op (v1, ..., vn) as
// k1 op' v1 OR (k1 = v1 AND k2 op' v2) OR ..., with a leading k1 >= v1 (or
// <=) for the range optimizer. op is ">" or "<=".
func (t *tableInfo) cmp(op string, vals []any) (string, []any) {
	strict, lead := ">", ">="
	if op == "<=" {
		strict, lead = "<", "<="
	}
	var terms []string
	var args []any
	for i := range t.key {
		var parts []string
		for j := 0; j < i; j++ {
			parts = append(parts, quoteIdent(t.key[j].name)+" = "+t.key[j].placeholder())
			args = append(args, vals[j])
		}
		o := strict
		if i == len(t.key)-1 {
			o = op
		}
		parts = append(parts, quoteIdent(t.key[i].name)+" "+o+" "+t.key[i].placeholder())
		args = append(args, vals[i])
		terms = append(terms, "("+strings.Join(parts, " AND ")+")")
	}
	s := quoteIdent(t.key[0].name) + " " + lead + " " + t.key[0].placeholder() + " AND (" + strings.Join(terms, " OR ") + ")"
	return s, append([]any{vals[0]}, args...)
}

// rangeWhere is the WHERE clause of the key range (lo, hi]; nil bounds are
// open.
func (t *tableInfo) rangeWhere(lo, hi []any) (string, []any) {
	var conds []string
	var args []any
	if lo != nil {
		s, a := t.cmp(">", lo)
		conds, args = append(conds, "("+s+")"), append(args, a...)
	}
	if hi != nil {
		s, a := t.cmp("<=", hi)
		conds, args = append(conds, "("+s+")"), append(args, a...)
	}
	if len(conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(conds, " AND "), args
}

// boundary returns the key of the n-th row after lo on the source, or nil
// when fewer rows are left.
func (t *tableInfo) boundary(ctx context.Context, c *sql.Conn, lo []any, n int) ([]any, error) {
	where, args := t.rangeWhere(lo, nil)
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT 1 OFFSET %d", t.keySel(), t.srcQ, where, t.keyOrder(), n-1)
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("verify: walk the key of %s: %w", t.name, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	raw := make([]sql.RawBytes, len(t.key))
	dest := make([]any, len(raw))
	for i := range raw {
		dest[i] = &raw[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	return t.params(raw)
}

func (t *tableInfo) params(raw []sql.RawBytes) ([]any, error) {
	out := make([]any, len(t.key))
	for i, k := range t.key {
		v, err := k.param(raw[i])
		if err != nil {
			return nil, fmt.Errorf("verify: key %s of %s: %q: %w", k.name, t.name, raw[i], err)
		}
		out[i] = v
	}
	return out, nil
}

// keyID identifies a key exactly (length-prefixed values).
func keyID(vals []any) string {
	var b strings.Builder
	for _, v := range vals {
		s := fmt.Sprint(v)
		if bs, ok := v.([]byte); ok {
			s = string(bs)
		}
		fmt.Fprintf(&b, "%d:%T:%s", len(s), v, s)
	}
	return b.String()
}

// keyString renders a key for reports: "a=1, b=x".
func (t *tableInfo) keyString(vals []any) string {
	parts := make([]string, len(t.key))
	for i, k := range t.key {
		parts[i] = k.name + "=" + render(vals[i])
	}
	return strings.Join(parts, ", ")
}

func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return "0x" + strings.ToUpper(hex.EncodeToString(x))
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}
