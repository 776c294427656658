package packet

import (
	"crypto/subtle"
	"errors"
	"net/netip"
	"slices"
	"time"
)

// DropReason says why a received advertisement was dropped. Its String
// values are stable kebab-case names, used as the "reason" label of the
// adverts-dropped counter.
type DropReason int

// The reasons. The RFC sections are those of RFC 9568 §7.1 unless noted.
const (
	// DropNone means the advertisement was accepted.
	DropNone DropReason = iota
	// DropTTL: the IPv4 TTL or IPv6 hop limit is not 255.
	DropTTL
	// DropVersion: the version is neither 2 nor 3, or (Check) not the
	// configured one.
	DropVersion
	// DropType: the type is not 1 (advertisement) (§5.2.2).
	DropType
	// DropLength: the message is shorter than its header, or its length
	// does not match the address count (incomplete or with trailing bytes).
	DropLength
	// DropAddressCount: the address count is 0 (§5.2.5: the minimum is 1).
	DropAddressCount
	// DropFamily: the addresses are not of the IP source's family, v2 came
	// over IPv6, or the IP source and destination differ in family.
	DropFamily
	// DropChecksum: the checksum is wrong (for v3 over IPv4 in both
	// [ChecksumMode]s).
	DropChecksum
	// DropUnknownVRID: the VRID is 0, or (Check) not the configured one.
	DropUnknownVRID
	// DropInterval: the interval is 0, or (Check, v2 only) differs from
	// the configured Adver Int (RFC 3768 §7.1).
	DropInterval
	// DropOwner: the receiving router is the address owner (priority
	// 255) and must drop every advertisement for its VRID.
	DropOwner
	// DropAuth: the v2 authentication does not match the configuration
	// (RFC 3768 §7.1): another Auth Type, a wrong password, or AH.
	DropAuth
	// DropAddressMismatch: the address list differs from the configured
	// one, whatever the sender's priority: most likely another cluster
	// using the same VRID on the same link, or a forged advert.
	DropAddressMismatch

	numReasons
)

// String returns the reason's stable label value, e.g. "address-mismatch".
func (r DropReason) String() string {
	switch r {
	case DropNone:
		return "none"
	case DropTTL:
		return "ttl"
	case DropVersion:
		return "version"
	case DropType:
		return "type"
	case DropLength:
		return "length"
	case DropAddressCount:
		return "address-count"
	case DropFamily:
		return "family"
	case DropChecksum:
		return "checksum"
	case DropUnknownVRID:
		return "unknown-vrid"
	case DropInterval:
		return "interval"
	case DropOwner:
		return "owner"
	case DropAuth:
		return "auth"
	case DropAddressMismatch:
		return "address-mismatch"
	default:
		return "unknown"
	}
}

// Received is what the transport hands over for one packet.
type Received struct {
	// Payload is the VRRP message (IP header already stripped).
	Payload []byte
	// Src and Dst are the IP source and destination. An IPv4-mapped IPv6
	// address is taken as IPv4; a zone is ignored.
	Src, Dst netip.Addr
	// TTL is the IPv4 TTL or IPv6 hop limit as received.
	TTL int
}

// Parse applies the router-independent receive checks of RFC 9568 §7.1 and
// RFC 3768 §7.1, in this order: TTL/hop limit 255, version 2 or 3, type 1
// (advertisement), the complete message including all addresses and the v2
// authentication data (and nothing after it), a non-zero address count, the
// address family of Src and Dst, the checksum (for v3 over IPv4 either
// [ChecksumMode] is accepted), a non-zero VRID
// and a non-zero interval. It returns the decoded advert with DropNone, or
// the first failing check with a zero Advert.
//
// Parse never panics, whatever the input.
func Parse(r Received) (Advert, DropReason) {
	if r.TTL != TTL {
		return Advert{}, DropTTL
	}
	a, err := decode(r.Payload)
	if err != nil {
		return Advert{}, reasonFor(err)
	}
	src, dst := r.Src.Unmap(), r.Dst.Unmap()
	is6 := a.Addrs[0].Is6()
	if !src.IsValid() || !dst.IsValid() || src.Is6() != is6 || dst.Is6() != is6 {
		return Advert{}, DropFamily
	}
	if !validChecksum(r.Payload, a.Version, src, dst) {
		return Advert{}, DropChecksum
	}
	if err := validate(a); err != nil {
		return Advert{}, reasonFor(err)
	}
	return a, DropNone
}

