package announce

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// The keepalived captures (testdata/, copied from shared/testdata/keepalived):
// node n1 has MAC 02:00:00:00:00:01 and announces 192.0.2.100 / 2001:db8::100.
var (
	n1MAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	vip4    = netip.MustParseAddr("192.0.2.100")
	vip6    = netip.MustParseAddr("2001:db8::100")
	etherV6 = uint16(0x86dd)
)

// readPcap returns the frames of a classic pcap file (microsecond or
// nanosecond, either byte order, link type Ethernet).
func readPcap(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 {
		t.Fatalf("%s: short pcap header", path)
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b[0:4]) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		t.Fatalf("%s: not a pcap file", path)
	}
	if lt := bo.Uint32(b[20:24]); lt != 1 {
		t.Fatalf("%s: link type %d, want 1 (Ethernet)", path, lt)
	}
	var frames [][]byte
	for off := 24; off < len(b); {
		if off+16 > len(b) {
			t.Fatalf("%s: truncated record header at %d", path, off)
		}
		n := int(bo.Uint32(b[off+8 : off+12]))
		off += 16
		if off+n > len(b) {
			t.Fatalf("%s: truncated record at %d", path, off)
		}
		frames = append(frames, b[off:off+n])
		off += n
	}
	return frames
}

func etherType(f []byte) uint16 { return binary.BigEndian.Uint16(f[12:14]) }

// capturedGARP is the first gratuitous ARP in the keepalived capture.
func capturedGARP(t *testing.T) []byte {
	t.Helper()
	for _, f := range readPcap(t, "testdata/v3-ipv4-multicast.pcap") {
		if len(f) >= 14 && etherType(f) == etherTypeARP {
			return f
		}
	}
	t.Fatal("no ARP frame in testdata/v3-ipv4-multicast.pcap")
	return nil
}

// capturedNA is the first neighbour advertisement in the keepalived capture:
// the whole frame and its ICMPv6 message.
func capturedNA(t *testing.T) (frame, icmp []byte) {
	t.Helper()
	for _, f := range readPcap(t, "testdata/v3-ipv6-multicast.pcap") {
		if len(f) < 14+40+4 || etherType(f) != etherV6 || f[14+6] != 58 {
			continue
		}
		plen := int(binary.BigEndian.Uint16(f[14+4 : 14+6]))
		body := f[54 : 54+plen]
		if body[0] == byte(ipv6.ICMPTypeNeighborAdvertisement) {
			return f, body
		}
	}
	t.Fatal("no neighbour advertisement in testdata/v3-ipv6-multicast.pcap")
	return nil, nil
}

