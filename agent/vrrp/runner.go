package vrrp

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Sender sends this router's advertisements.
type Sender interface {
	// SendAdvert sends one advertisement with this priority and interval.
	SendAdvert(priority uint8, interval time.Duration) error
}

// VIPHolder takes and releases the router's VIPs.
type VIPHolder interface {
	// Acquire adds the VIPs to the interface and starts announcing them.
	Acquire() error
	// Release stops announcing and removes the VIPs.
	Release() error
	// Reannounce announces the VIPs again at once.
	Reannounce() error
	// StopAnnouncing cancels the pending announcements; the VIPs stay.
	StopAnnouncing() error
}

// Observer is told of every transition, after the actions that came with it
// have been carried out. It must not block (the notify hooks queue).
type Observer func(Transition, uint8)

// Reporter is told of every advert the state machine dropped and of every
// alarm (impostor, duplicate owner, stall). It must not block.
type Reporter interface {
	Dropped(Dropped)
	Alarm(Alarm)
}

// Status is a snapshot of a runner, for the status endpoint and metrics.
type Status struct {
	State          State
	Priority       uint8
	Master         netip.Addr // invalid when unknown
	Since          time.Time  // when State was entered
	LastTransition Transition
	Transitions    uint64
	AdvertsSent    uint64
	SendErrors     uint64
	EventsDropped  uint64
	Stalls         uint64
	// Drops counts the adverts the state machine dropped, by reason.
	Drops map[DropReason]uint64
}

// Clock is what a Runner needs of a clock (k8s.io/utils/clock's RealClock,
// or FakeClock in tests).
type Clock = clock.Clock

// FuncClock is a Clock whose AfterFunc runs its callback on a goroutine of
// the clock's own, with none of the clock's locks held (agent/timerfd's
// Clock). A Runner on such a clock handles its timer's expiries right on
// that goroutine, as HandleAdvert handles adverts on the reader's: at 10 ms
// adverts a hand-off to Run's goroutine per expiry costs a thread wake-up.
// Other clocks (k8s.io/utils/clock's FakeClock runs AfterFunc callbacks
// under its lock) deliver expiries on the timer's channel to Run.
type FuncClock interface {
	Clock
	clock.WithDelayedExecution
	// UnlockedFuncs marks the clock; it does nothing.
	UnlockedFuncs()
}

// Runner drives one Router: it owns its timer, feeds it events and carries out
// its actions. Create it with NewRunner and start it with Run.
//
// Adverts are handled synchronously by HandleAdvert, on the goroutine that
// read them: at 10 ms intervals a hand-off to another goroutine per packet
// costs more CPU than the packet itself. Every event is handled under one
// mutex, so the Router sees them one at a time; the timer is re-armed after
// every event, and Run's goroutine waits for it (or, on a FuncClock, the
// clock's goroutine handles it).
type Runner struct {
	cfg    Config
	clk    Clock
	send   Sender
	vips   VIPHolder
	log    logr.Logger
	events chan Event
	obs    Observer
	rep    Reporter

	mu     sync.Mutex // guards everything below, and the Router
	router *Router
	timer  clock.Timer
	armed  time.Time // the deadline the timer was armed for
	// eager re-arms the timer whenever the deadline moves later (on a
	// FuncClock, whose Reset costs a system call and wakes no thread).
	eager bool
	// stallSeen is the armed deadline whose lateness noticeStall reported
	// (fire does not report it again).
	stallSeen time.Time
	started   bool
	finished  bool
	stopped   chan struct{} // closed when the router has stopped
	status    Status
	state     atomic.Int32 // State, readable without the mutex
	// release is the pending delayed release of the VIPs (ReleaseVIPs.After),
	// nil when there is none.
	release *delayedRelease
	// logged is when each alarm (kind and peer) was last logged: an alarm
	// is logged once per change, not on every repeat.
	logged map[string]time.Time
}

