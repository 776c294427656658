package system

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/render"
	"github.com/vipvs/vipvs/test/lab"
)

// lbcName is the test's LoadBalancerConfig.
const lbcName = "system"

// podFile is the static pod's file name in the manifests directory.
var podFile = filepath.Base(render.StaticPodPath(lbcName))

// newLBC is the LoadBalancerConfig the test starts with: the API VIP on the
// three nodes, n1 preferred, adverts every 100 ms.
func newLBC(l *lab.Lab) *v1alpha1.LoadBalancerConfig {
	return &v1alpha1.LoadBalancerConfig{
		ObjectMeta: metav1.ObjectMeta{Name: lbcName},
		Spec: v1alpha1.LoadBalancerConfigSpec{
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{memberLabel: "true"}},
			VirtualIPs:   []v1alpha1.VirtualIP{{Name: "api", Address: l.VIPv4(0).String(), VRID: 51, Interface: lab.IfName}},
			VRRP:         &v1alpha1.VRRP{AdvertInterval: &metav1.Duration{Duration: 100 * time.Millisecond}},
			Priorities: &v1alpha1.Priorities{ByNode: []v1alpha1.NodePriority{
				{NodeName: "n1", Priority: 150}, {NodeName: "n2", Priority: 120}, {NodeName: "n3", Priority: 100},
			}},
		},
	}
}

// TestSystem runs the whole product (see the package comment) through the
// life of one LoadBalancerConfig. The subtests run in order on one stack;
// each logs its figures.
func TestSystem(t *testing.T) {
	s := newStack(t)
	apiVIP := s.lab.VIPv4(0)
	probe, err := s.lab.Client(1).Probe(netip.AddrPortFrom(apiVIP, servicePort), 5*time.Millisecond, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { t.Logf("API VIP probe over the whole test: %s", probe.Stop().Summary()) }()

	steps := []struct {
		name string
		run  func(t *testing.T, s *stack, p *lab.Prober)
	}{
		{"create", testCreate},
		{"changes", testChanges},
		{"selection", testSelection},
		{"apiServerDown", testAPIServerDown},
		{"operatorRestart", testOperatorRestart},
		{"delete", testDelete},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) { st.run(t, s, probe) }) && st.name == "create" {
			return // every later step needs the LoadBalancerConfig
		}
	}
}

// holder returns the nodes that hold addr.
func (s *stack) holders(addr netip.Addr) ([]string, error) {
	var on []string
	for _, n := range s.nodes {
		ok, err := n.host.HasAddr(addr)
		if err != nil {
			return nil, err
		}
		if ok {
			on = append(on, n.name)
		}
	}
	return on, nil
}

// heldBy is a waitFor condition: addr is on node only.
func (s *stack) heldBy(addr netip.Addr, node string) func() (bool, string, error) {
	return func() (bool, string, error) {
		on, err := s.holders(addr)
		return err == nil && len(on) == 1 && on[0] == node, fmt.Sprintf("%s on %v", addr, on), err
	}
}

// ready is a waitFor condition: the LoadBalancerConfig's status is current
// (observedGeneration), Ready, with members running their rendered
// configs and masters per VIP name.
func (s *stack) ready(members []string, masters map[string]string) func() (bool, string, error) {
	return func() (bool, string, error) {
		l, err := s.lbc(lbcName)
		if err != nil {
			return false, "", err
		}
		seen := describe(l)
		c := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || l.Status.ObservedGeneration != l.Generation || c.ObservedGeneration != l.Generation {
			return false, seen, nil
		}
		var names []string
		for _, n := range l.Status.Nodes {
			names = append(names, n.Name)
			if !n.Running || n.RenderedConfigHash == "" || n.RunningConfigHash != n.RenderedConfigHash {
				return false, seen, nil
			}
		}
		if !slices.Equal(names, members) || len(l.Status.VIPs) != len(masters) {
			return false, seen, nil
		}
		for _, v := range l.Status.VIPs {
			if masters[v.Name] != v.MasterNode {
				return false, seen, nil
			}
		}
		return true, seen, nil
	}
}