// validChecksum verifies the checksum, for v3 over IPv4 in either mode.
func validChecksum(b []byte, version int, src, dst netip.Addr) bool {
	if verify(b, version, src, dst, ChecksumPseudoHeader) {
		return true
	}
	return version == 3 && src.Is4() && verify(b, version, src, dst, ChecksumRFC9568)
}

// reasonFor maps an error of decode or validate to its drop reason.
func reasonFor(err error) DropReason {
	switch {
	case errors.Is(err, errVersion):
		return DropVersion
	case errors.Is(err, errType):
		return DropType
	case errors.Is(err, errAddressCount):
		return DropAddressCount
	case errors.Is(err, errVRID):
		return DropUnknownVRID
	case errors.Is(err, errInterval):
		return DropInterval
	default:
		return DropLength
	}
}

// Expect is what one configured virtual router requires of an advert for
// its VRID.
type Expect struct {
	// Version is the configured VRRP version, 2 or 3.
	Version int
	// VRID is the configured Virtual Router Identifier.
	VRID uint8
	// Interval is the configured advertisement interval. v2: the packet's
	// Adver Int MUST equal it (RFC 3768 §7.1); v3: not checked (Backups
	// learn it, RFC 9568 §6.4.2).
	Interval time.Duration
	// Password is the v2 simple text password, "" = none (Auth Type 0).
	// Compared in constant time, as the 8 bytes of [PasswordAuthData].
	// Ignored for v3, which has no authentication.
	Password string
	// Addrs are the configured virtual addresses; compared as a set
	// (order and duplicates do not matter).
	Addrs []netip.Addr
	// Owner says this router is the address owner (priority 255): its
	// received adverts MUST be dropped (RFC 9568 §7.1).
	Owner bool
}

// Check applies the per-router receive checks to an advert that [Parse]
// accepted, in the order of RFC 3768 §7.1 / RFC 9568 §7.1: version, VRID,
// owner, v2 authentication, v2 interval, and the address list.
//
// When the address list differs from want.Addrs the advert is dropped with
// DropAddressMismatch, whatever its priority: RFC 9568 §7.1 makes the check
// a MAY and would have an owner's (priority 255) advert with another list
// processed further; vipvs drops it as keepalived does, because an advert
// at 255 with foreign addresses is another cluster's owner or a forgery, and
// following it leaves our VIPs on no node (the foreign "owner" never
// announces them).
func Check(a Advert, want Expect) DropReason {
	if a.Version != want.Version {
		return DropVersion
	}
	if a.VRID != want.VRID {
		return DropUnknownVRID
	}
	if want.Owner {
		return DropOwner
	}
	if a.Version == 2 {
		if !authOK(a, want.Password) {
			return DropAuth
		}
		if a.Interval != want.Interval {
			return DropInterval
		}
	}
	if !sameAddrs(a.Addrs, want.Addrs) {
		return DropAddressMismatch
	}
	return DropNone
}

// authOK applies RFC 3768 §7.1 authentication: the Auth Type must be the
// configured one; for type 0 the Auth Data is ignored, for type 1 it must
// equal the password. AH (type 2) and unknown types are never accepted.
func authOK(a Advert, password string) bool {
	if password == "" {
		return a.AuthType == AuthNone
	}
	want := PasswordAuthData(password)
	// Evaluate the comparison whatever the type, so that timing does not
	// depend on which of the two conditions fails.
	same := subtle.ConstantTimeCompare(a.AuthData[:], want[:]) == 1
	return a.AuthType == AuthSimple && same
}

// sameAddrs reports whether a and b hold the same set of addresses, in
// any order, ignoring duplicates and zones. It does not modify its
// arguments.
func sameAddrs(a, b []netip.Addr) bool {
	return slices.Equal(addrSet(a), addrSet(b))
}

func addrSet(addrs []netip.Addr) []netip.Addr {
	s := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		s[i] = a.WithZone("")
	}
	slices.SortFunc(s, netip.Addr.Compare)
	return slices.Compact(s)
}
