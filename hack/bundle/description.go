package main

// description is the CSV's long description (Markdown, shown by the
// OperatorHub console): what vipvs does, how to install it and how to use
// it.
const description = `vipvs gives a bare-metal Kubernetes or OpenShift cluster the highly available
virtual IPs that no cloud hands it: the **API VIP** in front of the
kube-apiservers of the control plane and the **ingress VIPs** in front of the
routers, with IPVS load balancing and health checks behind them. It replaces
a keepalived + HAProxy pair, an appliance, or OpenShift's keepalived static
pods with one Go program that speaks VRRP (RFC 9568 VRRPv3 for IPv4 and IPv6,
RFC 3768 VRRPv2 with keepalived's password authentication, so that
keepalived and vipvs nodes can share a virtual router during a migration).

## How it works

* A **LoadBalancerConfig** (cluster-scoped, one per purpose, e.g.
  control-plane and ingress) selects nodes, names the virtual IPs with their
  VRIDs, the VRRP settings, the mode (activeStandby or spread), the IPVS
  services with their backends and health checks, and the track checks that
  move a VIP away from a node whose own service is down.
* The **operator** renders, for every selected node, the agent's
  configuration and its static pod, and publishes them as Secrets in its
  namespace. It never shrinks a peer list because a Node disappeared from
  the API.
* The **node companion** (a DaemonSet) writes each node's files to the host
  and reports the agent's status back. The **agent** is a static pod on the
  host network with NET_ADMIN and NET_RAW (not privileged): it holds and
  moves the VIPs without the Kubernetes API, so the API VIP survives the
  API server's own trouble, and hands a VIP over without losing a
  connection on a graceful stop.
* The status of each LoadBalancerConfig says, per node, whether its agent
  runs the rendered configuration and, per VIP, which node is master
  (` + "`kubectl get lbc`" + `).

## Installing

1. Install the operator from OperatorHub into the suggested namespace
   ` + "`vipvs-system`" + ` (mode "All namespaces": there is one operator per
   cluster; it watches the cluster-scoped LoadBalancerConfigs and its own
   namespace). The namespace must have the Pod Security level
   **privileged**: the node companion mounts host directories (hostPath
   volumes), which "baseline" forbids. The companion container itself is not
   privileged (no capabilities, no privilege escalation, read-only root
   filesystem). A namespace you create yourself needs:

       kubectl label namespace vipvs-system pod-security.kubernetes.io/enforce=privileged

2. The operator creates the node companion's DaemonSet ` + "`vipvs-node`" + `
   in its namespace, with its own image, and keeps it up to date (it runs
   with ` + "`--manage-node-daemonset`" + `); its service account
   ` + "`vipvs-node`" + ` and its Role come with this bundle. The DaemonSet
   stays when the operator is uninstalled: delete it with
   ` + "`kubectl delete daemonset -n vipvs-system vipvs-node`" + `, which
   leaves the agents running (the static pods stay on the nodes).

   Every node that may carry a VIP needs kubelet's static pod directory
   /etc/kubernetes/manifests. On OpenShift the service account vipvs-node
   also needs a SecurityContextConstraints that allows hostPath volumes, root
   and writing the host's /etc (for example ` + "`oc adm policy add-scc-to-user privileged -z vipvs-node -n vipvs-system`" + `).

## Using it

Create a LoadBalancerConfig; the examples of this operator are the API VIP of
three control-plane nodes and spread ingress VIPs:

    apiVersion: vipvs.io/v1alpha1
    kind: LoadBalancerConfig
    metadata:
      name: control-plane
    spec:
      nodeSelector:
        matchLabels:
          node-role.kubernetes.io/control-plane: ""
      virtualIPs:
      - name: api
        address: 192.0.2.10
        vrid: 51
      services:
      - name: kube-apiserver
        port: 6443
        backends:
          selectedNodes: {}
        healthCheck:
          http:
            scheme: HTTPS
            path: /readyz
            caFile: /etc/kubernetes/pki/ca.crt
            serverName: kubernetes.default.svc

Then ` + "`kubectl get lbc`" + ` shows each VIP with its master and whether
everything is Ready; ` + "`kubectl describe lbc control-plane`" + ` shows the
conditions, the nodes and the events; on a node, ` + "`vipvs status`" + ` shows
the agent's virtual routers. ` + "`kubectl explain loadbalancerconfig.spec`" + `
documents every field. Deleting a LoadBalancerConfig removes its agents, each
handing its VIPs over first.

Before the cluster exists (the API VIP of the installer), ` + "`vipvs render`" + `
writes the same static pods and agent configurations, and MachineConfigs for
OpenShift, from the same LoadBalancerConfig.

## Monitoring

The bundle brings a PrometheusRule (a VIP without master, two masters, a
VRID conflict, a real server down, a rejected configuration, a node not
running its configuration) and ServiceMonitors for the operator and the
node companions: the agents' metrics are scraped through the companions,
which read them from the agents' unix sockets.
`
