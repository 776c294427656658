package operator

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/companion"
)

// bgpLBC has a vrrp virtual IP ("api") and a bgp one ("web").
func bgpLBC(name string) *v1alpha1.LoadBalancerConfig {
	lbc := testLBC(name)
	lbc.Spec.VirtualIPs = append(lbc.Spec.VirtualIPs, v1alpha1.VirtualIP{Name: "web", Address: "192.0.2.40", Mode: v1alpha1.AnnouncementBGP})
	lbc.Spec.BGP = &v1alpha1.BGP{LocalASN: ptrTo(int64(64513)), Peers: []v1alpha1.BGPPeer{{Address: "192.0.2.1", ASN: 64512, BFD: true}, {Address: "2001:db8::1", ASN: 64512}}}
	return lbc
}

// bgpNode is a member whose agent runs its configuration, with the node
// report the companion would forward: the vrrp router in state vrrp, the
// bgp router in state web, and the BGP sessions.
type bgpNode struct {
	name, vrrp, web, webReason, bgpErr string
	peers                              []statusv1.BGPPeerSummary
}

func observeBGP(nodes ...bgpNode) observed {
	obs := observed{published: map[string]*corev1.Secret{}}
	for _, n := range nodes {
		node := testNode(n.name, true, "192.0.2.1")
		obs.members = append(obs.members, member{name: n.name, addrs: addrs("192.0.2.1"), node: &node})
		rep := statusv1.NodeReport{APIVersion: statusv1.APIVersion, Kind: statusv1.KindNodeReport,
			Routers: []statusv1.RouterSummary{
				{Name: "api", State: n.vrrp},
				{Name: "web", Mode: statusv1.ModeBGP, State: n.web, Interface: "lo", Reason: n.webReason},
			},
			BGPPeers: n.peers, BGPError: n.bgpErr}
		obs.published[n.name] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
			companion.AnnotationConfigHash:        "h",
			companion.AnnotationRunningConfigHash: "h",
			companion.AnnotationAgentStatus:       rep.Encode(),
		}}}
	}
	return obs
}

func up(addr string, bfd string, routes int) statusv1.BGPPeerSummary {
	return statusv1.BGPPeerSummary{Address: addr, State: statusv1.BGPStateEstablished, BFD: bfd, Advertised: routes}
}

