package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// funcChecker is a Checker made of a function.
type funcChecker func(ctx context.Context) error

func (f funcChecker) Check(ctx context.Context) error { return f(ctx) }
func (f funcChecker) String() string                  { return "fake" }

// scripted returns a checker that answers from a list of "ok"/"fail", one
// per call, and "ok" once the list is used up.
func scripted(results string) funcChecker {
	var mu sync.Mutex
	list := strings.Fields(results)
	return func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		r := "ok"
		if len(list) > 0 {
			r, list = list[0], list[1:]
		}
		if r != "ok" {
			return errors.New("check: fake: boom")
		}
		return nil
	}
}

// change is one onChange call.
type change struct {
	Healthy bool
	Probe   int // index of the probe that caused it
}

// harness runs a Runner on a fake clock and collects what it reports.
type harness struct {
	t       *testing.T
	clk     *clocktesting.FakeClock
	runner  *Runner
	results chan Result
	mu      sync.Mutex
	changes []change
	probes  int
	cancel  context.CancelFunc
	done    chan struct{}
}

// start builds a Runner for spec and runs it until the test ends.
func start(t *testing.T, spec Spec) *harness {
	t.Helper()
	h := &harness{t: t, clk: clocktesting.NewFakeClock(t0), results: make(chan Result, 100), done: make(chan struct{})}
	log := testr.NewWithOptions(t, testr.Options{Verbosity: 1})
	r, err := NewRunner(spec, h.clk, log,
		func(res Result) {
			h.mu.Lock()
			h.probes++
			h.mu.Unlock()
			h.results <- res
		},
		func(healthy bool, res Result) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if healthy != res.Healthy || !res.Changed {
				t.Errorf("onChange(%v, %+v): inconsistent with the result", healthy, res)
			}
			h.changes = append(h.changes, change{Healthy: healthy, Probe: h.probes - 1})
		})
	if err != nil {
		t.Fatal(err)
	}
	h.runner = r
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		r.Run(ctx)
	}()
	t.Cleanup(h.stop)
	return h
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return after its context was canceled")
	}
}

// next waits for the next result.
func (h *harness) next(what string) Result {
	h.t.Helper()
	select {
	case r := <-h.results:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatalf("timed out waiting for %s", what)
		return Result{}
	}
}

// step is the part of a Result a schedule test compares.
type step struct {
	At      time.Duration // since t0
	OK      bool
	Healthy bool
	Changed bool
}

// TestRunnerSchedule probes at once and then every interval, never earlier,
// and reports state changes exactly at the fall-th failure and the rise-th
// success.
func TestRunnerSchedule(t *testing.T) {
	const interval = 10 * time.Second
	tests := []struct {
		name        string
		rise, fall  int
		initially   bool
		alpha       bool // FirstProbeDecides
		results     string
		wantSteps   string // per probe: up/down, "!" when it changed
		wantChanges []change
	}{
		{name: "fall then rise", rise: 2, fall: 3, initially: true,
			results:     "ok fail fail fail fail ok ok ok",
			wantSteps:   "up up up down! down down up! up",
			wantChanges: []change{{Healthy: false, Probe: 3}, {Healthy: true, Probe: 6}}},
		{name: "starts failed", rise: 3, fall: 1, initially: false,
			results:     "ok ok ok fail",
			wantSteps:   "down down up! down!",
			wantChanges: []change{{Healthy: true, Probe: 2}, {Healthy: false, Probe: 3}}},
		{name: "flapping below fall never changes", rise: 1, fall: 2, initially: true,
			results:   "fail ok fail ok fail ok",
			wantSteps: "up up up up up up"},
		{name: "alpha: starts failed, the first success brings it up", rise: 2, fall: 2, alpha: true,
			results:     "ok fail ok fail fail",
			wantSteps:   "up! up up up down!",
			wantChanges: []change{{Healthy: true, Probe: 0}, {Healthy: false, Probe: 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, Spec{Name: "api", Checker: scripted(tt.results), Interval: interval, Timeout: interval / 2,
				Rise: tt.rise, Fall: tt.fall, InitiallyHealthy: tt.initially, FirstProbeDecides: tt.alpha})
			if got := h.runner.Healthy(); got != tt.initially {
				t.Errorf("Healthy() before the first probe = %v, want %v", got, tt.initially)
			}
			var steps []step
			var words []string
			n := len(strings.Fields(tt.results))
			for i := range n {
				if i > 0 {
					// Just short of the interval nothing may fire; the
					// result's At shows when the probe really started.
					h.clk.Step(interval - time.Nanosecond)
					h.clk.Step(time.Nanosecond)
				}
				r := h.next(fmt.Sprintf("probe %d", i))
				steps = append(steps, step{At: r.At.Sub(t0), OK: r.OK, Healthy: r.Healthy, Changed: r.Changed})
				words = append(words, stateWord(r.Healthy, r.Changed))
				if r.Name != "api" || r.OK != (r.Err == nil) {
					t.Errorf("probe %d: result %+v: wrong name or OK/Err mismatch", i, r)
				}
				if got := h.runner.Last(); !cmp.Equal(r, got, cmp.Comparer(sameErr)) {
					t.Errorf("probe %d: Last() = %+v, want %+v", i, got, r)
				}
				if got := h.runner.Healthy(); got != r.Healthy {
					t.Errorf("probe %d: Healthy() = %v, want %v", i, got, r.Healthy)
				}
			}
			h.stop()
			for i, s := range steps {
				if want := time.Duration(i) * interval; s.At != want {
					t.Errorf("probe %d started at t0+%s, want t0+%s", i, s.At, want)
				}
			}
			if diff := cmp.Diff(strings.Fields(tt.wantSteps), words); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantChanges, h.changes); diff != "" {
				t.Errorf("onChange calls (-want +got):\n%s", diff)
			}
		})
	}
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

