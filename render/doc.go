// Package render turns a LoadBalancerConfig (api/v1alpha1) and its member
// nodes into each node's files: the agent configuration
// (agent.vipvs.io/v1alpha1 AgentConfig, api/agent/v1alpha1), the static-pod
// manifest that runs the agent, and the CA bundles of HTTPS health checks;
// and, for OpenShift's installer, a MachineConfig holding all of them.
//
// It is pure: no I/O, no clock, no API client, no global state. The
// operator and `vipvs render` both call Render, so both give byte-identical
// files for the same input; Render sorts what it is given, so the order of
// nodes and the iteration order of maps never show in the output.
//
// Where the files go on a node:
//
//	/etc/vipvs/<lbc>/nodes/<node>.yaml              the agent config (AgentConfigPath)
//	/etc/vipvs/<lbc>/ca-<service>.crt               a health check's CA (caSecretRef)
//	/etc/kubernetes/manifests/vipvs-<lbc>.yaml      the static pod (StaticPodPath)
//	/run/vipvs/<lbc>.sock                           the agent's status socket (SocketPath)
//
// The static pod is the same on every node of a LoadBalancerConfig and does
// not hold the configuration's hash: a change of configuration is a live
// reload of the agent, not a restart of the pod.
package render