// frameOf returns the Ethernet frame arp.Client.WriteTo sends for p to
// dst: the header, the ARP packet, zero padding to the 60-byte minimum.
func frameOf(t *testing.T, p *arp.Packet, dst net.HardwareAddr) []byte {
	t.Helper()
	pb, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	f := append(append(append([]byte(nil), dst...), p.SenderHardwareAddr...), 0x08, 0x06)
	f = append(f, pb...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// samePadded reports whether got is want followed by zero padding up to
// the 60-byte Ethernet minimum: keepalived's capture is taken before the
// NIC pads, the ARP client pads itself.
func samePadded(want, got []byte) bool {
	if len(got) < len(want) || !bytes.Equal(want, got[:len(want)]) || len(got) > max(60, len(want)) {
		return false
	}
	for _, b := range got[len(want):] {
		if b != 0 {
			return false
		}
	}
	return true
}

func TestGARPFrameMatchesKeepalived(t *testing.T) {
	want := capturedGARP(t)
	p, err := garpPacket(n1MAC, vip4)
	if err != nil {
		t.Fatal(err)
	}
	if got := frameOf(t, p, broadcastHW); !samePadded(want, got) {
		t.Errorf("GARP frame differs from keepalived's (padding aside):\nwant % x\ngot  % x", want, got)
	}
	// The comparison sees a difference outside the padding.
	if bad := frameOf(t, p, n1MAC); samePadded(want, bad) {
		t.Error("samePadded accepts a frame to another destination")
	}
}

func TestGARPPacketErrors(t *testing.T) {
	if _, err := garpPacket(net.HardwareAddr{1, 2, 3}, vip4); err == nil {
		t.Error("short MAC: no error")
	}
	if _, err := garpPacket(n1MAC, vip6); err == nil {
		t.Error("IPv6 VIP: no error")
	}
}

func TestNAMatchesKeepalived(t *testing.T) {
	frame, body := capturedNA(t)

	// What keepalived's frame says around the message.
	if got := net.HardwareAddr(frame[0:6]).String(); got != "33:33:00:00:00:01" {
		t.Errorf("capture: Ethernet dst %s", got)
	}
	if hl := frame[14+7]; hl != ndp.HopLimit {
		t.Errorf("capture: hop limit %d, want %d", hl, ndp.HopLimit)
	}
	if dst, _ := netip.AddrFromSlice(frame[14+24 : 14+40]); dst != allNodes {
		t.Errorf("capture: IPv6 dst %s, want %s", dst, allNodes)
	}

	// Field for field.
	m, err := ndp.ParseMessage(body)
	if err != nil {
		t.Fatalf("parsing keepalived's NA: %v", err)
	}
	want, ok := m.(*ndp.NeighborAdvertisement)
	if !ok {
		t.Fatalf("keepalived's message is a %T", m)
	}
	got := neighborAdvertisement(n1MAC, vip6)
	addrEq := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	if diff := cmp.Diff(want, got, addrEq); diff != "" {
		t.Errorf("NA differs from keepalived's (-want +got):\n%s", diff)
	}

	// Byte for byte, checksum included, with keepalived's source address
	// (the VIP; vipvs sends from the link-local address, so on the wire only
	// the checksum differs).
	src, _ := netip.AddrFromSlice(frame[14+8 : 14+24])
	b, err := ndp.MarshalMessageChecksum(got, src, allNodes)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, b) {
		t.Errorf("NA bytes differ from keepalived's:\nwant % x\ngot  % x", body, b)
	}
}

type fakeARP struct {
	t      *testing.T
	frames [][]byte
	err    error
	closed bool
}

func (f *fakeARP) WriteTo(p *arp.Packet, dst net.HardwareAddr) error {
	if f.err != nil {
		return f.err
	}
	f.frames = append(f.frames, frameOf(f.t, p, dst))
	return nil
}
func (f *fakeARP) Close() error { f.closed = true; return nil }

type sentNA struct {
	m   ndp.Message
	dst netip.Addr
}

type fakeNDP struct {
	sent   []sentNA
	err    error
	closed bool
}

func (f *fakeNDP) WriteMessage(m ndp.Message, dst netip.Addr) error {
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, sentNA{m, dst})
	return nil
}
func (f *fakeNDP) Close() error { f.closed = true; return nil }

func TestAnnounceWithFakes(t *testing.T) {
	a, err := New("eth0", testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	fa, fn := &fakeARP{t: t}, &fakeNDP{}
	a.garp, a.garpHW, a.na, a.naHW = fa, n1MAC, fn, n1MAC

	if err := a.Announce([]netip.Addr{vip4, vip6, netip.MustParseAddr("::ffff:192.0.2.101")}); err != nil {
		t.Fatalf("Announce: %v", err)
	}
	p4a, _ := garpPacket(n1MAC, vip4)
	p4b, _ := garpPacket(n1MAC, netip.MustParseAddr("192.0.2.101"))
	want4a, want4b := frameOf(t, p4a, broadcastHW), frameOf(t, p4b, broadcastHW)
	if diff := cmp.Diff([][]byte{want4a, want4b}, fa.frames); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
	if len(fn.sent) != 1 || fn.sent[0].dst != allNodes {
		t.Fatalf("NAs sent = %+v, want one to %s", fn.sent, allNodes)
	}
	addrEq := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	if diff := cmp.Diff(ndp.Message(neighborAdvertisement(n1MAC, vip6)), fn.sent[0].m, addrEq); diff != "" {
		t.Errorf("NA (-want +got):\n%s", diff)
	}

	// A failed send is reported with context, drops the socket (reopened
	// next time) and does not stop the other VIPs.
	fa.err = errors.New("no such device")
	err = a.Announce([]netip.Addr{vip4, vip6, {}})
	for _, want := range []string{
		"sending gratuitous ARP for 192.0.2.100 on eth0: no such device",
		"announcing on eth0: invalid VIP invalid IP",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Announce error = %v, want it to contain %q", err, want)
		}
	}
	if !fa.closed || a.garp != nil {
		t.Errorf("ARP socket not dropped after a send error")
	}
	if len(fn.sent) != 2 {
		t.Errorf("NAs sent = %d, want 2 (the IPv6 VIP still announced)", len(fn.sent))
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !fn.closed {
		t.Errorf("Close did not close the NDP socket")
	}
}

func TestNewRejectsBadName(t *testing.T) {
	for _, name := range []string{"", "a-very-long-interface-name"} {
		if _, err := New(name, testr.New(t)); err == nil {
			t.Errorf("New(%q): no error", name)
		}
	}
}

// etherTypeARP is the EtherType of ARP.
const etherTypeARP = 0x0806

// htons converts a 16-bit value to network byte order, as sockaddr_ll's
// sll_protocol wants it (packet(7)).
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
