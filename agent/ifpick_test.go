package agent

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPickInterface(t *testing.T) {
	own := []ifaceAddr{
		{index: 1, prefix: netip.MustParsePrefix("127.0.0.1/8")},
		{index: 3, prefix: netip.MustParsePrefix("192.0.2.11/24")},
		{index: 2, prefix: netip.MustParsePrefix("192.0.2.12/24")},
		{index: 4, prefix: netip.MustParsePrefix("198.51.100.11/24")},
		{index: 4, prefix: netip.MustParsePrefix("2001:db8::11/64")},
		{index: 5, prefix: netip.MustParsePrefix("203.0.113.100/32")},
	}
	tests := []struct {
		vip     string
		want    int
		wantErr string
	}{
		{vip: "192.0.2.100/24", want: 2},
		{vip: "198.51.100.100/24", want: 4},
		{vip: "2001:db8::100/64", want: 4},
		{vip: "198.51.100.100/16", want: 4},
		{vip: "192.0.2.100/32", want: 2},
		{vip: "2001:db8::100/128", want: 4},
		{vip: "127.0.0.100/32", wantErr: "no interface has an address in the subnet of VIP 127.0.0.100"},
		{vip: "203.0.113.100/24", wantErr: "no interface has an address in the subnet of VIP 203.0.113.100 (203.0.113.0/24)"},
		{vip: "2001:db8:1::100/64", wantErr: "no interface has an address in the subnet of VIP 2001:db8:1::100 (2001:db8:1::/64)"},
	}
	for _, tt := range tests {
		t.Run(tt.vip, func(t *testing.T) {
			got, err := pickInterface(netip.MustParsePrefix(tt.vip), own)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("pickInterface() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("pickInterface() = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
