package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/agent"
	mongoengine "github.com/ferrymigrate/ferry/engine/mongo"
	mysqlengine "github.com/ferrymigrate/ferry/engine/mysql"
	redisengine "github.com/ferrymigrate/ferry/engine/redis"
	"github.com/ferrymigrate/ferry/http/httpauth"
	pipelineexp "github.com/ferrymigrate/ferry/pipeline"
	"github.com/ferrymigrate/ferry/postgres"
	"github.com/ferrymigrate/ferry/server"
	"github.com/ferrymigrate/ferry/sqlite"
)

const (
	defaultAddr    = "127.0.0.1:8080"
	defaultDataDir = "./ferry-data"
	defaultServer  = "http://127.0.0.1:8080"
)

// newRegistry returns the engines and exporters built into this binary.
// Kinds without an engine here answer ENGINE_NOT_AVAILABLE on create.
func newRegistry(log *slog.Logger, pc pipelineexp.Config, opts ...func(*redisengine.Engine)) *ferry.Registry {
	reg := ferry.NewRegistry()
	re := redisengine.New(log)
	for _, o := range opts {
		o(re)
	}
	reg.Register(re)
	reg.Register(mysqlengine.New(log))
	reg.Register(mongoengine.New(log))
	reg.RegisterExporter(pipelineexp.NewMySQL(pc))
	reg.RegisterExporter(pipelineexp.NewMongo(pc))
	return reg
}

// storeFlags are the flags that locate the store.
type storeFlags struct {
	dataDir       string
	store         string
	secretKeyFile string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.dataDir, "data-dir", defaultDataDir, "directory of the embedded store (ferry.db) and credentials.json")
	fs.StringVar(&s.store, "store", "sqlite", "the store: sqlite (<data-dir>/ferry.db), sqlite:PATH, or a postgres://user:pass@host/db URL")
	fs.StringVar(&s.secretKeyFile, "secret-key-file", "", "file of the 32-byte key (64 hex digits, mode 0600) that encrypts endpoint passwords in the store (default <data-dir>/secret.key; ferry serve creates it; every ferry serve and ferry agent of one store needs the same file)")
}

// keyPath is the secret key file.
func (s *storeFlags) keyPath() string {
	if s.secretKeyFile != "" {
		return s.secretKeyFile
	}
	return filepath.Join(s.dataDir, "secret.key")
}

// seal wraps st so that endpoint and job secrets are encrypted at rest,
// with the key file (created when create and missing), and re-writes the
// rows an older ferry left in plaintext. A row sealed with another key
// stops the start with an error naming it.
func (s *storeFlags) seal(ctx context.Context, st ferry.Store, create bool, log *slog.Logger) (ferry.Store, error) {
	var box *ferry.AESBox
	var err error
	path := s.keyPath()
	if create {
		var created bool
		box, created, err = ferry.LoadOrCreateSecretKey(path)
		if created {
			log.Info("created the secret key that encrypts endpoint passwords in the store: keep it, and give it to every ferry agent (--secret-key-file)", "secretKeyFile", path, "keyId", box.KeyID())
		}
	} else {
		box, err = ferry.LoadSecretKey(path)
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: an agent needs the secret key file of the ferry serve it works for (copy it, mode 0600, and pass --secret-key-file)", err)
		}
	}
	if err != nil {
		return nil, err
	}
	sealed := ferry.SealStore(st, box)
	n, err := ferry.MigrateSecrets(ctx, sealed)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		log.Info("encrypted the plaintext secrets an older ferry stored", "rows", n, "keyId", box.KeyID())
	}
	return sealed, nil
}

// open opens the store. It never logs the URL (it may hold a password).
func (s *storeFlags) open(ctx context.Context) (ferry.Store, string, error) {
	switch {
	case s.store == "" || s.store == "sqlite":
		if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
			return nil, "", fmt.Errorf("data dir: %w", err)
		}
		path := filepath.Join(s.dataDir, "ferry.db")
		db, err := sqlite.Open(ctx, path)
		return db, "sqlite " + path, err
	case strings.HasPrefix(s.store, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(s.store, "sqlite:"), "//")
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, "", fmt.Errorf("store dir: %w", err)
			}
		}
		db, err := sqlite.Open(ctx, path)
		return db, "sqlite " + path, err
	case strings.HasPrefix(s.store, "postgres://") || strings.HasPrefix(s.store, "postgresql://"):
		db, err := postgres.Open(ctx, s.store)
		return db, "postgres " + redactURL(s.store), err
	}
	return nil, "", fmt.Errorf("--store %q: want sqlite, sqlite:PATH or a postgres:// URL", redactURL(s.store))
}

