package vip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	nslab "github.com/vipvs/vipvs/test/lab"
)

// lab is one fresh network namespace holding a veth pair (vip0, vip1), both
// up, removed with everything in it when the test ends.
type lab struct {
	ns netns.NsHandle
	h  *netlink.Handle
}

func newLab(t *testing.T) *lab {
	t.Helper()
	nslab.RequireRoot(t)
	ns := nslab.NewNetNS(t)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in the test namespace: %v", err)
	}
	t.Cleanup(h.Close)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vip0"}, PeerName: "vip1"}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("adding veth: %v", err)
	}
	for _, n := range []string{"vip0", "vip1"} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatalf("link %s: %v", n, err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatalf("link %s up: %v", n, err)
		}
	}
	return &lab{ns: ns, h: h}
}

// addrs returns the addresses on ifname of the family of p with their flags.
func (l *lab) addrs(t *testing.T, ifname string) map[netip.Prefix]int {
	t.Helper()
	link, err := l.h.LinkByName(ifname)
	if err != nil {
		t.Fatalf("link %s: %v", ifname, err)
	}
	list, err := l.h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("listing addresses on %s: %v", ifname, err)
	}
	out := map[netip.Prefix]int{}
	for _, a := range list {
		if p, ok := toPrefix(a.IPNet); ok {
			out[p] = a.Flags
		}
	}
	return out
}

func (l *lab) addrAdd(t *testing.T, ifname string, p netip.Prefix, flags int) {
	t.Helper()
	link, err := l.h.LinkByName(ifname)
	if err != nil {
		t.Fatalf("link %s: %v", ifname, err)
	}
	if err := l.h.AddrAdd(link, &netlink.Addr{IPNet: toIPNet(p), Flags: flags}); err != nil {
		t.Fatalf("adding %s on %s: %v", p, ifname, err)
	}
}

func (l *lab) addrDel(t *testing.T, ifname string, p netip.Prefix) {
	t.Helper()
	link, err := l.h.LinkByName(ifname)
	if err != nil {
		t.Fatalf("link %s: %v", ifname, err)
	}
	if err := l.h.AddrDel(link, &netlink.Addr{IPNet: toIPNet(p)}); err != nil {
		t.Fatalf("deleting %s from %s: %v", p, ifname, err)
	}
}

// option sets one of the options New leaves at their defaults.
type option func(*options)

func withResyncInterval(d time.Duration) option { return func(o *options) { o.resync = d } }

func withClock(c clock.WithTicker) option { return func(o *options) { o.clock = c } }

func withOnRestore(f func(ifname string, vip netip.Prefix)) option {
	return func(o *options) { o.onRestore = f }
}

