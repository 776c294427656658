// Package timerfd is a clock whose timers share one Linux timerfd instead
// of the Go runtime's timers.
//
// Every Go timer bounds how long the runtime's sysmon thread may sleep, and
// every firing wakes a thread through the runtime's timer machinery: at
// 10 ms VRRP adverts, or with hundreds of routers, that is several context
// switches per advert. A Clock keeps its timers in a heap and holds only
// the earliest deadline in a non-blocking timerfd, which one goroutine
// waits on through the netpoller; when it expires, that goroutine delivers
// the due timers to their channels and arms the timerfd for the next one.
// Setting the timerfd is a raw system call (no entersyscall), as is reading
// it, so neither wakes sysmon.
//
// A Clock implements k8s.io/utils/clock.Clock, the clock of vrrp.Runner.
// Times are Go's (time.Now, monotonic); the timerfd uses CLOCK_MONOTONIC
// with relative expiries, armed after the deadline was computed, so it
// never expires before a timer's deadline.
package timerfd

import (
	"container/heap"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"k8s.io/utils/clock"
)

// Clock is a clock.Clock whose timers are multiplexed onto one timerfd.
// Create it with New and Close it when done; timers of a closed Clock never
// fire. It is safe for concurrent use.
type Clock struct {
	f  *os.File
	rc syscall.RawConn

	mu     sync.Mutex
	timers timerHeap
	armed  time.Time // the deadline the timerfd holds; zero: disarmed
	closed bool
	spec   unix.ItimerSpec // the argument of timerfd_settime, kept so that arming allocates nothing
	buf    [8]byte         // the expiration count read from the timerfd
	serr   syscall.Errno
	readFn func(fd uintptr) bool // bound once so that a read allocates nothing
	setFn  func(fd uintptr)      // bound once so that arming allocates nothing
	done   chan struct{}         // closed when the loop has returned
	due    []func()              // the loop's buffer of due AfterFunc callbacks
	// firing is true while fire delivers timers and runs callbacks: the
	// timerfd is armed once at the end instead of at every Reset of a
	// callback (an advert timer re-arms itself at each advert).
	firing bool
	// wakeups counts the loop's wake-ups (fire calls), for the tests.
	wakeups atomic.Uint64
}

var (
	_ clock.Clock                = (*Clock)(nil)
	_ clock.WithDelayedExecution = (*Clock)(nil)
)

// New opens a timerfd and starts the goroutine that delivers the timers;
// Close stops it and waits for it.
func New() (*Clock, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd: creating: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	c := &Clock{f: f, rc: rc, done: make(chan struct{})}
	c.readFn, c.setFn = c.read, c.set
	go c.loop()
	return c, nil
}

// Close stops delivering timers, closes the timerfd and waits for the
// delivering goroutine.
func (c *Clock) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	err := c.f.Close()
	<-c.done
	if err != nil {
		return fmt.Errorf("timerfd: closing: %w", err)
	}
	return nil
}

// Now returns time.Now().
func (c *Clock) Now() time.Time { return time.Now() }

// Since returns time.Since(t).
func (c *Clock) Since(t time.Time) time.Duration { return time.Since(t) }

// After returns the channel of a new timer of d.
func (c *Clock) After(d time.Duration) <-chan time.Time { return c.NewTimer(d).C() }

// Sleep blocks for d.
func (c *Clock) Sleep(d time.Duration) { <-c.After(d) }

// Tick returns the channel of a ticker of period d, which is never stopped;
// nil when d <= 0 (as time.Tick).
func (c *Clock) Tick(d time.Duration) <-chan time.Time {
	if d <= 0 {
		return nil
	}
	t := &Timer{c: c, ch: make(chan time.Time, 1), index: -1, period: d}
	c.mu.Lock()
	c.startLocked(t, time.Now().Add(d))
	c.mu.Unlock()
	return t.ch
}

// NewTimer returns a timer that sends the time on its channel once d has
// passed (at once for d <= 0).
func (c *Clock) NewTimer(d time.Duration) clock.Timer {
	t := &Timer{c: c, ch: make(chan time.Time, 1), index: -1}
	c.mu.Lock()
	c.startLocked(t, time.Now().Add(d))
	c.mu.Unlock()
	return t
}

// AfterFunc returns a timer that calls f once d has passed (at once for
// d <= 0). f runs on the Clock's own goroutine, with none of the Clock's
// locks held: it may use the Clock and its timers (Reset its own timer),
// and it delays every other timer of the Clock while it runs, so it must
// be short. The timer's C is nil. A Stop or Reset racing with the expiry
// may find the timer no longer pending while f is about to run, as with
// time.AfterFunc.
func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &Timer{c: c, fn: f, index: -1}
	c.mu.Lock()
	c.startLocked(t, time.Now().Add(d))
	c.mu.Unlock()
	return t
}

// UnlockedFuncs marks that AfterFunc runs its callbacks with none of the
// Clock's locks held (vrrp.FuncClock).
func (*Clock) UnlockedFuncs() {}