// redactURL hides the password of a URL (ferry.RedactURI: one helper for
// the views, the CLI and the logs).
func redactURL(u string) string { return ferry.RedactURI(u) }

func newLogger(c *cli, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: ferry.RedactLogAttr}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(c.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// credentials is what <data-dir>/credentials.json holds.
type credentials struct {
	Server     string `json:"server"`
	OrgID      string `json:"orgId"`
	ProjectID  string `json:"projectId"`
	PublicKey  string `json:"publicKey"`
	PrivateKey string `json:"privateKey"`
	Role       string `json:"role"`
}

func credentialsPath(dataDir string) string { return filepath.Join(dataDir, "credentials.json") }

// writeCredentials writes the file with mode 0600 (atomically).
func writeCredentials(path string, cr credentials) error {
	b, err := json.MarshalIndent(cr, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readCredentials(path string) (*credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cr credentials
	if err := json.Unmarshal(b, &cr); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &cr, nil
}

// bootstrap gives an empty store an organization "default", a project
// "default" and an ORG_OWNER key, whose pair it writes to credentials.json.
// It logs only the path and the public key.
func bootstrap(ctx context.Context, svc *ferry.Service, dataDir, serverURL string, log *slog.Logger) error {
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	orgs, err := svc.ListOrgs(sys)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if len(orgs) > 0 {
		if _, err := os.Stat(credentialsPath(dataDir)); err != nil {
			log.Info("the store already has organizations; create a key with `ferry keys create --role ORG_OWNER` to use the API")
		}
		return nil
	}
	org, err := svc.CreateOrg(sys, "default")
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	proj, err := svc.CreateProject(sys, org.ID, "default")
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	k, private, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "bootstrap key written by ferry serve")
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	path := credentialsPath(dataDir)
	if err := writeCredentials(path, credentials{Server: serverURL, OrgID: org.ID, ProjectID: proj.ID, PublicKey: k.PublicKey, PrivateKey: private, Role: string(k.Role)}); err != nil {
		return fmt.Errorf("bootstrap: write %s: %w", path, err)
	}
	log.Info("bootstrapped an empty store: organization, project and ORG_OWNER key \"default\"",
		"orgId", org.ID, "projectId", proj.ID, "publicKey", k.PublicKey, "credentials", path)
	return nil
}

// serverURL is the http URL of a listener, with a wildcard host made local.
func serverURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func (c *cli) serve(args []string) error {
	fs := c.flags("serve", "[flags]")
	var sf storeFlags
	sf.register(fs)
	addr := fs.String("addr", defaultAddr, "listen address of the API, console and metrics")
	noAgent := fs.Bool("no-agent", false, "do not run the in-process agent")
	agentID := fs.String("agent-id", "", "id of the in-process agent (default: hostname plus a random suffix)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	rateLimit := fs.Float64("rate-limit", 100, "API requests per second per API key (burst twice that; 0: no limit); over it every dialect answers 429 with Retry-After")
	failLimit := fs.Float64("auth-fail-limit", 2, "failed authentications per second per remote address (burst ten times that; 0: no limit)")
	metricsToken := fs.String("metrics-token", "", "bearer token GET /metrics requires (default: the token in --metrics-token-file)")
	metricsTokenFile := fs.String("metrics-token-file", "", "file holding the /metrics bearer token (default <data-dir>/metrics-token, created with a random token on first start, mode 0600)")
	metricsAddr := fs.String("metrics-addr", "", "serve /metrics on a listener of its own at this address (and not on --addr); no token is asked there unless --metrics-token(-file) is given")
	var bf backupFlags
	bf.register(fs)
	var pf pipelineFlags
	pf.register(fs)
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	log, err := newLogger(c, *level, *format)
	if err != nil {
		return err
	}
	backups, err := bf.engineOption(sf.dataDir)
	if err != nil {
		return err
	}
	pc, err := pf.config(sf.dataDir, &bf, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, desc, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if st, err = sf.seal(ctx, st, true, log); err != nil {
		return err
	}
	reg := newRegistry(log, pc, backups)
	svc := ferry.NewService(st, reg, log)
	token, tokenPath, err := metricsTokenOf(*metricsToken, *metricsTokenFile, *metricsAddr, sf.dataDir)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Service: svc, Logger: log, Addr: *addr,
		Limits:       httpauth.Limits{PerKey: *rateLimit, FailedPerAddr: *failLimit},
		MetricsToken: token, SeparateMetrics: *metricsAddr != ""})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	var mln net.Listener
	if *metricsAddr != "" {
		if mln, err = net.Listen("tcp", *metricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen %s (--metrics-addr): %w", *metricsAddr, err)
		}
		log.Info("metrics on their own listener", "url", serverURL(mln.Addr())+"/metrics", "token", token != "")
	} else if tokenPath != "" {
		log.Info("GET /metrics needs the bearer token in the file (Prometheus: authorization.credentials_file)", "file", tokenPath)
	}
	url := serverURL(ln.Addr())
	if err := bootstrap(ctx, svc, sf.dataDir, url, log); err != nil {
		ln.Close()
		return err
	}
	log.Info("ferry serving", "version", ferry.Version, "url", url, "console", url+"/", "store", desc, "engines", fmt.Sprint(reg.Kinds()))

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil {
			errc <- err
		}
		cancel()
	})
	if mln != nil {
		wg.Go(func() {
			if err := srv.ServeMetrics(ctx, mln); err != nil {
				errc <- err
			}
			cancel()
		})
	}
	if !*noAgent {
		a := agent.New(agent.Config{ID: *agentID, Store: st, Registry: reg, Service: svc, Logger: log})
		wg.Go(func() {
			if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("agent: %w", err)
			}
			cancel()
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		return err
	}
	log.Info("ferry stopped")
	return nil
}

// metricsTokenOf returns the /metrics bearer token: --metrics-token, else
// the content of --metrics-token-file; with neither, none on a separate
// --metrics-addr listener, else the token of <data-dir>/metrics-token,
// created (random, mode 0600) on first start. It never logs the token.
func metricsTokenOf(token, file, metricsAddr, dataDir string) (string, string, error) {
	if token != "" {
		return token, "", nil
	}
	if file == "" && metricsAddr != "" {
		return "", "", nil
	}
	create := file == ""
	if create {
		file = filepath.Join(dataDir, "metrics-token")
	}
	b, err := os.ReadFile(file)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, file, nil
		}
		return "", "", fmt.Errorf("--metrics-token-file %s is empty", file)
	}
	if !create || !errors.Is(err, os.ErrNotExist) {
		return "", "", fmt.Errorf("metrics token: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", "", fmt.Errorf("metrics token: %w", err)
	}
	t := ferry.RandomHex(24)
	if err := os.WriteFile(file, []byte(t+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("metrics token: %w", err)
	}
	return t, file, nil
}

func (c *cli) agent(args []string) error {
	fs := c.flags("agent", "--store postgres://...")
	var sf storeFlags
	sf.register(fs)
	agentID := fs.String("agent-id", "", "agent id (default: hostname plus a random suffix)")
	poll := fs.Duration("poll-interval", time.Second, "how often to look for work")
	lease := fs.Duration("lease-ttl", 15*time.Second, "how long a claim lasts without a heartbeat")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	var bf backupFlags
	bf.register(fs)
	var pf pipelineFlags
	pf.register(fs)
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	log, err := newLogger(c, *level, *format)
	if err != nil {
		return err
	}
	backups, err := bf.engineOption(sf.dataDir)
	if err != nil {
		return err
	}
	pc, err := pf.config(sf.dataDir, &bf, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, desc, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if st, err = sf.seal(ctx, st, false, log); err != nil {
		return err
	}
	reg := newRegistry(log, pc, backups)
	svc := ferry.NewService(st, reg, log)
	a := agent.New(agent.Config{ID: *agentID, Store: st, Registry: reg, Service: svc, Logger: log, PollInterval: *poll, LeaseTTL: *lease})
	log.Info("ferry agent running", "agent", a.ID(), "store", desc, "engines", fmt.Sprint(reg.Kinds()))
	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}
