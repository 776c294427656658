// Package bgp announces a node's virtual IPs to upstream routers over BGP,
// so that every healthy node serves a VIP at once and the routers spread the
// flows over them with ECMP (active/active, issue 14).
//
// An [Announcer] embeds a GoBGP server (github.com/osrg/gobgp/v4) that does
// not listen for BGP connections unless asked: it connects to its configured
// peers, optionally watches each session with GoBGP's native single-hop BFD
// (RFC 5880/5881), and advertises a set of host routes (/32, /128) that the
// caller changes at run time with [Announcer.Advertise] and
// [Announcer.Withdraw] as the node's checks pass or fail. IPv4 routes go to
// IPv4 peers and IPv6 routes to IPv6 peers; the next hop is the session's
// local address.
//
// [Announcer.GracefulShutdown] drains the node as RFC 8326 describes:
// re-advertise every route with the GRACEFUL_SHUTDOWN community (65535:0),
// wait for the routers to move traffic away, withdraw, wait again; the caller
// then cancels [Announcer.Run]. [Announcer.Status] reports per peer the
// session state, the BFD state and what is advertised.
package bgp
