package operator

import (
	"bytes"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/companion"
	"github.com/vipvs/vipvs/render"
)

// A change that makes the agents restart a virtual router (its VRID,
// advertisement interval, VRRP version, addresses, unicast to multicast...)
// or restart altogether (the static pod: another image, other flags) is
// rolled out in steps: the backups first, the masters of the virtual IPs
// last and one at a time, each step only once the nodes of the previous one
// run their new configuration. Published to every node at once, such a
// change restarts every router of a VIP together: no node is master until
// Master_Down_Interval has passed, and the VIP is on no node for that long
// (the system test measured 0.8 s and several failed connections for a
// VRID change). Backups first, the master keeps the VIP until they run the
// new router; when the master's turn comes, its agent starts the new router
// Active in place of the old one (agent/handover.go), so that the VIP stays
// on the master and the backups, already on the new config, follow it.
//
// The backups whose routers restart (the agent keeps running) go in one
// step: none of them holds a VIP, and each step costs a file watch, a
// restart and a report (about 0.2 s in the system test), which would add
// up over many nodes. A new static pod restarts the agent itself, and goes
// one node at a time, backups too, the highest priority first, so that
// the other backups stay ready to take over meanwhile. While the routers
// of a VIP differ (another VRID: two virtual routers), the new one may get
// a master of its own if the master's turn comes later than its
// Master_Down_Interval: both hold the VIP and serve, which costs no
// connection, and the old one goes with the master's step.
//
// A change that every agent applies live (priorities, track checks, unicast
// peers) and a node that joins or leaves are published at once.

// rolloutNodeTimeout is how long a rollout waits for a node to run its new
// configuration before it goes on with the next node: a node whose agent
// does not report (the Node is down, the agent rejected the config) must
// not stop a change forever. The status says what the node runs.
const rolloutNodeTimeout = time.Minute

// rolloutState remembers since when the rollout waits for each node, by
// Secret name and config hash. Its zero value is ready to use.
type rolloutState struct {
	mu      sync.Mutex
	waiting map[string]time.Time
}

// since returns, for each key, since when the rollout waits for it: now for
// a key it did not wait for before. It forgets the keys not given.
func (s *rolloutState) since(keys []string, now time.Time) map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]time.Time, len(keys))
	for _, k := range keys {
		t, ok := s.waiting[k]
		if !ok {
			t = now
		}
		next[k] = t
	}
	s.waiting = next
	return next
}

// staged is what a rollout step publishes.
type staged struct {
	// publish holds, in the order of want, the desired Secret of each node
	// that may have it now, and the current Secret of each node held back.
	publish []*corev1.Secret
	// held maps the held-back nodes to the config hash they will get.
	held map[string]string
}

// stage decides which of the desired Secrets want (one per member node) are
// published now, given the published ones (by name) and the masters of the
// virtual IPs in the last status. See the comment at the top of the file.
func (r *Reconciler) stage(lbc *v1alpha1.LoadBalancerConfig, want []*corev1.Secret, existing map[string]*corev1.Secret, now time.Time) staged {
	out := staged{publish: make([]*corev1.Secret, len(want)), held: map[string]string{}}
	copy(out.publish, want)
	var candidates []int
	for i, w := range want {
		cur := existing[w.Name]
		if cur != nil && !upToDate(cur, w) && restarts(lbc.Name, cur, w) {
			candidates = append(candidates, i)
		}
	}
	if len(candidates) == 0 {
		return out
	}
	// Another node of the rollout (or of an earlier one) does not run its
	// published config yet: wait for it, up to rolloutNodeTimeout.
	var keys []string
	for _, w := range want {
		if cur := existing[w.Name]; cur != nil && inFlight(cur) {
			keys = append(keys, cur.Name+"/"+cur.Annotations[companion.AnnotationConfigHash])
		}
	}
	busy := false
	for _, t := range r.rollout.since(keys, now) {
		busy = busy || now.Sub(t) < rolloutNodeTimeout
	}
	next := map[int]bool{}
	if !busy {
		masters := vipMasters(lbc)
		sort.SliceStable(candidates, func(a, b int) bool {
			wa, wb := want[candidates[a]], want[candidates[b]]
			ma, mb := masters[nodeOf(wa)], masters[nodeOf(wb)]
			if ma != mb {
				return !ma
			}
			pa, pb := priority(lbc.Name, existing[wa.Name]), priority(lbc.Name, existing[wb.Name])
			if pa != pb {
				return pa > pb
			}
			return nodeOf(wa) < nodeOf(wb)
		})
		next[candidates[0]] = true
		// The backups go together when only their routers restart
		// (sorted: the backups come first).
		first := want[candidates[0]]
		if !masters[nodeOf(first)] && !restartsAgent(lbc.Name, existing[first.Name], first) {
			for _, i := range candidates[1:] {
				w := want[i]
				if masters[nodeOf(w)] || restartsAgent(lbc.Name, existing[w.Name], w) {
					break
				}
				next[i] = true
			}
		}
	}
	for _, i := range candidates {
		if next[i] {
			continue
		}
		out.publish[i] = existing[want[i].Name]
		out.held[nodeOf(want[i])] = want[i].Annotations[companion.AnnotationConfigHash]
	}
	return out
}