// delayedRelease is a release of the VIPs that waits for its linger.
type delayedRelease struct {
	timer clock.Timer
	stop  chan struct{}
}

// RunnerOption configures a Runner.
type RunnerOption func(*Runner)

// WithObserver sets a function told of every transition.
func WithObserver(o Observer) RunnerOption { return func(r *Runner) { r.obs = o } }

// WithReporter sets who is told of dropped adverts and alarms.
func WithReporter(rep Reporter) RunnerOption { return func(r *Runner) { r.rep = rep } }

// NewRunner returns a runner for a router with cfg. log should carry the
// router's name and VRID already.
func NewRunner(cfg Config, send Sender, vips VIPHolder, clk Clock, log logr.Logger, opts ...RunnerOption) *Runner {
	r := &Runner{
		router:  New(cfg),
		cfg:     cfg,
		clk:     clk,
		send:    send,
		vips:    vips,
		log:     log,
		events:  make(chan Event, 64),
		stopped: make(chan struct{}),
		logged:  map[string]time.Time{},
	}
	for _, o := range opts {
		o(r)
	}
	r.status = Status{State: Initialize, Priority: cfg.Priority, Since: clk.Now(), Drops: map[DropReason]uint64{}}
	return r
}

// State returns the current state; cheaper than Status.
func (r *Runner) State() State { return State(r.state.Load()) }

// Deliver queues a control event (a priority change, a fault, a preemption
// hold) for the runner's goroutine. It never blocks: when the queue is full
// the event is dropped and counted.
func (r *Runner) Deliver(ev Event) {
	select {
	case r.events <- ev:
	default:
		r.mu.Lock()
		r.status.EventsDropped++
		r.mu.Unlock()
	}
}

// HandleAdvert handles a validated advert now, on the caller's goroutine.
// Before Run has started the router, or after it stopped, it does nothing.
func (r *Runner) HandleAdvert(adv AdvertReceived) {
	if r.log.V(1).Enabled() {
		r.log.V(1).Info("advert received", "peer", adv.Src.String(), "priority", adv.Priority, "interval", adv.Interval.String())
	}
	r.noticeStall()
	r.handle(adv)
}

// noticeStall reports a stall that an advert reveals before the timer
// does: the armed deadline passed long ago (the process was paused or
// starved) and the advert is handled first. On a FuncClock the timer
// follows the deadline (arm), so the advert may re-arm it before the late
// expiry that fire would have measured.
func (r *Runner) noticeStall() {
	r.mu.Lock()
	armed := r.armed
	r.mu.Unlock()
	if armed.IsZero() || !r.clk.Now().After(armed) {
		return
	}
	if late, stalled := r.checkStall(armed); stalled {
		r.mu.Lock()
		r.stallSeen = armed
		r.mu.Unlock()
		r.handle(Stalled{Late: late})
	}
}

// Status returns a snapshot of the router.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	st.Drops = make(map[DropReason]uint64, len(r.status.Drops))
	for k, v := range r.status.Drops {
		st.Drops[k] = v
	}
	return st
}

// Run starts the router and runs it until ctx is cancelled, then shuts it down
// gracefully: an Active router advertises priority 0 and keeps its VIPs until
// another router is Active (bounded by the Master_Down_Interval of the lowest
// priority), then releases them. Run returns when the router is stopped.
// Close hardStop to give up the hand-over early; the VIPs are released then.
func (r *Runner) Run(ctx context.Context, hardStop <-chan struct{}) error {
	r.mu.Lock()
	r.started = true
	if fc, ok := r.clk.(FuncClock); ok {
		r.timer = fc.AfterFunc(time.Hour, r.fire)
		r.eager = true
	} else {
		r.timer = r.clk.NewTimer(time.Hour)
	}
	r.timer.Stop()
	timerC := r.timer.C() // nil for an AfterFunc timer
	r.mu.Unlock()
	r.handle(Startup{})
	shutdown := ctx.Done()
	for {
		select {
		case <-r.stopped:
			return nil
		case <-shutdown:
			shutdown = nil
			r.handle(Shutdown{})
		case <-hardStop:
			r.log.Info("stopping at once without a hand-over to another node (second signal, or a successor on this node takes over); releasing the VIPs not passed on")
			r.mu.Lock()
			r.cancelReleaseLocked()
			r.finish()
			r.mu.Unlock()
			if err := r.vips.Release(); err != nil {
				r.log.Error(err, "releasing the VIPs")
			}
			return nil
		case ev := <-r.events:
			r.handle(ev)
		case <-timerC:
			r.fire()
		}
	}
}

