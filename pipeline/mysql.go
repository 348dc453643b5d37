package pipeline

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/parquet-go/parquet-go"

	"github.com/ferrymigrate/ferry"
)

// mysqlSource reads a table of a MySQL-family server.
//
// Type mapping (MySQL → Parquet):
//
//	tinyint/smallint/mediumint/int/bigint  INT(8/16/32/32/64, signed) or UINT(…) for UNSIGNED
//	decimal(p,s)       DECIMAL(p,s) on INT32 (p≤9), INT64 (p≤18), FIXED_LEN_BYTE_ARRAY (p≤38); STRING above 38 digits
//	float, double      FLOAT, DOUBLE
//	bit(n)             UINT(64)
//	year               INT(16)
//	date               DATE
//	datetime, timestamp TIMESTAMP(MICROS, isAdjustedToUTC) (read in a +00:00 session)
//	time               STRING ("-838:59:59.000000" is outside a Parquet TIME)
//	char/varchar/text/enum/set/json  STRING (UTF-8)
//	binary/varbinary/blob/geometry   BYTE_ARRAY
//
// A nullable column is OPTIONAL. Zero dates ('0000-00-00…'), which no
// Parquet type can carry, are written as null (so temporal columns are
// always OPTIONAL) and counted in the log.
type mysqlSource struct{}

func (s *mysqlSource) check(p *ferry.Pipeline, ep *ferry.Endpoint) error {
	if len(ep.Addrs) == 0 {
		return ferry.FieldError("source.clusterName", "endpoint %q has no address", ep.Name)
	}
	return nil
}

var tlsMu sync.Mutex

func mysqlDSN(ep *ferry.Endpoint, db string) (string, error) {
	cfg := gomysql.NewConfig()
	cfg.User = ep.Username
	cfg.Passwd = ep.Password
	cfg.Net = "tcp"
	cfg.Addr = ep.Addrs[0]
	cfg.DBName = db
	cfg.Timeout = 10 * time.Second
	cfg.ReadTimeout = 30 * time.Minute
	cfg.WriteTimeout = 10 * time.Minute
	cfg.Collation = "utf8mb4_general_ci"
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	if ep.TLS {
		if ep.CACertPEM == "" && !ep.TLSSkipVerify {
			cfg.TLSConfig = "true"
		} else {
			h := fnv.New64a()
			h.Write([]byte(ep.CACertPEM))
			fmt.Fprint(h, ep.TLSSkipVerify, ep.Addrs)
			name := fmt.Sprintf("ferry-pipeline-%x", h.Sum64())
			tc := &tls.Config{InsecureSkipVerify: ep.TLSSkipVerify}
			if ep.CACertPEM != "" {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM([]byte(ep.CACertPEM)) {
					return "", ferry.FieldError("caCertPem", "no certificate in the PEM")
				}
				tc.RootCAs = pool
			}
			tlsMu.Lock()
			err := gomysql.RegisterTLSConfig(name, tc)
			tlsMu.Unlock()
			if err != nil {
				return "", err
			}
			cfg.TLSConfig = name
		}
	}
	return cfg.FormatDSN(), nil
}

// OpenMySQL opens a database/sql pool on a MySQL endpoint with the
// session settings the exporter reads with (UTC, utf8mb4).
func OpenMySQL(ep *ferry.Endpoint, db string) (*sql.DB, error) {
	d, err := mysqlDSN(ep, db)
	if err != nil {
		return nil, err
	}
	return sql.Open("mysql", d)
}

type mysqlColumn struct {
	name      string
	dataType  string
	colType   string
	nullable  bool
	unsigned  bool
	precision int
	scale     int
	binary    bool // character set binary (or a binary type)
	conv      func(b []byte) (parquet.Value, bool)
	def       int // definition level of a value (1 if the column is OPTIONAL)
}

