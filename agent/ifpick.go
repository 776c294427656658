package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"

	"github.com/vipvs/vipvs/agent/config"
)

// pickInterfaces returns a copy of c in which every router without an
// interface has the one whose subnet holds its first VIP. A router for
// which there is none keeps an empty interface, and the error says why;
// the caller does not start it. c is returned as it is when every router
// names its interface, or when the node's addresses cannot be listed (with
// the error): never nil.
func pickInterfaces(c *config.Config) (*config.Config, error) {
	need := false
	for _, r := range c.Routers {
		need = need || r.Interface == ""
	}
	if !need {
		return c, nil
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return c, fmt.Errorf("listing the node's addresses to pick the routers' interfaces: %w", err)
	}
	var own []ifaceAddr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil {
			continue
		}
		ones, _ := a.Mask.Size()
		own = append(own, ifaceAddr{index: a.LinkIndex, prefix: netip.PrefixFrom(ip.Unmap(), ones)})
	}
	out := *c
	out.Routers = append([]config.Router(nil), c.Routers...)
	var errs []error
	for i := range out.Routers {
		r := &out.Routers[i]
		if r.Interface != "" {
			continue
		}
		idx, err := pickInterface(r.VIPs[0], own)
		if err != nil {
			errs = append(errs, fmt.Errorf("router %s: %w", r.Name, err))
			continue
		}
		l, err := netlink.LinkByIndex(idx)
		if err != nil {
			errs = append(errs, fmt.Errorf("router %s: reading interface %d, which holds the subnet of VIP %s: %w", r.Name, idx, r.VIPs[0], err))
			continue
		}
		r.Interface = l.Attrs().Name
	}
	return &out, errors.Join(errs...)
}

type ifaceAddr struct {
	index  int
	prefix netip.Prefix
}

// pickInterface returns the index of the interface whose subnet holds vip:
// one with an address (other than vip itself) whose prefix contains vip,
// or, for a VIP given with the prefix length of its subnet, an address in
// that subnet. Of several, the one with the lowest index.
func pickInterface(vip netip.Prefix, own []ifaceAddr) (int, error) {
	subnet := vip.Masked()
	var idx []int
	for _, a := range own {
		if a.prefix.Addr() == vip.Addr() || a.prefix.Addr().IsLoopback() {
			continue
		}
		if a.prefix.Contains(vip.Addr()) || subnet.Contains(a.prefix.Addr()) {
			idx = append(idx, a.index)
		}
	}
	if len(idx) == 0 {
		return 0, fmt.Errorf("no interface has an address in the subnet of VIP %s (%s): set the router's interface", vip.Addr(), subnet)
	}
	sort.Ints(idx)
	return idx[0], nil
}
