package lb

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/vishvananda/netlink"

	"github.com/vipvs/vipvs/agent/balancer"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/ipvs"
	v1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/test/lab"
)

// The consistent-hashing tests (issue 14): the VIP of a router in mode bgp
// is balanced by every director at once, and the routers of the fabric
// spread the flows over the directors with ECMP. When a director joins or
// leaves the ECMP set, established flows move to a director that has never
// seen them; with mh (the real servers in one order on every director)
// and sloppy TCP that director sends them to the same real server, and
// they survive.
//
// Topology (test/lab, one segment): directors n1..n3 hold the VIP on lo
// and run agent/balancer with the router's service, as the agent runs a
// bgp router that advertises (SetMaster(router, true): programmed on every
// node); real servers n4..n6 run an echo server and hold the VIP (DR on
// lo, tunnel on tunl0); c1 is the router: it routes the VIP over the
// directors with a multipath route (fib_multipath_hash_policy=1, the L4
// hash), and a route change stands in for BGP; c2 is the client, behind
// c1 at layer 3 (198.51.100.2, routes the VIP via c1's 198.51.100.1).
//
//	c2 198.51.100.2 -> c1 (ECMP) -> n1 | n2 | n3 (IPVS, mh) -> n4 | n5 | n6 -> c1 -> c2
//
// Each director runs the balancer package in this process on its own
// network namespace's IPVS table (ipvs.NewAt), which is what the agent
// does in its own namespace for a bgp router; the agent's wiring of mode
// bgp is proven by its own tests.

var vipECMP = netip.MustParsePrefix("203.0.113.10/32")

const (
	// routerAddr and clientAddr are the router's and the client's
	// addresses on the client's side.
	routerAddr = "198.51.100.1"
	clientAddr = "198.51.100.2"
	clientNet  = "198.51.100.0/24"
)

// ecmpConns is the number of long-lived connections: 60, or
// VIPVS_ECMP_CONNS.
func ecmpConns() int {
	if n, err := strconv.Atoi(os.Getenv("VIPVS_ECMP_CONNS")); err == nil && n > 0 {
		return n
	}
	return 60
}

// ecmpVariant is what a test programs on the directors.
type ecmpVariant struct {
	fwd v1alpha1.Forwarding
	// scheduler is mh for the feature; another for a negative test.
	scheduler string
	// consistent marks the service as a bgp router's (ConsistentHashing).
	consistent bool
	// noSloppy hides EnableSloppy from the balancer: sloppy TCP stays off.
	noSloppy bool
	// forceSloppy sets sloppy TCP by hand (for a scheduler other than mh).
	forceSloppy bool
}

// String names the variant: "DR, mh + sloppy TCP", "DR, rr + sloppy TCP",
// "DR, mh without sloppy TCP".
func (v ecmpVariant) String() string {
	sloppy := " + sloppy TCP"
	if v.noSloppy || !v.consistent && !v.forceSloppy {
		sloppy = " without sloppy TCP"
	}
	return fmt.Sprintf("%s, %s%s", v.fwd, v.scheduler, sloppy)
}

// ecmpLab is a running consistent-hashing lab.
type ecmpLab struct {
	l         *lab.Lab
	directors []*lab.Host
	router    *lab.Host
	client    *lab.Host
}

// tableOnly hides every method of a Table but Table's own (EnableSloppy).
type tableOnly struct{ balancer.Table }

