package companion

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/vipvs/vipvs/agent/status"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/render"
)

// Timings of the watch of the agents' status.
const (
	// DefaultWatchPoll is how often an agent that does not answer, or a
	// StatusSource without Watch, is read again: the longest a change waits
	// to be noticed in those cases.
	DefaultWatchPoll = 250 * time.Millisecond
	// watchWait is how long one watch request waits for a change.
	watchWait = 30 * time.Second
	// expectPoll is how often an agent whose files were just written is
	// read, until its report changes or expectWindow has passed: its
	// status server notices a change only every 100 ms
	// (status.DefaultWatchPoll), and each step of a node-by-node rollout
	// waits for the node's report.
	expectPoll = 20 * time.Millisecond
	// expectWindow bounds the fast reads after a write: the agent applies
	// its new config within about 100 ms (its watcher's debounce).
	expectWindow = 2 * time.Second
)

// StatusWatcher is a StatusSource that can wait for a change (the watch
// protocol of api/status/v1alpha1). AgentSocket is one; the companion
// polls a StatusSource that is not.
type StatusWatcher interface {
	StatusSource
	// Watch returns the report of the agent of LoadBalancerConfig lbc once
	// its ETag differs from etag, or changed false after wait.
	Watch(ctx context.Context, lbc, socketPath, etag string, wait time.Duration) (rep status.Report, newETag string, changed bool, err error)
}

var _ StatusWatcher = AgentSocket{}

// Watch implements StatusWatcher with agent/status.Watch.
func (AgentSocket) Watch(ctx context.Context, _, socketPath, etag string, wait time.Duration) (status.Report, string, bool, error) {
	return status.Watch(ctx, socketPath, etag, wait)
}

// watchers watch the status of the node's agents, one goroutine per
// LoadBalancerConfig, and wake the companion's reconcile when an agent's
// report changes, or it starts or stops answering: the companion reports
// within a second of a change instead of on its fixed cycle. It is a
// manager.Runnable: Start owns the goroutines and waits for them.
type watchers struct {
	src      StatusSource
	hostRoot string
	poll     time.Duration
	// wake gets an event for each change; the controller's channel source.
	wake chan event.GenericEvent
	log  logr.Logger

	mu      sync.Mutex
	want    []string // the LoadBalancerConfigs to watch, sorted
	changed chan struct{}
	// expected has, by LoadBalancerConfig being watched, the channel that
	// tells its goroutine to read fast: its files were just written, with
	// this config hash.
	expected map[string]chan string
}

func newWatchers(src StatusSource, hostRoot string, poll time.Duration, log logr.Logger) *watchers {
	return &watchers{src: src, hostRoot: hostRoot, poll: poll, log: log,
		wake: make(chan event.GenericEvent, 1), changed: make(chan struct{}, 1), expected: map[string]chan string{}}
}

// expect tells the watch of lbc that its agent is about to run the config
// whose hash is configHash (its files were just written): it reads the
// agent every expectPoll until the agent reports that config (or
// expectWindow has passed), instead of waiting for the agent's status
// server to notice. It does nothing for an agent not watched.
func (w *watchers) expect(lbc, configHash string) {
	w.mu.Lock()
	ch := w.expected[lbc]
	w.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch: // the newest hash replaces one not taken yet
	default:
	}
	select {
	case ch <- configHash:
	default:
	}
}

