// Package v1alpha1 is the status contract of vipvs, apiVersion
// status.vipvs.io/v1alpha1: what the agent reports about itself and what
// the node companion passes on to the operator.
//
// Two documents, both JSON:
//
//   - Report (kind AgentReport) is the agent's full status: what its status
//     server answers on GET /status, on its unix socket
//     (/run/vipvs/<lbc>.sock) and on its HTTP address. `vipvs status` prints
//     it; the node companion reads it.
//   - NodeReport (kind NodeReport) is the short form the node companion
//     writes into the vipvs.io/agent-status annotation of the node's Secret
//     (Summarize), from which the operator computes the
//     LoadBalancerConfig's status.
//
// Meaning travels in fields, never in prose: a configuration the agent
// cannot run is described by Problems, each with a Code (VIPNotInSubnet,
// InterfaceUnavailable, ConfigInvalid, ApplyFailed) and the router, VIP,
// interface or field it concerns; a router's state is one of the State
// constants. Message and Reason texts are for people and may change at any
// time: no component parses them.
//
// # Compatibility
//
// Within v1alpha1 fields are only added, never renamed, retyped or removed,
// and a reader ignores fields and codes it does not know (an unknown Code is
// shown with its Message). A document without apiVersion is read as
// v1alpha1 (agents and companions older than the field); a document of
// another apiVersion is refused by ParseNodeReport and CheckAPIVersion.
//
// # Watching a report
//
// The agent's GET /status answers with an ETag header, the report's Digest
// in quotes. A client that sends If-None-Match with that ETag and the query
// parameter wait=<duration> (at most MaxWait) gets the answer as soon as the
// report's digest differs, or 304 Not Modified when wait has passed: the
// node companion reports a change within a second without polling the agent
// busily. The digest covers what a NodeReport carries plus the running
// configuration's hash, not counters or timestamps.
package v1alpha1
