package envtest_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vipvs/vipvs/manifests"
	"github.com/vipvs/vipvs/test/envtest"
)

// kubeconfig writes a kubeconfig file for cfg (envtest's admin) and returns
// its path.
func kubeconfig(t *testing.T, cfg *rest.Config) string {
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

// kubectlApplyReadme runs the kubectl commands of manifests/README.md that
// install vipvs (without the monitoring objects), and returns their output.
func kubectlApplyReadme(t *testing.T, kubeconfigPath string) (string, error) {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, args := range [][]string{
		{"apply", "--server-side", "-f", "manifests/00-namespace.yaml"},
		{"apply", "--server-side", "-f", "manifests/crd/vipvs.io_loadbalancerconfigs.yaml"},
		{"wait", "--for", "condition=Established", "crd/loadbalancerconfigs.vipvs.io"},
		{"apply", "--server-side", "-f", "manifests/10-operator-rbac.yaml", "-f", "manifests/11-node-rbac.yaml"},
		{"apply", "--server-side", "-f", "manifests/20-operator.yaml", "-f", "manifests/30-node.yaml"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfigPath}, args...)...)
		cmd.Dir = root
		b, err := cmd.CombinedOutput()
		cancel()
		out.WriteString("$ kubectl " + strings.Join(args, " ") + "\n" + string(b))
		if err != nil {
			return out.String(), err
		}
	}
	return out.String(), nil
}

// TestInstallBothWays installs with `make install`'s Apply (hack/install)
// and then with the kubectl commands of manifests/README.md, and on a
// second API server in the reverse order: each must succeed on what the
// other installed (no server-side apply conflict).
func TestInstallBothWays(t *testing.T) {
	objs, err := manifests.Load(manifests.Files...)
	if err != nil {
		t.Fatal(err)
	}
	makeInstall := func(t *testing.T, cfg *rest.Config) {
		t.Helper()
		s, err := manifests.Scheme()
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(cfg, client.Options{Scheme: s})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := manifests.Apply(ctx, c, objs, manifests.ApplyOptions{}); err != nil {
			t.Fatalf("make install: %v", err)
		}
	}
	t.Run("make install, then kubectl", func(t *testing.T) {
		cfg, _ := envtest.Start(t)
		makeInstall(t, cfg)
		if out, err := kubectlApplyReadme(t, kubeconfig(t, cfg)); err != nil {
			t.Fatalf("kubectl after make install: %v\n%s", err, out)
		}
	})
	t.Run("kubectl, then make install", func(t *testing.T) {
		cfg, _ := envtest.Start(t)
		if out, err := kubectlApplyReadme(t, kubeconfig(t, cfg)); err != nil {
			t.Fatalf("kubectl: %v\n%s", err, out)
		}
		makeInstall(t, cfg)
		if out, err := kubectlApplyReadme(t, kubeconfig(t, cfg)); err != nil {
			t.Fatalf("kubectl again after make install: %v\n%s", err, out)
		}
	})
}