// setupECMP builds the lab and starts a balancer on each director.
func setupECMP(t *testing.T, v ecmpVariant) *ecmpLab {
	t.Helper()
	requireVM(t)
	l := lab.NewT(t, lab.Options{Nodes: 6, Clients: 2})
	e := &ecmpLab{l: l, directors: l.Nodes()[:3], router: l.Client(1), client: l.Client(2)}
	routerOnSegment := e.router.IPv4

	// The router: forwards, hashes L4, sends no redirects (the client and
	// the nodes are on its one segment: a redirect would take the router,
	// and so ECMP, out of the path).
	for _, kv := range [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv4.fib_multipath_hash_policy", "1"},
		{"net.ipv4.conf.all.send_redirects", "0"},
		{"net.ipv4.conf.eth0.send_redirects", "0"},
	} {
		must(t, e.router.SetSysctl(kv[0], kv[1]))
	}
	addAddr(t, e.router, routerAddr+"/24")
	// The client: behind the router, no redirects accepted, and no
	// re-hash of its flows on retransmission (BGP-LAB.md).
	addAddr(t, e.client, clientAddr+"/24")
	must(t, e.client.SetSysctl("net.ipv4.conf.all.accept_redirects", "0"))
	must(t, e.client.SetSysctl("net.ipv4.conf.eth0.accept_redirects", "0"))
	if err := e.client.SetSysctl("net.core.txrehash", "0"); err != nil {
		t.Logf("net.core.txrehash: %v (older kernel)", err)
	}
	addRoute(t, e.client, vipECMP.String(), routerAddr, clientAddr)

	// Directors: the VIP on lo (as the agent holds a bgp VIP), the route
	// back to the client through the router.
	for _, d := range e.directors {
		addAddrOn(t, d, "lo", vipECMP.String())
		addRoute(t, d, clientNet, routerOnSegment.String(), "")
	}
	// Real servers: the echo service, the VIP, the route back.
	var reals []config.RealServer
	for _, n := range l.Nodes()[3:] {
		serveEcho(t, n, echoPort)
		prepareDirectRealServer(t, n, vipECMP, v.fwd == v1alpha1.ForwardingTunnel)
		addRoute(t, n, clientNet, routerOnSegment.String(), "")
		reals = append(reals, config.RealServer{Addr: netip.AddrPortFrom(n.IPv4, echoPort), Weight: 1})
	}
	// The configuration is given in another order on each director: the
	// balancer must program one order everywhere.
	for i, d := range e.directors {
		rs := append(append([]config.RealServer(nil), reals[i:]...), reals[:i]...)
		cfg := &config.Config{
			IPVS:    config.IPVS{ResyncInterval: 5 * time.Second, CheckConcurrency: 4},
			Routers: []config.Router{{Name: "anycast", VIPs: []netip.Prefix{vipECMP}}},
			Services: []config.VirtualService{{
				Router: "anycast", Name: "echo", Port: echoPort, Protocol: v1alpha1.ProtocolTCP,
				Scheduler: v.scheduler, Forwarding: v.fwd, RealServers: rs, ConsistentHashing: v.consistent,
			}},
		}
		if v.forceSloppy {
			must(t, d.SetSysctl("net.ipv4.vs.sloppy_tcp", "1"))
		}
		startBalancer(t, d, cfg, v.noSloppy)
	}
	// Every director programs the service; with the feature, sloppy TCP is
	// on.
	for _, d := range e.directors {
		must(t, lab.WaitFor(15*time.Second, d.Name+" to program the service", func() (bool, error) {
			got, err := directorTable(d)
			return err == nil && len(got) == 1 && len(got[0].Reals) == 3, nil
		}))
		sloppy, err := d.Sysctl("net.ipv4.vs.sloppy_tcp")
		must(t, err)
		if want := v.consistent && !v.noSloppy || v.forceSloppy; (sloppy == "1") != want {
			t.Errorf("%s: net.ipv4.vs.sloppy_tcp = %s, want on: %v", d.Name, sloppy, want)
		}
	}
	return e
}

// startBalancer runs agent/balancer on d's IPVS table with cfg, the bgp
// router advertised (SetMaster true), until the test ends.
func startBalancer(t *testing.T, d *lab.Host, cfg *config.Config, noSloppy bool) {
	t.Helper()
	p, err := ipvs.NewAt(fmt.Sprintf("/proc/self/fd/%d", int(d.NS())))
	must(t, err)
	b, err := balancer.New(balancer.Options{
		Log: testr.NewWithOptions(t, testr.Options{LogTimestamp: true}).WithName(d.Name),
		OpenTable: func() (balancer.Table, error) {
			if noSloppy {
				return tableOnly{p}, nil
			}
			return p, nil
		},
	})
	must(t, err)
	b.Update(cfg)
	b.SetMaster("anycast", true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err := b.Shutdown(context.Background()); err != nil {
			t.Logf("%s: balancer shutdown: %v", d.Name, err)
		}
	})
}

