package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Host is one namespace of a lab: a node, a client, or (internally) the switch.
// Its exported fields are fixed when the lab is built; treat them as read-only.
type Host struct {
	// Name is the short name inside the lab: "n1", "c1" (or "sw").
	Name string
	// Namespace is the named network namespace, /run/netns/<Namespace>, for
	// `ip netns exec` while debugging.
	Namespace string
	// IfName is the host's only interface besides lo, always IfName ("eth0").
	IfName string
	// MAC is eth0's address: 02:00:00:00:01:<i> for node i, 02:00:00:00:02:<j> for client j.
	MAC net.HardwareAddr
	// IPv4 and IPv6 are eth0's addresses, in the lab's subnets (Lab.Options).
	IPv4, IPv6 netip.Addr
	// LinkLocal is eth0's IPv6 link-local address (EUI-64 from MAC), without zone.
	LinkLocal netip.Addr

	lab     *Lab
	ns      netns.NsHandle
	nl      *netlink.Handle
	ifIndex int // of eth0, fixed once wired
}

// NS returns a handle to the host's network namespace, owned by the lab
// (do not close it; it is valid until Lab.Close).
func (h *Host) NS() netns.NsHandle { return h.ns }

// Netlink returns a netlink handle bound to the host's namespace, owned by
// the lab (do not close it). It is safe for concurrent use.
func (h *Host) Netlink() *netlink.Handle { return h.nl }

// Prefix4 returns IPv4 with the lab's prefix length (192.0.2.11/24).
func (h *Host) Prefix4() netip.Prefix { return netip.PrefixFrom(h.IPv4, h.lab.opts.IPv4.Bits()) }

// Prefix6 returns IPv6 with the lab's prefix length (2001:db8::11/64).
func (h *Host) Prefix6() netip.Prefix { return netip.PrefixFrom(h.IPv6, h.lab.opts.IPv6.Bits()) }

// Zone returns the numeric IPv6 zone of h's eth0 (its interface index), for
// link-local addresses used from h: n2.LinkLocal.WithZone(n1.Zone()) is n2 as
// seen from n1. Use it rather than "eth0": Go's name-to-index cache is
// process-wide and would look the name up in whatever namespace filled it.
func (h *Host) Zone() string { return strconv.Itoa(h.ifIndex) }

// String returns the host's name.
func (h *Host) String() string { return h.Name }

// Do runs fn on an OS thread switched into h's network namespace and waits
// for it. Sockets fn creates stay in that namespace for their whole life, and
// processes it forks start there. fn runs on its own goroutine: it must not
// call t.Fatal, and goroutines it starts are not in the namespace. The
// thread's namespace is restored afterwards; if that fails, the thread is
// destroyed rather than reused. A panic in fn is re-raised in the caller.
func (h *Host) Do(fn func() error) error {
	type result struct {
		err   error
		panic any
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("getting current namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(h.ns); err != nil {
			// setns failed, so the thread is still where it was.
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("entering namespace %s: %w", h.Namespace, err)}
			return
		}
		var r result
		func() {
			defer func() { r.panic = recover() }()
			r.err = fn()
		}()
		if err := netns.Set(orig); err != nil {
			r.err = errors.Join(r.err, fmt.Errorf("leaving namespace %s: %w", h.Namespace, err))
			res <- r
			return // still locked: the runtime destroys this thread
		}
		runtime.UnlockOSThread()
		res <- r
	}()
	r := <-res
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// sysctlPath maps "net.ipv4.ip_forward" to /proc/sys/net/ipv4/ip_forward. A
// key containing "/" is taken as a path below /proc/sys as is (for interface
// names with dots: "net/ipv4/conf/eth0.10/rp_filter").
func sysctlPath(key string) string {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	return filepath.Join("/proc/sys", key)
}

// SetSysctl writes a sysctl in h's namespace (net.* keys are per namespace).
func (h *Host) SetSysctl(key, value string) error {
	err := h.Do(func() error { return os.WriteFile(sysctlPath(key), []byte(value), 0) })
	if err != nil {
		return fmt.Errorf("setting sysctl %s=%s in %s: %w", key, value, h.Name, err)
	}
	return nil
}

