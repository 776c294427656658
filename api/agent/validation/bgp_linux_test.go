package validation

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The reserved protocol numbers include the kernel's RTPROT_* of routing
// daemons, and every entry has a name.
func TestReservedRouteProtocols(t *testing.T) {
	for _, n := range []int32{unix.RTPROT_GATED, unix.RTPROT_RA, unix.RTPROT_MRT, unix.RTPROT_ZEBRA, unix.RTPROT_BIRD,
		unix.RTPROT_DNROUTED, unix.RTPROT_XORP, unix.RTPROT_NTK, unix.RTPROT_DHCP, unix.RTPROT_MROUTED,
		unix.RTPROT_KEEPALIVED, unix.RTPROT_BABEL, unix.RTPROT_OVN, unix.RTPROT_OPENR, unix.RTPROT_BGP,
		unix.RTPROT_ISIS, unix.RTPROT_OSPF, unix.RTPROT_RIP, unix.RTPROT_EIGRP} {
		if reservedRouteProtocols[n] == "" {
			t.Errorf("RTPROT %d is not in reservedRouteProtocols", n)
		}
	}
	for n, name := range reservedRouteProtocols {
		if n < minRouteProtocol || n > maxRouteProtocol || name == "" {
			t.Errorf("reservedRouteProtocols[%d] = %q: out of range or unnamed", n, name)
		}
	}
}
