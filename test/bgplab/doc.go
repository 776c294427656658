// Package bgplab runs real BGP routers in network namespaces for the tests
// of active/active VIPs over BGP and ECMP (issue 14): FRR (zebra, bgpd and
// bfdd from Debian's frr package, each daemon started per namespace) as the
// upstream router, BIRD 2 (bird2) as a second, independent peer, and nodes
// running the real agent (vipvs-agent, built by TestMain) with every VIP in
// mode bgp, tracking a check the tests fail by creating a file.
//
// # Topology
//
// It builds on test/lab: nodes n1..nN and clients on one Ethernet segment
// (192.0.2.0/24 and 2001:db8::/64, a top-of-rack VLAN). Client c1 is the
// FRR router (192.0.2.51, 2001:db8::51), c3 the BIRD router (192.0.2.53,
// IPv4 only), and c2 the client, which is behind the router at layer 3: it
// has 198.51.100.2/24 and 2001:db8:100::2/64 and reaches the VIPs
// (203.0.113.10 and 2001:db8:ffff::10, off the segment) through the
// router's 198.51.100.1 and 2001:db8:100::1; the nodes answer it through
// the router too. Every node holds both VIPs on lo and peers with FRR over
// IPv4 and IPv6 and with BIRD over IPv4, all with BFD.
//
//	client c2 198.51.100.2 -> FRR c1 (ECMP, L4 hash) -> n1 | n2 | n3 (VIP on lo)
//	                          BIRD c3 <- BGP from every node
//
// The router forwards with fib_multipath_hash_policy=1 (IPv4 and IPv6) and
// no ICMP redirects (the client and nodes ignore IPv6 redirects); the client
// has net.core.txrehash=0 (see
// /work/shared/BGP-LAB.md: over veth a retransmission would otherwise
// re-hash a flow onto another node).
//
// Daemons are started in the foreground by PID (lab.Host.Start), stopped
// with SIGTERM and then SIGKILL; their per-namespace directories
// (/var/run/frr/<namespace>, /var/tmp/frr/<daemon>.<pid>) are removed.
package bgplab
