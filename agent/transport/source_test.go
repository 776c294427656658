package transport

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestChooseSource(t *testing.T) {
	v4 := func(s string, flags int) ifAddr { return ifAddr{netip.MustParseAddr(s), flags} }
	tests := []struct {
		name      string
		addrs     []ifAddr
		want      netip.Addr // configured
		ipv6      bool
		wantAddr  string
		wantErrIs error
		wantErr   string
	}{
		{
			name:     "ipv4 first primary",
			addrs:    []ifAddr{v4("192.0.2.10", 0), v4("192.0.2.11", unix.IFA_F_SECONDARY), v4("198.51.100.1", 0)},
			wantAddr: "192.0.2.10",
		},
		{
			name:     "ipv4 secondary listed first is skipped",
			addrs:    []ifAddr{v4("192.0.2.11", unix.IFA_F_SECONDARY), v4("198.51.100.1", 0)},
			wantAddr: "198.51.100.1",
		},
		{name: "ipv4 none", wantErrIs: ErrNoSource, wantErr: "the interface has no IPv4 address"},
		{
			name:     "ipv4 configured secondary",
			addrs:    []ifAddr{v4("192.0.2.10", 0), v4("192.0.2.11", unix.IFA_F_SECONDARY)},
			want:     netip.MustParseAddr("192.0.2.11"),
			wantAddr: "192.0.2.11",
		},
		{
			name:      "ipv4 configured absent",
			addrs:     []ifAddr{v4("192.0.2.10", 0)},
			want:      netip.MustParseAddr("192.0.2.12"),
			wantErrIs: ErrNoSource,
			wantErr:   "192.0.2.12 is not on the interface",
		},
		{
			name:     "ipv6 link-local, global skipped",
			ipv6:     true,
			addrs:    []ifAddr{v4("2001:db8::1", 0), v4("fe80::1", 0)},
			wantAddr: "fe80::1",
		},
		{
			name:     "ipv6 tentative link-local skipped for a ready one",
			ipv6:     true,
			addrs:    []ifAddr{v4("fe80::1", unix.IFA_F_TENTATIVE), v4("fe80::2", 0)},
			wantAddr: "fe80::2",
		},
		{
			name:      "ipv6 only tentative",
			ipv6:      true,
			addrs:     []ifAddr{v4("2001:db8::1", 0), v4("fe80::1", unix.IFA_F_TENTATIVE)},
			wantErrIs: ErrTentative,
			wantErr:   "source address is tentative: fe80::1",
		},
		{
			name:      "ipv6 dad failed",
			ipv6:      true,
			addrs:     []ifAddr{v4("fe80::1", unix.IFA_F_DADFAILED|unix.IFA_F_TENTATIVE)},
			wantErrIs: ErrNoSource,
			wantErr:   "fe80::1 failed duplicate address detection",
		},
		{
			name:      "ipv6 no link-local",
			ipv6:      true,
			addrs:     []ifAddr{v4("2001:db8::1", 0)},
			wantErrIs: ErrNoSource,
			wantErr:   "no IPv6 link-local address",
		},
		{
			name:     "ipv6 configured with zone",
			ipv6:     true,
			addrs:    []ifAddr{v4("fe80::1", 0)},
			want:     netip.MustParseAddr("fe80::1%eth0"),
			wantAddr: "fe80::1",
		},
		{
			name:      "ipv6 configured tentative",
			ipv6:      true,
			addrs:     []ifAddr{v4("2001:db8::1", unix.IFA_F_TENTATIVE)},
			want:      netip.MustParseAddr("2001:db8::1"),
			wantErrIs: ErrTentative,
		},
		{
			name:    "family mismatch",
			ipv6:    true,
			want:    netip.MustParseAddr("192.0.2.1"),
			wantErr: "source 192.0.2.1 is not an IPv6 address",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseSource(tt.addrs, tt.want, tt.ipv6)
			if tt.wantErr == "" && tt.wantErrIs == nil {
				if err != nil {
					t.Fatalf("chooseSource: %v", err)
				}
				if got.String() != tt.wantAddr {
					t.Errorf("chooseSource = %s, want %s", got, tt.wantAddr)
				}
				return
			}
			if err == nil {
				t.Fatalf("chooseSource = %s, want an error", got)
			}
			if tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs) {
				t.Errorf("error %q does not wrap %q", err, tt.wantErrIs)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}
