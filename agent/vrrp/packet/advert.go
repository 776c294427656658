package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Wire constants (RFC 9568 §5.1, RFC 3768 §5.3).
const (
	// Protocol is the IP protocol number (IPv4) and next header (IPv6) of VRRP.
	Protocol = 112
	// TTL is the IPv4 TTL / IPv6 hop limit an advertisement is sent with
	// and must arrive with (RFC 9568 §5.1.1.3, §7.1).
	TTL = 255
	// PriorityOwner is the priority of the router that owns the virtual
	// addresses (RFC 9568 §5.2.4).
	PriorityOwner = 255
	// PriorityStop is the priority an Active router sends when it stops,
	// so that a Backup takes over after Skew_Time (RFC 9568 §5.2.4).
	PriorityStop = 0

	// AuthNone is the VRRPv2 Auth Type for no authentication (RFC 3768 §5.3.6).
	AuthNone = 0
	// AuthSimple is the VRRPv2 Auth Type for a simple text password
	// (RFC 2338 §5.3.6; reserved by RFC 3768 but still sent by keepalived
	// as "auth_type PASS").
	AuthSimple = 1
	// AuthAH is the obsolete VRRPv2 IP Authentication Header Auth Type
	// (RFC 2338 §5.3.6). It is decoded but never accepted by [Check].
	AuthAH = 2

	typeAdvertisement = 1
	headerLen         = 8
	authDataLen       = 8
	// v3MaxCentis is the largest v3 Max Advertise Interval: 12 bits of
	// centiseconds (RFC 9568 §5.2.7).
	v3MaxCentis   = 0x0fff
	v3IntervalRes = 10 * time.Millisecond
	v2MaxSeconds  = 255
)

// Sentinel errors wrapped by decode, validate and [Advert.Marshal]. They are not
// exported: callers receive a [DropReason] from [Parse] instead.
var (
	errLength       = errors.New("incomplete or oversized message")
	errVersion      = errors.New("unsupported version")
	errType         = errors.New("not an advertisement")
	errAddressCount = errors.New("address count out of range")
	errFamily       = errors.New("address family mismatch")
	errInterval     = errors.New("advertisement interval not representable")
	errVRID         = errors.New("virtual router ID out of range")
	errAuth         = errors.New("invalid authentication fields")
	errMode         = errors.New("unknown checksum mode")
)

// Advert is one VRRP advertisement (the VRRP payload, without the IP header).
type Advert struct {
	// Version is the VRRP version: 2 (RFC 3768) or 3 (RFC 9568).
	Version int
	// VRID is the Virtual Router Identifier, 1-255.
	VRID uint8
	// Priority is the sender's priority: 255 the address owner, 0 the
	// Active router is stopping.
	Priority uint8
	// Interval is the advertisement interval: v3 Max Advertise Interval
	// (12-bit centiseconds on the wire), v2 Adver Int (whole seconds on
	// the wire).
	Interval time.Duration
	// AuthType is v2 only: 0 none, 1 simple text password (2 = AH,
	// obsolete: decoded, never accepted by [Check]). Zero for v3.
	AuthType uint8
	// AuthData is v2 only: the 8 bytes of Authentication Data, for Auth
	// Type 1 the password padded with zero bytes ([PasswordAuthData]).
	// Zero for v3.
	AuthData [8]byte
	// Addrs are the virtual addresses, all IPv4 or all IPv6, in wire order.
	Addrs []netip.Addr
	// Checksum is the checksum as read from the wire by [Parse], or as
	// written by [Advert.Marshal].
	Checksum uint16
}

// ChecksumMode selects how a VRRPv3 advertisement over IPv4 is checksummed.
// IPv6 v3 always uses the IPv6 pseudo-header; v2 has no pseudo-header
// (checksum over the VRRP message only), so the mode only matters for v3
// over IPv4.
type ChecksumMode int

const (
	// ChecksumPseudoHeader is v3 IPv4 with the IPv4 pseudo-header (what
	// keepalived and FRR send by default); the zero value.
	ChecksumPseudoHeader ChecksumMode = iota
	// ChecksumRFC9568 is v3 IPv4 without the pseudo-header (RFC 9568
	// §5.2.8 text).
	ChecksumRFC9568
)

