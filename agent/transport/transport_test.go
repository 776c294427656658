package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

var addrComparer = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestMulticastGroup(t *testing.T) {
	if got, want := MulticastGroup(false), netip.MustParseAddr("224.0.0.18"); got != want {
		t.Errorf("MulticastGroup(false) = %s, want %s", got, want)
	}
	if got, want := MulticastGroup(true), netip.MustParseAddr("ff02::12"); got != want {
		t.Errorf("MulticastGroup(true) = %s, want %s", got, want)
	}
}

func TestDropReasonString(t *testing.T) {
	for r, want := range map[DropReason]string{DropSelf: "self", DropNotPeer: "peer", 7: "DropReason(7)"} {
		if got := r.String(); got != want {
			t.Errorf("DropReason(%d).String() = %q, want %q", uint8(r), got, want)
		}
	}
}

func TestMulticast(t *testing.T) {
	l := newLab(t)
	a, b := l.addNode(nodeOptions{}), l.addNode(nodeOptions{})
	tests := []struct {
		name    string
		ipv6    bool
		source  netip.Addr // configured on a; zero = default
		wantSrc netip.Addr
	}{
		{name: "ipv4 default source", wantSrc: a.v4},
		{name: "ipv4 secondary source forced by IP_PKTINFO", source: a.v4sec, wantSrc: a.v4sec},
		{name: "ipv6 link-local source", ipv6: true, wantSrc: a.ll},
		{name: "ipv6 global source forced by IPV6_PKTINFO", ipv6: true, source: a.v6, wantSrc: a.v6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := a.listen(t, Options{IPv6: tt.ipv6, Multicast: true, Source: tt.source})
			cb := b.listen(t, Options{IPv6: tt.ipv6, Multicast: true})
			if got := ca.Source(); got != tt.wantSrc {
				t.Fatalf("Source() = %s, want %s", got, tt.wantSrc)
			}
			group := MulticastGroup(tt.ipv6)
			payload := msg("advert " + tt.name)
			if err := ca.Write(payload, group); err != nil {
				t.Fatalf("Write: %v", err)
			}
			// TTL / hop limit 255 on the wire, the source forced per
			// packet, the frame's link-layer source.
			want := Packet{Payload: payload, Src: tt.wantSrc, Dst: group, TTL: 255, IfIndex: b.ifIndex, SrcMAC: a.mac}
			if diff := cmp.Diff(want, cb.next(t), addrComparer); diff != "" {
				t.Errorf("received packet (-want +got):\n%s", diff)
			}

			// Multicast loopback is off: b's reply is the first packet a's
			// subscription sees, its own advert never came back to it.
			if err := cb.Write(msg("reply"), group); err != nil {
				t.Fatalf("Write from b: %v", err)
			}
			if p := ca.next(t); p.Src != b.source(tt.ipv6) {
				t.Errorf("a received a packet from %s, want b's reply from %s", p.Src, b.source(tt.ipv6))
			}
			if got := ca.Dropped()[DropSelf]; got != 0 {
				t.Errorf("a dropped %d own packets, want 0 (multicast loopback must be off)", got)
			}
		})
	}
}

