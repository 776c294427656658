package system

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// bootstrapLBC is the control plane of the day-0 test: the masters' track
// check is their own API server (the node's TCP server), whose failure
// puts them below the bootstrap node, and they preempt only once it has
// passed.
const bootstrapLBC = `apiVersion: vipvs.io/v1alpha1
kind: LoadBalancerConfig
metadata:
  name: api
spec:
  nodeSelector:
    matchLabels: {node-role.kubernetes.io/control-plane: ""}
  virtualIPs:
  - {name: api, address: %s, vrid: 51, interface: eth0}
  vrrp:
    advertInterval: 100ms
  trackChecks:
  - name: apiserver
    weight: -20
    tcp: {address: "127.0.0.1:%d"}
    interval: 200ms
  preemptAfterChecks: true
  services:
  - name: api
    port: %d
    backends: {selectedNodes: {}}
`

// TestBootstrap plays day 0 of an installer-provisioned cluster with the
// real vipvs binary: `vipvs render --bootstrap` renders the files of three
// masters and a bootstrap node, kubelet stand-ins run the static pods. The
// bootstrap node serves the API first and holds the VIP; the masters' agents
// start while their API servers are down and take nothing; the masters'
// API servers come up and the first master takes the VIP over; the
// bootstrap node is shut down. A client probing the VIP sees no failed
// connection from the moment the bootstrap node holds it.
//
// The lab has no IPVS (the host kernel lacks it), so the masters' IPVS
// backends (which include the bootstrap node) are not exercised here: the
// VIP's holder answers itself.
func TestBootstrap(t *testing.T) {
	lab.RequireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("skipping: the kubelet stand-in needs unshare (util-linux): %v", err)
	}
	dir := t.TempDir()
	bin := os.Getenv("VIPVS_BIN")
	if bin == "" {
		var err error
		if bin, err = agentlab.Build(dir); err != nil {
			t.Fatal(err)
		}
	}
	l := lab.NewT(t, lab.Options{Nodes: 4, Clients: 1, LogDir: dir})
	vip := l.VIPv4(0)
	masters, boot := l.Nodes()[:3], l.Node(4)

	// Day 0: render.
	var nodes strings.Builder
	nodes.WriteString("nodes:\n")
	for _, m := range masters {
		fmt.Fprintf(&nodes, "- {name: %s, addresses: [%s]}\n", m.Name, m.IPv4)
	}
	in := map[string]string{
		"lbc.yaml":   fmt.Sprintf(bootstrapLBC, vip, servicePort, servicePort),
		"nodes.yaml": nodes.String(),
	}
	for name, data := range in {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "rendered")
	cmd := exec.Command(bin, "render", "--config", filepath.Join(dir, "lbc.yaml"), "--nodes", filepath.Join(dir, "nodes.yaml"),
		"--out", out, "--image", "quay.io/vipvs/vipvs:system-test", "--openshift",
		"--bootstrap", fmt.Sprintf("%s=%s", boot.Name, boot.IPv4))
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vipvs render: %v\n%s", err, b)
	}
	t.Logf("vipvs render:\n%s", b)

	// Each node's rendered tree is its root; the kubelets run its pods.
	var kubelets []*kubelet
	start := func(h *lab.Host) {
		k := newKubelet(h.Name, h, filepath.Join(out, h.Name), bin, dir)
		kubelets = append(kubelets, k)
	}
	t.Cleanup(func() {
		for _, k := range kubelets {
			k.close()
		}
		if err := removeMountPoints(); err != nil {
			t.Errorf("removing mount points: %v", err)
		}
	})
	holds := func(h *lab.Host) func() (bool, error) {
		return func() (bool, error) {
			for _, n := range l.Nodes() {
				ok, err := n.HasAddr(vip)
				if err != nil || ok != (n == h) {
					return false, err
				}
			}
			return true, nil
		}
	}

	// The bootstrap node serves the API and takes the VIP.
	if _, err := boot.Serve(servicePort); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	start(boot)
	if err := lab.WaitFor(30*time.Second, "the bootstrap node to hold the VIP", holds(boot)); err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE bootstrap: agent started -> VIP held %v", time.Since(t0).Round(time.Millisecond))
	p, err := l.Client(1).Probe(netip.AddrPortFrom(vip, servicePort), 5*time.Millisecond, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitFor(10*time.Second, "a probe to succeed", func() (bool, error) { return p.Snapshot().OK() > 0, nil }); err != nil {
		t.Fatal(err)
	}
	probeStart := time.Now()

	// The masters' agents start before their API servers: nothing moves.
	for _, m := range masters {
		start(m)
	}
	for _, k := range kubelets[1:] {
		if err := lab.WaitFor(30*time.Second, k.node+"'s agent to run", func() (bool, error) {
			_, err := os.Stat(filepath.Join(k.root, "run/vipvs/api.sock"))
			return err == nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // several master-down intervals
	if ok, err := holds(boot)(); err != nil || !ok {
		t.Fatalf("a master whose API server is down took the VIP from the bootstrap node (%v)", err)
	}

	// The masters' API servers come up: master n1 takes the VIP over.
	t1 := time.Now()
	for _, m := range masters {
		if _, err := m.Serve(servicePort); err != nil {
			t.Fatal(err)
		}
	}
	if err := lab.WaitFor(30*time.Second, "n1 to take the VIP from the bootstrap node", holds(masters[0])); err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE bootstrap: masters' API servers up -> VIP on n1 %v", time.Since(t1).Round(time.Millisecond))

	// The installer shuts the bootstrap node down.
	t2 := time.Now()
	kubelets[0].close()
	time.Sleep(time.Second)
	if ok, err := holds(masters[0])(); err != nil || !ok {
		t.Errorf("the VIP left n1 when the bootstrap node stopped (%v)", err)
	}
	r := p.Stop().Since(probeStart)
	t.Logf("FIGURE bootstrap: probes from the bootstrap node serving to it stopped (%v after the masters were up, %v after it stopped): %s",
		t2.Sub(t1).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond), r.Summary())
	if r.Failed() > 0 {
		t.Errorf("%d failed connections during the bootstrap hand-over; timeline: %s", r.Failed(), timeline(r))
	}
	if s := r.Servers(); s[boot.Name] == 0 || s[masters[0].Name] == 0 {
		t.Errorf("servers %v: want both the bootstrap node and n1 to have served", s)
	}
}