// String returns "pseudo-header" or "rfc9568".
func (m ChecksumMode) String() string {
	switch m {
	case ChecksumPseudoHeader:
		return "pseudo-header"
	case ChecksumRFC9568:
		return "rfc9568"
	default:
		return fmt.Sprintf("ChecksumMode(%d)", int(m))
	}
}

// PasswordAuthData returns the VRRPv2 Authentication Data for a simple text
// password: its bytes, zero padded, truncated to 8 bytes as keepalived does
// (configuration validation should reject longer passwords).
func PasswordAuthData(password string) [8]byte {
	var d [8]byte
	copy(d[:], password)
	return d
}

// Marshal encodes the advertisement to be sent from src to dst and fills
// a.Checksum. src and dst are the IP source and destination (their family
// must match the addresses'; a zone is ignored); they enter the checksum
// of v3 (IPv6 always, IPv4 with [ChecksumPseudoHeader]).
//
// It validates every field: version 2 or 3, VRID 1-255, 1-255 addresses of
// one family (IPv4 only for v2), an interval the wire can carry (v3: a
// multiple of 10ms in 10ms..40.95s; v2: whole seconds in 1s..255s), and no
// authentication fields for v3. Any AuthType is encoded for v2.
func (a *Advert) Marshal(src, dst netip.Addr, mode ChecksumMode) ([]byte, error) {
	if a.Version != 2 && a.Version != 3 {
		return nil, fmt.Errorf("packet: version %d: %w", a.Version, errVersion)
	}
	if mode != ChecksumPseudoHeader && mode != ChecksumRFC9568 {
		return nil, fmt.Errorf("packet: %v: %w", mode, errMode)
	}
	if a.VRID == 0 {
		return nil, fmt.Errorf("packet: VRID 0: %w", errVRID)
	}
	n := len(a.Addrs)
	if n < 1 || n > 255 {
		return nil, fmt.Errorf("packet: %d addresses, want 1-255: %w", n, errAddressCount)
	}
	is6 := a.Addrs[0].Is6()
	for _, addr := range a.Addrs {
		if !addr.IsValid() || addr.Is6() != is6 {
			return nil, fmt.Errorf("packet: address %v in a list of %s addresses: %w", addr, familyName(is6), errFamily)
		}
	}
	if !src.IsValid() || !dst.IsValid() || src.Is6() != is6 || dst.Is6() != is6 {
		return nil, fmt.Errorf("packet: source %v and destination %v for %s addresses: %w", src, dst, familyName(is6), errFamily)
	}
	if a.Version == 2 && is6 {
		return nil, fmt.Errorf("packet: VRRPv2 carries IPv4 addresses only: %w", errFamily)
	}

	alen := 4
	if is6 {
		alen = 16
	}
	size := headerLen + n*alen
	if a.Version == 2 {
		size += authDataLen
	}
	b := make([]byte, size)
	b[0] = byte(a.Version)<<4 | typeAdvertisement
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = byte(n)
	switch a.Version {
	case 3:
		cs, err := v3Centis(a.Interval)
		if err != nil {
			return nil, err
		}
		if a.AuthType != 0 || a.AuthData != [8]byte{} {
			return nil, fmt.Errorf("packet: authentication fields set in a VRRPv3 advert: %w", errAuth)
		}
		binary.BigEndian.PutUint16(b[4:6], cs)
	case 2:
		s, err := v2Seconds(a.Interval)
		if err != nil {
			return nil, err
		}
		b[4] = a.AuthType
		b[5] = s
		copy(b[size-authDataLen:], a.AuthData[:])
	}
	off := headerLen
	for _, addr := range a.Addrs {
		if is6 {
			a16 := addr.As16()
			copy(b[off:], a16[:])
		} else {
			a4 := addr.As4()
			copy(b[off:], a4[:])
		}
		off += alen
	}
	sum := checksum(b, a.Version, src, dst, mode)
	binary.BigEndian.PutUint16(b[6:8], sum)
	a.Checksum = sum
	return b, nil
}

