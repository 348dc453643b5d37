package mysql

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/ferrymigrate/ferry"
)

// The fast path of the full copy: LOAD DATA LOCAL INFILE
//
// A chunk is read from its snapshot connection by the text protocol (a
// plain query with the chunk's key bounds written as literals), so every
// value arrives as the bytes a dump would carry: integers, DECIMALs, dates
// and times (in the UTC session, with their fractional seconds), ENUM and
// SET values as text, strings and binary values raw in their column's
// character set (character_set_results=binary), BIT as its bytes. FLOAT
// columns are read as (f + 0e0); YEAR is loaded as a number (the string
// '0000' would load as 2000): the text protocol prints a FLOAT with 6
// significant digits, a DOUBLE with the shortest digits that parse back to
// it, and a FLOAT widened to a DOUBLE is exact (the target rounds it back to
// the same FLOAT).
//
// The rows are streamed, as they are read, into LOAD DATA LOCAL INFILE on
// a target connection (go-sql-driver's reader handler), in the statement's
// default text format, CHARACTER SET binary (bytes stored as read, no
// conversion): fields separated by a tab, rows ended by a newline, a
// backslash escaping a backslash, tab, newline or NUL in a value, and \N for
// NULL (an empty field is an empty string, and the word NULL is a string:
// fields are not enclosed). So reading the source and writing the target
// overlap, one statement loads a whole chunk, and no value is parsed or
// formatted on the way (nothing is allocated per value). REPLACE for
// tables with a key, as the multi-row path does.
//
// The multi-row REPLACE path (full.go) stays for targets that refuse
// LOAD DATA LOCAL (local_infile=OFF) and for keys whose values cannot be
// written as literals here.

// loadSpec is how one table is read and loaded.
type loadSpec struct {
	sel  string // SELECT ... FROM ... (no WHERE)
	load string // the LOAD DATA statement after its file name
}

func newLoadSpec(t *table, replace, targetMySQLJSON bool) *loadSpec {
	var sel, cols, set []string
	for n, i := range t.written() {
		c := &t.Cols[i]
		switch c.DataType {
		case "float":
			sel = append(sel, "("+quote(c.Name)+" + 0e0)")
		default:
			sel = append(sel, quote(c.Name))
		}
		v := "@ferry_v" + strconv.Itoa(n)
		switch {
		case c.DataType == "json" && targetMySQLJSON:
			// MySQL's JSON type refuses a binary string.
			cols = append(cols, v)
			set = append(set, quote(c.Name)+" = CONVERT("+v+" USING utf8mb4)")
			continue
		case c.DataType == "inet4" || c.DataType == "inet6" || c.DataType == "uuid":
			// Read as text: a binary string would be taken as the
			// value's binary form.
			cols = append(cols, v)
			set = append(set, quote(c.Name)+" = CONVERT("+v+" USING utf8mb4)")
			continue
		case c.DataType == "year":
			// The string '0000' loads as 2000; the number 0 as 0000.
			cols = append(cols, v)
			set = append(set, quote(c.Name)+" = CAST("+v+" AS UNSIGNED)")
			continue
		}
		cols = append(cols, quote(c.Name))
	}
	verb := ""
	if replace {
		verb = "REPLACE "
	}
	load := verb + "INTO TABLE " + t.dst() +
		" CHARACTER SET binary FIELDS TERMINATED BY '\\t' ENCLOSED BY '' ESCAPED BY '\\\\' LINES STARTING BY '' TERMINATED BY '\\n' (" +
		strings.Join(cols, ", ") + ")"
	if len(set) > 0 {
		load += " SET " + strings.Join(set, ", ")
	}
	return &loadSpec{sel: "SELECT " + strings.Join(sel, ", ") + " FROM " + t.src(), load: load}
}

func (s *loadSpec) statement(reader string) string {
	return "LOAD DATA LOCAL INFILE 'Reader::" + reader + "' " + s.load
}