// Sysctl reads a sysctl in h's namespace, without the trailing newline.
func (h *Host) Sysctl(key string) (string, error) {
	var b []byte
	err := h.Do(func() (err error) {
		b, err = os.ReadFile(sysctlPath(key))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("reading sysctl %s in %s: %w", key, h.Name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (h *Host) link() (netlink.Link, error) {
	link, err := h.nl.LinkByName(h.IfName)
	if err != nil {
		return nil, fmt.Errorf("finding %s in %s: %w", h.IfName, h.Name, err)
	}
	return link, nil
}

// Addrs returns the addresses configured on h's eth0 (both families, link-local included).
func (h *Host) Addrs() ([]netip.Prefix, error) {
	link, err := h.link()
	if err != nil {
		return nil, err
	}
	as, err := h.nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s in %s: %w", h.IfName, h.Name, err)
	}
	var ps []netip.Prefix
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		ps = append(ps, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return ps, nil
}

// HasAddr reports whether a (a VIP, say) is configured on h's eth0.
func (h *Host) HasAddr(a netip.Addr) (bool, error) {
	ps, err := h.Addrs()
	if err != nil {
		return false, err
	}
	a = a.Unmap().WithZone("")
	for _, p := range ps {
		if p.Addr() == a {
			return true, nil
		}
	}
	return false, nil
}

// Holders returns the nodes that have a configured on eth0, in node order.
func (l *Lab) Holders(a netip.Addr) ([]*Host, error) {
	var hs []*Host
	for _, h := range l.nodes {
		ok, err := h.HasAddr(a)
		if err != nil {
			return nil, err
		}
		if ok {
			hs = append(hs, h)
		}
	}
	return hs, nil
}

// usableNeigh are the neighbour states with a valid link-layer address.
const usableNeigh = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY |
	netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP

// Neighbor returns the link-layer address in h's neighbour (ARP or ND) table
// for a on eth0. ok is false when there is no entry with a usable address
// (none, or INCOMPLETE or FAILED).
func (h *Host) Neighbor(a netip.Addr) (mac net.HardwareAddr, ok bool, err error) {
	link, err := h.link()
	if err != nil {
		return nil, false, err
	}
	a = a.Unmap().WithZone("")
	family := netlink.FAMILY_V4
	if a.Is6() {
		family = netlink.FAMILY_V6
	}
	ns, err := h.nl.NeighList(link.Attrs().Index, family)
	if err != nil {
		return nil, false, fmt.Errorf("listing neighbours of %s in %s: %w", h.IfName, h.Name, err)
	}
	for _, n := range ns {
		ip, _ := netip.AddrFromSlice(n.IP)
		if ip.Unmap() == a && n.State&usableNeigh != 0 && len(n.HardwareAddr) > 0 {
			return n.HardwareAddr, true, nil
		}
	}
	return nil, false, nil
}

// LinkDown sets h's own eth0 administratively down, like `ip link set eth0
// down` on a real machine: the agent sees it, IPv4 and IPv6 addresses stay
// (keep_addr_on_down=1; the link-local goes and comes back on LinkUp), the
// kernel sends and receives nothing on it, and the bridge port loses carrier.
func (h *Host) LinkDown() error {
	link, err := h.link()
	if err != nil {
		return err
	}
	if err := h.nl.LinkSetDown(link); err != nil {
		return fmt.Errorf("setting %s down in %s: %w", h.IfName, h.Name, err)
	}
	return nil
}

// LinkUp sets h's eth0 up again and waits until it has carrier and its
// link-local address.
func (h *Host) LinkUp() error {
	link, err := h.link()
	if err != nil {
		return err
	}
	if err := h.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting %s up in %s: %w", h.IfName, h.Name, err)
	}
	return h.waitReady(setupTimeout)
}

// Unplug pulls h's cable: it sets h's port on the bridge down, so h's eth0
// stays administratively up but loses carrier (operstate LOWERLAYERDOWN/DOWN).
func (h *Host) Unplug() error {
	return h.setPort(false)
}

// Plug undoes Unplug and waits until eth0 has carrier and its link-local address.
func (h *Host) Plug() error {
	if err := h.setPort(true); err != nil {
		return err
	}
	return h.waitReady(setupTimeout)
}

func (h *Host) setPort(up bool) error {
	sw := h.lab.sw
	port, err := sw.nl.LinkByName(h.Name)
	if err != nil {
		return fmt.Errorf("finding bridge port %s: %w", h.Name, err)
	}
	if up {
		err = sw.nl.LinkSetUp(port)
	} else {
		err = sw.nl.LinkSetDown(port)
	}
	if err != nil {
		return fmt.Errorf("setting bridge port %s up=%t: %w", h.Name, up, err)
	}
	return nil
}

// waitReady waits until eth0 is operationally up and has its non-tentative
// link-local address.
func (h *Host) waitReady(timeout time.Duration) error {
	return WaitFor(timeout, fmt.Sprintf("%s: %s up with an IPv6 link-local address", h.Name, h.IfName), func() (bool, error) {
		link, err := h.link()
		if err != nil {
			return false, err
		}
		if link.Attrs().OperState != netlink.OperUp {
			return false, nil
		}
		as, err := h.nl.AddrList(link, netlink.FAMILY_V6)
		if err != nil {
			return false, fmt.Errorf("listing addresses of %s: %w", h.IfName, err)
		}
		for _, a := range as {
			ip, _ := netip.AddrFromSlice(a.IP)
			if ip == h.LinkLocal && a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
				return true, nil
			}
		}
		return false, nil
	})
}

// eui64LinkLocal returns the link-local address the kernel derives from mac
// (addr_gen_mode eui64, the default in a new namespace).
func eui64LinkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11], a[12] = mac[0]^2, mac[1], mac[2], 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// release closes the lab's handles on h; Close then removes the mount point.
func (h *Host) release() {
	if h.nl != nil {
		h.nl.Close()
		h.nl = nil
	}
	if h.ns.IsOpen() {
		h.ns.Close()
		h.ns = netns.None()
	}
}
