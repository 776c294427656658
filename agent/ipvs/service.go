package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Protocol is a virtual service's IP protocol; its value is the IANA
// protocol number, as IPVS uses it.
type Protocol uint16

// The protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String returns "tcp", "udp", "sctp" or "proto-N".
func (p Protocol) String() string {
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

// ParseProtocol parses "tcp", "udp" or "sctp" (any case).
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	case "sctp":
		return SCTP, nil
	}
	return 0, fmt.Errorf("ipvs: unknown protocol %q (want tcp, udp or sctp)", s)
}

// Forward is how IPVS forwards packets to a real server.
type Forward uint8

// Forwarding methods. The zero value, ForwardDefault, means NAT on a Service
// and "the service's method" on a Real.
const (
	ForwardDefault Forward = iota
	// NAT rewrites the destination (ipvsadm -m, "masq").
	NAT
	// DR rewrites the destination MAC only (ipvsadm -g, "route"/"droute").
	DR
	// Tunnel encapsulates in IP-in-IP (ipvsadm -i, "tunnel").
	Tunnel
	// Local is what the kernel reports for a real server it delivers to
	// locally (IP_VS_CONN_F_LOCALNODE); it cannot be requested.
	Local
)

// String returns the keepalived word: "masq", "droute", "tunnel", "local",
// or "" for ForwardDefault.
func (f Forward) String() string {
	switch f {
	case ForwardDefault:
		return ""
	case NAT:
		return "masq"
	case DR:
		return "droute"
	case Tunnel:
		return "tunnel"
	case Local:
		return "local"
	}
	return "forward-" + strconv.Itoa(int(f))
}

// Flag is a service flag of IPVS (IP_VS_SVC_F_*) that the Service type does
// not express otherwise. Persistence is Service.Persistence; the kernel's
// internal "hashed" flag never appears.
type Flag uint32

// Service flags (<linux/ip_vs.h>).
const (
	// FlagOnePacket schedules each UDP datagram on its own (ipvsadm -o).
	FlagOnePacket Flag = 0x0004
	// FlagSched1 is sh-fallback or mh-fallback.
	FlagSched1 Flag = 0x0008
	// FlagSched2 is sh-port or mh-port.
	FlagSched2 Flag = 0x0010
	// FlagSched3 is reserved for schedulers.
	FlagSched3 Flag = 0x0020

	flagPersistent Flag = 0x0001 // IP_VS_SVC_F_PERSISTENT, from Persistence
	flagHashed     Flag = 0x0002 // IP_VS_SVC_F_HASHED, set by the kernel
	flagsSettable       = FlagOnePacket | FlagSched1 | FlagSched2 | FlagSched3
)

// Schedulers vipvs offers (the VM loads their modules).
var schedulers = map[string]bool{"rr": true, "wrr": true, "lc": true, "wlc": true, "sh": true, "mh": true}

// DefaultScheduler is used when Service.Scheduler is empty (ipvsadm's
// default).
const DefaultScheduler = "wlc"

// MaxWeight is the largest weight the kernel reports faithfully: it takes a
// 32-bit weight but moby/ipvs reads 16 bits back.
const MaxWeight = 65535

// Service is a virtual service as the agent wants it or as the kernel has
// it. Its identity is Key: protocol, VIP and port.
type Service struct {
	VIP      netip.Addr
	Port     uint16
	Protocol Protocol
	// Scheduler is rr, wrr, lc, wlc, sh or mh; empty means
	// DefaultScheduler.
	Scheduler string
	// Persistence is the persistence timeout, in whole seconds; 0 means
	// none.
	Persistence time.Duration
	// Flags are extra service flags (FlagOnePacket, scheduler flags).
	Flags Flag
	// Forward is the forwarding method of the reals that do not set their
	// own; ForwardDefault means NAT.
	Forward Forward
	// Reals are the real servers.
	Reals []Real
	// Inserted lists the reals of a service read from the kernel in the
	// order they were added to it, oldest first (the kernel keeps them in
	// a list, the newest at its head, and reports them in that list's
	// order). The hashing schedulers (sh, mh) build their lookup tables
	// from that order (see Hashing). Nil in a desired service; Diff then
	// assumes the reals of the kernel's service were added in order.
	Inserted []netip.AddrPort
}

// Hashing reports whether the scheduler builds a lookup table from the
// list of real servers in the kernel's order: sh and mh. For a hashing
// service Diff keeps that order canonical (see Diff), so that every
// director holding the same service maps a flow to the same real server.
func Hashing(scheduler string) bool { return scheduler == "sh" || scheduler == "mh" }

// Real is a real server of a Service.
type Real struct {
	Addr netip.Addr
	// Port is the real server's port; 0 means the service's port.
	Port uint16
	// Weight is 0 (drained: existing connections may finish) to
	// MaxWeight.
	Weight int
	// Nominal is the real's weight when it is not drained, 0 to
	// MaxWeight; 0 means Weight. It matters only for a real of a hashing
	// service (mh) that is added while drained (Weight 0): the kernel's mh
	// keeps a drained real's share of its lookup table at the last
	// non-zero weight it had (dest->last_weight), but gives a real added
	// with weight 0 no share at all. Diff therefore adds such a real with
	// its Nominal weight and drains it at once, so that its table equals
	// the one of a director that drained the real later. Never read back
	// from the kernel.
	Nominal int
	// Forward overrides the service's forwarding method when set. Services
	// read from the kernel set it on every real.
	Forward Forward
}