func describe(l *v1alpha1.LoadBalancerConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d observed %d;", l.Generation, l.Status.ObservedGeneration)
	for _, c := range l.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s(%s: %.120s)", c.Type, c.Status, c.Reason, c.Message)
	}
	for _, n := range l.Status.Nodes {
		fmt.Fprintf(&b, " node %s running=%v rendered=%.8s running=%.8s;", n.Name, n.Running, n.RenderedConfigHash, n.RunningConfigHash)
	}
	for _, v := range l.Status.VIPs {
		fmt.Fprintf(&b, " vip %s master %q;", v.Name, v.MasterNode)
	}
	return b.String()
}

// applied is a waitFor condition: the operator has seen the current
// generation, renders each member a config (its status says which: a node
// that a rollout holds back is listed with the config it will get), at
// least one other than before[member], and every member's agent runs its
// config (read from the agent's socket, not from the companion's report).
func (s *stack) applied(members []string, before map[string]string) func() (bool, string, error) {
	return func() (bool, string, error) {
		l, err := s.lbc(lbcName)
		if err != nil {
			return false, "", err
		}
		if l.Status.ObservedGeneration != l.Generation {
			return false, describe(l), nil
		}
		rendered := map[string]string{}
		for _, n := range l.Status.Nodes {
			rendered[n.Name] = n.RenderedConfigHash
		}
		var seen []string
		done, changed := true, false
		for _, m := range members {
			h := rendered[m]
			changed = changed || (h != "" && h != before[m])
			rep, err := s.node(m).agentStatus(s.ctx, lbcName)
			if err != nil {
				seen = append(seen, fmt.Sprintf("%s: %v", m, err))
				done = false
				continue
			}
			seen = append(seen, fmt.Sprintf("%s: rendered %.8s running %.8s %s", m, h, rep.ConfigHash, rep.ConfigError))
			if h == "" || rep.ConfigHash != h {
				done = false
			}
		}
		return done && changed, strings.Join(seen, "; "), nil
	}
}

// hashes returns the published config hash of each member.
func (s *stack) hashes(t *testing.T, members []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range members {
		h, err := s.renderedHash(lbcName, n)
		if err != nil {
			t.Fatal(err)
		}
		m[n] = h
	}
	return m
}

// pids returns the agent PID of each member (0: none).
func (s *stack) pids(members []string) map[string]int {
	m := map[string]int{}
	for _, n := range members {
		m[n] = s.node(n).kubelet.pid(podFile)
	}
	return m
}

var all = []string{"n1", "n2", "n3"}