type mysqlReader struct {
	db       *sql.DB
	conn     *sql.Conn
	p        *ferry.Pipeline
	excluded map[string]bool
	pos      map[string]any
	cols     []*mysqlColumn
	log      func(msg string, args ...any)
}

func (s *mysqlSource) open(ctx context.Context, p *ferry.Pipeline, ep *ferry.Endpoint, excluded map[string]bool) (reader, error) {
	db, err := OpenMySQL(ep, "")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	r := &mysqlReader{db: db, p: p, excluded: excluded, pos: map[string]any{}}
	if err := r.snapshot(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return r, nil
}

func (r *mysqlReader) close() {
	if r.conn != nil {
		_, _ = r.conn.ExecContext(context.Background(), "ROLLBACK")
		r.conn.Close()
	}
	r.db.Close()
}

// snapshot starts the consistent-snapshot transaction and records its
// binlog position (MariaDB: the Binlog_snapshot_* status variables, exact
// for this transaction; MySQL: the binlog/GTID position read right after,
// approximate without a global lock, which a pipeline does not need).
func (r *mysqlReader) snapshot(ctx context.Context) error {
	c, err := r.db.Conn(ctx)
	if err != nil {
		return sourceErr(err)
	}
	r.conn = c
	if _, err := c.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return sourceErr(err)
	}
	if _, err := c.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return fmt.Errorf("start consistent snapshot: %w", err)
	}
	var version string
	_ = c.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version)
	r.pos["serverVersion"] = version
	mariadb := strings.Contains(strings.ToLower(version), "mariadb")
	if mariadb {
		rows, err := c.QueryContext(ctx, "SHOW STATUS LIKE 'binlog_snapshot%'")
		if err == nil {
			for rows.Next() {
				var k, v string
				if rows.Scan(&k, &v) == nil {
					switch strings.ToLower(k) {
					case "binlog_snapshot_file":
						r.pos["binlogFile"] = v
					case "binlog_snapshot_position":
						n, _ := strconv.ParseUint(v, 10, 64)
						r.pos["binlogPos"] = n
					}
				}
			}
			rows.Close()
		}
		if f, _ := r.pos["binlogFile"].(string); f != "" {
			var g sql.NullString
			if c.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", f, r.pos["binlogPos"]).Scan(&g) == nil && g.Valid {
				r.pos["gtid"] = g.String
			}
			r.pos["exact"] = true
		}
	} else {
		var g sql.NullString
		if c.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_executed").Scan(&g) == nil && g.Valid {
			r.pos["gtid"] = g.String
		}
		r.pos["exact"] = false
	}
	return nil
}

func sourceErr(err error) error {
	return &ferry.Error{Code: ferry.EINVALID, Field: "source", Reason: "SOURCE_UNREACHABLE", Message: "cannot read the source: " + err.Error()}
}

func (r *mysqlReader) position() (map[string]any, string) {
	return r.pos, "consistent snapshot (START TRANSACTION WITH CONSISTENT SNAPSHOT)"
}