// directorTable reads d's IPVS table.
func directorTable(d *lab.Host) ([]ipvs.Service, error) {
	p, err := ipvs.NewAt(fmt.Sprintf("/proc/self/fd/%d", int(d.NS())))
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Services(context.Background())
}

func addAddr(t *testing.T, h *lab.Host, cidr string) { t.Helper(); addAddrOn(t, h, lab.IfName, cidr) }

func addAddrOn(t *testing.T, h *lab.Host, dev, cidr string) {
	t.Helper()
	nl := h.Netlink()
	link, err := nl.LinkByName(dev)
	must(t, err)
	a, err := netlink.ParseAddr(cidr)
	must(t, err)
	must(t, nl.AddrAdd(link, a))
	must(t, nl.LinkSetUp(link))
}

// addRoute adds dst via gw in h (with source address src if not "").
func addRoute(t *testing.T, h *lab.Host, dst, gw, src string) {
	t.Helper()
	_, n, err := net.ParseCIDR(dst)
	must(t, err)
	r := &netlink.Route{Dst: n, Gw: net.ParseIP(gw)}
	if src != "" {
		r.Src = net.ParseIP(src)
	}
	must(t, h.Netlink().RouteAdd(r))
}

// setECMP makes the router send the VIP's flows over directors (a route
// change standing in for BGP's).
func (e *ecmpLab) setECMP(t *testing.T, directors ...*lab.Host) {
	t.Helper()
	_, dst, _ := net.ParseCIDR(vipECMP.String())
	link, err := e.router.Netlink().LinkByName(lab.IfName)
	must(t, err)
	r := &netlink.Route{Dst: dst}
	for _, d := range directors {
		r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{LinkIndex: link.Attrs().Index, Gw: net.IP(d.IPv4.AsSlice())})
	}
	must(t, e.router.Netlink().RouteReplace(r))
}

// localConns counts the established connections each director balanced
// itself (not synced: the sync is off).
func (e *ecmpLab) localConns(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, d := range e.directors {
		local, _, err := tableConns(d, vipECMP.Addr())
		must(t, err)
		out[d.Name] = local
	}
	return out
}

// ecmpResult is what one ECMP change did to the flows.
type ecmpResult struct {
	phase            string
	failed, stalled1 int
	// moved counts the flows that a director balanced for the first time
	// after the change: moved there by ECMP.
	moved         int
	rep           report
	before, after map[string]int
}

// change runs one ECMP change and measures the flows: failed by it
// (reset, closed) and stalled longer than a second, once every live flow
// has answered after the change (or 20s passed).
func (e *ecmpLab) change(t *testing.T, fs *flows, variant, phase string, directors ...*lab.Host) ecmpResult {
	t.Helper()
	before := e.localConns(t)
	failedBefore := fs.snapshot(time.Now()).failed
	mark := time.Now()
	e.setECMP(t, directors...)
	// Let TCP retransmit what was lost, and the flows run on.
	_ = lab.WaitFor(20*time.Second, "every flow to answer after the change", func() (bool, error) {
		return fs.answeredSince(mark.Add(500 * time.Millisecond)), nil
	})
	time.Sleep(2 * time.Second)
	rep := fs.snapshot(mark)
	res := ecmpResult{phase: phase, failed: rep.failed - failedBefore, stalled1: fs.stalledLongerThan(mark, time.Second), rep: rep, before: before, after: e.localConns(t)}
	for d, n := range res.after {
		res.moved += max(0, n-before[d])
	}
	t.Logf("%s: %d failed, %d stalled > 1s of %d; %d moved to a director that had not seen them; %s; connections balanced by each director before %v, after %v",
		phase, res.failed, res.stalled1, len(fs.list), res.moved, rep, before, res.after)
	// The figure for make bench (test/ipvse2e.RunECMPFigures).
	t.Logf("ECMP-FIGURE variant=%q phase=%q conns=%d moved=%d failed=%d stalled=%d longest_ms=%d",
		variant, phase, len(fs.list), res.moved, res.failed, res.stalled1, rep.maxGap.Milliseconds())
	return res
}

