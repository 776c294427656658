// Package lb holds the load-balancing end-to-end tests: real vipvs agents
// programming the kernel's IPVS in network namespaces. They need IPVS, so
// they run only inside the test VM (test/ipvse2e.TestLoadBalancingInVM
// boots it with this package's test binary and the vipvs binary); on a
// host they skip.
//
// Topology (one Ethernet segment, test/lab): directors n1, n2, n3 run the
// agent and share the VIPs; real servers n4, n5, n6 answer on port 8080
// (NAT) and 80 (DR, tunnel) with their name; client c1. The real servers'
// replies to c1 go straight to c1 (same subnet, no route through a
// director), so NAT works only thanks to the agent's source NAT.
package lb

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipvs/vipvs/agent/ipvs"
	"github.com/vipvs/vipvs/agent/status"
	v1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
	"github.com/vipvs/vipvs/test/vm"
	"github.com/vishvananda/netlink"
)

var vipvsBin string

func TestMain(m *testing.M) {
	if !vm.InVM() {
		// On a host the tests skip; do not build the binary for nothing.
		os.Exit(m.Run())
	}
	bin, cleanup, err := agentlab.BinaryForTests("vipvs-lb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vipvsBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

const (
	natPort    = 8080
	directPort = 80
)

var (
	vipNAT    = netip.MustParsePrefix("192.0.2.100/24")
	vipDR     = netip.MustParsePrefix("192.0.2.101/32")
	vipTunnel = netip.MustParsePrefix("192.0.2.102/32")
)

func requireVM(t *testing.T) {
	t.Helper()
	if !vm.InVM() {
		t.Skip("needs IPVS, which this kernel lacks: runs inside the test VM (go test ./test/ipvse2e -run TestLoadBalancingInVM)")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// servers are the listeners of the real servers: node name -> port ->
// stop function.
type servers map[string]map[int]func()

// setup starts a lab of three directors, three real servers and a client,
// with the real servers answering on natPort and directPort.
func setup(t *testing.T) (*lab.Lab, servers) {
	t.Helper()
	l := lab.NewT(t, lab.Options{Nodes: 6, Clients: 1})
	srv := servers{}
	for _, n := range l.Nodes()[3:] {
		srv[n.Name] = map[int]func(){}
		for _, port := range []int{natPort, directPort} {
			stop, err := n.Serve(port)
			must(t, err)
			srv[n.Name][port] = stop
			t.Cleanup(stop)
		}
	}
	return l, srv
}

// realServers returns the real servers n4..n6 on port.
func realServers(l *lab.Lab, port int32) []v1alpha1.RealServer {
	var out []v1alpha1.RealServer
	for _, n := range l.Nodes()[3:] {
		p := port
		out = append(out, v1alpha1.RealServer{Address: n.IPv4.String(), Port: &p})
	}
	return out
}

// startDirectors runs agents on n1..n3 (priorities 150, 100, 50) for
// routers and waits for n1 to be master of each.
func startDirectors(t *testing.T, l *lab.Lab, routers ...agentlab.Router) *agentlab.Cluster {
	t.Helper()
	c, err := agentlab.New(l, vipvsBin, t.TempDir(), routers...)
	must(t, err)
	// Only n1..n3 are directors: agentlab runs an agent on every node, so
	// the real servers' agents are dropped before the start.
	c.Agents = c.Agents[:3]
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			c.Dump(&b)
			l.Dump(&b)
			t.Log("\n" + b.String())
		}
	})
	must(t, c.Start())
	for _, r := range routers {
		must(t, c.WaitMaster(r.Name, c.Agents[0], r.VIPs[0].Addr(), 15*time.Second))
	}
	return c
}

func spread(r lab.Result) string {
	s := r.Servers()
	return fmt.Sprintf("n4=%d n5=%d n6=%d failed=%d", s["n4"], s["n5"], s["n6"], r.Failed())
}

// TestNATBalancing: connections to the VIP spread over the three real
// servers (rr); a real server that stops answering is drained within
// fall x interval + timeout and restored after rise successes; the master
// fails and the VIP keeps serving through the new master; a client on a
// director and a client on a real server both reach the VIP.
func TestNATBalancing(t *testing.T) {
	requireVM(t)
	l, srv := setup(t)
	interval, timeout := 200*time.Millisecond, 200*time.Millisecond
	rise, fall := int32(2), int32(2)
	c := startDirectors(t, l, agentlab.Router{
		Name: "web", VRID: 51, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vipNAT},
		Interval: 100 * time.Millisecond,
		Services: []v1alpha1.VirtualService{{
			Name: "web", Port: natPort, Scheduler: "rr", RealServers: realServers(l, natPort),
			HealthCheck: &v1alpha1.RealServerCheck{
				TCP:      &v1alpha1.RealServerTCPCheck{},
				Interval: &v1alpha1.Duration{Duration: interval}, Timeout: &v1alpha1.Duration{Duration: timeout},
				Rise: &rise, Fall: &fall,
			},
		}},
	})
	n1, n2 := c.Agents[0], c.Agents[1]
	target := netip.AddrPortFrom(vipNAT.Addr(), natPort)

	// Every director programs the service (backups too), and reports it.
	for _, a := range c.Agents {
		must(t, lab.WaitFor(10*time.Second, a.Node.Name+" to program the service", func() (bool, error) {
			rep, err := a.Status()
			return err == nil && rep.IPVS != nil && rep.IPVS.State == status.IPVSActive && rep.IPVS.Services == 1, nil
		}))
	}

	p, err := l.Client(1).Probe(target, 10*time.Millisecond, 300*time.Millisecond)
	must(t, err)
	defer p.Stop()
	// 20s: under the VM's emulation the connection sync (on by default:
	// each new connection is sent to the backups) makes a connection about
	// twice as slow as without (300 took 8.1s instead of 4.7s).
	must(t, lab.WaitFor(20*time.Second, "300 answered probes", func() (bool, error) { return p.Snapshot().OK() >= 300, nil }))
	r := p.Snapshot()
	t.Logf("spread over the real servers: %s", spread(r))
	for _, n := range []string{"n4", "n5", "n6"} {
		if got := r.Servers()[n]; got < r.OK()/5 {
			t.Errorf("%s served %d of %d connections, want about a third (rr)", n, got, r.OK())
		}
	}

	// n5 stops answering: drained within fall x interval + timeout.
	n5 := l.Node(5)
	stopped := time.Now()
	srv["n5"][natPort]()
	var drainedAfter time.Duration
	must(t, lab.WaitFor(10*time.Second, "n5 drained on the master", func() (bool, error) {
		rs, err := realServerStatus(n1, n5.IPv4.String())
		if err != nil || rs.Weight != 0 || rs.Healthy {
			return false, nil
		}
		drainedAfter = time.Since(stopped)
		return true, nil
	}))
	bound := time.Duration(fall)*interval + timeout
	t.Logf("n5 drained %v after it stopped answering (fall x interval + timeout = %v)", drainedAfter.Round(time.Millisecond), bound)
	if drainedAfter > bound+interval+500*time.Millisecond {
		t.Errorf("n5 drained after %v, want within fall x interval + timeout = %v (+ one interval of phase, + scheduling slack)", drainedAfter, bound)
	}
	mark := time.Now()
	must(t, lab.WaitFor(5*time.Second, "100 more answered probes", func() (bool, error) { return p.Snapshot().Since(mark).OK() >= 100, nil }))
	if got := p.Snapshot().Since(mark).Servers()["n5"]; got != 0 {
		t.Errorf("drained n5 still got %d new connections", got)
	}

	// n5 answers again: restored after rise successes.
	restart := time.Now()
	stop, err := n5.Serve(natPort)
	must(t, err)
	t.Cleanup(stop)
	must(t, lab.WaitFor(10*time.Second, "n5 restored", func() (bool, error) {
		rs, err := realServerStatus(n1, n5.IPv4.String())
		return err == nil && rs.Healthy && rs.Weight == 1, nil
	}))
	t.Logf("n5 restored %v after it answered again (rise %d x interval %v)", time.Since(restart).Round(time.Millisecond), rise, interval)
	mark = time.Now()
	must(t, lab.WaitFor(10*time.Second, "n5 to serve again", func() (bool, error) { return p.Snapshot().Since(mark).Servers()["n5"] > 0, nil }))

	// The master fails: n2 takes over and the VIP keeps serving through it.
	down := time.Now()
	must(t, n1.Node.LinkDown())
	must(t, lab.WaitFor(10*time.Second, "n2 to become master", func() (bool, error) {
		rt, err := n2.RouterStatus("web")
		return err == nil && rt.IsMaster(), nil
	}))
	must(t, lab.WaitFor(10*time.Second, "100 answered probes through n2", func() (bool, error) {
		return p.Snapshot().Since(down).OK() >= 100, nil
	}))
	after := p.Snapshot().Since(down)
	t.Logf("failover: client gap %v, %d failed; after it: %s", after.LongestGap().Round(time.Millisecond), after.Failed(), spread(after))
	if s := after.Servers(); s["n4"] == 0 || s["n5"] == 0 || s["n6"] == 0 {
		t.Errorf("after the failover the connections did not spread over all real servers: %s", spread(after))
	}
	must(t, n1.Node.LinkUp())
	must(t, c.WaitMaster("web", n1, vipNAT.Addr(), 15*time.Second))

	// Hairpin: a client on the master (n1), on a backup director (n3) and on
	// a real server (n4) reach the VIP.
	for _, h := range []*lab.Host{l.Node(1), l.Node(3), l.Node(4)} {
		hp, err := h.Probe(target, 10*time.Millisecond, 300*time.Millisecond)
		must(t, err)
		err = lab.WaitFor(10*time.Second, "30 answered probes from "+h.Name, func() (bool, error) { return hp.Snapshot().OK() >= 30, nil })
		res := hp.Stop()
		if err != nil {
			t.Errorf("client on %s: %v (%s)", h.Name, err, res.Summary())
			continue
		}
		t.Logf("client on %s reaches the VIP: %s", h.Name, spread(res))
	}
}