func TestUnicastPeers(t *testing.T) {
	l := newLab(t)
	a, b, c := l.addNode(nodeOptions{}), l.addNode(nodeOptions{}), l.addNode(nodeOptions{})
	tests := []struct {
		name string
		ipv6 bool
		dst  netip.Addr // b's address
	}{
		{name: "ipv4", dst: b.v4},
		{name: "ipv6 link-local", ipv6: true, dst: b.ll},
		{name: "ipv6 global", ipv6: true, dst: b.v6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := a.listen(t, Options{IPv6: tt.ipv6})
			cc := c.listen(t, Options{IPv6: tt.ipv6})
			// b knows a and one more peer that never speaks.
			other := netip.MustParseAddr("192.0.2.200")
			if tt.ipv6 {
				other = netip.MustParseAddr("fe80::200")
			}
			cb := b.listen(t, Options{IPv6: tt.ipv6, Peers: []netip.Addr{other, a.source(tt.ipv6)}})

			if err := cc.Write(msg("from a stranger"), tt.dst); err != nil {
				t.Fatalf("Write from c: %v", err)
			}
			waitFor(t, "b to drop c's packet as not from a peer", func() bool {
				return cb.Dropped()[DropNotPeer] == 1
			})
			payload := msg("from a peer")
			if err := ca.Write(payload, tt.dst); err != nil {
				t.Fatalf("Write from a: %v", err)
			}
			want := Packet{Payload: payload, Src: a.source(tt.ipv6), Dst: tt.dst, TTL: 255, IfIndex: b.ifIndex, SrcMAC: a.mac}
			if diff := cmp.Diff(want, cb.next(t), addrComparer); diff != "" {
				t.Errorf("received packet (-want +got):\n%s", diff)
			}
			wantDrops := map[DropReason]uint64{DropSelf: 0, DropNotPeer: 1}
			if diff := cmp.Diff(wantDrops, cb.Dropped()); diff != "" {
				t.Errorf("Dropped() (-want +got):\n%s", diff)
			}

			// SetPeers while running: c becomes a peer, a does not stay one.
			if err := cb.SetPeers([]netip.Addr{c.source(tt.ipv6)}); err != nil {
				t.Fatalf("SetPeers: %v", err)
			}
			if err := ca.Write(msg("from a, no longer a peer"), tt.dst); err != nil {
				t.Fatalf("Write from a: %v", err)
			}
			waitFor(t, "b to drop a's packet after SetPeers", func() bool {
				return cb.Dropped()[DropNotPeer] == 2
			})
			if err := cc.Write(msg("from c, now a peer"), tt.dst); err != nil {
				t.Fatalf("Write from c: %v", err)
			}
			if p := cb.next(t); p.Src != c.source(tt.ipv6) {
				t.Errorf("after SetPeers b received a packet from %s, want c's from %s", p.Src, c.source(tt.ipv6))
			}
		})
	}
}

func TestOwnPacketsNotDelivered(t *testing.T) {
	l := newLab(t)
	// The bridge reflects a's frames back to it, as a looping network would.
	a := l.addNode(nodeOptions{hairpin: true, acceptLocal: true})
	b := l.addNode(nodeOptions{})
	for _, ipv6 := range []bool{false, true} {
		t.Run(familyName(ipv6), func(t *testing.T) {
			ca := a.listen(t, Options{IPv6: ipv6, Multicast: true})
			cb := b.listen(t, Options{IPv6: ipv6, Multicast: true})
			group := MulticastGroup(ipv6)
			if err := ca.Write(msg("own"), group); err != nil {
				t.Fatalf("Write from a: %v", err)
			}
			waitFor(t, "a to drop its own reflected packet", func() bool {
				return ca.Dropped()[DropSelf] == 1
			})
			payload := msg("from b")
			if err := cb.Write(payload, group); err != nil {
				t.Fatalf("Write from b: %v", err)
			}
			if p := ca.next(t); string(p.Payload) != string(payload) || p.Src != b.source(ipv6) {
				t.Errorf("received %q from %s, want %q from %s", p.Payload, p.Src, payload, b.source(ipv6))
			}
		})
	}
}

