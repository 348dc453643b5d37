package testharness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const installPostgres = "apt-get install -y postgresql"

// postgresBinaries finds initdb and postgres of one PostgreSQL version:
// Debian's /usr/lib/postgresql/<newest>/bin first, then PATH.
func postgresBinaries() (initdb, postgres string) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[i])), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[j])), 64)
		return vi > vj
	})
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if isExec(i) && isExec(p) {
			return i, p
		}
	}
	i, p := findBinary([]string{"initdb"}), findBinary([]string{"postgres"})
	if i != "" && p != "" {
		return i, p
	}
	return "", ""
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// pgServer is the PostgreSQL server this test binary shares.
type pgServer struct {
	proc *proc
	dir  string
	port int
	// createSuffix ends CREATE DATABASE (a faster strategy where there is one).
	createSuffix string
}

var pg struct {
	mu  sync.Mutex
	srv *pgServer
	err error // a failed start is not retried
	n   int   // databases created
}

// StartPostgres returns the URL of a fresh, empty database
// (postgres://postgres@127.0.0.1:PORT/NAME?sslmode=disable) on a PostgreSQL
// server shared by every test of this test binary. The first call starts
// the server (initdb into a temporary directory, fsync off, wal_level
// logical); it lives until the test binary exits (or Main stops it). Each
// call creates its own database, dropped by t.Cleanup. When this process is
// root the server runs as the postgres system user, since PostgreSQL refuses
// to run as root.
//
// When PostgreSQL is not installed the test is skipped (fails with CI=true).
func StartPostgres(t testing.TB) string {
	t.Helper()
	initdb, postgres := postgresBinaries()
	if initdb == "" {
		unavailable(t, "PostgreSQL", "no initdb and postgres in /usr/lib/postgresql/*/bin or on PATH", installPostgres)
		return ""
	}
	var owner *user.User
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, "PostgreSQL", "running as root needs the postgres system user to run the server as", installPostgres)
			return ""
		}
		owner = u
	}
	srv, err := sharedPostgres(initdb, postgres, owner)
	if err != nil {
		t.Fatalf("testharness: start PostgreSQL: %v", err)
	}

	pg.mu.Lock()
	pg.n++
	name := dbName(pg.n, t.Name())
	pg.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+srv.createSuffix); err != nil {
		t.Fatalf("testharness: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil && !srv.proc.exited() {
			t.Errorf("testharness: drop database %s: %v", name, err)
		}
	})
	return srv.url(name)
}

// dbName makes a database name from a counter and the test's name.
func dbName(n int, test string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t%d_", n)
	for _, r := range strings.ToLower(test) {
		if b.Len() >= 60 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func (s *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// exec runs one statement in the postgres maintenance database.
func (s *pgServer) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// sharedPostgres starts the shared server on first use.
func sharedPostgres(initdb, postgres string, owner *user.User) (*pgServer, error) {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.srv != nil || pg.err != nil {
		return pg.srv, pg.err
	}
	pg.srv, pg.err = startPostgres(initdb, postgres, owner)
	return pg.srv, pg.err
}

func startPostgres(initdb, postgres string, owner *user.User) (*pgServer, error) {
	dir, err := tempDir("pg")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*pgServer, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(fmt.Errorf("chown %s to postgres: %w", dir, err))
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C")
	cmd.Dir, cmd.Env = dir, baseEnv()
	runAs(cmd, owner)
	if err := run(cmd); err != nil {
		return fail(fmt.Errorf("initdb: %w", err))
	}

	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		cmd := exec.Command(postgres, "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-F",
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=300", "-c", "shared_buffers=32MB",
			"-c", "wal_level=logical", "-c", "max_replication_slots=20", "-c", "max_wal_senders=20",
			"-c", "log_min_messages=warning", "-c", "logging_collector=off")
		cmd.Dir, cmd.Env = dir, baseEnv()
		runAs(cmd, owner)
		p, err := startProc(cmd, filepath.Join(dir, fmt.Sprintf("postgres-%d.log", attempt)), syscall.SIGQUIT)
		if err != nil {
			return fail(err)
		}
		srv := &pgServer{proc: p, dir: dir, port: port}
		err = waitReady(p, 60*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.exec(ctx, "SELECT 1")
		})
		if err == nil {
			err = srv.configure()
		}
		if err == nil {
			return srv, nil
		}
		p.stop(syscall.SIGQUIT, 5*time.Second)
		if attempt < 4 && portInUse(p) {
			continue
		}
		return fail(err)
	}
}

// configure adapts to the server's version: PostgreSQL 15 and later copy a
// small template faster with STRATEGY FILE_COPY (fsync is off, so its
// checkpoints are cheap) than with their default WAL_LOG.
func (s *pgServer) configure() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&v); err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	if v >= 150000 {
		s.createSuffix = " STRATEGY FILE_COPY"
	}
	return nil
}

// stopPostgres stops the shared server and removes its files.
func stopPostgres() {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.srv == nil {
		return
	}
	pg.srv.proc.stop(syscall.SIGINT, 10*time.Second) // fast shutdown
	_ = os.RemoveAll(pg.srv.dir)
	pg.srv, pg.err = nil, fmt.Errorf("the shared PostgreSQL server was stopped")
}

// Main runs a package's tests and then stops the servers the harness shares
// and removes their files at once. It is optional (the shared PostgreSQL
// server dies with the test binary anyway, and its files are swept by a
// later run), but tidy:
//
//	func TestMain(m *testing.M) { testharness.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	stopPostgres()
	os.Exit(code)
}
