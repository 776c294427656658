package snat

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	vip4  = netip.MustParseAddr("192.0.2.100")
	vip4b = netip.MustParseAddr("192.0.2.101")
	vip6  = netip.MustParseAddr("2001:db8::100")
)

func TestTargetString(t *testing.T) {
	tests := []struct {
		name string
		t    Target
		want string
	}{
		{"ipv4 tcp", Target{VIP: vip4, Port: 6443, Protocol: TCP}, "tcp/192.0.2.100:6443"},
		{"ipv6 udp", Target{VIP: vip6, Port: 53, Protocol: UDP}, "udp/[2001:db8::100]:53"},
		{"sctp", Target{VIP: vip4, Port: 3868, Protocol: SCTP}, "sctp/192.0.2.100:3868"},
		{"unknown protocol", Target{VIP: vip4, Port: 1, Protocol: 7}, "proto-7/192.0.2.100:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.t.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTargetValidate(t *testing.T) {
	tests := []struct {
		name string
		t    Target
		want []string // substrings of the error; nil means valid
	}{
		{name: "ipv4 tcp", t: Target{VIP: vip4, Port: 80, Protocol: TCP}},
		{name: "ipv6 sctp", t: Target{VIP: vip6, Port: 65535, Protocol: SCTP}},
		{name: "no vip", t: Target{Port: 80, Protocol: TCP}, want: []string{"vip invalid IP: must be a plain"}},
		{name: "mapped vip", t: Target{VIP: netip.MustParseAddr("::ffff:192.0.2.1"), Port: 80, Protocol: TCP}, want: []string{"vip ::ffff:192.0.2.1"}},
		{name: "zoned vip", t: Target{VIP: netip.MustParseAddr("fe80::1%eth0"), Port: 80, Protocol: TCP}, want: []string{"vip fe80::1%eth0"}},
		{name: "unspecified vip", t: Target{VIP: netip.IPv4Unspecified(), Port: 80, Protocol: TCP}, want: []string{"vip 0.0.0.0"}},
		{name: "port 0", t: Target{VIP: vip4, Protocol: UDP}, want: []string{"snat: target udp/192.0.2.100:0: port 0: must be 1-65535"}},
		{name: "icmp", t: Target{VIP: vip4, Port: 1, Protocol: 1}, want: []string{"protocol 1: must be 6 (tcp), 17 (udp) or 132 (sctp)"}},
		{name: "every problem", t: Target{Protocol: 0}, want: []string{"vip invalid IP", "port 0", "protocol 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.t.Validate()
			if tt.want == nil {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	a := Target{VIP: vip4, Port: 6443, Protocol: TCP}
	b := Target{VIP: vip4, Port: 443, Protocol: TCP}
	c := Target{VIP: vip4, Port: 53, Protocol: UDP}
	d := Target{VIP: vip4b, Port: 80, Protocol: TCP}
	e := Target{VIP: vip6, Port: 6443, Protocol: TCP}
	f := Target{VIP: vip6, Port: 3868, Protocol: SCTP}
	tests := []struct {
		name    string
		in      []Target
		want    []Target
		wantErr []string
	}{
		{name: "nil", in: nil, want: nil},
		{name: "sorted by vip, protocol, port; ipv4 first", in: []Target{f, e, d, c, b, a}, want: []Target{b, a, c, d, e, f}},
		{name: "duplicates once", in: []Target{a, e, a, e, a}, want: []Target{a, e}},
		{
			name:    "every invalid target reported",
			in:      []Target{a, {VIP: vip4, Port: 1, Protocol: 1}, {VIP: vip6, Protocol: TCP}},
			wantErr: []string{"target proto-1/192.0.2.100:1: protocol 1", "target tcp/[2001:db8::100]:0: port 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]Target(nil), tt.in...)
			got, err := normalize(tt.in)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("normalize() = %v, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("normalize: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("normalize (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(in, tt.in, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("normalize changed its argument (-before +after):\n%s", diff)
			}
		})
	}
}

func TestFamilies(t *testing.T) {
	tests := []struct {
		name string
		in   []Target
		want []Family
	}{
		{"none", nil, nil},
		{"ipv6 only", []Target{{VIP: vip6}}, []Family{IPv6}},
		{"both, ipv4 first", []Target{{VIP: vip6}, {VIP: vip4}, {VIP: vip4b}}, []Family{IPv4, IPv6}},
		{"invalid vip ignored", []Target{{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, families(tt.in)); diff != "" {
				t.Errorf("Families (-want +got):\n%s", diff)
			}
		})
	}
}
