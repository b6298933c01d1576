// Package web is the worker's HTTP server: liveness on /healthz, readiness
// on /ready and Prometheus metrics on /metrics. Other packages mount more
// handlers (the live feed on /ws) through Config.Handlers.
//
// With Config.Tokens set, every route but /healthz, /ready and Config.Public
// (pages that hold no data) needs a bearer token (see internal/auth): none
// or an unknown one is answered 401, a token whose scope does not cover the
// route 403. /metrics needs the metrics
// scope; the other handlers need an accounts scope, and find the token in
// the request's context (auth.FromContext) to limit their data to it. With
// no tokens every route is open, as before; a server that then listens
// beyond loopback says so at start.
package web

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/domination/domination/internal/auth"
)

// Defaults of Config.
const (
	DefaultPort            = 6066
	DefaultShutdownTimeout = 5 * time.Second
)

// Config configures the server.
type Config struct {
	// Host is the address to listen on. Default "" (all interfaces), as
	// the original worker did.
	Host string
	// Port to listen on. Default DefaultPort.
	Port int
	// ShutdownTimeout bounds closing open connections. Default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Ready reports whether the worker can serve; nil means always ready.
	// It is called on every GET /ready and must answer quickly.
	Ready func(ctx context.Context) error
	// Handlers are extra routes, for example "/ws". With Tokens, each needs
	// a token with an accounts scope.
	Handlers map[string]http.Handler
	// Public are extra routes served without a token even with Tokens:
	// only for what holds no data, such as the dashboard's page and assets
	// (whose own requests for data go to Handlers with a token).
	Public map[string]http.Handler
	// Tokens authenticate the requests when not empty. Default: none, every
	// route open.
	Tokens *auth.Tokens
	// TLSCertFile and TLSKeyFile, PEM, make the server speak HTTPS (and
	// wss:// for the feed). Both or neither. Default: plain HTTP.
	TLSCertFile string
	TLSKeyFile  string
}

// WithDefaults returns c with its zero fields (and a negative
// ShutdownTimeout) set to the documented defaults.
func (c Config) WithDefaults() Config {
	c.Port = cmp.Or(c.Port, DefaultPort)
	c.ShutdownTimeout = cmp.Or(max(c.ShutdownTimeout, 0), DefaultShutdownTimeout)
	return c
}

// Validate reports a setting that cannot work. It applies no defaults.
func (c Config) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("web port %d is out of range", c.Port)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("web tls needs both a certificate file and a key file")
	}
	return nil
}

// Addr is the host:port the server listens on.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Server serves the worker's HTTP endpoints.
type Server struct {
	cfg Config
	log *slog.Logger
	srv *http.Server
	tls *tls.Config // nil: plain HTTP
}

// New returns a Server; Run listens.
func New(cfg Config, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "OK"})
	})
	mux.HandleFunc("GET /ready", s.ready)
	mux.Handle("GET /metrics", s.guard(needMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	for path, h := range cfg.Handlers {
		mux.Handle(path, s.guard(needAccounts, h))
	}
	for path, h := range cfg.Public {
		mux.Handle(path, h)
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load web tls certificate: %w", err)
		}
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	return s, nil
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "OK"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Run listens and serves until ctx ends, then shuts down within
// Config.ShutdownTimeout. A port already in use is an error.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr(), err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests use port 0).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.announce(ln.Addr())
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("shut down http server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}
