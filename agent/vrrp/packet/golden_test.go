package packet

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cmpOpts compares netip.Addr by value (it has unexported fields).
var cmpOpts = []cmp.Option{cmp.Comparer(func(x, y netip.Addr) bool { return x == y })}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// TestKeepalivedCaptures uses the keepalived 2.2.7 captures in
// testdata/keepalived (see README.md and the .conf files there) as golden
// vectors: every advert is parsed, checked field by field against the
// configuration, and re-encoded byte for byte.
func TestKeepalivedCaptures(t *testing.T) {
	n1v4, peerv4 := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")
	mcast4, mcast6 := netip.MustParseAddr("224.0.0.18"), netip.MustParseAddr("ff02::12")
	n1ll := netip.MustParseAddr("fe80::ff:fe00:1")
	tests := []struct {
		name     string // capture file without .pcap
		src, dst netip.Addr
		mode     ChecksumMode
		want     Advert // Checksum not compared: it changes with priority
		password string
		// count is the number of VRRP packets in the capture.
		count int
		// stop says the capture ends with the priority-0 advert of a
		// SIGTERM (the 10 ms capture holds only the first 200 packets).
		stop bool
	}{
		{
			name: "v3-ipv4-multicast", src: n1v4, dst: mcast4, mode: ChecksumPseudoHeader,
			want:  Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second, Addrs: addrs("192.0.2.100")},
			count: 5, stop: true,
		},
		{
			name: "v3-ipv4-unicast-3vips", src: n1v4, dst: peerv4, mode: ChecksumPseudoHeader,
			want:  Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second, Addrs: addrs("192.0.2.100", "192.0.2.101", "192.0.2.102")},
			count: 5, stop: true,
		},
		{
			name: "v2-ipv4-unicast-pass", src: n1v4, dst: peerv4,
			want:     Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, AuthType: AuthSimple, AuthData: [8]byte{'v', 'i', 'p', 'v', 's', '1', '2', '3'}, Addrs: addrs("192.0.2.100")},
			password: "vipvs123",
			count:    5, stop: true,
		},
		{
			name: "v2-ipv4-multicast", src: n1v4, dst: mcast4,
			want:  Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, AuthType: AuthNone, Addrs: addrs("192.0.2.100")},
			count: 5, stop: true,
		},
		{
			name: "v3-ipv6-multicast", src: n1ll, dst: mcast6,
			want:  Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second, Addrs: addrs("2001:db8::100")},
			count: 5, stop: true,
		},
		{
			name: "v3-ipv4-multicast-10ms", src: n1v4, dst: mcast4, mode: ChecksumPseudoHeader,
			want:  Advert{Version: 3, VRID: 7, Priority: 254, Interval: 10 * time.Millisecond, Addrs: addrs("192.0.2.100")},
			count: 196, stop: false, // 200 frames, 4 of them GARPs
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkts := readVRRP(t, filepath.Join("testdata", "keepalived", tt.name+".pcap"))
			if len(pkts) != tt.count {
				t.Fatalf("%d VRRP packets, want %d", len(pkts), tt.count)
			}
			expect := Expect{Version: tt.want.Version, VRID: tt.want.VRID, Interval: tt.want.Interval, Password: tt.password, Addrs: tt.want.Addrs}
			for i, p := range pkts {
				if p.Src != tt.src || p.Dst != tt.dst || p.TTL != TTL {
					t.Errorf("packet %d: src %v dst %v ttl %d, want %v %v %d", i, p.Src, p.Dst, p.TTL, tt.src, tt.dst, TTL)
				}
				got, reason := Parse(p.Received)
				if reason != DropNone {
					t.Fatalf("packet %d (record %d): Parse dropped it: %v", i, p.index, reason)
				}
				want := tt.want
				if tt.stop && i == len(pkts)-1 {
					want.Priority = PriorityStop
				}
				want.Checksum = got.Checksum
				if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
					t.Errorf("packet %d: Parse (-want +got):\n%s", i, diff)
				}
				if r := Check(got, expect); r != DropNone {
					t.Errorf("packet %d: Check = %v, want none", i, r)
				}
				if got.Version == 3 && p.Src.Is4() {
					if mode, ok := detectChecksumMode(p.Received); !ok || mode != tt.mode {
						t.Errorf("packet %d: detectChecksumMode = %v, %v; want %v, true", i, mode, ok, tt.mode)
					}
					other := got
					other.Addrs = append([]netip.Addr(nil), got.Addrs...)
					b, err := other.Marshal(p.Src, p.Dst, 1-tt.mode)
					if err != nil {
						t.Fatal(err)
					}
					if bytes.Equal(b, p.Payload) {
						t.Errorf("packet %d: re-encoded with %v gives the same bytes as %v", i, 1-tt.mode, tt.mode)
					}
				}
				b, err := got.Marshal(p.Src, p.Dst, tt.mode)
				if err != nil {
					t.Fatalf("packet %d: Marshal: %v", i, err)
				}
				if !bytes.Equal(b, p.Payload) {
					t.Errorf("packet %d: Marshal\n got % x\nwant % x", i, b, p.Payload)
				}
				if got.Checksum != want.Checksum {
					t.Errorf("packet %d: Marshal set checksum %#04x, wire has %#04x", i, got.Checksum, want.Checksum)
				}
			}
		})
	}
}