func (r *mysqlReader) schema(ctx context.Context) (*col, error) {
	rows, err := r.conn.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE,
		COALESCE(NUMERIC_PRECISION, 0), COALESCE(NUMERIC_SCALE, 0), COALESCE(CHARACTER_SET_NAME, '')
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
		r.p.Source.DatabaseName, r.p.Source.CollectionName)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	defer rows.Close()
	root := &col{Name: "record"}
	seen := map[string]bool{}
	for rows.Next() {
		var c mysqlColumn
		var null, charset string
		if err := rows.Scan(&c.name, &c.dataType, &c.colType, &null, &c.precision, &c.scale, &charset); err != nil {
			return nil, err
		}
		seen[c.name] = true
		if r.excluded[c.name] {
			continue
		}
		c.dataType = strings.ToLower(c.dataType)
		c.unsigned = strings.Contains(strings.ToLower(c.colType), "unsigned")
		c.nullable = null == "YES"
		c.binary = charset == "binary" || charset == ""
		cc := r.mapColumn(&c)
		if cc.Optional {
			c.def = 1
		}
		r.cols = append(r.cols, &c)
		root.Fields = append(root.Fields, cc)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(seen) == 0 {
		return nil, &ferry.Error{Code: ferry.ENOTFOUND, Field: "source.collectionName", Reason: "COLLECTION_NOT_FOUND",
			Message: fmt.Sprintf("no table %s.%s on the source", r.p.Source.DatabaseName, r.p.Source.CollectionName)}
	}
	for f := range r.excluded {
		if !seen[f] {
			return nil, &ferry.Error{Code: ferry.EINVALID, Field: "transformations", Reason: "INVALID_TRANSFORMATION",
				Message: fmt.Sprintf("excluded field %q is not a column of %s.%s", f, r.p.Source.DatabaseName, r.p.Source.CollectionName)}
		}
	}
	if len(root.Fields) == 0 {
		return nil, ferry.FieldError("transformations", "every column is excluded")
	}
	return root, nil
}

var epochDay = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

func (r *mysqlReader) mapColumn(c *mysqlColumn) *col {
	out := &col{Name: c.name, Optional: c.nullable, Source: c.colType}
	intCol := func(bits int) {
		if c.unsigned {
			out.Leaf = parquet.Uint(bits)
			if bits == 64 {
				c.conv = func(b []byte) (parquet.Value, bool) {
					u, ok := parseUint(b, 64)
					return parquet.Int64Value(int64(u)), ok
				}
				out.Text = func(v parquet.Value) string { return strconv.FormatUint(uint64(v.Int64()), 10) }
				return
			}
		} else {
			out.Leaf = parquet.Int(bits)
		}
		if bits <= 32 && !(c.unsigned && bits == 32) {
			c.conv = func(b []byte) (parquet.Value, bool) {
				n, ok := parseInt(b, 32)
				return parquet.Int32Value(int32(n)), ok
			}
		} else if bits == 32 { // unsigned int: stored in INT32 bits
			c.conv = func(b []byte) (parquet.Value, bool) {
				n, ok := parseUint(b, 32)
				return parquet.Int32Value(int32(uint32(n))), ok
			}
			out.Text = func(v parquet.Value) string { return strconv.FormatUint(uint64(uint32(v.Int32())), 10) }
		} else {
			c.conv = func(b []byte) (parquet.Value, bool) {
				n, ok := parseInt(b, 64)
				return parquet.Int64Value(n), ok
			}
		}
	}
	switch c.dataType {
	case "tinyint":
		intCol(8)
	case "smallint":
		intCol(16)
	case "mediumint", "int", "integer":
		intCol(32)
	case "bigint":
		intCol(64)
	case "year":
		out.Leaf = parquet.Int(16)
		c.conv = func(b []byte) (parquet.Value, bool) {
			n, ok := parseInt(b, 32)
			return parquet.Int32Value(int32(n)), ok
		}
	case "decimal", "numeric":
		p, s := c.precision, c.scale
		switch {
		case p <= 9:
			out.Leaf = parquet.Decimal(s, p, parquet.Int32Type)
			c.conv = func(b []byte) (parquet.Value, bool) {
				n, ok := unscaledFor(b, p, s)
				return parquet.Int32Value(int32(n)), ok
			}
		case p <= 18:
			out.Leaf = parquet.Decimal(s, p, parquet.Int64Type)
			c.conv = func(b []byte) (parquet.Value, bool) {
				n, ok := unscaledFor(b, p, s)
				return parquet.Int64Value(n), ok
			}
		case p <= 38:
			n := decimalBytes(p)
			lim := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
			out.Leaf = parquet.Decimal(s, p, parquet.FixedLenByteArrayType(n))
			c.conv = func(b []byte) (parquet.Value, bool) {
				u, ok := unscaled(b, s)
				if ok && u.CmpAbs(lim) >= 0 {
					u, ok = new(big.Int), false // more digits than the column holds
				}
				return parquet.FixedLenByteArrayValue(twosComplement(u, n)), ok
			}
		default:
			out.Leaf = parquet.String()
			c.conv = func(b []byte) (parquet.Value, bool) { return parquet.ByteArrayValue(b), true }
		}
		if p <= 38 {
			out.Text = func(v parquet.Value) string { return decimalText(v, s) }
		}
	case "float":
		out.Leaf = parquet.Leaf(parquet.FloatType)
		c.conv = func(b []byte) (parquet.Value, bool) {
			f, err := strconv.ParseFloat(string(b), 32)
			return parquet.FloatValue(float32(f)), err == nil
		}
	case "double", "real":
		out.Leaf = parquet.Leaf(parquet.DoubleType)
		c.conv = func(b []byte) (parquet.Value, bool) {
			f, err := strconv.ParseFloat(string(b), 64)
			return parquet.DoubleValue(f), err == nil
		}
	case "bit":
		out.Leaf = parquet.Uint(64)
		c.conv = func(b []byte) (parquet.Value, bool) {
			var buf [8]byte
			copy(buf[8-min(len(b), 8):], b[max(0, len(b)-8):])
			return parquet.Int64Value(int64(binary.BigEndian.Uint64(buf[:]))), true
		}
		out.Text = func(v parquet.Value) string { return strconv.FormatUint(uint64(v.Int64()), 10) }
	case "date":
		out.Leaf = parquet.Date()
		out.Optional = true
		c.conv = func(b []byte) (parquet.Value, bool) {
			d, ok := parseDateDays(b)
			return parquet.Int32Value(d), ok
		}
		out.Text = func(v parquet.Value) string { return epochDay.AddDate(0, 0, int(v.Int32())).Format("2006-01-02") }
	case "datetime", "timestamp":
		out.Leaf = parquet.TimestampAdjusted(parquet.Microsecond, true)
		out.Optional = true
		c.conv = func(b []byte) (parquet.Value, bool) {
			us, ok := parseDateTimeMicros(b)
			return parquet.Int64Value(us), ok
		}
		out.Text = func(v parquet.Value) string {
			return time.UnixMicro(v.Int64()).UTC().Format("2006-01-02T15:04:05.999999Z")
		}
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		out.Leaf = parquet.Leaf(parquet.ByteArrayType)
		c.conv = func(b []byte) (parquet.Value, bool) { return parquet.ByteArrayValue(b), true }
	default: // char, varchar, text, enum, set, json, time, inet, uuid…
		if c.binary && c.dataType != "time" && c.dataType != "json" && c.dataType != "enum" && c.dataType != "set" {
			out.Leaf = parquet.Leaf(parquet.ByteArrayType)
		} else {
			out.Leaf = parquet.String()
		}
		c.conv = func(b []byte) (parquet.Value, bool) { return parquet.ByteArrayValue(b), true }
	}
	return out
}

// unscaled parses a DECIMAL's text into its unscaled integer at scale.
func unscaled(b []byte, scale int) (*big.Int, bool) {
	s := string(b)
	// [+-]digits[.digits], at least one digit: what MySQL prints. Checked
	// whole, as the fraction past scale is dropped before parsing.
	digits := strings.TrimLeft(s, "+-")
	if len(s)-len(digits) > 1 || strings.Count(digits, ".") > 1 || strings.Trim(digits, ".") == "" ||
		strings.TrimLeft(digits, "0123456789.") != "" {
		return new(big.Int), false
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if len(frac) < scale {
		frac += strings.Repeat("0", scale-len(frac))
	} else {
		frac = frac[:scale]
	}
	if intPart == "-" || intPart == "+" || intPart == "" {
		intPart += "0"
	}
	u, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok {
		return new(big.Int), false
	}
	return u, true
}

// pow10 holds 10^0 .. 10^18.
var pow10 = func() (t [19]int64) {
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 10
	}
	return
}()