// realServerStatus returns the master's view of real server addr.
func realServerStatus(a *agentlab.Agent, addr string) (status.RealServer, error) {
	rep, err := a.Status()
	if err != nil {
		return status.RealServer{}, err
	}
	if rep.IPVS == nil {
		return status.RealServer{}, fmt.Errorf("no IPVS status")
	}
	for _, rs := range rep.IPVS.RealServers {
		if strings.HasPrefix(rs.Address, addr+":") {
			return rs, nil
		}
	}
	return status.RealServer{}, fmt.Errorf("no real server %s in the status", addr)
}

// prepareDirectRealServer sets a real server up for direct routing or
// tunnelling as docs/forwarding.md describes: the VIP on lo (DR) or tunl0
// (tunnel), never answered for in ARP (arp_ignore=1, arp_announce=2), and
// for tunnelling no reverse-path filter on tunl0.
func prepareDirectRealServer(t *testing.T, h *lab.Host, vip netip.Prefix, tunnel bool) {
	t.Helper()
	for _, kv := range [][2]string{
		{"net.ipv4.conf.all.arp_ignore", "1"},
		{"net.ipv4.conf.all.arp_announce", "2"},
		{"net.ipv4.conf.eth0.arp_ignore", "1"},
		{"net.ipv4.conf.eth0.arp_announce", "2"},
	} {
		must(t, h.SetSysctl(kv[0], kv[1]))
	}
	dev := "lo"
	if tunnel {
		dev = "tunl0"
	}
	nl := h.Netlink()
	link, err := nl.LinkByName(dev)
	if err != nil {
		t.Fatalf("%s: %s: %v (tunnelling needs the ipip module)", h.Name, dev, err)
	}
	must(t, nl.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: vip.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}}))
	must(t, nl.LinkSetUp(link))
	if tunnel {
		for _, k := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.tunl0.rp_filter"} {
			must(t, h.SetSysctl(k, "0"))
		}
	}
}

