package arpwatch

import (
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/arp"
)

// TestClaim: which ARP packets claim a watched address for another node.
func TestClaim(t *testing.T) {
	own := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	other := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	vip := netip.MustParseAddr("192.0.2.100")
	node := netip.MustParseAddr("192.0.2.12")
	w := &Watcher{own: own}
	watched := func(a netip.Addr) bool { return a == vip }
	tests := []struct {
		name  string
		p     arp.Packet
		want  bool
		reply bool
	}{
		{name: "gratuitous ARP for the VIP from another MAC", p: arp.Packet{Operation: arp.OperationRequest, SenderHardwareAddr: other, SenderIP: vip, TargetIP: vip}, want: true},
		{name: "reply for the VIP from another MAC (a probe answered)", p: arp.Packet{Operation: arp.OperationReply, SenderHardwareAddr: other, SenderIP: vip, TargetIP: netip.IPv4Unspecified()}, want: true, reply: true},
		{name: "our own announcement", p: arp.Packet{Operation: arp.OperationRequest, SenderHardwareAddr: own, SenderIP: vip, TargetIP: vip}},
		{name: "another address", p: arp.Packet{Operation: arp.OperationReply, SenderHardwareAddr: other, SenderIP: node, TargetIP: node}},
		{name: "a probe (sender 0.0.0.0) for the VIP", p: arp.Packet{Operation: arp.OperationRequest, SenderHardwareAddr: other, SenderIP: netip.IPv4Unspecified(), TargetIP: vip}},
		{name: "a client asking for the VIP", p: arp.Packet{Operation: arp.OperationRequest, SenderHardwareAddr: other, SenderIP: node, TargetIP: vip}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := w.claim(&tt.p, watched)
			if ok != tt.want {
				t.Fatalf("claim = %v, want %v", ok, tt.want)
			}
			if ok && (s.Addr != vip || s.MAC.String() != other.String() || s.Reply != tt.reply) {
				t.Errorf("sighting %+v, want %s from %s (reply %v)", s, vip, other, tt.reply)
			}
		})
	}
}
