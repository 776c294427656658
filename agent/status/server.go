package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Provider returns the current report. It is called for every request and
// must be safe for concurrent use.
type Provider func() Report

// Server serves the status endpoints.
type Server struct {
	provider Provider
	gatherer prometheus.Gatherer
	ready    func() error
	log      logr.Logger
	pprof    bool
}

// EnablePprof serves net/http/pprof's handlers under /debug/pprof/ (off by
// default: profiles show the process's internals).
func (s *Server) EnablePprof() { s.pprof = true }

// NewServer returns a server. ready says whether the agent is ready (nil) or
// why not; gatherer may be nil (then /metrics is not served).
func NewServer(p Provider, ready func() error, gatherer prometheus.Gatherer, log logr.Logger) *Server {
	return &Server{provider: p, ready: ready, gatherer: gatherer, log: log}
}

// Handler returns the HTTP handler: /healthz, /readyz, /status, /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/status", s.serveStatus)
	if s.gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	}
	if s.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s.provider()); err != nil {
		s.log.V(1).Info("writing status", "err", err.Error())
	}
}

// ListenAndServe serves HTTP on addr (host:port) until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("status: listening on %s: %w", addr, err)
	}
	return s.serve(ctx, ln)
}

// ServeSocket serves the same endpoints on a unix socket at path until ctx is
// done; a stale socket file is replaced and the file is removed at the end.
func (s *Server) ServeSocket(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("status: creating the socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("status: removing stale socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("status: listening on %s: %w", path, err)
	}
	defer os.Remove(path)
	return s.serve(ctx, ln)
}

func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("status: serving on %s: %w", ln.Addr(), err)
	}
	return nil
}