func testCreate(t *testing.T, s *stack, p *lab.Prober) {
	l := newLBC(s.lab)
	vip := s.lab.VIPv4(0)
	// The test's client learns the LoadBalancerConfig's API (discovery)
	// on its first request of the kind: done before the clock starts, so
	// that the figures measure the product, not the test's client (it
	// took 2 s on a busy machine).
	warm := time.Now()
	if err := s.admin.List(s.ctx, &v1alpha1.LoadBalancerConfigList{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the test's client found the LoadBalancerConfig API in %v", time.Since(warm).Round(time.Millisecond))
	// The API server's first write of the kind is slow (about 2 s here:
	// it prepares the CRD's validation then): a dry run shows how much.
	warm = time.Now()
	if err := s.admin.Create(s.ctx, l.DeepCopy(), client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	t.Logf("a dry-run create of the LoadBalancerConfig took %v", time.Since(warm).Round(time.Millisecond))
	start := time.Now()
	if err := s.admin.Create(s.ctx, l); err != nil {
		t.Fatal(err)
	}
	created := time.Since(start)
	held := s.waitFor(t, time.Minute, "n1 to hold the API VIP", s.heldBy(vip, "n1")) + created
	s.waitFor(t, time.Minute, "Ready with n1 master", s.ready(all, map[string]string{"api": "n1"}))
	t.Logf("FIGURE create: LoadBalancerConfig created -> VIP held by n1 %v, -> Ready %v (the create request took %v)",
		held.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), created.Round(time.Millisecond))
	for _, n := range all {
		rep, err := s.node(n).agentStatus(s.ctx, lbcName)
		if err != nil {
			t.Errorf("%s: agent status: %v", n, err)
			continue
		}
		h, _ := s.renderedHash(lbcName, n)
		if rep.ConfigHash != h {
			t.Errorf("%s: agent runs %s, rendered %s", n, rep.ConfigHash, h)
		}
	}
	// The probe settles: from now on every connection must succeed.
	s.waitFor(t, 10*time.Second, "a probe to succeed", func() (bool, string, error) {
		r := p.Snapshot().Since(time.Now().Add(-100 * time.Millisecond))
		return r.OK() > 0, r.Summary(), nil
	})
}

// change is one day-2 change of the LoadBalancerConfig.
type change struct {
	name   string
	mutate func(*v1alpha1.LoadBalancerConfig)
	// masters are the masters per VIP name afterwards.
	masters map[string]string
	// stays marks a change that restarts the API VIP's router in the same
	// virtual router (same VRID): the master's agent starts the new router
	// in place of the old (agent/handover.go), so that no other node may
	// serve the API VIP meanwhile.
	stays bool
}

func setPriority(node string, prio int32) func(*v1alpha1.LoadBalancerConfig) {
	return func(l *v1alpha1.LoadBalancerConfig) {
		for i := range l.Spec.Priorities.ByNode {
			if l.Spec.Priorities.ByNode[i].NodeName == node {
				l.Spec.Priorities.ByNode[i].Priority = prio
			}
		}
	}
}

func testChanges(t *testing.T, s *stack, p *lab.Prober) {
	extra1, extra2 := s.lab.VIPv4(1).String(), s.lab.VIPv4(2).String()
	api := map[string]string{"api": "n1"}
	changes := []change{
		{"priority (n2 preferred)", setPriority("n2", 200), map[string]string{"api": "n2"}, false},
		{"priority (n1 preferred again)", setPriority("n2", 120), api, false},
		{"advert interval 100ms -> 200ms", func(l *v1alpha1.LoadBalancerConfig) {
			l.Spec.VRRP.AdvertInterval = &metav1.Duration{Duration: 200 * time.Millisecond}
		}, api, true},
		{"VIP added", func(l *v1alpha1.LoadBalancerConfig) {
			l.Spec.VirtualIPs = append(l.Spec.VirtualIPs, v1alpha1.VirtualIP{Name: "extra", Address: extra1, VRID: 52, Interface: lab.IfName})
		}, map[string]string{"api": "n1", "extra": "n1"}, false},
		{"VIP changed (address)", func(l *v1alpha1.LoadBalancerConfig) { l.Spec.VirtualIPs[1].Address = extra2 },
			map[string]string{"api": "n1", "extra": "n1"}, false},
		{"VIP removed", func(l *v1alpha1.LoadBalancerConfig) { l.Spec.VirtualIPs = l.Spec.VirtualIPs[:1] }, api, false},
		// Another VRID is another virtual router: a backup that runs it
		// before the master's turn becomes its master after its
		// Master_Down_Interval (0.7 s), which a busy machine may reach.
		{"VRID changed 51 -> 61", func(l *v1alpha1.LoadBalancerConfig) { l.Spec.VirtualIPs[0].VRID = 61 }, api, false},
		{"track check added", func(l *v1alpha1.LoadBalancerConfig) {
			l.Spec.TrackChecks = []v1alpha1.TrackCheck{{Name: "service", Weight: -30,
				TCP: &v1alpha1.TCPCheck{Address: fmt.Sprintf("127.0.0.1:%d", servicePort)}}}
		}, api, false},
		{"service added", func(l *v1alpha1.LoadBalancerConfig) {
			l.Spec.Services = []v1alpha1.VirtualService{{Name: "web", Port: servicePort,
				Backends: v1alpha1.Backends{SelectedNodes: &v1alpha1.SelectedNodesBackends{}}}}
		}, api, false},
		{"multicast (no peer list)", func(l *v1alpha1.LoadBalancerConfig) { l.Spec.VRRP.Unicast = new(bool) }, api, true},
	}
	vip := s.lab.VIPv4(0)
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			before := s.hashes(t, all)
			pids := s.pids(all)
			start := time.Now()
			if err := s.update(lbcName, c.mutate); err != nil {
				t.Fatal(err)
			}
			appliedIn := s.waitFor(t, time.Minute, "every agent to run the new config", s.applied(all, before))
			s.waitFor(t, time.Minute, "the status to be current", s.ready(all, c.masters))
			statusIn := time.Since(start)
			s.waitFor(t, 10*time.Second, "the API VIP on its master", s.heldBy(vip, c.masters["api"]))
			// Leave the VRRP time to settle before the window closes.
			time.Sleep(time.Second)
			r := p.Snapshot().Since(start)
			t.Logf("FIGURE change %q: applied on every node %v, status current %v; API VIP probes %s",
				c.name, appliedIn.Round(time.Millisecond), statusIn.Round(time.Millisecond), r.Summary())
			// A change may move the API VIP twice (to a backup while the
			// master's router restarts, and back). Losses (timeouts,
			// refusals) must be none; a reset of a handshake that
			// straddled the client's ARP update is the one-round-trip
			// window no hand-over without connection sync closes
			// (lab.Result.HandoverLosses): at most one per move.
			if losses, straddles := r.HandoverLosses(); losses > 0 || straddles > 2 {
				t.Errorf("%d connections lost and %d reset to the API VIP, which the change does not remove (longest gap %v); timeline: %s", losses, straddles, r.LongestGap(), timeline(r))
			} else if straddles > 0 {
				t.Logf("%d connection(s) reset by a hand-over straddling the client's ARP update", straddles)
			}
			if c.stays {
				for n, k := range r.Servers() {
					if n != c.masters["api"] {
						t.Errorf("%s served %d connections to the API VIP: the change moved it off its master %s (the master's new router must take over in place); timeline: %s", n, k, c.masters["api"], timeline(r))
					}
				}
			}
			if after := s.pids(all); !maps(after, pids) {
				t.Errorf("agent processes %v, were %v: the change restarted an agent", after, pids)
			}
		})
	}
}

