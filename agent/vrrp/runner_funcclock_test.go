package vrrp

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/vipvs/vipvs/agent/timerfd"
)

// TestRunnerOnFuncClock: on a FuncClock (the agent's timerfd clock) the
// timer's expiries run the router on the clock's goroutine: it takes over
// after Master_Down_Interval, advertises every interval, and stops cleanly.
func TestRunnerOnFuncClock(t *testing.T) {
	clk, err := timerfd.New()
	if err != nil {
		t.Fatal(err)
	}
	defer clk.Close()
	var _ FuncClock = clk
	rec := &recorder{}
	r := NewRunner(cfg(func(c *Config) { c.AdvertInterval = 10 * time.Millisecond }), rec, rec, clk, testr.New(t))
	ctx, cancel := context.WithCancel(context.Background())
	hard := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, hard) }()
	waitFor(t, "takeover after Master_Down_Interval", func() bool { return r.State() == Active })
	sent := r.Status().AdvertsSent
	waitFor(t, "adverts every interval", func() bool { return r.Status().AdvertsSent >= sent+5 })
	cancel()
	waitFor(t, "the priority-0 advert", func() bool { return rec.has("advert 0") })
	close(hard)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("runner did not stop")
	}
	if !rec.has("acquire") || !rec.has("release") {
		t.Fatalf("the runner did %v, want acquire and release", rec.log)
	}
}

// TestRunnerStallSeenByAnAdvert: on a FuncClock the timer follows the
// deadline, so an advert handled after a pause may re-arm it before the late
// expiry comes; the pause must still be reported (once). The pause is made
// by blocking the clock's goroutine.
func TestRunnerStallSeenByAnAdvert(t *testing.T) {
	clk, err := timerfd.New()
	if err != nil {
		t.Fatal(err)
	}
	defer clk.Close()
	rec := &recorder{}
	r := NewRunner(cfg(func(c *Config) { c.AdvertInterval = 50 * time.Millisecond }), rec, rec, clk, testr.New(t))
	ctx, cancel := context.WithCancel(context.Background())
	hard := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, hard) }()
	defer func() { close(hard); <-done }()
	defer cancel()
	waitFor(t, "takeover after Master_Down_Interval", func() bool { return r.State() == Active })
	release := make(chan struct{})
	clk.AfterFunc(0, func() { <-release }) // the clock's goroutine pauses
	time.Sleep(600 * time.Millisecond)
	// A better router's advert arrives first: Active -> Backup re-arms the
	// timer for Master_Down_Interval.
	r.HandleAdvert(AdvertReceived{Src: upper, Priority: 200, Interval: 50 * time.Millisecond})
	close(release)
	time.Sleep(300 * time.Millisecond)
	if n := r.Status().Stalls; n != 1 {
		t.Errorf("%d stalls reported after a 600 ms pause, want 1", n)
	}
}
