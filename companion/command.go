package companion

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/vipvs/vipvs/internal/clientconfig"
	"github.com/vipvs/vipvs/internal/logging"
)

const nodeUsage = `Usage: vipvs node --node-name NODE [flags]

Runs the node companion of vipvs on one node (a DaemonSet of the vipvs
image, with the host's / mounted at --host-root). It watches the Secrets
that the operator publishes for this node in --namespace (label
vipvs.io/node=NODE; it caches no other Secret) and, for each
LoadBalancerConfig:

  - writes its files on the host: the agent's config below
    /etc/vipvs/<lbc>/ and the agent's static pod
    /etc/kubernetes/manifests/vipvs-<lbc>.yaml, atomically (temporary file,
    fsync, rename) and only when they changed;
  - reads the agent's status from /run/vipvs/<lbc>.sock and reports it on
    the Secret (annotations vipvs.io/running-config-hash,
    vipvs.io/agent-status, vipvs.io/agent-error), from which the operator
    computes the LoadBalancerConfig's status;
  - when the Secret is deleted (the node left, or the LoadBalancerConfig
    was deleted), removes the files, the static pod first, so that kubelet
    stops the agent and it hands its VIPs over gracefully.

The agent itself never talks to the Kubernetes API. Which files the
companion wrote is recorded below --state-dir on the host, so that it
removes them even after a restart.

On each scrape of its /metrics (--metrics-bind-address), the companion also
reads /metrics from every local agent's socket and re-exports the agents'
families (not go_* and process_*) with the label load_balancer_config=<lbc>,
plus vipvs_node_agent_up and vipvs_node_agent_scrape_errors_total per
LoadBalancerConfig: the agents listen on 127.0.0.1 only, out of
Prometheus's reach.

Needs: get, list, watch and patch on secrets in --namespace.

Flags:
`

// Command runs `vipvs node` with args (without the subcommand name) and
// returns the process exit code.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipvs node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodeName := fs.String("node-name", os.Getenv("NODE_NAME"), "name of this node (default $NODE_NAME; in the DaemonSet, from the downward API spec.nodeName)")
	namespace := fs.String("namespace", "vipvs-system", "namespace where the operator publishes the nodes' Secrets")
	hostRoot := fs.String("host-root", "/host", "directory where the host's / is mounted")
	stateDir := fs.String("state-dir", DefaultStateDir, "host directory (below --host-root) that records which files were written")
	interval := fs.Duration("status-interval", DefaultStatusInterval, "how often to read the agents' status")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, the in-cluster config, or ~/.kube/config)")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz (\"0\" disables)")
	metricsAddr := fs.String("metrics-bind-address", "0", "address of the Prometheus /metrics endpoint (\"0\" disables)")
	verbosity := fs.Int("v", 0, "log verbosity: 0 files written and removed, errors; 1 also every status read")
	format := fs.String("log-format", "text", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprint(stderr, nodeUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vipvs node: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *nodeName == "" {
		fmt.Fprintln(stderr, "vipvs node: --node-name is required (or set $NODE_NAME)")
		return 2
	}
	if *interval <= 0 {
		fmt.Fprintln(stderr, "vipvs node: --status-interval must be positive")
		return 2
	}
	log, err := logging.NewLogger(stderr, *format, *verbosity)
	if err != nil {
		fmt.Fprintf(stderr, "vipvs node: %v\n", err)
		return 2
	}
	if fi, err := os.Stat(*hostRoot); err != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "vipvs node: --host-root %s is not a directory (mount the host's / there)\n", *hostRoot)
		return 2
	}
	ctrl.SetLogger(log)
	cfg, err := clientconfig.Load(*kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "vipvs node: %v\n", err)
		return 1
	}
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		log.Error(err, "cannot build the scheme")
		return 1
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 s,
		Logger:                 log,
		Cache:                  CacheOptions(*namespace, *nodeName),
		Metrics:                metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress: *probeAddr,
	})
	if err != nil {
		log.Error(err, "cannot create the manager")
		return 1
	}
	w := &Writer{Root: *hostRoot, StateDir: *stateDir}
	if err := Setup(mgr, Options{NodeName: *nodeName, Namespace: *namespace, Writer: w, StatusInterval: *interval, Registerer: ctrlmetrics.Registry}); err != nil {
		log.Error(err, "cannot set up the node companion")
		return 1
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
	log.Info("node companion starting", "node", *nodeName, "namespace", *namespace, "hostRoot", *hostRoot)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "node companion failed")
		return 1
	}
	return 0
}
