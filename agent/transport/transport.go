package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
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
	// Payload is the VRRP message with the IP header stripped. It is a copy:
	// the caller owns it.
	Payload []byte
	// Src is the source address from the IP header. It never carries a zone,
	// even when it is an IPv6 link-local address.
	Src netip.Addr
	// Dst is the destination address from the IP header (IP_PKTINFO /
	// IPV6_PKTINFO): the multicast group or one of our unicast addresses.
	Dst netip.Addr
	// TTL is the IPv4 TTL or IPv6 hop limit the packet arrived with
	// (IP_RECVTTL / IPV6_RECVHOPLIMIT). RFC 9568 §7.1 requires 255; checking
	// it is the caller's job.
	TTL int
	// IfIndex is the index of the interface the packet arrived on.
	IfIndex int
	// SrcMAC is the link-layer source address of the frame (nil on an
	// interface without link-layer addresses).
	SrcMAC net.HardwareAddr
}

// Options configure Listen.
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
	// Peers, when not empty, are the only sources whose packets Read
	// delivers; a packet from any other source is dropped and counted as
	// DropNotPeer. Use it in unicast mode (it works in multicast mode too).
	// Zones are ignored. Every peer must be of the Conn's family.
	Peers []netip.Addr
	// Source is the address packets are sent from. It must be on the
	// interface. Zero chooses: for IPv4 the interface's first primary
	// address, for IPv6 its link-local address, as RFC 9568 §5.1.2.1
	// requires.
	Source netip.Addr
}

// DropReason says why Read skipped a received packet.
type DropReason uint8

// The reasons Read skips a packet. Packets that are malformed as VRRP
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

// Conn is a raw VRRP socket for one interface and one address family. Write
// and Dropped may be called concurrently with Read and with each other; Read
// calls are serialised.
type Conn struct {
	ifName  string
	ifIndex int
	ipv6    bool
	source  netip.Addr
	peers   atomic.Pointer[map[netip.Addr]struct{}]
	// own are the addresses of the interface when the Conn was opened, and
	// the source: packets from them are our own.
	own map[netip.Addr]struct{}
	rc  rawConn

	readMu sync.Mutex

	drops [numDropReasons]atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// Listen opens a raw VRRP socket on opts.Interface. It needs CAP_NET_RAW.
// The socket is created in the network namespace of the calling OS thread
// (lock the thread with runtime.LockOSThread when switching namespaces).
//
// Listen does not wait for a source address: if it is missing the error wraps
// ErrNoSource, and if it is an IPv6 address still in duplicate address
// detection the error wraps ErrTentative; the caller may retry after a short
// delay in both cases. Errors read "transport: opening VRRP socket on <if>: ...".
func Listen(opts Options) (*Conn, error) {
	c, err := listen(opts)
	if err != nil {
		return nil, fmt.Errorf("transport: opening VRRP socket on %s: %w", opts.Interface, err)
	}
	return c, nil
}

func listen(opts Options) (*Conn, error) {
	if opts.Interface == "" {
		return nil, errors.New("no interface given")
	}
	peers, err := peerSet(opts.Peers, opts.IPv6)
	if err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(opts.Interface)
	if err != nil {
		return nil, fmt.Errorf("looking up interface: %w", err)
	}
	addrs, err := interfaceAddrs(ifi.Index, opts.IPv6)
	if err != nil {
		return nil, err
	}
	source, err := chooseSource(addrs, opts.Source, opts.IPv6)
	if err != nil {
		return nil, err
	}
	own := make(map[netip.Addr]struct{}, len(addrs)+1)
	for _, a := range addrs {
		own[a.addr] = struct{}{}
	}
	own[source] = struct{}{}
	rc, err := listenRaw(ifi, opts.IPv6)
	if err != nil {
		return nil, err
	}
	if opts.Multicast {
		if err := rc.join(); err != nil {
			rc.Close()
			return nil, err
		}
	}
	c := &Conn{
		ifName:  ifi.Name,
		ifIndex: ifi.Index,
		ipv6:    opts.IPv6,
		source:  source,
		own:     own,
		rc:      rc,
	}
	c.peers.Store(&peers)
	return c, nil
}

// Source returns the address the Conn sends from, which the VRRPv3 checksum
// pseudo-header needs. An IPv6 link-local source carries no zone.
func (c *Conn) Source() netip.Addr { return c.source }

// Interface returns the name of the interface the Conn is bound to.
func (c *Conn) Interface() string { return c.ifName }

// Read blocks until a packet arrives that passes the filters and returns it.
// It skips, and counts, packets from our own addresses and, when peers are
// configured, from other sources. When ctx is done Read returns ctx.Err();
// after Close it returns an error wrapping net.ErrClosed.
func (c *Conn) Read(ctx context.Context) (Packet, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if err := ctx.Err(); err != nil {
		return Packet{}, err
	}
	// A previous Read may have left a past deadline behind.
	if err := c.rc.SetReadDeadline(time.Time{}); err != nil {
		return Packet{}, c.readError(err)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		// Unblock the read below; a past deadline wakes it at once.
		_ = c.rc.SetReadDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			// Let the deadline be set before the next Read clears it.
			<-fired
		}
	}()
	for {
		f, err := c.rc.read()
		if errors.Is(err, errInterfaceDown) {
			continue
		}
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return Packet{}, ctxErr
			}
			return Packet{}, c.readError(err)
		}
		if _, ok := c.own[f.src]; ok {
			c.drops[DropSelf].Add(1)
			continue
		}
		if peers := *c.peers.Load(); len(peers) > 0 {
			if _, ok := peers[f.src]; !ok {
				c.drops[DropNotPeer].Add(1)
				continue
			}
		}
		if f.ifIndex == 0 {
			f.ifIndex = c.ifIndex
		}
		p := Packet{
			Payload: append([]byte(nil), f.payload...),
			Src:     f.src,
			Dst:     f.dst,
			TTL:     f.ttl,
			IfIndex: f.ifIndex,
		}
		if f.srcMAC != nil {
			p.SrcMAC = append(net.HardwareAddr(nil), f.srcMAC...)
		}
		return p, nil
	}
}