// inFlight reports whether the node of a published Secret has been given a
// config its agent does not run yet (and runs another one).
func inFlight(s *corev1.Secret) bool {
	running := s.Annotations[companion.AnnotationRunningConfigHash]
	return running != "" && running != s.Annotations[companion.AnnotationConfigHash]
}

// nodeOf returns the node name of a node's Secret.
func nodeOf(s *corev1.Secret) string { return s.Annotations[annotationNodeName] }

// vipMasters returns the nodes that were master of a virtual IP in the last
// status.
func vipMasters(lbc *v1alpha1.LoadBalancerConfig) map[string]bool {
	m := map[string]bool{}
	for _, v := range lbc.Status.VIPs {
		for _, n := range strings.Split(v.MasterNode, "+") {
			if n != "" {
				m[n] = true
			}
		}
	}
	return m
}

// priority returns the highest router priority of the agent config in a
// node's Secret (0 when it cannot be read).
func priority(lbc string, s *corev1.Secret) int32 {
	c, _ := agentConfig(lbc, s)
	var p int32
	for _, vr := range c.VirtualRouters {
		if vr.Priority != nil && *vr.Priority > p {
			p = *vr.Priority
		}
	}
	return p
}

// agentConfig decodes the agent config a node's Secret carries, and
// returns the other files it carries by path.
func agentConfig(lbc string, s *corev1.Secret) (*agentv1alpha1.AgentConfig, map[string][]byte) {
	files, err := companion.DecodeFiles(s)
	if err != nil {
		return &agentv1alpha1.AgentConfig{}, nil
	}
	path := render.AgentConfigPath(lbc, nodeOf(s))
	c := &agentv1alpha1.AgentConfig{}
	others := map[string][]byte{}
	for _, f := range files {
		if f.Path == path {
			if err := yaml.Unmarshal(f.Data, c); err != nil {
				return &agentv1alpha1.AgentConfig{}, nil
			}
			continue
		}
		others[f.Path] = f.Data
	}
	return c, others
}

// restarts reports whether going from the files of Secret cur to those of
// want restarts a virtual router of the node's agent, or the agent: another
// static pod, another bgp section or BGP key file (the BGP sessions may
// reset), or a router that stays but changes more than its priority,
// track checks and unicast peers (what the agent applies live; the IPVS
// services and the node's checks are not the router's). A router added or
// removed restarts no other one.
func restarts(lbc string, cur, want *corev1.Secret) bool {
	if restartsAgent(lbc, cur, want) {
		return true
	}
	a, _ := agentConfig(lbc, cur)
	b, _ := agentConfig(lbc, want)
	old := map[string]agentv1alpha1.VirtualRouter{}
	for _, vr := range a.VirtualRouters {
		old[vr.Name] = vr
	}
	for _, vr := range b.VirtualRouters {
		o, ok := old[vr.Name]
		if !ok {
			continue
		}
		if (len(o.UnicastPeers) == 0) != (len(vr.UnicastPeers) == 0) {
			return true // between multicast and unicast
		}
		o.Priority, o.TrackChecks, o.PreemptAfterChecks, o.UnicastPeers = vr.Priority, vr.TrackChecks, vr.PreemptAfterChecks, vr.UnicastPeers
		o.VirtualServices = vr.VirtualServices // the balancer's, not the router's
		if !reflect.DeepEqual(o, vr) {
			return true
		}
	}
	return false
}

// restartsAgent reports whether going from the files of Secret cur to
// those of want restarts the node's agent: a file other than the agent
// config (the static pod) changes.
func restartsAgent(lbc string, cur, want *corev1.Secret) bool {
	a, aFiles := agentConfig(lbc, cur)
	b, bFiles := agentConfig(lbc, want)
	if len(aFiles) != len(bFiles) {
		return true
	}
	for p, d := range aFiles {
		if !bytes.Equal(d, bFiles[p]) {
			return true
		}
	}
	// A changed bgp section: the speaker's sessions may reset. One node at
	// a time, as for a restart of the agent, so that the other nodes keep
	// advertising the bgp virtual IPs.
	return !reflect.DeepEqual(a.BGP, b.BGP)
}

// withHeld returns the published Secrets by node as the status should see
// them: a node held back by the rollout is rendered its new config (it
// does not run it yet: the status says the change is rolling out).
func withHeld(published map[string]*corev1.Secret, held map[string]string) map[string]*corev1.Secret {
	if len(held) == 0 {
		return published
	}
	out := make(map[string]*corev1.Secret, len(published))
	for n, s := range published {
		if h, ok := held[n]; ok && s != nil {
			s = s.DeepCopy()
			s.Annotations[companion.AnnotationConfigHash] = h
		}
		out[n] = s
	}
	return out
}

// heldNodes returns the names of the held-back nodes, sorted.
func heldNodes(held map[string]string) []string {
	names := make([]string, 0, len(held))
	for n := range held {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
