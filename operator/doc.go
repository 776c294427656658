// Package operator is `vipvs operator`: a controller-runtime manager that
// reconciles the cluster-scoped LoadBalancerConfig (api/v1alpha1).
//
// For each LoadBalancerConfig, a reconcile runs these phases; a phase that
// fails records a problem and stops, and the status is written in every
// case:
//
//  1. members (members.go): the Nodes that match spec.nodeSelector, with
//     their InternalIP addresses, plus the members remembered in
//     status.nodes whose Node object is gone from the API. A peer list never
//     shrinks because a Node vanished: such a member stays, rendered with
//     its remembered addresses, until it is named in the
//     vipvs.io/forget-nodes annotation. A member whose Node exists but no
//     longer matches leaves at once (event NodeLeft).
//  2. validation: api/validation.ValidateLoadBalancerConfig, and against
//     the other LoadBalancerConfigs (validate.go): no shared virtual IP
//     address, no shared VRID in one family on one interface, no shared
//     agentStatusPort on a common node, no BGP peer that two of them speak
//     to from one address of a common node. Of two conflicting objects, the one
//     whose current spec does not run yet (a new one, or one just edited
//     into the conflict) is refused (Degraded, reason Conflict), so that no
//     change takes the VIPs of a working object; otherwise the later
//     created.
//  3. secrets: spec.vrrp.passwordSecretRef, the caSecretRefs of HTTPS
//     health checks and the BGP peers' passwordSecretRefs, read from the
//     API server (never cached). A BGP key becomes a file of mode 0600 in
//     the node's Secret, which the companion writes beside the agent's
//     configuration (render.BGPPasswordFilePath, a new path for a new key
//     so that the agent reloads): the companion needs no
//     access to the referenced Secret.
//  4. render: render.Render, the renderer `vipvs render` uses.
//  5. publish (publish.go): one Secret per member node (an agent's
//     configuration may hold the VRRPv2 password: a ConfigMap is no place
//     for it), vipvs-<lbc>-<node> in the operator's namespace, in the
//     format of package companion, created or updated only when it
//     changed; the Secrets of nodes that left are deleted.
//  6. status (status.go): from the companions' reports on the Secrets
//     (NodeReports of the status contract, api/status/v1alpha1: states,
//     typed problem codes, never the agent's words), per node the rendered
//     and running configuration hashes and BGP sessions, per virtual IP its
//     master (mode bgp: the nodes that advertise it, NotAdvertised when
//     none does), and the
//     conditions Ready, Progressing and Degraded (with, among others, the
//     reasons ConfigRejected naming the spec's field and RouterFault naming
//     the node, router and interface); the same facts as metrics
//     (metrics.go). A virtual IP that the reports show with no master or
//     several keeps the master the status showed for up to a second (a VIP
//     that moves is not shown as lost).
//
// Events about a node (joined, left, forgotten, missing) are related to its
// Node: one series per node.
//
// While a spec cannot be rendered or published, the Secrets published
// before stay as they are: the agents keep running their configuration.
//
// The operator's cache holds only the Secrets it publishes (CacheOptions);
// the Secrets a LoadBalancerConfig references, in any namespace, are
// watched as metadata and read from the API server when rendering.
//
// A finalizer (Finalizer) makes deletion remove the Secrets first, so that
// the node companions take the agents away; the Secrets also have the
// LoadBalancerConfig as owner, for the garbage collector.
package operator
