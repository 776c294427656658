package operator

import (
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/companion"
	"github.com/vipvs/vipvs/render"
)

const rolloutLBC = "api"

// rolloutRouter is the router of the rollout tests' configs.
func rolloutRouter(prio int32) agentv1alpha1.VirtualRouter {
	return agentv1alpha1.VirtualRouter{Name: "api", VRID: 51, Priority: &prio,
		UnicastPeers: []string{"192.0.2.11", "192.0.2.12"}, VIPs: []string{"192.0.2.100/32"}}
}

// rolloutSecret is the Secret of node with the agent config of routers and
// a static pod pod; hash names the config, running what the agent runs.
func rolloutSecret(t *testing.T, node, hash, running, pod string, routers ...agentv1alpha1.VirtualRouter) *corev1.Secret {
	t.Helper()
	cfg, err := yaml.Marshal(agentv1alpha1.AgentConfig{APIVersion: "vipvs.io/v1alpha1", Kind: "AgentConfig", VirtualRouters: routers})
	if err != nil {
		t.Fatal(err)
	}
	data, ann, err := companion.EncodeFiles([]companion.File{
		{Path: render.AgentConfigPath(rolloutLBC, node), Data: cfg, Mode: 0o600},
		{Path: render.StaticPodPath(rolloutLBC), Data: []byte(pod), Mode: 0o644},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: NodeFilesName(rolloutLBC, node), Annotations: map[string]string{
		companion.AnnotationFiles: ann, companion.AnnotationConfigHash: hash, annotationNodeName: node,
	}}, Data: data}
	if running != "" {
		s.Annotations[companion.AnnotationRunningConfigHash] = running
	}
	return s
}