// fitsDecimal reports whether the unscaled value n has at most p digits
// (p <= 18): what a DECIMAL(p, s) column holds. A value that does not fit
// is refused rather than wrapped into the Parquet type.
func fitsDecimal(n int64, p int) bool {
	return n > -pow10[p] && n < pow10[p]
}

// unscaledFor parses a DECIMAL(p, s) value's text (p <= 18).
func unscaledFor(b []byte, p, s int) (int64, bool) {
	n, ok := parseDecimal64(b, s)
	if !ok {
		u, ok := unscaled(b, s)
		if !ok || !u.IsInt64() {
			return 0, false
		}
		n = u.Int64()
	}
	return n, fitsDecimal(n, p)
}

// decimalBytes is the smallest FIXED_LEN_BYTE_ARRAY that holds precision
// p in two's complement.
func decimalBytes(p int) int {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
	for n := 1; ; n++ {
		lim := new(big.Int).Lsh(big.NewInt(1), uint(8*n-1))
		if max.Cmp(lim) <= 0 {
			return n
		}
	}
}

func twosComplement(u *big.Int, n int) []byte {
	out := make([]byte, n)
	if u.Sign() >= 0 {
		u.FillBytes(out)
		return out
	}
	m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*n)), u)
	m.FillBytes(out)
	return out
}

func decimalText(v parquet.Value, scale int) string {
	var u *big.Int
	switch v.Kind() {
	case parquet.Int32:
		u = big.NewInt(int64(v.Int32()))
	case parquet.Int64:
		u = big.NewInt(v.Int64())
	default:
		b := v.ByteArray()
		u = new(big.Int).SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 {
			u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
	}
	neg := u.Sign() < 0
	s := new(big.Int).Abs(u).String()
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// each streams the table in the snapshot transaction (text protocol: the
// driver reads row by row from the socket, nothing is buffered).
func (r *mysqlReader) each(ctx context.Context, fn func(fields [][]byte) error) error {
	names := make([]string, len(r.cols))
	for i, c := range r.cols {
		names[i] = quoteIdent(c.name)
	}
	q := "SELECT " + strings.Join(names, ", ") + " FROM " + quoteIdent(r.p.Source.DatabaseName) + "." + quoteIdent(r.p.Source.CollectionName)
	rows, err := r.conn.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("read %s.%s: %w", r.p.Source.DatabaseName, r.p.Source.CollectionName, err)
	}
	defer rows.Close()
	raw := make([]sql.RawBytes, len(r.cols))
	dest := make([]any, len(r.cols))
	for i := range raw {
		dest[i] = &raw[i]
	}
	fields := make([][]byte, len(raw))
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		for i, b := range raw {
			fields[i] = b
		}
		if err := fn(fields); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (r *mysqlReader) converter() converter {
	return func(fields [][]byte, row parquet.Row) (parquet.Row, error) {
		for i, c := range r.cols {
			if fields[i] == nil {
				row = append(row, parquet.Value{}.Level(0, 0, i))
				continue
			}
			v, ok := c.conv(fields[i])
			if !ok {
				if c.dataType == "date" || c.dataType == "datetime" || c.dataType == "timestamp" {
					// A zero date ('0000-00-00'): null.
					row = append(row, parquet.Value{}.Level(0, 0, i))
					continue
				}
				return row, fmt.Errorf("column %s: cannot convert %q (%s)", c.name, fields[i], c.colType)
			}
			row = append(row, v.Level(0, c.def, i))
		}
		return row, nil
	}
}

func (r *mysqlReader) partKey(fields [][]byte, parts []partCol, key []byte) []byte {
	for _, pc := range parts {
		b := fields[pc.index]
		if b == nil {
			key = append(key, 0)
			continue
		}
		key = append(key, 1)
		key = binary.AppendUvarint(key, uint64(len(b)))
		key = append(key, b...)
	}
	return key
}
