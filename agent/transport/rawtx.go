package transport

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sizes of the control messages of a send: IPv4 carries IP_PKTINFO;
// IPv6 carries IPV6_PKTINFO and IPV6_HOPLIMIT.
var (
	oobSize4 = unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	oobSize6 = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(4)
)

// rawTx sends on a raw IP socket with sendmsg(2) made as a raw system call
// inside the socket's RawConn.Write: a non-blocking send needs no hand-off
// of the P, and an ordinary system call wakes the runtime's sysmon thread
// whenever it sleeps, a context switch per advert at 10 ms. EAGAIN parks
// the goroutine in the netpoller until the socket is writable. The message
// header, address and control messages are built in place, so a send
// allocates nothing; mu serialises the routers that share the socket.
type rawTx struct {
	rc   syscall.RawConn
	ipv6 bool

	mu      sync.Mutex
	msg     unix.Msghdr
	iov     unix.Iovec
	sa4     unix.RawSockaddrInet4
	sa6     unix.RawSockaddrInet6
	oob     [64]byte
	n       int
	errno   syscall.Errno
	writeFn func(fd uintptr) bool // send, bound once so that a write allocates nothing
}

func newRawTx(c net.PacketConn, ipv6 bool) (*rawTx, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("raw socket %T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	t := &rawTx{rc: rc, ipv6: ipv6}
	t.writeFn = t.send
	return t, nil
}

// write sends b to dst with src as the source address, out of ifIndex.
// For IPv4, IP_PKTINFO's ipi_spec_dst becomes the source address of a raw
// packet and ipi_ifindex the outgoing interface. For IPv6, IPV6_PKTINFO
// sets source and interface; the interface also scopes a link-local
// destination, so no zone is needed (a zone name would be resolved in the
// namespace of the calling thread).
func (t *rawTx) write(b []byte, src netip.Addr, ifIndex int, dst netip.Addr) error {
	if len(b) == 0 {
		return fmt.Errorf("sendmsg: empty message")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.msg = unix.Msghdr{}
	t.iov.Base = &b[0]
	t.iov.SetLen(len(b))
	t.msg.Iov = &t.iov
	t.msg.Iovlen = 1
	t.oob = [64]byte{}
	if t.ipv6 {
		t.sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
		t.msg.Name = (*byte)(unsafe.Pointer(&t.sa6))
		t.msg.Namelen = unix.SizeofSockaddrInet6
		h := (*unix.Cmsghdr)(unsafe.Pointer(&t.oob[0]))
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&t.oob[unix.CmsgLen(0)]))
		pi.Addr, pi.Ifindex = src.As16(), uint32(ifIndex)
		off := unix.CmsgSpace(unix.SizeofInet6Pktinfo)
		h = (*unix.Cmsghdr)(unsafe.Pointer(&t.oob[off]))
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT
		h.SetLen(unix.CmsgLen(4))
		*(*int32)(unsafe.Pointer(&t.oob[off+unix.CmsgLen(0)])) = ttlVRRP
		t.msg.Control = &t.oob[0]
		t.msg.SetControllen(oobSize6)
	} else {
		t.sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
		t.msg.Name = (*byte)(unsafe.Pointer(&t.sa4))
		t.msg.Namelen = unix.SizeofSockaddrInet4
		h := (*unix.Cmsghdr)(unsafe.Pointer(&t.oob[0]))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&t.oob[unix.CmsgLen(0)]))
		pi.Ifindex, pi.Spec_dst = int32(ifIndex), src.As4()
		t.msg.Control = &t.oob[0]
		t.msg.SetControllen(oobSize4)
	}
	t.n, t.errno = 0, 0
	err := t.rc.Write(t.writeFn)
	// Do not keep the caller's buffer alive.
	t.iov.Base = nil
	if err != nil {
		return fmt.Errorf("sendmsg: %w", err)
	}
	if t.errno != 0 {
		return fmt.Errorf("sendmsg: %w", t.errno)
	}
	if t.n != len(b) {
		return fmt.Errorf("sendmsg: sent %d of %d bytes", t.n, len(b))
	}
	return nil
}

// send is one non-blocking sendmsg(2) of t.msg; it reports whether the
// write is done (false: wait for the socket to be writable).
func (t *rawTx) send(fd uintptr) bool {
	n, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&t.msg)), unix.MSG_DONTWAIT)
	for e == unix.EINTR {
		n, _, e = unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&t.msg)), unix.MSG_DONTWAIT)
	}
	if e == unix.EAGAIN {
		return false
	}
	t.n, t.errno = int(n), e
	return true
}
