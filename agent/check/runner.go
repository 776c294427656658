package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Spec describes one scheduled check.
type Spec struct {
	// Name identifies the check in logs, metrics and results, e.g.
	// "apiserver" or "192.0.2.11:6443".
	Name string
	// Checker runs each probe.
	Checker Checker
	// Interval is the time from the start of one probe to the start of the
	// next.
	Interval time.Duration
	// Timeout bounds each probe: 0 < Timeout <= Interval. The probe's
	// context is canceled by a timer on the injected clock (its cause says
	// "timed out after <Timeout>" and is a context.DeadlineExceeded); it
	// carries no deadline. A probe that succeeds after Timeout counts as
	// failed.
	Timeout time.Duration
	// Rise is how many consecutive successes make a failed check healthy,
	// Fall how many consecutive failures make a healthy one failed (>= 1).
	Rise, Fall int
	// InitiallyHealthy is the state before the first probe. A track check
	// that must hold a rebooted node back until its API server is ready
	// starts failed, and so does a real server that must get no traffic
	// before a probe vouched for it (with FirstProbeDecides).
	InitiallyHealthy bool
	// FirstProbeDecides makes the first probe set the state by itself:
	// one success makes the check healthy, one failure failed; Rise and
	// Fall count from the second probe on. With InitiallyHealthy false it
	// is keepalived's alpha mode (a real server is down until its first
	// check succeeds), whose first check also needs a single success.
	FirstProbeDecides bool
	// Jitter spreads checks started together: the first probe still runs
	// at once, but the second runs Interval plus a random time in
	// [0, Interval) after it, and the next ones every Interval from there.
	// Off by default: every Interval from the first probe.
	Jitter bool
}

// validate lists every problem of s.
func (s Spec) validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("name: must not be empty"))
	}
	if s.Checker == nil {
		errs = append(errs, errors.New("checker: must not be nil"))
	}
	if s.Interval <= 0 {
		errs = append(errs, fmt.Errorf("interval: %s: must be positive", s.Interval))
	}
	if s.Timeout <= 0 || (s.Interval > 0 && s.Timeout > s.Interval) {
		errs = append(errs, fmt.Errorf("timeout: %s: must be positive and at most the interval (%s)", s.Timeout, s.Interval))
	}
	if s.Rise < 1 {
		errs = append(errs, fmt.Errorf("rise: %d: must be at least 1", s.Rise))
	}
	if s.Fall < 1 {
		errs = append(errs, fmt.Errorf("fall: %d: must be at least 1", s.Fall))
	}
	return errors.Join(errs...)
}

// Result is the outcome of one probe.
type Result struct {
	// Name is the Spec's name.
	Name string
	// OK says whether this probe succeeded; Err says why not.
	OK  bool
	Err error
	// Duration is how long the probe took; At is when it started.
	Duration time.Duration
	At       time.Time
	// Healthy is the tracked state after this probe, Changed whether this
	// probe changed it.
	Healthy bool
	Changed bool
}

// Runner runs one Checker on a schedule and tracks its state. Probes of one
// Runner never overlap; different Runners run concurrently.
type Runner struct {
	spec     Spec
	clk      clock.WithTicker
	log      logr.Logger
	onResult func(Result)
	onChange func(bool, Result)

	tracker *Tracker // used by Run's goroutine only

	mu   sync.Mutex
	last Result
}