// set makes the watchers watch the agents of lbcs (and no other).
func (w *watchers) set(lbcs []string) {
	lbcs = slices.Clone(lbcs)
	slices.Sort(lbcs)
	w.mu.Lock()
	same := slices.Equal(w.want, lbcs)
	w.want = lbcs
	w.mu.Unlock()
	if !same {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

// Start runs the watchers until ctx is done, then waits for them.
func (w *watchers) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	running := map[string]context.CancelFunc{}
	defer func() {
		for _, cancel := range running {
			cancel()
		}
		wg.Wait()
	}()
	for {
		w.mu.Lock()
		want := w.want
		w.mu.Unlock()
		for lbc, cancel := range running {
			if !slices.Contains(want, lbc) {
				cancel()
				delete(running, lbc)
				w.mu.Lock()
				delete(w.expected, lbc)
				w.mu.Unlock()
			}
		}
		for _, lbc := range want {
			if _, ok := running[lbc]; ok {
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			running[lbc] = cancel
			expected := make(chan string, 1)
			w.mu.Lock()
			w.expected[lbc] = expected
			w.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.watch(wctx, lbc, expected)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.changed:
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// companion watches its own node's agents.
func (w *watchers) NeedLeaderElection() bool { return false }

// watch follows the agent of lbc until ctx is done, waking the reconcile
// when its report changes or it starts or stops answering. A config hash
// on expected (its files were just written) makes it read the agent every
// expectPoll until the agent runs that config, for at most expectWindow.
func (w *watchers) watch(ctx context.Context, lbc string, expected <-chan string) {
	sock := filepath.Join(w.hostRoot, render.SocketPath(lbc))
	sw, canWatch := w.src.(StatusWatcher)
	etag, answered := "", false
	var fastUntil time.Time
	var wantHash string
	for ctx.Err() == nil {
		start := time.Now()
		fast := start.Before(fastUntil)
		var newETag string
		var err error
		if canWatch && !fast {
			var kicked bool
			newETag, wantHash, kicked, err = w.watchOnce(ctx, sw, lbc, sock, etag, expected)
			if kicked {
				fastUntil = time.Now().Add(expectWindow)
				continue
			}
		} else {
			var rep status.Report
			if canWatch {
				// Fast: a plain read (no wait), with the same ETags.
				rep, newETag, _, err = sw.Watch(ctx, lbc, sock, etag, 0)
			} else {
				rep, err = w.src.Fetch(ctx, lbc, sock)
				newETag = statusv1.Digest(rep)
			}
			if fast && err == nil && rep.ConfigHash == wantHash {
				fastUntil = time.Time{} // the agent runs the expected config
			}
		}
		if ctx.Err() != nil {
			return
		}
		ok := err == nil
		if ok != answered || ok && newETag != etag {
			if !ok {
				w.log.V(1).Info("agent does not answer", "loadBalancerConfig", lbc, "err", err.Error())
			}
			w.notify()
		}
		prev := etag
		answered, etag = ok, ""
		if ok {
			etag = newETag
		}
		// Ask again at once after a long poll or a change; pause after an
		// error, with a source that cannot wait, and after an answer that
		// came at once without a change (an agent that does not know the
		// watch protocol), so as not to spin.
		if !fast && ok && canWatch && (newETag != prev || time.Since(start) >= w.poll) {
			continue
		}
		pause := w.poll
		if fast {
			pause = expectPoll
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case wantHash = <-expected:
			t.Stop()
			fastUntil = time.Now().Add(expectWindow)
		case <-t.C:
		}
	}
}

// watchOnce runs one watch request and returns the report's ETag; a
// config hash on expected cuts it short (kicked true: the result is to be
// ignored) and is returned.
func (w *watchers) watchOnce(ctx context.Context, sw StatusWatcher, lbc, sock, etag string, expected <-chan string) (newETag, wantHash string, kicked bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	kick := make(chan string, 1) // the hash; closed empty when not kicked
	go func() {
		defer close(kick)
		select {
		case h := <-expected:
			cancel()
			kick <- h
		case <-done:
		}
	}()
	_, newETag, _, err = sw.Watch(wctx, lbc, sock, etag, watchWait)
	close(done)
	wantHash, kicked = <-kick
	return newETag, wantHash, kicked, err
}

// notify wakes the reconcile (one pending wake is enough).
func (w *watchers) notify() {
	select {
	case w.wake <- event.GenericEvent{Object: &corev1.Secret{}}:
	default:
	}
}
