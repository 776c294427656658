package operator

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/render"
)

const cpLabel = "node-role.kubernetes.io/control-plane"

func testNode(name string, cp bool, addrs ...string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	if cp {
		n.Labels[cpLabel] = ""
	}
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
	}
	// Other kinds of addresses are not used.
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})
	return n
}

func testLBC(name string, members ...v1alpha1.NodeStatus) *v1alpha1.LoadBalancerConfig {
	return &v1alpha1.LoadBalancerConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: v1alpha1.LoadBalancerConfigSpec{
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{cpLabel: ""}},
			VirtualIPs:   []v1alpha1.VirtualIP{{Name: "api", Address: "192.0.2.10", VRID: 51}},
		},
		Status: v1alpha1.LoadBalancerConfigStatus{Nodes: members},
	}
}

func remembered(name string, addrs ...string) v1alpha1.NodeStatus {
	return v1alpha1.NodeStatus{Name: name, Addresses: addrs}
}

func TestSelectMembers(t *testing.T) {
	for _, tt := range []struct {
		name     string
		lbc      *v1alpha1.LoadBalancerConfig
		forget   string
		nodes    []corev1.Node
		rendered []render.Node
		pending  []string
		joined   []string
		left     []string
		forgot   []string
		missing  []string
	}{
		{
			name:     "first selection",
			lbc:      testLBC("cp"),
			nodes:    []corev1.Node{testNode("m1", true, "192.0.2.12", "2001:db8::12"), testNode("m0", true, "192.0.2.11"), testNode("w0", false, "192.0.2.21")},
			rendered: []render.Node{{Name: "m0", Addresses: addrs("192.0.2.11")}, {Name: "m1", Addresses: addrs("192.0.2.12", "2001:db8::12")}},
			joined:   []string{"m0", "m1"},
		},
		{
			name:     "a node without InternalIP is pending",
			lbc:      testLBC("cp"),
			nodes:    []corev1.Node{testNode("m0", true, "192.0.2.11"), testNode("m1", true)},
			rendered: []render.Node{{Name: "m0", Addresses: addrs("192.0.2.11")}},
			pending:  []string{"m1"},
			joined:   []string{"m0"},
		},
		{
			name:     "a pending node gets an address: joins",
			lbc:      testLBC("cp", remembered("m0", "192.0.2.11"), remembered("m1")),
			nodes:    []corev1.Node{testNode("m0", true, "192.0.2.11"), testNode("m1", true, "192.0.2.12")},
			rendered: []render.Node{{Name: "m0", Addresses: addrs("192.0.2.11")}, {Name: "m1", Addresses: addrs("192.0.2.12")}},
			joined:   []string{"m1"},
		},
		{
			name:     "a member that lost its address keeps the remembered one",
			lbc:      testLBC("cp", remembered("m0", "192.0.2.11"), remembered("m1", "192.0.2.12")),
			nodes:    []corev1.Node{testNode("m0", true, "192.0.2.11"), testNode("m1", true)},
			rendered: []render.Node{{Name: "m0", Addresses: addrs("192.0.2.11")}, {Name: "m1", Addresses: addrs("192.0.2.12")}},
		},
		{
			name:     "an address change is taken",
			lbc:      testLBC("cp", remembered("m0", "192.0.2.11")),
			nodes:    []corev1.Node{testNode("m0", true, "192.0.2.99")},
			rendered: []render.Node{{Name: "m0", Addresses: addrs("192.0.2.99")}},
		},
		{
			name:     "relabelled out: leaves",
			lbc:      testLBC("cp", remembered("m0", "192.0.2.11"), remembered("m1", "192.0.2.12")),
			nodes:    []corev1.Node{testNode("m0", true, "192.0.2.11"), testNode("m1", false, "192.0.2.12")},
			rendered: []render.Node{{Name: "m0", Addresses: addrs("192.0.2.11")}},
			left:     []string{"m1"},
		},
		{
			name:     "gone from the API: stays with its remembered addresses",
			lbc:      testLBC("cp", remembered("m0", "192.0.2.11"), remembered("m1", "192.0.2.12", "2001:db8::12")),
			nodes:    []corev1.Node{testNode("m0", true, "192.0.2.11")},
			rendered: []render.Node{{Name: "m0", Addresses: addrs("192.0.2.11")}, {Name: "m1", Addresses: addrs("192.0.2.12", "2001:db8::12")}},
			missing:  []string{"m1"},
		},
		{
			name:     "every Node gone (an unsynced cache, a restore): nobody leaves",
			lbc:      testLBC("cp", remembered("m0", "192.0.2.11"), remembered("m1", "192.0.2.12")),
			rendered: []render.Node{{Name: "m0", Addresses: addrs("192.0.2.11")}, {Name: "m1", Addresses: addrs("192.0.2.12")}},
			missing:  []string{"m0", "m1"},
		},
		{
			name:     "gone and forgotten",
			lbc:      testLBC("cp", remembered("m0", "192.0.2.11"), remembered("m1", "192.0.2.12"), remembered("m2", "192.0.2.13")),
			forget:   " m1 ,m0",
			nodes:    []corev1.Node{testNode("m0", true, "192.0.2.11")},
			rendered: []render.Node{{Name: "m0", Addresses: addrs("192.0.2.11")}, {Name: "m2", Addresses: addrs("192.0.2.13")}},
			forgot:   []string{"m1"},
			missing:  []string{"m2"},
		},
		{
			name:    "a pending node that is gone is dropped",
			lbc:     testLBC("cp", remembered("m1")),
			nodes:   nil,
			pending: nil,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.forget != "" {
				tt.lbc.Annotations = map[string]string{v1alpha1.AnnotationForgetNodes: tt.forget}
			}
			ms, err := selectMembers(tt.lbc, tt.nodes)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.rendered, ms.rendered(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("rendered (-want +got):\n%s", diff)
			}
			var pending []string
			for _, m := range ms.members {
				if m.pending() {
					pending = append(pending, m.name)
				}
			}
			for _, c := range []struct {
				what      string
				want, got []string
			}{{"pending", tt.pending, pending}, {"joined", tt.joined, ms.joined}, {"left", tt.left, ms.left},
				{"forgotten", tt.forgot, ms.forgotten}, {"missing", tt.missing, ms.missing}} {
				if diff := cmp.Diff(c.want, c.got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", c.what, diff)
				}
			}
		})
	}
}

