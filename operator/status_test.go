package operator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/companion"
)

// nodeState is a member and what its Secret says.
type nodeState struct {
	name     string
	missing  bool
	notReady bool
	// rendered and running are the hashes; state is the agent's router
	// state ("" = no agent status); agentErr the companion's error.
	rendered, running, state, agentErr, configErr string
	// problems are the agent's typed config problems; iface and reason
	// the router's interface and (FAULT) reason.
	problems      []statusv1.Problem
	iface, reason string
}

func observe(states ...nodeState) observed {
	obs := observed{published: map[string]*corev1.Secret{}}
	for _, s := range states {
		m := member{name: s.name, addrs: addrs("192.0.2.1")}
		if !s.missing {
			n := testNode(s.name, true, "192.0.2.1")
			if s.notReady {
				n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}
			}
			m.node = &n
		}
		obs.members = append(obs.members, m)
		ann := map[string]string{companion.AnnotationConfigHash: s.rendered}
		if s.running != "" {
			ann[companion.AnnotationRunningConfigHash] = s.running
		}
		if s.state != "" {
			ann[companion.AnnotationAgentStatus] = statusv1.NodeReport{APIVersion: statusv1.APIVersion, ConfigError: s.configErr, ConfigProblems: s.problems,
				Routers: []statusv1.RouterSummary{{Name: "api", State: s.state, Interface: s.iface, Reason: s.reason}}}.Encode()
		}
		if s.agentErr != "" {
			ann[companion.AnnotationAgentError] = s.agentErr
		}
		obs.published[s.name] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: ann}}
	}
	return obs
}

func condition(st v1alpha1.LoadBalancerConfigStatus, t string) metav1.Condition {
	if c := findCondition(st.Conditions, t); c != nil {
		return *c
	}
	return metav1.Condition{}
}

func TestComputeStatus(t *testing.T) {
	type conds struct{ Ready, Progressing, Degraded string } // "True/Reason"
	for _, tt := range []struct {
		name    string
		obs     observed
		want    conds
		masters string
		// messages are substrings of the conditions' messages.
		messages []string
		running  []bool
	}{
		{
			name:    "ready",
			obs:     observe(nodeState{name: "m0", rendered: "h", running: "h", state: "MASTER"}, nodeState{name: "m1", rendered: "h", running: "h", state: "BACKUP"}),
			want:    conds{"True/AsExpected", "False/AsExpected", "False/AsExpected"},
			masters: "192.0.2.10=m0",
			running: []bool{true, true},
		},
		{
			name:     "rolling out",
			obs:      observe(nodeState{name: "m0", rendered: "new", running: "new", state: "MASTER"}, nodeState{name: "m1", rendered: "new", running: "old", state: "BACKUP"}),
			want:     conds{"False/RollingOut", "True/RollingOut", "False/AsExpected"},
			masters:  "192.0.2.10=m0",
			messages: []string{"1 of 2 nodes run their rendered configuration; waiting for node m1"},
			running:  []bool{true, true},
		},
		{
			name:     "no report yet",
			obs:      observe(nodeState{name: "m0", rendered: "h"}),
			want:     conds{"False/RollingOut", "True/RollingOut", "False/AsExpected"},
			masters:  "192.0.2.10=-",
			running:  []bool{false},
			messages: []string{"waiting for node m0"},
		},
		{
			name:     "agent down",
			obs:      observe(nodeState{name: "m0", rendered: "h", running: "h", state: "MASTER"}, nodeState{name: "m1", rendered: "h", agentErr: "the agent does not answer: connection refused"}),
			want:     conds{"False/AgentNotRunning", "False/AsExpected", "True/AgentNotRunning"},
			masters:  "192.0.2.10=m0",
			running:  []bool{true, false},
			messages: []string{"node m1: the agent does not answer: connection refused"},
		},
		{
			name:     "split brain",
			obs:      observe(nodeState{name: "m0", rendered: "h", running: "h", state: "MASTER"}, nodeState{name: "m1", rendered: "h", running: "h", state: "MASTER"}),
			want:     conds{"False/MultipleMasters", "False/AsExpected", "True/MultipleMasters"},
			masters:  "192.0.2.10=m0+m1",
			messages: []string{"api (192.0.2.10): m0, m1"},
		},
		{
			name:     "no master",
			obs:      observe(nodeState{name: "m0", rendered: "h", running: "h", state: "BACKUP"}),
			want:     conds{"False/NoMaster", "False/AsExpected", "True/NoMaster"},
			masters:  "192.0.2.10=-",
			messages: []string{"no node is master of api (192.0.2.10)"},
		},
		{
			name: "missing node: its stale claim does not count",
			obs: observe(nodeState{name: "m0", rendered: "h", running: "h", state: "MASTER"},
				nodeState{name: "m1", missing: true, rendered: "h", running: "h", state: "MASTER"}),
			want:     conds{"False/NodeMissing", "False/AsExpected", "True/NodeMissing"},
			masters:  "192.0.2.10=m0",
			running:  []bool{true, false},
			messages: []string{"the Node object of node m1 is gone from the API", v1alpha1.AnnotationForgetNodes},
		},
		{
			name: "a NotReady node's report is stale",
			obs: observe(nodeState{name: "m0", rendered: "h", running: "h", state: "BACKUP"},
				nodeState{name: "m1", notReady: true, rendered: "h", running: "h", state: "MASTER"}),
			want:     conds{"False/AgentNotRunning", "False/AsExpected", "True/AgentNotRunning"},
			masters:  "192.0.2.10=-",
			running:  []bool{true, false},
			messages: []string{"node m1: the Node is not Ready", "no node is master"},
		},
		{
			name:     "config rejected",
			obs:      observe(nodeState{name: "m0", rendered: "new", running: "old", state: "MASTER", configErr: "virtualRouters[0].interface: no such interface"}),
			want:     conds{"False/ConfigRejected", "False/AsExpected", "True/ConfigRejected"},
			masters:  "192.0.2.10=m0",
			running:  []bool{true},
			messages: []string{"no such interface"},
		},
		{
			name: "config rejected, with a typed problem: the status names the spec's field",
			obs: observe(nodeState{name: "m0", rendered: "new", running: "old", state: "MASTER", configErr: "router api: no interface has an address in the subnet of VIP 192.0.2.10",
				problems: []statusv1.Problem{{Code: statusv1.CodeVIPNotInSubnet, Router: "api", VIP: "192.0.2.10", Message: "router api: no interface has an address in the subnet of VIP 192.0.2.10"}}}),
			want:     conds{"False/ConfigRejected", "False/AsExpected", "True/ConfigRejected"},
			masters:  "192.0.2.10=m0",
			running:  []bool{true},
			messages: []string{"node m0: VIPNotInSubnet: spec.virtualIPs[0].address: 192.0.2.10 is in no subnet of the node"},
		},
		{
			name: "a router in FAULT on one node: Degraded, naming the node, router, interface and reason",
			obs: observe(nodeState{name: "m0", rendered: "h", running: "h", state: "MASTER", iface: "eth0"},
				nodeState{name: "m1", rendered: "h", running: "h", state: "FAULT", iface: "eth1", reason: "interface eth1 is down"}),
			want:     conds{"False/RouterFault", "False/AsExpected", "True/RouterFault"},
			masters:  "192.0.2.10=m0",
			running:  []bool{true, true},
			messages: []string{"node m1: router api (spec.virtualIPs[0], 192.0.2.10) is FAULT on interface eth1: interface eth1 is down"},
		},
		{
			name: "conflict: nothing rendered, the old config runs",
			obs: func() observed {
				o := observe(nodeState{name: "m0", rendered: "h", running: "h", state: "MASTER"})
				o.problem = &problem{v1alpha1.ReasonConflict, "loadBalancerConfig[cp].spec.virtualIPs[0].vrid: Invalid value: 51: vrid is already used"}
				return o
			}(),
			want:     conds{"False/Conflict", "False/AsExpected", "True/Conflict"},
			masters:  "192.0.2.10=m0",
			messages: []string{"spec.virtualIPs[0].vrid"},
			running:  []bool{true},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lbc := testLBC("cp")
			lbc.Generation = 7
			st, _, _ := computeStatus(lbc, tt.obs, metav1.Unix(2000, 0))
			got := conds{}
			for _, c := range []struct {
				t string
				p *string
			}{{v1alpha1.ConditionReady, &got.Ready}, {v1alpha1.ConditionProgressing, &got.Progressing}, {v1alpha1.ConditionDegraded, &got.Degraded}} {
				cond := condition(st, c.t)
				*c.p = string(cond.Status) + "/" + cond.Reason
				if cond.ObservedGeneration != 7 {
					t.Errorf("%s observedGeneration = %d, want 7", c.t, cond.ObservedGeneration)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if st.ObservedGeneration != 7 {
				t.Errorf("observedGeneration = %d", st.ObservedGeneration)
			}
			if st.Masters != tt.masters {
				t.Errorf("masters = %q, want %q", st.Masters, tt.masters)
			}
			var all string
			for _, c := range st.Conditions {
				all += c.Message + "\n"
			}
			for _, m := range tt.messages {
				if !strings.Contains(all, m) {
					t.Errorf("no condition message contains %q:\n%s", m, all)
				}
			}
			if tt.running != nil {
				var running []bool
				for _, n := range st.Nodes {
					running = append(running, n.Running)
				}
				if diff := cmp.Diff(tt.running, running); diff != "" {
					t.Errorf("nodes running (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestComputeStatusKeepsTransitionTimes(t *testing.T) {
	lbc := testLBC("cp")
	obs := observe(nodeState{name: "m0", rendered: "h", running: "h", state: "MASTER"})
	t0 := metav1.Unix(1000, 0)
	lbc.Status, _, _ = computeStatus(lbc, obs, t0)
	t1 := metav1.NewTime(t0.Add(time.Minute))
	same, _, _ := computeStatus(lbc, obs, t1)
	if diff := cmp.Diff(lbc.Status, same); diff != "" {
		t.Errorf("a second computation of the same state differs (-first +second):\n%s", diff)
	}
	rolling := observe(nodeState{name: "m0", rendered: "new", running: "h", state: "MASTER"})
	next, _, _ := computeStatus(lbc, rolling, t1)
	if c := condition(next, v1alpha1.ConditionReady); !c.LastTransitionTime.Equal(&t1) {
		t.Errorf("Ready turned False at %v, want %v", c.LastTransitionTime, t1)
	}
	if c := condition(next, v1alpha1.ConditionDegraded); !c.LastTransitionTime.Equal(&t0) {
		t.Errorf("Degraded stayed False but its time moved to %v", c.LastTransitionTime)
	}
	n := next.Nodes[0]
	if n.RenderedConfigHash != "new" || n.RunningConfigHash != "h" || !n.Running || n.Message == "" {
		t.Errorf("node status = %+v", n)
	}
}

func TestExplainAgentError(t *testing.T) {
	lbc := &v1alpha1.LoadBalancerConfig{Spec: v1alpha1.LoadBalancerConfigSpec{VirtualIPs: []v1alpha1.VirtualIP{
		{Name: "api", Address: "192.0.2.10", VRID: 51},
		{Name: "far", Address: "203.0.113.10", VRID: 52},
	}}}
	tests := []struct {
		name string
		in   statusv1.NodeReport
		want string
	}{
		{
			name: "VIP in no subnet: the spec's field",
			in: statusv1.NodeReport{ConfigError: "prose", ConfigProblems: []statusv1.Problem{{Code: statusv1.CodeVIPNotInSubnet, Router: "far", VIP: "203.0.113.10",
				Message: "router far: no interface has an address in the subnet of VIP 203.0.113.10 (203.0.113.10/32): set the router's interface"}}},
			want: "VIPNotInSubnet: spec.virtualIPs[1].address: 203.0.113.10 is in no subnet of the node and spec.virtualIPs[1].interface is empty: set the interface or use an address of the nodes' subnet (router far: no interface",
		},
		{
			name: "two problems, one of an unknown router",
			in: statusv1.NodeReport{ConfigProblems: []statusv1.Problem{
				{Code: statusv1.CodeVIPNotInSubnet, Router: "other", Message: "router other: no interface"},
				{Code: statusv1.CodeConfigInvalid, Field: "virtualRouters[0].vrid", Message: "virtualRouters[0].vrid: Invalid value"}}},
			want: "VIPNotInSubnet: router other: no interface; ConfigInvalid: virtualRouters[0].vrid: Invalid value",
		},
		{
			// The words are never parsed: an agent without codes is quoted.
			name: "an older agent without codes",
			in:   statusv1.NodeReport{ConfigError: "router far: no interface has an address in the subnet of VIP 203.0.113.10"},
			want: "router far: no interface has an address in the subnet of VIP 203.0.113.10",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := explainAgentError(lbc, &tt.in); !strings.HasPrefix(got, tt.want) {
				t.Errorf("explainAgentError = %q, want it to start with %q", got, tt.want)
			}
		})
	}
}

// TestMastersSettle: while a VIP moves, the reports may show it with no
// master or two for a moment; the status keeps the master it showed for up
// to settleTime, and shows a new single master at once.
func TestMastersSettle(t *testing.T) {
	lbc := testLBC("cp")
	t0 := time.Unix(3000, 0)
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }
	run := func(d time.Duration, unsettled map[string]time.Time, states ...string) (v1alpha1.LoadBalancerConfigStatus, settled) {
		t.Helper()
		var ns []nodeState
		for i, st := range states {
			ns = append(ns, nodeState{name: fmt.Sprintf("m%d", i), rendered: "h", running: "h", state: st})
		}
		obs := observe(ns...)
		obs.unsettled = unsettled
		st, _, s := computeStatus(lbc, obs, at(d))
		return st, s
	}
	st, s := run(0, nil, "MASTER", "BACKUP")
	if st.Masters != "192.0.2.10=m0" || s.after != 0 || len(s.unsettled) != 0 {
		t.Fatalf("settled: masters %q, %+v", st.Masters, s)
	}
	lbc.Status = st

	// m0 stepped down, m1's report is not in yet: m0 stays shown.
	st, s = run(100*time.Millisecond, nil, "BACKUP", "BACKUP")
	if st.Masters != "192.0.2.10=m0" || s.after != settleTime || !s.unsettled["192.0.2.10"].Equal(t0.Add(100*time.Millisecond)) {
		t.Errorf("no master for 0s: masters %q, %+v; want m0 still, a look again after %v", st.Masters, s, settleTime)
	}
	if c := condition(st, v1alpha1.ConditionReady); c.Status != metav1.ConditionTrue {
		t.Errorf("no master for 0s: Ready %s/%s, want True", c.Status, c.Reason)
	}
	st2, s2 := run(900*time.Millisecond, s.unsettled, "BACKUP", "MASTER", "MASTER")
	if st2.Masters != "192.0.2.10=m0" || s2.after != 200*time.Millisecond {
		t.Errorf("two masters, 0.8s after the first transient report: masters %q, %+v; want m0 still", st2.Masters, s2)
	}
	// m1's report arrives: shown at once.
	st3, s3 := run(950*time.Millisecond, s2.unsettled, "BACKUP", "MASTER", "BACKUP")
	if st3.Masters != "192.0.2.10=m1" || s3.after != 0 || len(s3.unsettled) != 0 {
		t.Errorf("new master: masters %q, %+v; want m1 at once", st3.Masters, s3)
	}
	// No master for longer than settleTime: shown.
	st4, s4 := run(100*time.Millisecond+settleTime, s.unsettled, "BACKUP", "BACKUP")
	if st4.Masters != "192.0.2.10=-" || s4.after != 0 {
		t.Errorf("no master for %v: masters %q, %+v; want none shown", settleTime, st4.Masters, s4)
	}
	if c := condition(st4, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonNoMaster {
		t.Errorf("no master for %v: Ready %s/%s, want False/NoMaster", settleTime, c.Status, c.Reason)
	}
}
