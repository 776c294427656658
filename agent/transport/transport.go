package transport

import (
	"fmt"
	"net"
	"net/netip"
)

const (
	// protocolVRRP is the IP protocol number of VRRP (RFC 9568 §5.1.1.4).
	protocolVRRP = 112
	// ttlVRRP is the TTL / hop limit every VRRP packet is sent with and must
	// arrive with (RFC 9568 §5.1.1.3, §5.1.2.3, §7.1).
	ttlVRRP = 255
	// readBufferSize holds any IP payload, so a message is never truncated.
	readBufferSize = 1 << 16
)

var (
	groupIPv4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	groupIPv6 = netip.AddrFrom16([16]byte{0xff, 0x02, 15: 0x12})
)

// MulticastGroup returns the VRRP multicast group: 224.0.0.18 for IPv4,
// ff02::12 for IPv6 (RFC 9568 §5.1.1.2, §5.1.2.2).
func MulticastGroup(ipv6 bool) netip.Addr {
	if ipv6 {
		return groupIPv6
	}
	return groupIPv4
}

// Packet is one received VRRP message.
type Packet struct {
	// Payload is the VRRP message with the IP header stripped. It aliases
	// the socket's buffer: valid only until the Handler returns.
	Payload []byte
	// Src is the source address from the IP header. It never carries a zone,
	// even when it is an IPv6 link-local address.
	Src netip.Addr
	// Dst is the destination address from the IP header: the multicast
	// group or one of our unicast addresses.
	Dst netip.Addr
	// TTL is the IPv4 TTL or IPv6 hop limit the packet arrived with, from
	// the IP header. RFC 9568 §7.1 requires 255; checking it is the
	// caller's job.
	TTL int
	// IfIndex is the index of the interface the packet arrived on.
	IfIndex int
	// SrcMAC is the link-layer source address of the frame (nil on an
	// interface without link-layer addresses). Like Payload it is valid
	// only until the Handler returns.
	SrcMAC net.HardwareAddr
}

// Options configure a subscription (Hub.Subscribe).
type Options struct {
	// Interface is the name of the interface to send and receive on; the
	// socket is bound to it (SO_BINDTODEVICE). Required.
	Interface string
	// IPv6 selects IPv6 (VRRPv3 only) instead of IPv4.
	IPv6 bool
	// Multicast joins the VRRP group (see MulticastGroup) on the interface.
	// Multicast loopback is always off, so our own multicast packets are not
	// delivered back to any local socket.
	Multicast bool
	// Peers, when not empty, are the only sources whose packets the
	// subscription delivers; a packet from any other source is dropped and
	// counted as DropNotPeer. Use it in unicast mode (it works in multicast
	// mode too). Zones are ignored. Every peer must be of the family.
	Peers []netip.Addr
	// Source is the address packets are sent from. It must be on the
	// interface. Zero chooses: for IPv4 the interface's first primary
	// address, for IPv6 its link-local address, as RFC 9568 §5.1.2.1
	// requires.
	Source netip.Addr
}

// DropReason says why a subscription skipped a received packet.
type DropReason uint8

// The reasons a subscription skips a packet. Packets that are malformed as VRRP
// messages are not judged here: the caller's codec does that.
const (
	// DropSelf: the packet's source is one of our own addresses (our own
	// packet reflected back by the network).
	DropSelf DropReason = iota
	// DropNotPeer: peers are configured and the source is not one of them.
	DropNotPeer
	numDropReasons
)

// String returns the reason as used in metric labels: "self" or "peer".
func (r DropReason) String() string {
	switch r {
	case DropSelf:
		return "self"
	case DropNotPeer:
		return "peer"
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

func peerSet(list []netip.Addr, ipv6 bool) (map[netip.Addr]struct{}, error) {
	peers := make(map[netip.Addr]struct{}, len(list))
	for _, p := range list {
		p = p.WithZone("").Unmap()
		if !p.IsValid() || p.Is6() != ipv6 {
			return nil, fmt.Errorf("peer %s is not an %s address", p, familyName(ipv6))
		}
		peers[p] = struct{}{}
	}
	return peers, nil
}