// decode decodes one VRRP message (the IP payload), checking its structure
// in the order of the receive checks so that Parse reports the first
// failing one: version 2 or 3, type advertisement, a count of 1-255
// addresses that exactly fills the message (v2: plus 8 bytes of
// authentication data). validate checks the rest (VRID 1-255, a non-zero
// interval) after Parse has verified the checksum, which needs the IP
// addresses.
//
// The address family is inferred: v2 is IPv4; v3 is IPv4 when the message
// holds exactly count×4 address bytes and IPv6 when it holds count×16. The
// count field is never trusted to index the message: a count that does not
// match the length (the fuzzer's favourite lie) is an error, as are
// trailing bytes. The reserved bits of the v3 interval field are ignored
// (RFC 9568 §5.2.7). The returned Advert does not alias b.
func decode(b []byte) (Advert, error) {
	if len(b) < 1 {
		return Advert{}, fmt.Errorf("packet: empty message: %w", errLength)
	}
	v := int(b[0] >> 4)
	if v != 2 && v != 3 {
		return Advert{}, fmt.Errorf("packet: version %d: %w", v, errVersion)
	}
	if t := b[0] & 0x0f; t != typeAdvertisement {
		return Advert{}, fmt.Errorf("packet: type %d: %w", t, errType)
	}
	if len(b) < headerLen {
		return Advert{}, fmt.Errorf("packet: %d bytes, shorter than the %d-byte header: %w", len(b), headerLen, errLength)
	}
	count := int(b[3])
	if count == 0 {
		return Advert{}, fmt.Errorf("packet: no addresses: %w", errAddressCount)
	}
	a := Advert{
		Version:  v,
		VRID:     b[1],
		Priority: b[2],
		Checksum: binary.BigEndian.Uint16(b[6:8]),
	}
	alen := 4
	switch v {
	case 2:
		// The count is checked against the length before any address is
		// read: a lying count must not index past the message.
		if want := headerLen + 4*count + authDataLen; len(b) != want {
			return Advert{}, fmt.Errorf("packet: VRRPv2 message of %d bytes, want %d for %d addresses: %w", len(b), want, count, errLength)
		}
		a.AuthType = b[4]
		a.Interval = time.Duration(b[5]) * time.Second
		copy(a.AuthData[:], b[len(b)-authDataLen:])
	case 3:
		switch rest := len(b) - headerLen; rest {
		case 4 * count:
		case 16 * count:
			alen = 16
		default:
			return Advert{}, fmt.Errorf("packet: VRRPv3 message of %d bytes fits neither %d IPv4 nor %d IPv6 addresses: %w", len(b), count, count, errLength)
		}
		a.Interval = time.Duration(binary.BigEndian.Uint16(b[4:6])&v3MaxCentis) * v3IntervalRes
	}
	a.Addrs = make([]netip.Addr, count)
	for i := range a.Addrs {
		off := headerLen + i*alen
		if alen == 16 {
			a.Addrs[i] = netip.AddrFrom16([16]byte(b[off : off+16]))
		} else {
			a.Addrs[i] = netip.AddrFrom4([4]byte(b[off : off+4]))
		}
	}
	return a, nil
}

// validate applies the semantic checks that come after the checksum in
// Parse.
func validate(a Advert) error {
	if a.VRID == 0 {
		return fmt.Errorf("packet: VRID 0: %w", errVRID)
	}
	if a.Interval == 0 {
		return fmt.Errorf("packet: advertisement interval 0: %w", errInterval)
	}
	return nil
}

// v3Centis converts a v3 interval to wire centiseconds.
func v3Centis(d time.Duration) (uint16, error) {
	if d < v3IntervalRes || d > v3MaxCentis*v3IntervalRes || d%v3IntervalRes != 0 {
		return 0, fmt.Errorf("packet: VRRPv3 interval %v is not a multiple of 10ms in 10ms..40.95s: %w", d, errInterval)
	}
	return uint16(d / v3IntervalRes), nil
}

// v2Seconds converts a v2 interval to wire seconds.
func v2Seconds(d time.Duration) (uint8, error) {
	if d < time.Second || d > v2MaxSeconds*time.Second || d%time.Second != 0 {
		return 0, fmt.Errorf("packet: VRRPv2 interval %v is not whole seconds in 1s..255s: %w", d, errInterval)
	}
	return uint8(d / time.Second), nil
}

func familyName(is6 bool) string {
	if is6 {
		return "IPv6"
	}
	return "IPv4"
}
