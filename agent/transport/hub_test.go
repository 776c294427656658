package transport

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// fakeRaw is a rawConn fed by a channel.
type fakeRaw struct {
	in     chan frame
	mu     sync.Mutex
	sent   []netip.Addr
	joined int
	closed chan struct{}
	once   sync.Once
}

func newFakeRaw() *fakeRaw { return &fakeRaw{in: make(chan frame, 16), closed: make(chan struct{})} }

func (f *fakeRaw) read() (frame, error) {
	select {
	case fr := <-f.in:
		return fr, nil
	case <-f.closed:
		return frame{}, net.ErrClosed
	}
}

func (f *fakeRaw) write(_ []byte, _ netip.Addr, _ int, dst netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, dst)
	return nil
}
func (f *fakeRaw) join() error  { f.mu.Lock(); f.joined++; f.mu.Unlock(); return nil }
func (f *fakeRaw) Close() error { f.once.Do(func() { close(f.closed) }); return nil }

type fakeNet struct {
	mu      sync.Mutex
	index   map[string]int
	opened  []*fakeRaw
	address netip.Addr
}

func newTestHub(fn *fakeNet) *Hub {
	hb := NewHub(logr.Discard())
	hb.open = func(*net.Interface, bool) (rawConn, error) {
		fn.mu.Lock()
		defer fn.mu.Unlock()
		r := newFakeRaw()
		fn.opened = append(fn.opened, r)
		return r, nil
	}
	hb.lookup = func(name string, _ bool) (*net.Interface, []ifAddr, error) {
		fn.mu.Lock()
		defer fn.mu.Unlock()
		return &net.Interface{Name: name, Index: fn.index[name]}, []ifAddr{{addr: fn.address}}, nil
	}
	return hb
}

func advert(vrid byte) []byte {
	return []byte{0x31, vrid, 100, 1, 0, 100, 0, 0, 192, 0, 2, 100}
}

