package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// frame is one received VRRP packet as the socket saw it. Payload and SrcMAC
// alias the socket's buffer: they are valid until the next read.
type frame struct {
	payload []byte
	src     netip.Addr
	dst     netip.Addr
	ttl     int
	ifIndex int
	srcMAC  net.HardwareAddr
}

// rawConn is one (interface, family) VRRP socket, reduced to what the Hub
// needs.
type rawConn interface {
	// read blocks until a VRRP packet arrives and returns it; what it
	// returns aliases the socket's buffer until the next read.
	read() (frame, error)
	// write sends b to dst from src out of the interface ifIndex.
	write(b []byte, src netip.Addr, ifIndex int, dst netip.Addr) error
	// join joins the VRRP multicast group on the interface.
	join() error
	Close() error
}

// sock receives on an AF_PACKET datagram socket bound to the interface and
// to one EtherType, with a classic BPF filter that passes IP protocol 112
// only: the frame's link-layer source comes with every packet
// (sockaddr_ll), which a raw IP socket does not give. It sends on a raw IP
// socket bound to the interface (TTL / hop limit 255, source forced per
// packet with IP_PKTINFO / IPV6_PKTINFO), whose own receive queue is closed
// by a drop-everything filter; the raw socket also holds the multicast
// membership, so that the NIC accepts the group and IGMP / MLD snooping
// switches forward it.
type sock struct {
	ifi  *net.Interface
	ipv6 bool

	pc *packet.Conn
	rc syscall.RawConn
	tx txConn

	// Read state, used by one reader at a time (the Hub's loop): buf, the sockaddr and the outcome of the last recvfrom.
	buf    []byte
	rsa    unix.RawSockaddrLinklayer
	rsaLen uint32
	n      int
	errno  syscall.Errno
	readFn func(fd uintptr) bool // recv, bound once so that a read allocates nothing
	mac    [8]byte
	closed atomic.Bool
}

// txConn is the sending raw IP socket of one family.
type txConn interface {
	write(b []byte, src netip.Addr, ifIndex int, dst netip.Addr) error
	join() error
	Close() error
}

// bpfFilter returns the classic BPF program that passes IP protocol 112
// (VRRP) and nothing else. Offsets are from the network header (the socket
// is SOCK_DGRAM): the IPv4 protocol field is byte 9, the IPv6 next header
// byte 6.
func bpfFilter(ipv6 bool) ([]bpf.RawInstruction, error) {
	off := uint32(9)
	if ipv6 {
		off = 6
	}
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: off, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: protocolVRRP, SkipFalse: 1},
		bpf.RetConstant{Val: readBufferSize},
		bpf.RetConstant{Val: 0},
	})
}

// dropAll is the filter of the sending socket: it queues nothing.
var dropAll = []bpf.RawInstruction{{Op: 0x06, K: 0}} // ret #0

// listenRaw opens the receiving AF_PACKET socket and the sending raw IP
// socket on ifi.
func listenRaw(ifi *net.Interface, ipv6 bool) (rawConn, error) {
	filter, err := bpfFilter(ipv6)
	if err != nil {
		return nil, fmt.Errorf("assembling the BPF filter: %w", err)
	}
	proto := unix.ETH_P_IP
	if ipv6 {
		proto = unix.ETH_P_IPV6
	}
	pc, err := packet.Listen(ifi, packet.Datagram, proto, &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("opening packet socket: %w", err)
	}
	rc, err := pc.SyscallConn()
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("opening packet socket: %w", err)
	}
	tx, err := listenTx(ifi, ipv6)
	if err != nil {
		pc.Close()
		return nil, err
	}
	s := &sock{ifi: ifi, ipv6: ipv6, pc: pc, rc: rc, tx: tx, buf: make([]byte, readBufferSize)}
	s.readFn = s.recv
	return s, nil
}

