package operator

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/render"
)

// member is a node of a LoadBalancerConfig.
type member struct {
	name string
	// addrs are the addresses it is rendered with; empty for a selected
	// node that has no InternalIP yet (pending: not rendered).
	addrs []netip.Addr
	// node is its Node object, nil when the Node is gone from the API.
	node *corev1.Node
	// message says what is special about it, if anything.
	message string
}

// missing reports whether the member's Node object is gone from the API.
func (m *member) missing() bool { return m.node == nil }

// pending reports whether the member is selected but not rendered yet.
func (m *member) pending() bool { return len(m.addrs) == 0 }

// reporting reports whether the member's Node says its kubelet is alive:
// the companion's reports of a node that is gone or not ready may be stale.
// A Node without a Ready condition (not yet reported) counts as alive.
func (m *member) reporting() bool {
	if m.node == nil {
		return false
	}
	for _, c := range m.node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return true
}

// membership is the outcome of selecting the nodes of a
// LoadBalancerConfig.
type membership struct {
	// members are the nodes, sorted by name: rendered ones and pending ones.
	members []member
	// joined, left and forgotten name the nodes that became members, that
	// stopped matching spec.nodeSelector, and that were gone from the API
	// and named in the forget-nodes annotation; missing names the members
	// whose Node object is gone.
	joined, left, forgotten, missing []string
}

// rendered returns the members to render (those with addresses), as the
// renderer takes them.
func (ms *membership) rendered() []render.Node {
	var out []render.Node
	for _, m := range ms.members {
		if !m.pending() {
			out = append(out, render.Node{Name: m.name, Addresses: m.addrs})
		}
	}
	return out
}

// selectMembers decides the member nodes of lbc from the Node objects and
// the members it remembers in status.nodes. The rules, so that a peer list
// never shrinks by accident:
//   - a Node that matches spec.nodeSelector is a member, rendered with its
//     InternalIP addresses (or, when it reports none, the remembered ones;
//     without either it is pending and not rendered);
//   - a remembered member whose Node exists but no longer matches leaves;
//   - a remembered member whose Node is gone stays, with its remembered
//     addresses, until it is named in the vipvs.io/forget-nodes
//     annotation.
func selectMembers(lbc *v1alpha1.LoadBalancerConfig, nodes []corev1.Node) (membership, error) {
	sel, err := metav1.LabelSelectorAsSelector(&lbc.Spec.NodeSelector)
	if err != nil {
		return membership{}, fmt.Errorf("spec.nodeSelector: %w", err)
	}
	byName := make(map[string]*corev1.Node, len(nodes))
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	prev := map[string]v1alpha1.NodeStatus{}
	for _, ns := range lbc.Status.Nodes {
		prev[ns.Name] = ns
	}
	forget := forgetNodes(lbc)

	var ms membership
	for i := range nodes {
		n := &nodes[i]
		if !sel.Matches(labels.Set(n.Labels)) {
			continue
		}
		m := member{name: n.Name, node: n, addrs: internalIPs(n)}
		p, known := prev[n.Name]
		remembered := parseAddrs(p.Addresses)
		if len(m.addrs) == 0 {
			if len(remembered) > 0 {
				m.addrs = remembered
				m.message = "the Node reports no InternalIP address: rendered with the addresses remembered in status"
			} else {
				m.message = "the Node has no InternalIP address yet: not rendered until it has one"
			}
		}
		if !m.pending() && (!known || len(remembered) == 0) {
			ms.joined = append(ms.joined, n.Name)
		}
		ms.members = append(ms.members, m)
	}
	for _, p := range lbc.Status.Nodes {
		n, exists := byName[p.Name]
		switch {
		case exists && sel.Matches(labels.Set(n.Labels)):
			// selected above
		case len(parseAddrs(p.Addresses)) == 0:
			// was pending, never rendered: nothing to leave
		case exists:
			ms.left = append(ms.left, p.Name)
		case forget[p.Name]:
			ms.forgotten = append(ms.forgotten, p.Name)
		default:
			ms.missing = append(ms.missing, p.Name)
			ms.members = append(ms.members, member{
				name:  p.Name,
				addrs: parseAddrs(p.Addresses),
				message: fmt.Sprintf("the Node object is gone from the API: the node stays a peer of the others, "+
					"rendered with its remembered addresses. If it is gone for good, remove it with "+
					"kubectl annotate loadbalancerconfig %s %s=%s", lbc.Name, v1alpha1.AnnotationForgetNodes, p.Name),
			})
		}
	}
	sort.Slice(ms.members, func(i, j int) bool { return ms.members[i].name < ms.members[j].name })
	for _, l := range [][]string{ms.joined, ms.left, ms.forgotten, ms.missing} {
		sort.Strings(l)
	}
	return ms, nil
}

// forgetNodes returns the node names of the forget-nodes annotation.
func forgetNodes(lbc *v1alpha1.LoadBalancerConfig) map[string]bool {
	out := map[string]bool{}
	for _, n := range strings.Split(lbc.Annotations[v1alpha1.AnnotationForgetNodes], ",") {
		if n = strings.TrimSpace(n); n != "" {
			out[n] = true
		}
	}
	return out
}

// internalIPs returns a Node's InternalIP addresses in its order, without
// repetitions and without what does not parse.
func internalIPs(n *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		if !containsAddr(out, ip) {
			out = append(out, ip)
		}
	}
	return out
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, b := range as {
		if a == b {
			return true
		}
	}
	return false
}

// parseAddrs parses remembered addresses, skipping what does not parse.
func parseAddrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// addrStrings formats addresses for status.nodes[].addresses.
func addrStrings(as []netip.Addr) []string {
	if len(as) == 0 {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// selects reports whether lbc has node as a member or selects it.
func selects(lbc *v1alpha1.LoadBalancerConfig, n *corev1.Node) bool {
	for _, ns := range lbc.Status.Nodes {
		if ns.Name == n.Name {
			return true
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(&lbc.Spec.NodeSelector)
	if err != nil || sel.Empty() {
		return false
	}
	return sel.Matches(labels.Set(n.Labels))
}
