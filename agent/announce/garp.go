package announce

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Ethernet and ARP constants (RFC 826, IEEE 802.3).
const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	arpHTEthernet = 1
	arpOpRequest  = 1
	garpFrameLen  = 14 + 28
)

// broadcastHW is the Ethernet broadcast address.
var broadcastHW = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// garpFrame returns the gratuitous ARP keepalived sends for vip from mac,
// byte for byte (42 bytes, not padded: the NIC pads short frames):
//
//	Ethernet: dst ff:ff:ff:ff:ff:ff, src mac, type 0x0806
//	ARP:      request (op 1), sender mac / vip, target ff:ff:ff:ff:ff:ff / vip
//
// It is encoded here rather than with github.com/mdlayher/arp: arp.Client
// pads frames to 60 bytes, and that module's mdlayher/packet dependency
// does not build against the mdlayher/socket version vipvs uses.
func garpFrame(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("invalid Ethernet address %q", mac)
	}
	if !vip.Is4() {
		return nil, fmt.Errorf("invalid IPv4 address %s", vip)
	}
	ip := vip.As4()
	b := make([]byte, garpFrameLen)
	copy(b[0:6], broadcastHW)
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	a := b[14:]
	binary.BigEndian.PutUint16(a[0:2], arpHTEthernet)
	binary.BigEndian.PutUint16(a[2:4], etherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], arpOpRequest)
	copy(a[8:14], mac)
	copy(a[14:18], ip[:])
	copy(a[18:24], broadcastHW)
	copy(a[24:28], ip[:])
	return b, nil
}

// packetConn is a send-only AF_PACKET raw socket on one interface. It is
// bound with protocol 0, so the kernel queues no received frame on it.
type packetConn struct {
	fd      int
	ifindex int
}

func listenPacket(ifindex int) (*packetConn, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	return &packetConn{fd: fd, ifindex: ifindex}, nil
}

// WriteFrame sends one whole Ethernet frame (header included) as is.
func (c *packetConn) WriteFrame(frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("frame too short (%d bytes)", len(frame))
	}
	sa := &unix.SockaddrLinklayer{
		Ifindex:  c.ifindex,
		Protocol: htons(binary.BigEndian.Uint16(frame[12:14])),
		Halen:    6,
	}
	copy(sa.Addr[:], frame[0:6])
	if err := unix.Sendto(c.fd, frame, 0, sa); err != nil {
		return fmt.Errorf("sendto: %w", err)
	}
	return nil
}

// Close closes the socket.
func (c *packetConn) Close() error { return unix.Close(c.fd) }

// htons converts a 16-bit value to network byte order, as sockaddr_ll's
// sll_protocol wants it (packet(7)).
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
