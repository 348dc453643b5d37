package mysql_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrymigrate/ferry"
)

// TestFullLoadData: the full copy by LOAD DATA LOCAL INFILE moves every
// column type byte for byte (escapes, NULL against the strings "NULL" and
// "\N", a trailing backslash, binary bytes, FLOAT bits), and the target's
// tables end identical to the source's, secondary indexes included;
// fullLoadBinlog=off keeps the rows out of the target's binlog.
func TestFullLoadData(t *testing.T) {
	e := newEnv(t)
	seed(t, e.srcDB, 30000)
	exec1(t, e.srcDB, `INSERT INTO shop.types (id, c, vc, tx, ltx, bl, vb, bn, j) VALUES
		(6, 'tab\there', 'ends\\', '\\N', '\\\\N\\t\\0', 0x5C4E090A00, 0x5C, 0x0A090D5C, '"\\\\"'),
		(7, '\\', '\t', '\n', '\r', 0x09, 0x0A, 0x4E554C4C, '"N"')`)
	// MariaDB's own types, and a table of more than one chunk with a
	// sparse integer key (chunks by value range).
	exec1(t, e.srcDB, `CREATE TABLE shop.mtypes (id INT UNSIGNED NOT NULL PRIMARY KEY, a INET6, b UUID, c INET4, p POINT, KEY (c)) ENGINE=InnoDB`,
		`INSERT INTO shop.mtypes VALUES (1, '::1', '123e4567-e89b-12d3-a456-426655440000', '10.0.0.1', POINT(1.5, -2)),
			(2, 'fe80::1:2', '00000000-0000-0000-0000-000000000000', '0.0.0.0', NULL), (3, NULL, NULL, NULL, NULL),
			(4294967295, '2001:db8::ff00:42:8329', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '255.255.255.255', POINT(0, 0))`,
		`INSERT INTO shop.mtypes (id, c) SELECT id * 97 + 1000, INET_NTOA(id) FROM shop.big WHERE id <= 12000`)
	m := e.create(ferry.Modes{Schema: true, Full: true}, ferry.Options{Parallelism: 2, Extra: map[string]string{"fullLoadBinlog": "off"}})
	e.agent("agent-1")
	m = e.wait(m.ID, "completed", 90*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	full := m.Step(ferry.StepFull)
	if !strings.Contains(full.Message, "LOAD DATA") {
		t.Errorf("the full copy did not go by LOAD DATA: %s", full.Message)
	}
	if full.Counters.Done != full.Counters.Total || full.Progress != 100 {
		t.Errorf("full step counters %+v, progress %v", full.Counters, full.Progress)
	}
	compareDumps(t, dump(t, e.src, "shop"), dump(t, e.dst, "shop"))
	q := "SELECT GROUP_CONCAT(CAST(CAST(f AS DOUBLE) AS CHAR) ORDER BY id) FROM shop.types"
	var a, b string
	_ = e.srcDB.QueryRow(q).Scan(&a)
	_ = e.dstDB.QueryRow(q).Scan(&b)
	if a != b || a == "" {
		t.Fatalf("FLOAT values differ: %s vs %s", a, b)
	}
	// shop.big's KEY (n) was dropped for the load and built after it, once
	// (the dumps above show it back, in its place).
	var drops, adds, rowEvents int
	rows, err := e.dstDB.Query("SHOW BINLOG EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var logName, typ, info string
		var pos, sid, end any
		if err := rows.Scan(&logName, &pos, &typ, &sid, &end, &info); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "`shop`.`big` DROP INDEX `n`") {
			drops++
		}
		if strings.Contains(info, "`shop`.`big` ADD KEY `n`") {
			adds++
		}
		if typ == "Table_map" && strings.Contains(info, "`shop`.`big`") {
			rowEvents++
		}
	}
	rows.Close()
	if drops != 1 || adds != 1 {
		t.Errorf("target binlog: %d DROP INDEX and %d ADD KEY of shop.big's index n, want 1 and 1", drops, adds)
	}
	if rowEvents != 0 {
		t.Errorf("fullLoadBinlog=off: %d row events of shop.big in the target's binlog", rowEvents)
	}
	t.Logf("%s", full.Message)

	// A target with local_infile=OFF gets the multi-row REPLACEs (as
	// fullLoad=insert asks), which move the same values.
	exec1(t, e.dstDB, "SET GLOBAL local_infile = 0")
	defer exec1(t, e.dstDB, "SET GLOBAL local_infile = 1")
	m2 := e.create(ferry.Modes{Schema: true, Full: true}, ferry.Options{Parallelism: 2,
		Filters: ferry.Filters{IncludeDBs: []string{"shop"}, Renames: map[string]string{"shop": "shop2"}}})
	m2 = e.wait(m2.ID, "completed", 90*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	if msg := m2.Step(ferry.StepFull).Message; !strings.Contains(msg, "multi-row REPLACE") {
		t.Errorf("fullLoad=insert: %s", msg)
	}
	compareDumps(t, dump(t, e.src, "shop", "--ignore-table=shop.big_even"), dump(t, e.dst, "shop2", "--ignore-table=shop2.big_even"))
}
