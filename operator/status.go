package operator

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/companion"
)

// Limits of status texts (the CRD's and metav1.Condition's).
const (
	maxNodeMessage      = 1024
	maxConditionMessage = 32768
	maxMasterNode       = 253
	maxMasters          = 8192
)

// problem is why a LoadBalancerConfig was not rendered or delivered.
type problem struct {
	// reason is a v1alpha1.Reason* constant.
	reason string
	// message says what is wrong, naming the field, and what to do.
	message string
}

// observed is what a reconcile saw and did: the input of computeStatus.
type observed struct {
	// members are the nodes status.nodes lists: the new members once
	// published, otherwise the previous ones.
	members []member
	// problem is what kept the spec from being rendered and published.
	problem *problem
	// published are the published Secrets by node name.
	published map[string]*corev1.Secret
	// requeue asks for another reconcile soon (a write lost a race).
	requeue bool
	// blind means nothing could be observed (the API did not answer a
	// list): the status, and the members it remembers, stay as they are.
	blind bool
	// unsettled is, by virtual IP address, since when the reports show it
	// with no master or several (masterSettle).
	unsettled map[string]time.Time
}

// settleTime is how long the reports may show a virtual IP with no master,
// or with several, before the status does: while a VIP moves, the old
// master's companion may report before the new master's, and the status
// would flicker ("-", "a+b") for that moment. Until then the status keeps
// the single master it showed.
const settleTime = time.Second

// settled is what computeStatus says of the virtual IPs it holds back.
type settled struct {
	// unsettled is the new observed.unsettled.
	unsettled map[string]time.Time
	// after is when to look again (0: nothing held back).
	after time.Duration
}

// masterSettle remembers observed.unsettled per LoadBalancerConfig between
// reconciles.
type masterSettle struct {
	mu    sync.Mutex
	since map[string]map[string]time.Time // by LoadBalancerConfig
}

// get returns what is remembered of lbc.
func (m *masterSettle) get(lbc string) map[string]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.since[lbc]
}

// put remembers u for lbc.
func (m *masterSettle) put(lbc string, u map[string]time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.since == nil {
		m.since = map[string]map[string]time.Time{}
	}
	if len(u) == 0 {
		delete(m.since, lbc)
		return
	}
	m.since[lbc] = u
}

// forget drops what is remembered of lbc.
func (m *masterSettle) forget(lbc string) { m.put(lbc, nil) }

// report is what a node's Secret says of the node.
type report struct {
	rendered, running string
	// agent is the agent's short status; nil when the companion could not
	// read it, or when the node's report may be stale.
	agent *statusv1.NodeReport
	// agentError is the companion's error annotation.
	agentError string
}

func readReport(m *member, s *corev1.Secret) (report, string) {
	if s == nil {
		return report{}, ""
	}
	r := report{
		rendered:   s.Annotations[companion.AnnotationConfigHash],
		running:    s.Annotations[companion.AnnotationRunningConfigHash],
		agentError: s.Annotations[companion.AnnotationAgentError],
	}
	raw, ok := s.Annotations[companion.AnnotationAgentStatus]
	if !ok {
		return r, ""
	}
	a, err := statusv1.ParseNodeReport(raw)
	if err != nil {
		return r, fmt.Sprintf("the %s annotation of its Secret cannot be read: %v", companion.AnnotationAgentStatus, err)
	}
	if m.reporting() {
		r.agent = &a
	}
	return r, ""
}

