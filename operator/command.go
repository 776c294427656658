package operator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/vipvs/vipvs/internal/clientconfig"
	"github.com/vipvs/vipvs/internal/logging"
	"github.com/vipvs/vipvs/manifests"
	"github.com/vipvs/vipvs/operator/lbservice"
)

// LeaderElectionID is the name of the Lease the operator replicas elect a
// leader with, in their namespace.
const LeaderElectionID = "vipvs-operator.vipvs.io"

const operatorUsage = `Usage: vipvs operator [flags]

Runs the vipvs operator (a Deployment of the vipvs image). For each
LoadBalancerConfig (vipvs.io/v1alpha1, cluster-scoped) it:

  - selects the member nodes with spec.nodeSelector, and remembers them with
    their InternalIP addresses in status.nodes: a node whose Node object
    disappears from the API stays a peer of the others until it is named in
    the annotation vipvs.io/forget-nodes (e.g. kubectl annotate lbc api
    vipvs.io/forget-nodes=master-2); a node that no longer matches the
    selector leaves at once;
  - refuses a LoadBalancerConfig that shares a virtual IP address, a VRID
    (one family, one interface) or, on a common node, its agentStatusPort
    with one that already runs (or, if neither runs yet, with one created
    before it): condition Degraded, reason Conflict;
  - renders each member's agent config and the agent's static pod (the
    renderer of 'vipvs render') and publishes them as a Secret per node
    (the agent config may hold the VRRP password), vipvs-<lbc>-<node>, in
    --namespace, for the node companion ('vipvs node') to write on the host;
    a change that restarts a virtual router (VRID, advert interval, VRRP
    version, addresses, unicast/multicast) goes to the backups together,
    then to the VIPs' masters one at a time, each step once the previous
    nodes run their new configuration (at most a minute per node); a master's
    agent starts its new router in place of the old, so the VIPs stay on it
    throughout; a change of the agent's pod goes to one node at a time,
    backups first;
  - reports status from the companions' reports: conditions Ready,
    Progressing and Degraded, per node the rendered and the running
    configuration hash and BGP sessions, per virtual IP its master (mode
    bgp: the nodes that advertise it; kubectl get lbc shows them), and
    events; and the same as metrics on /metrics:
    vipvs_operator_node_config_current{load_balancer_config,node},
    vipvs_operator_vip_master{load_balancer_config,vip,node},
    vipvs_operator_vip_advertising_nodes{load_balancer_config,vip} and
    vipvs_operator_bgp_session_up{load_balancer_config,node,peer};
  - on deletion, deletes the Secrets (the companions then remove the
    agents), then releases its finalizer.

It also gives Services of type LoadBalancer whose spec.loadBalancerClass is
vipvs.io/lb (with --serve-classless-services, also those with no class)
their addresses from the IPPools (vipvs.io/v1alpha1, cluster-scoped):
requested by the annotation vipvs.io/load-balancer-ips, from the pool the
annotation vipvs.io/ip-pool names, or from the first pool by name that
admits the Service; shared between Services with the same
vipvs.io/allow-shared-ip key whose ports differ. It writes them to
status.loadBalancer.ingress (ipMode VIP), says in the Service's condition
vipvs.io/IPAllocated and in events what it could not do, and reports each
pool's use in its status and as vipvs_pool_addresses_total{pool},
vipvs_pool_addresses_in_use{pool} and vipvs_allocation_failures_total{reason}
(docs/ip-pools.md).

With --manage-node-daemonset it also creates the node companion's DaemonSet
vipvs-node in --namespace (that of manifests/30-node.yaml, with --image and
the service account vipvs-node), puts it back when it is deleted and undoes
changes to it (server-side apply): the OLM bundle, which cannot hold a
DaemonSet, sets it. It is left in place when the flag is dropped.

Needs: LoadBalancerConfigs (and their status and finalizers); get, list and
watch on nodes and secrets (the values of the secrets a LoadBalancerConfig
references are read when rendering, never cached); secrets in --namespace
(the nodes' files, the only ones it caches); events; leases for
--leader-elect; for the allocator: services (and their status),
namespaces (read), ippools (and their status).

Flags:
`

// Command runs `vipvs operator` with args (without the subcommand name)
// and returns the process exit code.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipvs operator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	namespace := fs.String("namespace", DefaultNamespace, "namespace of the nodes' Secrets (and of the leader election Lease)")
	image := fs.String("image", os.Getenv("VIPVS_IMAGE"), "agent image of the rendered static pods (default $VIPVS_IMAGE; the operator's Deployment sets it to its own image)")
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address of the Prometheus /metrics endpoint (\"0\" disables)")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz (\"0\" disables)")
	leaderElect := fs.Bool("leader-elect", false, "elect a leader among the operator's replicas (Lease "+LeaderElectionID+" in --namespace); only the leader reconciles")
	classless := fs.Bool("serve-classless-services", false, "also give addresses from the IPPools to Services of type LoadBalancer with no spec.loadBalancerClass (for clusters where vipvs is the only load balancer implementation)")
	manageNode := fs.Bool("manage-node-daemonset", false, "create the node companion's DaemonSet "+manifests.NodeName+" in --namespace (that of the install manifests, with --image) and keep it up to date: for installs that cannot ship it (the OLM bundle); needs daemonsets in --namespace")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, the in-cluster config, or ~/.kube/config)")
	verbosity := fs.Int("v", 0, "log verbosity: 0 publications and problems; 1 also each reconcile")
	format := fs.String("log-format", "text", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprint(stderr, operatorUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vipvs operator: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *image == "" {
		fmt.Fprintln(stderr, "vipvs operator: --image is required (or set $VIPVS_IMAGE): the agent image of the static pods, e.g. quay.io/vipvs/vipvs:v0.1.0")
		return 2
	}
	log, err := logging.NewLogger(stderr, *format, *verbosity)
	if err != nil {
		fmt.Fprintf(stderr, "vipvs operator: %v\n", err)
		return 2
	}
	ctrl.SetLogger(log)
	cfg, err := clientconfig.Load(*kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "vipvs operator: %v\n", err)
		return 1
	}
	scheme, err := NewScheme()
	if err != nil {
		log.Error(err, "cannot build the scheme")
		return 1
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        log,
		Cache:                         CacheOptions(*namespace),
		Metrics:                       metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:        *probeAddr,
		LeaderElection:                *leaderElect,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       *namespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		log.Error(err, "cannot create the manager")
		return 1
	}
	if err := Setup(mgr, Options{Namespace: *namespace, Image: *image}); err != nil {
		log.Error(err, "cannot set up the controller")
		return 1
	}
	if err := lbservice.Setup(mgr, lbservice.Options{ServeClassless: *classless}); err != nil {
		log.Error(err, "cannot set up the Service allocator")
		return 1
	}
	if *manageNode {
		if err := SetupNodeDaemonSet(mgr, *namespace, *image); err != nil {
			log.Error(err, "cannot set up the node daemonset controller")
			return 1
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		log.Error(err, "cannot add the health check")
		return 1
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		log.Error(err, "cannot add the readiness check")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Info("operator starting", "namespace", *namespace, "image", *image, "leaderElect", *leaderElect, "manageNodeDaemonSet", *manageNode)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "operator failed")
		return 1
	}
	return 0
}
