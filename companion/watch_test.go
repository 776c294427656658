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

// blockingWatcher is an agent whose watch requests never see a change (as
// a status server that notices changes late): only a plain read (wait 0)
// returns its current config hash.
type blockingWatcher struct {
	mu   sync.Mutex
	hash string
}

func (b *blockingWatcher) set(h string) { b.mu.Lock(); b.hash = h; b.mu.Unlock() }

func (b *blockingWatcher) Fetch(context.Context, string, string) (status.Report, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return status.Report{ConfigHash: b.hash}, nil
}

func (b *blockingWatcher) Watch(ctx context.Context, lbc, sock, etag string, wait time.Duration) (status.Report, string, bool, error) {
	if etag != "" && wait > 0 {
		<-ctx.Done()
		return status.Report{}, "", false, ctx.Err()
	}
	rep, _ := b.Fetch(ctx, lbc, sock)
	return rep, `"` + rep.ConfigHash + `"`, true, nil
}

// TestWatchersExpect: after expect (the companion wrote the agent's files)
// the watch reads the agent fast and wakes the reconcile when the agent
// runs the expected config, without waiting for the agent's status server
// to notice, even when another change comes first; without expect a change
// waits for the watch request.
func TestWatchersExpect(t *testing.T) {
	agent := &blockingWatcher{hash: "old"}
	w := newWatchers(agent, t.TempDir(), 100*time.Millisecond, testr.New(t))
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
	}()
	w.set([]string{"api"})
	waitWake := func(what string, within time.Duration) time.Time {
		t.Helper()
		select {
		case <-w.wake:
			return time.Now()
		case <-time.After(within):
			t.Fatalf("%s: not woken within %v", what, within)
			return time.Time{}
		}
	}
	waitWake("first report", 5*time.Second)

	agent.set("unexpected")
	select {
	case <-w.wake:
		t.Fatal("woken without expect: the fake's watch never reports")
	case <-time.After(300 * time.Millisecond):
	}

	w.expect("api", "v2")
	// The first fast read sees "unexpected": a change, but not the
	// expected config, so the watch goes on reading fast.
	waitWake("the change before the expected config", time.Second)
	time.Sleep(100 * time.Millisecond) // the agent applies its config a little later
	applied := time.Now()
	agent.set("v2")
	woken := waitWake("the expected config", expectWindow)
	t.Logf("woken %v after the agent ran the expected config", woken.Sub(applied).Round(time.Millisecond))
	if d := woken.Sub(applied); d > 10*expectPoll {
		t.Errorf("woken %v after the agent ran the expected config, want about %v", d, expectPoll)
	}

	// Once the agent runs it, the watch goes back to waiting.
	agent.set("v3")
	select {
	case <-w.wake:
		t.Error("woken after the expected config came: the fast reads should have stopped")
	case <-time.After(300 * time.Millisecond):
	}
	w.expect("other", "x") // not watched: nothing happens
}
