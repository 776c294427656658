package snat

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// IP protocol numbers of the protocols IPVS balances, for Target.Protocol.
const (
	TCP  uint8 = 6
	UDP  uint8 = 17
	SCTP uint8 = 132
)

// Target is a virtual service whose forwarded connections are masqueraded.
type Target struct {
	// VIP is the virtual service's address: a plain IPv4 or IPv6 address
	// (no zone, not IPv4-mapped).
	VIP netip.Addr
	// Port is the virtual service's port, 1-65535.
	Port uint16
	// Protocol is TCP (6), UDP (17) or SCTP (132).
	Protocol uint8
	// Masquerade source-NATs every forwarded connection to this node's own
	// address instead of the VIP: for a VIP that every node holds at once
	// (a router in mode bgp). The real server's answer to the VIP would be
	// delivered by its own stack (a node that holds the VIP too) or routed
	// back through the fabric to any node; to this node's address it comes
	// back here, where the connection's IPVS and conntrack state is. A
	// connection that ECMP moves to another node is lost either way (the
	// new node's source address differs).
	Masquerade bool
}

// String returns the target as "tcp/192.0.2.100:6443" or
// "udp/[2001:db8::100]:53", the same key as ipvs.Service.Key. Each rule
// carries it as its comment.
func (t Target) String() string {
	return protoName(t.Protocol) + "/" + netip.AddrPortFrom(t.VIP, t.Port).String()
}

func protoName(p uint8) string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case SCTP:
		return "sctp"
	}
	return "proto-" + strconv.Itoa(int(p))
}

// Validate reports every problem of the target, joined.
func (t Target) Validate() error {
	var errs []error
	if !t.VIP.IsValid() || t.VIP.Is4In6() || t.VIP.Zone() != "" || t.VIP.IsUnspecified() {
		errs = append(errs, fmt.Errorf("vip %v: must be a plain, specified IPv4 or IPv6 address", t.VIP))
	}
	if t.Port == 0 {
		errs = append(errs, errors.New("port 0: must be 1-65535"))
	}
	switch t.Protocol {
	case TCP, UDP, SCTP:
	default:
		errs = append(errs, fmt.Errorf("protocol %d: must be 6 (tcp), 17 (udp) or 132 (sctp)", t.Protocol))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("snat: target %s: %w", t, err)
	}
	return nil
}

// Family is an IP address family.
type Family uint8

// The families; the values are the IP versions.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "ipv4" or "ipv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "family-" + strconv.Itoa(int(f))
}

// Family returns the family of the target's VIP.
func (t Target) Family() Family {
	if t.VIP.Is4() {
		return IPv4
	}
	return IPv6
}

// families returns the families of the targets, IPv4 first, each once: the
// argument EnableConntrack needs for them.
func families(targets []Target) []Family {
	var fs []Family
	for _, f := range []Family{IPv4, IPv6} {
		if slices.ContainsFunc(targets, func(t Target) bool { return t.VIP.IsValid() && t.Family() == f }) {
			fs = append(fs, f)
		}
	}
	return fs
}

// compareTargets orders targets by VIP (IPv4 before IPv6), protocol and
// port: the order of the rules.
func compareTargets(a, b Target) int {
	if c := a.VIP.Compare(b.VIP); c != 0 {
		return c
	}
	if a.Protocol != b.Protocol {
		return int(a.Protocol) - int(b.Protocol)
	}
	return int(a.Port) - int(b.Port)
}

// normalize validates every target and returns them sorted, without
// duplicates. It reports every invalid target, joined.
func normalize(targets []Target) ([]Target, error) {
	var errs []error
	for _, t := range targets {
		if err := t.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := slices.Clone(targets)
	slices.SortFunc(out, compareTargets)
	return slices.Compact(out), nil
}