// TestComputeStatusBGP puts node reports with BGP through computeStatus:
// per node the sessions (state, BFD, routes advertised), per bgp virtual
// IP the nodes that advertise it, and Ready/Degraded NotAdvertised when
// none does.
func TestComputeStatusBGP(t *testing.T) {
	healthy := []statusv1.BGPPeerSummary{up("192.0.2.1", statusv1.BFDStateUp, 1), up("2001:db8::1", "", 0)}
	for _, tt := range []struct {
		name          string
		obs           observed
		ready         string // "True/Reason"
		degraded      string
		masters       string
		advertisedBy  []string
		peers         map[string][]v1alpha1.BGPPeerStatus
		messages      []string // substrings of the conditions' messages
		nodeMessages  map[string]string
		notInMessages []string
	}{
		{
			name: "every node advertises",
			obs: observeBGP(
				bgpNode{name: "w0", vrrp: "MASTER", web: statusv1.StateAdvertised, peers: healthy},
				bgpNode{name: "w1", vrrp: "BACKUP", web: statusv1.StateAdvertised, peers: healthy},
			),
			ready: "True/AsExpected", degraded: "False/AsExpected",
			masters:      "192.0.2.10=w0,192.0.2.40=bgp:w0+w1",
			advertisedBy: []string{"w0", "w1"},
			peers: map[string][]v1alpha1.BGPPeerStatus{
				"w0": {{Address: "192.0.2.1", State: "established", BFD: "up", Advertised: 1}, {Address: "2001:db8::1", State: "established"}},
				"w1": {{Address: "192.0.2.1", State: "established", BFD: "up", Advertised: 1}, {Address: "2001:db8::1", State: "established"}},
			},
			nodeMessages: map[string]string{"w0": "", "w1": ""},
		},
		{
			name: "one node withdrew, one session down, BFD down",
			obs: observeBGP(
				bgpNode{name: "w0", vrrp: "MASTER", web: statusv1.StateAdvertised, peers: []statusv1.BGPPeerSummary{
					up("192.0.2.1", statusv1.BFDStateDown, 1), {Address: "2001:db8::1", State: statusv1.BGPStateActive}}},
				bgpNode{name: "w1", vrrp: "BACKUP", web: statusv1.StateWithdrawn, webReason: "track check router failing", peers: healthy},
			),
			ready: "True/AsExpected", degraded: "False/AsExpected",
			masters:      "192.0.2.10=w0,192.0.2.40=bgp:w0",
			advertisedBy: []string{"w0"},
			peers: map[string][]v1alpha1.BGPPeerStatus{
				"w0": {{Address: "192.0.2.1", State: "established", BFD: "down", Advertised: 1}, {Address: "2001:db8::1", State: "active"}},
				"w1": {{Address: "192.0.2.1", State: "established", BFD: "up", Advertised: 1}, {Address: "2001:db8::1", State: "established"}},
			},
			nodeMessages: map[string]string{
				"w0": "the BFD session to 192.0.2.1 is down; the BGP session to 2001:db8::1 is active",
				"w1": "it withdrew web: track check router failing",
			},
		},
		{
			name: "advertised by no node",
			obs: observeBGP(
				bgpNode{name: "w0", vrrp: "MASTER", web: statusv1.StateWithdrawn, webReason: "draining", bgpErr: "starting the speaker: address in use"},
				bgpNode{name: "w1", vrrp: "BACKUP", web: statusv1.StateWithdrawn, webReason: "track check router failing", peers: healthy},
			),
			ready: "False/NotAdvertised", degraded: "True/NotAdvertised",
			masters:  "192.0.2.10=w0,192.0.2.40=bgp:-",
			messages: []string{"no node advertises the virtual IP in mode bgp web (192.0.2.40)"},
			peers: map[string][]v1alpha1.BGPPeerStatus{
				"w1": {{Address: "192.0.2.1", State: "established", BFD: "up", Advertised: 1}, {Address: "2001:db8::1", State: "established"}},
			},
			nodeMessages: map[string]string{"w0": "BGP: starting the speaker: address in use; it withdrew web: draining"},
		},
		{
			name: "vrrp without master, bgp advertised",
			obs: observeBGP(
				bgpNode{name: "w0", vrrp: "BACKUP", web: statusv1.StateAdvertised, peers: healthy},
			),
			ready: "False/NoMaster", degraded: "True/NoMaster",
			masters:       "192.0.2.10=-,192.0.2.40=bgp:w0",
			advertisedBy:  []string{"w0"},
			notInMessages: []string{"NotAdvertised", "advertises"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lbc := bgpLBC("web")
			st, masters, _ := computeStatus(lbc, tt.obs, metav1.Unix(2000, 0))
			for _, c := range []struct{ typ, want string }{{v1alpha1.ConditionReady, tt.ready}, {v1alpha1.ConditionDegraded, tt.degraded}} {
				cond := condition(st, c.typ)
				if got := string(cond.Status) + "/" + cond.Reason; got != c.want {
					t.Errorf("%s = %s, want %s (%s)", c.typ, got, c.want, cond.Message)
				}
			}
			if st.Masters != tt.masters {
				t.Errorf("masters = %q, want %q", st.Masters, tt.masters)
			}
			if _, ok := masters["192.0.2.40"]; ok {
				t.Errorf("a bgp virtual IP is among the masters: %v", masters)
			}
			want := []v1alpha1.VIPStatus{{Name: "api", Address: "192.0.2.10", MasterNode: st.VIPs[0].MasterNode},
				{Name: "web", Address: "192.0.2.40", Mode: v1alpha1.AnnouncementBGP, AdvertisedBy: tt.advertisedBy}}
			if diff := cmp.Diff(want, st.VIPs); diff != "" {
				t.Errorf("vips (-want +got):\n%s", diff)
			}
			for _, ns := range st.Nodes {
				if tt.peers == nil {
					continue
				}
				if diff := cmp.Diff(tt.peers[ns.Name], ns.BGPPeers); diff != "" {
					t.Errorf("node %s: bgpPeers (-want +got):\n%s", ns.Name, diff)
				}
				if msg, ok := tt.nodeMessages[ns.Name]; ok && ns.Message != msg {
					t.Errorf("node %s: message %q, want %q", ns.Name, ns.Message, msg)
				}
			}
			var all string
			for _, c := range st.Conditions {
				all += c.Reason + ": " + c.Message + "\n"
			}
			for _, m := range tt.messages {
				if !strings.Contains(all, m) {
					t.Errorf("no condition message contains %q:\n%s", m, all)
				}
			}
			for _, m := range tt.notInMessages {
				if strings.Contains(all, m) {
					t.Errorf("a condition says %q:\n%s", m, all)
				}
			}
		})
	}
}