// TestHubSharesSocketBetweenVRIDs: on real sockets, two VRIDs on one
// interface share a socket, each gets only its own packets, and closing one
// leaves the other receiving.
func TestHubSharesSocketBetweenVRIDs(t *testing.T) {
	l := newLab(t)
	a, b := l.addNode(nodeOptions{}), l.addNode(nodeOptions{})
	cb := b.listen(t, Options{Multicast: true})
	other := &sub{ch: make(chan Packet, 8)}
	var err error
	inNS(t, b.ns, func() {
		other.Sub, err = b.hub.Subscribe(Options{Interface: labIf, Multicast: true}, testVRID+1, func(p Packet) {
			select {
			case other.ch <- Packet{Payload: append([]byte(nil), p.Payload...), Src: p.Src}:
			default:
			}
		})
	})
	if err != nil {
		t.Fatalf("Subscribe VRID %d: %v", testVRID+1, err)
	}
	defer other.Close()
	if cb.shared != other.shared {
		t.Fatal("two VRIDs on one interface got two sockets")
	}
	ca := a.listen(t, Options{Multicast: true})
	group := MulticastGroup(false)
	for _, p := range [][]byte{msg("to 42"), {0x31, testVRID + 1, 'x'}, {0x31, testVRID + 2, 'y'}} {
		if err := ca.Write(p, group); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if p := cb.next(t); string(p.Payload) != string(msg("to 42")) {
		t.Errorf("VRID %d received %q", testVRID, p.Payload)
	}
	if p := other.next(t); p.Payload[1] != testVRID+1 {
		t.Errorf("VRID %d received a packet of VRID %d", testVRID+1, p.Payload[1])
	}
	if err := cb.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := ca.Write([]byte{0x31, testVRID + 1, 'z'}, group); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if p := other.next(t); len(p.Payload) < 3 || p.Payload[2] != 'z' {
		t.Errorf("after the other VRID closed, received %q, want the 'z' packet", p.Payload)
	}
	select {
	case p := <-cb.ch:
		t.Errorf("VRID %d received %q (and no other packet is expected)", testVRID, p.Payload)
	default:
	}
}

func TestSubscribeSource(t *testing.T) {
	l := newLab(t)
	a := l.addNode(nodeOptions{})
	// A second primary, added after the first: the default stays the first.
	other := netip.MustParseAddr("198.51.100.10")
	link, err := a.h.LinkByName(labIf)
	if err != nil {
		t.Fatalf("looking up %s: %v", labIf, err)
	}
	if err := a.h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(other, 24)}); err != nil {
		t.Fatalf("adding %s: %v", other, err)
	}
	tests := []struct {
		name      string
		opts      Options
		want      netip.Addr
		wantErrIs error
		wantErr   string // substring; the prefix is always checked
	}{
		{name: "ipv4 default is the first primary", opts: Options{}, want: a.v4},
		{name: "ipv4 explicit secondary", opts: Options{Source: a.v4sec}, want: a.v4sec},
		{name: "ipv4 explicit other primary", opts: Options{Source: other}, want: other},
		{name: "ipv4 mapped source is unmapped", opts: Options{Source: netip.AddrFrom16(a.v4.As16())}, want: a.v4},
		{name: "ipv6 default is link-local", opts: Options{IPv6: true}, want: a.ll},
		{name: "ipv6 explicit global", opts: Options{IPv6: true, Source: a.v6}, want: a.v6},
		{
			name:      "ipv4 source not on the interface",
			opts:      Options{Source: netip.MustParseAddr("192.0.2.99")},
			wantErrIs: ErrNoSource,
			wantErr:   "no usable source address: 192.0.2.99 is not on the interface",
		},
		{
			name:      "ipv6 source not on the interface",
			opts:      Options{IPv6: true, Source: netip.MustParseAddr("2001:db8::99")},
			wantErrIs: ErrNoSource,
			wantErr:   "2001:db8::99 is not on the interface",
		},
		{
			name:    "source of the other family",
			opts:    Options{Source: a.v6},
			wantErr: "source 2001:db8::10 is not an IPv4 address",
		},
		{
			name:    "peer of the other family",
			opts:    Options{IPv6: true, Peers: []netip.Addr{a.v4}},
			wantErr: "peer 192.0.2.10 is not an IPv6 address",
		},
		{name: "no such interface", opts: Options{Interface: "nosuch0"}, wantErr: "looking up interface"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := a.tryListen(t, tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Subscribe: %v", err)
				}
				if got := c.Source(); got != tt.want {
					t.Errorf("Source() = %s, want %s", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Subscribe succeeded with source %s, want error containing %q", c.Source(), tt.wantErr)
			}
			ifName := tt.opts.Interface
			if ifName == "" {
				ifName = labIf
			}
			prefix := fmt.Sprintf("transport: subscribing VRID %d on %s (%s): ", testVRID, ifName, familyName(tt.opts.IPv6))
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs) {
				t.Errorf("error %q does not wrap %q", err, tt.wantErrIs)
			}
		})
	}
}

