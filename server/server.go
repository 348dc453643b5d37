// Package server composes ferry's HTTP service: the four API dialects
// (native /api/v1, Atlas, OMS, DCS), Prometheus metrics, a health check and a
// small web console, behind one middleware that logs requests (never
// credentials or bodies), measures them and turns panics into a generic 500.
package server

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/atlas"
	"github.com/ferrymigrate/ferry/http/dcs"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/http/native"
	"github.com/ferrymigrate/ferry/http/oms"
	"github.com/ferrymigrate/ferry/internal/redislog"
)

//go:embed console.html
var consoleFS embed.FS

// Config configures a Server.
type Config struct {
	// Service is the application layer every dialect calls (required).
	Service *ferry.Service
	Logger  *slog.Logger
	// Addr is the listen address of ListenAndServe (default 127.0.0.1:8080).
	Addr string
	// Mount adds handlers to the mux by ServeMux pattern (extensions, tests).
	Mount map[string]http.Handler
	// ShutdownTimeout bounds the graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	// HealthTimeout bounds the store ping of /healthz (default 3s).
	HealthTimeout time.Duration
	// Limits are the per-API-key request rate and the per-address failed
	// authentication rate every dialect enforces (429 in its own error
	// body); zero values turn them off.
	Limits httpauth.Limits
	// ReadHeaderTimeout bounds reading a request's header (default 10s),
	// ReadTimeout the whole request, header and body (default 30s: a body
	// is at most 1 MiB), IdleTimeout a kept-alive connection between
	// requests (default 60s); MaxHeaderBytes bounds the header (default
	// 64 KiB; over it the client gets 431 in the dialect's error body, and
	// over 4 times it net/http's plain 431). Slow or stalled clients are
	// disconnected instead of holding connections.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                              int
	// MetricsToken is the bearer token GET /metrics requires
	// (`Authorization: Bearer TOKEN`). /metrics shows every tenant's job ids
	// and names, so it is never open on the API listener: with no token it
	// answers 401 there.
	MetricsToken string
	// SeparateMetrics takes /metrics off the API handler: MetricsHandler
	// serves it, for a listener of its own (ferry serve --metrics-addr),
	// where MetricsToken is required only if set.
	SeparateMetrics bool
}

// Server is ferry's HTTP service.
type Server struct {
	cfg      Config
	log      *slog.Logger
	handler  http.Handler
	registry *prometheus.Registry
	metrics  *httpMetrics
	// matchers report the route pattern of a request, by path prefix.
	matchers []mount
	mux      *http.ServeMux
	// metricsHandler serves the registry, guarded by the token if any.
	metricsHandler http.Handler
}

// mount is a dialect handler mounted at path prefixes.
type mount struct {
	dialect  string
	prefixes []string
	handler  http.Handler
}

// routeMatcher is what *http.ServeMux (and the native handler) offer to
// name the pattern a request matches.
type routeMatcher interface {
	Handler(r *http.Request) (http.Handler, string)
}

// New builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil || cfg.Service.Store == nil {
		return nil, errors.New("server: Config.Service (with a Store) is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 3 * time.Second
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	s := &Server{cfg: cfg, log: cfg.Logger, registry: prometheus.NewRegistry()}
	s.metrics = newHTTPMetrics()
	if err := s.registry.Register(s.metrics); err != nil {
		return nil, fmt.Errorf("server: register http metrics: %w", err)
	}
	if err := s.registry.Register(newStoreCollector(cfg.Service.Store, cfg.Logger)); err != nil {
		return nil, fmt.Errorf("server: register store metrics: %w", err)
	}
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := s.registry.Register(c); err != nil {
			return nil, fmt.Errorf("server: register runtime metrics: %w", err)
		}
	}

	svc, log := cfg.Service, cfg.Logger
	// Validations run engine prechecks in this process: their go-redis
	// clients log through slog too.
	redislog.Install(log)
	auth := httpauth.New(svc)
	auth.SetLimits(cfg.Limits)
	s.matchers = []mount{
		{"native", []string{"/api/v1/"}, native.New(svc, auth, log)},
		{"atlas", []string{"/api/atlas/", "/api/oauth/"}, atlas.New(svc, auth, log)},
		{"oms", oms.Prefixes, oms.New(svc, auth, log)},
		{"dcs", []string{"/v2/", "/v3/auth/"}, dcs.New(svc, auth, log)},
	}
	mux := http.NewServeMux()
	for _, m := range s.matchers {
		for _, p := range m.prefixes {
			mux.Handle(p, m.handler)
		}
	}
	s.metricsHandler = metricsGuard(cfg.MetricsToken, !cfg.SeparateMetrics,
		promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	if !cfg.SeparateMetrics {
		mux.Handle("GET /metrics", s.metricsHandler)
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /{$}", s.console)
	for pattern, h := range cfg.Mount {
		mux.Handle(pattern, h)
	}
	s.mux = mux
	s.handler = s.middleware(mux)
	return s, nil
}

// Handler returns the composed handler with its middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler serves /metrics (behind the bearer token, if set): the
// handler of a separate metrics listener (Config.SeparateMetrics). It
// answers every path with the metrics; mount it at /metrics.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler)
	return s.middleware(mux)
}

