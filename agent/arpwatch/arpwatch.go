// Package arpwatch watches one link for other nodes that claim a set of IPv4
// addresses: any ARP packet (a gratuitous ARP, an ARP reply, a request)
// whose sender address is one of them and whose sender MAC is not this
// interface's. A router uses it to learn that the router it yielded to has
// announced the VIPs, and that a node that should not hold a VIP still
// answers for it (the node of a crashed agent). Probe sends an RFC 5227 ARP
// probe, which every node holding the address answers.
package arpwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/vishvananda/netlink"
)

// Sighting is one ARP packet from another node that claims a watched
// address.
type Sighting struct {
	// Addr is the claimed address (the ARP sender address).
	Addr netip.Addr
	// MAC is the claimant's link-layer address (the ARP sender MAC).
	MAC net.HardwareAddr
	// Reply says the packet was an ARP reply (to our probe or to a
	// client), not an announcement.
	Reply bool
}

// Watcher reads the ARP packets of one interface. Create it with Open.
type Watcher struct {
	ifname string
	c      *arp.Client
	own    net.HardwareAddr
}

// readPoll bounds a blocking read, so that Run notices its context.
const readPoll = 500 * time.Millisecond

// Open opens an ARP socket on ifname (it needs CAP_NET_RAW and an IPv4
// address on the interface).
func Open(ifname string) (*Watcher, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("arpwatch: interface %s: %w", ifname, err)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return nil, fmt.Errorf("arpwatch: opening an ARP socket on %s: %w", ifname, err)
	}
	return &Watcher{ifname: ifname, c: c, own: ifi.HardwareAddr}, nil
}

// Run reads ARP packets until ctx is done or the socket fails, and calls
// seen for each one from another MAC whose sender address watched accepts.
// seen runs on Run's goroutine and must not block.
func (w *Watcher) Run(ctx context.Context, watched func(netip.Addr) bool, seen func(Sighting)) error {
	for ctx.Err() == nil {
		if err := w.c.SetReadDeadline(time.Now().Add(readPoll)); err != nil {
			return fmt.Errorf("arpwatch: %s: %w", w.ifname, err)
		}
		p, _, err := w.c.Read()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("arpwatch: reading on %s: %w", w.ifname, err)
		}
		if s, ok := w.claim(p, watched); ok {
			seen(s)
		}
	}
	return nil
}

// claim says whether p claims a watched address for another node.
func (w *Watcher) claim(p *arp.Packet, watched func(netip.Addr) bool) (Sighting, bool) {
	if !p.SenderIP.Is4() || p.SenderIP.IsUnspecified() || !watched(p.SenderIP) {
		return Sighting{}, false
	}
	if len(p.SenderHardwareAddr) == 0 || bytes.Equal(p.SenderHardwareAddr, w.own) {
		return Sighting{}, false
	}
	return Sighting{Addr: p.SenderIP, MAC: append(net.HardwareAddr(nil), p.SenderHardwareAddr...), Reply: p.Operation == arp.OperationReply}, true
}

// Probe broadcasts an ARP probe for addr (RFC 5227 §2.1.1: sender address
// 0.0.0.0): every node that holds addr answers it to our MAC, and Run
// reports the answers of the others.
func (w *Watcher) Probe(addr netip.Addr) error {
	p, err := arp.NewPacket(arp.OperationRequest, w.own, netip.IPv4Unspecified(), ethernet.Broadcast, addr)
	if err != nil {
		return fmt.Errorf("arpwatch: probe for %s: %w", addr, err)
	}
	// The target MAC of a request is zero (RFC 826); NewPacket sets it to
	// the destination.
	p.TargetHardwareAddr = make(net.HardwareAddr, len(w.own))
	if err := w.c.WriteTo(p, ethernet.Broadcast); err != nil {
		return fmt.Errorf("arpwatch: probe for %s on %s: %w", addr, w.ifname, err)
	}
	return nil
}

// MAC returns the interface's own link-layer address.
func (w *Watcher) MAC() net.HardwareAddr { return w.own }

// Close closes the socket; Run returns.
func (w *Watcher) Close() error { return w.c.Close() }

// Neighbors returns the MACs the kernel's neighbour table holds for addrs
// on ifname (entries that are reachable, stale, being checked or
// permanent): a peer's MAC is known before it ever advertises.
func Neighbors(ifname string, addrs []netip.Addr) (map[netip.Addr]net.HardwareAddr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("arpwatch: interface %s: %w", ifname, err)
	}
	list, err := netlink.NeighList(link.Attrs().Index, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("arpwatch: neighbours of %s: %w", ifname, err)
	}
	const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT
	out := map[netip.Addr]net.HardwareAddr{}
	for _, n := range list {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.State&usable == 0 || len(n.HardwareAddr) == 0 {
			continue
		}
		a = a.Unmap()
		for _, want := range addrs {
			if want.WithZone("") == a {
				out[want] = n.HardwareAddr
			}
		}
	}
	return out, nil
}