// TestStatusMetricsBGP follows the BGP metrics through statuses: the
// sessions per node and peer, the number of nodes advertising each bgp
// virtual IP (0 when none does: the alert's input), a peer and a node
// going, and the LoadBalancerConfig's deletion.
func TestStatusMetricsBGP(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newStatusMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	set := func(obs observed) {
		t.Helper()
		st, masters, _ := computeStatus(bgpLBC("web"), obs, metav1.Unix(1000, 0))
		m.set("web", st, masters)
	}
	check := func(step string, want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), MetricBGPSessionUp, MetricVIPAdvertisers); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	const (
		sessHead = "# HELP vipvs_operator_bgp_session_up 1 while the node's BGP session with the peer is established, 0 otherwise (status.nodes[].bgpPeers).\n# TYPE vipvs_operator_bgp_session_up gauge\n"
		advHead  = "# HELP vipvs_operator_vip_advertising_nodes The number of nodes that advertise the virtual IP address vip in mode bgp (status.vips[].advertisedBy); 0 while none does.\n# TYPE vipvs_operator_vip_advertising_nodes gauge\n"
	)
	set(observeBGP(
		bgpNode{name: "w0", vrrp: "MASTER", web: statusv1.StateAdvertised, peers: []statusv1.BGPPeerSummary{up("192.0.2.1", "up", 1), {Address: "2001:db8::1", State: "idle"}}},
		bgpNode{name: "w1", vrrp: "BACKUP", web: statusv1.StateAdvertised, peers: []statusv1.BGPPeerSummary{up("192.0.2.1", "up", 1)}},
	))
	check("two nodes advertise", sessHead+
		`vipvs_operator_bgp_session_up{load_balancer_config="web",node="w0",peer="192.0.2.1"} 1`+"\n"+
		`vipvs_operator_bgp_session_up{load_balancer_config="web",node="w0",peer="2001:db8::1"} 0`+"\n"+
		`vipvs_operator_bgp_session_up{load_balancer_config="web",node="w1",peer="192.0.2.1"} 1`+"\n"+
		advHead+`vipvs_operator_vip_advertising_nodes{load_balancer_config="web",vip="192.0.2.40"} 2`+"\n")

	set(observeBGP(
		bgpNode{name: "w0", vrrp: "MASTER", web: statusv1.StateWithdrawn, peers: []statusv1.BGPPeerSummary{{Address: "192.0.2.1", State: "active"}}},
	))
	check("w1 left, w0 withdrew, a peer went", sessHead+
		`vipvs_operator_bgp_session_up{load_balancer_config="web",node="w0",peer="192.0.2.1"} 0`+"\n"+
		advHead+`vipvs_operator_vip_advertising_nodes{load_balancer_config="web",vip="192.0.2.40"} 0`+"\n")

	m.forget("web")
	check("deleted", "")
}

// TestReferencesBGPKey: a change of the Secret that holds a BGP peer's key
// reconciles the LoadBalancerConfig (it renders the key's file again).
func TestReferencesBGPKey(t *testing.T) {
	lbc := bgpLBC("web")
	lbc.Spec.BGP.Peers[1].PasswordSecretRef = &v1alpha1.SecretKeyReference{Namespace: "vipvs", Name: "tor-md5", Key: "password"}
	if !references(lbc, "vipvs", "tor-md5") {
		t.Error("the LoadBalancerConfig does not reference the Secret of its peer's key")
	}
	if references(lbc, "vipvs", "other") || references(lbc, "default", "tor-md5") {
		t.Error("the LoadBalancerConfig references a Secret it does not name")
	}
}