// keyPredLit is keyPred with the key's values written as literals; ok is
// false when a value cannot be.
func keyPredLit(t *table, op string, vals []any) (string, bool) {
	lits := make([]string, len(vals))
	for i, v := range vals {
		l, ok := literal(&t.Cols[t.Key[i]], v)
		if !ok {
			return "", false
		}
		lits[i] = l
	}
	var ors []string
	n := len(t.Key)
	for i := 0; i < n; i++ {
		var ands []string
		for j := 0; j < i; j++ {
			c := &t.Cols[t.Key[j]]
			ands = append(ands, quote(c.Name)+" = "+paramLit(c, lits[j]))
		}
		c := &t.Cols[t.Key[i]]
		o := op
		if op == "<=" {
			o = "<"
			if i == n-1 {
				o = "<="
			}
		}
		ands = append(ands, quote(c.Name)+" "+o+" "+paramLit(c, lits[i]))
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", true
}

// paramLit is param with the literal in place of the placeholder.
func paramLit(c *column, lit string) string {
	return strings.Replace(param(c), "?", lit, 1)
}

// literal writes a key value read by the binary protocol as an SQL literal
// that compares like the bound argument does.
func literal(c *column, v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "NULL", true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float32:
		return strconv.FormatFloat(float64(x), 'e', -1, 64), true
	case float64:
		return strconv.FormatFloat(x, 'e', -1, 64), true
	case []byte:
		switch {
		case stringish(c) || c.DataType == "bit":
			return "X'" + hex.EncodeToString(x) + "'", true
		case c.DataType == "decimal":
			if len(x) == 0 || !onlyBytes(x, "0123456789.-+") {
				return "", false
			}
			return "'" + string(x) + "'", true
		case c.DataType == "date" || c.DataType == "datetime" || c.DataType == "timestamp" || c.DataType == "time" || c.DataType == "year":
			if !onlyBytes(x, "0123456789-:. ") {
				return "", false
			}
			return "'" + string(x) + "'", true
		}
	}
	return "", false
}

func onlyBytes(b []byte, set string) bool {
	for _, c := range b {
		if strings.IndexByte(set, c) < 0 {
			return false
		}
	}
	return true
}

// needsEscape marks the bytes escaped in a LOAD DATA field.
var needsEscape = [256]bool{'\\': true, '\t': true, '\n': true, 0: true}

// appendField appends v escaped for LOAD DATA's default format.
func appendField(buf, v []byte) []byte {
	start := 0
	for i, c := range v {
		if !needsEscape[c] {
			continue
		}
		buf = append(buf, v[start:i]...)
		switch c {
		case '\t':
			buf = append(buf, '\\', 't')
		case '\n':
			buf = append(buf, '\\', 'n')
		case 0:
			buf = append(buf, '\\', '0')
		default:
			buf = append(buf, '\\', c)
		}
		start = i + 1
	}
	return append(buf, v[start:]...)
}

// appendRow appends one row of driver values (text protocol: []byte or nil).
func appendRow(buf []byte, vals []driver.Value) ([]byte, int) {
	n := 0
	for i, v := range vals {
		if i > 0 {
			buf = append(buf, '\t')
		}
		switch x := v.(type) {
		case nil:
			buf = append(buf, '\\', 'N')
			n += 4
		case []byte:
			buf = appendField(buf, x)
			n += len(x) + 2
		case string:
			buf = appendField(buf, []byte(x))
			n += len(x) + 2
		case int64:
			buf = strconv.AppendInt(buf, x, 10)
			n += 8
		case uint64:
			buf = strconv.AppendUint(buf, x, 10)
			n += 8
		case float64:
			buf = strconv.AppendFloat(buf, x, 'g', -1, 64)
			n += 8
		case float32:
			buf = strconv.AppendFloat(buf, float64(x), 'g', -1, 64)
			n += 8
		default:
			buf = appendField(buf, fmt.Append(nil, x))
			n += 8
		}
	}
	return append(buf, '\n'), n
}

var readerSeq atomic.Int64

// errNoLoadData: the chunk cannot take the LOAD DATA path.
var errNoLoadData = errors.New("no LOAD DATA path for this chunk")

