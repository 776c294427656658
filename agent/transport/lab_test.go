package transport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The lab: one namespace per node, each with an "eth0" veth whose other end
// sits on a bridge in a switch namespace. Everything is created with netlink
// handles bound to the namespaces, and removed by t.Cleanup.

const (
	labIf       = "eth0"
	waitTimeout = 10 * time.Second
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths, a bridge and raw sockets")
	}
}

type lab struct {
	t      *testing.T
	prefix string
	swH    *netlink.Handle
	bridge netlink.Link
	nextID int
}

type node struct {
	name    string
	ns      netns.NsHandle
	h       *netlink.Handle
	port    string // the bridge port (in the switch namespace)
	ifIndex int
	v4      netip.Addr // 192.0.2.10+id, primary
	v4sec   netip.Addr // 192.0.2.110+id, secondary
	v6      netip.Addr // 2001:db8::10+id, nodad
	ll      netip.Addr // link-local (zero until known)
	mac     net.HardwareAddr
	hub     *Hub // opens its sockets in ns
}

type nodeOptions struct {
	// dad keeps IPv6 duplicate address detection on, and does not wait for
	// the link-local address.
	dad bool
	// hairpin reflects the node's own frames back to it at the bridge.
	hairpin bool
	// acceptLocal lets the node's IPv4 stack accept packets from its own
	// addresses (the kernel drops them as martians otherwise).
	acceptLocal bool
}

// newLab creates the switch namespace with a bridge.
func newLab(t *testing.T) *lab {
	t.Helper()
	requireRoot(t)
	l := &lab{t: t}
	var swNS netns.NsHandle
	for range 10 {
		// Short (IFNAMSIZ 15) and unique: pid plus random bits.
		l.prefix = fmt.Sprintf("vt%d%04x", os.Getpid()%1000, rand.IntN(1<<16))
		var err error
		swNS, err = newNamedNS(t, l.prefix+"sw")
		if err == nil {
			break
		}
		if !os.IsExist(err) {
			t.Fatalf("creating switch namespace: %v", err)
		}
	}
	if !swNS.IsOpen() {
		t.Fatal("creating switch namespace: no free name")
	}
	h, err := netlink.NewHandleAt(swNS)
	if err != nil {
		t.Fatalf("netlink handle in switch namespace: %v", err)
	}
	t.Cleanup(h.Close)
	l.swH = h
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}, MulticastSnooping: &off}
	if err := h.LinkAdd(br); err != nil {
		t.Fatalf("adding bridge: %v", err)
	}
	if l.bridge, err = h.LinkByName("br0"); err != nil {
		t.Fatalf("looking up bridge: %v", err)
	}
	if err := h.LinkSetUp(l.bridge); err != nil {
		t.Fatalf("bridge up: %v", err)
	}
	return l
}

// newNamedNS creates a named namespace without leaving the calling thread in
// it, and deletes it on cleanup.
func newNamedNS(t *testing.T, name string) (netns.NsHandle, error) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), fmt.Errorf("getting current namespace: %w", err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		// Leave the thread locked: it dies with the goroutine.
		t.Fatalf("restoring namespace: %v", serr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return netns.None(), err
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	})
	return ns, nil
}

