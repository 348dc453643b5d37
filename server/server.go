// Package server composes ferry's HTTP service: the four API dialects
// (native /api/v1, Atlas, OMS, DCS), Prometheus metrics, a health check and a
// small web console, behind one middleware that logs requests (never
// credentials or bodies), measures them and turns panics into a generic 500.
package server

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /{$}", s.console)
	for pattern, h := range cfg.Mount {
		mux.Handle(pattern, h)
	}
	s.handler = s.middleware(mux)
	return s, nil
}

// Handler returns the composed handler with its middleware.
func (s *Server) Handler() http.Handler { return s.handler }

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
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("http server listening", "addr", ln.Addr().String())
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
	s.log.Info("http server stopped")
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
			if route == "" {
				route = normalizeRoute(r.Method, r.URL.Path, rec.status)
			}
			s.metrics.observe(dialect, route, rec.status, d)
			level := slog.LevelInfo
			if r.URL.Path == "/healthz" || r.URL.Path == "/metrics" {
				level = slog.LevelDebug
			}
			if rec.status >= 500 {
				level = slog.LevelWarn
			}
			s.log.Log(r.Context(), level, "http request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"bytes", rec.bytes, "duration", d.Round(time.Microsecond), "dialect", dialect, "remote", remoteHost(r.RemoteAddr))
		}()
		next.ServeHTTP(rec, r)
	})
}

// route returns the dialect serving r and, when its handler can tell, the
// route pattern r matches.
func (s *Server) route(r *http.Request) (dialect, route string) {
	for _, m := range s.matchers {
		for _, p := range m.prefixes {
			if strings.HasPrefix(r.URL.Path, p) {
				if rm, ok := m.handler.(routeMatcher); ok {
					_, pat := rm.Handler(r)
					if pat == "" {
						pat = r.Method + " " + p
					}
					return m.dialect, pat
				}
				return m.dialect, ""
			}
		}
	}
	switch r.URL.Path {
	case "/metrics", "/healthz", "/":
		return "system", r.Method + " " + r.URL.Path
	}
	return "system", "unmatched"
}

// normalizeRoute turns a path into a low-cardinality route label: ids
// become {id}; paths nothing serves are all "unmatched".
func normalizeRoute(method, path string, status int) string {
	if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
		return "unmatched"
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if looksLikeID(s) {
			segs[i] = "{id}"
		}
	}
	return method + " /" + strings.Join(segs, "/")
}

func looksLikeID(s string) bool {
	if len(s) >= 8 {
		hex := true
		for _, c := range s {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '-') {
				hex = false
				break
			}
		}
		if hex {
			return true
		}
	}
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