// loadChunk copies one chunk by LOAD DATA LOCAL INFILE on dconn, reading it
// on the snapshot connection conn.
func (c *copier) loadChunk(ctx context.Context, conn, dconn *sql.Conn, ch chunk) (int64, error) {
	tr := ch.tr
	t := tr.t
	q := tr.spec.sel
	var where []string
	if !ch.whole {
		q += forceIndex(t)
		if ch.lo != nil {
			p, ok := keyPredLit(t, ">", ch.lo)
			if !ok {
				return 0, errNoLoadData
			}
			where = append(where, p)
		}
		if ch.hi != nil {
			p, ok := keyPredLit(t, "<=", ch.hi)
			if !ok {
				return 0, errNoLoadData
			}
			where = append(where, p)
		}
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}

	pr, pw := io.Pipe()
	name := "ferry-" + strconv.FormatInt(readerSeq.Add(1), 10)
	gomysql.RegisterReaderHandler(name, func() io.Reader { return pr })
	defer gomysql.DeregisterReaderHandler(name)
	loadErr := make(chan error, 1)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, err := dconn.ExecContext(lctx, tr.spec.statement(name))
		if err == nil {
			err = io.ErrClosedPipe // the statement ended: nothing more is read
		}
		pr.CloseWithError(err)
		if err == io.ErrClosedPipe {
			err = nil
		}
		loadErr <- err
	}()

	var n, countedRows, countedBytes int64
	readErr := conn.Raw(func(dc any) error {
		qc, ok := dc.(driver.QueryerContext)
		if !ok {
			return errors.New("the driver cannot query")
		}
		rows, err := qc.QueryContext(ctx, q, nil)
		if err != nil {
			return err
		}
		defer rows.Close()
		vals := make([]driver.Value, len(rows.Columns()))
		bw := bufio.NewWriterSize(pw, 256<<10)
		buf := make([]byte, 0, 64<<10)
		var bytes, pending int64
		flush := func() error {
			if _, err := bw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
			c.rows.Add(pending)
			tr.live.Add(pending)
			c.bytes.Add(bytes)
			c.mu.Lock()
			c.cp.Bytes += bytes
			c.mu.Unlock()
			c.limiter.wait(ctx, int(bytes))
			countedRows += pending
			countedBytes += bytes
			bytes, pending = 0, 0
			return nil
		}
		for {
			if err := rows.Next(vals); err != nil {
				if err == io.EOF {
					break
				}
				return err
			}
			var b int
			buf, b = appendRow(buf, vals)
			bytes += int64(b)
			pending++
			n++
			if len(buf) >= 60<<10 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		return bw.Flush()
	})
	if readErr != nil {
		pw.CloseWithError(readErr)
	} else {
		pw.Close()
	}
	lerr := <-loadErr
	var me *gomysql.MySQLError
	if errors.As(lerr, &me) && (me.Number == 1148 || me.Number == 3948 || me.Number == 2068) {
		// LOAD DATA LOCAL refused (by a setting @@local_infile does not
		// show): nothing was loaded; this and later chunks go by REPLACEs.
		c.noLoad.Store(true)
		c.rows.Add(-countedRows)
		tr.live.Add(-countedRows)
		c.bytes.Add(-countedBytes)
		c.mu.Lock()
		c.cp.Bytes -= countedBytes
		c.mu.Unlock()
		c.rt.Logger().Warn("the target refuses LOAD DATA LOCAL INFILE: copying by multi-row REPLACEs", "err", lerr)
		return 0, errNoLoadData
	}
	switch {
	case lerr != nil:
		return n, fmt.Errorf("load %s: %w", t.dst(), lerr)
	case readErr != nil:
		return n, fmt.Errorf("read %s: %w", t.id(), readErr)
	}
	return n, nil
}

// Extra options of a job (ferry.Options.Extra) for the full copy:
//
//   - "fullLoad": "insert" copies by multi-row REPLACEs even where LOAD
//     DATA LOCAL INFILE would do (the default: "load").
//   - "fullLoadBinlog": "off" runs the full copy's target sessions with
//     sql_log_bin = 0 (needs SUPER or BINLOG ADMIN on the target): faster,
//     but replicas of the target do not get the copied rows. Reverse sync is
//     not affected: it reads the target's binlog from the cutover on.
const (
	extraFullLoad       = "fullLoad"
	extraFullLoadBinlog = "fullLoadBinlog"
)

// loadSettings decides how chunks are written.
func (c *copier) loadSettings(ctx context.Context) error {
	extra := c.m.Options.Extra
	c.noBinlog = strings.EqualFold(extra[extraFullLoadBinlog], "off")
	if strings.EqualFold(extra[extraFullLoad], "insert") {
		return nil
	}
	dstSrv, err := detect(ctx, c.dst)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	c.dstMySQL = !dstSrv.MariaDB
	var on sql.NullInt64
	if err := c.dst.QueryRowContext(ctx, "SELECT @@local_infile").Scan(&on); err != nil || on.Int64 != 1 {
		c.rt.Logger().Info("the target refuses LOAD DATA LOCAL INFILE (local_infile=OFF): copying by multi-row REPLACEs")
		return nil
	}
	c.load = true
	return nil
}

// loadConn is a target connection for one worker's LOAD DATA statements.
func (c *copier) loadConn(ctx context.Context) (*sql.Conn, error) {
	conn, err := c.dst.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if c.noBinlog {
		if _, err := conn.ExecContext(ctx, "SET SESSION sql_log_bin = 0"); err != nil {
			conn.Close()
			return nil, &ferry.Error{Code: ferry.EINVALID, Field: "options.extra." + extraFullLoadBinlog, Reason: "TARGET_PRIVILEGES",
				Message: fmt.Sprintf("SET sql_log_bin = 0 on the target failed: %v", err),
				Advice:  "grant SUPER (MySQL) or BINLOG ADMIN (MariaDB) to the target user, or leave the target's binlog on"}
		}
	}
	return conn, nil
}

// method says how the rows were written.
func (c *copier) method() string {
	if c.load && !c.noLoad.Load() {
		return "by LOAD DATA LOCAL INFILE"
	}
	return "by multi-row REPLACE"
}
