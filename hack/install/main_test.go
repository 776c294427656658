package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vipvs/vipvs/manifests"
	"github.com/vipvs/vipvs/test/envtest"
)

// writeKubeconfig writes a kubeconfig for cfg (envtest's admin) to a
// temporary file.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInstallCommand runs `make install`'s command against a real, empty
// API server: everything is applied in order, the image flag reaches every
// workload, the monitoring objects are skipped without the Prometheus
// Operator (and --monitoring=yes fails), and a second run and a dry run
// succeed.
func TestInstallCommand(t *testing.T) {
	cfg, _ := envtest.Start(t)
	kubeconfig := writeKubeconfig(t, cfg)
	const image = "registry.example/vipvs/vipvs:v1.2.3"

	var out, errOut strings.Builder
	if rc := run([]string{"--kubeconfig", kubeconfig, "--image", image}, &out, &errOut); rc != 0 {
		t.Fatalf("install: exit %d\n%s%s", rc, out.String(), errOut.String())
	}
	objs, err := manifests.Load(manifests.Files...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(objs)+1 {
		t.Fatalf("output:\n%s\nwant one line per object (%d) and the monitoring note", out.String(), len(objs))
	}
	for i, o := range objs {
		if lines[i] != o.String()+" applied" {
			t.Errorf("line %d: %q, want %q", i, lines[i], o.String()+" applied")
		}
	}
	if !strings.HasPrefix(lines[len(objs)], "skipped manifests/monitoring/") {
		t.Errorf("last line %q, want the monitoring note", lines[len(objs)])
	}

	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var dep appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: manifests.Namespace, Name: manifests.OperatorName}, &dep); err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := c.Get(ctx, client.ObjectKey{Namespace: manifests.Namespace, Name: manifests.NodeName}, &ds); err != nil {
		t.Fatal(err)
	}
	op := dep.Spec.Template.Spec.Containers[0]
	var env string
	for _, e := range op.Env {
		if e.Name == "VIPVS_IMAGE" {
			env = e.Value
		}
	}
	if op.Image != image || env != image || ds.Spec.Template.Spec.Containers[0].Image != image {
		t.Errorf("images: operator %s (VIPVS_IMAGE %s), companion %s; want %s", op.Image, env, ds.Spec.Template.Spec.Containers[0].Image, image)
	}

	for _, tt := range []struct {
		name    string
		args    []string
		wantRC  int
		wantOut string
	}{
		{"again", []string{"--kubeconfig", kubeconfig, "--image", image}, 0, "DaemonSet/vipvs-system/vipvs-node applied"},
		{"dry run", []string{"--kubeconfig", kubeconfig, "--dry-run", "--monitoring=no"}, 0, "applied (server dry run)"},
		{"monitoring required", []string{"--kubeconfig", kubeconfig, "--monitoring=yes"}, 1, "does not serve monitoring.coreos.com/v1"},
		{"bad flag", []string{"--monitoring=maybe"}, 2, "--monitoring must be auto, yes or no"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			rc := run(tt.args, &out, &errOut)
			if rc != tt.wantRC || !strings.Contains(out.String()+errOut.String(), tt.wantOut) {
				t.Errorf("exit %d, want %d; output:\n%s%s\nwant it to contain %q", rc, tt.wantRC, out.String(), errOut.String(), tt.wantOut)
			}
		})
	}
}
