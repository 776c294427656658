// Package announce tells the layer-2 neighbours of an interface that a VIP
// now lives behind this node's MAC address, as keepalived does when a VRRP
// router becomes master:
//
//   - IPv4: a gratuitous ARP request (RFC 5227 §3 "ARP Announcement": sender
//     and target protocol address are the VIP), broadcast, sent with
//     github.com/mdlayher/arp on an AF_PACKET socket that queues nothing it
//     receives. Byte for byte the frame keepalived sends, padded to the
//     60-byte Ethernet minimum (keepalived leaves that to the NIC).
//   - IPv6: an unsolicited Neighbor Advertisement (RFC 4861 §7.2.6) with the
//     Override flag and a Target Link-Layer Address option, to the all-nodes
//     group ff02::1 with hop limit 255, built with github.com/mdlayher/ndp.
//
// An Announcer sends one announcement per VIP now; a Schedule drives it in
// bursts (at once, a repeat, an optional periodic refresh) on an injected
// clock.
package announce
