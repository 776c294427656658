// Package node is the node companion, `vipvs node`: one per node (a
// DaemonSet running the vipvs image), it writes the files that the operator
// publishes for its node onto the host and reports the local agents' status
// back, so that the agent itself never needs API credentials.
//
// The operator publishes, per LoadBalancerConfig and member node, one
// ConfigMap in its namespace, labelled vipvs.io/load-balancer-config and
// vipvs.io/node (see ConfigMap format below). The companion watches only the
// ConfigMaps of its node and, for each:
//
//   - writes every file below --host-root (Writer): a temporary file in the
//     same directory, fsync, rename; only when the content or the mode
//     changed; never through a symbolic link that leads out of the host root;
//   - reads the agent's status from its unix socket
//     (render.SocketPath, agent/status.Fetch);
//   - patches the ConfigMap's annotations vipvs.io/running-config-hash,
//     vipvs.io/agent-status and vipvs.io/agent-error, from which the operator
//     computes the LoadBalancerConfig's status.
//
// The static pod is written last, after the agent's config. When a
// ConfigMap disappears (the node left the LoadBalancerConfig, or the
// LoadBalancerConfig was deleted), the companion removes the files it wrote
// for it, the static pod first: kubelet then stops the agent, which hands
// its VIPs over gracefully.
//
// # ConfigMap format
//
// The data holds one key per file; the annotation vipvs.io/files maps them
// to host paths and modes, as JSON: [{"path": "/etc/vipvs/api/nodes/m0.yaml",
// "key": "m0.yaml", "mode": "0644"}, ...]. The annotation
// vipvs.io/config-hash is the hash (sha256, hex) of the agent configuration,
// the one the agent reports once it runs it. Files that are not UTF-8 text
// are in binaryData. The types and functions of configmap.go encode and
// decode this format; the operator uses them too.
package node