// computeStatus computes the status of lbc from what the reconcile
// observed: status.nodes from the members and their Secrets' reports,
// status.vips and status.masters from the agents' reports, and the
// conditions (old ones keep their transition time while their status does
// not change). It also returns, by virtual IP address, the nodes that
// report being its master, sorted (status.vips[].masterNode may be
// truncated), and the virtual IPs whose masters it holds back (settleTime).
func computeStatus(lbc *v1alpha1.LoadBalancerConfig, obs observed, now metav1.Time) (v1alpha1.LoadBalancerConfigStatus, map[string][]string, settled) {
	st := v1alpha1.LoadBalancerConfigStatus{
		ObservedGeneration: lbc.Generation,
		Conditions:         append([]metav1.Condition(nil), lbc.Status.Conditions...),
	}
	var (
		active                           int // members that should run an agent
		rolling, down, rejected, missing []string
		undelivered                      []string
		downMsg, rejectedMsg, undelivMsg string
		agents                           = map[string]*statusv1.NodeReport{}
		faults                           []string
	)
	for i := range obs.members {
		m := &obs.members[i]
		ns := v1alpha1.NodeStatus{Name: m.name, Addresses: addrStrings(m.addrs)}
		var msgs []string
		if m.message != "" {
			msgs = append(msgs, m.message)
		}
		published := obs.published[m.name]
		r, parseErr := readReport(m, published)
		ns.RenderedConfigHash, ns.RunningConfigHash = r.rendered, r.running
		switch {
		case m.pending():
		case m.missing():
			missing = append(missing, m.name)
		case published == nil:
			active++
			rolling = append(rolling, m.name)
			msgs = append(msgs, "its files are not published yet")
		case !m.reporting():
			active++
			down = append(down, m.name)
			msgs = append(msgs, "the Node is not Ready: its agent's last report may be stale")
			downMsg = firstMsg(downMsg, "the Node is not Ready")
		case r.agent != nil:
			active++
			ns.Running = true
			agents[m.name] = r.agent
			if r.agent.ConfigError != "" || len(r.agent.ConfigProblems) > 0 {
				rejected = append(rejected, m.name)
				cerr := explainAgentError(lbc, r.agent)
				msgs = append(msgs, "the agent rejected (part of) its newest configuration: "+cerr)
				rejectedMsg = firstMsg(rejectedMsg, cerr)
			} else if r.running != r.rendered {
				rolling = append(rolling, m.name)
				msgs = append(msgs, "the agent does not run the rendered configuration yet")
			}
			for _, rt := range r.agent.Routers {
				if rt.State == statusv1.StateFault {
					f := routerFault(lbc, m.name, rt)
					faults = append(faults, f)
					msgs = append(msgs, f)
				}
			}
			ns.BGPPeers = bgpPeers(r.agent.BGPPeers)
			msgs = append(msgs, bgpProblems(r.agent)...)
			if r.agentError != "" {
				undelivered = append(undelivered, m.name)
				msgs = append(msgs, r.agentError)
				undelivMsg = firstMsg(undelivMsg, r.agentError)
			}
		case r.agentError != "":
			active++
			down = append(down, m.name)
			msgs = append(msgs, r.agentError)
			downMsg = firstMsg(downMsg, r.agentError)
		default:
			active++
			rolling = append(rolling, m.name)
			if parseErr != "" {
				msgs = append(msgs, parseErr)
			} else {
				msgs = append(msgs, "waiting for the node companion's first report")
			}
		}
		ns.Message = truncate(strings.Join(msgs, "; "), maxNodeMessage)
		st.Nodes = append(st.Nodes, ns)
	}

	var masters []string
	var noMaster, split, notAdvertised []string
	vipMasters := make(map[string][]string, len(lbc.Spec.VirtualIPs))
	settle := settled{unsettled: map[string]time.Time{}}
	for _, v := range lbc.Spec.VirtualIPs {
		if v.IsBGP() {
			// Every healthy node advertises it (ECMP): no master, nothing
			// to settle.
			adv := advertisers(agents, v.Name)
			st.VIPs = append(st.VIPs, v1alpha1.VIPStatus{Name: v.Name, Address: v.Address, Mode: v1alpha1.AnnouncementBGP, AdvertisedBy: adv})
			shown := "bgp:" + strings.Join(adv, "+")
			if len(adv) == 0 {
				shown = "bgp:-"
				notAdvertised = append(notAdvertised, fmt.Sprintf("%s (%s)", v.Name, v.Address))
			}
			masters = append(masters, v.Address+"="+shown)
			continue
		}
		var ms []string
		for name, a := range agents {
			for _, rt := range a.Routers {
				if rt.Name == v.Name && rt.State == statusv1.StateMaster {
					ms = append(ms, name)
				}
			}
		}
		sort.Strings(ms)
		if len(ms) != 1 {
			since, ok := obs.unsettled[v.Address]
			if !ok {
				since = now.Time
			}
			settle.unsettled[v.Address] = since
			// Only a node that still reports (a member, Ready, its agent
			// answering) is held: one that left is not master any more.
			if prev := previousMaster(lbc, v); agents[prev] != nil && now.Sub(since) < settleTime {
				ms = []string{prev}
				if left := settleTime - now.Sub(since); settle.after == 0 || left < settle.after {
					settle.after = left
				}
			}
		}
		vipMasters[v.Address] = ms
		vs := v1alpha1.VIPStatus{Name: v.Name, Address: v.Address, MasterNode: truncate(strings.Join(ms, "+"), maxMasterNode)}
		st.VIPs = append(st.VIPs, vs)
		shown := vs.MasterNode
		switch len(ms) {
		case 0:
			shown = "-"
			noMaster = append(noMaster, fmt.Sprintf("%s (%s)", v.Name, v.Address))
		case 1:
		default:
			split = append(split, fmt.Sprintf("%s (%s): %s", v.Name, v.Address, strings.Join(ms, ", ")))
		}
		masters = append(masters, v.Address+"="+shown)
	}
	st.Masters = truncate(strings.Join(masters, ","), maxMasters)

	// Degraded: everything that needs attention, the most important first.
	type finding struct{ reason, message string }
	var degraded []finding
	if p := obs.problem; p != nil {
		degraded = append(degraded, finding{p.reason, p.message})
	}
	if len(undelivered) > 0 {
		degraded = append(degraded, finding{v1alpha1.ReasonDeliveryFailed,
			"the node companion cannot write the files on " + onNodes(undelivered, undelivMsg)})
	}
	if len(down) > 0 {
		degraded = append(degraded, finding{v1alpha1.ReasonAgentNotRunning,
			"the agent does not run or does not answer on " + onNodes(down, downMsg)})
	}
	if len(rejected) > 0 {
		degraded = append(degraded, finding{v1alpha1.ReasonConfigRejected,
			"the agent rejected the rendered configuration on " + onNodes(rejected, rejectedMsg)})
	}
	if len(faults) > 0 {
		degraded = append(degraded, finding{v1alpha1.ReasonRouterFault,
			"a virtual router cannot run (FAULT) on " + strings.Join(faults, "; ")})
	}
	if len(missing) > 0 {
		degraded = append(degraded, finding{v1alpha1.ReasonNodeMissing, fmt.Sprintf(
			"the Node object of %s is gone from the API: it stays a peer of the other nodes until it is named in the %s annotation (or comes back and no longer matches spec.nodeSelector)",
			nodeList(missing), v1alpha1.AnnotationForgetNodes)})
	}
	if len(split) > 0 {
		degraded = append(degraded, finding{v1alpha1.ReasonMultipleMasters,
			"more than one node is master (split brain) of " + strings.Join(split, "; ")})
	}
	if len(noMaster) > 0 && len(rolling) == 0 && active > 0 {
		degraded = append(degraded, finding{v1alpha1.ReasonNoMaster,
			"no node is master of " + strings.Join(noMaster, ", ")})
	}
	if len(notAdvertised) > 0 && len(rolling) == 0 && active > 0 {
		degraded = append(degraded, finding{v1alpha1.ReasonNotAdvertised, notAdvertisedMsg(notAdvertised)})
	}

	gen := lbc.Generation
	if len(degraded) > 0 {
		msgs := make([]string, len(degraded))
		for i, d := range degraded {
			msgs[i] = d.message
		}
		setCondition(&st.Conditions, metav1.Condition{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionTrue,
			Reason: degraded[0].reason, Message: truncate(strings.Join(msgs, "; "), maxConditionMessage), ObservedGeneration: gen}, now)
	} else {
		setCondition(&st.Conditions, metav1.Condition{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionFalse,
			Reason: v1alpha1.ReasonAsExpected, Message: "nothing needs attention", ObservedGeneration: gen}, now)
	}

	rollingMsg := ""
	if len(rolling) > 0 {
		rollingMsg = fmt.Sprintf("%d of %d nodes run their rendered configuration; waiting for %s",
			active-len(rolling), active, nodeList(rolling))
		setCondition(&st.Conditions, metav1.Condition{Type: v1alpha1.ConditionProgressing, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonRollingOut, Message: truncate(rollingMsg, maxConditionMessage), ObservedGeneration: gen}, now)
	} else {
		setCondition(&st.Conditions, metav1.Condition{Type: v1alpha1.ConditionProgressing, Status: metav1.ConditionFalse,
			Reason: v1alpha1.ReasonAsExpected, Message: "no configuration is being rolled out", ObservedGeneration: gen}, now)
	}

	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonAsExpected,
		Message: "every virtual IP has a master and every node runs its rendered configuration", ObservedGeneration: gen}
	switch {
	case obs.problem != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, obs.problem.reason, obs.problem.message
	case len(rolling) > 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.ReasonRollingOut, rollingMsg
	case len(degraded) > 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, degraded[0].reason, degraded[0].message
	case len(noMaster) > 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.ReasonNoMaster, "no node is master of "+strings.Join(noMaster, ", ")
	case len(notAdvertised) > 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.ReasonNotAdvertised, notAdvertisedMsg(notAdvertised)
	}
	ready.Message = truncate(ready.Message, maxConditionMessage)
	setCondition(&st.Conditions, ready, now)
	return st, vipMasters, settle
}

