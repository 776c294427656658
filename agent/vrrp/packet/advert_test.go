package packet

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestWorkedValues pins encodings worked out by hand (and checked against
// the keepalived captures and an independent RFC 1071 implementation).
func TestWorkedValues(t *testing.T) {
	tests := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		mode     ChecksumMode
		want     []byte
	}{
		{
			// v3-ipv4-multicast.pcap: interval 100 cs = 0x0064, checksum with
			// the IPv4 pseudo-header 0xd367.
			name: "v3 IPv4 1s = 100cs, pseudo-header",
			a:    v3v4(), src: srcV4, dst: dstV4, mode: ChecksumPseudoHeader,
			want: mustHex("31 33 96 01 0064 d367 c0000264"),
		},
		{
			name: "v3 IPv4 1s = 100cs, RFC 9568 (no pseudo-header)",
			a:    v3v4(), src: srcV4, dst: dstV4, mode: ChecksumRFC9568,
			want: mustHex("31 33 96 01 0064 7602 c0000264"),
		},
		{
			name: "v3 10ms = 1cs",
			a:    Advert{Version: 3, VRID: 7, Priority: 254, Interval: 10 * time.Millisecond, Addrs: []netip.Addr{vip4}}, src: srcV4, dst: dstV4,
			want: mustHex("31 07 fe 01 0001 6bf6 c0000264"),
		},
		{
			name: "v3 40.95s = 4095cs, the largest",
			a:    Advert{Version: 3, VRID: 1, Priority: 100, Interval: 40950 * time.Millisecond, Addrs: []netip.Addr{vip4}}, src: srcV4, dst: dstV4, mode: ChecksumRFC9568,
			// sum 0x3101 + 0x6401 + 0x0fff + 0xc000 + 0x0264 = 0x16765 -> 0x6766 -> ^ = 0x9899
			want: mustHex("31 01 64 01 0fff 9899 c0000264"),
		},
		{
			name: "v3 IPv6 1s, IPv6 pseudo-header",
			a:    v3v6(), src: srcV6, dst: dstV6,
			want: mustHex("31 33 96 01 0064 0c8f 20010db8000000000000000000000100"),
		},
		{
			name: "v2 1s no auth, no pseudo-header whatever the mode",
			a:    Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{vip4}}, src: srcV4, dst: dstV4, mode: ChecksumPseudoHeader,
			want: mustHex("21 33 96 01 00 01 8665 c0000264 0000000000000000"),
		},
		{
			name: "v2 255s simple password",
			a:    Advert{Version: 2, VRID: 51, Priority: 150, Interval: 255 * time.Second, AuthType: AuthSimple, AuthData: pass8, Addrs: []netip.Addr{vip4}}, src: srcV4, dst: dstV4, mode: ChecksumRFC9568,
			// the capture's 0xf920 less 254 in the Adver Int byte
			want: mustHex("21 33 96 01 01 ff f822 c0000264 7669707673313233"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.a.Marshal(tt.src, tt.dst, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Marshal (-want +got):\n%s", diff)
			}
			back, err := unmarshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.a, back, cmpOpts...); diff != "" {
				t.Errorf("unmarshal(Marshal) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	with := func(a Advert, f func(*Advert)) Advert { f(&a); return a }
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
	}
	tests := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		mode     ChecksumMode
		want     error
	}{
		{name: "version 0", a: with(v3v4(), func(a *Advert) { a.Version = 0 }), src: srcV4, dst: dstV4, want: errVersion},
		{name: "version 4", a: with(v3v4(), func(a *Advert) { a.Version = 4 }), src: srcV4, dst: dstV4, want: errVersion},
		{name: "checksum mode 2", a: v3v4(), src: srcV4, dst: dstV4, mode: 2, want: errMode},
		{name: "VRID 0", a: with(v3v4(), func(a *Advert) { a.VRID = 0 }), src: srcV4, dst: dstV4, want: errVRID},
		{name: "no addresses", a: with(v3v4(), func(a *Advert) { a.Addrs = nil }), src: srcV4, dst: dstV4, want: errAddressCount},
		{name: "256 addresses", a: with(v3v4(), func(a *Advert) { a.Addrs = many }), src: srcV4, dst: dstV4, want: errAddressCount},
		{name: "mixed families", a: with(v3v4(), func(a *Advert) { a.Addrs = []netip.Addr{vip4, vip6} }), src: srcV4, dst: dstV4, want: errFamily},
		{name: "invalid address", a: with(v3v4(), func(a *Advert) { a.Addrs = []netip.Addr{{}} }), src: srcV4, dst: dstV4, want: errFamily},
		{name: "IPv4 addresses to an IPv6 destination", a: v3v4(), src: srcV4, dst: dstV6, want: errFamily},
		{name: "IPv6 addresses from an IPv4 source", a: v3v6(), src: srcV4, dst: dstV6, want: errFamily},
		{name: "no source", a: v3v4(), dst: dstV4, want: errFamily},
		{name: "v2 with IPv6", a: with(v3v6(), func(a *Advert) { a.Version = 2 }), src: srcV6, dst: dstV6, want: errFamily},
		{name: "v3 interval 0", a: with(v3v4(), func(a *Advert) { a.Interval = 0 }), src: srcV4, dst: dstV4, want: errInterval},
		{name: "v3 interval 15ms", a: with(v3v4(), func(a *Advert) { a.Interval = 15 * time.Millisecond }), src: srcV4, dst: dstV4, want: errInterval},
		{name: "v3 interval 5ms", a: with(v3v4(), func(a *Advert) { a.Interval = 5 * time.Millisecond }), src: srcV4, dst: dstV4, want: errInterval},
		{name: "v3 interval 40.96s", a: with(v3v4(), func(a *Advert) { a.Interval = 40960 * time.Millisecond }), src: srcV4, dst: dstV4, want: errInterval},
		{name: "v3 negative interval", a: with(v3v4(), func(a *Advert) { a.Interval = -time.Second }), src: srcV4, dst: dstV4, want: errInterval},
		{name: "v3 with auth type", a: with(v3v4(), func(a *Advert) { a.AuthType = AuthSimple }), src: srcV4, dst: dstV4, want: errAuth},
		{name: "v3 with auth data", a: with(v3v4(), func(a *Advert) { a.AuthData = pass8 }), src: srcV4, dst: dstV4, want: errAuth},
		{name: "v2 interval 1.5s", a: with(v2pass(), func(a *Advert) { a.Interval = 1500 * time.Millisecond }), src: srcV4, dst: dstV4, want: errInterval},
		{name: "v2 interval 10ms", a: with(v2pass(), func(a *Advert) { a.Interval = 10 * time.Millisecond }), src: srcV4, dst: dstV4, want: errInterval},
		{name: "v2 interval 256s", a: with(v2pass(), func(a *Advert) { a.Interval = 256 * time.Second }), src: srcV4, dst: dstV4, want: errInterval},
		{name: "v2 interval 0", a: with(v2pass(), func(a *Advert) { a.Interval = 0 }), src: srcV4, dst: dstV4, want: errInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.a
			b, err := a.Marshal(tt.src, tt.dst, tt.mode)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Marshal error = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "packet: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if b != nil || a.Checksum != 0 {
				t.Errorf("Marshal returned %x and checksum %#x with an error", b, a.Checksum)
			}
		})
	}
}

