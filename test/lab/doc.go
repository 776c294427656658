// Package lab builds network-namespace topologies for end-to-end tests,
// benchmarks and the demo: nodes and clients on one Ethernet segment, faults
// (link down, cable pulled, partitions, packet loss), processes started by PID
// inside a node, a tiny TCP service and a prober that records what a client
// sees.
//
// Everything is done from Go with netlink, setns and nftables (no ip, nft or
// shell), so the same code runs on a CI host and inside the busybox VM.
//
// # Topology
//
//	      switch namespace <name>-sw: bridge br0 (STP off, multicast snooping off, no IPv6)
//	       port n1      port n2   ...   port c1
//	         |            |               |        veth pairs
//	<name>-n1 eth0  <name>-n2 eth0  <name>-c1 eth0
//
// Node i is "n<i>" with MAC 02:00:00:00:01:<i>, 192.0.2.(10+i)/24 and
// 2001:db8::(10+i)/64 written in the same digits (n1: 192.0.2.11,
// 2001:db8::11); client j is "c<j>" with 02:00:00:00:02:<j> and host number
// 50+j. Host numbers 100-199 are free for VIPs (Lab.VIPv4, Lab.VIPv6). The
// namespaces are bind-mounted in /run/netns, so while a test is stopped a
// human can `ip netns exec <Host.Namespace> sh`. Names are "vl<pid>-<seq>-…"
// unless Options.Name is set, so parallel tests and leftovers of a crashed
// run do not collide, and New deletes the leftovers of dead processes.
// Interface names only need to be unique inside their own namespace. IPv6 DAD is off, so addresses and link-locals work at once;
// see New for every sysctl the lab pins.
//
// # Use
//
//	l := lab.NewT(t, lab.Options{Nodes: 3, Clients: 1})
//	stop, err := l.Node(1).Serve(8080)           // answers "n1\n" to every connection
//	p, err := l.Client(1).Probe(netip.AddrPortFrom(vip, 8080), 5*time.Millisecond, 200*time.Millisecond)
//	agent, err := l.Node(1).Start("vipvs", []string{bin, "agent", "--config", cfg}, nil, "")
//	undo, err := l.Partition(l.Node(1), l.Node(2))
//	err = lab.WaitFor(5*time.Second, "n2 holds the VIP", func() (bool, error) { return l.Node(2).HasAddr(vip) })
//	t.Log(p.Stop().Summary())
//
// Tests never sleep to synchronise: they wait on a condition with WaitFor.
// NewT closes the lab in t.Cleanup and, when the test failed, first logs
// Lab.Dump (addresses, neighbours, nftables rules and process log tails of
// every namespace).
//
// # Threads and namespaces
//
// A network namespace belongs to an OS thread, not to a goroutine. Host.Do
// runs a function on a locked thread switched into the host's namespace;
// sockets created there stay in it, and processes forked there (Host.Start)
// start in it. The thread is switched back afterwards, or destroyed if that
// fails. Goroutines started inside Do do not inherit the namespace.
//
// # Faults
//
//   - Host.LinkDown/LinkUp: the host's own eth0 admin down (addresses stay).
//   - Host.Unplug/Plug: the bridge port down, so eth0 loses carrier.
//   - Lab.Partition: drops every frame between two hosts (by source MAC, on
//     netdev ingress, table "netdev lab"), ARP/ND and multicast included.
//   - Lab.Loss: random loss of IP packets in and out of a host (table "inet lab").
//   - Proc.Signal/Kill: SIGTERM, SIGSTOP, SIGKILL by PID.
package lab
