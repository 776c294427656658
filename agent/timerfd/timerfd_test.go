package timerfd

import (
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
)

type clockTimer = clock.Timer

func newClock(t *testing.T) *Clock {
	t.Helper()
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// within waits for ch and returns how long it took; it fails after 2 s.
func within(t *testing.T, ch <-chan time.Time) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-ch:
		return time.Since(start)
	case <-time.After(2 * time.Second):
		t.Fatal("timer did not fire within 2s")
		return 0
	}
}

func TestTimerFiresNotBeforeDeadline(t *testing.T) {
	c := newClock(t)
	for _, d := range []time.Duration{0, time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond} {
		start := time.Now()
		tm := c.NewTimer(d)
		var v time.Time
		select {
		case v = <-tm.C():
		case <-time.After(2 * time.Second):
			t.Fatalf("NewTimer(%v) did not fire within 2s", d)
		}
		if got := v.Sub(start); got < d {
			t.Errorf("NewTimer(%v) fired after %v", d, got)
		}
		if tm.Stop() {
			t.Errorf("Stop after firing reported a pending timer")
		}
	}
}

func TestTimersFireInDeadlineOrder(t *testing.T) {
	c := newClock(t)
	// Created latest first, so that each new timer re-arms the timerfd
	// earlier.
	delays := []time.Duration{60, 40, 20, 5}
	var mu sync.Mutex
	var order []time.Duration
	var wg sync.WaitGroup
	for _, d := range delays {
		d := d * time.Millisecond
		tm := c.NewTimer(d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-tm.C():
			case <-time.After(2 * time.Second):
				t.Errorf("timer of %v did not fire within 2s", d)
				return
			}
			mu.Lock()
			order = append(order, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			t.Fatalf("fired in order %v, want by deadline", order)
		}
	}
}

func TestStopAndReset(t *testing.T) {
	c := newClock(t)
	early := c.NewTimer(20 * time.Millisecond)
	late := c.NewTimer(60 * time.Millisecond)
	if !early.Stop() {
		t.Fatal("Stop of a pending timer reported it was not pending")
	}
	// The timerfd still holds early's deadline: it expires for nothing,
	// and the later timer must still fire.
	within(t, late.C())
	select {
	case <-early.C():
		t.Fatal("a stopped timer fired")
	case <-time.After(50 * time.Millisecond):
	}
	// Reset moves a pending timer: earlier, then later.
	tm := c.NewTimer(time.Hour)
	if !tm.Reset(10 * time.Millisecond) {
		t.Error("Reset of a pending timer reported it was not pending")
	}
	if d := within(t, tm.C()); d > time.Second {
		t.Errorf("reset timer fired after %v", d)
	}
	tm.Reset(10 * time.Millisecond)
	start := time.Now()
	tm.Reset(80 * time.Millisecond)
	if d := within(t, tm.C()); time.Since(start) < 80*time.Millisecond {
		t.Errorf("timer reset later fired after %v, want at least 80ms", d)
	}
}

func TestResetDiscardsUnreceivedValue(t *testing.T) {
	c := newClock(t)
	tm := c.NewTimer(time.Millisecond)
	time.Sleep(30 * time.Millisecond) // fired; nobody received
	start := time.Now()
	tm.Reset(50 * time.Millisecond)
	within(t, tm.C())
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("received a stale value after %v", d)
	}
}

func TestTick(t *testing.T) {
	c := newClock(t)
	if c.Tick(0) != nil {
		t.Error("Tick(0) is not nil")
	}
	ch := c.Tick(10 * time.Millisecond)
	start := time.Now()
	for range 5 {
		within(t, ch)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("5 ticks of 10ms in %v", d)
	}
}

func TestManyTimers(t *testing.T) {
	c := newClock(t)
	const n = 255
	timers := make([]*Timer, n)
	for i := range timers {
		timers[i] = c.NewTimer(time.Duration(i%17) * time.Millisecond).(*Timer)
	}
	for _, tm := range timers {
		within(t, tm.C())
	}
}

func TestCloseStopsDelivery(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	tm := c.NewTimer(20 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-tm.C():
		t.Fatal("a timer of a closed clock fired")
	case <-time.After(60 * time.Millisecond):
	}
	// Timers made after Close never fire and do not panic.
	c.NewTimer(time.Millisecond).Reset(time.Millisecond)
}

// TestArmAllocatesNothing: re-arming the timer of a router, as the runner
// does per advert, allocates nothing.
func TestArmAllocatesNothing(t *testing.T) {
	c := newClock(t)
	tm := c.NewTimer(time.Hour)
	d := time.Hour
	allocs := testing.AllocsPerRun(100, func() {
		d -= time.Second // earlier each time: the timerfd is set
		tm.Stop()
		tm.Reset(d)
	})
	if allocs != 0 {
		t.Errorf("Reset allocates %.1f times, want 0", allocs)
	}
}

// TestAfterFunc: an AfterFunc timer calls f after its deadline, on the
// clock's goroutine with the clock unlocked (f re-arms its own timer), and
// a stopped one never calls it.
func TestAfterFunc(t *testing.T) {
	c := newClock(t)
	start := time.Now()
	calls := make(chan time.Duration, 3)
	var tm clockTimer
	n := 0
	tm = c.AfterFunc(time.Hour, func() {
		calls <- time.Since(start)
		n++ // only the clock's goroutine touches n
		if n < 3 {
			tm.Reset(5 * time.Millisecond) // would deadlock under the clock's lock
		}
	})
	if tm.C() != nil {
		t.Error("an AfterFunc timer has a channel")
	}
	start = time.Now()
	tm.Reset(5 * time.Millisecond) // tm is set before f can run
	for i := 1; i <= 3; i++ {
		select {
		case d := <-calls:
			if d < time.Duration(i)*5*time.Millisecond {
				t.Errorf("call %d after %v, want at least %v", i, d, time.Duration(i)*5*time.Millisecond)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("call %d did not come within 2s", i)
		}
	}
	stopped := c.AfterFunc(20*time.Millisecond, func() { t.Error("a stopped AfterFunc timer called f") })
	if !stopped.Stop() {
		t.Error("Stop of a pending AfterFunc timer reported it was not pending")
	}
	within(t, c.NewTimer(60*time.Millisecond).C())
}

// TestResetLaterDoesNotWake: a timer that is pushed later before it
// expires (a backup's master-down timer, reset at every advert) re-arms the
// timerfd instead of letting it wake the loop at the old deadline.
func TestResetLaterDoesNotWake(t *testing.T) {
	c := newClock(t)
	const d = time.Second
	fired := make(chan struct{}, 1)
	tm := c.AfterFunc(d, func() { fired <- struct{}{} })
	start := time.Now()
	last := start
	for time.Since(start) < 3*d/2 {
		time.Sleep(20 * time.Millisecond)
		if time.Since(last) >= d {
			t.Skipf("the test was stalled %v, longer than the timer: cannot tell", time.Since(last))
		}
		tm.Reset(d)
		last = time.Now()
	}
	select {
	case <-fired:
		t.Fatal("the timer fired although it was always reset before its deadline")
	default:
	}
	if n := c.wakeups.Load(); n != 0 {
		t.Errorf("the loop woke %d times for a timer always reset to later: the timerfd kept an old deadline", n)
	}
	select {
	case <-fired:
	case <-time.After(2 * d):
		t.Fatal("the timer did not fire once left alone")
	}
}
