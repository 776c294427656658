package check

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Member is one check of a Pool.
type Member struct {
	// Spec is the check; Spec.Name identifies the member in the Pool.
	Spec Spec
	// Config is what the member was built from (a config.Check, a
	// real-server check and its address...). Sync compares it with
	// reflect.DeepEqual: a member whose Config did not change keeps
	// running, with its state.
	Config any
	// OnResult and OnChange are the Runner's callbacks (see NewRunner).
	OnResult func(Result)
	OnChange func(bool, Result)
}

// Pool runs a changing set of checks, each on its own schedule (a Runner
// each): the node's track checks, the real servers' checks. Sync makes the
// set match a new configuration; Run runs it. Its methods are safe for
// concurrent use.
type Pool struct {
	clk clock.WithTicker
	log logr.Logger

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run and after it returned
	members map[string]*member
	wg      sync.WaitGroup // the runners' goroutines
}

type member struct {
	cfg     any
	runner  *Runner
	cancel  context.CancelFunc // nil until started
	done    chan struct{}
	started bool
}

// NewPool returns an empty Pool. log is given to every Runner.
func NewPool(clk clock.WithTicker, log logr.Logger) *Pool {
	return &Pool{clk: clk, log: log, members: map[string]*member{}}
}

// Sync makes the running checks match ms: a member whose name and Config
// are unchanged keeps running (and its health), a new or changed one
// starts (at once if Run runs, else when it starts), and one that is gone
// or changed is stopped and waited for. It returns the names of the
// members stopped (changed ones included), so that the caller can forget
// what it kept about them, and an error naming every member that could not
// be built (the others run).
func (p *Pool) Sync(ms []Member) (stopped []string, err error) {
	want := make(map[string]Member, len(ms))
	for _, m := range ms {
		want[m.Spec.Name] = m
	}
	var stop []*member
	var errs []error
	p.mu.Lock()
	for name, mb := range p.members {
		if m, ok := want[name]; ok && reflect.DeepEqual(m.Config, mb.cfg) {
			continue
		}
		stop = append(stop, mb)
		stopped = append(stopped, name)
		delete(p.members, name)
	}
	names := make([]string, 0, len(want))
	for name := range want {
		if p.members[name] == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		m := want[name]
		r, err := NewRunner(m.Spec, p.clk, p.log, m.OnResult, m.OnChange)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		mb := &member{cfg: m.Config, runner: r, done: make(chan struct{})}
		p.members[name] = mb
		if p.ctx != nil {
			p.startLocked(mb)
		}
	}
	p.mu.Unlock()
	// Waited for without the lock: a runner's callback may read the Pool.
	for _, mb := range stop {
		p.stop(mb)
	}
	sort.Strings(stopped)
	return stopped, errors.Join(errs...)
}

// startLocked starts mb's runner under Run's context. p.mu is held.
func (p *Pool) startLocked(mb *member) {
	ctx, cancel := context.WithCancel(p.ctx)
	mb.cancel, mb.started = cancel, true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(mb.done)
		mb.runner.Run(ctx)
	}()
}

func (p *Pool) stop(mb *member) {
	if mb.started {
		mb.cancel()
		<-mb.done
	}
}

// Run runs the members until ctx is done, then stops them and waits for
// them. Call it once.
func (p *Pool) Run(ctx context.Context) {
	p.mu.Lock()
	if p.ctx != nil {
		p.mu.Unlock()
		panic("check: Pool.Run called twice")
	}
	p.ctx = ctx
	for _, mb := range p.members {
		if !mb.started {
			p.startLocked(mb)
		}
	}
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	// Members added from now on wait for a Run that never comes: they
	// are not started.
	p.ctx = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// Runner returns the runner of the member name (its Healthy and Last).
func (p *Pool) Runner(name string) (*Runner, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	mb, ok := p.members[name]
	if !ok {
		return nil, false
	}
	return mb.runner, true
}

// Healthy reports whether the member name exists and is healthy.
func (p *Pool) Healthy(name string) bool {
	r, ok := p.Runner(name)
	return ok && r.Healthy()
}

// Names returns the names of the members, sorted.
func (p *Pool) Names() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, 0, len(p.members))
	for name := range p.members {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
