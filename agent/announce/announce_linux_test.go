package announce

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vipvs/vipvs/test/lab"
)

// inNS runs f on a thread locked into ns.
func inNS(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Fatalf("restoring namespace: %v", err) // thread stays locked and dies
		}
		runtime.UnlockOSThread()
	}()
	f()
}

// newNS creates a network namespace (removed when the test ends) and a
// netlink handle in it.
func newNS(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	ns := lab.NewNetNS(t)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return ns, h
}

// pair is two namespaces joined by a veth: "a" (the announcer, eth0 with
// keepalived's n1 MAC) and "b" (the peer, peer0 with n2's MAC).
type pair struct {
	nsA, nsB netns.NsHandle
	hA, hB   *netlink.Handle
	macA     net.HardwareAddr
	llA      netip.Addr
}

var (
	macB   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	macOld = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
)

func newPair(t *testing.T) *pair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces (run the tests as root)")
	}
	p := &pair{macA: n1MAC}
	p.nsA, p.hA = newNS(t)
	p.nsB, p.hB = newNS(t)
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: "eth0", HardwareAddr: p.macA},
		PeerName:         "peer0",
		PeerHardwareAddr: macB,
		PeerNamespace:    netlink.NsFd(p.nsB),
	}
	if err := p.hA.LinkAdd(veth); err != nil {
		t.Fatalf("adding veth: %v", err)
	}
	// a's eth0 shares its name with the host's (and other labs') eth0 on
	// purpose; the peer's name is unique so that the test's own ndp.Conn
	// (which resolves the zone by name) finds it.
	// No DAD: the link-local address (the NA's source) is usable at once.
	for _, h := range []*netlink.Handle{p.hA, p.hB} {
		ns, name := p.nsA, ifname(h, p)
		if h == p.hB {
			ns = p.nsB
		}
		inNS(t, ns, func() {
			f := "/proc/sys/net/ipv6/conf/" + name + "/accept_dad"
			if err := os.WriteFile(f, []byte("0"), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
	addr := func(h *netlink.Handle, s string, flags int) {
		t.Helper()
		l, err := h.LinkByName(ifname(h, p))
		if err != nil {
			t.Fatal(err)
		}
		pfx := netip.MustParsePrefix(s)
		n := &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), pfx.Addr().BitLen())}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: n, Flags: flags}); err != nil {
			t.Fatalf("adding %s: %v", s, err)
		}
	}
	addr(p.hA, "192.0.2.11/24", 0)
	addr(p.hA, "192.0.2.100/32", 0)
	addr(p.hA, "2001:db8::11/64", unix.IFA_F_NODAD)
	addr(p.hA, "2001:db8::100/128", unix.IFA_F_NODAD)
	addr(p.hB, "192.0.2.12/24", 0)
	addr(p.hB, "2001:db8::12/64", unix.IFA_F_NODAD)
	for _, h := range []*netlink.Handle{p.hA, p.hB} {
		l, err := h.LinkByName(ifname(h, p))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the link-local addresses (carrier on a veth comes up async).
	for _, h := range []*netlink.Handle{p.hA, p.hB} {
		ll := waitLinkLocal(t, h, ifname(h, p))
		if h == p.hA {
			p.llA = ll
		}
	}
	return p
}

// ifname is the name of the veth end that h's namespace holds.
func ifname(h *netlink.Handle, p *pair) string {
	if h == p.hB {
		return "peer0"
	}
	return "eth0"
}

func waitLinkLocal(t *testing.T, h *netlink.Handle, name string) netip.Addr {
	t.Helper()
	var ll netip.Addr
	waitFor(t, "a usable link-local address on "+name, func() bool {
		l, err := h.LinkByName(name)
		if err != nil {
			return false
		}
		list, _ := h.AddrList(l, netlink.FAMILY_V6)
		for _, a := range list {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				ll = ip
				return true
			}
		}
		return false
	})
	return ll
}

// staleNeigh puts a STALE entry for ip with another MAC into b's table, as
// left by the previous master.
func (p *pair) staleNeigh(t *testing.T, ip netip.Addr) {
	t.Helper()
	l, err := p.hB.LinkByName("peer0")
	if err != nil {
		t.Fatal(err)
	}
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	if err := p.hB.NeighSet(&netlink.Neigh{
		LinkIndex: l.Attrs().Index, Family: fam, State: netlink.NUD_STALE,
		IP: ip.AsSlice(), HardwareAddr: macOld,
	}); err != nil {
		t.Fatalf("setting stale neighbour %s: %v", ip, err)
	}
	if got := p.neighMAC(t, ip); !bytes.Equal(got, macOld) {
		t.Fatalf("stale neighbour %s has MAC %s, want %s", ip, got, macOld)
	}
}

// neighMAC returns b's neighbour entry MAC for ip (nil if none).
func (p *pair) neighMAC(t *testing.T, ip netip.Addr) net.HardwareAddr {
	t.Helper()
	l, err := p.hB.LinkByName("peer0")
	if err != nil {
		t.Fatal(err)
	}
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	list, err := p.hB.NeighList(l.Attrs().Index, fam)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range list {
		if got, ok := netip.AddrFromSlice(n.IP); ok && got.Unmap() == ip {
			return n.HardwareAddr
		}
	}
	return nil
}

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

// listenARP opens a raw socket in b receiving every ARP frame on eth0.
func (p *pair) listenARP(t *testing.T) int {
	t.Helper()
	var fd int
	inNS(t, p.nsB, func() {
		ifi, err := net.InterfaceByName("peer0")
		if err != nil {
			t.Fatal(err)
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(etherTypeARP)))
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(etherTypeARP), Ifindex: ifi.Index}); err != nil {
			t.Fatal(err)
		}
		tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// readGARP returns the first ARP frame whose sender protocol address is vip.