func TestMarshalLimits(t *testing.T) {
	// 255 IPv6 addresses: the largest advert, 8 + 255*16 bytes.
	many := make([]netip.Addr, 255)
	for i := range many {
		many[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
	}
	a := Advert{Version: 3, VRID: 255, Priority: 255, Interval: 10 * time.Millisecond, Addrs: many}
	b, err := a.Marshal(srcV6, dstV6, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 8+255*16 {
		t.Errorf("%d bytes, want %d", len(b), 8+255*16)
	}
	got, drop := Parse(Received{Payload: b, Src: srcV6, Dst: dstV6, TTL: 255})
	if drop != DropNone {
		t.Fatalf("Parse dropped it: %v", drop)
	}
	if diff := cmp.Diff(a, got, cmpOpts...); diff != "" {
		t.Errorf("Parse(Marshal) (-want +got):\n%s", diff)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	v4 := wire(t, v3v4(), srcV4, dstV4, ChecksumPseudoHeader)
	v6 := wire(t, v3v6(), srcV6, dstV6, ChecksumPseudoHeader)
	v2 := wire(t, v2pass(), srcV4, dstV4, ChecksumPseudoHeader)
	set := func(b []byte, i int, v byte) []byte { c := append([]byte(nil), b...); c[i] = v; return c }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{name: "nil", want: errLength},
		{name: "version 0", b: []byte{0x01}, want: errVersion},
		{name: "version 15", b: set(v4, 0, 0xf1), want: errVersion},
		{name: "type 0", b: set(v4, 0, 0x30), want: errType},
		{name: "header only 7 bytes", b: v4[:7], want: errLength},
		{name: "count 0", b: set(v4, 3, 0), want: errAddressCount},
		{name: "v3 count 2, one IPv4 address", b: set(v4, 3, 2), want: errLength},
		{name: "v3 count 4, one IPv6 address taken as IPv4", b: set(v6, 3, 4), want: nil},
		{name: "v3 count 3, one IPv6 address", b: set(v6, 3, 3), want: errLength},
		{name: "v3 count 255, 16 bytes", b: set(v6, 3, 255), want: errLength},
		{name: "v2 count 2", b: set(v2, 3, 2), want: errLength},
		{name: "v2 short", b: v2[:16], want: errLength},
		{name: "v2 trailing byte", b: append(append([]byte(nil), v2...), 0), want: errLength},
		{name: "VRID 0", b: set(v4, 1, 0), want: errVRID},
		{name: "v3 interval 0", b: set(set(v4, 4, 0xf0), 5, 0), want: errInterval},
		{name: "v2 interval 0", b: set(v2, 5, 0), want: errInterval},
		{name: "checksum not verified", b: set(v4, 7, 0), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := unmarshal(tt.b)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("unmarshal error = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "packet: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestPasswordAuthData(t *testing.T) {
	tests := []struct {
		name     string
		password string
		want     [8]byte
	}{
		{name: "empty", want: [8]byte{}},
		{name: "short padded", password: "abc", want: [8]byte{'a', 'b', 'c'}},
		{name: "eight", password: "vipvs123", want: [8]byte{'v', 'i', 'p', 'v', 's', '1', '2', '3'}},
		{name: "long truncated", password: "vipvs1234", want: [8]byte{'v', 'i', 'p', 'v', 's', '1', '2', '3'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, PasswordAuthData(tt.password)); diff != "" {
				t.Errorf("PasswordAuthData (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChecksumModeString(t *testing.T) {
	got := []string{ChecksumPseudoHeader.String(), ChecksumRFC9568.String(), ChecksumMode(7).String()}
	if diff := cmp.Diff([]string{"pseudo-header", "rfc9568", "ChecksumMode(7)"}, got); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
}

// unmarshal decodes one VRRP message with the checks Parse makes of the
// message alone (decode, then validate): the inverse of Marshal, without
// the checksum and the IP-level checks.
func unmarshal(b []byte) (Advert, error) {
	a, err := decode(b)
	if err != nil {
		return Advert{}, err
	}
	if err := validate(a); err != nil {
		return Advert{}, err
	}
	return a, nil
}
