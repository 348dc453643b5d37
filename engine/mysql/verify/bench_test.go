package verify

import (
	"database/sql"
	"testing"
	"time"
)

// BenchmarkCompare compares a 200k-row sysbench-shaped table (id, k, c
// CHAR(120), pad CHAR(60)) between two identical servers and reports rows/s.
func BenchmarkCompare(b *testing.B) {
	const n = 200_000
	src, dst := servers(b)
	for _, db := range []*sql.DB{src, dst} {
		exec(b, db, "CREATE DATABASE sb", "USE sb",
			"CREATE TABLE sbtest1 (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))",
			"INSERT INTO sbtest1 SELECT seq, seq * 7 % 100000, CONCAT_WS('-', MD5(seq), MD5(seq + 1), MD5(seq + 2)), CONCAT_WS('-', MD5(seq * 3), LEFT(MD5(seq * 5), 27)) FROM seq_1_to_200000")
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		rep, err := Compare(ctx, src, dst, Options{Databases: []string{"sb"}})
		if err != nil || !rep.Equal() || rep.Rows != n {
			b.Fatalf("%v %v", err, rep)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rows/s")
}
