package vip

import (
	"net"
	"net/netip"
	"testing"
)

func TestPrefixConversion(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "ipv4 host", in: "192.0.2.100/32"},
		{name: "ipv4 subnet keeps host bits", in: "192.0.2.100/24"},
		{name: "ipv6", in: "2001:db8::100/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.in)
			got, ok := toPrefix(toIPNet(p))
			if !ok || got != p {
				t.Errorf("round trip of %s = %s, %v", p, got, ok)
			}
		})
	}
	// The kernel may report IPv4 in 16-byte form.
	n := &net.IPNet{IP: net.ParseIP("192.0.2.1"), Mask: net.CIDRMask(24, 32)}
	if got, ok := toPrefix(n); !ok || got != netip.MustParsePrefix("192.0.2.1/24") {
		t.Errorf("toPrefix(16-byte IPv4) = %s, %v", got, ok)
	}
}

func TestCheckPrefix(t *testing.T) {
	tests := []struct {
		name    string
		in      netip.Prefix
		wantErr bool
	}{
		{name: "ipv4", in: netip.MustParsePrefix("192.0.2.1/32")},
		{name: "ipv6", in: netip.MustParsePrefix("2001:db8::1/64")},
		{name: "zero", in: netip.Prefix{}, wantErr: true},
		{name: "mapped", in: netip.MustParsePrefix("::ffff:192.0.2.1/128"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkPrefix(tt.in); (err != nil) != tt.wantErr {
				t.Errorf("checkPrefix(%s) = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
		})
	}
}
