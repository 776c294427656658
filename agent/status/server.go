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

	v1alpha1 "github.com/vipvs/vipvs/api/status/v1alpha1"
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
	// watchPoll is how often a waiting GET /status reads the report.
	watchPoll time.Duration
	// drain, when set, serves POST /drain and /undrain on the socket.
	drain func(on bool) error
}

// EnableDrain serves POST /drain and POST /undrain on the unix socket only
// (not on the TCP address, which any local process may reach): they call
// drain(true) and drain(false). `vipvs status --drain` uses them.
func (s *Server) EnableDrain(drain func(on bool) error) { s.drain = drain }

// socketHandler is Handler plus what only the socket serves.
func (s *Server) socketHandler() http.Handler {
	h := s.Handler()
	if s.drain == nil {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	for path, on := range map[string]bool{"/drain": true, "/undrain": false} {
		mux.HandleFunc(path, func(w http.ResponseWriter, req *http.Request) {
			if req.Method != http.MethodPost {
				http.Error(w, "use POST", http.StatusMethodNotAllowed)
				return
			}
			if err := s.drain(on); err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			fmt.Fprintln(w, "ok")
		})
	}
	return mux
}

// DefaultWatchPoll is how often a GET /status that waits for a change reads
// the report: a change reaches the waiting client within this time.
const DefaultWatchPoll = 100 * time.Millisecond

// EnablePprof serves net/http/pprof's handlers under /debug/pprof/ (off by
// default: profiles show the process's internals).
func (s *Server) EnablePprof() { s.pprof = true }

// NewServer returns a server. ready says whether the agent is ready (nil) or
// why not; gatherer may be nil (then /metrics is not served).
func NewServer(p Provider, ready func() error, gatherer prometheus.Gatherer, log logr.Logger) *Server {
	return &Server{provider: p, ready: ready, gatherer: gatherer, log: log, watchPoll: DefaultWatchPoll}
}

// Handler returns the HTTP handler: /healthz, /readyz, /status, /metrics.
// GET /status follows the watch protocol of package
// github.com/vipvs/vipvs/api/status/v1alpha1 (ETag, If-None-Match, wait).
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

// report returns the provider's report with its apiVersion and kind.
func (s *Server) report() Report {
	r := s.provider()
	r.APIVersion, r.Kind = v1alpha1.APIVersion, v1alpha1.KindAgentReport
	return r
}

// serveStatus answers GET /status with the report and its ETag. With
// If-None-Match and wait=<duration> (v1alpha1's watch protocol) it answers
// when the report's digest differs from the ETag, or with 304 Not Modified
// when wait has passed.
func (s *Server) serveStatus(w http.ResponseWriter, req *http.Request) {
	rep := s.report()
	etag := quote(v1alpha1.Digest(rep))
	if q := req.URL.Query().Get("wait"); q != "" {
		wait, err := time.ParseDuration(q)
		if err != nil || wait < 0 || wait > v1alpha1.MaxWait {
			http.Error(w, fmt.Sprintf("wait=%q: want a duration from 0s to %s", q, v1alpha1.MaxWait), http.StatusBadRequest)
			return
		}
		if inm := req.Header.Get("If-None-Match"); inm == etag {
			var changed bool
			rep, etag, changed = s.waitChange(req.Context(), inm, wait)
			if !changed {
				w.Header().Set("ETag", etag)
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", etag)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		s.log.V(1).Info("writing status", "err", err.Error())
	}
}

// waitChange reads the report every watchPoll until its ETag differs from
// etag, wait has passed or ctx is done (the client left, or the server
// stops). It reports whether the report changed.
func (s *Server) waitChange(ctx context.Context, etag string, wait time.Duration) (Report, string, bool) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(s.watchPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return Report{}, etag, false
		case <-deadline.C:
			return Report{}, etag, false
		case <-tick.C:
			rep := s.report()
			if t := quote(v1alpha1.Digest(rep)); t != etag {
				return rep, t, true
			}
		}
	}
}

func quote(s string) string { return `"` + s + `"` }

// ListenAndServe serves HTTP on addr (host:port) until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("status: listening on %s: %w", addr, err)
	}
	return s.serve(ctx, ln, s.Handler())
}

// ServeSocket serves the same endpoints on a unix socket at path until ctx is
// done; a stale socket file is replaced and the file is removed before it
// returns. A process must wait for it to return before it exits, or the
// file stays behind.
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
	return s.serve(ctx, ln, s.socketHandler())
}

func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The requests' context ends with ctx: a GET /status that waits for a
	// change returns at once when the server stops.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	err := srv.Serve(ln)
	cancel()
	<-stopped
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("status: serving on %s: %w", ln.Addr(), err)
	}
	return nil
}
