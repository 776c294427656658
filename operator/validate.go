package operator

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/api/validation"
)

// conflicts returns what keeps lbc from being rendered next to the other
// LoadBalancerConfigs of the cluster: a virtual IP address or a VRID (in one
// family on one interface) that an earlier one uses
// (validation.ValidateLoadBalancerConfigSet), or an agentStatusPort or a
// BGP peer that an earlier one uses on a common node. Objects being deleted do not count.
// members are lbc's member nodes.
//
// Of two conflicting objects, the one refused is the one whose current
// spec does not run yet (a new object, or one just edited into the
// conflict), so that no change ever takes the VIPs of a working object;
// between two that both run (or both do not), the later created, then the
// later by name.
func conflicts(lbc *v1alpha1.LoadBalancerConfig, all []v1alpha1.LoadBalancerConfig, members []string, nodes []corev1.Node) field.ErrorList {
	var set []v1alpha1.LoadBalancerConfig
	for i := range all {
		if all[i].Name != lbc.Name && all[i].DeletionTimestamp == nil {
			set = append(set, all[i])
		}
	}
	set = append(set, *lbc)
	sort.SliceStable(set, func(i, j int) bool { return before(&set[i], &set[j]) })

	var errs field.ErrorList
	prefix := field.NewPath("loadBalancerConfig").Key(lbc.Name).String() + "."
	for _, e := range validation.ValidateLoadBalancerConfigSet(set) {
		if strings.HasPrefix(e.Field, prefix) {
			errs = append(errs, e)
		}
	}

	mine := map[string]bool{}
	for _, m := range members {
		mine[m] = true
	}
	port := statusPort(lbc)
	for i := range set {
		o := &set[i]
		if o.Name == lbc.Name {
			break // only the earlier ones
		}
		if statusPort(o) != port {
			continue
		}
		var common []string
		for _, n := range nodesOf(o, nodes) {
			if mine[n] {
				common = append(common, n)
			}
		}
		if len(common) == 0 {
			continue
		}
		errs = append(errs, field.Invalid(field.NewPath("spec", "agentStatusPort"), port, fmt.Sprintf(
			"port is already used by LoadBalancerConfig %q on node(s) %s: each LoadBalancerConfig runs its own agent on a node, so LoadBalancerConfigs that select a common node need different agentStatusPort values",
			o.Name, strings.Join(common, ", "))))
	}
	errs = append(errs, bgpConflicts(lbc, set, mine, nodes)...)
	return errs
}

// bgpConflicts returns the BGP peers of lbc that an earlier
// LoadBalancerConfig's agents on a common node already speak to: a router
// keeps one session per neighbour address, so two agents of one node
// cannot both peer with it (each would reset the other's session).
func bgpConflicts(lbc *v1alpha1.LoadBalancerConfig, set []v1alpha1.LoadBalancerConfig, mine map[string]bool, nodes []corev1.Node) field.ErrorList {
	peers := speaksTo(lbc)
	if len(peers) == 0 {
		return nil
	}
	var errs field.ErrorList
	for i := range set {
		o := &set[i]
		if o.Name == lbc.Name {
			break // only the earlier ones
		}
		theirs := speaksTo(o)
		if len(theirs) == 0 {
			continue
		}
		for j, p := range lbc.Spec.BGP.Peers {
			if !theirs[p.Address] {
				continue
			}
			var common []string
			for _, n := range nodesOf(o, nodes) {
				// Sessions from two distinct source addresses of the node
				// are two neighbours to the router.
				a, b := sourceAddress(lbc, n, p.Address), sourceAddress(o, n, p.Address)
				if mine[n] && (a == "" || b == "" || a == b) {
					common = append(common, n)
				}
			}
			if len(common) > 0 {
				errs = append(errs, field.Invalid(field.NewPath("spec", "bgp", "peers").Index(j).Child("address"), p.Address, fmt.Sprintf(
					"LoadBalancerConfig %q already peers with %s from node(s) %s: a router keeps one BGP session per node address; put the virtual IPs in mode bgp into one LoadBalancerConfig, select other nodes, or give each LoadBalancerConfig its own source address on those nodes (spec.bgp.byNode[].sourceAddresses)",
					o.Name, p.Address, strings.Join(common, ", "))))
			}
		}
	}
	return errs
}

// sourceAddress is the source address c's agent on node opens its session
// to peer from: spec.bgp.byNode's address of the peer's family, "" for the
// node's routing's choice.
func sourceAddress(c *v1alpha1.LoadBalancerConfig, node, peer string) string {
	pa, err := netip.ParseAddr(peer)
	if err != nil {
		return ""
	}
	for _, n := range c.Spec.BGP.ByNode {
		if n.NodeName != node {
			continue
		}
		for _, s := range n.SourceAddresses {
			if a, err := netip.ParseAddr(s); err == nil && a.Is4() == pa.Is4() {
				return a.String()
			}
		}
	}
	return ""
}

// speaksTo returns the peer addresses c's agents open BGP sessions to:
// those of spec.bgp.peers when a virtual IP is in mode bgp.
func speaksTo(c *v1alpha1.LoadBalancerConfig) map[string]bool {
	b := c.Spec.BGP
	if b == nil || b.ExternalSpeaker != nil || len(b.Peers) == 0 {
		return nil
	}
	bgp := false
	for i := range c.Spec.VirtualIPs {
		bgp = bgp || c.Spec.VirtualIPs[i].IsBGP()
	}
	if !bgp {
		return nil
	}
	out := map[string]bool{}
	for _, p := range b.Peers {
		out[p.Address] = true
	}
	return out
}

// before orders LoadBalancerConfigs by precedence: those whose current
// spec runs first, then by creation, then by name.
func before(a, b *v1alpha1.LoadBalancerConfig) bool {
	if ea, eb := established(a), established(b); ea != eb {
		return ea
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// established reports whether the operator published c's current spec:
// its status describes its generation and names no problem that kept the
// spec from being published.
func established(c *v1alpha1.LoadBalancerConfig) bool {
	if c.Status.ObservedGeneration != c.Generation {
		return false
	}
	d := findCondition(c.Status.Conditions, v1alpha1.ConditionDegraded)
	if d == nil || d.ObservedGeneration != c.Generation {
		return false
	}
	switch d.Reason {
	case v1alpha1.ReasonInvalidSpec, v1alpha1.ReasonConflict, v1alpha1.ReasonRenderFailed, v1alpha1.ReasonNoNodesSelected:
		return false
	}
	return true
}

// statusPort is a LoadBalancerConfig's agentStatusPort with its default.
func statusPort(c *v1alpha1.LoadBalancerConfig) int32 {
	if c.Spec.AgentStatusPort == 0 {
		return v1alpha1.DefaultAgentStatusPort
	}
	return c.Spec.AgentStatusPort
}

// nodesOf returns the names of the nodes another LoadBalancerConfig runs an
// agent on, or is about to: its remembered members and the Nodes its
// selector matches.
func nodesOf(c *v1alpha1.LoadBalancerConfig, nodes []corev1.Node) []string {
	seen := map[string]bool{}
	var out []string
	for _, ns := range c.Status.Nodes {
		if !seen[ns.Name] {
			seen[ns.Name] = true
			out = append(out, ns.Name)
		}
	}
	for i := range nodes {
		if !seen[nodes[i].Name] && selects(c, &nodes[i]) {
			seen[nodes[i].Name] = true
			out = append(out, nodes[i].Name)
		}
	}
	sort.Strings(out)
	return out
}
