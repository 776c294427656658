package lb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vipvs/vipvs/test/lab"
)

// apiServer is a stand-in kube-apiserver on port 6443 of one node. It
// answers GET /readyz with 200 while ready and 500 otherwise, and any other
// path with 200 and the node's name (the payload the test's client reads).
//
// It speaks plain HTTP, not HTTPS as kube-apiserver does: the TLS
// handshakes of the agents' checks (a dozen a second) and of the client
// take the emulated VM's CPU (qemu TCG) until the checks time out, which
// the test would then measure instead of the hand-over.
//
// Like kube-apiserver it listens at once and becomes ready later (start),
// and stops as kube-apiserver's graceful termination with
// --shutdown-delay-duration does (stop): /readyz fails first while it keeps
// serving for the delay, then it stops listening and finishes the requests
// in flight.
type apiServer struct {
	name string
	srv  *http.Server
	ln   net.Listener
	done chan struct{}

	mu                     sync.Mutex
	ready                  bool
	readyAt, notReadyAt    time.Time
	readyTimer             *time.Timer
	stoppedAt              time.Time
	requests, readyzServed int
}

// startAPIServer listens on [::]:6443 in h's namespace; /readyz passes
// from readyAfter on.
func startAPIServer(h *lab.Host, readyAfter time.Duration) (*apiServer, error) {
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp", "[::]:6443")
		return err
	}); err != nil {
		return nil, fmt.Errorf("stand-in kube-apiserver on %s: %w", h.Name, err)
	}
	s := &apiServer{name: h.Name, ln: ln, done: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	s.readyTimer = time.AfterFunc(readyAfter, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.notReadyAt.IsZero() {
			s.ready, s.readyAt = true, time.Now()
		}
	})
	return s, nil
}

func (s *apiServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ready := s.ready
	if r.URL.Path == "/readyz" {
		s.readyzServed++
	} else {
		s.requests++
	}
	s.mu.Unlock()
	w.Header().Set("Connection", "close")
	if r.URL.Path == "/readyz" {
		if !ready {
			http.Error(w, "[-]shutdown or not ready", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
		return
	}
	_, _ = io.WriteString(w, s.name+"\n")
}

// times returns when /readyz started to pass and when it started to fail
// (zero when not yet).
func (s *apiServer) times() (readyAt, notReadyAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyAt, s.notReadyAt
}

// stop fails /readyz at once, keeps serving for delay, then stops
// listening and waits for the requests in flight (at most 2s). It
// returns when the server is closed.
func (s *apiServer) stop(delay time.Duration) {
	s.mu.Lock()
	s.readyTimer.Stop()
	if s.notReadyAt.IsZero() {
		s.ready, s.notReadyAt = false, time.Now()
	}
	s.mu.Unlock()
	time.Sleep(delay)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		_ = s.srv.Close()
	}
	<-s.done
	s.mu.Lock()
	s.stoppedAt = time.Now()
	s.mu.Unlock()
}

// httpProber opens a new TCP connection from a host to target every
// `every`, sends GET /payload and records the server's name from the body:
// lab.Prober's attempts (refused, reset, timeout and any answer but 200
// are failures), over HTTP.
type httpProber struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	attempts []lab.Attempt
}

func startHTTPProber(h *lab.Host, target netip.AddrPort, every, timeout time.Duration) *httpProber {
	ctx, cancel := context.WithCancel(context.Background())
	p := &httpProber{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		// The loop runs on h.Do's thread, in h's namespace, so every
		// socket it dials is created there.
		_ = h.Do(func() error {
			next := time.Now()
			for ctx.Err() == nil {
				a := httpAttempt(ctx, target, timeout)
				if ctx.Err() != nil && !a.OK {
					return nil
				}
				p.mu.Lock()
				p.attempts = append(p.attempts, a)
				p.mu.Unlock()
				next = next.Add(every)
				if now := time.Now(); next.Before(now) {
					next = now
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Until(next)):
				}
			}
			return nil
		})
	}()
	return p
}

func httpAttempt(ctx context.Context, target netip.AddrPort, timeout time.Duration) lab.Attempt {
	a := lab.Attempt{Start: time.Now()}
	ctx, cancel := context.WithDeadline(ctx, a.Start.Add(timeout))
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target.String())
	if err == nil {
		defer c.Close()
		_ = c.SetDeadline(a.Start.Add(timeout))
		_, err = io.WriteString(c, "GET /payload HTTP/1.0\r\nHost: api\r\n\r\n")
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(bufio.NewReader(c), nil)
		}
		if err == nil {
			var body []byte
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
			}
			if err == nil {
				a.OK, a.Server = true, strings.TrimSpace(string(body))
			}
		}
	}
	a.End = time.Now()
	if err != nil {
		a.Err = err.Error()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			a.Err = "timeout"
		}
	}
	return a
}

// snapshot returns the attempts so far.
func (p *httpProber) snapshot() lab.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return lab.Result{Attempts: append([]lab.Attempt(nil), p.attempts...)}
}

// stop stops the prober and returns every attempt; it may be called more
// than once.
func (p *httpProber) stop() lab.Result {
	p.cancel()
	<-p.done
	return p.snapshot()
}