func TestHubSharesOneSocketAndDemuxes(t *testing.T) {
	fn := &fakeNet{index: map[string]int{"eth0": 2}, address: netip.MustParseAddr("192.0.2.1")}
	hb := newTestHub(fn)
	defer hb.Close()
	got := make(chan uint8, 8)
	handler := func(vrid uint8) Handler {
		return func(p Packet) { got <- p.Payload[1]; _ = vrid }
	}
	peer := netip.MustParseAddr("192.0.2.2")
	s1, err := hb.Subscribe(Options{Interface: "eth0", Peers: []netip.Addr{peer}}, 1, handler(1))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := hb.Subscribe(Options{Interface: "eth0", Multicast: true}, 2, handler(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hb.Subscribe(Options{Interface: "eth0"}, 2, handler(2)); err == nil {
		t.Fatal("a second subscription of VRID 2 on eth0 succeeded")
	}
	if len(fn.opened) != 1 {
		t.Fatalf("%d sockets opened for two routers on one interface, want 1", len(fn.opened))
	}
	raw := fn.opened[0]
	if raw.joined != 1 {
		t.Errorf("group joined %d times, want 1", raw.joined)
	}
	stranger := netip.MustParseAddr("192.0.2.9")
	raw.in <- frame{payload: advert(1), src: stranger, ttl: 255}   // not a peer of 1
	raw.in <- frame{payload: advert(1), src: fn.address, ttl: 255} // our own
	raw.in <- frame{payload: advert(3), src: peer, ttl: 255}       // nobody's
	raw.in <- frame{payload: advert(2), src: stranger, ttl: 255}   // 2 has no peer list
	raw.in <- frame{payload: advert(1), src: peer, ttl: 255}       // 1's peer
	raw.in <- frame{payload: []byte{0x31}, src: peer, ttl: 255}    // too short
	for _, want := range []uint8{2, 1} {
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("delivered VRID %d, want %d", v, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("VRID %d not delivered", want)
		}
	}
	if d := s1.Dropped(); d[DropNotPeer] != 1 || d[DropSelf] != 1 {
		t.Errorf("VRID 1 drops = %v, want one not-peer and one self", d)
	}
	if d := s2.Dropped(); d[DropNotPeer] != 0 || d[DropSelf] != 0 {
		t.Errorf("VRID 2 drops = %v, want none", d)
	}
	if err := s1.Write([]byte("x"), peer); err != nil {
		t.Fatal(err)
	}
	if err := s1.Write([]byte("x"), netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("writing to an IPv6 address on an IPv4 socket succeeded")
	}
	s1.Close()
	select {
	case <-raw.closed:
		t.Fatal("socket closed while VRID 2 still uses it")
	default:
	}
	s2.Close()
	select {
	case <-raw.closed:
	default:
		t.Fatal("socket still open after its last subscription closed")
	}
}

func TestHubReopensOnNewIndex(t *testing.T) {
	fn := &fakeNet{index: map[string]int{"eth0": 2}, address: netip.MustParseAddr("192.0.2.1")}
	hb := newTestHub(fn)
	defer hb.Close()
	old, err := hb.Subscribe(Options{Interface: "eth0"}, 1, func(Packet) {})
	if err != nil {
		t.Fatal(err)
	}
	fn.mu.Lock()
	fn.index["eth0"] = 7 // deleted and re-created
	fn.mu.Unlock()
	sub, err := hb.Subscribe(Options{Interface: "eth0"}, 1, func(Packet) {})
	if err != nil {
		t.Fatalf("subscribing on the re-created interface: %v", err)
	}
	if len(fn.opened) != 2 || sub.IfIndex() != 7 {
		t.Fatalf("opened %d sockets, new one on index %d; want 2 and index 7", len(fn.opened), sub.IfIndex())
	}
	old.Close()
	select {
	case <-fn.opened[1].closed:
		t.Fatal("closing the old subscription closed the new socket")
	default:
	}
	sub.Close()
}

// TestReceiveAllocatesNothing proves the receive path, from the bytes the
// socket read to the router's handler, allocates nothing per packet.
func TestReceiveAllocatesNothing(t *testing.T) {
	fn := &fakeNet{index: map[string]int{"eth0": 2}, address: netip.MustParseAddr("192.0.2.1")}
	hb := newTestHub(fn)
	defer hb.Close()
	var n int
	sub, err := hb.Subscribe(Options{Interface: "eth0", Peers: []netip.Addr{netip.MustParseAddr("192.0.2.2")}}, 1, func(p Packet) { n += len(p.Payload) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// An IPv4 header and a VRRPv3 advert, padded as a short Ethernet frame.
	pkt := make([]byte, 46)
	copy(pkt, []byte{0x45, 0, 0, 32, 0, 0, 0x40, 0, 255, 112, 0, 0, 192, 0, 2, 2, 224, 0, 0, 18})
	copy(pkt[20:], advert(1))
	s := fn.opened[0]
	_ = s
	sh := sub.shared
	allocs := testing.AllocsPerRun(1000, func() {
		f, ok := parseIP(pkt, false)
		if !ok {
			t.Fatal("parseIP rejected a valid packet")
		}
		sh.dispatch(f)
	})
	if allocs != 0 {
		t.Errorf("receive path allocates %.1f times per packet, want 0", allocs)
	}
	if n != 1001*12 {
		t.Errorf("handler saw %d payload bytes, want %d", n, 1001*12)
	}
}

func TestParseIP(t *testing.T) {
	v4 := []byte{0x45, 0, 0, 24, 0, 0, 0, 0, 255, 112, 0, 0, 10, 0, 0, 1, 224, 0, 0, 18, 1, 2, 3, 4, 0, 0}
	tests := []struct {
		name string
		b    []byte
		ipv6 bool
		ok   bool
		plen int
	}{
		{"ipv4 padded", v4, false, true, 4},
		{"ipv4 fragment", func() []byte { b := append([]byte(nil), v4...); b[6] = 0x20; return b }(), false, false, 0},
		{"ipv4 short", v4[:19], false, false, 0},
		{"ipv4 other protocol", func() []byte { b := append([]byte(nil), v4...); b[9] = 6; return b }(), false, false, 0},
		{"ipv4 length past the end", func() []byte { b := append([]byte(nil), v4...); b[3] = 200; return b }(), false, false, 0},
		{"ipv6", append(append([]byte{0x60, 0, 0, 0, 0, 2, 112, 255}, make([]byte, 32)...), 9, 9), true, true, 2},
		{"ipv6 extension header", append(append([]byte{0x60, 0, 0, 0, 0, 2, 0, 255}, make([]byte, 32)...), 9, 9), true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := parseIP(tt.b, tt.ipv6)
			if ok != tt.ok || len(f.payload) != tt.plen {
				t.Fatalf("parseIP = %d bytes, %v; want %d, %v", len(f.payload), ok, tt.plen, tt.ok)
			}
			if ok && f.ttl != 255 {
				t.Errorf("ttl = %d, want 255", f.ttl)
			}
		})
	}
}
