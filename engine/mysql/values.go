package mysql

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Values move byte-exact:
//   - strings and binary columns are written as _binary'...' literals of
//     the bytes read (the source session returns results in each column's
//     own character set, character_set_results=binary), so any charset
//     round-trips without a conversion;
//   - DECIMAL as its decimal string; FLOAT and DOUBLE from the binary
//     protocol (float32/float64), written with the shortest representation
//     that parses back to the same double (a float32 widened to a double is
//     exact, and the target rounds it back to the same float32);
//   - BIT as its bytes (full copy) or its integer (binlog);
//   - dates and times as strings in UTC sessions, zero dates included (the
//     target session's sql_mode allows them);
//   - ENUM and SET by value (full copy) or by index/bitmask (binlog).

// stringish reports whether a column holds bytes in a character set (or
// binary) that are written as _binary literals.
func stringish(c *column) bool {
	switch c.DataType {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set",
		"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "json", "geometry", "point",
		"linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "inet4", "inet6", "uuid":
		return true
	}
	return false
}

func intBits(dataType string) uint {
	switch dataType {
	case "tinyint":
		return 8
	case "smallint":
		return 16
	case "mediumint":
		return 24
	case "int", "integer":
		return 32
	}
	return 64
}

// binlogArg turns a value decoded by go-mysql into a statement argument for
// column c.
func binlogArg(c *column, v any, mysqlJSON bool) any {
	var i int64
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		if c.DataType == "json" && mysqlJSON {
			return x
		}
		if stringish(c) {
			return []byte(x)
		}
		return x
	case []byte:
		if c.DataType == "json" && mysqlJSON {
			return string(x)
		}
		return x
	case int8:
		i = int64(x)
	case int16:
		i = int64(x)
	case int32:
		i = int64(x)
	case int64:
		i = x
	case int:
		i = int64(x)
	case uint8, uint16, uint32, uint64, float32, float64:
		return x
	default:
		return fmt.Sprint(x)
	}
	if c.DataType == "bit" {
		return uint64(i)
	}
	if c.Unsigned {
		bits := intBits(c.DataType)
		u := uint64(i)
		if bits < 64 {
			u &= 1<<bits - 1
		}
		return u
	}
	return i
}

// fullArg turns a value read by the driver's binary protocol into a
// statement argument.
func fullArg(c *column, v any, mysqlJSON bool) any {
	switch x := v.(type) {
	case []byte:
		if c.DataType == "json" && mysqlJSON {
			return string(x)
		}
		switch c.DataType {
		case "inet4", "inet6", "uuid":
			// Sent as text: a binary string would be taken as the value's
			// binary form.
			return string(x)
		}
		if stringish(c) || c.DataType == "bit" {
			return x
		}
		return string(x)
	}
	return v
}

func argBytes(v any) int {
	switch x := v.(type) {
	case []byte:
		return len(x) + 2
	case string:
		return len(x) + 2
	case nil:
		return 4
	}
	return 8
}

// Key values are kept in checkpoints as tagged strings.
func encodeKey(vals []any) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case nil:
			out[i] = "n:"
		case int64:
			out[i] = "i:" + strconv.FormatInt(x, 10)
		case uint64:
			out[i] = "u:" + strconv.FormatUint(x, 10)
		case float32:
			out[i] = "f:" + strconv.FormatUint(uint64(math.Float32bits(x)), 10)
		case float64:
			out[i] = "d:" + strconv.FormatUint(math.Float64bits(x), 10)
		case []byte:
			out[i] = "b:" + base64.StdEncoding.EncodeToString(x)
		case string:
			out[i] = "b:" + base64.StdEncoding.EncodeToString([]byte(x))
		default:
			out[i] = "b:" + base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(x)))
		}
	}
	return out
}

func decodeKey(s []string) ([]any, error) {
	if s == nil {
		return nil, nil
	}
	out := make([]any, len(s))
	for i, e := range s {
		tag, val, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("bad key value %q in checkpoint", e)
		}
		var err error
		switch tag {
		case "n":
			out[i] = nil
		case "i":
			out[i], err = strconv.ParseInt(val, 10, 64)
		case "u":
			out[i], err = strconv.ParseUint(val, 10, 64)
		case "f":
			var u uint64
			u, err = strconv.ParseUint(val, 10, 32)
			out[i] = math.Float32frombits(uint32(u))
		case "d":
			var u uint64
			u, err = strconv.ParseUint(val, 10, 64)
			out[i] = math.Float64frombits(u)
		case "b":
			out[i], err = base64.StdEncoding.DecodeString(val)
		default:
			err = fmt.Errorf("bad key tag %q", tag)
		}
		if err != nil {
			return nil, fmt.Errorf("bad key value %q in checkpoint: %w", e, err)
		}
	}
	return out, nil
}