// TestRunnerTimeout cuts a probe that blocks at the timeout, on the injected
// clock, and keeps the schedule start to start.
func TestRunnerTimeout(t *testing.T) {
	const interval, timeout = 10 * time.Second, 4 * time.Second
	started := make(chan struct{}, 10)
	blocking := funcChecker(func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		return fmt.Errorf("check: fake: %w", context.Cause(ctx))
	})
	h := start(t, Spec{Name: "slow", Checker: blocking, Interval: interval, Timeout: timeout, Rise: 1, Fall: 2, InitiallyHealthy: true})

	for i := range 2 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatalf("probe %d did not start", i)
		}
		h.clk.Step(timeout)
		r := h.next(fmt.Sprintf("probe %d to time out", i))
		if want := "check: fake: timed out after 4s"; r.Err == nil || r.Err.Error() != want {
			t.Errorf("probe %d: Err = %v, want %q", i, r.Err, want)
		}
		if !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("probe %d: errors.Is(%v, context.DeadlineExceeded) = false", i, r.Err)
		}
		if got, want := (step{At: r.At.Sub(t0), OK: r.OK, Healthy: r.Healthy, Changed: r.Changed}),
			(step{At: time.Duration(i) * interval, Healthy: i == 0, Changed: i == 1}); got != want {
			t.Errorf("probe %d: got %+v, want %+v", i, got, want)
		}
		if r.Duration != timeout {
			t.Errorf("probe %d: Duration = %s, want %s", i, r.Duration, timeout)
		}
		h.clk.Step(interval - timeout)
	}
}

// TestRunnerNoOverlap blocks the first probe (ignoring its context) across
// several intervals: no second probe starts meanwhile, the late success is
// counted as a timeout, and the missed ticks collapse into one probe.
func TestRunnerNoOverlap(t *testing.T) {
	const interval = 10 * time.Second
	var inflight, maxInflight, calls atomic.Int32
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	checker := funcChecker(func(ctx context.Context) error {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			m := maxInflight.Load()
			if n <= m || maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
		if calls.Add(1) == 1 {
			started <- struct{}{}
			<-release // ignores ctx, as a buggy checker would
		}
		return nil
	})
	h := start(t, Spec{Name: "stuck", Checker: checker, Interval: interval, Timeout: interval / 2, Rise: 1, Fall: 1, InitiallyHealthy: true})

	<-started
	for range 3 {
		h.clk.Step(interval)
	}
	close(release)
	first := h.next("the blocked probe")
	if first.OK || !errors.Is(first.Err, context.DeadlineExceeded) || first.Err.Error() != "check: fake: timed out after 5s" {
		t.Errorf("blocked probe: OK %v, Err %v; want a failure %q", first.OK, first.Err, "check: fake: timed out after 5s")
	}
	catchUp := h.next("the probe of the missed ticks")
	h.clk.Step(interval)
	after := h.next("the next scheduled probe")
	got := []time.Duration{first.At.Sub(t0), catchUp.At.Sub(t0), after.At.Sub(t0)}
	want := []time.Duration{0, 3 * interval, 4 * interval}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("probe start times (-want +got):\n%s", diff)
	}
	h.stop()
	if m := maxInflight.Load(); m != 1 {
		t.Errorf("%d probes ran at once, want 1", m)
	}
	if c := calls.Load(); c != 3 {
		t.Errorf("%d probes, want 3", c)
	}
}

