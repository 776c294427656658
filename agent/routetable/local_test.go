package routetable

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// localRoutes lists the routes of protocol proto in the local table.
func (n *testNS) localRoutes(t *testing.T, proto int) []route {
	t.Helper()
	var out []route
	for _, r := range n.routes(t, unix.RT_TABLE_LOCAL) {
		if r.protocol == proto {
			out = append(out, r)
		}
	}
	return out
}

// waitLocal waits until the local table holds exactly want of protocol.
func (n *testNS) waitLocal(t *testing.T, want []route) {
	t.Helper()
	slices.SortFunc(want, func(a, b route) int { return strings.Compare(a.String(), b.String()) })
	deadline := time.Now().Add(waitFor)
	for {
		got := n.localRoutes(t, protocol)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("local table, protocol %d = %v, want %v", protocol, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func localRoute(a netip.Addr) route {
	return route{prefix: netip.PrefixFrom(a, a.BitLen()), table: unix.RT_TABLE_LOCAL, protocol: protocol, dev: "lo"}
}

// acceptsTCP reports whether a TCP listener on addr in ns can be bound and
// connected to from ns: the node treats addr as its own.
func acceptsTCP(ns netns.NsHandle, addr netip.Addr) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with us
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		if err != nil {
			errc <- err
			return
		}
		defer ln.Close()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
		if err != nil {
			errc <- err
			return
		}
		c.Close()
		errc <- nil
	}()
	return <-errc
}

// LocalVIPs holds VIPs as local routes (no interface address) that the
// node accepts traffic for, removes the stale ones of its protocol, puts
// back a deleted one, refuses a VIP that is an address, and removes its
// routes when Run ends.
func TestLocalVIPs(t *testing.T) {
	n := newNS(t)
	stale := netip.MustParseAddr("203.0.113.99")
	// A crashed agent's route, and a foreign local route of another protocol.
	for _, r := range []*netlink.Route{
		{Dst: &net.IPNet{IP: stale.AsSlice(), Mask: net.CIDRMask(32, 32)}, Protocol: protocol},
		{Dst: &net.IPNet{IP: net.ParseIP("203.0.113.77").To4(), Mask: net.CIDRMask(32, 32)}, Protocol: 251},
	} {
		lo, err := n.nl.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		r.LinkIndex, r.Table, r.Type, r.Scope = lo.Attrs().Index, unix.RT_TABLE_LOCAL, unix.RTN_LOCAL, netlink.SCOPE_HOST
		if err := n.nl.RouteAdd(r); err != nil {
			t.Fatal(err)
		}
	}
	l, err := NewLocalVIPs(LocalConfig{Protocol: protocol, Resync: time.Hour, Namespace: &n.ns}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := acceptsTCP(n.ns, vip4); err == nil {
		t.Fatal("the namespace accepts the VIP before it is held")
	}
	// RemoveStale before Run removes the stale copy of a configured VIP.
	removed, err := l.RemoveStale("lo", []netip.Prefix{netip.PrefixFrom(stale, 32), netip.PrefixFrom(vip4, 32)})
	if err != nil || !slices.Equal(removed, []netip.Prefix{netip.PrefixFrom(stale, 32)}) {
		t.Fatalf("RemoveStale = %v, %v; want [%v]", removed, err, stale)
	}
	if err := l.Add("lo", netip.PrefixFrom(vip4, 32)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitRunning(t, l.w)
	if err := l.Add("lo", netip.PrefixFrom(vip6, 64)); err != nil { // the address counts, not the bits
		t.Fatal(err)
	}
	n.waitLocal(t, []route{localRoute(vip4), localRoute(vip6)})
	if got := n.localRoutes(t, 251); len(got) != 1 {
		t.Errorf("the foreign local route was touched: %v", got)
	}
	// (IPv4: bind itself follows the local table. IPv6 binds only
	// addresses; its packets are delivered locally all the same.)
	if err := acceptsTCP(n.ns, vip4); err != nil {
		t.Errorf("the namespace does not accept %s held as a local route: %v", vip4, err)
	}
	// No interface address: zebra would make a connected route of it.
	addrs, err := n.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ip, _ := netip.AddrFromSlice(a.IP); ip.Unmap() == vip4 || ip == vip6 {
			t.Errorf("the VIP is an interface address: %v", a)
		}
	}

	// Deleted by someone: put back by the notification (resync is an hour).
	lo, err := n.nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	krs, err := n.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_LOCAL, Protocol: protocol}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil || len(krs) != 1 {
		t.Fatalf("the IPv4 local routes of protocol %d: %v, %v", protocol, krs, err)
	}
	if err := n.nl.RouteDel(&krs[0]); err != nil {
		t.Fatal(err)
	}
	n.waitLocal(t, []route{localRoute(vip4), localRoute(vip6)})

	// A VIP that is an interface address is reported, not overwritten.
	addr := netip.MustParseAddr("203.0.113.20")
	if err := n.nl.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Add("lo", netip.PrefixFrom(addr, 32)); err == nil || !strings.Contains(err.Error(), "already local") {
		t.Errorf("Add of an interface address = %v, want an error saying it is already local", err)
	}
	if err := l.Remove("lo", netip.PrefixFrom(addr, 32)); err != nil {
		t.Fatal(err)
	}

	if err := l.Remove("lo", netip.PrefixFrom(vip4, 32)); err != nil {
		t.Fatal(err)
	}
	n.waitLocal(t, []route{localRoute(vip6)})
	if err := acceptsTCP(n.ns, vip4); err == nil {
		t.Error("the namespace still accepts the removed VIP")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	done <- nil
	n.waitLocal(t, nil)
	if got := n.localRoutes(t, 251); len(got) != 1 {
		t.Errorf("the foreign local route was touched at the end: %v", got)
	}
}

func TestLocalConfig(t *testing.T) {
	for _, c := range []LocalConfig{{Protocol: 2}, {Resync: -time.Second}} {
		if _, err := NewLocalVIPs(c, testr.New(t)); err == nil {
			t.Errorf("NewLocalVIPs(%+v) = nil error", c)
		}
	}
}