func TestRestarts(t *testing.T) {
	base := rolloutRouter(150)
	with := func(f func(*agentv1alpha1.VirtualRouter)) agentv1alpha1.VirtualRouter {
		r := rolloutRouter(150)
		f(&r)
		return r
	}
	tests := []struct {
		name    string
		pod     string
		routers []agentv1alpha1.VirtualRouter
		want    bool
	}{
		{"unchanged", "pod", []agentv1alpha1.VirtualRouter{base}, false},
		{"priority", "pod", []agentv1alpha1.VirtualRouter{rolloutRouter(90)}, false},
		{"peers", "pod", []agentv1alpha1.VirtualRouter{with(func(r *agentv1alpha1.VirtualRouter) { r.UnicastPeers = r.UnicastPeers[:1] })}, false},
		{"track checks", "pod", []agentv1alpha1.VirtualRouter{with(func(r *agentv1alpha1.VirtualRouter) {
			r.TrackChecks = []agentv1alpha1.TrackCheck{{Check: "api", Weight: -20}}
		})}, false},
		{"services", "pod", []agentv1alpha1.VirtualRouter{with(func(r *agentv1alpha1.VirtualRouter) {
			r.VirtualServices = []agentv1alpha1.VirtualService{{Port: 6443}}
		})}, false},
		{"router added", "pod", []agentv1alpha1.VirtualRouter{base, {Name: "ingress", VRID: 52, VIPs: []string{"192.0.2.101/32"}}}, false},
		{"router removed", "pod", nil, false},
		{"VRID", "pod", []agentv1alpha1.VirtualRouter{with(func(r *agentv1alpha1.VirtualRouter) { r.VRID = 61 })}, true},
		{"interval", "pod", []agentv1alpha1.VirtualRouter{with(func(r *agentv1alpha1.VirtualRouter) {
			r.AdvertInterval = &agentv1alpha1.Duration{Duration: 200 * time.Millisecond}
		})}, true},
		{"VIP address", "pod", []agentv1alpha1.VirtualRouter{with(func(r *agentv1alpha1.VirtualRouter) { r.VIPs = []string{"192.0.2.102/32"} })}, true},
		{"unicast to multicast", "pod", []agentv1alpha1.VirtualRouter{with(func(r *agentv1alpha1.VirtualRouter) { r.UnicastPeers = nil })}, true},
		{"static pod", "pod v2", []agentv1alpha1.VirtualRouter{base}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := rolloutSecret(t, "n1", "a", "a", "pod", base)
			want := rolloutSecret(t, "n1", "b", "", tt.pod, tt.routers...)
			if got := restarts(rolloutLBC, cur, want); got != tt.want {
				t.Errorf("restarts = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestStage plays a VRID change on three nodes, n1 master (priority 150),
// n2 (120) and n3 (100): the backups n2 and n3 together, then n1 once
// both run their new configs; a node that never reports holds the rollout
// up for rolloutNodeTimeout only. A new static pod (TestStageAgentRestart)
// goes one node at a time.
func TestStage(t *testing.T) {
	testStage(t, "pod", [][]string{{"n2", "n3"}, {"n1"}})
}

// TestStageAgentRestart plays a change of the static pod with a VRID
// change: each agent restarts, one node at a time, n2, then n3, then n1.
func TestStageAgentRestart(t *testing.T) {
	testStage(t, "pod v2", [][]string{{"n2"}, {"n3"}, {"n1"}})
}

// testStage rolls a VRID change with the static pod pod out on n1 (master,
// 150), n2 (120) and n3 (100), and checks that the nodes get their new
// configs in the steps given: each step once every node before runs its
// new config, and at the last node of a step that never reports, once
// rolloutNodeTimeout has passed.
func testStage(t *testing.T, pod string, steps [][]string) {
	prios := map[string]int32{"n1": 150, "n2": 120, "n3": 100}
	nodes := []string{"n1", "n2", "n3"}
	vrid := func(prio int32, v int32) agentv1alpha1.VirtualRouter {
		r := rolloutRouter(prio)
		r.VRID = v
		return r
	}
	lbc := &v1alpha1.LoadBalancerConfig{ObjectMeta: metav1.ObjectMeta{Name: rolloutLBC},
		Status: v1alpha1.LoadBalancerConfigStatus{VIPs: []v1alpha1.VIPStatus{{Name: "api", MasterNode: "n1"}}}}
	existing := map[string]*corev1.Secret{}
	var want []*corev1.Secret
	for _, n := range nodes {
		existing[NodeFilesName(rolloutLBC, n)] = rolloutSecret(t, n, "old-"+n, "old-"+n, "pod", vrid(prios[n], 51))
		want = append(want, rolloutSecret(t, n, "new-"+n, "", pod, vrid(prios[n], 61)))
	}
	r := &Reconciler{}
	now := time.Unix(1000, 0)
	// published applies a step: the published Secrets become the existing
	// ones, each keeping what its agent runs.
	published := func(st staged) {
		for _, s := range st.publish {
			cur := existing[s.Name]
			s = s.DeepCopy()
			if run := cur.Annotations[companion.AnnotationRunningConfigHash]; run != "" {
				s.Annotations[companion.AnnotationRunningConfigHash] = run
			}
			existing[s.Name] = s
		}
	}
	runs := func(n string) {
		s := existing[NodeFilesName(rolloutLBC, n)]
		s.Annotations[companion.AnnotationRunningConfigHash] = s.Annotations[companion.AnnotationConfigHash]
	}
	newOn := func() []string {
		var out []string
		for _, n := range nodes {
			if existing[NodeFilesName(rolloutLBC, n)].Annotations[companion.AnnotationConfigHash] == "new-"+n {
				out = append(out, n)
			}
		}
		return out
	}
	step := func(wantNew []string, wantHeld int) {
		t.Helper()
		st := r.stage(lbc, want, existing, now)
		published(st)
		if got := newOn(); !equalStrings(got, wantNew) {
			t.Fatalf("nodes with the new config %v, want %v", got, wantNew)
		}
		if len(st.held) != wantHeld {
			t.Fatalf("held %v, want %d nodes", st.held, wantHeld)
		}
		for n, h := range st.held {
			if h != "new-"+n {
				t.Errorf("held node %s will get %q, want new-%s", n, h, n)
			}
		}
	}
	var done []string
	for i, nodes := range steps {
		done = append(done, nodes...)
		sort.Strings(done)
		step(done, 3-len(done))
		step(done, 3-len(done)) // its nodes do not run it yet
		if i == len(steps)-1 {
			break
		}
		for _, n := range nodes[:len(nodes)-1] {
			runs(n)
			step(done, 3-len(done)) // the step's last node does not run it yet
		}
		if i == 0 {
			// The last node of the first step never reports: the rollout
			// goes on after rolloutNodeTimeout.
			now = now.Add(rolloutNodeTimeout / 2)
			step(done, 3-len(done))
			now = now.Add(rolloutNodeTimeout)
			continue
		}
		runs(nodes[len(nodes)-1])
	}

	// A change every agent applies live goes everywhere at once.
	for i, n := range nodes {
		want[i] = rolloutSecret(t, n, "prio-"+n, "", pod, vrid(prios[n]-1, 61))
	}
	st := r.stage(lbc, want, existing, now)
	if len(st.held) != 0 {
		t.Errorf("a priority change held %v back", st.held)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRestartsBGP: a change of the bgp section or of a BGP key file is
// rolled out one node at a time (the node's sessions may reset), so that
// the other nodes keep advertising the bgp virtual IPs meanwhile.
func TestRestartsBGP(t *testing.T) {
	router := agentv1alpha1.VirtualRouter{Name: "web", Mode: agentv1alpha1.ModeBGP, VIPs: []string{"192.0.2.40"}}
	bgp := func(asn int64) *agentv1alpha1.BGP {
		return &agentv1alpha1.BGP{LocalASN: 64513, Peers: []agentv1alpha1.BGPPeer{{Address: "192.0.2.1", ASN: asn, PasswordFile: render.BGPPasswordFilePath(rolloutLBC, 0, []byte("k1"))}}}
	}
	secret := func(b *agentv1alpha1.BGP, key string, r agentv1alpha1.VirtualRouter) *corev1.Secret {
		cfg, err := yaml.Marshal(agentv1alpha1.AgentConfig{APIVersion: "vipvs.io/v1alpha1", Kind: "AgentConfig", BGP: b, VirtualRouters: []agentv1alpha1.VirtualRouter{r}})
		if err != nil {
			t.Fatal(err)
		}
		data, ann, err := companion.EncodeFiles([]companion.File{
			{Path: render.AgentConfigPath(rolloutLBC, "n1"), Data: cfg, Mode: 0o644},
			{Path: render.BGPPasswordFilePath(rolloutLBC, 0, []byte("k1")), Data: []byte(key), Mode: 0o600},
			{Path: render.StaticPodPath(rolloutLBC), Data: []byte("pod"), Mode: 0o644},
		})
		if err != nil {
			t.Fatal(err)
		}
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
			companion.AnnotationFiles: ann, companion.AnnotationConfigHash: "h", annotationNodeName: "n1"}}, Data: data}
	}
	cur := secret(bgp(64512), "k1", router)
	withChecks := router
	withChecks.TrackChecks = []agentv1alpha1.TrackCheck{{Check: "router"}}
	for _, tt := range []struct {
		name string
		want *corev1.Secret
		ok   bool
	}{
		{"unchanged", secret(bgp(64512), "k1", router), false},
		{"track checks of a bgp router", secret(bgp(64512), "k1", withChecks), false},
		{"peer ASN", secret(bgp(64515), "k1", router), true},
		{"key", secret(bgp(64512), "k2", router), true},
	} {
		if got := restarts(rolloutLBC, cur, tt.want); got != tt.ok {
			t.Errorf("%s: restarts = %v, want %v", tt.name, got, tt.ok)
		}
	}
}
