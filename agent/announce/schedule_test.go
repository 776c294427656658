package announce

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

// recorder is a Sender that reports the fake time of each announcement.
type recorder struct {
	clk  *clocktesting.FakeClock
	sent chan time.Duration // since start
	t0   time.Time
}

func (r *recorder) Announce([]netip.Addr) error {
	r.sent <- r.clk.Since(r.t0)
	return nil
}

// expect reads exactly the announcements sent so far by a burst of n.
func (r *recorder) expect(t *testing.T, n int, at time.Duration) {
	t.Helper()
	var got []time.Duration
	for range n {
		select {
		case d := <-r.sent:
			got = append(got, d)
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for announcement %d of %d at %v (got %v)", len(got)+1, n, at, got)
		}
	}
	want := make([]time.Duration, n)
	for i := range want {
		want[i] = at
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("announcement times (-want +got):\n%s", diff)
	}
}

// expectNone checks that nothing more was sent. It is exact, not a race:
// the fake clock fired no timer, so Run is blocked in its select.
func (r *recorder) expectNone(t *testing.T, when string) {
	t.Helper()
	select {
	case d := <-r.sent:
		t.Fatalf("%s: unexpected announcement at %v", when, d)
	default:
	}
}

// start runs sc in a goroutine and returns its recorder and a stop function
// that cancels and waits for Run.
func start(t *testing.T, sc Schedule) (*recorder, *clocktesting.FakeClock, func()) {
	t.Helper()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	r := &recorder{clk: clk, sent: make(chan time.Duration, 100), t0: t0}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.New(t)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc.Run(ctx, clk, r, []netip.Addr{vip4})
	}()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return r, clk, stop
}

// waitWaiters waits until Run has armed n timers on the fake clock.
func waitWaiters(t *testing.T, clk *clocktesting.FakeClock, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for clk.Waiters() != n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d timers (have %d)", n, clk.Waiters())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestScheduleBurstRepeatRefresh(t *testing.T) {
	r, clk, stop := start(t, Schedule{Count: 2, RepeatDelay: time.Second, Refresh: 10 * time.Second})
	r.expect(t, 2, 0)
	waitWaiters(t, clk, 2) // repeat timer and refresh ticker

	clk.Step(999 * time.Millisecond)
	r.expectNone(t, "before the repeat delay")
	clk.Step(time.Millisecond)
	r.expect(t, 2, time.Second)
	waitWaiters(t, clk, 1) // the repeat timer is spent

	clk.Step(9 * time.Second)
	r.expect(t, 2, 10*time.Second) // refresh counts from the start
	clk.Step(9 * time.Second)
	r.expectNone(t, "between refreshes")
	clk.Step(time.Second)
	r.expect(t, 2, 20*time.Second)

	stop()
	clk.Step(time.Hour)
	r.expectNone(t, "after cancel")
}

func TestScheduleOnce(t *testing.T) {
	// The zero Schedule sends one announcement and returns by itself.
	t0 := time.Now()
	clk := clocktesting.NewFakeClock(t0)
	r := &recorder{clk: clk, sent: make(chan time.Duration, 10), t0: t0}
	Schedule{}.Run(context.Background(), clk, r, []netip.Addr{vip4})
	r.expect(t, 1, 0)
	r.expectNone(t, "after the only burst")
	if clk.HasWaiters() {
		t.Errorf("timers left armed")
	}
}

func TestScheduleRepeatOnly(t *testing.T) {
	r, clk, _ := start(t, Schedule{Count: 3, RepeatDelay: 2 * time.Second})
	r.expect(t, 3, 0)
	waitWaiters(t, clk, 1)
	clk.Step(2 * time.Second)
	r.expect(t, 3, 2*time.Second)
	clk.Step(time.Hour)
	r.expectNone(t, "after the repeat")
}

func TestScheduleCancelledBeforeStart(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	r := &recorder{clk: clk, sent: make(chan time.Duration, 10), t0: clk.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	Schedule{Count: 2, Refresh: time.Second}.Run(ctx, clk, r, []netip.Addr{vip4})
	r.expectNone(t, "cancelled before start")
}
