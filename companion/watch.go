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
}

func newWatchers(src StatusSource, hostRoot string, poll time.Duration, log logr.Logger) *watchers {
	return &watchers{src: src, hostRoot: hostRoot, poll: poll, log: log,
		wake: make(chan event.GenericEvent, 1), changed: make(chan struct{}, 1)}
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
			}
		}
		for _, lbc := range want {
			if _, ok := running[lbc]; ok {
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			running[lbc] = cancel
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.watch(wctx, lbc)
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
// when its report changes or it starts or stops answering.
func (w *watchers) watch(ctx context.Context, lbc string) {
	sock := filepath.Join(w.hostRoot, render.SocketPath(lbc))
	sw, canWatch := w.src.(StatusWatcher)
	etag, answered := "", false
	for ctx.Err() == nil {
		start := time.Now()
		var newETag string
		var err error
		if canWatch {
			_, newETag, _, err = sw.Watch(ctx, lbc, sock, etag, watchWait)
		} else {
			var rep status.Report
			rep, err = w.src.Fetch(ctx, lbc, sock)
			newETag = statusv1.Digest(rep)
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
		if ok && canWatch && (newETag != prev || time.Since(start) >= w.poll) {
			continue
		}
		t := time.NewTimer(w.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// notify wakes the reconcile (one pending wake is enough).
func (w *watchers) notify() {
	select {
	case w.wake <- event.GenericEvent{Object: &corev1.Secret{}}:
	default:
	}
}
