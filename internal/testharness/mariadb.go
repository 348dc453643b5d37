package testharness

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the readiness check's driver
)

const installMariaDB = "apt-get install -y mariadb-server"

// MariaDBOptions configure StartMariaDB.
type MariaDBOptions struct {
	// ServerID is the server's server_id (1 when zero). Servers that
	// replicate from one another need distinct ids.
	ServerID uint32
	// Args are extra mariadbd options, for example "--gtid-domain-id=2".
	Args []string
}

// StartMariaDB starts a MariaDB server of its own for the test and returns
// a go-sql-driver/mysql DSN for its root user (no password):
// root@tcp(127.0.0.1:PORT)/. The server has a fresh data directory
// (mariadb-install-db), listens on a random loopback port with its socket
// in a temporary directory, and writes a row-based binary log
// (log_bin on, binlog_format=ROW, binlog_row_image=FULL, the given
// server_id); its default character set is utf8mb4. When this process is
// root the server runs as root (--user=root). t.Cleanup stops it and
// removes its files.
//
// When MariaDB is not installed the test is skipped (fails with CI=true).
func StartMariaDB(t testing.TB, opts MariaDBOptions) string {
	t.Helper()
	return StartMariaDBServer(t, opts).DSN
}

// MariaDBServer is a MariaDB server started by StartMariaDBServer.
type MariaDBServer struct {
	DSN     string // root@tcp(127.0.0.1:PORT)/
	Addr    string // 127.0.0.1:PORT
	Port    int
	Socket  string // its unix socket
	DataDir string
	p       *proc
}

// Kill stops the server at once with SIGKILL, as a crash would.
func (s *MariaDBServer) Kill() { s.p.stop(syscall.SIGKILL, time.Second) }

// Stop shuts the server down cleanly (SIGTERM).
func (s *MariaDBServer) Stop() { s.p.stop(syscall.SIGTERM, 30*time.Second) }

// StartMariaDBServer is StartMariaDB for tests that also need the server's
// details or to stop or kill it themselves.
func StartMariaDBServer(t testing.TB, opts MariaDBOptions) *MariaDBServer {
	t.Helper()
	mariadbd := findBinary([]string{"mariadbd", "mysqld"}, "/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin")
	installDB := findBinary([]string{"mariadb-install-db", "mysql_install_db"}, "/usr/bin", "/usr/local/bin", "/usr/sbin")
	if mariadbd == "" || installDB == "" {
		unavailable(t, "MariaDB", "no mariadbd and mariadb-install-db on PATH or in /usr/sbin, /usr/bin", installMariaDB)
		return nil
	}
	serverID := opts.ServerID
	if serverID == 0 {
		serverID = 1
	}
	dir, err := tempDir("mariadb")
	if err != nil {
		t.Fatalf("testharness: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	var asRoot []string
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"}
	}
	// A private tmpdir: concurrent installs in the shared /tmp collide on
	// their #sql-temptable files.
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o777); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	small := []string{"--innodb-log-file-size=8M", "--innodb-buffer-pool-size=64M", "--tmpdir=" + tmp}

	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, asRoot...)
	cmd := exec.Command(installDB, append(args, small...)...)
	cmd.Dir, cmd.Env = dir, baseEnv()
	if err := run(cmd); err != nil {
		t.Fatalf("testharness: mariadb-install-db: %v", err)
	}

	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testharness: %v", err)
		}
		socket := filepath.Join(dir, "mysqld.sock")
		args := []string{"--no-defaults", "--datadir=" + data,
			"--port=" + strconv.Itoa(port), "--socket=" + socket,
			"--bind-address=127.0.0.1", "--skip-name-resolve", "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
			"--log-bin=" + filepath.Join(data, "binlog"), "--binlog-format=ROW", "--binlog-row-image=FULL",
			"--server-id=" + strconv.FormatUint(uint64(serverID), 10),
			"--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
			"--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0", "--innodb-doublewrite=0"}
		args = append(append(append(args, small...), asRoot...), opts.Args...)
		cmd := exec.Command(mariadbd, args...)
		cmd.Dir, cmd.Env = dir, baseEnv()
		p, err := startProc(cmd, filepath.Join(dir, fmt.Sprintf("mariadbd-%d.log", attempt)), syscall.SIGKILL)
		if err != nil {
			t.Fatalf("testharness: start MariaDB: %v", err)
		}
		dsn := fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)
		err = waitReady(p, 60*time.Second, func() error { return mysqlPing(dsn) })
		if err == nil {
			s := &MariaDBServer{DSN: dsn, Addr: fmt.Sprintf("127.0.0.1:%d", port), Port: port, Socket: socket, DataDir: data, p: p}
			t.Cleanup(s.Kill) // the data is thrown away: no need for a clean shutdown
			return s
		}
		p.stop(syscall.SIGKILL, time.Second)
		if attempt < 4 && portInUse(p) {
			continue
		}
		t.Fatalf("testharness: start MariaDB: %v", err)
	}
}

func mysqlPing(dsn string) error {
	db, err := sql.Open("mysql", dsn+"?timeout=2s")
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}
