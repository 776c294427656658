package interop

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// Roles of the lab's nodes: n1 and n3 run vipvs, n2 runs keepalived.
const (
	vipvsNode      = 1 // the vipvs node that is master or takes over
	keepalivedNode = 2
	otherNode      = 3 // a vipvs node of lowest priority that must follow
)

// servicePort is the port every node serves on; the prober connects to the
// VIP on it and learns which node answered.
const servicePort = 8080

// routerName is the name of the router in vipvs and of keepalived's
// vrrp_instance.
const routerName = "api"

var vip = netip.MustParsePrefix("192.0.2.100/24")

// probeEvery and probeTimeout are the client's: a connection every 5 ms.
const (
	probeEvery   = 5 * time.Millisecond
	probeTimeout = 200 * time.Millisecond
)

// mode is one way of running the mixed router.
type mode struct {
	name     string
	version  int
	unicast  bool
	password string
}

// modes are the two shapes every interop test runs in: VRRPv3 multicast,
// and OpenShift's VRRPv2 unicast with a password.
var modes = []mode{
	{name: "v3-multicast", version: 3},
	{name: "v2-unicast-pass", version: 2, unicast: true, password: "vipvs123"},
}

// router is the vipvs side of the mode for priorities of n1, n2, n3.
func (m mode) router(vrid int, prios ...int) agentlab.Router {
	return agentlab.Router{
		Name: routerName, VRID: vrid, Version: m.version, Unicast: m.unicast,
		Password: m.password, Priorities: prios, VIPs: []netip.Prefix{vip},
	}
}

// env is a lab of three nodes and a client: vipvs on n1 and n3, keepalived
// on n2, a TCP service on every node.
type env struct {
	t      *testing.T
	lab    *lab.Lab
	c      *agentlab.Cluster
	k      *agentlab.Keepalived
	router agentlab.Router
	pcap   string // VRRP and ARP captured on n1's eth0, "" if none
}

// newEnv builds the lab and writes the configs of r (keepalived's instance
// may be changed by kmod first); it starts nothing. On failure it dumps the
// agents, keepalived and the lab.
func newEnv(t *testing.T, r agentlab.Router, kmod func(*agentlab.KeepalivedInstance)) *env {
	t.Helper()
	requireInterop(t)
	l := lab.NewT(t, lab.Options{Nodes: 3, Clients: 1})
	for _, n := range l.Nodes() {
		stop, err := n.Serve(servicePort)
		if err != nil {
			t.Fatalf("serving on %s: %v", n.Name, err)
		}
		t.Cleanup(stop)
	}
	c, err := agentlab.New(l, vipvsBin, t.TempDir(), r)
	must(t, err)
	inst := c.KeepalivedInstanceFor(keepalivedNode, r)
	if kmod != nil {
		kmod(&inst)
	}
	k, err := agentlab.NewKeepalived(l.Node(keepalivedNode), t.TempDir(), agentlab.KeepalivedConfig{
		RouterID: l.Node(keepalivedNode).Name, Instances: []agentlab.KeepalivedInstance{inst},
	})
	must(t, err)
	e := &env{t: t, lab: l, c: c, k: k, router: r}
	e.capture(l.Node(vipvsNode), t.TempDir())
	// Registered after lab.NewT's cleanup, so it runs first, while the
	// processes and namespaces still exist.
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("\n" + e.dump())
		}
		if k.Proc != nil {
			if err := k.Proc.Kill(); err != nil {
				t.Errorf("stopping keepalived: %v", err)
			}
		}
	})
	return e
}

// dump describes the agents and keepalived for a failed test (the lab's
// own dump follows it).
func (e *env) dump() string {
	var b strings.Builder
	e.c.Dump(&b)
	fmt.Fprintf(&b, "=== keepalived on %s: state %q, states this run %v\n", e.k.Node.Name, e.k.State(routerName), e.k.States(routerName))
	if cfg, err := os.ReadFile(e.k.ConfigPath); err == nil {
		fmt.Fprintf(&b, "--- %s\n%s", e.k.ConfigPath, cfg)
	}
	if e.k.Proc != nil {
		fmt.Fprintf(&b, "--- %s, last 80 lines\n%s", e.k.Proc, e.k.Proc.LogTail(80))
	}
	if e.pcap != "" {
		out, err := exec.Command("tcpdump", "-n", "-v", "-r", e.pcap).CombinedOutput()
		fmt.Fprintf(&b, "--- VRRP and ARP seen on %s's eth0 (%s), last 60 lines (err %v)\n%s", e.lab.Node(vipvsNode).Name, e.pcap, err, tailLines(string(out), 60))
	}
	return b.String()
}

// capture records VRRP and ARP on h's eth0 into dir/vrrp.pcap (kept for a
// failed test's dump) if tcpdump is installed.
func (e *env) capture(h *lab.Host, dir string) {
	e.t.Helper()
	bin, err := exec.LookPath("tcpdump")
	if err != nil {
		e.t.Logf("no capture: %v", err)
		return
	}
	path := filepath.Join(dir, "vrrp.pcap")
	p, err := h.Start("tcpdump", []string{bin, "-i", h.IfName, "-U", "-n", "-w", path, "vrrp or arp"}, nil, "")
	must(e.t, err)
	e.pcap = path
	e.t.Cleanup(func() { _ = p.Kill() })
}