// runECMP opens the flows over n1 and n2, lets n3 join the ECMP set and
// then n1 leave it, and returns the two results.
func runECMP(t *testing.T, v ecmpVariant) []ecmpResult {
	e := setupECMP(t, v)
	n1, n2, n3 := e.directors[0], e.directors[1], e.directors[2]
	e.setECMP(t, n1, n2)
	fs := openFlows(t, e.client, netip.AddrPortFrom(vipECMP.Addr(), echoPort), ecmpConns(), false)
	time.Sleep(settle)
	// A control window as long as a change's, without a change: under the
	// VM's emulation on shared cores the whole VM stalls now and then, and
	// every flow with it.
	mark := time.Now()
	time.Sleep(controlWindow)
	r := fs.snapshot(mark)
	control := fs.stalledLongerThan(mark, time.Second)
	t.Logf("%s, %v without a change: %d stalled > 1s (the VM's own stalls); %s; balanced by %v", v, controlWindow, control, r, e.localConns(t))
	t.Logf("ECMP-FIGURE variant=%q phase=%q conns=%d moved=%d failed=%d stalled=%d longest_ms=%d",
		v.String(), "none (control)", len(fs.list), 0, r.failed, control, r.maxGap.Milliseconds())
	if r.failed > 0 {
		t.Fatalf("flows failed before any change: %s", r)
	}
	name := v.String()
	return []ecmpResult{
		e.change(t, fs, name, "a director joins", n1, n2, n3),
		e.change(t, fs, name, "a director leaves", n2, n3),
	}
}

// controlWindow is how long the flows run without a change before the
// first one, to measure the VM's own stalls.
const controlWindow = 4 * time.Second

// maxStall bounds the longest stall of a flow across a change. A stall
// longer than a second is counted and logged, not failed: under the VM's
// emulation on shared cores the VM itself stalls up to about 1.6 s, every
// flow at once, with or without a change (the control window measures it).
// A flow that a director drops or sends to the wrong real server breaks
// (reset) or stalls on TCP's retransmission backoff (1, 2, 4 s ...): the
// bound catches that.
const maxStall = 3 * time.Second

// survivesECMP requires every flow to survive a director joining and one
// leaving: none reset or closed, none stalled longer than maxStall.
func survivesECMP(t *testing.T, fwd v1alpha1.Forwarding) {
	for _, res := range runECMP(t, ecmpVariant{fwd: fwd, scheduler: "mh", consistent: true}) {
		if res.failed > 0 {
			t.Errorf("%s, %s: %d connections broke: %s", fwd, res.phase, res.failed, res.rep)
		}
		if res.rep.maxGap > maxStall {
			t.Errorf("%s, %s: a connection stalled %v (bound %v): %s", fwd, res.phase, res.rep.maxGap, maxStall, res.rep)
		}
		if res.moved == 0 {
			t.Errorf("%s, %s: no connection moved to a new director: the change proved nothing", fwd, res.phase)
		}
	}
}

// breaksECMP requires the flows to break without the feature: the test
// would not notice a broken one otherwise.
func breaksECMP(t *testing.T, v ecmpVariant) {
	broken := 0
	for _, res := range runECMP(t, v) {
		broken += res.failed + res.stalled1
	}
	if broken == 0 {
		t.Errorf("%s: no connection broke when directors joined and left: the test would not notice the feature missing", v)
	}
}

// TestECMPConsistentDR: DR flows survive a director joining and leaving.
func TestECMPConsistentDR(t *testing.T) { survivesECMP(t, v1alpha1.ForwardingDR) }

// TestECMPConsistentTunnel: tunnelled flows survive a director joining and
// leaving.
func TestECMPConsistentTunnel(t *testing.T) { survivesECMP(t, v1alpha1.ForwardingTunnel) }

// TestECMPRoundRobinBreaks: with rr (sloppy TCP on) a moved flow goes to
// another real server, which resets it.
func TestECMPRoundRobinBreaks(t *testing.T) {
	breaksECMP(t, ecmpVariant{fwd: v1alpha1.ForwardingDR, scheduler: "rr", forceSloppy: true})
}

// TestECMPNoSloppyBreaks: with mh but without sloppy TCP a director does
// not balance a moved flow: its own stack, which holds the VIP, resets it.
func TestECMPNoSloppyBreaks(t *testing.T) {
	breaksECMP(t, ecmpVariant{fwd: v1alpha1.ForwardingDR, scheduler: "mh", consistent: true, noSloppy: true})
}
