package agent

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/vipvs/vipvs/agent/arpwatch"
)

// fakeARPWatch is an ARPWatch whose claims the test injects.
type fakeARPWatch struct {
	claims chan arpwatch.Sighting
	fail   chan error

	mu     sync.Mutex
	probes []netip.Addr
	closed bool
}

func newFakeARPWatch() *fakeARPWatch {
	return &fakeARPWatch{claims: make(chan arpwatch.Sighting), fail: make(chan error, 1)}
}

func (w *fakeARPWatch) Run(ctx context.Context, watched func(netip.Addr) bool, seen func(arpwatch.Sighting)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.fail:
			return err
		case s := <-w.claims:
			if watched(s.Addr) {
				seen(s)
			}
		}
	}
}

func (w *fakeARPWatch) Probe(a netip.Addr) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.probes = append(w.probes, a)
	return nil
}

func (w *fakeARPWatch) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

func (w *fakeARPWatch) state() ([]netip.Addr, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]netip.Addr(nil), w.probes...), w.closed
}

// TestARPSharesOneWatcherPerInterface: the routers of an interface share one
// watcher; each hears only the claims of its own VIPs; only masters probe;
// the last release closes it; a failed socket is re-opened.
func TestARPSharesOneWatcherPerInterface(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	var (
		mu     sync.Mutex
		opened []*fakeARPWatch
	)
	var wg sync.WaitGroup
	shares := &arpShares{
		open: func(ifname string) (ARPWatch, error) {
			mu.Lock()
			defer mu.Unlock()
			w := newFakeARPWatch()
			opened = append(opened, w)
			return w, nil
		},
		clk:   clk,
		group: func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() },
		log:   logr.Discard(),
		byIf:  map[string]*arpShare{},
	}
	watchers := func() []*fakeARPWatch {
		mu.Lock()
		defer mu.Unlock()
		return append([]*fakeARPWatch(nil), opened...)
	}
	vip1, vip2 := netip.MustParseAddr("192.0.2.101"), netip.MustParseAddr("192.0.2.102")
	type heard struct {
		mu  sync.Mutex
		got []netip.Addr
	}
	var h1, h2 heard
	var active1 sync.Mutex
	isActive1 := true
	sub := func(vip netip.Addr, h *heard, active func() bool) *arpSub {
		return &arpSub{
			vips:   []netip.Addr{vip},
			active: active,
			claimed: func(s arpwatch.Sighting) {
				h.mu.Lock()
				h.got = append(h.got, s.Addr)
				h.mu.Unlock()
			},
			neighbor: func(netip.Addr, net.HardwareAddr) {},
		}
	}
	s1 := sub(vip1, &h1, func() bool { active1.Lock(); defer active1.Unlock(); return isActive1 })
	s2 := sub(vip2, &h2, func() bool { return false })
	sh1, err := shares.acquire("eth0")
	if err != nil {
		t.Fatal(err)
	}
	sh1.add(s1)
	sh2, err := shares.acquire("eth0")
	if err != nil {
		t.Fatal(err)
	}
	sh2.add(s2)
	if sh1 != sh2 || len(watchers()) != 1 {
		t.Fatalf("two routers on eth0 opened %d watchers, want 1 shared", len(watchers()))
	}
	w := watchers()[0]
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	w.claims <- arpwatch.Sighting{Addr: vip2, MAC: mac}
	w.claims <- arpwatch.Sighting{Addr: netip.MustParseAddr("192.0.2.200"), MAC: mac}
	w.claims <- arpwatch.Sighting{Addr: vip1, MAC: mac} // Run has handled the first two when this is taken
	waitUntil(t, "the claims to be dispatched", func() bool {
		h1.mu.Lock()
		defer h1.mu.Unlock()
		return len(h1.got) == 1
	})
	h2.mu.Lock()
	if len(h2.got) != 1 || h2.got[0] != vip2 {
		t.Errorf("router 2 heard %v, want only %v", h2.got, vip2)
	}
	h2.mu.Unlock()

	// Only the master probes, for its own VIPs.
	waitUntil(t, "a probe", func() bool {
		clk.Step(arpProbeEvery)
		probes, _ := w.state()
		return len(probes) > 0
	})
	if probes, _ := w.state(); probes[0] != vip1 {
		t.Errorf("probed %v, want only %v (the master's VIP)", probes, vip1)
	}

	// A failed socket (interface gone) is re-opened.
	w.fail <- errors.New("network is down")
	waitUntil(t, "the watcher to be re-opened", func() bool {
		clk.Step(arpReopenAfter)
		return len(watchers()) == 2
	})
	if _, closed := w.state(); !closed {
		t.Error("the failed watcher was not closed")
	}
	w2 := watchers()[1]
	w2.claims <- arpwatch.Sighting{Addr: vip1, MAC: mac}
	w2.claims <- arpwatch.Sighting{Addr: vip1, MAC: mac}
	waitUntil(t, "a claim through the new socket", func() bool {
		h1.mu.Lock()
		defer h1.mu.Unlock()
		return len(h1.got) >= 2
	})

	shares.release(sh1, s1)
	if _, closed := w2.state(); closed {
		t.Fatal("the watcher closed while a router still uses it")
	}
	shares.release(sh2, s2)
	if _, closed := w2.state(); !closed {
		t.Fatal("the last release did not close the watcher")
	}
	wg.Wait() // the reading and probing goroutines end with the last release
	if len(shares.byIf) != 0 {
		t.Errorf("shares left: %v", shares.byIf)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