// Timer is one timer of a Clock (clock.Timer). As time.Timer since Go 1.23,
// Stop and Reset discard a value that was delivered but not yet received.
type Timer struct {
	c      *Clock
	ch     chan time.Time
	when   time.Time
	index  int           // in c.timers; -1 when not pending. Guarded by c.mu.
	period time.Duration // a ticker's period; 0 for a timer
	fn     func()        // an AfterFunc timer's callback; nil for a channel timer
}

// C returns the channel the timer delivers on.
func (t *Timer) C() <-chan time.Time { return t.ch }

// Stop stops the timer; it reports whether the timer was pending.
func (t *Timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	pending := t.index >= 0
	if pending {
		heap.Remove(&t.c.timers, t.index)
		t.c.rearmLocked()
	}
	t.drain()
	return pending
}

// Reset makes the timer fire after d; it reports whether it was pending.
func (t *Timer) Reset(d time.Duration) bool {
	when := time.Now().Add(d)
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	pending := t.index >= 0
	if pending {
		heap.Remove(&t.c.timers, t.index)
	}
	t.drain()
	t.c.startLocked(t, when)
	return pending
}

// rearmLocked sets the timerfd to the earliest pending deadline when it
// holds another one. Moving a deadline later (a backup's master-down timer
// is reset at every advert it receives) costs a raw timerfd_settime, which
// wakes no thread; leaving the old deadline armed would wake the loop for
// nothing, about 30 times a second at 10 ms adverts. c.mu is held.
func (c *Clock) rearmLocked() {
	if c.closed || c.firing {
		return
	}
	var next time.Time
	if len(c.timers) > 0 {
		next = c.timers[0].when
	}
	if !next.Equal(c.armed) {
		c.armLocked(next)
	}
}

// drain discards a delivered value nobody received.
func (t *Timer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// startLocked makes t pending at when and keeps the timerfd armed for the
// earliest deadline. c.mu is held.
func (c *Clock) startLocked(t *Timer, when time.Time) {
	t.when = when
	if c.closed {
		return
	}
	heap.Push(&c.timers, t)
	c.rearmLocked()
}

// armLocked sets the timerfd to expire at when (zero: disarm it). c.mu is
// held.
func (c *Clock) armLocked(when time.Time) {
	c.armed = when
	c.spec = unix.ItimerSpec{}
	if !when.IsZero() {
		d := time.Until(when)
		if d < time.Nanosecond {
			d = time.Nanosecond // zero would disarm it
		}
		c.spec.Value = unix.NsecToTimespec(int64(d))
	}
	c.serr = 0
	err := c.rc.Control(c.setFn)
	if err == nil && c.serr != 0 {
		err = c.serr
	}
	if err != nil {
		// Only a closed descriptor fails here, and the timerfd is closed
		// only after c.closed is set; say so loudly rather than leave
		// every timer silent.
		panic(fmt.Sprintf("timerfd: arming: %v", err))
	}
}

// set is timerfd_settime(2) of c.spec, relative. c.mu is held.
func (c *Clock) set(fd uintptr) {
	_, _, c.serr = unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&c.spec)), 0, 0, 0)
}

// read is one non-blocking read(2) of the timerfd (the expiration count,
// which is not needed: due timers are found by their deadlines); false:
// wait for it to be readable.
func (c *Clock) read(fd uintptr) bool {
	_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&c.buf[0])), uintptr(len(c.buf)))
	for e == unix.EINTR {
		_, _, e = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&c.buf[0])), uintptr(len(c.buf)))
	}
	return e != unix.EAGAIN
}

// loop waits for the timerfd and delivers the due timers until Close.
func (c *Clock) loop() {
	defer close(c.done)
	for {
		if err := c.rc.Read(c.readFn); err != nil {
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			// A timerfd that is not closed cannot fail to be waited on.
			panic(fmt.Sprintf("timerfd: waiting: %v", err))
		}
		c.fire()
	}
}

// fire delivers every due timer and arms the timerfd for the next one,
// then runs the due AfterFunc callbacks, unlocked.
func (c *Clock) fire() {
	c.wakeups.Add(1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	c.firing = true
	for len(c.timers) > 0 && !c.timers[0].when.After(now) {
		t := c.timers[0]
		if t.fn != nil {
			c.due = append(c.due, t.fn)
		} else {
			select {
			case t.ch <- now:
			default: // a ticker nobody reads: drop the tick, as time.Ticker does
			}
		}
		if t.period > 0 {
			t.when = t.when.Add(t.period)
			if !t.when.After(now) {
				t.when = now.Add(t.period)
			}
			heap.Fix(&c.timers, 0)
		} else {
			heap.Pop(&c.timers)
		}
	}
	c.mu.Unlock()
	for i, f := range c.due {
		c.due[i] = nil
		f()
	}
	c.due = c.due[:0]
	c.mu.Lock()
	c.firing = false
	// Armed for a deadline now past: forget it so that rearmLocked sets
	// the timerfd even when the earliest deadline is unchanged.
	c.armed = time.Time{}
	c.rearmLocked()
	c.mu.Unlock()
}

// timerHeap orders pending timers by deadline (container/heap).
type timerHeap []*Timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
