package vrrp

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
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
}

// Observer is told of every transition, after the actions that came with it
// have been carried out. It must not block (the notify hooks queue).
type Observer func(Transition, uint8)

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
}

// Runner drives one Router: it owns its timer, feeds it events and carries out
// its actions. Create it with NewRunner and start it with Run.
type Runner struct {
	router *Router
	cfg    Config
	clk    clock.Clock
	send   Sender
	vips   VIPHolder
	log    logr.Logger
	events chan Event
	obs    Observer

	mu     sync.Mutex
	status Status
}

// RunnerOption configures a Runner.
type RunnerOption func(*Runner)

// WithObserver sets a function told of every transition.
func WithObserver(o Observer) RunnerOption { return func(r *Runner) { r.obs = o } }

// NewRunner returns a runner for a router with cfg. log should carry the
// router's name and VRID already.
func NewRunner(cfg Config, send Sender, vips VIPHolder, clk clock.Clock, log logr.Logger, opts ...RunnerOption) *Runner {
	r := &Runner{
		router: New(cfg),
		cfg:    cfg,
		clk:    clk,
		send:   send,
		vips:   vips,
		log:    log,
		// Large enough for a burst of adverts at 10 ms from several peers
		// while an action (a netlink call) is in progress.
		events: make(chan Event, 256),
	}
	for _, o := range opts {
		o(r)
	}
	r.status = Status{State: Initialize, Priority: cfg.Priority, Since: clk.Now()}
	return r
}

// Deliver queues an event (a validated advert, a priority change, a fault).
// It never blocks: when the queue is full the event is dropped and counted.
func (r *Runner) Deliver(ev Event) {
	select {
	case r.events <- ev:
	default:
		r.mu.Lock()
		r.status.EventsDropped++
		r.mu.Unlock()
	}
}

// Status returns a snapshot of the router.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Run starts the router and runs it until ctx is cancelled, then shuts it down
// gracefully: an Active router advertises priority 0 and keeps its VIPs until
// another router is Active (bounded by the Master_Down_Interval of the lowest
// priority), then releases them. Run returns when the router is stopped.
// Cancel hardStop to give up the hand-over early; the VIPs are released then.
func (r *Runner) Run(ctx context.Context, hardStop <-chan struct{}) error {
	if r.step(Startup{}) {
		return nil
	}
	timer := r.clk.NewTimer(time.Hour)
	defer timer.Stop()
	shutdown := ctx.Done()
	for {
		deadline := r.router.Deadline()
		if !timer.Stop() {
			select {
			case <-timer.C():
			default:
			}
		}
		if deadline.IsZero() {
			timer.Reset(time.Hour)
		} else {
			timer.Reset(deadline.Sub(r.clk.Now()))
		}
		select {
		case <-shutdown:
			shutdown = nil
			if r.step(Shutdown{}) {
				return nil
			}
		case <-hardStop:
			r.log.Info("hand-over cut short, releasing the VIPs")
			if err := r.vips.Release(); err != nil {
				r.log.Error(err, "releasing the VIPs")
			}
			return nil
		case ev := <-r.events:
			if r.step(ev) {
				return nil
			}
		case <-timer.C():
			r.checkStall(deadline)
			if r.step(TimerFired{}) {
				return nil
			}
		}
	}
}

// checkStall notices a timer that fired much later than asked: a paused or
// starved process. Only the monotonic clock is used.
func (r *Runner) checkStall(deadline time.Time) {
	if deadline.IsZero() {
		return
	}
	late := r.clk.Since(deadline)
	if late <= r.cfg.AdvertInterval && late <= 500*time.Millisecond {
		return
	}
	r.mu.Lock()
	r.status.Stalls++
	r.mu.Unlock()
	r.log.Info("timer fired late: the process was paused or starved", "late", late.String(), "state", r.router.State().String())
}

// step handles one event and carries out the actions; it reports whether the
// router has stopped.
func (r *Runner) step(ev Event) bool {
	now := r.clk.Now()
	if adv, ok := ev.(AdvertReceived); ok && r.log.V(1).Enabled() {
		r.log.V(1).Info("advert received", "peer", adv.Src.String(), "priority", adv.Priority, "interval", adv.Interval.String())
	}
	actions := r.router.Handle(now, ev)
	stopped := false
	var transitions []Transition
	for _, a := range actions {
		switch a := a.(type) {
		case SendAdvert:
			r.mu.Lock()
			r.status.AdvertsSent++
			r.mu.Unlock()
			if err := r.send.SendAdvert(a.Priority, a.Interval); err != nil {
				r.mu.Lock()
				r.status.SendErrors++
				first := r.status.SendErrors == 1
				r.mu.Unlock()
				if first || r.log.V(1).Enabled() {
					r.log.Error(err, "sending advert", "priority", a.Priority)
				}
			}
		case AcquireVIPs:
			if err := r.vips.Acquire(); err != nil {
				r.log.Error(err, "acquiring the VIPs")
			}
		case ReleaseVIPs:
			if err := r.vips.Release(); err != nil {
				r.log.Error(err, "releasing the VIPs")
			}
		case Reannounce:
			r.log.Info("another router claimed to be active with a lower priority; announcing the VIPs again")
			if err := r.vips.Reannounce(); err != nil {
				r.log.Error(err, "re-announcing the VIPs")
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
	master, _ := r.router.Master()
	r.mu.Lock()
	r.status.State = r.router.State()
	r.status.Priority = r.router.Priority()
	r.status.Master = master
	for _, t := range transitions {
		r.status.Transitions++
		r.status.LastTransition = t
		r.status.Since = now
	}
	r.mu.Unlock()
	if r.obs != nil {
		for _, t := range transitions {
			r.obs(t, r.router.Priority())
		}
	}
	return stopped
}
