// Package ipvssync runs the kernel's IPVS connection synchronisation daemon
// (ipvsadm --start-daemon, keepalived's lvs_sync_daemon) over the IPVS
// generic netlink family, so that the connections one director balances are
// known to the others and survive the VIP moving to one of them.
//
// # The kernel's daemon
//
// A network namespace runs at most one master and one backup daemon. The
// master multicasts a message for each connection IPVS balances (on its
// third packet, then every net.ipv4.vs.sync_period packets, and on every
// state change); the backup joins the group and creates the connections it
// hears about, so that a packet of an established connection reaching a new
// master is forwarded to the same real server. Every director runs both:
// whoever is master sends, the others listen, and a node that becomes
// master already has the entries. A daemon belongs to a sync ID (0-255): a
// backup drops the messages of another ID, so that two clusters on one
// segment do not mix their tables.
//
// The kernel's protocol is multicast only (UDP to a group, by default
// 224.0.0.81 port 8848, TTL 1): the directors must share an Ethernet
// segment that carries multicast, even where VRRP runs unicast.
//
// # The netlink commands
//
// github.com/moby/ipvs, which agent/ipvs uses for the table, defines the
// IPVS_CMD_*_DAEMON command numbers but has no functions for them. Conn
// adds them in that library's style (vishvananda/netlink's nl package, the
// same family and message layout), small enough to go upstream:
//
//	IPVS_CMD_NEW_DAEMON  Conn.Start  IPVS_CMD_ATTR_DAEMON { STATE, MCAST_IFN, SYNC_ID,
//	                                   [SYNC_MAXLEN], [MCAST_GROUP | MCAST_GROUP6], [MCAST_PORT], [MCAST_TTL] }
//	IPVS_CMD_DEL_DAEMON  Conn.Stop   IPVS_CMD_ATTR_DAEMON { STATE }
//	IPVS_CMD_GET_DAEMON  Conn.Daemons (a dump; each answer is a NEW_DAEMON message)
//
// Manager keeps the pair of daemons matching a Config, replacing a daemon
// whose settings differ (the kernel cannot change a running one), and
// ReadConnCounts reads how many connections of the table came from the
// sync (/proc/net/ip_vs_conn_sync): the kernel has no counter of sync
// messages.
//
// # NAT connections
//
// The kernel syncs IPVS's connections, not conntrack's, and a NAT
// connection source-NATed to the VIP (package snat) needs its conntrack
// entry on the new master too. Manager.AdoptNAT creates those entries over
// ctnetlink from the IPVS table when a node becomes master (nfct.go
// explains why and what the entries hold).
package ipvssync