// TestRunnerCancel: Run returns when its context is canceled, both while
// waiting for the next tick and in the middle of a probe, and a probe cut
// short by the cancellation is not counted.
func TestRunnerCancel(t *testing.T) {
	t.Run("waiting", func(t *testing.T) {
		h := start(t, Spec{Name: "a", Checker: scripted("ok"), Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1})
		h.next("the first probe")
		h.stop()
	})
	t.Run("probing", func(t *testing.T) {
		started := make(chan struct{}, 1)
		blocking := funcChecker(func(ctx context.Context) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		})
		h := start(t, Spec{Name: "b", Checker: blocking, Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1, InitiallyHealthy: true})
		<-started
		h.stop()
		if n := len(h.results); n != 0 {
			t.Errorf("%d results after a cancel in the middle of a probe, want 0", n)
		}
		if diff := cmp.Diff(Result{Name: "b", Healthy: true}, h.runner.Last(), cmp.Comparer(sameErr)); diff != "" {
			t.Errorf("Last() (-want +got):\n%s", diff)
		}
	})
	t.Run("already canceled", func(t *testing.T) {
		r, err := NewRunner(Spec{Name: "c", Checker: scripted("ok"), Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1},
			clocktesting.NewFakeClock(t0), testr.New(t), func(Result) { t.Error("probed with a canceled context") }, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r.Run(ctx)
	})
}

// TestRunnerJitter probes at once, then waits one interval plus a random
// time shorter than an interval for the second probe, then probes every
// interval from there.
func TestRunnerJitter(t *testing.T) {
	const interval = 10 * time.Second
	h := start(t, Spec{Name: "j", Checker: scripted("ok"), Interval: interval, Timeout: interval, Rise: 1, Fall: 1, Jitter: true})
	if r := h.next("the first probe"); !r.OK || !r.At.Equal(t0) {
		t.Fatalf("first probe: %+v, want OK at t0 (at once)", r)
	}
	waitWaiters := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !h.clk.HasWaiters() {
			if time.Now().After(deadline) {
				t.Fatal("the runner never waited on the clock")
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitWaiters()
	h.clk.Step(interval - time.Nanosecond)
	time.Sleep(20 * time.Millisecond)
	if n := len(h.results); n != 0 {
		t.Fatalf("%d probes less than an interval after the first, want 0", n)
	}
	h.clk.Step(interval) // now t0 + 2 x interval - 1ns: past any jitter
	second := h.next("the second probe")
	if d := second.At.Sub(t0); d < interval || d >= 2*interval {
		t.Errorf("second probe at t0+%s, want in [t0+%s, t0+%s)", d, interval, 2*interval)
	}
	waitWaiters()
	h.clk.SetTime(second.At.Add(interval))
	if third := h.next("the third probe"); !third.At.Equal(second.At.Add(interval)) {
		t.Errorf("third probe at t0+%s, want one interval after the second (t0+%s)", third.At.Sub(t0), second.At.Add(interval).Sub(t0))
	}
}

// TestRunnerPanic turns a panicking checker into a failed probe.
func TestRunnerPanic(t *testing.T) {
	h := start(t, Spec{Name: "p", Checker: funcChecker(func(context.Context) error { panic("bug") }),
		Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1, InitiallyHealthy: true})
	r := h.next("the probe")
	if want := "check p: checker panicked: bug"; r.OK || r.Err == nil || r.Err.Error() != want {
		t.Errorf("result %+v, want a failure %q", r, want)
	}
}

// TestRunnerConcurrentReads reads Healthy and Last while probes run (for the
// race detector).
func TestRunnerConcurrentReads(t *testing.T) {
	h := start(t, Spec{Name: "r", Checker: scripted("ok fail ok fail ok fail"), Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = h.runner.Healthy()
				_ = h.runner.Last()
			}
		}
	})
	for i := range 6 {
		if i > 0 {
			h.clk.Step(time.Second)
		}
		h.next(fmt.Sprintf("probe %d", i))
	}
	close(stop)
	wg.Wait()
}

func TestNewRunnerInvalid(t *testing.T) {
	ok := Spec{Name: "x", Checker: scripted(""), Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1}
	tests := []struct {
		name   string
		modify func(*Spec)
		want   string // "" = valid
	}{
		{name: "valid", modify: func(*Spec) {}},
		{name: "no name", modify: func(s *Spec) { s.Name = "" }, want: "name: must not be empty"},
		{name: "no checker", modify: func(s *Spec) { s.Checker = nil }, want: "checker: must not be nil"},
		{name: "zero interval", modify: func(s *Spec) { s.Interval = 0 }, want: "interval: 0s: must be positive"},
		{name: "zero timeout", modify: func(s *Spec) { s.Timeout = 0 }, want: "timeout: 0s: must be positive and at most the interval (1s)"},
		{name: "timeout above interval", modify: func(s *Spec) { s.Timeout = 2 * time.Second }, want: "timeout: 2s: must be positive and at most the interval (1s)"},
		{name: "rise and fall zero", modify: func(s *Spec) { s.Rise, s.Fall = 0, 0 }, want: "rise: 0: must be at least 1\nfall: 0: must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := ok
			tt.modify(&spec)
			_, err := NewRunner(spec, clocktesting.NewFakeClock(t0), testr.New(t), nil, nil)
			got := ""
			if err != nil {
				got = err.Error()
			}
			want := ""
			if tt.want != "" {
				want = fmt.Sprintf("check %q: %s", spec.Name, tt.want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("NewRunner error (-want +got):\n%s", diff)
			}
		})
	}
}