// testDirect checks that a DR or tunnel service on vip carries the
// client's connections to all three real servers, which answer the
// client directly.
func testDirect(t *testing.T, vip netip.Prefix, fwd v1alpha1.Forwarding) {
	requireVM(t)
	l, _ := setup(t)
	for _, n := range l.Nodes()[3:] {
		prepareDirectRealServer(t, n, vip, fwd == v1alpha1.ForwardingTunnel)
	}
	c := startDirectors(t, l, agentlab.Router{
		Name: "direct", VRID: 52, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip},
		Interval: 100 * time.Millisecond,
		Services: []v1alpha1.VirtualService{{
			Name: "web", Port: directPort, Scheduler: "rr", Forwarding: fwd, RealServers: realServers(l, directPort),
		}},
	})
	// The master programs a DR or tunnel service; with the connection
	// sync (on by default) so do the backups, which are not real servers
	// here (agent/balancer/connsync.go).
	for _, a := range c.Agents {
		must(t, lab.WaitFor(10*time.Second, a.Node.Name+" to program the service", func() (bool, error) {
			rep, err := a.Status()
			return err == nil && rep.IPVS != nil && rep.IPVS.Services == 1, nil
		}))
	}
	p, err := l.Client(1).Probe(netip.AddrPortFrom(vip.Addr(), directPort), 10*time.Millisecond, 300*time.Millisecond)
	must(t, err)
	defer p.Stop()
	must(t, lab.WaitFor(10*time.Second, "150 answered probes", func() (bool, error) { return p.Snapshot().OK() >= 150, nil }))
	r := p.Snapshot()
	t.Logf("%s: %s", fwd, spread(r))
	for _, n := range []string{"n4", "n5", "n6"} {
		if got := r.Servers()[n]; got < r.OK()/5 {
			t.Errorf("%s served %d of %d connections, want about a third (rr)", n, got, r.OK())
		}
	}

	// The master fails: the new master programs the service and serves.
	down := time.Now()
	must(t, c.Agents[0].Node.LinkDown())
	must(t, lab.WaitFor(10*time.Second, "100 answered probes through n2", func() (bool, error) {
		s := p.Snapshot().Since(down)
		return s.OK() >= 100, nil
	}))
	after := p.Snapshot().Since(down)
	t.Logf("%s failover: client gap %v, %d failed; after it: %s", fwd, after.LongestGap().Round(time.Millisecond), after.Failed(), spread(after))
}

