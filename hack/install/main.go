// Command install applies the vipvs install manifests (package manifests,
// the YAML files of manifests/) to the cluster of the current kubeconfig,
// in order, with server-side apply: the namespace, the LoadBalancerConfig
// CRD (waiting until it is served), the RBAC, the operator and the node
// companion, then the Prometheus Operator objects when the cluster has that
// API. It is `make install`; running it again updates what changed.
//
//	go run ./hack/install [--kubeconfig FILE] [--image IMAGE] [--monitoring auto|yes|no] [--dry-run]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vipvs/vipvs/internal/clientconfig"
	"github.com/vipvs/vipvs/manifests"
)

const usage = `Usage: go run ./hack/install [flags]

Applies the vipvs manifests (manifests/) with server-side apply, in order:
namespace vipvs-system, the LoadBalancerConfig CRD, the RBAC, the operator
Deployment and the node companion DaemonSet, then (--monitoring) the
PrometheusRule and the ServiceMonitors of manifests/monitoring/.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, the in-cluster config, or ~/.kube/config)")
	image := fs.String("image", "", "vipvs image of the operator, the companion and the agents (default: the one in manifests/20-operator.yaml)")
	monitoring := fs.String("monitoring", "auto", "apply manifests/monitoring/: auto (when the cluster serves monitoring.coreos.com/v1), yes or no")
	dryRun := fs.Bool("dry-run", false, "server-side dry run: validate and admit everything, persist nothing (the namespace and the CRD must exist already)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "install: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch *monitoring {
	case "auto", "yes", "no":
	default:
		fmt.Fprintf(stderr, "install: --monitoring must be auto, yes or no, not %q\n", *monitoring)
		return 2
	}
	cfg, err := clientconfig.Load(*kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "install: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := Install(ctx, cfg, Options{Image: *image, Monitoring: *monitoring, DryRun: *dryRun, Log: stdout}); err != nil {
		fmt.Fprintf(stderr, "install: %v\n", err)
		return 1
	}
	return 0
}

// Options configure Install.
type Options struct {
	// Image replaces the image of the manifests when set.
	Image string
	// Monitoring is auto, yes or no (see the flag).
	Monitoring string
	DryRun     bool
	Log        io.Writer
}

// Install applies manifests.Files, then manifests.MonitoringFiles as
// opts.Monitoring says.
func Install(ctx context.Context, cfg *rest.Config, opts Options) error {
	s, err := manifests.Scheme()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return fmt.Errorf("connecting to the API server: %w", err)
	}
	objs, err := manifests.Load(manifests.Files...)
	if err != nil {
		return err
	}
	if opts.Image != "" {
		if err := manifests.SetImage(objs, opts.Image); err != nil {
			return err
		}
	}
	aopts := manifests.ApplyOptions{DryRun: opts.DryRun, Log: opts.Log}
	if err := manifests.Apply(ctx, c, objs, aopts); err != nil {
		return err
	}
	if opts.Monitoring == "no" {
		return nil
	}
	ok, err := manifests.MonitoringAvailable(c.RESTMapper())
	if err != nil {
		return err
	}
	if !ok {
		if opts.Monitoring == "yes" {
			return fmt.Errorf("the cluster does not serve %s (install the Prometheus Operator, or use --monitoring=no)", manifests.MonitoringGroupVersion)
		}
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, "skipped manifests/monitoring/: the cluster does not serve %s (no Prometheus Operator)\n", manifests.MonitoringGroupVersion)
		}
		return nil
	}
	mon, err := manifests.Load(manifests.MonitoringFiles...)
	if err != nil {
		return err
	}
	return manifests.Apply(ctx, c, mon, aopts)
}