// running marks c as published at generation gen.
func running(c *v1alpha1.LoadBalancerConfig, gen int64) *v1alpha1.LoadBalancerConfig {
	c.Status.ObservedGeneration = gen
	c.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionFalse,
		Reason: v1alpha1.ReasonAsExpected, ObservedGeneration: gen}}
	return c
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestConflicts(t *testing.T) {
	at := func(c *v1alpha1.LoadBalancerConfig, sec int) *v1alpha1.LoadBalancerConfig {
		c.CreationTimestamp = metav1.Unix(int64(1000+sec), 0)
		return c
	}
	nodes := []corev1.Node{testNode("m0", true, "192.0.2.11"), testNode("i0", false, "192.0.2.21")}
	nodes[1].Labels["role"] = "infra"
	ingress := func(name string, sec int, mut func(*v1alpha1.LoadBalancerConfig)) *v1alpha1.LoadBalancerConfig {
		c := testLBC(name)
		c.Spec.NodeSelector = metav1.LabelSelector{MatchLabels: map[string]string{"role": "infra"}}
		c.Spec.VirtualIPs = []v1alpha1.VirtualIP{{Name: "in", Address: "192.0.2.20", VRID: 60}}
		if mut != nil {
			mut(c)
		}
		return at(c, sec)
	}
	cp := at(testLBC("cp"), 0)
	for _, tt := range []struct {
		name    string
		lbc     *v1alpha1.LoadBalancerConfig
		others  []*v1alpha1.LoadBalancerConfig
		members []string
		want    []string
	}{
		{name: "no conflict", lbc: ingress("in", 5, nil), others: []*v1alpha1.LoadBalancerConfig{cp}, members: []string{"i0"}},
		{
			name:    "same VRID, later object refused",
			lbc:     ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) { c.Spec.VirtualIPs[0].VRID = 51 }),
			others:  []*v1alpha1.LoadBalancerConfig{cp},
			members: []string{"i0"},
			want:    []string{`loadBalancerConfig[in].spec.virtualIPs[0].vrid: Invalid value: 51: vrid is already used by LoadBalancerConfig "cp"`},
		},
		{
			name:    "same VRID, earlier object kept",
			lbc:     cp,
			others:  []*v1alpha1.LoadBalancerConfig{ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) { c.Spec.VirtualIPs[0].VRID = 51 })},
			members: []string{"m0"},
		},
		{
			name: "same VRID on other interfaces",
			lbc: ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.VirtualIPs[0].VRID, c.Spec.VirtualIPs[0].Interface = 51, "eth1"
			}),
			others: []*v1alpha1.LoadBalancerConfig{func() *v1alpha1.LoadBalancerConfig {
				c := at(testLBC("cp"), 0)
				c.Spec.VirtualIPs[0].Interface = "eth0"
				return c
			}()},
			members: []string{"i0"},
		},
		{
			name:    "same VIP",
			lbc:     ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) { c.Spec.VirtualIPs[0].Address = "192.0.2.10" }),
			others:  []*v1alpha1.LoadBalancerConfig{cp},
			members: []string{"i0"},
			want:    []string{"spec.virtualIPs[0].address", "already a virtual IP of LoadBalancerConfig \"cp\""},
		},
		{
			name:    "same status port on a common node",
			lbc:     ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) { c.Spec.NodeSelector.MatchLabels = map[string]string{cpLabel: ""} }),
			others:  []*v1alpha1.LoadBalancerConfig{cp},
			members: []string{"m0"},
			want:    []string{`spec.agentStatusPort: Invalid value: 9444: port is already used by LoadBalancerConfig "cp" on node(s) m0`},
		},
		{
			name: "other status port on a common node",
			lbc: ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.NodeSelector.MatchLabels = map[string]string{cpLabel: ""}
				c.Spec.AgentStatusPort = 9445
			}),
			others:  []*v1alpha1.LoadBalancerConfig{cp},
			members: []string{"m0"},
		},
		{
			name: "same status port, a remembered common node",
			lbc:  ingress("in", 5, nil),
			others: []*v1alpha1.LoadBalancerConfig{func() *v1alpha1.LoadBalancerConfig {
				c := at(testLBC("cp", remembered("gone", "192.0.2.9")), 0)
				return c
			}()},
			members: []string{"i0", "gone"},
			want:    []string{"on node(s) gone"},
		},
		{
			name: "an earlier object edited into the conflict is refused, the running one kept",
			lbc:  func() *v1alpha1.LoadBalancerConfig { c := at(testLBC("cp"), 0); c.Generation = 2; return running(c, 1) }(),
			others: []*v1alpha1.LoadBalancerConfig{
				running(ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) { c.Spec.VirtualIPs[0].VRID = 51 }), 1),
			},
			members: []string{"m0"},
			want:    []string{`loadBalancerConfig[cp].spec.virtualIPs[0].vrid: Invalid value: 51: vrid is already used by LoadBalancerConfig "in"`},
		},
		{
			name:    "the running object is kept when the other one is edited",
			lbc:     running(ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) { c.Spec.VirtualIPs[0].VRID = 51 }), 1),
			others:  []*v1alpha1.LoadBalancerConfig{func() *v1alpha1.LoadBalancerConfig { c := at(testLBC("cp"), 0); c.Generation = 2; return running(c, 1) }()},
			members: []string{"i0"},
		},
		{
			name: "a BGP peer of an earlier object on a common node",
			lbc: ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.NodeSelector.MatchLabels = map[string]string{cpLabel: ""}
				c.Spec.AgentStatusPort = 9445
				c.Spec.VirtualIPs[0] = v1alpha1.VirtualIP{Name: "in", Address: "192.0.2.20", Mode: v1alpha1.AnnouncementBGP}
				c.Spec.BGP = &v1alpha1.BGP{LocalASN: ptrTo(int64(64513)), Peers: []v1alpha1.BGPPeer{{Address: "192.0.2.2", ASN: 64512}, {Address: "192.0.2.1", ASN: 64512}}}
			}),
			others:  []*v1alpha1.LoadBalancerConfig{bgpLBC("cp")},
			members: []string{"m0"},
			want:    []string{`spec.bgp.peers[1].address: Invalid value: "192.0.2.1": LoadBalancerConfig "cp" already peers with 192.0.2.1 from node(s) m0`},
		},
		{
			name: "a BGP peer of an earlier object, from another source address",
			lbc: ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.NodeSelector.MatchLabels = map[string]string{cpLabel: ""}
				c.Spec.AgentStatusPort = 9445
				c.Spec.VirtualIPs[0] = v1alpha1.VirtualIP{Name: "in", Address: "192.0.2.20", Mode: v1alpha1.AnnouncementBGP}
				c.Spec.BGP = &v1alpha1.BGP{LocalASN: ptrTo(int64(64513)), Peers: []v1alpha1.BGPPeer{{Address: "192.0.2.1", ASN: 64512}},
					ByNode: []v1alpha1.BGPNode{{NodeName: "m0", SourceAddresses: []string{"198.51.100.11"}}}}
			}),
			others: []*v1alpha1.LoadBalancerConfig{func() *v1alpha1.LoadBalancerConfig {
				c := bgpLBC("cp")
				c.Spec.BGP.ByNode = []v1alpha1.BGPNode{{NodeName: "m0", SourceAddresses: []string{"192.0.2.11"}}}
				return c
			}()},
			members: []string{"m0"},
		},
		{
			name: "a BGP peer of an earlier object, no common node",
			lbc: ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.VirtualIPs[0] = v1alpha1.VirtualIP{Name: "in", Address: "192.0.2.20", Mode: v1alpha1.AnnouncementBGP}
				c.Spec.BGP = &v1alpha1.BGP{LocalASN: ptrTo(int64(64513)), Peers: []v1alpha1.BGPPeer{{Address: "192.0.2.1", ASN: 64512}}}
			}),
			others:  []*v1alpha1.LoadBalancerConfig{bgpLBC("cp")},
			members: []string{"i0"},
		},
		{
			name: "an object being deleted does not count",
			lbc:  ingress("in", 5, func(c *v1alpha1.LoadBalancerConfig) { c.Spec.VirtualIPs[0].VRID = 51 }),
			others: []*v1alpha1.LoadBalancerConfig{func() *v1alpha1.LoadBalancerConfig {
				c := at(testLBC("cp"), 0)
				now := metav1.Now()
				c.DeletionTimestamp = &now
				return c
			}()},
			members: []string{"i0"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var all []v1alpha1.LoadBalancerConfig
			for _, o := range tt.others {
				all = append(all, *o)
			}
			all = append(all, *tt.lbc)
			errs := conflicts(tt.lbc, all, tt.members, nodes)
			got := errs.ToAggregate()
			if len(tt.want) == 0 {
				if got != nil {
					t.Errorf("conflicts = %v, want none", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("no conflict, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("conflicts = %v, want it to contain %q", got, w)
				}
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }
