package vrrp

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	clocktesting "k8s.io/utils/clock/testing"
)

// recorder is a Sender and VIPHolder that records what the runner asked for.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

func (r *recorder) SendAdvert(p uint8, _ time.Duration) error {
	if p == 0 {
		r.add("advert 0")
	} else {
		r.add("advert")
	}
	return nil
}
func (r *recorder) Acquire() error    { r.add("acquire"); return nil }
func (r *recorder) Release() error    { r.add("release"); return nil }
func (r *recorder) Reannounce() error { r.add("reannounce"); return nil }
func (r *recorder) StopAnnouncing() error {
	r.add("quiet")
	return nil
}

func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.log {
		if l == s {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or a second of real time has passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRunnerTakeoverAndGracefulStop(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	rec := &recorder{}
	var mu sync.Mutex
	var seen []Transition
	r := NewRunner(cfg(), rec, rec, clk, testr.New(t), WithObserver(func(tr Transition, _ uint8) {
		mu.Lock()
		seen = append(seen, tr)
		mu.Unlock()
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, nil) }()

	waitFor(t, "the runner to start its master down timer", func() bool { return r.Status().State == Backup && clk.HasWaiters() })
	clk.Step(3609375 * time.Microsecond)
	waitFor(t, "takeover after Master_Down_Interval", func() bool { return r.Status().State == Active })
	if !rec.has("acquire") || !rec.has("advert") {
		t.Fatalf("after takeover the runner did %v, want an advert and acquire", rec.log)
	}

	cancel()
	waitFor(t, "the priority-0 advert", func() bool { return rec.has("advert 0") })
	if rec.has("release") {
		t.Fatal("VIPs released before a successor was seen")
	}
	r.HandleAdvert(AdvertReceived{Src: lower, Priority: 50, Interval: time.Second})
	// The VIPs stay for the linger (one interval) after the successor's
	// advert; step the fake clock through it.
	for i := 0; i < 20 && !rec.has("release"); i++ {
		clk.Step(100 * time.Millisecond)
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("runner did not stop after the successor's advert")
	}
	if !rec.has("release") {
		t.Fatalf("VIPs not released on stop: %v", rec.log)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 4 || seen[2].To != Releasing || seen[3].To != Initialize {
		t.Fatalf("observer saw %v, want Backup, Active, Releasing, Initialize", seen)
	}
}

func TestRunnerHardStopReleases(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	rec := &recorder{}
	r := NewRunner(cfg(func(c *Config) { c.Priority = 255 }), rec, rec, clk, testr.New(t))
	ctx, cancel := context.WithCancel(context.Background())
	hard := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, hard) }()
	waitFor(t, "owner to become active", func() bool { return r.Status().State == Active })
	cancel()
	waitFor(t, "the priority-0 advert", func() bool { return rec.has("advert 0") })
	close(hard)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("runner did not stop on hard stop")
	}
	if !rec.has("release") {
		t.Fatalf("VIPs not released on hard stop: %v", rec.log)
	}
}

// TestRunnerYieldLingers: a master that steps down for a better router keeps
// its VIPs for the release linger (one interval, at least 100 ms), then
// releases them; becoming master again before then cancels the release.
func TestRunnerYieldLingers(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	rec := &recorder{}
	r := NewRunner(cfg(), rec, rec, clk, testr.New(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx, nil); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the master down timer", func() bool { return r.Status().State == Backup && clk.HasWaiters() })
	clk.Step(3609375 * time.Microsecond)
	waitFor(t, "takeover", func() bool { return r.Status().State == Active })

	r.HandleAdvert(AdvertReceived{Src: upper, Priority: 200, Interval: time.Second})
	if st := r.Status().State; st != Backup {
		t.Fatalf("state %v after a better advert, want Backup", st)
	}
	if rec.has("release") {
		t.Fatal("VIPs released at once on stepping down, want them kept for the linger")
	}
	clk.Step(999 * time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if rec.has("release") {
		t.Fatal("VIPs released before the linger (1 s at a 1 s interval) ended")
	}
	clk.Step(time.Millisecond)
	waitFor(t, "the release after the linger", func() bool { return rec.has("release") })
}