func readGARP(t *testing.T, fd int, vip netip.Addr) []byte {
	t.Helper()
	buf := make([]byte, 1500)
	want := vip.As4()
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("waiting for the gratuitous ARP for %s: %v", vip, err)
		}
		if n >= 42 && bytes.Equal(buf[28:32], want[:]) {
			return append([]byte(nil), buf[:n]...)
		}
	}
}

func TestAnnounceIPv4(t *testing.T) {
	p := newPair(t)
	fd := p.listenARP(t)
	// Older than the ARP locktime (1 s) or not, a GARP must override it.
	p.staleNeigh(t, vip4)

	a := newInNetNS(t, "eth0", p.nsA)
	t.Cleanup(func() { a.Close() })
	if err := a.Announce([]netip.Addr{vip4}); err != nil {
		t.Fatalf("Announce: %v", err)
	}

	got := readGARP(t, fd, vip4)
	if want := capturedGARP(t); !samePadded(want, got) {
		t.Errorf("frame received by the peer differs from keepalived's (padding aside):\nwant % x\ngot  % x", want, got)
	}
	waitFor(t, "the peer's neighbour entry for 192.0.2.100 to move to the announcer's MAC", func() bool {
		return bytes.Equal(p.neighMAC(t, vip4), p.macA)
	})
}

func TestAnnounceIPv6(t *testing.T) {
	p := newPair(t)
	var c *ndp.Conn
	inNS(t, p.nsB, func() {
		ifi, err := net.InterfaceByName("peer0")
		if err != nil {
			t.Fatal(err)
		}
		c, _, err = ndp.Listen(ifi, ndp.LinkLocal)
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { c.Close() })
	if err := c.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	p.staleNeigh(t, vip6)

	a := newInNetNS(t, "eth0", p.nsA)
	t.Cleanup(func() { a.Close() })
	if err := a.Announce([]netip.Addr{vip6}); err != nil {
		t.Fatalf("Announce: %v", err)
	}

	for {
		m, cm, src, err := c.ReadFrom()
		if err != nil {
			t.Fatalf("waiting for the NA: %v", err)
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok || na.TargetAddress != vip6 {
			continue // e.g. the kernel's own neighbour discovery
		}
		if src.WithZone("") != p.llA {
			t.Errorf("source %s, want a's link-local %s", src, p.llA)
		}
		if cm == nil || cm.HopLimit != 255 || !cm.Dst.Equal(net.ParseIP("ff02::1")) {
			t.Errorf("control message %v, want hop limit 255 to ff02::1", cm)
		}
		if !na.Override || na.Solicited || na.Router {
			t.Errorf("flags O=%v S=%v R=%v, want O only", na.Override, na.Solicited, na.Router)
		}
		if len(na.Options) != 1 {
			t.Fatalf("options %v, want one target link-layer address", na.Options)
		}
		lla, ok := na.Options[0].(*ndp.LinkLayerAddress)
		if !ok || lla.Direction != ndp.Target || !bytes.Equal(lla.Addr, p.macA) {
			t.Errorf("option %#v, want target link-layer address %s", na.Options[0], p.macA)
		}
		break
	}
	waitFor(t, "the peer's neighbour entry for 2001:db8::100 to move to the announcer's MAC", func() bool {
		return bytes.Equal(p.neighMAC(t, vip6), p.macA)
	})
}

// TestAnnounceReopens checks that an Announcer survives its interface being
// deleted and created again (a new ifindex): the failed send drops the
// socket and the next announcement opens a new one.
func TestAnnounceReopens(t *testing.T) {
	p := newPair(t)
	a := newInNetNS(t, "eth0", p.nsA)
	t.Cleanup(func() { a.Close() })
	if err := a.Announce([]netip.Addr{vip4}); err != nil {
		t.Fatalf("first Announce: %v", err)
	}
	l, err := p.hA.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.hA.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	err = a.Announce([]netip.Addr{vip4})
	if err == nil {
		t.Fatal("Announce on a deleted interface: no error")
	}
	t.Logf("Announce on a deleted interface: %v", err)
	if errors.Is(err, unix.EPERM) {
		t.Fatalf("unexpected EPERM: %v", err)
	}
	// The interface comes back with the same name.
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer1"}
	if err := p.hA.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"eth0", "peer1"} {
		l, _ := p.hA.LinkByName(n)
		if err := p.hA.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	l, _ = p.hA.LinkByName("eth0")
	if err := p.hA.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: vip4.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Announce([]netip.Addr{vip4}); err != nil {
		t.Fatalf("Announce after the interface came back: %v", err)
	}
}

// newInNetNS returns an Announcer for ifname whose sockets are opened in
// the network namespace ns (the caller keeps ns open until the test ends).
func newInNetNS(t *testing.T, ifname string, ns netns.NsHandle) *Announcer {
	t.Helper()
	a, err := New(ifname, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	a.ns = ns
	return a
}

// TestPrepareOpensTheARPSocket: Prepare opens the socket, and the
// announcement that follows uses it (and still reaches the peer).
func TestPrepareOpensTheARPSocket(t *testing.T) {
	p := newPair(t)
	fd := p.listenARP(t)
	a := newInNetNS(t, "eth0", p.nsA)
	t.Cleanup(func() { a.Close() })
	if err := a.Prepare(false); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	a.mu.Lock()
	opened := a.garp
	a.mu.Unlock()
	if opened == nil {
		t.Fatal("Prepare(false) opened no ARP socket")
	}
	if err := a.Announce([]netip.Addr{vip4}); err != nil {
		t.Fatalf("Announce: %v", err)
	}
	readGARP(t, fd, vip4)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.garp != opened {
		t.Error("the announcement opened another socket instead of the prepared one")
	}
}
