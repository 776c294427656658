package transport

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoSource is wrapped by the error of Hub.Subscribe when the interface has no
// usable source address: the configured Options.Source is not on it, or it has
// no IPv4 address, or (IPv6) no link-local address yet. The address may
// appear later (an interface just brought up, NetworkManager still
// configuring it), so a caller may retry.
var ErrNoSource = errors.New("no usable source address")

// ErrTentative is wrapped by the error of Hub.Subscribe when the IPv6 source address
// is on the interface but still tentative: duplicate address detection has not
// finished, and the kernel would refuse to send from it. With default sysctls
// this lasts one to two seconds after the link comes up; retry.
var ErrTentative = errors.New("source address is tentative")

// ifAddr is one address of the interface with its IFA_F_* flags.
type ifAddr struct {
	addr  netip.Addr
	flags int
}

// interfaceAddrs lists the addresses of one family on the interface, in the
// kernel's order (IPv4: primaries before secondaries, oldest first). It runs
// in the network namespace of the calling thread.
func interfaceAddrs(ifIndex int, ipv6 bool) ([]ifAddr, error) {
	family := netlink.FAMILY_V4
	if ipv6 {
		family = netlink.FAMILY_V6
	}
	link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifIndex}}
	var (
		list []netlink.Addr
		err  error
	)
	// A dump interrupted by a concurrent change is retried a few times.
	for range 3 {
		list, err = netlink.AddrList(link, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	addrs := make([]ifAddr, 0, len(list))
	for _, a := range list {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		addrs = append(addrs, ifAddr{addr: ip.Unmap(), flags: a.Flags})
	}
	return addrs, nil
}

// chooseSource picks the address to send from among the interface's
// addresses of the wanted family: want if it is set (it must be on the
// interface and usable), otherwise the first primary IPv4 address, or the
// IPv6 link-local address (RFC 9568 §5.1.2.1).
func chooseSource(addrs []ifAddr, want netip.Addr, ipv6 bool) (netip.Addr, error) {
	if want.IsValid() {
		want = want.WithZone("").Unmap()
		if want.Is6() != ipv6 {
			return netip.Addr{}, fmt.Errorf("source %s is not an %s address", want, familyName(ipv6))
		}
		for _, a := range addrs {
			if a.addr == want {
				return want, usable(a)
			}
		}
		return netip.Addr{}, fmt.Errorf("%w: %s is not on the interface", ErrNoSource, want)
	}
	if !ipv6 {
		for _, a := range addrs {
			if a.addr.Is4() && a.flags&unix.IFA_F_SECONDARY == 0 {
				return a.addr, nil
			}
		}
		return netip.Addr{}, fmt.Errorf("%w: the interface has no IPv4 address", ErrNoSource)
	}
	var firstErr error
	for _, a := range addrs {
		if !a.addr.Is6() || !a.addr.IsLinkLocalUnicast() {
			continue
		}
		err := usable(a)
		if err == nil {
			return a.addr, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return netip.Addr{}, firstErr
	}
	return netip.Addr{}, fmt.Errorf("%w: the interface has no IPv6 link-local address", ErrNoSource)
}

// usable says why the kernel would not send from a, or nil.
func usable(a ifAddr) error {
	switch {
	case a.flags&unix.IFA_F_DADFAILED != 0:
		return fmt.Errorf("%w: %s failed duplicate address detection", ErrNoSource, a.addr)
	case a.flags&unix.IFA_F_TENTATIVE != 0:
		return fmt.Errorf("%w: %s (IPv6 duplicate address detection still running)", ErrTentative, a.addr)
	}
	return nil
}

func familyName(ipv6 bool) string {
	if ipv6 {
		return "IPv6"
	}
	return "IPv4"
}