// fire handles the timer, on Run's goroutine or a FuncClock's. An
// expiry that raced with a Reset (the timer fires before the new deadline)
// is harmless: the router ignores a TimerFired before its deadline.
func (r *Runner) fire() {
	r.mu.Lock()
	armed := r.armed
	// The timer is spent: whatever the router decides, arm it again.
	r.armed = time.Time{}
	seen := r.stallSeen.Equal(armed)
	r.mu.Unlock()
	if seen {
		armed = time.Time{} // noticeStall reported this expiry's lateness
	}
	if late, stalled := r.checkStall(armed); stalled {
		r.handle(Stalled{Late: late})
	}
	r.handle(TimerFired{})
}

// checkStall notices a timer that fired much later than asked: a paused or
// starved process. Only the monotonic clock is used.
func (r *Runner) checkStall(deadline time.Time) (time.Duration, bool) {
	if deadline.IsZero() {
		return 0, false
	}
	late := r.clk.Since(deadline)
	if late <= r.cfg.AdvertInterval && late <= 500*time.Millisecond {
		return late, false
	}
	r.mu.Lock()
	r.status.Stalls++
	r.mu.Unlock()
	return late, true
}

// finish stops the timer and marks the runner finished. r.mu is held.
func (r *Runner) finish() {
	if r.finished {
		return
	}
	r.finished = true
	r.timer.Stop()
	close(r.stopped)
}

// arm sets the timer to the router's deadline. r.mu is held.
//
// On a FuncClock (agent/timerfd) the timer follows the deadline exactly: a
// Reset there is one timerfd_settime and wakes no thread, while an early
// expiry wakes the clock's goroutine. On other clocks a deadline that moved
// later leaves the timer alone: it fires early, the router ignores a
// TimerFired before its deadline, and fire arms it again. A Backup at 10 ms
// adverts pushes its deadline back on every advert, and re-arming a Go timer
// each time costs a wake-up of the runtime's poller; this way the timer is
// touched once per Master_Down_Interval instead.
//
// Timer.Reset is safe from any goroutine, and since Go 1.23 a stopped or
// reset timer delivers no stale tick; a fake clock's may, which fire
// tolerates in the same way.
func (r *Runner) arm(now time.Time) {
	deadline := r.router.Deadline()
	switch {
	case deadline.Equal(r.armed):
		return
	case deadline.IsZero():
		r.armed = deadline
		r.timer.Stop()
	case !r.eager && !r.armed.IsZero() && deadline.After(r.armed):
		// Fires early; fire re-arms.
	default:
		r.armed = deadline
		if !r.eager {
			r.timer.Stop()
		}
		r.timer.Reset(deadline.Sub(now))
	}
}

