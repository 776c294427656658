// Package routetable hands a node's VIPs to a BGP daemon that already runs
// on the node (FRR, frr-k8s): instead of speaking BGP itself (agent/bgp),
// the agent writes a host route for each VIP it serves, while its checks
// pass, into a kernel routing table of its own, and the daemon
// redistributes that table to its peers (bgp.externalSpeaker, issue 14).
//
// A [Writer] owns the routes of one protocol number (rtm_protocol) in one
// table: a route "<vip>/32 dev lo table <table> proto <protocol> scope link"
// (/128 for IPv6) for each VIP that [Writer.Advertise] added and
// [Writer.Withdraw] did not remove. [Writer.Run] reconciles the table with
// that set: when it starts it removes the routes of its protocol that it
// does not want (those a crashed agent left), and while it runs it watches
// the kernel's route notifications, with a periodic resync behind them, and
// puts back a wanted route that something deleted or changed. Routes of
// other protocols, in its table or any other, are never touched; a wanted
// prefix that another protocol already routes in the table is reported as
// an error rather than overwritten.
//
// [Writer.GracefulShutdown] removes every route and waits for the daemon and
// the routers behind it to converge; when Run ends it removes the routes
// too (the daemon then withdraws them at once, as the peers of an embedded
// speaker drop the routes of a closed session). [Writer.Status] reports the
// routes in the table in the agent's status format.
//
// FRR 8.4 imports such a table with "ip import-table <table>" (IPv4 only,
// tables 1 to 252) and announces it with "redistribute table <table>" in
// bgpd; the imported route loses to a connected route of the same prefix,
// so the VIP must not be an address of an interface that FRR sees.
// [LocalVIPs] holds the VIPs for that mode instead: as local routes
// ("local <vip> dev lo table local proto <protocol>"), which make the node
// accept their traffic without an address, with the Writer's reconcile.
// See docs/external-speaker.md.
package routetable
