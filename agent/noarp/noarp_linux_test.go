package noarp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vipvs/vipvs/test/lab"
)

// A node holds an address on lo. A client on its segment with an on-link
// route to that address asks for it by ARP: Linux answers (arp_ignore=0)
// and the client connects; with the guard the request is dropped and the
// client cannot resolve it; without the guard again it can.
func TestGuardDropsARPForItsAddresses(t *testing.T) {
	lab.RequireRoot(t)
	l := lab.NewT(t, lab.Options{Nodes: 1, Clients: 1})
	node, client := l.Node(1), l.Client(1)
	vip := netip.MustParseAddr("203.0.113.10")
	other := netip.MustParseAddr("203.0.113.11")
	for _, a := range []netip.Addr{vip, other} {
		lo, err := node.Netlink().LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Netlink().AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			t.Fatal(err)
		}
		eth, err := client.Netlink().LinkByName(lab.IfName)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Netlink().RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Scope: netlink.SCOPE_LINK,
			Dst: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			t.Fatal(err)
		}
	}
	stop, err := node.Serve(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	reach := func(a netip.Addr) bool {
		ok := false
		_ = client.Do(func() error {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(a, 8080).String(), 2*time.Second)
			if err == nil {
				ok = true
				c.Close()
			}
			return nil
		})
		// Forget the neighbour entry either way: the next try asks again.
		eth, _ := client.Netlink().LinkByName(lab.IfName)
		_ = client.Netlink().NeighDel(&netlink.Neigh{LinkIndex: eth.Attrs().Index, IP: a.AsSlice()})
		return ok
	}
	// The lab's segment may need a moment after its addresses and routes
	// are added.
	if err := lab.WaitFor(10*time.Second, "the client reaching the node's lo address on-link without the guard", func() (bool, error) {
		return reach(vip), nil
	}); err != nil {
		t.Fatal(err)
	}
	g := NewInNamespace("vipvs-noarp-test", int(node.NS()))
	if err := g.Set([]netip.Addr{vip}); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if reach(vip) {
		t.Error("with the guard the node still answered ARP for its guarded address")
	}
	if !reach(other) {
		t.Error("the guard dropped ARP for an address it does not guard")
	}
	if err := g.Set([]netip.Addr{vip}); err != nil { // unchanged: no write
		t.Fatal(err)
	}
	if err := g.Set(nil); err != nil {
		t.Fatal(err)
	}
	if !reach(vip) {
		t.Error("after Set(nil) the node still does not answer ARP")
	}
	if err := g.Set([]netip.Addr{netip.MustParseAddr("2001:db8::1")}); err == nil {
		t.Error("Set accepted an IPv6 address")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}