// handle handles one event and carries out the actions, under the mutex.
func (r *Runner) handle(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || r.finished {
		return
	}
	now := r.clk.Now()
	actions := r.router.Handle(now, ev)
	stopped := false
	var transitions []Transition
	for _, a := range actions {
		switch a := a.(type) {
		case SendAdvert:
			r.status.AdvertsSent++
			if err := r.send.SendAdvert(a.Priority, a.Interval); err != nil {
				r.status.SendErrors++
				if r.status.SendErrors == 1 || r.log.V(1).Enabled() {
					r.log.Error(err, "sending advert", "priority", a.Priority)
				}
			}
		case AcquireVIPs:
			r.cancelReleaseLocked()
			if err := r.vips.Acquire(); err != nil {
				r.log.Error(err, "acquiring the VIPs")
			}
		case ReleaseVIPs:
			r.cancelReleaseLocked()
			if a.After > 0 {
				r.releaseLaterLocked(a.After)
				continue
			}
			if err := r.vips.Release(); err != nil {
				r.log.Error(err, "releasing the VIPs")
			}
		case Reannounce:
			r.logOnce(now, "reannounce", "announcing the VIPs again: another router claimed them or we were stalled")
			if err := r.vips.Reannounce(); err != nil {
				r.log.Error(err, "re-announcing the VIPs")
			}
		case StopAnnouncing:
			if err := r.vips.StopAnnouncing(); err != nil {
				r.log.Error(err, "stopping the announcements")
			}
		case Dropped:
			r.status.Drops[a.Reason]++
			if r.rep != nil {
				r.rep.Dropped(a)
			}
		case Alarm:
			r.logOnce(now, string(a.Kind)+"/"+a.Peer, a.Detail, "alarm", string(a.Kind), "peer", a.Peer)
			if r.rep != nil {
				r.rep.Alarm(a)
			}
		case Transition:
			r.log.Info("state changed", "from", a.From.String(), "to", a.To.String(), "priority", r.router.Priority(), "reason", a.Reason)
			transitions = append(transitions, a)
		case Stopped:
			stopped = true
		default:
			panic(fmt.Sprintf("vrrp: unknown action %T", a))
		}
	}
	r.state.Store(int32(r.router.State()))
	master, _ := r.router.Master()
	r.status.State = r.router.State()
	r.status.Priority = r.router.Priority()
	r.status.Master = master
	for _, t := range transitions {
		r.status.Transitions++
		r.status.LastTransition = t
		r.status.Since = now
	}
	if r.obs != nil {
		for _, t := range transitions {
			r.obs(t, r.router.Priority())
		}
	}
	if stopped {
		if r.release != nil {
			// A stopping router does not leave a release behind it.
			r.cancelReleaseLocked()
			if err := r.vips.Release(); err != nil {
				r.log.Error(err, "releasing the VIPs")
			}
		}
		r.finish()
		return
	}
	r.arm(now)
}

// alarmQuiet is how long an alarm or re-announcement of the same kind and
// peer stays unlogged after it was logged.
const alarmQuiet = time.Minute

// logOnce logs msg unless the same key was logged within alarmQuiet. r.mu
// is held.
func (r *Runner) logOnce(now time.Time, key, msg string, kv ...any) {
	if last, ok := r.logged[key]; ok && now.Sub(last) < alarmQuiet {
		return
	}
	for k, t := range r.logged {
		if now.Sub(t) >= alarmQuiet {
			delete(r.logged, k)
		}
	}
	r.logged[key] = now
	r.log.Info(msg, kv...)
}

// releaseLaterLocked releases the VIPs after d unless cancelled first (by
// an acquire or another release). r.mu is held.
func (r *Runner) releaseLaterLocked(d time.Duration) {
	dr := &delayedRelease{timer: r.clk.NewTimer(d), stop: make(chan struct{})}
	r.release = dr
	go func() {
		select {
		case <-dr.stop:
			return
		case <-dr.timer.C():
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.release != dr {
			return
		}
		r.release = nil
		r.log.V(1).Info("releasing the VIPs after the linger", "linger", d)
		if err := r.vips.Release(); err != nil {
			r.log.Error(err, "releasing the VIPs")
		}
	}()
}

// cancelReleaseLocked cancels a pending delayed release. r.mu is held.
func (r *Runner) cancelReleaseLocked() {
	if r.release == nil {
		return
	}
	r.release.timer.Stop()
	close(r.release.stop)
	r.release = nil
}