// Key returns the identity of the service: "tcp/192.0.2.100:6443",
// "udp/[2001:db8::1]:53".
func (s Service) Key() string {
	return s.Protocol.String() + "/" + netip.AddrPortFrom(s.VIP, s.Port).String()
}

// serviceID is the identity of a service as a map key; Key is its text.
type serviceID struct {
	proto Protocol
	vip   netip.Addr
	port  uint16
}

func (s Service) id() serviceID { return serviceID{s.Protocol, s.VIP, s.Port} }

// key returns the identity of the real server within its service.
func (r Real) key() netip.AddrPort { return netip.AddrPortFrom(r.Addr, r.Port) }

// Validate reports every problem of a desired service, joined.
func (s Service) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !s.VIP.IsValid() || s.VIP.Is4In6() || s.VIP.Zone() != "" {
		add("vip %v: must be a plain IPv4 or IPv6 address", s.VIP)
	}
	switch s.Protocol {
	case TCP, UDP, SCTP:
	default:
		add("protocol %v: must be tcp, udp or sctp", s.Protocol)
	}
	if s.Port == 0 {
		add("port 0: must be 1-65535")
	}
	if s.Scheduler != "" && !schedulers[s.Scheduler] {
		add("scheduler %q: must be rr, wrr, lc, wlc, sh or mh", s.Scheduler)
	}
	if s.Persistence < 0 || s.Persistence%time.Second != 0 || s.Persistence > (1<<32-1)*time.Second {
		add("persistence %s: must be whole seconds, 0 for none", s.Persistence)
	}
	if s.Flags&^flagsSettable != 0 {
		add("flags %#x: only one-packet and the scheduler flags may be set", uint32(s.Flags))
	}
	if s.Forward > Tunnel {
		add("forwarding method %v: must be masq, droute or tunnel", s.Forward)
	}
	// Duplicates: a linear search of a short list, a map for a long one.
	var short [16]netip.AddrPort
	keys := short[:0]
	var seen map[netip.AddrPort]bool
	if len(s.Reals) > len(short) {
		seen = make(map[netip.AddrPort]bool, len(s.Reals))
	}
	for i, r := range s.Reals {
		r = r.normal(s)
		if !r.Addr.IsValid() || r.Addr.Is4In6() || r.Addr.Zone() != "" || r.Addr.Is4() != s.VIP.Is4() {
			add("reals[%d] %v: must be a plain address of the VIP's family", i, r.Addr)
		}
		if r.Weight < 0 || r.Weight > MaxWeight {
			add("reals[%d] weight %d: must be 0-%d", i, r.Weight, MaxWeight)
		}
		if r.Nominal < 0 || r.Nominal > MaxWeight {
			add("reals[%d] nominal weight %d: must be 0-%d", i, r.Nominal, MaxWeight)
		}
		if r.Forward > Tunnel {
			add("reals[%d] forwarding method %v: must be masq, droute or tunnel", i, r.Forward)
		}
		if seen[r.key()] || seen == nil && slices.Contains(keys, r.key()) {
			add("reals[%d] %s: duplicate real server", i, r.key())
		}
		if seen != nil {
			seen[r.key()] = true
		} else {
			keys = append(keys, r.key())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ipvs: service %s: %w", s.Key(), err)
	}
	return nil
}

// normal returns the service with its defaults filled in, for comparison:
// the scheduler and forwarding method set, the reals normalised and
// sorted.
func (s Service) normal() Service {
	if s.Scheduler == "" {
		s.Scheduler = DefaultScheduler
	}
	if s.Forward == ForwardDefault {
		s.Forward = NAT
	}
	reals := make([]Real, len(s.Reals))
	for i, r := range s.Reals {
		reals[i] = r.normal(s)
	}
	// A stable sort keeps duplicates in their order: the first one wins;
	// Validate reports them.
	slices.SortStableFunc(reals, func(a, b Real) int { return a.key().Compare(b.key()) })
	s.Reals = slices.CompactFunc(reals, func(a, b Real) bool { return a.key() == b.key() })
	return s
}

// normal fills in the real's port and forwarding method from s.
func (r Real) normal(s Service) Real {
	if r.Port == 0 {
		r.Port = s.Port
	}
	if r.Forward == ForwardDefault {
		r.Forward = s.Forward
		if r.Forward == ForwardDefault {
			r.Forward = NAT
		}
	}
	return r
}

// equalServices reports whether two normalised services are the same in
// every field, reals included.
func equalServices(a, b Service) bool {
	return a.VIP == b.VIP && a.Port == b.Port && a.Protocol == b.Protocol && a.Forward == b.Forward &&
		attrsEqual(a, b) && slices.Equal(a.Reals, b.Reals)
}

// attrsEqual reports whether two normalised services have the same
// service-level attributes (not their reals).
func attrsEqual(a, b Service) bool {
	return a.Scheduler == b.Scheduler && a.Persistence == b.Persistence && a.Flags == b.Flags
}

// compareServices orders services by protocol, VIP and port.
func compareServices(a, b Service) int { return compareIDs(a.id(), b.id()) }

func compareIDs(a, b serviceID) int {
	if a.proto != b.proto {
		return cmpInt(int(a.proto), int(b.proto))
	}
	if c := a.vip.Compare(b.vip); c != 0 {
		return c
	}
	return cmpInt(int(a.port), int(b.port))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