// recv is one non-blocking recvfrom(2) into s.buf; it reports whether the
// read is done (false: wait for the socket to be readable).
//
// It is a raw system call (no entersyscall): a call that cannot block needs
// no hand-off of the P, and an ordinary system call wakes the runtime's
// sysmon thread whenever it sleeps, a context switch per packet at 10 ms
// adverts. EAGAIN parks the goroutine in the netpoller instead.
func (s *sock) recv(fd uintptr) bool {
	s.rsaLen = uint32(unsafe.Sizeof(s.rsa))
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&s.rsa)), uintptr(unsafe.Pointer(&s.rsaLen)))
	for e == unix.EINTR {
		s.rsaLen = uint32(unsafe.Sizeof(s.rsa))
		n, _, e = unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&s.rsa)), uintptr(unsafe.Pointer(&s.rsaLen)))
	}
	if e == unix.EAGAIN {
		return false
	}
	s.n, s.errno = int(n), e
	return true
}

// errInterfaceDown is returned once by read when the interface went down
// (the kernel reports ENETDOWN on the packet socket); reading may go on.
var errInterfaceDown = errors.New("interface went down")

func (s *sock) read() (frame, error) {
	for {
		s.n, s.errno = 0, 0
		if err := s.rc.Read(s.readFn); err != nil {
			return frame{}, s.closedErr(err)
		}
		if s.errno != 0 {
			if s.errno == unix.ENETDOWN {
				return frame{}, errInterfaceDown
			}
			return frame{}, fmt.Errorf("recvfrom: %w", s.errno)
		}
		// Frames we send, and frames for another host seen by a
		// promiscuous interface, are not for us.
		switch s.rsa.Pkttype {
		case unix.PACKET_OUTGOING, unix.PACKET_OTHERHOST:
			continue
		}
		f, ok := parseIP(s.buf[:s.n], s.ipv6)
		if !ok {
			continue
		}
		// As a raw IP socket would: of the multicast groups, only VRRP's
		// (the socket's membership) is delivered.
		if f.dst.IsMulticast() && f.dst != MulticastGroup(s.ipv6) {
			continue
		}
		f.ifIndex = int(s.rsa.Ifindex)
		if hl := int(s.rsa.Halen); hl > 0 && hl <= len(s.mac) {
			for i := range hl {
				s.mac[i] = s.rsa.Addr[i]
			}
			f.srcMAC = s.mac[:hl:hl]
		}
		return f, nil
	}
}

// parseIP reads the IP header of b, a packet of IP protocol 112, and
// returns its payload trimmed to the IP length (a short frame is padded by
// the link). Fragments and malformed headers are skipped (false).
func parseIP(b []byte, ipv6 bool) (frame, bool) {
	if ipv6 {
		if len(b) < 40 || b[0]>>4 != 6 || b[6] != protocolVRRP {
			return frame{}, false
		}
		plen := int(binary.BigEndian.Uint16(b[4:6]))
		if 40+plen > len(b) {
			return frame{}, false
		}
		return frame{
			payload: b[40 : 40+plen],
			src:     netip.AddrFrom16([16]byte(b[8:24])),
			dst:     netip.AddrFrom16([16]byte(b[24:40])),
			ttl:     int(b[7]),
		}, true
	}
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != protocolVRRP {
		return frame{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || total > len(b) {
		return frame{}, false
	}
	// More fragments, or a fragment offset: not a whole advert.
	if binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 {
		return frame{}, false
	}
	return frame{
		payload: b[ihl:total],
		src:     netip.AddrFrom4([4]byte(b[12:16])),
		dst:     netip.AddrFrom4([4]byte(b[16:20])),
		ttl:     int(b[8]),
	}, true
}

func (s *sock) write(b []byte, src netip.Addr, ifIndex int, dst netip.Addr) error {
	return s.tx.write(b, src, ifIndex, dst)
}

func (s *sock) join() error { return s.tx.join() }

// closedErr makes an error after Close wrap net.ErrClosed (the packet
// socket reports the poller's own "use of closed file").
func (s *sock) closedErr(err error) error {
	if err != nil && s.closed.Load() && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%w: %w", net.ErrClosed, err)
	}
	return err
}

func (s *sock) Close() error {
	s.closed.Store(true)
	return errors.Join(s.pc.Close(), s.tx.Close())
}

// listenTx opens the sending raw IP socket for IP protocol 112 bound to
// ifi, with TTL / hop limit 255 and multicast loopback off.
func listenTx(ifi *net.Interface, ipv6 bool) (txConn, error) {
	network, laddr := "ip4:"+strconv.Itoa(protocolVRRP), "0.0.0.0"
	if ipv6 {
		network, laddr = "ip6:"+strconv.Itoa(protocolVRRP), "::"
	}
	lc := net.ListenConfig{Control: bindToDevice(ifi.Name)}
	c, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("opening raw socket: %w", err)
	}
	var tx txConn
	if ipv6 {
		tx, err = setup6(c, ifi)
	} else {
		tx, err = setup4(c, ifi)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return tx, nil
}

// bindToDevice sets SO_BINDTODEVICE before the socket is bound, and a
// filter that drops everything: the socket only sends (and holds the
// multicast membership); the packet socket receives.
func bindToDevice(name string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, name)
			if serr != nil {
				serr = fmt.Errorf("binding to device %s: %w", name, serr)
				return
			}
			prog := unix.SockFprog{Len: uint16(len(dropAll)), Filter: (*unix.SockFilter)(unsafe.Pointer(&dropAll[0]))}
			if err := unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
				serr = fmt.Errorf("attaching the drop-all filter: %w", err)
			}
		})
		if err != nil {
			return err
		}
		return serr
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