// countCaptured counts the packets of the capture whose tcpdump line
// contains substr (e.g. "192.0.2.12 > 192.0.2.11: VRRPv2").
func (e *env) countCaptured(substr string) (int, error) {
	out, err := exec.Command("tcpdump", "-n", "-v", "-r", e.pcap).Output()
	if err != nil {
		return 0, fmt.Errorf("reading the capture %s: %w", e.pcap, err)
	}
	return strings.Count(string(out), substr), nil
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// vipvs returns the agent of node i.
func (e *env) vipvs(i int) *agentlab.Agent { return e.c.Agents[i-1] }

// startAll starts keepalived and both vipvs agents.
func (e *env) startAll() {
	e.t.Helper()
	must(e.t, e.k.Start())
	must(e.t, e.vipvs(vipvsNode).Start())
	must(e.t, e.vipvs(otherNode).Start())
}

// running reports whether node i's VRRP process (keepalived on n2, vipvs
// elsewhere) is running.
func (e *env) running(i int) bool {
	if i == keepalivedNode {
		return e.k.Proc != nil && !e.k.Proc.Exited()
	}
	a := e.vipvs(i)
	return a.Proc != nil && !a.Proc.Exited()
}

// settled reports whether master is the only master and every other
// running router (not in skip) is a backup following it, and whether master
// is the only holder of the VIP among the nodes not in skip. It returns a
// description of what is not yet so.
func (e *env) settled(master int, skip ...int) (bool, string) {
	masterAddr := e.lab.Node(master).IPv4.String()
	for i := 1; i <= 3; i++ {
		if slices.Contains(skip, i) || !e.running(i) {
			continue
		}
		want := "BACKUP"
		if i == master {
			want = "MASTER"
		}
		if i == keepalivedNode {
			if got := e.k.State(routerName); got != want {
				return false, fmt.Sprintf("keepalived on n%d is %q, want %s", i, got, want)
			}
			continue
		}
		r, err := e.vipvs(i).RouterStatus(routerName)
		if err != nil {
			return false, err.Error()
		}
		if r.State != want {
			return false, fmt.Sprintf("vipvs on n%d is %s, want %s", i, r.State, want)
		}
		if want == "BACKUP" && r.Master != masterAddr {
			return false, fmt.Sprintf("vipvs on n%d follows master %q, want %s", i, r.Master, masterAddr)
		}
	}
	hs, err := e.lab.Holders(vip.Addr())
	if err != nil {
		return false, err.Error()
	}
	var names []string
	for _, h := range hs {
		if !slices.Contains(skip, nodeIndex(e.lab, h)) {
			names = append(names, h.Name)
		}
	}
	if len(names) != 1 || names[0] != e.lab.Node(master).Name {
		return false, fmt.Sprintf("VIP held by %v, want only %s", names, e.lab.Node(master).Name)
	}
	return true, ""
}

// waitSettled waits until settled(master, skip...) holds.
func (e *env) waitSettled(timeout time.Duration, master int, skip ...int) {
	e.t.Helper()
	var last string
	err := lab.WaitFor(timeout, fmt.Sprintf("n%d to be the only master, followed by every backup", master), func() (bool, error) {
		ok, why := e.settled(master, skip...)
		last = why
		return ok, nil
	})
	if err != nil {
		e.t.Fatalf("%v (last: %s)", err, last)
	}
}

// waitRouterMaster waits until node i's router reports MASTER (from the
// status socket or keepalived's log) and returns how long that took since
// start.
func (e *env) waitRouterMaster(timeout time.Duration, i int, start time.Time) time.Duration {
	e.t.Helper()
	must(e.t, lab.WaitFor(timeout, fmt.Sprintf("n%d to become master", i), func() (bool, error) {
		if i == keepalivedNode {
			return e.k.State(routerName) == "MASTER", nil
		}
		r, err := e.vipvs(i).RouterStatus(routerName)
		return err == nil && r.IsMaster(), nil
	}))
	return time.Since(start)
}

// probe starts the client's prober on the VIP; it stops in t.Cleanup.
func (e *env) probe() *lab.Prober {
	e.t.Helper()
	p, err := e.lab.Client(1).Probe(netip.AddrPortFrom(vip.Addr(), servicePort), probeEvery, probeTimeout)
	must(e.t, err)
	e.t.Cleanup(func() { p.Stop() })
	return p
}

// waitServedBy waits until node i has answered more than 10 probes since since.
func (e *env) waitServedBy(p *lab.Prober, i int, since time.Time, timeout time.Duration) {
	e.t.Helper()
	name := e.lab.Node(i).Name
	must(e.t, lab.WaitFor(timeout, "the client to be served by "+name, func() (bool, error) {
		return p.Snapshot().Since(since).Servers()[name] > 10, nil
	}))
}

// nodeIndex is the 1-based index of node h in l (0 if h is not a node).
func nodeIndex(l *lab.Lab, h *lab.Host) int {
	for i, n := range l.Nodes() {
		if n == h {
			return i + 1
		}
	}
	return 0
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
