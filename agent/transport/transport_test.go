package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

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
			payload := []byte("advert " + tt.name)
			if err := ca.Write(payload, group); err != nil {
				t.Fatalf("Write: %v", err)
			}
			r := await(t, readAsync(t.Context(), cb))
			if r.err != nil {
				t.Fatalf("Read: %v", r.err)
			}
			want := Packet{Payload: payload, Src: tt.wantSrc, Dst: group, TTL: 255, IfIndex: b.ifIndex, SrcMAC: a.mac}
			if diff := cmp.Diff(want, r.p, addrComparer); diff != "" {
				t.Errorf("received packet (-want +got):\n%s", diff)
			}

			// Multicast loopback is off: b's reply is the first packet a's
			// socket sees, its own advert never came back to it.
			ch := readAsync(t.Context(), ca)
			if err := cb.Write([]byte("reply"), group); err != nil {
				t.Fatalf("Write from b: %v", err)
			}
			r = await(t, ch)
			if r.err != nil {
				t.Fatalf("Read on a: %v", r.err)
			}
			if r.p.Src != b.source(tt.ipv6) {
				t.Errorf("a received a packet from %s, want b's reply from %s", r.p.Src, b.source(tt.ipv6))
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
			ch := readAsync(t.Context(), cb)

			if err := cc.Write([]byte("from a stranger"), tt.dst); err != nil {
				t.Fatalf("Write from c: %v", err)
			}
			waitFor(t, "b to drop c's packet as not from a peer", func() bool {
				return cb.Dropped()[DropNotPeer] == 1
			})
			payload := []byte("from a peer")
			if err := ca.Write(payload, tt.dst); err != nil {
				t.Fatalf("Write from a: %v", err)
			}
			r := await(t, ch)
			if r.err != nil {
				t.Fatalf("Read: %v", r.err)
			}
			want := Packet{Payload: payload, Src: a.source(tt.ipv6), Dst: tt.dst, TTL: 255, IfIndex: b.ifIndex, SrcMAC: a.mac}
			if diff := cmp.Diff(want, r.p, addrComparer); diff != "" {
				t.Errorf("received packet (-want +got):\n%s", diff)
			}
			wantDrops := map[DropReason]uint64{DropSelf: 0, DropNotPeer: 1}
			if diff := cmp.Diff(wantDrops, cb.Dropped()); diff != "" {
				t.Errorf("Dropped() (-want +got):\n%s", diff)
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
			ch := readAsync(t.Context(), ca)
			group := MulticastGroup(ipv6)
			if err := ca.Write([]byte("own"), group); err != nil {
				t.Fatalf("Write from a: %v", err)
			}
			waitFor(t, "a to drop its own reflected packet", func() bool {
				return ca.Dropped()[DropSelf] == 1
			})
			payload := []byte("from b")
			if err := cb.Write(payload, group); err != nil {
				t.Fatalf("Write from b: %v", err)
			}
			r := await(t, ch)
			if r.err != nil {
				t.Fatalf("Read: %v", r.err)
			}
			if string(r.p.Payload) != string(payload) || r.p.Src != b.source(ipv6) {
				t.Errorf("Read = %q from %s, want %q from %s", r.p.Payload, r.p.Src, payload, b.source(ipv6))
			}
		})
	}
}

func TestReadReturnsOnContextDone(t *testing.T) {
	l := newLab(t)
	a, b := l.addNode(nodeOptions{}), l.addNode(nodeOptions{})
	ca := a.listen(t, Options{Multicast: true})
	cb := b.listen(t, Options{Multicast: true})
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		cancel  bool
		wantErr error
	}{
		{
			name:    "cancel",
			ctx:     func() (context.Context, context.CancelFunc) { return context.WithCancel(t.Context()) },
			cancel:  true,
			wantErr: context.Canceled,
		},
		{
			name: "deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(t.Context(), 50*time.Millisecond)
			},
			wantErr: context.DeadlineExceeded,
		},
		{
			name: "already done",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx, cancel
			},
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			ch := readAsync(ctx, ca)
			if tt.cancel {
				cancel()
			}
			if r := await(t, ch); !errors.Is(r.err, tt.wantErr) {
				t.Fatalf("Read error = %v, want %v", r.err, tt.wantErr)
			}
			// The Conn is still usable with a fresh context.
			ch = readAsync(t.Context(), ca)
			payload := []byte("after " + tt.name)
			if err := cb.Write(payload, MulticastGroup(false)); err != nil {
				t.Fatalf("Write: %v", err)
			}
			r := await(t, ch)
			if r.err != nil || string(r.p.Payload) != string(payload) {
				t.Fatalf("Read after %s = %q, %v; want %q", tt.name, r.p.Payload, r.err, payload)
			}
		})
	}

	t.Run("close", func(t *testing.T) {
		ch := readAsync(t.Context(), ca)
		if err := ca.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if r := await(t, ch); !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Read error after Close = %v, want net.ErrClosed", r.err)
		}
		if err := ca.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestListenSource(t *testing.T) {
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
					t.Fatalf("Listen: %v", err)
				}
				if got := c.Source(); got != tt.want {
					t.Errorf("Source() = %s, want %s", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Listen succeeded with source %s, want error containing %q", c.Source(), tt.wantErr)
			}
			ifName := tt.opts.Interface
			if ifName == "" {
				ifName = labIf
			}
			if prefix := "transport: opening VRRP socket on " + ifName + ": "; !strings.HasPrefix(err.Error(), prefix) {
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

func TestListenWithoutInterface(t *testing.T) {
	_, err := Listen(Options{})
	if err == nil || err.Error() != "transport: opening VRRP socket on : no interface given" {
		t.Fatalf("Listen(Options{}) error = %v", err)
	}
}

func TestWriteWrongFamily(t *testing.T) {
	l := newLab(t)
	a := l.addNode(nodeOptions{})
	c := a.listen(t, Options{})
	err := c.Write([]byte("x"), MulticastGroup(true))
	if want := "transport: sending on eth0: destination ff02::12 is not an IPv4 address"; err == nil || err.Error() != want {
		t.Fatalf("Write error = %v, want %q", err, want)
	}
}

// TestListenTentativeLinkLocal shows what the agent sees on a freshly
// brought-up interface with IPv6 duplicate address detection on: Listen fails
// with ErrTentative (or ErrNoSource before the link-local exists) until DAD is
// done, then succeeds.
func TestListenTentativeLinkLocal(t *testing.T) {
	l := newLab(t)
	a := l.addNode(nodeOptions{dad: true})
	start := time.Now()
	var (
		c            *Conn
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
			t.Fatalf("Listen: %v", err)
		}
		lastErr = err
		return false
	})
	t.Logf("link-local %s usable after %v (last error: %v)", c.Source(), time.Since(start).Round(time.Millisecond), lastErr)
	if !sawTentative {
		t.Errorf("Listen never reported ErrTentative during DAD")
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
	ca := a.listen(t, Options{Multicast: true})
	cb := b.listen(t, Options{Multicast: true})
	const runs = 100
	payload := []byte{0x31, 1, 100, 1, 0, 100, 0, 0, 192, 0, 2, 100}
	// AllocsPerRun runs the function once more to warm up.
	for range runs + 1 {
		if err := cb.Write(payload, MulticastGroup(false)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	var mac net.HardwareAddr
	allocs := testing.AllocsPerRun(runs, func() {
		f, err := ca.rc.read()
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
	payload := []byte{0x31, 1, 100, 1, 0, 100, 0, 0, 192, 0, 2, 100}
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