type conn4 struct {
	pc  *ipv4.PacketConn
	ifi *net.Interface
	tx  *rawTx
}

func setup4(c net.PacketConn, ifi *net.Interface) (txConn, error) {
	pc := ipv4.NewPacketConn(c)
	steps := []step{
		{"setting IP_TTL", func() error { return pc.SetTTL(ttlVRRP) }},
		{"setting IP_MULTICAST_TTL", func() error { return pc.SetMulticastTTL(ttlVRRP) }},
		{"setting IP_MULTICAST_IF", func() error { return pc.SetMulticastInterface(ifi) }},
		{"disabling IP_MULTICAST_LOOP", func() error { return pc.SetMulticastLoopback(false) }},
	}
	if err := runSteps(steps); err != nil {
		return nil, err
	}
	tx, err := newRawTx(c, false)
	if err != nil {
		return nil, err
	}
	return conn4{pc: pc, ifi: ifi, tx: tx}, nil
}

func (c conn4) join() error {
	if err := c.pc.JoinGroup(c.ifi, &net.IPAddr{IP: groupIPv4.AsSlice()}); err != nil {
		return fmt.Errorf("joining %s: %w", groupIPv4, err)
	}
	return nil
}

func (c conn4) write(b []byte, src netip.Addr, ifIndex int, dst netip.Addr) error {
	return c.tx.write(b, src, ifIndex, dst)
}

func (c conn4) Close() error { return c.pc.Close() }

type conn6 struct {
	pc  *ipv6.PacketConn
	ifi *net.Interface
	tx  *rawTx
}

func setup6(c net.PacketConn, ifi *net.Interface) (txConn, error) {
	pc := ipv6.NewPacketConn(c)
	steps := []step{
		{"setting IPV6_UNICAST_HOPS", func() error { return pc.SetHopLimit(ttlVRRP) }},
		{"setting IPV6_MULTICAST_HOPS", func() error { return pc.SetMulticastHopLimit(ttlVRRP) }},
		{"setting IPV6_MULTICAST_IF", func() error { return pc.SetMulticastInterface(ifi) }},
		{"disabling IPV6_MULTICAST_LOOP", func() error { return pc.SetMulticastLoopback(false) }},
	}
	if err := runSteps(steps); err != nil {
		return nil, err
	}
	tx, err := newRawTx(c, true)
	if err != nil {
		return nil, err
	}
	return conn6{pc: pc, ifi: ifi, tx: tx}, nil
}

func (c conn6) join() error {
	if err := c.pc.JoinGroup(c.ifi, &net.IPAddr{IP: groupIPv6.AsSlice()}); err != nil {
		return fmt.Errorf("joining %s: %w", groupIPv6, err)
	}
	return nil
}

func (c conn6) write(b []byte, src netip.Addr, ifIndex int, dst netip.Addr) error {
	return c.tx.write(b, src, ifIndex, dst)
}

func (c conn6) Close() error { return c.pc.Close() }
