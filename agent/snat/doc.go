// Package snat programs the source NAT that IPVS NAT forwarding ("masq")
// needs on a director, with nftables over netlink
// (github.com/google/nftables; no nft binary).
//
// # Why
//
// In NAT mode IPVS rewrites only the destination of a client's packet, from
// the VIP to a real server. The real server answers the client directly
// unless its route back goes through the director, and the client drops an
// answer that does not come from the VIP. Two cases never work without
// source NAT:
//
//   - real servers whose default route is not the director (every
//     Kubernetes node: the director is just another node);
//   - hairpin clients: a client on a real server (or on another director)
//     connecting to the VIP. Its packet comes back to its own host with its
//     own address as the source: IPv4 drops it as a martian, IPv6 answers
//     it locally from the real server's address.
//
// Source-NATing the connections IPVS forwarded makes the real server answer
// the director, which undoes both translations. The real server then sees
// the VIP (for clients elsewhere) or the director's address (for the
// director's own connections) instead of the client's.
//
// # Surviving a failover
//
// A connection from elsewhere is source-NATed to the VIP, keeping the
// client's port where it is free, not to the director's own address: the
// VIP moves with the master, so the real server sees the same source
// (VIP, port) whichever director forwards the connection. After a failover
// the new master knows the connection from the IPVS sync daemon (package
// ipvssync), and has its conntrack entry with the source NAT to the same
// VIP and port: ipvssync.Manager.AdoptNAT creates the entries of the synced
// connections when the node becomes master. A connection the sync had not
// delivered yet is picked up from its next client packet (TCP loose pickup,
// net.netfilter.nf_conntrack_tcp_loose=1, which EnableTakeover sets, with
// net.netfilter.nf_conntrack_tcp_be_liberal=1 for a director that takes a
// connection back with a stale entry) and translated by the rules below.
// Either way the real server's socket continues. Masquerading to the old
// master's address would give the real server a new source and a reset. Two clients whose source ports
// collide on one real server get different ports in the order each
// director saw them; such a connection may not survive.
//
// A VIP that every node holds at once (a router in mode bgp,
// Target.Masquerade) is the exception: its connections are masqueraded to
// the node's own address, so that the real server answers the node that
// holds the translation; they cannot survive a move to another node.
//
// The director's own connections to the VIP (fib saddr type local) are
// masqueraded to its address as before: IPVS balances them locally, the
// VIP may be held by another node, and the answer must come back here.
//
// # The table
//
// The package owns one table, "inet vipvs" (TableName). It never touches a
// table of another name or family; "ip vipvs" or "ip6 vipvs" belong to
// someone else. Inside it, two rules per Target:
//
//	table inet vipvs {
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ct original ip daddr 192.0.2.100 ct protocol tcp ct original proto-dst 6443 ip daddr != 192.0.2.100 fib saddr type local counter packets 0 bytes 0 masquerade comment "tcp/192.0.2.100:6443 local"
//			ct original ip daddr 192.0.2.100 ct protocol tcp ct original proto-dst 6443 ip daddr != 192.0.2.100 counter packets 0 bytes 0 snat ip to 192.0.2.100 comment "tcp/192.0.2.100:6443"
//		}
//	}
//
// and a filter chain "input" (hook input, priority 200: after IPVS) with one
// rule per VIP with TCP services (inputRules):
//
//	chain input {
//		type filter hook input priority 200; policy accept;
//		ip daddr 192.0.2.100 meta l4proto tcp ct state new tcp flags & (syn | rst) == 0 tcp dport != 6443 counter packets 0 bytes 0 drop comment "tcp/192.0.2.100"
//	}
//
// It drops a real server's answer that reaches a new master before the
// client's next packet (it would be delivered locally and answered with a
// reset; dropped, it is retransmitted once the connection is set up).
//
// (as `nft list table inet vipvs` prints it, IPv4 targets before IPv6; each
// rule also matches meta nfproto, which nft shows implied).
//
// A rule matches a connection whose conntrack ORIGINAL tuple is addressed
// to the target (VIP, port, protocol) while the packet itself no longer is:
// IPVS has rewritten its destination to a real server. A packet that still
// goes to the VIP (a backup node's own connection to the master, or traffic
// routed through this node) is not touched. The counter counts connections,
// not packets: a nat chain sees only the first packet of each.
//
// The rules use "ct original daddr" (NFT_CT_DST with a direction) rather
// than a concatenated set: the set would need NFT_CT_DST_IP for a 4-byte
// IPv4 key, and google/nftables v0.3.0 cannot send the direction that key
// requires. One rule per target is linear, but targets are few (VIPs times
// ports) and only a connection's first packet is evaluated.
//
// Manager.Sync replaces the whole table in one netlink batch (create it if
// absent, delete it, add it again with its chain and rules), which the
// kernel commits atomically: a packet sees the old rules or the new ones,
// never none. Existing connections keep their NAT binding, which lives in
// conntrack, not in the rules. Sync skips the write when the targets are
// those it applied last and the table and its chain still exist; it
// rewrites them when someone deleted them (`nft flush ruleset`, a firewall
// reload). It does not compare the rules' content: GetRules of
// google/nftables v0.3.0 cannot decode a "ct" expression with a direction.
//
// # Sysctls
//
// IPVS updates conntrack for the connections it forwards only when
// net.ipv4.vs.conntrack=1 (it covers IPv6 too); otherwise they are
// untracked and the rules never match. The answers of the real servers are
// forwarded by the director, so it also needs net.ipv4.ip_forward=1 for
// IPv4 VIPs and net.ipv6.conf.all.forwarding=1 for IPv6 VIPs.
// EnableConntrack sets them in the calling thread's network namespace. It
// reads each first and writes only a value that is not 1, so an agent
// whose /proc/sys is read-only (a container that is not privileged) works
// when the host has set them (sysctl.d, with ip_vs in modules-load.d so
// that the vs directory exists at boot). Without IPVS the vs directory
// does not exist and it returns ErrNoIPVS.
//
// IPv6 forwarding has a side effect: with it on, the kernel ignores router
// advertisements on interfaces whose accept_ra is 1 (the default), so a
// node that takes its IPv6 default route from RAs needs accept_ra=2.
package snat