func maps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// peerOf reports whether node n's agent config names addr.
func (s *stack) configNames(n string, addr netip.Addr) (bool, error) {
	b, err := os.ReadFile(filepath.Join(s.node(n).root, render.AgentConfigPath(lbcName, n)))
	if err != nil {
		return false, err
	}
	return strings.Contains(string(b), addr.String()), nil
}

func (s *stack) setMember(t *testing.T, name string, member bool) {
	var n corev1.Node
	if err := s.admin.Get(s.ctx, types.NamespacedName{Name: name}, &n); err != nil {
		t.Fatal(err)
	}
	if member {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[memberLabel] = "true"
	} else {
		delete(n.Labels, memberLabel)
	}
	if err := s.admin.Update(s.ctx, &n); err != nil {
		t.Fatal(err)
	}
}

func testSelection(t *testing.T, s *stack, p *lab.Prober) {
	vip := s.lab.VIPv4(0)
	n3 := s.node("n3")
	api := map[string]string{"api": "n1"}
	start := time.Now()

	// n3 leaves the selection: its agent stops, the others drop it.
	s.setMember(t, "n3", false)
	s.waitFor(t, time.Minute, "n3's agent to stop", func() (bool, string, error) {
		r := n3.kubelet.running()
		return len(r) == 0, fmt.Sprint(r), nil
	})
	s.waitFor(t, time.Minute, "n1 to drop n3 from its peers", func() (bool, string, error) {
		has, err := s.configNames("n1", n3.host.IPv4)
		return !has, "", err
	})
	s.waitFor(t, time.Minute, "Ready with n1 and n2", s.ready([]string{"n1", "n2"}, api))
	t.Logf("FIGURE node left the selection -> Ready without it %v", time.Since(start).Round(time.Millisecond))

	// n3 comes back.
	start = time.Now()
	s.setMember(t, "n3", true)
	s.waitFor(t, time.Minute, "Ready with n3 again", s.ready(all, api))
	t.Logf("FIGURE node joined the selection -> Ready with it %v", time.Since(start).Round(time.Millisecond))

	// n3's Node object goes: n3 stays a peer of the others.
	var node corev1.Node
	if err := s.admin.Get(s.ctx, types.NamespacedName{Name: "n3"}, &node); err != nil {
		t.Fatal(err)
	}
	if err := s.admin.Delete(s.ctx, &node); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, time.Minute, "the operator to notice n3 is gone", func() (bool, string, error) {
		l, err := s.lbc(lbcName)
		if err != nil {
			return false, "", err
		}
		for _, n := range l.Status.Nodes {
			if n.Name == "n3" && n.Message != "" {
				return true, describe(l), nil
			}
		}
		c := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionDegraded)
		return c != nil && c.Status == metav1.ConditionTrue, describe(l), nil
	})
	for _, n := range []string{"n1", "n2"} {
		if has, err := s.configNames(n, n3.host.IPv4); err != nil || !has {
			t.Errorf("%s's config lost n3 (%v) when n3's Node object was deleted: a vanished node must stay a peer", n, err)
		}
	}
	if n3.kubelet.pid(podFile) == 0 {
		t.Errorf("n3's agent stopped when its Node object was deleted")
	}
	// Forgotten: it leaves.
	if err := s.update(lbcName, func(l *v1alpha1.LoadBalancerConfig) {
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[v1alpha1.AnnotationForgetNodes] = "n3"
	}); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, time.Minute, "n1 to drop the forgotten n3", func() (bool, string, error) {
		has, err := s.configNames("n1", n3.host.IPv4)
		return !has, "", err
	})
	s.waitFor(t, time.Minute, "Ready with n1 and n2", s.ready([]string{"n1", "n2"}, api))
	// n3 comes back as a new Node; the stale annotation is removed first.
	if err := s.update(lbcName, func(l *v1alpha1.LoadBalancerConfig) { delete(l.Annotations, v1alpha1.AnnotationForgetNodes) }); err != nil {
		t.Fatal(err)
	}
	s.createNode(t, "n3", n3.host.IPv4, true)
	s.waitFor(t, time.Minute, "Ready with the new n3", s.ready(all, api))
	s.waitFor(t, 10*time.Second, "n1 to hold the API VIP", s.heldBy(vip, "n1"))
	r := p.Snapshot().Since(start)
	t.Logf("API VIP probes while nodes left and joined: %s", r.Summary())
	if r.Failed() > 0 {
		t.Errorf("%d failed connections while a backup node left and joined", r.Failed())
	}
}