// advertisers returns, sorted, the nodes whose agents report advertising
// the bgp router name.
func advertisers(agents map[string]*statusv1.NodeReport, name string) []string {
	var out []string
	for node, a := range agents {
		for _, rt := range a.Routers {
			if rt.Name == name && rt.State == statusv1.StateAdvertised {
				out = append(out, node)
			}
		}
	}
	sort.Strings(out)
	if len(out) > v1alpha1.MaxNodes {
		out = out[:v1alpha1.MaxNodes]
	}
	return out
}

func notAdvertisedMsg(vips []string) string {
	return "no node advertises the virtual IP in mode bgp " + strings.Join(vips, ", ") +
		": on every node a track check fails, the node drains, or its BGP speaker cannot run (see status.nodes[].message and bgpPeers)"
}

// bgpPeers are a node's BGP sessions for status.nodes[].bgpPeers.
func bgpPeers(in []statusv1.BGPPeerSummary) []v1alpha1.BGPPeerStatus {
	var out []v1alpha1.BGPPeerStatus
	seen := map[string]bool{}
	for _, p := range in {
		if seen[p.Address] || len(out) == v1alpha1.MaxBGPPeers {
			continue // a list map keyed by address, at most 16
		}
		seen[p.Address] = true
		out = append(out, v1alpha1.BGPPeerStatus{Address: truncate(p.Address, 45), State: truncate(p.State, 32), BFD: truncate(p.BFD, 32), Advertised: int32(min(p.Advertised, 1<<31-1))})
	}
	return out
}

