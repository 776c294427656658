package transport

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// rawConn is one family's raw protocol-112 socket, reduced to what Conn needs.
type rawConn interface {
	// read returns the payload length (IP header stripped) and what the
	// kernel reported about the packet.
	read(b []byte) (n int, src, dst netip.Addr, ttl, ifIndex int, err error)
	// write sends b to dst from src out of the interface ifIndex.
	write(b []byte, src netip.Addr, ifIndex int, dst netip.Addr) error
	SetReadDeadline(t time.Time) error
	Close() error
}

// listenRaw opens a raw socket for IP protocol 112 bound to ifi, with
// TTL / hop limit 255, multicast loopback off, the control messages Read
// needs, and, if multicast is set, the VRRP group joined on ifi.
func listenRaw(ifi *net.Interface, ipv6 bool, multicast bool) (rawConn, error) {
	network, laddr := "ip4:"+strconv.Itoa(protocolVRRP), "0.0.0.0"
	if ipv6 {
		network, laddr = "ip6:"+strconv.Itoa(protocolVRRP), "::"
	}
	lc := net.ListenConfig{Control: bindToDevice(ifi.Name)}
	c, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("opening raw socket: %w", err)
	}
	var rc rawConn
	if ipv6 {
		rc, err = setup6(c, ifi, multicast)
	} else {
		rc, err = setup4(c, ifi, multicast)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return rc, nil
}

// bindToDevice sets SO_BINDTODEVICE before the socket is bound, so that no
// packet from another interface is ever queued on it.
func bindToDevice(name string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, name)
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("binding to device %s: %w", name, serr)
		}
		return nil
	}
}

// step is one named socket option setting, so that a failure says which.
type step struct {
	what string
	do   func() error
}

func runSteps(steps []step) error {
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

type conn4 struct{ pc *ipv4.PacketConn }

func setup4(c net.PacketConn, ifi *net.Interface, multicast bool) (rawConn, error) {
	pc := ipv4.NewPacketConn(c)
	steps := []step{
		{"requesting IP_RECVTTL and IP_PKTINFO", func() error {
			return pc.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true)
		}},
		{"setting IP_TTL", func() error { return pc.SetTTL(ttlVRRP) }},
		{"setting IP_MULTICAST_TTL", func() error { return pc.SetMulticastTTL(ttlVRRP) }},
		{"setting IP_MULTICAST_IF", func() error { return pc.SetMulticastInterface(ifi) }},
		{"disabling IP_MULTICAST_LOOP", func() error { return pc.SetMulticastLoopback(false) }},
	}
	if multicast {
		steps = append(steps, step{"joining " + groupIPv4.String(), func() error {
			return pc.JoinGroup(ifi, &net.IPAddr{IP: groupIPv4.AsSlice()})
		}})
	}
	if err := runSteps(steps); err != nil {
		return nil, err
	}
	return conn4{pc: pc}, nil
}

func (c conn4) read(b []byte) (n int, src, dst netip.Addr, ttl, ifIndex int, err error) {
	// ipv4.PacketConn.ReadFrom strips the IPv4 header (options included).
	n, cm, from, err := c.pc.ReadFrom(b)
	if err != nil {
		return 0, src, dst, 0, 0, err
	}
	if a, ok := from.(*net.IPAddr); ok {
		src, _ = netip.AddrFromSlice(a.IP)
	}
	if cm != nil {
		dst, _ = netip.AddrFromSlice(cm.Dst)
		ttl, ifIndex = cm.TTL, cm.IfIndex
	}
	return n, src.Unmap(), dst.Unmap(), ttl, ifIndex, nil
}

func (c conn4) write(b []byte, src netip.Addr, ifIndex int, dst netip.Addr) error {
	// IP_PKTINFO's ipi_spec_dst becomes the source address of a raw IPv4
	// packet, ipi_ifindex the outgoing interface.
	cm := &ipv4.ControlMessage{Src: src.AsSlice(), IfIndex: ifIndex}
	_, err := c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice()})
	return err
}

func (c conn4) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }
func (c conn4) Close() error                      { return c.pc.Close() }

type conn6 struct{ pc *ipv6.PacketConn }

func setup6(c net.PacketConn, ifi *net.Interface, multicast bool) (rawConn, error) {
	pc := ipv6.NewPacketConn(c)
	steps := []step{
		{"requesting IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO", func() error {
			return pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true)
		}},
		{"setting IPV6_UNICAST_HOPS", func() error { return pc.SetHopLimit(ttlVRRP) }},
		{"setting IPV6_MULTICAST_HOPS", func() error { return pc.SetMulticastHopLimit(ttlVRRP) }},
		{"setting IPV6_MULTICAST_IF", func() error { return pc.SetMulticastInterface(ifi) }},
		{"disabling IPV6_MULTICAST_LOOP", func() error { return pc.SetMulticastLoopback(false) }},
	}
	if multicast {
		steps = append(steps, step{"joining " + groupIPv6.String(), func() error {
			return pc.JoinGroup(ifi, &net.IPAddr{IP: groupIPv6.AsSlice()})
		}})
	}
	if err := runSteps(steps); err != nil {
		return nil, err
	}
	return conn6{pc: pc}, nil
}

func (c conn6) read(b []byte) (n int, src, dst netip.Addr, ttl, ifIndex int, err error) {
	// An IPv6 raw socket never returns the IPv6 header.
	n, cm, from, err := c.pc.ReadFrom(b)
	if err != nil {
		return 0, src, dst, 0, 0, err
	}
	if a, ok := from.(*net.IPAddr); ok {
		src, _ = netip.AddrFromSlice(a.IP)
	}
	if cm != nil {
		dst, _ = netip.AddrFromSlice(cm.Dst)
		ttl, ifIndex = cm.HopLimit, cm.IfIndex
	}
	return n, src, dst, ttl, ifIndex, nil
}

func (c conn6) write(b []byte, src netip.Addr, ifIndex int, dst netip.Addr) error {
	// IPV6_PKTINFO sets source and interface; the interface also scopes a
	// link-local destination, so no zone is needed in the address (a zone
	// name would be resolved in the namespace of the calling thread).
	cm := &ipv6.ControlMessage{HopLimit: ttlVRRP, Src: src.AsSlice(), IfIndex: ifIndex}
	_, err := c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice()})
	return err
}

func (c conn6) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }
func (c conn6) Close() error                      { return c.pc.Close() }