func testAPIServerDown(t *testing.T, s *stack, p *lab.Prober) {
	vip := s.lab.VIPv4(0)
	api := s.env.ControlPlane.APIServer
	// The API server dies (SIGKILL): a graceful stop waits for the watches
	// of the operator and the companions longer than envtest does.
	if err := s.killAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := api.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.node("n1").host.LinkDown(); err != nil {
		t.Fatal(err)
	}
	moved := s.waitFor(t, 30*time.Second, "n2 to take the API VIP without the API server", s.heldBy(vip, "n2"))
	r := p.Snapshot().Since(start)
	t.Logf("FIGURE API server stopped, master's link down -> VIP on n2 %v; probes %s", moved.Round(time.Millisecond), r.Summary())
	if err := s.node("n1").host.LinkUp(); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, 30*time.Second, "n1 to take the API VIP back", s.heldBy(vip, "n1"))
	start = time.Now()
	if err := api.Start(); err != nil {
		t.Fatalf("starting the API server again: %v", err)
	}
	s.waitFor(t, 2*time.Minute, "the status to recover", s.ready(all, map[string]string{"api": "n1"}))
	t.Logf("FIGURE API server back -> status Ready %v", time.Since(start).Round(time.Millisecond))
	if s.operator.exited() {
		t.Errorf("the operator exited while the API server was away (see operator-%d.log)", s.operators)
	}
	for _, n := range s.nodes {
		if n.companion.exited() {
			t.Errorf("%s's companion exited while the API server was away", n.name)
		}
	}
}

func testOperatorRestart(t *testing.T, s *stack, p *lab.Prober) {
	s.operator.stop()
	start := time.Now()
	s.startOperator(t)
	before := s.hashes(t, all)
	if err := s.update(lbcName, setPriority("n3", 110)); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, time.Minute, "the new operator to roll out a change", s.applied(all, before))
	applied := time.Since(start)
	s.waitFor(t, time.Minute, "Ready under the new operator", s.ready(all, map[string]string{"api": "n1"}))
	t.Logf("FIGURE operator restarted -> a change applied %v, Ready %v", applied.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if r := p.Snapshot().Since(start); r.Failed() > 0 {
		t.Errorf("%d failed connections while the operator restarted", r.Failed())
	}
}

