package announce

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// broadcastHW is the Ethernet broadcast address.
var broadcastHW = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// garpPacket returns the gratuitous ARP keepalived sends for vip from mac:
// a request (op 1), sender mac / vip, target ff:ff:ff:ff:ff:ff / vip, sent
// to the Ethernet broadcast address. On the wire it is keepalived's frame
// byte for byte, padded to the 60-byte Ethernet minimum (keepalived leaves
// the padding to the NIC).
func garpPacket(mac net.HardwareAddr, vip netip.Addr) (*arp.Packet, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("invalid Ethernet address %q", mac)
	}
	if !vip.Is4() {
		return nil, fmt.Errorf("invalid IPv4 address %s", vip)
	}
	p, err := arp.NewPacket(arp.OperationRequest, mac, vip, broadcastHW, vip)
	if err != nil {
		return nil, fmt.Errorf("building the gratuitous ARP for %s: %w", vip, err)
	}
	return p, nil
}

// dropAll is the filter of the ARP socket: it only sends, so it queues
// nothing it receives.
var dropAll = []bpf.RawInstruction{{Op: 0x06, K: 0}} // ret #0

// dialARP opens an ARP client on ifi whose socket queues no received
// frame. ifi must have an IPv4 address (the VIP counts).
func dialARP(ifi *net.Interface) (*arp.Client, error) {
	pc, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, err
	}
	c, err := arp.New(ifi, pc)
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	return c, nil
}
