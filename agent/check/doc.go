// Package check runs health probes and turns their results into a healthy or
// failed state with keepalived's rise/fall semantics.
//
// The same machinery serves two purposes in the agent:
//
//   - Track checks look at the node itself (the local API server's /readyz,
//     an interface, a script) and lower a virtual router's VRRP priority while
//     they fail.
//   - Real-server health checks look at an IPVS real server; a failed one is
//     drained (weight 0) and restored when it is healthy again. A new one
//     starts drained and its first probe, run at once, decides
//     ([Spec].FirstProbeDecides: keepalived's alpha mode).
//
// A [Checker] runs one probe: [TCP] (a connection is accepted), [HTTP] (a GET
// is answered with an expected status, over TLS for https:// URLs), [Exec]
// (a program exits with status 0) and [Interface] (a link is up). A [Tracker]
// counts consecutive results against rise and fall. A [Runner] runs one
// Checker every interval, bounds each probe by a timeout, feeds a Tracker and
// reports every result and every change of state through callbacks; a [Pool]
// runs a changing set of Runners (Sync keeps the unchanged ones running with
// their state): the agent's track checks and the balancer's real-server
// checks are each one Pool.
//
// Time comes from an injected k8s.io/utils/clock, so the scheduling is tested
// with a fake clock. The package keeps no global state.
package check
