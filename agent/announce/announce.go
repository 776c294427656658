package announce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"

	"github.com/go-logr/logr"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// allNodes is the IPv6 link-local all-nodes multicast group, the
// destination of unsolicited neighbour advertisements (RFC 4861 §7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

// garpWriter sends ARP packets in Ethernet frames; *arp.Client
// implements it.
type garpWriter interface {
	WriteTo(p *arp.Packet, addr net.HardwareAddr) error
	Close() error
}

// naWriter sends NDP messages; *icmp6Conn implements it.
type naWriter interface {
	WriteMessage(m ndp.Message, dst netip.Addr) error
	Close() error
}

var (
	_ garpWriter = (*arp.Client)(nil)
	_ naWriter   = (*icmp6Conn)(nil)
	_ Sender     = (*Announcer)(nil)
)

// Announcer sends gratuitous ARPs and unsolicited neighbour advertisements
// on one interface. Its sockets are opened on first use, reopened after a
// send error (the interface may have been recreated), and closed by Close.
// It is safe for concurrent use.
type Announcer struct {
	ifname string
	log    logr.Logger
	// ns is the network namespace the sockets are opened in (entered with
	// setns(2) on a locked thread, which needs CAP_SYS_ADMIN), or
	// netns.None() for the namespace of the calling thread. The agent
	// leaves it at None; the tests set it, and keep it open until Close.
	ns netns.NsHandle

	mu     sync.Mutex
	garp   garpWriter
	na     naWriter
	garpHW net.HardwareAddr // MAC of the interface when garp was opened
	naHW   net.HardwareAddr // MAC of the interface when na was opened
}

// New returns an Announcer for the interface ifname. It opens nothing yet:
// the ARP socket is opened by Prepare or the first IPv4 announcement (the interface
// must then have an IPv4 address, the VIP counts) and the NDP socket by the
// first IPv6 one (the interface must then have a usable, non-tentative
// link-local address, which is the source of the advertisements). Sockets
// are opened in the network namespace of the calling thread.
func New(ifname string, log logr.Logger) (*Announcer, error) {
	if ifname == "" || len(ifname) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("announcer for interface %q: invalid interface name", ifname)
	}
	return &Announcer{ifname: ifname, log: log, ns: netns.None()}, nil
}

// Prepare opens now the socket that the announcements of one family need
// (ARP for IPv4, NDP for IPv6), instead of at the first announcement: a
// router that becomes master then announces its VIPs right after adding
// them. Opening takes tens of milliseconds on a slow machine, and until
// the clients have the announcement they keep sending to the previous
// master (docs/bootstrap.md). A failure changes nothing: the first
// announcement tries again.
func (a *Announcer) Prepare(ipv6 bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ipv6 {
		if a.na != nil {
			return nil
		}
		return a.inNetNS(a.openNDP)
	}
	if a.garp != nil {
		return nil
	}
	return a.inNetNS(a.openARP)
}

// Announce sends one announcement for each VIP, now: a gratuitous ARP for
// an IPv4 VIP, an unsolicited neighbour advertisement for an IPv6 one. It
// tries every VIP and returns the errors of those that failed.
func (a *Announcer) Announce(vips []netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, vip := range vips {
		vip = vip.Unmap()
		var err error
		switch {
		case vip.Is4():
			err = a.sendGARP(vip)
			if err != nil {
				err = fmt.Errorf("sending gratuitous ARP for %s on %s: %w", vip, a.ifname, err)
			}
		case vip.Is6():
			err = a.sendNA(vip)
			if err != nil {
				err = fmt.Errorf("sending neighbour advertisement for %s on %s: %w", vip, a.ifname, err)
			}
		default:
			err = fmt.Errorf("announcing on %s: invalid VIP %s", a.ifname, vip)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes the sockets. The Announcer may be used again: the next
// announcement reopens them.
func (a *Announcer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	if a.garp != nil {
		errs = append(errs, a.garp.Close())
		a.garp = nil
	}
	if a.na != nil {
		errs = append(errs, a.na.Close())
		a.na = nil
	}
	return errors.Join(errs...)
}

func (a *Announcer) sendGARP(vip netip.Addr) error {
	if a.garp == nil {
		if err := a.inNetNS(a.openARP); err != nil {
			return err
		}
	}
	if err := writeGARP(a.garp, a.garpHW, vip); err != nil {
		// Reopen next time: the interface may be gone and back.
		_ = a.garp.Close()
		a.garp = nil
		return err
	}
	a.log.V(1).Info("gratuitous ARP sent", "interface", a.ifname, "vip", vip)
	return nil
}

func (a *Announcer) sendNA(vip netip.Addr) error {
	if a.na == nil {
		if err := a.inNetNS(a.openNDP); err != nil {
			return err
		}
	}
	if err := writeNA(a.na, a.naHW, vip); err != nil {
		_ = a.na.Close()
		a.na = nil
		return err
	}
	a.log.V(1).Info("neighbour advertisement sent", "interface", a.ifname, "vip", vip)
	return nil
}

// writeGARP sends the gratuitous ARP keepalived sends (see garpPacket).
func writeGARP(w garpWriter, mac net.HardwareAddr, vip netip.Addr) error {
	p, err := garpPacket(mac, vip)
	if err != nil {
		return err
	}
	return w.WriteTo(p, broadcastHW)
}

// writeNA sends an unsolicited neighbour advertisement for vip to ff02::1:
// Override set (replace the cached address, RFC 4861 §7.2.6), Solicited and
// Router clear, with the Target Link-Layer Address option. The Conn sets
// hop limit 255 and the source address.
func writeNA(w naWriter, mac net.HardwareAddr, vip netip.Addr) error {
	return w.WriteMessage(neighborAdvertisement(mac, vip), allNodes)
}

func neighborAdvertisement(mac net.HardwareAddr, vip netip.Addr) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options: []ndp.Option{&ndp.LinkLayerAddress{
			Direction: ndp.Target,
			Addr:      mac,
		}},
	}
}

func (a *Announcer) openARP() error {
	ifi, err := net.InterfaceByName(a.ifname)
	if err != nil {
		return err
	}
	if len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("interface has no Ethernet address (%q)", ifi.HardwareAddr)
	}
	c, err := dialARP(ifi)
	if err != nil {
		return fmt.Errorf("opening ARP socket: %w", err)
	}
	a.garp, a.garpHW = c, ifi.HardwareAddr
	return nil
}

func (a *Announcer) openNDP() error {
	ifi, err := net.InterfaceByName(a.ifname)
	if err != nil {
		return err
	}
	if len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("interface has no Ethernet address (%q)", ifi.HardwareAddr)
	}
	src, err := linkLocal(ifi)
	if err != nil {
		return err
	}
	c, err := listenICMP6(ifi, src)
	if err != nil {
		return fmt.Errorf("opening ICMPv6 socket: %w", err)
	}
	a.na, a.naHW = c, ifi.HardwareAddr
	return nil
}

// inNetNS runs f in the Announcer's network namespace, if one was given.
func (a *Announcer) inNetNS(f func() error) error {
	if !a.ns.IsOpen() {
		return f()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("getting current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(a.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace: %w", err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked (and in the wrong namespace) so that no
		// other goroutine runs on it; it ends with this goroutine.
		return errors.Join(ferr, fmt.Errorf("restoring network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}