// bgpProblems says what is wrong with a node's announcement over BGP:
// sessions that are not established, BFD sessions that are not up, the
// speaker's error, and the bgp routers it withdrew and why.
func bgpProblems(a *statusv1.NodeReport) []string {
	var msgs []string
	if a.BGPError != "" {
		msgs = append(msgs, "BGP: "+a.BGPError)
	}
	for _, p := range a.BGPPeers {
		switch {
		case p.State != statusv1.BGPStateEstablished:
			state := p.State
			if state == "" {
				state = "not running"
			}
			msgs = append(msgs, fmt.Sprintf("the BGP session to %s is %s", p.Address, state))
		case p.BFD != "" && p.BFD != statusv1.BFDStateUp:
			msgs = append(msgs, fmt.Sprintf("the BFD session to %s is %s", p.Address, p.BFD))
		}
	}
	for _, rt := range a.Routers {
		if rt.State == statusv1.StateWithdrawn {
			msg := fmt.Sprintf("it withdrew %s", rt.Name)
			if rt.Reason != "" {
				msg += ": " + rt.Reason
			}
			msgs = append(msgs, msg)
		}
	}
	return msgs
}

// previousMaster returns the single master node the status shows for v,
// or "" when it shows none or several.
func previousMaster(lbc *v1alpha1.LoadBalancerConfig, v v1alpha1.VirtualIP) string {
	for _, vs := range lbc.Status.VIPs {
		if vs.Name == v.Name && vs.Address == v.Address && vs.MasterNode != "" && !strings.Contains(vs.MasterNode, "+") {
			return vs.MasterNode
		}
	}
	return ""
}

