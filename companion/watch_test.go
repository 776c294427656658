package companion

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/render"
)

// TestWatchersWakeOnChange runs the watch against a real agent status
// server on a unix socket below a host root: the companion is woken within
// a second when the agent's state changes, when the agent stops answering
// and when it answers again, and not for counters; Start waits for its
// goroutines.
func TestWatchersWakeOnChange(t *testing.T) {
	root := t.TempDir()
	sock := filepath.Join(root, render.SocketPath("api"))
	var mu sync.Mutex
	state, sent := "BACKUP", uint64(0)
	provider := func() status.Report {
		mu.Lock()
		defer mu.Unlock()
		sent++
		return status.Report{ConfigHash: "h", Routers: []status.Router{{Name: "api", State: state, AdvertsSent: sent}}}
	}
	serve := func() (stop func()) {
		srv := status.NewServer(provider, func() error { return nil }, nil, testr.New(t))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.ServeSocket(ctx, sock); err != nil {
				t.Errorf("ServeSocket: %v", err)
			}
		}()
		return func() { cancel(); <-done }
	}
	stopAgent := serve()

	w := newWatchers(AgentSocket{}, root, 100*time.Millisecond, testr.New(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Start did not return after its context ended")
		}
		stopAgent()
	}()
	w.set([]string{"api"})

	wake := func(what string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		select {
		case <-w.wake:
			took := time.Since(start)
			t.Logf("%s: woken after %v", what, took.Round(time.Millisecond))
			return took
		case <-time.After(within):
			t.Fatalf("%s: not woken within %v", what, within)
			return 0
		}
	}
	quiet := func(what string, d time.Duration) {
		t.Helper()
		select {
		case <-w.wake:
			t.Errorf("%s: woken, want no wake", what)
		case <-time.After(d):
		}
	}
	wake("first report", 5*time.Second)
	quiet("counters only", 500*time.Millisecond)

	mu.Lock()
	state = "MASTER"
	mu.Unlock()
	wake("BACKUP -> MASTER", time.Second)

	stopAgent()
	wake("agent stopped", time.Second)
	stopAgent = serve()
	wake("agent back", time.Second)
}
