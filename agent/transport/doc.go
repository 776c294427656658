// Package transport sends and receives VRRP messages (IP protocol 112) on
// raw IPv4 and IPv6 sockets, as RFC 9568 (VRRPv3) and RFC 3768 (VRRPv2)
// require:
//
//   - every message leaves with IPv4 TTL / IPv6 hop limit 255 (RFC 9568
//     §5.1.1.3 and §5.1.2.3), and the TTL or hop limit of a received message is
//     reported so that the receive checks of §7.1 can drop anything else;
//   - the socket is bound to one interface (SO_BINDTODEVICE) and every message
//     is sent out of it from one fixed source address, forced per packet with
//     IP_PKTINFO / IPV6_PKTINFO. For IPv6 the default source is the
//     interface's link-local address (RFC 9568 §5.1.2.1);
//   - in multicast mode the socket joins 224.0.0.18 or ff02::12 on the
//     interface, with multicast loopback off;
//   - in unicast mode a list of peers filters what is delivered.
//
// The package works on raw payloads: it neither builds nor checks VRRP
// messages (that is the job of the packet codec) and computes no checksum.
// Source tells the caller the address the packets leave from, which the VRRPv3
// checksum pseudo-header needs.
//
// One Conn serves one (interface, address family) pair; several virtual
// routers on that interface share it and the caller demultiplexes by VRID.
//
// Opening a Conn needs CAP_NET_RAW (raw socket, SO_BINDTODEVICE). The socket
// and the netlink socket used to look up the interface's addresses are created
// in the network namespace of the calling OS thread and stay in it.
package transport