// firstMsg keeps the first node's message for a condition.
func firstMsg(cur, msg string) string {
	if cur != "" {
		return cur
	}
	return msg
}

// onNodes says where something happens and, for the first node, what:
// "node a: msg", "nodes a, b (a: msg)".
func onNodes(names []string, msg string) string {
	if len(names) == 1 {
		return fmt.Sprintf("node %s: %s", names[0], msg)
	}
	return fmt.Sprintf("nodes %s (%s: %s)", strings.Join(names, ", "), names[0], msg)
}

// nodeList names nodes for a message: "node a", "nodes a, b".
func nodeList(names []string) string {
	if len(names) == 1 {
		return "node " + names[0]
	}
	return "nodes " + strings.Join(names, ", ")
}

// setCondition sets c in conds, keeping the transition time of a condition
// of the same type and status.
func setCondition(conds *[]metav1.Condition, c metav1.Condition, now metav1.Time) {
	c.LastTransitionTime = now
	for i := range *conds {
		old := &(*conds)[i]
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		*old = c
		return
	}
	*conds = append(*conds, c)
}

// findCondition returns the condition of type t, or nil.
func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// truncate shortens s to at most n bytes, on a rune boundary, marking the
// cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !runeStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func runeStart(b byte) bool { return b&0xC0 != 0x80 }

// explainAgentError says why an agent does not run its newest
// configuration: each typed problem, and for one that comes from a field of
// the LoadBalancerConfig, that field's path, so that the status names what
// to fix. A report without problems (an agent older than the status
// contract's codes) is quoted as it is.
func explainAgentError(lbc *v1alpha1.LoadBalancerConfig, a *statusv1.NodeReport) string {
	if len(a.ConfigProblems) == 0 {
		return a.ConfigError
	}
	msgs := make([]string, 0, len(a.ConfigProblems))
	for _, p := range a.ConfigProblems {
		msgs = append(msgs, explainProblem(lbc, p))
	}
	return strings.Join(msgs, "; ")
}

// explainProblem words one problem of an agent for the LoadBalancerConfig's
// status.
func explainProblem(lbc *v1alpha1.LoadBalancerConfig, p statusv1.Problem) string {
	switch p.Code {
	case statusv1.CodeVIPNotInSubnet:
		for i, v := range lbc.Spec.VirtualIPs {
			if v.Name == p.Router {
				return fmt.Sprintf("%s: spec.virtualIPs[%d].address: %s is in no subnet of the node and spec.virtualIPs[%d].interface is empty: set the interface or use an address of the nodes' subnet (%s)",
					p.Code, i, v.Address, i, p.Message)
			}
		}
	case statusv1.CodeInterfaceUnavailable:
		for i, v := range lbc.Spec.VirtualIPs {
			if v.Name == p.Router {
				return fmt.Sprintf("%s: spec.virtualIPs[%d] (%s): the node's interface for it cannot be used (%s)", p.Code, i, v.Address, p.Message)
			}
		}
	}
	return fmt.Sprintf("%s: %s", p.Code, p.Message)
}

// routerFault says that node's router rt is in FAULT: which VIP, which
// interface, and the agent's reason.
func routerFault(lbc *v1alpha1.LoadBalancerConfig, node string, rt statusv1.RouterSummary) string {
	what := "router " + rt.Name
	for i, v := range lbc.Spec.VirtualIPs {
		if v.Name == rt.Name {
			what = fmt.Sprintf("router %s (spec.virtualIPs[%d], %s)", rt.Name, i, v.Address)
		}
	}
	msg := fmt.Sprintf("node %s: %s is FAULT", node, what)
	if rt.Interface != "" {
		msg += " on interface " + rt.Interface
	}
	if rt.Reason != "" {
		msg += ": " + rt.Reason
	}
	return msg + "; it holds no VIP until it recovers"
}