// inNS runs fn on a thread switched into ns.
func inNS(t *testing.T, ns netns.NsHandle, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("getting current namespace: %v", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("entering namespace: %v", err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with the goroutine.
			t.Errorf("restoring namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

func sysctl(t *testing.T, ns netns.NsHandle, path, value string) {
	t.Helper()
	inNS(t, ns, func() {
		if err := os.WriteFile(filepath.Join("/proc/sys/net", path), []byte(value), 0o644); err != nil {
			t.Fatalf("sysctl %s=%s: %v", path, value, err)
		}
	})
}

// addNode creates a node namespace attached to the bridge, with eth0 up and
// its documentation addresses.
func (l *lab) addNode(opts nodeOptions) *node {
	t := l.t
	t.Helper()
	id := l.nextID
	l.nextID++
	suffix := string(rune('a' + id))
	n := &node{
		name:  l.prefix + suffix,
		port:  l.prefix + suffix,
		v4:    netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + id)}),
		v4sec: netip.AddrFrom4([4]byte{192, 0, 2, byte(110 + id)}),
		v6:    netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", 0x10+id)),
	}
	var err error
	if n.ns, err = newNamedNS(t, n.name); err != nil {
		t.Fatalf("creating namespace %s: %v", n.name, err)
	}
	if n.h, err = netlink.NewHandleAt(n.ns); err != nil {
		t.Fatalf("netlink handle in %s: %v", n.name, err)
	}
	t.Cleanup(n.h.Close)
	n.hub = NewHub(logr.Discard())
	t.Cleanup(func() { _ = n.hub.Close() })

	tmp := n.port + "p"
	if err := l.swH.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n.port}, PeerName: tmp}); err != nil {
		t.Fatalf("adding veth %s: %v", n.port, err)
	}
	peer, err := l.swH.LinkByName(tmp)
	if err != nil {
		t.Fatalf("looking up %s: %v", tmp, err)
	}
	if err := l.swH.LinkSetNsFd(peer, int(n.ns)); err != nil {
		t.Fatalf("moving %s to %s: %v", tmp, n.name, err)
	}
	link, err := n.h.LinkByName(tmp)
	if err != nil {
		t.Fatalf("looking up %s in %s: %v", tmp, n.name, err)
	}
	if err := n.h.LinkSetName(link, labIf); err != nil {
		t.Fatalf("renaming %s: %v", tmp, err)
	}
	n.mac = link.Attrs().HardwareAddr
	if !opts.dad {
		sysctl(t, n.ns, "ipv6/conf/"+labIf+"/accept_dad", "0")
	}
	if opts.acceptLocal {
		sysctl(t, n.ns, "ipv4/conf/"+labIf+"/accept_local", "1")
	}
	addrs := []*netlink.Addr{
		{IPNet: ipNet(n.v4, 24)},
		{IPNet: ipNet(n.v4sec, 24)}, // same subnet: becomes a secondary
		{IPNet: ipNet(n.v6, 64), Flags: unix.IFA_F_NODAD},
	}
	for _, a := range addrs {
		if err := n.h.AddrAdd(link, a); err != nil {
			t.Fatalf("adding %s to %s: %v", a, n.name, err)
		}
	}

	port, err := l.swH.LinkByName(n.port)
	if err != nil {
		t.Fatalf("looking up port %s: %v", n.port, err)
	}
	if err := l.swH.LinkSetMaster(port, l.bridge); err != nil {
		t.Fatalf("attaching %s to bridge: %v", n.port, err)
	}
	if opts.hairpin {
		if err := l.swH.LinkSetHairpin(port, true); err != nil {
			t.Fatalf("hairpin on %s: %v", n.port, err)
		}
	}
	if err := l.swH.LinkSetUp(port); err != nil {
		t.Fatalf("port %s up: %v", n.port, err)
	}
	if err := n.h.LinkSetUp(link); err != nil {
		t.Fatalf("%s up in %s: %v", labIf, n.name, err)
	}
	n.ifIndex = link.Attrs().Index
	if !opts.dad {
		n.ll = n.waitLinkLocal(t)
	}
	return n
}

// waitLinkLocal waits until eth0 has a non-tentative link-local address.
func (n *node) waitLinkLocal(t *testing.T) netip.Addr {
	t.Helper()
	var ll netip.Addr
	waitFor(t, "link-local address on "+n.name, func() bool {
		list, err := n.h.AddrList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: n.ifIndex}}, netlink.FAMILY_V6)
		if err != nil {
			t.Fatalf("listing addresses in %s: %v", n.name, err)
		}
		for _, a := range list {
			ip, _ := netip.AddrFromSlice(a.IP)
			if ip.IsLinkLocalUnicast() && a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
				ll = ip
				return true
			}
		}
		return false
	})
	return ll
}

// source returns the address a subscription of the family sends from by
// default.
func (n *node) source(ipv6 bool) netip.Addr {
	if ipv6 {
		return n.ll
	}
	return n.v4
}

// testVRID is the VRID the lab's subscriptions receive; msg puts it where
// every VRRP message carries it.
const testVRID = 42

// msg returns a payload for testVRID: a VRRP version/type byte, the VRID,
// then s.
func msg(s string) []byte { return append([]byte{0x31, testVRID}, s...) }

// sub is a subscription whose handler copies every packet to a channel.
type sub struct {
	*Sub
	ch chan Packet
}

// listen subscribes testVRID on the node's Hub inside its namespace and
// closes the subscription on cleanup.
func (n *node) listen(t *testing.T, opts Options) *sub {
	t.Helper()
	s, err := n.tryListen(t, opts)
	if err != nil {
		t.Fatalf("Subscribe in %s: %v", n.name, err)
	}
	return s
}

func (n *node) tryListen(t *testing.T, opts Options) (*sub, error) {
	t.Helper()
	if opts.Interface == "" {
		opts.Interface = labIf
	}
	s := &sub{ch: make(chan Packet, 64)}
	handler := func(p Packet) {
		// p is valid only until the handler returns: keep a copy.
		p.Payload = append([]byte(nil), p.Payload...)
		if p.SrcMAC != nil {
			p.SrcMAC = append(net.HardwareAddr(nil), p.SrcMAC...)
		}
		select {
		case s.ch <- p:
		default:
			t.Errorf("subscription in %s: packet from %s lost, channel full", n.name, p.Src)
		}
	}
	var err error
	inNS(t, n.ns, func() { s.Sub, err = n.hub.Subscribe(opts, testVRID, handler) })
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, nil
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

// waitFor polls cond until it holds, failing the test at the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// next waits for the next packet the subscription delivers, failing the
// test at the deadline.
func (s *sub) next(t *testing.T) Packet {
	t.Helper()
	select {
	case p := <-s.ch:
		return p
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %v waiting for a packet", waitTimeout)
		return Packet{}
	}
}
