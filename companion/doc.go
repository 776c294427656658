// Package companion is the node companion, `vipvs node`: one per node (a
// DaemonSet running the vipvs image), it writes the files that the operator
// publishes for its node onto the host and reports the local agents' status
// back, so that the agent itself never needs API credentials.
//
// The operator publishes, per LoadBalancerConfig and member node, one
// Secret in its namespace, labelled vipvs.io/load-balancer-config and
// vipvs.io/node (see Secret format below): a Secret, not a ConfigMap,
// because an agent's configuration may hold the VRRPv2 password. The
// companion watches only the Secrets of its node (its cache holds no other
// Secret) and, for each:
//
//   - writes every file below --host-root (Writer): a temporary file in the
//     same directory, fsync, rename; only when the content or the mode
//     changed; never through a symbolic link that leads out of the host root;
//   - reads the agent's status from its unix socket
//     (render.SocketPath, agent/status.Fetch), and watches it (the watch
//     protocol of api/status/v1alpha1: a long poll that returns when the
//     report changes), so that a change is reported within a second, not
//     on the next cycle (Options.StatusInterval);
//   - patches the Secret's annotations vipvs.io/running-config-hash,
//     vipvs.io/agent-status (a NodeReport of the status contract) and
//     vipvs.io/agent-error, from which the operator computes the
//     LoadBalancerConfig's status.
//
// The static pod is written last, after the agent's config. When a Secret
// disappears (the node left the LoadBalancerConfig, or the
// LoadBalancerConfig was deleted), the companion removes the files it wrote
// for it, the static pod first: kubelet then stops the agent, which hands
// its VIPs over gracefully. The agent's config and the other files go once
// the agent no longer answers on its socket (at most
// Options.AgentStopTimeout later), so that no running agent sees its config
// vanish and rejects it.
//
// # Secret format
//
// A Secret of type Opaque. The data holds one key per file; the annotation
// vipvs.io/files maps them to host paths and modes, as JSON:
// [{"path": "/etc/vipvs/api/nodes/m0.yaml", "key": "m0.yaml", "mode":
// "0644"}, ...]. The annotation vipvs.io/config-hash is the hash (sha256,
// hex) of the agent configuration, the one the agent reports once it runs
// it. The types and functions of secret.go encode and decode this format;
// the operator uses them too.
//
// # Metrics
//
// The agents serve /metrics on 127.0.0.1 only, out of Prometheus's reach.
// AgentMetrics, registered in the companion's registry, reads every local
// agent's /metrics over its unix socket on each scrape of the companion and
// re-exports the agents' families (not go_*, process_*) with the label
// load_balancer_config, plus vipvs_node_agent_up and
// vipvs_node_agent_scrape_errors_total per LoadBalancerConfig.
package companion
