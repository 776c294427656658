package agent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/vipvs/vipvs/agent/announce"
)

// TestVIPHolderAnnouncesBeforeAcquireReturns: Acquire sends the first
// announcement itself, right after adding the VIPs, rather than leaving it
// to the schedule's goroutine (a new master's VIP unannounced is a window in
// which the previous master forwards clients' connections to it with the VIP
// as their source, dropped as martians: docs/bootstrap.md); the schedule
// then counts it as the first of its burst.
func TestVIPHolderAnnouncesBeforeAcquireReturns(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	vips := newFakeVIPs()
	ann := &fakeAnnouncer{}
	var pending []func()
	vip := netip.MustParsePrefix("192.0.2.100/32")
	h := &vipHolder{
		ifname: "eth0", vips: []netip.Prefix{vip}, mgr: vips, ann: ann,
		schedule: announce.Schedule{Count: 3},
		clk:      clocktesting.NewFakeClock(time.Unix(0, 0)),
		log:      logr.Discard(), m: m, router: "api",
		// The schedule's goroutine does not run until the test says so.
		group: func(f func()) { pending = append(pending, f) },
	}
	if err := h.Acquire(); err != nil {
		t.Fatal(err)
	}
	if !vips.holds("eth0", vip) {
		t.Fatal("VIP not added")
	}
	if got := sent(ann); got != 1 {
		t.Fatalf("announcements when Acquire returned: %d, want 1 (sent by Acquire, not left to the schedule's goroutine)", got)
	}
	if len(pending) != 1 {
		t.Fatalf("%d schedule goroutines started, want 1", len(pending))
	}
	pending[0]() // the burst (no repeat, no refresh): returns after it
	if got := sent(ann); got != 3 {
		t.Fatalf("announcements after the schedule's burst: %d, want its count 3 (the first one included)", got)
	}

	// Reannounce sends a whole burst of its own.
	pending = nil
	if err := h.Reannounce(); err != nil {
		t.Fatal(err)
	}
	pending[0]()
	if got := sent(ann); got != 6 {
		t.Fatalf("announcements after Reannounce's burst: %d, want 3 + 3", got)
	}
}

func sent(a *fakeAnnouncer) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent
}

// TestRouterPreparesItsAnnouncer: a router opens its announcement socket
// when it starts, before it is master (the first announcement must follow
// the VIP at once; opening took 50-100 ms in the emulated VM).
func TestRouterPreparesItsAnnouncer(t *testing.T) {
	h := startAgent(t, testConfig("1", testRouter("r0", 1, "eth0", vip0)), nil)
	h.becomeMaster("r0", "eth0", vip0)
	h.anns.mu.Lock()
	defer h.anns.mu.Unlock()
	if len(h.anns.list) != 1 {
		t.Fatalf("%d announcers opened, want 1", len(h.anns.list))
	}
	a := h.anns.list[0]
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.prepared != 1 {
		t.Fatalf("announcer prepared %d times, want once, when the router started", a.prepared)
	}
}
