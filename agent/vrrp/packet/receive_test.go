package packet

import (
	"encoding/binary"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Documentation addresses (RFC 5737, RFC 3849) as in the captures.
var (
	srcV4  = netip.MustParseAddr("192.0.2.11")
	dstV4  = netip.MustParseAddr("224.0.0.18")
	srcV6  = netip.MustParseAddr("fe80::ff:fe00:1")
	dstV6  = netip.MustParseAddr("ff02::12")
	vip4   = netip.MustParseAddr("192.0.2.100")
	vip4b  = netip.MustParseAddr("192.0.2.101")
	vip6   = netip.MustParseAddr("2001:db8::100")
	pass8  = PasswordAuthData("vipvs123")
	second = time.Second
)

func v3v4() Advert {
	return Advert{Version: 3, VRID: 51, Priority: 150, Interval: second, Addrs: []netip.Addr{vip4}}
}

func v3v6() Advert {
	return Advert{Version: 3, VRID: 51, Priority: 150, Interval: second, Addrs: []netip.Addr{vip6}}
}

func v2pass() Advert {
	return Advert{Version: 2, VRID: 51, Priority: 150, Interval: second, AuthType: AuthSimple, AuthData: pass8, Addrs: []netip.Addr{vip4}}
}

// wire marshals a (a copy: a's Checksum is not touched) or fails the test.
func wire(t *testing.T, a Advert, src, dst netip.Addr, mode ChecksumMode) []byte {
	t.Helper()
	b, err := a.Marshal(src, dst, mode)
	if err != nil {
		t.Fatalf("Marshal(%+v): %v", a, err)
	}
	return b
}

// withSum returns a copy of a with the Checksum that Marshal computes.
func withSum(t *testing.T, a Advert, src, dst netip.Addr, mode ChecksumMode) Advert {
	t.Helper()
	if _, err := a.Marshal(src, dst, mode); err != nil {
		t.Fatal(err)
	}
	return a
}

// wireSum returns a with the checksum that b carries.
func wireSum(a Advert, b []byte) Advert {
	a.Checksum = binary.BigEndian.Uint16(b[6:8])
	return a
}

// plainSum returns a copy of b with a checksum over the message only,
// as v2 and RFC 9568 IPv4 compute it.
func plainSum(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[6], c[7] = 0, 0
	binary.BigEndian.PutUint16(c[6:8], ^fold(sum(0, c)))
	return c
}

// edit returns a copy of b changed by f, with the checksum recomputed
// (v3 over IPv4 with mode) unless f broke the header.
func edit(b []byte, src, dst netip.Addr, mode ChecksumMode, f func(b []byte) []byte) []byte {
	c := f(append([]byte(nil), b...))
	if len(c) >= headerLen {
		c[6], c[7] = 0, 0
		binary.BigEndian.PutUint16(c[6:8], checksum(c, int(c[0]>>4), src, dst, mode))
	}
	return c
}

// raw is edit without fixing the checksum.
func raw(b []byte, f func(b []byte) []byte) []byte {
	return f(append([]byte(nil), b...))
}

func TestParse(t *testing.T) {
	v4 := wire(t, v3v4(), srcV4, dstV4, ChecksumPseudoHeader)
	v4rfc := wire(t, v3v4(), srcV4, dstV4, ChecksumRFC9568)
	v6 := wire(t, v3v6(), srcV6, dstV6, ChecksumPseudoHeader)
	v2 := wire(t, v2pass(), srcV4, dstV4, ChecksumPseudoHeader)
	ph := ChecksumPseudoHeader
	reserved := edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[4] |= 0xf0; return b })
	mapped := netip.AddrFrom16(srcV4.As16())

	tests := []struct {
		name string
		r    Received
		want Advert // zero unless accepted
		drop DropReason
	}{
		{name: "v3 IPv4 pseudo-header checksum accepted", r: Received{Payload: v4, Src: srcV4, Dst: dstV4, TTL: 255}, want: withSum(t, v3v4(), srcV4, dstV4, ph)},
		{name: "v3 IPv4 RFC 9568 checksum accepted", r: Received{Payload: v4rfc, Src: srcV4, Dst: dstV4, TTL: 255}, want: withSum(t, v3v4(), srcV4, dstV4, ChecksumRFC9568)},
		{name: "v3 IPv6 accepted", r: Received{Payload: v6, Src: srcV6, Dst: dstV6, TTL: 255}, want: withSum(t, v3v6(), srcV6, dstV6, ph)},
		{name: "v2 simple password accepted", r: Received{Payload: v2, Src: srcV4, Dst: dstV4, TTL: 255}, want: withSum(t, v2pass(), srcV4, dstV4, ph)},
		{name: "IPv4-mapped source taken as IPv4", r: Received{Payload: v4, Src: mapped, Dst: dstV4, TTL: 255}, want: withSum(t, v3v4(), srcV4, dstV4, ph)},
		{
			name: "source zone ignored", r: Received{Payload: v6, Src: srcV6.WithZone("eth0"), Dst: dstV6, TTL: 255},
			want: withSum(t, v3v6(), srcV6, dstV6, ph),
		},
		{
			name: "v3 reserved bits ignored",
			r:    Received{Payload: reserved, Src: srcV4, Dst: dstV4, TTL: 255},
			want: wireSum(v3v4(), reserved),
		},
		{
			name: "priority 0 accepted",
			r:    Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[2] = 0; return b }), Src: srcV4, Dst: dstV4, TTL: 255},
			want: func() Advert { a := v3v4(); a.Priority = 0; return withSum(t, a, srcV4, dstV4, ph) }(),
		},
		{
			name: "v2 AH auth type decoded (Check drops it)",
			r:    Received{Payload: edit(v2, srcV4, dstV4, ph, func(b []byte) []byte { b[4] = AuthAH; return b }), Src: srcV4, Dst: dstV4, TTL: 255},
			want: func() Advert { a := v2pass(); a.AuthType = AuthAH; return withSum(t, a, srcV4, dstV4, ph) }(),
		},

		{name: "ttl 254 (routed)", r: Received{Payload: v4, Src: srcV4, Dst: dstV4, TTL: 254}, drop: DropTTL},
		{name: "ttl 1", r: Received{Payload: v6, Src: srcV6, Dst: dstV6, TTL: 1}, drop: DropTTL},
		{name: "ttl unset", r: Received{Payload: v4, Src: srcV4, Dst: dstV4}, drop: DropTTL},

		{name: "empty payload", r: Received{Payload: nil, Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropLength},
		{name: "version 1", r: Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[0] = 0x11; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropVersion},
		{name: "version 4", r: Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[0] = 0x41; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropVersion},
		{name: "version byte only, bad version", r: Received{Payload: []byte{0x01}, Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropVersion},
		{name: "type 0", r: Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[0] = 0x30; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropType},
		{name: "type 2", r: Received{Payload: edit(v2, srcV4, dstV4, ph, func(b []byte) []byte { b[0] = 0x22; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropType},

		{name: "truncated header", r: Received{Payload: v4[:7], Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropLength},
		{name: "truncated address", r: Received{Payload: v4[:11], Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropLength},
		{name: "truncated IPv6 address", r: Received{Payload: v6[:23], Src: srcV6, Dst: dstV6, TTL: 255}, drop: DropLength},
		{name: "v2 without auth data", r: Received{Payload: v2[:12], Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropLength},
		{name: "v2 truncated auth data", r: Received{Payload: v2[:19], Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropLength},
		{name: "trailing byte", r: Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { return append(b, 0) }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropLength},
		{name: "lying count 2 for one address", r: Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[3] = 2; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropLength},
		{name: "lying count 255 for one address", r: Received{Payload: edit(v6, srcV6, dstV6, ph, func(b []byte) []byte { b[3] = 255; return b }), Src: srcV6, Dst: dstV6, TTL: 255}, drop: DropLength},
		{name: "v2 lying count 2", r: Received{Payload: edit(v2, srcV4, dstV4, ph, func(b []byte) []byte { b[3] = 2; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropLength},
		{name: "count 0 with an address", r: Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[3] = 0; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropAddressCount},
		{name: "count 0 header only", r: Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[3] = 0; return b[:8] }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropAddressCount},

		{name: "IPv6 addresses from IPv4 source", r: Received{Payload: v6, Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropFamily},
		{name: "IPv4 addresses from IPv6 source", r: Received{Payload: v4, Src: srcV6, Dst: dstV6, TTL: 255}, drop: DropFamily},
		{name: "v2 over IPv6", r: Received{Payload: v2, Src: srcV6, Dst: dstV6, TTL: 255}, drop: DropFamily},
		{name: "source and destination families differ", r: Received{Payload: v4, Src: srcV4, Dst: dstV6, TTL: 255}, drop: DropFamily},
		{name: "no source", r: Received{Payload: v4, Dst: dstV4, TTL: 255}, drop: DropFamily},

		{name: "checksum bit flipped", r: Received{Payload: raw(v4, func(b []byte) []byte { b[7] ^= 1; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropChecksum},
		{name: "priority changed without checksum", r: Received{Payload: raw(v2, func(b []byte) []byte { b[2]++; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropChecksum},
		{name: "v3 IPv4 from another source (pseudo-header)", r: Received{Payload: v4, Src: netip.MustParseAddr("192.0.2.13"), Dst: dstV4, TTL: 255}, drop: DropChecksum},
		{name: "v3 IPv6 to another destination (pseudo-header)", r: Received{Payload: v6, Src: srcV6, Dst: netip.MustParseAddr("ff02::13"), TTL: 255}, drop: DropChecksum},
		{name: "v3 IPv6 without pseudo-header", r: Received{Payload: plainSum(v6), Src: srcV6, Dst: dstV6, TTL: 255}, drop: DropChecksum},
		{
			name: "v2 with an IPv4 pseudo-header checksum",
			r: Received{Payload: func() []byte {
				b := append([]byte(nil), v2...)
				b[6], b[7] = 0, 0
				binary.BigEndian.PutUint16(b[6:], checksum(b, 3, srcV4, dstV4, ChecksumPseudoHeader))
				return b
			}(), Src: srcV4, Dst: dstV4, TTL: 255},
			drop: DropChecksum,
		},

		{name: "VRID 0", r: Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[1] = 0; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropUnknownVRID},
		{name: "v3 interval 0", r: Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[4], b[5] = 0, 0; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropInterval},
		{name: "v3 interval 0 with reserved bits", r: Received{Payload: edit(v4, srcV4, dstV4, ph, func(b []byte) []byte { b[4], b[5] = 0xf0, 0; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropInterval},
		{name: "v2 interval 0", r: Received{Payload: edit(v2, srcV4, dstV4, ph, func(b []byte) []byte { b[5] = 0; return b }), Src: srcV4, Dst: dstV4, TTL: 255}, drop: DropInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, drop := Parse(tt.r)
			if diff := cmp.Diff(tt.drop, drop); diff != "" {
				t.Errorf("Parse reason (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts...); diff != "" {
				t.Errorf("Parse advert (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDetectChecksumMode(t *testing.T) {
	v4 := wire(t, v3v4(), srcV4, dstV4, ChecksumPseudoHeader)
	v4rfc := wire(t, v3v4(), srcV4, dstV4, ChecksumRFC9568)
	tests := []struct {
		name     string
		r        Received
		wantMode ChecksumMode
		wantOK   bool
	}{
		{name: "pseudo-header", r: Received{Payload: v4, Src: srcV4, Dst: dstV4, TTL: 255}, wantMode: ChecksumPseudoHeader, wantOK: true},
		{name: "rfc9568", r: Received{Payload: v4rfc, Src: srcV4, Dst: dstV4, TTL: 255}, wantMode: ChecksumRFC9568, wantOK: true},
		{name: "bad checksum", r: Received{Payload: raw(v4, func(b []byte) []byte { b[6]++; return b }), Src: srcV4, Dst: dstV4}},
		{name: "IPv6", r: Received{Payload: wire(t, v3v6(), srcV6, dstV6, 0), Src: srcV6, Dst: dstV6}},
		{name: "v2", r: Received{Payload: wire(t, v2pass(), srcV4, dstV4, 0), Src: srcV4, Dst: dstV4}},
		{name: "short", r: Received{Payload: v4[:4], Src: srcV4, Dst: dstV4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode, ok := detectChecksumMode(tt.r)
			if diff := cmp.Diff([]any{tt.wantMode, tt.wantOK}, []any{mode, ok}); diff != "" {
				t.Errorf("detectChecksumMode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	v3 := v3v4()
	v3x := v3v4()
	v3x.Addrs = []netip.Addr{vip4b, vip4}
	v2 := v2pass()
	v2none := v2pass()
	v2none.AuthType, v2none.AuthData = AuthNone, [8]byte{'j', 'u', 'n', 'k'}
	with := func(a Advert, f func(*Advert)) Advert {
		a.Addrs = append([]netip.Addr(nil), a.Addrs...)
		f(&a)
		return a
	}
	exp3 := Expect{Version: 3, VRID: 51, Interval: second, Addrs: []netip.Addr{vip4}}
	exp3x := Expect{Version: 3, VRID: 51, Interval: second, Addrs: []netip.Addr{vip4, vip4b}}
	exp2 := Expect{Version: 2, VRID: 51, Interval: second, Password: "vipvs123", Addrs: []netip.Addr{vip4}}
	exp2none := Expect{Version: 2, VRID: 51, Interval: second, Addrs: []netip.Addr{vip4}}

	tests := []struct {
		name string
		a    Advert
		want Expect
		drop DropReason
	}{
		{name: "v3 accepted", a: v3, want: exp3},
		{name: "v3 addresses in another order accepted", a: v3x, want: exp3x},
		{name: "v3 duplicate address accepted", a: with(v3, func(a *Advert) { a.Addrs = append(a.Addrs, vip4) }), want: exp3},
		{name: "v3 interval differs accepted (backups learn it)", a: with(v3, func(a *Advert) { a.Interval = 10 * time.Millisecond }), want: exp3},
		{name: "v3 password in config ignored", a: v3, want: func() Expect { e := exp3; e.Password = "secret"; return e }()},
		{name: "v2 password accepted", a: v2, want: exp2},
		{name: "v2 no auth accepted, auth data ignored", a: v2none, want: exp2none},
		{name: "v2 password longer than 8 compared as keepalived truncates it", a: v2, want: func() Expect { e := exp2; e.Password = "vipvs123456"; return e }()},
		{name: "priority 0 accepted", a: with(v3, func(a *Advert) { a.Priority = 0 }), want: exp3},

		{name: "version mismatch v2 advert for v3 router", a: v2, want: exp3, drop: DropVersion},
		{name: "version mismatch v3 advert for v2 router", a: v3, want: exp2, drop: DropVersion},
		{name: "VRID mismatch", a: with(v3, func(a *Advert) { a.VRID = 52 }), want: exp3, drop: DropUnknownVRID},
		{name: "owner drops every advert", a: v3, want: func() Expect { e := exp3; e.Owner = true; return e }(), drop: DropOwner},
		{name: "owner drops an advert from another owner", a: with(v3, func(a *Advert) { a.Priority = 255 }), want: func() Expect { e := exp3; e.Owner = true; return e }(), drop: DropOwner},

		{name: "v2 wrong password", a: with(v2, func(a *Advert) { a.AuthData = PasswordAuthData("vipvs124") }), want: exp2, drop: DropAuth},
		{name: "v2 password prefix", a: with(v2, func(a *Advert) { a.AuthData = PasswordAuthData("vipvs") }), want: exp2, drop: DropAuth},
		{name: "v2 password expected, none sent", a: v2none, want: exp2, drop: DropAuth},
		{name: "v2 none expected, password sent", a: v2, want: exp2none, drop: DropAuth},
		{name: "v2 AH never accepted", a: with(v2, func(a *Advert) { a.AuthType = AuthAH }), want: exp2, drop: DropAuth},
		{name: "v2 AH never accepted without password", a: with(v2none, func(a *Advert) { a.AuthType = AuthAH }), want: exp2none, drop: DropAuth},
		{name: "v2 unknown auth type", a: with(v2, func(a *Advert) { a.AuthType = 3 }), want: exp2, drop: DropAuth},
		{name: "v2 interval mismatch", a: with(v2, func(a *Advert) { a.Interval = 2 * time.Second }), want: exp2, drop: DropInterval},
		{name: "v2 auth checked before interval", a: with(v2, func(a *Advert) { a.Interval = 2 * time.Second; a.AuthType = AuthNone }), want: exp2, drop: DropAuth},

		{name: "address mismatch from priority 254 dropped", a: with(v3, func(a *Advert) { a.Priority = 254; a.Addrs = []netip.Addr{vip4b} }), want: exp3, drop: DropAddressMismatch},
		{name: "address mismatch from priority 0 dropped", a: with(v3, func(a *Advert) { a.Priority = 0; a.Addrs = []netip.Addr{vip4b} }), want: exp3, drop: DropAddressMismatch},
		{name: "address subset dropped", a: v3, want: exp3x, drop: DropAddressMismatch},
		{name: "address superset dropped", a: v3x, want: exp3, drop: DropAddressMismatch},
		{name: "v2 address mismatch dropped", a: with(v2, func(a *Advert) { a.Addrs = []netip.Addr{vip4b} }), want: exp2, drop: DropAddressMismatch},
		// Deviation from RFC 9568 §7.1 ("continue processing" for an owner), as
		// keepalived: a foreign list at 255 must not move us (issue #11).
		{name: "address mismatch from the owner (255) dropped", a: with(v3, func(a *Advert) { a.Priority = 255; a.Addrs = []netip.Addr{vip4b} }), want: exp3, drop: DropAddressMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.drop, Check(tt.a, tt.want)); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSameAddrs(t *testing.T) {
	tests := []struct {
		name string
		a, b []netip.Addr
		want bool
	}{
		{name: "both empty", want: true},
		{name: "equal", a: addrs("192.0.2.1", "192.0.2.2"), b: addrs("192.0.2.1", "192.0.2.2"), want: true},
		{name: "order", a: addrs("192.0.2.2", "192.0.2.1"), b: addrs("192.0.2.1", "192.0.2.2"), want: true},
		{name: "duplicates", a: addrs("192.0.2.1", "192.0.2.1"), b: addrs("192.0.2.1"), want: true},
		{name: "zone ignored", a: addrs("fe80::1%eth0"), b: addrs("fe80::1"), want: true},
		{name: "differ", a: addrs("192.0.2.1"), b: addrs("192.0.2.2")},
		{name: "mapped is not IPv4", a: addrs("::ffff:192.0.2.1"), b: addrs("192.0.2.1")},
		{name: "one empty", a: addrs("192.0.2.1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := append([]netip.Addr(nil), tt.a...)
			if got := sameAddrs(tt.a, tt.b); got != tt.want {
				t.Errorf("sameAddrs = %v, want %v", got, tt.want)
			}
			if diff := cmp.Diff(a, tt.a, cmpOpts...); diff != "" {
				t.Errorf("sameAddrs modified its argument (-before +after):\n%s", diff)
			}
		})
	}
}

func TestDropReasonString(t *testing.T) {
	want := []string{"ttl", "version", "type", "length", "address-count", "family", "checksum", "unknown-vrid", "interval", "owner", "auth", "address-mismatch"}
	var got []string
	for _, r := range dropReasons() {
		got = append(got, r.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dropReasons names (-want +got):\n%s", diff)
	}
	kebab := regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	for _, s := range got {
		if !kebab.MatchString(s) {
			t.Errorf("%q is not kebab-case", s)
		}
	}
	if s := DropNone.String(); s != "none" {
		t.Errorf("DropNone.String() = %q", s)
	}
	if s := DropReason(-1).String(); s != "unknown" {
		t.Errorf("DropReason(-1).String() = %q", s)
	}
	if s := numReasons.String(); s != "unknown" {
		t.Errorf("numReasons.String() = %q", s)
	}
}

// dropReasons returns every reason but DropNone, in order.
func dropReasons() []DropReason {
	rs := make([]DropReason, 0, numReasons-1)
	for r := DropNone + 1; r < numReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// detectChecksumMode reports which [ChecksumMode] the sender of a VRRPv3
// advertisement over IPv4 used: ok is true only for such a packet whose
// checksum is valid in the returned mode. Should a checksum be valid in
// both modes (the pseudo-header summing to zero), ChecksumPseudoHeader is
// returned. For v2 and IPv6 the mode does not apply and ok is false.
func detectChecksumMode(r Received) (mode ChecksumMode, ok bool) {
	src, dst := r.Src.Unmap(), r.Dst.Unmap()
	if len(r.Payload) < headerLen || r.Payload[0]>>4 != 3 || !src.Is4() || !dst.Is4() {
		return 0, false
	}
	for _, m := range []ChecksumMode{ChecksumPseudoHeader, ChecksumRFC9568} {
		if verify(r.Payload, 3, src, dst, m) {
			return m, true
		}
	}
	return 0, false
}