// metricsGuard requires `Authorization: Bearer token` when token is set; with
// no token it refuses every scrape when required (the API listener), else
// lets it through (a private metrics listener).
func metricsGuard(token string, required bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" && !required {
			next.ServeHTTP(w, r)
			return
		}
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if token == "" || !strings.EqualFold(scheme, "bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry-metrics"`)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusUnauthorized)
			msg := "/metrics needs the metrics bearer token (Authorization: Bearer TOKEN; ferry serve --metrics-token or --metrics-token-file)\n"
			if token == "" {
				msg = "/metrics is off on this listener: give ferry serve --metrics-token (or --metrics-token-file) or --metrics-addr\n"
			}
			_, _ = w.Write([]byte(msg))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Registry returns the Prometheus registry /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// ListenAndServe listens on Config.Addr and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (up to ShutdownTimeout) and
// returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, s.handler, "http server")
}

// ServeMetrics serves MetricsHandler on ln until ctx ends, like Serve.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, s.MetricsHandler(), "metrics server")
}

func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler, what string) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		// The hard bound (net/http's plain 431) is 4x MaxHeaderBytes, so a
		// header over MaxHeaderBytes but under that reaches its dialect,
		// which answers 431 in its own error body (middleware).
		MaxHeaderBytes: 4 * s.cfg.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info(what+" listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	s.log.Info(what + " stopped")
	return nil
}

// healthz answers 200 when the store answers.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.HealthTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := pingStore(ctx, s.cfg.Service.Store); err != nil {
		s.log.Error("health check: store unreachable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"status":"unavailable","store":"down","version":%q}`+"\n", ferry.Version)
		return
	}
	fmt.Fprintf(w, `{"status":"ok","store":"up","version":%q}`+"\n", ferry.Version)
}

// pingStore uses the store's Ping if it has one, else a cheap read.
func pingStore(ctx context.Context, st ferry.Store) error {
	if p, ok := st.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	_, err := st.ListAgents(ctx)
	return err
}

func (s *Server) console(w http.ResponseWriter, r *http.Request) {
	b, err := consoleFS.ReadFile("console.html")
	if err != nil {
		http.Error(w, "console missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// ---- middleware ----

// recorder captures the status and size of an answer.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	written bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.written {
		r.status, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.written {
		r.status, r.written = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// middleware logs each request (method, path, status, size, duration,
// dialect: never headers, query strings or bodies), records its metrics and
// recovers panics into a generic 500.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		dialect, route := s.route(r)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.written {
					rec.Header().Set("Content-Type", "application/json")
					rec.WriteHeader(http.StatusInternalServerError)
					_, _ = rec.Write([]byte(`{"error":{"code":"internal","message":"Internal error."}}` + "\n"))
				}
			}
			if !rec.written {
				rec.status = http.StatusOK
			}
			d := time.Since(start)
			s.metrics.observe(dialect, route, rec.status, d)
			level := slog.LevelInfo
			if r.URL.Path == "/healthz" || r.URL.Path == "/metrics" {
				level = slog.LevelDebug
			}
			if rec.status == http.StatusUnauthorized && r.Header.Get("Authorization") == "" {
				// The challenge of a Digest handshake (the client's first
				// request, without credentials), not a failed login.
				level = slog.LevelDebug
			}
			if rec.status >= 500 {
				level = slog.LevelWarn
			}
			s.log.Log(r.Context(), level, "http request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"bytes", rec.bytes, "duration", d.Round(time.Microsecond), "dialect", dialect, "remote", remoteHost(r.RemoteAddr))
		}()
		if httpauth.HeaderSize(r) > s.cfg.MaxHeaderBytes {
			if dialect == "system" {
				http.Error(rec, "431 Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
				return
			}
			// The dialect refuses it in its own error body (Authenticate
			// and ReadBody check the mark).
			r = r.WithContext(httpauth.MarkHeaderTooLarge(r.Context(), s.cfg.MaxHeaderBytes))
		}
		next.ServeHTTP(rec, r)
	})
}

// route returns the dialect serving r and the route pattern it matches
// ("GET /api/v1/projects/{projectId}"), the metrics label: never a raw path
// segment. Every path no route serves is "unmatched".
func (s *Server) route(r *http.Request) (dialect, route string) {
	for _, m := range s.matchers {
		for _, p := range m.prefixes {
			if !strings.HasPrefix(r.URL.Path, p) {
				continue
			}
			if rm, ok := m.handler.(routeMatcher); ok {
				if _, pat := rm.Handler(r); pat != "" && !slices.Contains(m.prefixes, pat) {
					return m.dialect, pat
				}
			}
			return m.dialect, "unmatched"
		}
	}
	if _, pat := s.mux.Handler(r); pat != "" {
		return "system", pat
	}
	if r.Method == http.MethodGet && r.URL.Path == "/metrics" { // the metrics listener's
		return "system", "GET /metrics"
	}
	return "system", "unmatched"
}

func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