func TestSubscribeInvalid(t *testing.T) {
	hb := NewHub(logr.Discard())
	defer hb.Close()
	tests := []struct {
		name string
		opts Options
		vrid uint8
		want string
	}{
		{"no interface", Options{}, 1, "transport: subscribing VRID 1 on  (IPv4): no interface given"},
		{"VRID 0", Options{Interface: "lo"}, 0, "transport: subscribing VRID 0 on lo (IPv4): VRID 0 is not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hb.Subscribe(tt.opts, tt.vrid, func(Packet) {})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Subscribe error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestWriteWrongFamily(t *testing.T) {
	l := newLab(t)
	a := l.addNode(nodeOptions{})
	c := a.listen(t, Options{})
	err := c.Write(msg("x"), MulticastGroup(true))
	if want := "transport: sending on eth0: destination ff02::12 is not an IPv4 address"; err == nil || err.Error() != want {
		t.Fatalf("Write error = %v, want %q", err, want)
	}
}

// TestSubscribeTentativeLinkLocal shows what the agent sees on a freshly
// brought-up interface with IPv6 duplicate address detection on: Subscribe fails
// with ErrTentative (or ErrNoSource before the link-local exists) until DAD is
// done, then succeeds.
func TestSubscribeTentativeLinkLocal(t *testing.T) {
	l := newLab(t)
	a := l.addNode(nodeOptions{dad: true})
	start := time.Now()
	var (
		c            *sub
		sawTentative bool
		lastErr      error
	)
	waitFor(t, "the link-local address to leave DAD", func() bool {
		var err error
		c, err = a.tryListen(t, Options{IPv6: true})
		switch {
		case err == nil:
			return true
		case errors.Is(err, ErrTentative):
			sawTentative = true
		case !errors.Is(err, ErrNoSource):
			t.Fatalf("Subscribe: %v", err)
		}
		lastErr = err
		return false
	})
	t.Logf("link-local %s usable after %v (last error: %v)", c.Source(), time.Since(start).Round(time.Millisecond), lastErr)
	if !sawTentative {
		t.Errorf("Subscribe never reported ErrTentative during DAD")
	}
	if !c.Source().IsLinkLocalUnicast() {
		t.Errorf("Source() = %s, want a link-local address", c.Source())
	}
}

// TestSocketReadAllocatesNothing proves, on a real packet socket, that
// reading a packet (recvfrom, the IP header, the link-layer source)
// allocates nothing.
func TestSocketReadAllocatesNothing(t *testing.T) {
	l := newLab(t)
	a, b := l.addNode(nodeOptions{}), l.addNode(nodeOptions{})
	// The Hub's own goroutine reads its sockets: read a socket of a's
	// opened as the Hub opens them.
	var (
		rc  rawConn
		err error
	)
	inNS(t, a.ns, func() {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName(labIf); err != nil {
			return
		}
		if rc, err = listenRaw(ifi, false); err != nil {
			return
		}
		err = rc.join()
	})
	if err != nil {
		t.Fatalf("opening a socket in %s: %v", a.name, err)
	}
	defer rc.Close()
	cb := b.listen(t, Options{Multicast: true})
	const runs = 100
	payload := msg("advert")
	// AllocsPerRun runs the function once more to warm up.
	for range runs + 1 {
		if err := cb.Write(payload, MulticastGroup(false)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	var mac net.HardwareAddr
	allocs := testing.AllocsPerRun(runs, func() {
		f, err := rc.read()
		if err != nil {
			t.Fatal(err)
		}
		mac = f.srcMAC
	})
	if allocs != 0 {
		t.Errorf("reading a packet allocates %.1f times, want 0", allocs)
	}
	if mac.String() != b.mac.String() {
		t.Errorf("source MAC %s, want %s", mac, b.mac)
	}
}

// TestSocketWriteAllocatesNothing proves, on real raw sockets of both
// families, that sending an advert (sendmsg with its address and control
// messages) allocates nothing.
func TestSocketWriteAllocatesNothing(t *testing.T) {
	l := newLab(t)
	a := l.addNode(nodeOptions{})
	payload := msg("advert")
	for _, ipv6 := range []bool{false, true} {
		c := a.listen(t, Options{IPv6: ipv6, Multicast: true})
		allocs := testing.AllocsPerRun(100, func() {
			if err := c.Write(payload, MulticastGroup(ipv6)); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: sending a packet allocates %.1f times, want 0", familyName(ipv6), allocs)
		}
	}
}
