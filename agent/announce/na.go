package announce

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
	"golang.org/x/sys/unix"
)

// icmp6Conn is a send-only raw ICMPv6 socket on one interface, bound to the
// interface's link-local address. It does what ndp.Listen and
// ndp.Conn.WriteTo do (hop limit 255, source address, checksum by the
// kernel) but names the interface only by index: ndp.Conn passes the
// interface name as the IPv6 zone, which Go resolves with a process-wide
// cache of the namespace the process last listed, so with Announcer.ns set (or
// two namespaces using one interface name) it picks a wrong index and sendmsg
// fails with EINVAL.
type icmp6Conn struct {
	fd      int
	ifindex int
}

// listenICMP6 opens the socket on ifi with source address src.
func listenICMP6(ifi *net.Interface, src netip.Addr) (*icmp6Conn, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	c := &icmp6Conn{fd: fd, ifindex: ifi.Index}
	// Receive nothing: a set bit blocks an ICMPv6 type (ICMP6_FILTER,
	// RFC 3542 §3.2, ICMP6_FILTER_SETBLOCKALL).
	block := make([]byte, 32)
	for i := range block {
		block[i] = 0xff
	}
	steps := []struct {
		what string
		err  func() error
	}{
		{"setting ICMPv6 filter", func() error {
			return unix.SetsockoptString(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, string(block))
		}},
		{"setting hop limit", func() error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ndp.HopLimit)
		}},
		{"setting multicast hop limit", func() error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, ndp.HopLimit)
		}},
		{"setting multicast interface", func() error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index)
		}},
		{"binding to " + src.String(), func() error {
			return unix.Bind(fd, &unix.SockaddrInet6{Addr: src.As16(), ZoneId: uint32(ifi.Index)})
		}},
	}
	for _, s := range steps {
		if err := s.err(); err != nil {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return c, nil
}

// WriteMessage sends m to dst (on the socket's interface).
func (c *icmp6Conn) WriteMessage(m ndp.Message, dst netip.Addr) error {
	b, err := ndp.MarshalMessage(m) // checksum left 0: the kernel computes it
	if err != nil {
		return err
	}
	sa := &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(c.ifindex)}
	if err := unix.Sendto(c.fd, b, 0, sa); err != nil {
		return fmt.Errorf("sendto %s: %w", dst, err)
	}
	return nil
}

// Close closes the socket.
func (c *icmp6Conn) Close() error { return unix.Close(c.fd) }

// linkLocal returns the first IPv6 link-local address of ifi.
func linkLocal(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if ok && ip.Is6() && !ip.Is4In6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no IPv6 link-local address on %s", ifi.Name)
}