// NewRunner validates spec and returns a Runner; Run starts it.
//
// onResult, if not nil, is called after every probe (for metrics and
// logs), and onChange, if not nil, after onResult when the probe changed the
// tracked state, with the new state. Neither is called for the initial
// state: read Healthy before Run to act on it. Both are called on Run's
// goroutine, so they must be cheap and must not block: the next probe waits
// for them. A callback that needs to do real work (reconcile IPVS, change a
// VRRP priority) should hand the event over, e.g. by a non-blocking send on
// a buffered channel or by waking a worker that then reads Healthy.
//
// log gets the key "check" with spec.Name; it is not given a name, so pass
// e.g. log.WithName("check").
func NewRunner(spec Spec, clk clock.WithTicker, log logr.Logger, onResult func(Result), onChange func(bool, Result)) (*Runner, error) {
	if err := spec.validate(); err != nil {
		return nil, fmt.Errorf("check %q: %w", spec.Name, err)
	}
	if clk == nil {
		return nil, fmt.Errorf("check %q: no clock", spec.Name)
	}
	return &Runner{
		spec:     spec,
		clk:      clk,
		log:      log.WithValues("check", spec.Name),
		onResult: onResult,
		onChange: onChange,
		tracker:  newTracker(spec.Rise, spec.Fall, spec.InitiallyHealthy, spec.FirstProbeDecides),
		last:     Result{Name: spec.Name, Healthy: spec.InitiallyHealthy},
	}, nil
}

// Name returns the Spec's name.
func (r *Runner) Name() string { return r.spec.Name }

// Healthy returns the tracked state: the initial state until the first
// change. It is safe for concurrent use.
func (r *Runner) Healthy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.Healthy
}

// Last returns the result of the latest probe; before the first one, a
// Result with only Name and Healthy (the initial state) set. It is safe for
// concurrent use.
func (r *Runner) Last() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Run probes at once, then every Interval (with Jitter, the second probe
// comes later: see Spec.Jitter), until ctx is done. Call it once. A probe
// cut short because ctx is done is not counted. Run returns when ctx is
// done and the probe in flight, if any, has returned.
func (r *Runner) Run(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if r.spec.Jitter {
		first := r.clk.Now()
		r.probe(ctx)
		wait := first.Add(r.spec.Interval + rand.N(r.spec.Interval)).Sub(r.clk.Now())
		if wait > 0 {
			t := r.clk.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		} else if ctx.Err() != nil {
			return
		}
	}
	ticker := r.clk.NewTicker(r.spec.Interval)
	defer ticker.Stop()
	for {
		r.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// probe runs one probe bounded by the timeout, on the injected clock, and
// reports its result.
func (r *Runner) probe(ctx context.Context) {
	start := r.clk.Now()
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := r.clk.NewTimer(r.spec.Timeout)
	defer timer.Stop()
	go func() {
		select {
		case <-timer.C():
			cancel(timeoutError{r.spec.Timeout})
		case <-pctx.Done():
		}
	}()

	err := r.check(pctx)
	took := r.clk.Since(start)
	if ctx.Err() != nil {
		return // shutting down: says nothing about the target
	}
	if err == nil && (pctx.Err() != nil || took >= r.spec.Timeout) {
		// The checker ignored its context and succeeded too late.
		err = fmt.Errorf("check: %s: %w", r.spec.Checker, timeoutError{r.spec.Timeout})
	}
	res := Result{
		Name:     r.spec.Name,
		OK:       err == nil,
		Err:      err,
		Duration: took,
		At:       start,
	}
	res.Healthy, res.Changed = r.tracker.Observe(res.OK)
	r.mu.Lock()
	r.last = res
	r.mu.Unlock()

	if err != nil {
		r.log.V(1).Info("probe failed", "duration", res.Duration, "healthy", res.Healthy, "reason", err.Error())
	} else {
		r.log.V(1).Info("probe succeeded", "duration", res.Duration, "healthy", res.Healthy)
	}
	if res.Changed {
		if res.Healthy {
			r.log.Info("check recovered", "rise", r.spec.Rise)
		} else {
			r.log.Info("check failed", "fall", r.spec.Fall, "reason", err.Error())
		}
	}
	if r.onResult != nil {
		r.onResult(res)
	}
	if res.Changed && r.onChange != nil {
		r.onChange(res.Healthy, res)
	}
}

// check runs the Checker and turns a panic into an error: a bug in one
// checker must not take the agent down.
func (r *Runner) check(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check %s: checker panicked: %v", r.spec.Name, p)
		}
	}()
	return r.spec.Checker.Check(ctx)
}
