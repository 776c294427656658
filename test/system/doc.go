// Package system holds the system test of vipvs: the whole product at once.
//
// TestSystem starts a real etcd and kube-apiserver (the envtest binaries of
// hack/envtest-deps.sh), installs manifests/ as `make install` does, and runs
// the real vipvs binary as processes: the operator under the operator's
// service account and one node companion per node under the companion's
// (each with a client-certificate kubeconfig of that account, so only the
// RBAC of the manifests applies). Three node network namespaces on a bridge
// (test/lab) stand for the nodes; a kubelet stand-in per node starts the
// command of every static pod the companion writes, inside the node's
// network namespace and a private mount namespace in which the pod's
// hostPath volumes are the node's directory below a per-node root. A client
// probes the VIP with a new TCP connection every few milliseconds while the
// LoadBalancerConfig is created, changed, deleted, and while the API server
// and the operator are stopped. The test logs its timings (the figures of
// BENCHMARKS.md) and asserts the outcomes.
//
// It needs root and the envtest binaries, and skips without them.
// docs/system.md walks through the same stack by hand.
package system
