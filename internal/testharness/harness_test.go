package testharness_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry/internal/testharness"
)

func TestMain(m *testing.M) { testharness.Main(m) }

// A test binary killed with SIGKILL takes its PostgreSQL server with it.
func TestPostgresDiesWithTestBinary(t *testing.T) {
	if os.Getenv("TESTHARNESS_CHILD") == "1" {
		fmt.Printf("URL=%s\n", testharness.StartPostgres(t))
		select {} // until killed
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPostgresDiesWithTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TESTHARNESS_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := cmd.Process.Pid
	defer func() {
		// What the child leaves behind; a later harness would sweep it too.
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("ferry-testharness-pg-%d-*", child)))
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}()
	url := ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "URL="); ok {
			url = u
			break
		}
	}
	if url == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Skip("the child could not start PostgreSQL (see TestPostgres)")
	}
	addr := strings.Split(strings.TrimPrefix(url, "postgres://postgres@"), "/")[0]
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		t.Fatalf("the child's server is not up: %v", err)
	} else {
		c.Close()
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL on %s outlived its killed test binary", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPostgres(t *testing.T) {
	ctx := t.Context()
	var urls [3]string
	var wg sync.WaitGroup
	for i := range urls {
		wg.Add(1)
		go func() { defer wg.Done(); urls[i] = testharness.StartPostgres(t) }()
	}
	wg.Wait()
	seen := map[string]bool{}
	port := ""
	for _, u := range urls {
		if !strings.HasPrefix(u, "postgres://postgres@127.0.0.1:") || !strings.HasSuffix(u, "?sslmode=disable") {
			t.Fatalf("url %q", u)
		}
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var db string
		var one int
		if err := conn.QueryRow(ctx, "SELECT current_database(), 1").Scan(&db, &one); err != nil || one != 1 {
			t.Fatalf("query: %v", err)
		}
		if seen[db] {
			t.Fatalf("database %s handed out twice", db)
		}
		seen[db] = true
		// One server for all of them.
		if p := strings.Split(strings.TrimPrefix(u, "postgres://postgres@127.0.0.1:"), "/")[0]; port == "" {
			port = p
		} else if p != port {
			t.Fatalf("second server on port %s (first on %s)", p, port)
		}
		var level string
		if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil || level != "logical" {
			t.Fatalf("wal_level %q, %v", level, err)
		}
	}
}

func TestPostgresDropsDatabase(t *testing.T) {
	var name, url string
	t.Run("user", func(t *testing.T) {
		url = testharness.StartPostgres(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		conn.Close(t.Context()) // left open connections are forced out by the drop anyway
	})
	other := testharness.StartPostgres(t)
	conn, err := pgx.Connect(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s of a finished test still exists", name)
	}
}

func TestRedis(t *testing.T) {
	ctx := t.Context()
	a, b := testharness.StartRedis(t), testharness.StartRedis(t, "--requirepass", "s3cret")
	if a == b {
		t.Fatalf("two servers on %s", a)
	}
	ca := redis.NewClient(&redis.Options{Addr: a})
	defer ca.Close()
	if err := ca.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := ca.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cb := redis.NewClient(&redis.Options{Addr: b, Password: "s3cret"})
	defer cb.Close()
	if err := cb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := cb.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("servers share data: %d, %v", n, err)
	}
	cfg, err := ca.ConfigGet(ctx, "save").Result()
	if err != nil || cfg["save"] != "" {
		t.Fatalf("save = %q, %v", cfg["save"], err)
	}
}

func TestRedisStops(t *testing.T) {
	var addr string
	t.Run("user", func(t *testing.T) { addr = testharness.StartRedis(t) })
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("redis on %s still accepts connections after its test", addr)
	}
}

func TestRedisKill(t *testing.T) {
	s := testharness.StartRedisServer(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := c.Ping(t.Context()).Err(); err == nil {
		t.Fatal("PING succeeded after Kill")
	}
}

func TestMariaDB(t *testing.T) {
	srv := testharness.StartMariaDBServer(t, testharness.MariaDBOptions{ServerID: 42})
	dsn := srv.DSN
	if dsn != "root@tcp("+srv.Addr+")/" || srv.Socket == "" || srv.DataDir == "" {
		t.Fatalf("server %+v", srv)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var logBin, format, image, charset string
	var serverID int
	err = db.QueryRowContext(ctx, "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@server_id, @@character_set_server").
		Scan(&logBin, &format, &image, &serverID, &charset)
	if err != nil {
		t.Fatal(err)
	}
	if logBin != "1" || format != "ROW" || image != "FULL" || serverID != 42 || charset != "utf8mb4" {
		t.Fatalf("log_bin %s, binlog_format %s, binlog_row_image %s, server_id %d, charset %s", logBin, format, image, serverID, charset)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE d"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE d.t (id INT PRIMARY KEY, s VARCHAR(10))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO d.t VALUES (1, '😀')"); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := db.QueryRowContext(ctx, "SELECT s FROM d.t WHERE id = 1").Scan(&s); err != nil || s != "😀" {
		t.Fatalf("read back %q, %v", s, err)
	}
}