// newManager returns a Manager working in the lab's namespace.
func newManager(t *testing.T, l *lab, opts ...option) *Manager {
	t.Helper()
	o := options{ns: l.ns, nsSet: true}
	for _, opt := range opts {
		opt(&o)
	}
	m, err := newWithOptions(testr.New(t), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// has reports whether vip (address and prefix length) is on the interface
// ifname.
func (m *Manager) has(ifname string, vip netip.Prefix) (bool, error) {
	if err := checkPrefix(vip); err != nil {
		return false, fmt.Errorf("looking up VIP %s on %s: %w", vip, ifname, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ok, err := m.hasLocked(ifname, vip)
	if err != nil {
		return false, fmt.Errorf("looking up VIP %s on %s: %w", vip, ifname, err)
	}
	return ok, nil
}

// heldOn returns the VIPs the Manager holds on ifname, sorted.
func (m *Manager) heldOn(ifname string) []netip.Prefix {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []netip.Prefix
	for k := range m.held {
		if k.ifname == ifname {
			out = append(out, k.vip)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

// run starts m.Run and stops it (and waits for it) when the test ends.
func run(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 5s waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustHas(t *testing.T, m *Manager, ifname string, p netip.Prefix) bool {
	t.Helper()
	ok, err := m.has(ifname, p)
	if err != nil {
		t.Fatalf("Has(%s, %s): %v", ifname, p, err)
	}
	return ok
}

func TestAddRemoveHas(t *testing.T) {
	l := newLab(t)
	m := newManager(t, l)
	for _, s := range []string{"192.0.2.100/32", "192.0.2.101/24", "2001:db8::100/64", "2001:db8::101/128"} {
		t.Run(s, func(t *testing.T) {
			vip := netip.MustParsePrefix(s)
			if mustHas(t, m, "vip0", vip) {
				t.Fatalf("Has before Add = true")
			}
			for i := range 2 {
				if err := m.Add("vip0", vip); err != nil {
					t.Fatalf("Add #%d: %v", i+1, err)
				}
			}
			if !mustHas(t, m, "vip0", vip) {
				t.Fatalf("Has after Add = false")
			}
			flags, ok := l.addrs(t, "vip0")[vip]
			if !ok {
				t.Fatalf("%s not in the kernel's list", vip)
			}
			if vip.Addr().Is6() {
				if flags&unix.IFA_F_TENTATIVE != 0 || flags&unix.IFA_F_NODAD == 0 {
					t.Errorf("flags = %#x, want nodad and not tentative", flags)
				}
			}
			if other := netip.PrefixFrom(vip.Addr(), vip.Bits()-1); mustHas(t, m, "vip0", other) {
				t.Errorf("Has(%s) = true, want false (another prefix length)", other)
			}
			for i := range 2 {
				if err := m.Remove("vip0", vip); err != nil {
					t.Fatalf("Remove #%d: %v", i+1, err)
				}
			}
			if mustHas(t, m, "vip0", vip) {
				t.Fatalf("Has after Remove = true")
			}
			if got := m.heldOn("vip0"); len(got) != 0 {
				t.Errorf("Held after Remove = %v, want none", got)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	l := newLab(t)
	m := newManager(t, l)
	vip := netip.MustParsePrefix("192.0.2.100/24")
	err := m.Add("nosuch0", vip)
	if want := "adding VIP 192.0.2.100/24 on nosuch0: "; err == nil || err.Error()[:len(want)] != want {
		t.Errorf("Add on a missing interface: error %v, want prefix %q", err, want)
	}
	if got := m.heldOn("nosuch0"); len(got) != 0 {
		t.Errorf("failed Add marked held: %v", got)
	}
	if err := m.Remove("nosuch0", vip); err != nil {
		t.Errorf("Remove from a missing interface: %v, want nil", err)
	}
	if err := m.Add("vip0", netip.Prefix{}); err == nil {
		t.Errorf("Add of an invalid prefix: no error")
	}
}

func TestRemoveStale(t *testing.T) {
	l := newLab(t)
	m := newManager(t, l)
	// Leftovers of a crashed agent, with other prefix lengths than configured,
	// next to the node's own addresses, which must stay.
	l.addrAdd(t, "vip0", netip.MustParsePrefix("192.0.2.11/24"), 0)
	l.addrAdd(t, "vip0", netip.MustParsePrefix("192.0.2.100/32"), 0)
	l.addrAdd(t, "vip0", netip.MustParsePrefix("2001:db8::100/128"), unix.IFA_F_NODAD)
	l.addrAdd(t, "vip1", netip.MustParsePrefix("192.0.2.100/32"), 0) // another interface

	// 192.0.2.102 is held by this manager: not stale.
	held := netip.MustParsePrefix("192.0.2.102/24")
	if err := m.Add("vip0", held); err != nil {
		t.Fatal(err)
	}
	got, err := m.RemoveStale("vip0", []netip.Prefix{
		netip.MustParsePrefix("192.0.2.100/24"),
		netip.MustParsePrefix("2001:db8::100/64"),
		netip.MustParsePrefix("192.0.2.101/24"), // absent
		held,
	})
	if err != nil {
		t.Fatalf("RemoveStale: %v", err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.100/32"), netip.MustParsePrefix("2001:db8::100/128")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("RemoveStale returned (-want +got):\n%s", diff)
	}
	left := l.addrs(t, "vip0")
	for _, s := range []string{"192.0.2.11/24", "192.0.2.102/24"} {
		if _, ok := left[netip.MustParsePrefix(s)]; !ok {
			t.Errorf("%s was removed, want kept", s)
		}
	}
	for _, p := range want {
		if _, ok := left[p]; ok {
			t.Errorf("%s still on vip0", p)
		}
	}
	if _, ok := l.addrs(t, "vip1")[netip.MustParsePrefix("192.0.2.100/32")]; !ok {
		t.Errorf("192.0.2.100/32 removed from vip1, want only vip0 touched")
	}
	// Nothing left: a second call removes nothing.
	got, err = m.RemoveStale("vip0", []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")})
	if err != nil || len(got) != 0 {
		t.Errorf("second RemoveStale = %v, %v; want nothing, nil", got, err)
	}
}

// TestRestore deletes held VIPs behind the manager's back (as NetworkManager
// does) and waits until Run has put them back; the resync interval is an
// hour on a fake clock, so only the netlink notification can do it.
func TestRestore(t *testing.T) {
	l := newLab(t)
	var restores atomic.Int32
	fc := clocktesting.NewFakeClock(time.Now())
	m := newManager(t, l, withClock(fc), withResyncInterval(time.Hour),
		withOnRestore(func(string, netip.Prefix) { restores.Add(1) }))
	run(t, m)

	for _, s := range []string{"192.0.2.100/24", "2001:db8::100/64"} {
		t.Run(s, func(t *testing.T) {
			vip := netip.MustParsePrefix(s)
			if err := m.Add("vip0", vip); err != nil {
				t.Fatal(err)
			}
			before := restores.Load()
			l.addrDel(t, "vip0", vip)
			waitFor(t, "the deleted VIP to be put back", func() bool { return mustHas(t, m, "vip0", vip) })
			waitFor(t, "the restore hook", func() bool { return restores.Load() == before+1 })
			if flags := l.addrs(t, "vip0")[vip]; vip.Addr().Is6() && flags&unix.IFA_F_TENTATIVE != 0 {
				t.Errorf("restored IPv6 VIP is tentative (flags %#x)", flags)
			}
		})
	}
}

// TestRemovedNotRestored checks that a VIP released with Remove stays away.
// Run handles notifications in order, so once a later deletion of another
// held VIP has been repaired, the RTM_DELADDR of the removed one has been
// seen too.
func TestRemovedNotRestored(t *testing.T) {
	l := newLab(t)
	m := newManager(t, l, withResyncInterval(50*time.Millisecond))
	run(t, m)

	// Host prefixes: with /24 both, deleting the first (primary) address
	// would make the kernel delete the second (secondary) one too.
	gone := netip.MustParsePrefix("192.0.2.100/32")
	marker := netip.MustParsePrefix("192.0.2.101/32")
	for _, p := range []netip.Prefix{gone, marker} {
		if err := m.Add("vip0", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Remove("vip0", gone); err != nil {
		t.Fatal(err)
	}
	l.addrDel(t, "vip0", marker)
	waitFor(t, "the marker VIP to be put back", func() bool { return mustHas(t, m, "vip0", marker) })
	// Consistently, over several 50 ms resync periods, the removed VIP stays away.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if mustHas(t, m, "vip0", gone) {
			t.Fatalf("removed VIP %s was put back", gone)
		}
	}
}

// TestResyncRestores checks the periodic path: a VIP deleted while Run was
// not running (its notification is lost) is put back by Run's first check.
func TestResyncRestores(t *testing.T) {
	l := newLab(t)
	m := newManager(t, l, withClock(clocktesting.NewFakeClock(time.Now())), withResyncInterval(time.Hour))
	vip := netip.MustParsePrefix("2001:db8::100/64")
	if err := m.Add("vip0", vip); err != nil {
		t.Fatal(err)
	}
	l.addrDel(t, "vip0", vip)
	run(t, m)
	waitFor(t, "the VIP to be put back by the resync", func() bool { return mustHas(t, m, "vip0", vip) })
}

// TestDefaultNamespace checks that New (no namespace option) the manager's handle
// works in the namespace of the thread that called New, from any thread.
func TestDefaultNamespace(t *testing.T) {
	l := newLab(t)
	m := func() *Manager {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		defer orig.Close()
		if err := netns.Set(l.ns); err != nil {
			t.Fatal(err)
		}
		m, err := New(testr.New(t))
		if serr := netns.Set(orig); serr != nil {
			t.Fatalf("restoring namespace: %v", serr) // thread stays locked and dies
		}
		runtime.UnlockOSThread()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}()
	t.Cleanup(func() { _ = m.Close() })
	vip := netip.MustParsePrefix("192.0.2.100/32")
	if err := m.Add("vip0", vip); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.addrs(t, "vip0")[vip]; !ok {
		t.Fatalf("VIP not in the lab namespace")
	}
	if _, err := net.InterfaceByName("vip0"); err == nil {
		t.Fatalf("vip0 visible in the test's own namespace")
	}
}

// TestResyncRestoresAmongMany: the resync lists each interface's addresses
// once per family and still restores every missing VIP of both families,
// and only those.
func TestResyncRestoresAmongMany(t *testing.T) {
	l := newLab(t)
	m := newManager(t, l, withClock(clocktesting.NewFakeClock(time.Now())), withResyncInterval(time.Hour))
	vips := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.10/32"),
		netip.MustParsePrefix("192.0.2.11/32"),
		netip.MustParsePrefix("192.0.2.12/32"),
		netip.MustParsePrefix("2001:db8::100/64"),
		netip.MustParsePrefix("2001:db8::101/64"),
	}
	for _, v := range vips {
		if err := m.Add("vip0", v); err != nil {
			t.Fatal(err)
		}
	}
	l.addrDel(t, "vip0", vips[1])
	l.addrDel(t, "vip0", vips[4])
	run(t, m)
	waitFor(t, "every VIP to be put back by the resync", func() bool {
		for _, v := range vips {
			if !mustHas(t, m, "vip0", v) {
				return false
			}
		}
		return true
	})
}
