// Package transport sends and receives VRRP messages (IP protocol 112) for
// IPv4 and IPv6, as RFC 9568 (VRRPv3) and RFC 3768 (VRRPv2) require:
//
//   - every message leaves with IPv4 TTL / IPv6 hop limit 255 (RFC 9568
//     §5.1.1.3 and §5.1.2.3), and the TTL or hop limit of a received message is
//     reported so that the receive checks of §7.1 can drop anything else;
//   - receiving is done on an AF_PACKET datagram socket bound to the
//     interface, with a classic BPF filter that passes IP protocol 112 only:
//     the IP header is read by the package (source, destination, TTL; the
//     payload is trimmed to the IP length, fragments are skipped) and the
//     frame's link-layer source comes with every packet (Packet.SrcMAC), which
//     a raw IP socket cannot give. Frames the host sends and frames for other
//     hosts are skipped;
//   - sending is done on a raw IP socket bound to the interface
//     (SO_BINDTODEVICE), from one fixed source address forced per packet with
//     IP_PKTINFO / IPV6_PKTINFO. For IPv6 the default source is the
//     interface's link-local address (RFC 9568 §5.1.2.1). That socket queues
//     nothing (a drop-all filter) and holds the multicast membership of
//     224.0.0.18 or ff02::12, with multicast loopback off;
//   - in unicast mode a list of peers filters what is delivered.
//
// The package works on raw payloads: it neither builds nor checks VRRP
// messages (that is the job of the packet codec) and computes no checksum.
//
// A Hub is the package's entry point. It shares one socket per (interface,
// family) between the virtual routers on it: one goroutine reads every
// packet once and hands it to the subscription (Sub) of its VRID, after
// dropping and counting packets from the interface's own addresses and,
// when the subscription has peers, from anyone else; it allocates nothing
// per packet. A Sub sends from its own source address. A router
// on an interface that was re-created (same name, new index) subscribes
// again and gets a socket on the new interface.
//
// Receiving (recvfrom) and sending (sendmsg) are non-blocking raw system
// calls made inside the sockets' syscall.RawConn callbacks: a would-block
// parks the goroutine in the netpoller, and no call enters the runtime's
// syscall path, which wakes the sysmon thread whenever it sleeps (a
// context switch per packet at 10 ms adverts). Neither path allocates.
//
// Opening a socket needs CAP_NET_RAW. Sockets and the netlink socket used
// to look up the interface's addresses are created in the network namespace
// of the calling OS thread and stay in it.
package transport