// TestDirectRouting: a DR service carries traffic to real servers that hold
// the VIP on lo.
func TestDirectRouting(t *testing.T) { testDirect(t, vipDR, v1alpha1.ForwardingDR) }

// TestTunnel: a tunnel service carries traffic to real servers that hold
// the VIP on tunl0.
func TestTunnel(t *testing.T) { testDirect(t, vipTunnel, v1alpha1.ForwardingTunnel) }

// TestOwnedAfterRestart: an agent programs services A and B and is killed
// (SIGKILL: no shutdown, its services stay in the kernel); B is removed
// from its config; when the agent starts again it deletes B, keeps A, and
// leaves alone a service someone else added on the same VIP. The agent
// knows B was its own from the record it keeps beside its status socket.
func TestOwnedAfterRestart(t *testing.T) {
	requireVM(t)
	l := lab.NewT(t, lab.Options{Nodes: 2})
	const portA, portB, portForeign = 8081, 8082, 8083
	svc := func(name string, port int32) v1alpha1.VirtualService {
		return v1alpha1.VirtualService{Name: name, Port: port, Scheduler: "rr",
			RealServers: []v1alpha1.RealServer{{Address: l.Node(2).IPv4.String(), Port: &port}}}
	}
	router := agentlab.Router{
		Name: "owned", VIPs: []netip.Prefix{vipNAT}, VRID: 53, Priorities: []int{150},
		Interval: 100 * time.Millisecond,
		Services: []v1alpha1.VirtualService{svc("a", portA), svc("b", portB)},
	}
	c, err := agentlab.New(l, vipvsBin, t.TempDir(), router)
	must(t, err)
	c.Agents = c.Agents[:1]
	a := c.Agents[0]
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			c.Dump(&b)
			t.Log("\n" + b.String())
		}
		if a.Proc != nil {
			a.Proc.Kill()
		}
	})

	table, err := ipvs.NewAt(fmt.Sprintf("/proc/self/fd/%d", int(a.Node.NS())))
	must(t, err)
	t.Cleanup(func() { table.Close() })
	key := func(port int) string {
		return ipvs.Service{Protocol: ipvs.TCP, VIP: vipNAT.Addr(), Port: uint16(port)}.Key()
	}
	keys := func() ([]string, error) {
		ss, err := table.Services(context.Background())
		var out []string
		for _, s := range ss {
			out = append(out, s.Key())
		}
		slices.Sort(out)
		return out, err
	}
	waitTable := func(what string, want ...string) {
		t.Helper()
		slices.Sort(want)
		must(t, lab.WaitFor(15*time.Second, what, func() (bool, error) {
			got, err := keys()
			return slices.Equal(got, want), err
		}))
	}
	// Someone else's service on the same VIP.
	foreign := ipvs.Service{Protocol: ipvs.TCP, VIP: vipNAT.Addr(), Port: portForeign, Scheduler: "rr",
		Reals: []ipvs.Real{{Addr: l.Node(2).IPv4, Port: portForeign, Weight: 1, Forward: ipvs.NAT}}}
	must(t, table.Apply(context.Background(), ipvs.Diff([]ipvs.Service{foreign}, nil, nil)))

	must(t, a.Start())
	waitTable("A and B programmed beside the foreign service", key(portA), key(portB), key(portForeign))
	record := strings.TrimSuffix(a.Socket, ".sock") + ".ipvs.json"
	if b, err := os.ReadFile(record); err != nil {
		t.Errorf("the record of the agent's services: %v", err)
	} else {
		t.Logf("record %s:\n%s", record, b)
	}

	must(t, a.Proc.Kill())
	a.Proc = nil
	if got, err := keys(); err != nil || len(got) != 3 {
		t.Fatalf("after SIGKILL the table holds %v (%v), want the three services still", got, err)
	}

	router.Services = router.Services[:1]
	cfg := c.Config(1, router)
	cfg.IPVS = &v1alpha1.IPVS{ResyncInterval: &v1alpha1.Duration{Duration: time.Second}}
	must(t, a.WriteConfig(cfg))
	must(t, a.Start())
	waitTable("B deleted, A and the foreign service kept", key(portA), key(portForeign))
	// And it stays so through later full reconciles (every second).
	time.Sleep(2500 * time.Millisecond)
	if got, err := keys(); err != nil || !slices.Equal(got, []string{key(portA), key(portForeign)}) {
		t.Errorf("later the table holds %v (%v), want A and the foreign service", got, err)
	}
}