func testDelete(t *testing.T, s *stack, _ *lab.Prober) {
	l, err := s.lbc(lbcName)
	if err != nil {
		t.Fatal(err)
	}
	vip := s.lab.VIPv4(0)
	start := time.Now()
	if err := s.admin.Delete(s.ctx, l); err != nil {
		t.Fatal(err)
	}
	released := s.waitFor(t, time.Minute, "the API VIP to be released", func() (bool, string, error) {
		on, err := s.holders(vip)
		return err == nil && len(on) == 0, fmt.Sprint(on), err
	})
	s.waitFor(t, time.Minute, "the LoadBalancerConfig to be gone", func() (bool, string, error) {
		_, err := s.lbc(lbcName)
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
	s.waitFor(t, time.Minute, "every agent to stop", func() (bool, string, error) {
		for _, n := range s.nodes {
			if r := n.kubelet.running(); len(r) > 0 {
				return false, n.name + ": " + strings.Join(r, ","), nil
			}
		}
		return true, "", nil
	})
	stopped := time.Since(start)
	// Where the time goes: when each node's agent was told to stop (its
	// companion removed the static pod, the stand-in kubelet sent SIGTERM)
	// and when it had exited (a master keeps the VIP until another router
	// is master, at most Master_Down_Interval at priority 1 plus one
	// interval, when no node is left to take over).
	var stops []string
	for _, n := range s.nodes {
		var e podEvent
		// The stand-in records a stop once its wait for the process returns.
		_ = lab.WaitFor(time.Second, "the stop to be recorded", func() (bool, error) {
			e = n.kubelet.lastStop(podFile)
			return !e.At.IsZero(), nil
		})
		stops = append(stops, fmt.Sprintf("%s SIGTERM +%v exited +%v", n.name,
			e.Term.Sub(start).Round(time.Millisecond), e.At.Sub(start).Round(time.Millisecond)))
	}
	t.Logf("delete: %s", strings.Join(stops, ", "))
	// The companion removes an agent's config only once the agent is gone
	// (its socket no longer answers, polled every 250 ms), so that no
	// agent sees its config vanish while it runs: the files go shortly
	// after the processes.
	var left map[string][]string
	err = lab.WaitFor(10*time.Second, "every node's files to be removed", func() (bool, error) {
		left = map[string][]string{}
		for _, n := range s.nodes {
			if files, _ := leftovers(t, n.root); len(files) > 0 {
				left[n.name] = files
			}
		}
		return len(left) == 0, nil
	})
	t.Logf("FIGURE delete -> VIPs released %v, everything stopped %v, files removed %v", released.Round(time.Millisecond), stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Errorf("left behind 10s after the agents stopped: %v", left)
	}
	for _, n := range s.nodes {
		_, dirs := leftovers(t, n.root)
		// The hostPath directories are kubelet's (DirectoryOrCreate), and
		// stay on a real node too.
		t.Logf("%s: directories left below its root: %v", n.name, dirs)
		for _, a := range []netip.Addr{vip, s.lab.VIPv4(1), s.lab.VIPv4(2)} {
			if ok, _ := n.host.HasAddr(a); ok {
				t.Errorf("%s still holds %s", n.name, a)
			}
		}
	}
}

// leftovers lists the files and, apart, the directories below root.
func leftovers(t *testing.T, root string) (files, dirs []string) {
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			dirs = append(dirs, "/"+rel)
		} else {
			files = append(files, "/"+rel)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	sort.Strings(files)
	sort.Strings(dirs)
	return files, dirs
}

// timeline lists when the answering server changed and when attempts
// failed, for a failure message.
func timeline(r lab.Result) string {
	var b strings.Builder
	last := ""
	for _, a := range r.Attempts {
		switch {
		case !a.OK:
			fmt.Fprintf(&b, " %s-%s failed (%s);", a.Start.Format("15:04:05.000"), a.End.Format("05.000"), a.Err)
		case a.Server != last:
			fmt.Fprintf(&b, " %s %s;", a.Start.Format("15:04:05.000"), a.Server)
			last = a.Server
		}
	}
	return b.String()
}