func (c *Conn) readError(err error) error {
	return fmt.Errorf("transport: reading on %s: %w", c.ifName, err)
}

// Write sends payload, a complete VRRP message, to dst: the VRRP multicast
// group or a unicast peer of the Conn's family. The packet leaves the bound
// interface from Source() with TTL / hop limit 255. The kernel computes no
// VRRP checksum: payload must carry it.
func (c *Conn) Write(payload []byte, dst netip.Addr) error {
	dst = dst.WithZone("").Unmap()
	if !dst.IsValid() || dst.Is6() != c.ipv6 {
		return fmt.Errorf("transport: sending on %s: destination %s is not an %s address", c.ifName, dst, familyName(c.ipv6))
	}
	if err := c.rc.write(payload, c.source, c.ifIndex, dst); err != nil {
		return fmt.Errorf("transport: sending to %s on %s: %w", dst, c.ifName, err)
	}
	return nil
}

// Dropped returns how many received packets Read skipped, for every
// DropReason (zero counts included).
func (c *Conn) Dropped() map[DropReason]uint64 {
	m := make(map[DropReason]uint64, numDropReasons)
	for r := range numDropReasons {
		m[r] = c.drops[r].Load()
	}
	return m
}

// Close closes the socket; a blocked Read returns. Further calls return the
// result of the first.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if err := c.rc.Close(); err != nil {
			c.closeErr = fmt.Errorf("transport: closing VRRP socket on %s: %w", c.ifName, err)
		}
	})
	return c.closeErr
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

// SetPeers replaces the peer filter (see Options.Peers) while the Conn runs:
// a reloaded config with another peer list needs no new socket. An empty
// list turns the filter off.
func (c *Conn) SetPeers(list []netip.Addr) error {
	peers, err := peerSet(list, c.ipv6)
	if err != nil {
		return fmt.Errorf("transport: setting peers on %s: %w", c.ifName, err)
	}
	c.peers.Store(&peers)
	return nil
}
