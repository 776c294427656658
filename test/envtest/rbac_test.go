package envtest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/vipvs/vipvs/agent/status"
	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/companion"
	"github.com/vipvs/vipvs/manifests"
	"github.com/vipvs/vipvs/operator"
	"github.com/vipvs/vipvs/render"
	"github.com/vipvs/vipvs/test/envtest"
)

// rbacNodes are the control-plane nodes of TestOperatorRBAC, with their
// InternalIP addresses (documentation range). The first is master of every
// virtual router.
var rbacNodes = []struct{ name, addr string }{
	{"master-0", "192.0.2.11"},
	{"master-1", "192.0.2.12"},
	{"master-2", "192.0.2.13"},
}

// rbacUser is the user name a service account authenticates as.
func rbacUser(name string) string {
	return "system:serviceaccount:" + manifests.Namespace + ":" + name
}

// rbacImpersonate returns cfg acting as the service account name: the API
// server authorizes every request as that account (with its groups), so
// only the RBAC of the manifests applies.
func rbacImpersonate(cfg *rest.Config, name string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: rbacUser(name)}
	return c
}

// TestOperatorRBAC installs the manifests (as `make install` does) in a
// real API server and runs the real operator and three real node
// companions, each under exactly its service account's RBAC
// (impersonation), with leader election: the operator reconciles a
// LoadBalancerConfig (finalizer, Secrets published, status written,
// events), the companions write the files and patch their reports, a VRRP
// password is read from a Secret in another namespace (and a new one is
// taken when it changes), and deletion cleans up. Then it checks what each
// account may and may not do. One API server serves every subtest; they
// run in order.
func TestOperatorRBAC(t *testing.T) {
	start := time.Now()
	cfg, _ := envtest.Start(t)
	t.Logf("envtest started in %v", time.Since(start).Round(time.Millisecond))
	s := installScheme(t)
	admin, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	objs, err := manifests.Load(manifests.Files...)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifests.Apply(ctx, admin, objs, manifests.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range rbacNodes {
		rbacCreateNode(ctx, t, admin, n.name, n.addr)
	}

	logs := &rbacLogs{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator and companion logs:\n%s", logs.String())
		}
	})
	roots := map[string]string{}
	run := newRBACRunner(t)
	run.start("operator", func(ctx context.Context) error {
		return rbacRunOperator(ctx, rbacImpersonate(cfg, manifests.OperatorName), "quay.io/vipvs/vipvs:v0.1.0", false, logs.logger("operator"))
	})
	for _, n := range rbacNodes {
		roots[n.name] = t.TempDir()
		run.start("companion "+n.name, func(ctx context.Context) error {
			return rbacRunCompanion(ctx, rbacImpersonate(cfg, manifests.NodeName), n.name, roots[n.name], logs.logger("node "+n.name))
		})
	}

	t.Run("reconcile", func(t *testing.T) { testRBACReconcile(ctx, t, admin, run, roots) })
	t.Run("secretInOtherNamespace", func(t *testing.T) { testRBACSecret(ctx, t, admin, run, roots) })
	t.Run("events", func(t *testing.T) { testRBACEvents(ctx, t, admin) })
	t.Run("operatorForbidden", func(t *testing.T) { testOperatorForbidden(ctx, t, rbacImpersonate(cfg, manifests.OperatorName), s) })
	t.Run("companionAllowed", func(t *testing.T) { testCompanionAllowed(ctx, t, rbacImpersonate(cfg, manifests.NodeName), s) })
	t.Run("companionForbidden", func(t *testing.T) { testCompanionForbidden(ctx, t, rbacImpersonate(cfg, manifests.NodeName), s) })
	t.Run("delete", func(t *testing.T) { testRBACDelete(ctx, t, admin, run, roots) })
}

// rbacRunner runs the managers in the background and stops them (and waits
// for them) before the API server stops.
type rbacRunner struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

func newRBACRunner(t *testing.T) *rbacRunner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &rbacRunner{t: t, ctx: ctx, cancel: cancel}
	t.Cleanup(func() {
		r.cancel()
		r.wg.Wait()
	})
	return r
}

func (r *rbacRunner) start(name string, f func(context.Context) error) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := f(r.ctx); err != nil && r.ctx.Err() == nil {
			r.mu.Lock()
			r.errs = append(r.errs, fmt.Errorf("%s: %w", name, err))
			r.mu.Unlock()
		}
	}()
}

// err returns the errors of managers that stopped on their own.
func (r *rbacRunner) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

// rbacRunOperator runs the operator as `vipvs operator --namespace=vipvs-system
// --leader-elect --image=image` does (operator/command.go), with
// --manage-node-daemonset when manageNode is set, without its HTTP
// endpoints.
func rbacRunOperator(ctx context.Context, cfg *rest.Config, image string, manageNode bool, log logr.Logger) error {
	scheme, err := operator.NewScheme()
	if err != nil {
		return err
	}
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        log,
		Cache:                         operator.CacheOptions(manifests.Namespace),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              operator.LeaderElectionID,
		LeaderElectionNamespace:       manifests.Namespace,
		LeaderElectionReleaseOnCancel: true,
		// Other tests of this binary may run a controller of the same name.
		Controller: crconfig.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		return err
	}
	if err := operator.Setup(mgr, operator.Options{Namespace: manifests.Namespace, Image: image}); err != nil {
		return err
	}
	if manageNode {
		if err := operator.SetupNodeDaemonSet(mgr, manifests.Namespace, image); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}

// rbacRunCompanion runs the companion of one node as `vipvs node` does
// (companion/command.go), with root as the host's / and rbacAgents in
// place of the agents' sockets.
func rbacRunCompanion(ctx context.Context, cfg *rest.Config, nodeName, root string, log logr.Logger) error {
	scheme, err := operator.NewScheme()
	if err != nil {
		return err
	}
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 log,
		Cache:                  companion.CacheOptions(manifests.Namespace, nodeName),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             crconfig.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		return err
	}
	w := &companion.Writer{Root: root, StateDir: companion.DefaultStateDir}
	opts := companion.Options{
		NodeName: nodeName, Namespace: manifests.Namespace, Writer: w,
		Status: rbacAgents{root: root, node: nodeName}, StatusInterval: 500 * time.Millisecond,
	}
	if err := companion.Setup(mgr, opts); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// rbacAgents stands for the agents of one node: an agent runs while its
// static pod is there (kubelet stops it at once when the file goes) and
// reports the hash of the config file the companion wrote for it, and the
// routers of that file, MASTER on the first node and BACKUP elsewhere.
type rbacAgents struct {
	root, node string
}

func (f rbacAgents) Fetch(_ context.Context, lbc, _ string) (status.Report, error) {
	if _, err := os.Stat(filepath.Join(f.root, render.StaticPodPath(lbc))); err != nil {
		return status.Report{}, fmt.Errorf("no agent: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(f.root, render.AgentConfigPath(lbc, f.node)))
	if err != nil {
		return status.Report{}, fmt.Errorf("no agent: %w", err)
	}
	cfg, err := agentv1alpha1.Decode(b)
	if err != nil {
		return status.Report{}, fmt.Errorf("agent rejects its config: %w", err)
	}
	sum := sha256.Sum256(b)
	rep := status.Report{Node: f.node, Version: "test", ConfigHash: hex.EncodeToString(sum[:])}
	for _, r := range cfg.VirtualRouters {
		state := "BACKUP"
		if f.node == rbacNodes[0].name {
			state = statusv1.StateMaster
		}
		rep.Routers = append(rep.Routers, status.Router{Name: r.Name, VRID: uint8(r.VRID), State: state})
	}
	return rep, nil
}

// rbacLogs collects the managers' logs, shown when a test fails.
type rbacLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *rbacLogs) logger(name string) logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		fmt.Fprintf(&b.buf, "%s %s %s\n", time.Now().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{Verbosity: 1}).WithName(name)
}

func (b *rbacLogs) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func rbacCreateNode(ctx context.Context, t *testing.T, c client.Client, name, addr string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"node-role.kubernetes.io/control-plane": "",
	}}}
	if err := c.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
	if err := c.Status().Update(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// rbacWaitFor polls cond until it holds, the managers fail or the time is up,
// and says what it was waiting for and what it saw last.
func rbacWaitFor(ctx context.Context, t *testing.T, run *rbacRunner, what string, cond func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := run.err(); err != nil {
			return false, err
		}
		ok, seen, err := cond(ctx)
		last = seen
		return ok, err
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; last seen: %s", what, err, last)
	}
}

func rbacCondition(lbc *v1alpha1.LoadBalancerConfig, typ string) string {
	for _, c := range lbc.Status.Conditions {
		if c.Type == typ {
			return fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return typ + " unset"
}

func rbacIsReady(lbc *v1alpha1.LoadBalancerConfig) bool {
	for _, c := range lbc.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c.Status == metav1.ConditionTrue && c.ObservedGeneration == lbc.Generation
		}
	}
	return false
}

// rbacWaitReady waits until LoadBalancerConfig name is Ready.
func rbacWaitReady(ctx context.Context, t *testing.T, c client.Client, run *rbacRunner, name string) *v1alpha1.LoadBalancerConfig {
	t.Helper()
	var lbc v1alpha1.LoadBalancerConfig
	rbacWaitFor(ctx, t, run, "LoadBalancerConfig "+name+" Ready", func(ctx context.Context) (bool, string, error) {
		if err := c.Get(ctx, types.NamespacedName{Name: name}, &lbc); err != nil {
			return false, err.Error(), nil
		}
		return rbacIsReady(&lbc), rbacCondition(&lbc, v1alpha1.ConditionReady) + "; " + rbacCondition(&lbc, v1alpha1.ConditionDegraded), nil
	})
	return &lbc
}

// rbacSecrets lists the published Secrets of a LoadBalancerConfig.
func rbacSecrets(ctx context.Context, c client.Client, lbc string) ([]corev1.Secret, error) {
	var list corev1.SecretList
	err := c.List(ctx, &list, client.InNamespace(manifests.Namespace), client.MatchingLabels{companion.LabelLoadBalancerConfig: lbc})
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, err
}

func testRBACReconcile(ctx context.Context, t *testing.T, c client.Client, run *rbacRunner, roots map[string]string) {
	lbc := loadExample(t, "control-plane.yaml")
	if err := c.Create(ctx, lbc); err != nil {
		t.Fatal(err)
	}
	got := rbacWaitReady(ctx, t, c, run, lbc.Name)

	if len(got.Finalizers) != 1 || got.Finalizers[0] != operator.Finalizer {
		t.Errorf("finalizers %v, want [%s]", got.Finalizers, operator.Finalizer)
	}
	if got.Status.Masters != "192.0.2.10=master-0" {
		t.Errorf("status.masters %q, want 192.0.2.10=master-0", got.Status.Masters)
	}
	if len(got.Status.Nodes) != len(rbacNodes) {
		t.Fatalf("status.nodes %+v, want %d nodes", got.Status.Nodes, len(rbacNodes))
	}
	for _, ns := range got.Status.Nodes {
		if !ns.Running || ns.RenderedConfigHash == "" || ns.RunningConfigHash != ns.RenderedConfigHash {
			t.Errorf("status of node %s: %+v; want running its rendered config", ns.Name, ns)
		}
	}

	// The Secrets the operator published, with the companions' reports.
	published, err := rbacSecrets(ctx, c, lbc.Name)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range published {
		names = append(names, s.Name)
		if s.Type != corev1.SecretTypeOpaque {
			t.Errorf("secret %s: type %q, want Opaque", s.Name, s.Type)
		}
		if s.Annotations[companion.AnnotationRunningConfigHash] != s.Annotations[companion.AnnotationConfigHash] {
			t.Errorf("secret %s: running %q, rendered %q", s.Name, s.Annotations[companion.AnnotationRunningConfigHash], s.Annotations[companion.AnnotationConfigHash])
		}
	}
	want := []string{"vipvs-control-plane-master-0", "vipvs-control-plane-master-1", "vipvs-control-plane-master-2"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("secrets %v, want %v", names, want)
	}

	// The files the companions wrote on their hosts.
	for _, n := range rbacNodes {
		for _, p := range []string{render.AgentConfigPath(lbc.Name, n.name), render.StaticPodPath(lbc.Name)} {
			if _, err := os.Stat(filepath.Join(roots[n.name], p)); err != nil {
				t.Errorf("node %s: %v", n.name, err)
			}
		}
	}

	// The leader election Lease, created and then renewed (an update).
	rbacWaitFor(ctx, t, run, "the leader to renew its Lease", func(ctx context.Context) (bool, string, error) {
		var lease coordinationv1.Lease
		if err := c.Get(ctx, types.NamespacedName{Namespace: manifests.Namespace, Name: operator.LeaderElectionID}, &lease); err != nil {
			return false, err.Error(), nil
		}
		sp := lease.Spec
		if sp.HolderIdentity == nil || sp.AcquireTime == nil || sp.RenewTime == nil {
			return false, fmt.Sprintf("%+v", sp), nil
		}
		return sp.RenewTime.After(sp.AcquireTime.Time), fmt.Sprintf("holder %s acquired %v renewed %v",
			*sp.HolderIdentity, sp.AcquireTime.Format(time.StampMicro), sp.RenewTime.Format(time.StampMicro)), nil
	})
}

// testRBACSecret renders a VRRPv2 LoadBalancerConfig whose password is in
// a Secret of another namespace: the operator's ClusterRole lets it read
// the Secret, and the password reaches the agents' configs. When the
// Secret changes, the new password does too: the operator watches the
// referenced Secret outside the Secrets it caches.
func testRBACSecret(ctx context.Context, t *testing.T, c client.Client, run *rbacRunner, roots map[string]string) {
	const ns, password = "vrrp-secrets", "s3cret"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	vrrp := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vrrp"},
		StringData: map[string]string{"password": password + "\n"}}
	if err := c.Create(ctx, vrrp); err != nil {
		t.Fatal(err)
	}
	lbc := &v1alpha1.LoadBalancerConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
		Spec: v1alpha1.LoadBalancerConfigSpec{
			NodeSelector:    metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/control-plane": ""}},
			VirtualIPs:      []v1alpha1.VirtualIP{{Name: "legacy", Address: "192.0.2.30", VRID: 71}},
			VRRP:            &v1alpha1.VRRP{Version: 2, PasswordSecretRef: &v1alpha1.SecretKeyReference{Namespace: ns, Name: "vrrp", Key: "password"}},
			AgentStatusPort: 9445,
		},
	}
	if err := c.Create(ctx, lbc); err != nil {
		t.Fatal(err)
	}
	rbacWaitReady(ctx, t, c, run, lbc.Name)
	passwords := func() []string {
		var out []string
		for _, n := range rbacNodes {
			b, err := os.ReadFile(filepath.Join(roots[n.name], render.AgentConfigPath(lbc.Name, n.name)))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := agentv1alpha1.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.VirtualRouters) != 1 {
				t.Fatalf("node %s: %d virtual routers, want 1", n.name, len(cfg.VirtualRouters))
			}
			out = append(out, cfg.VirtualRouters[0].AuthPassword)
		}
		return out
	}
	for i, got := range passwords() {
		if got != password {
			t.Errorf("node %s: the agent config has not the password of the Secret", rbacNodes[i].name)
		}
	}

	const rotated = "n3w"
	vrrp.StringData = map[string]string{"password": rotated}
	if err := c.Update(ctx, vrrp); err != nil {
		t.Fatal(err)
	}
	rbacWaitFor(ctx, t, run, "the new password in every agent config", func(context.Context) (bool, string, error) {
		n := 0
		for _, p := range passwords() {
			if p == rotated {
				n++
			}
		}
		return n == len(rbacNodes), fmt.Sprintf("%d of %d agent configs have the new password", n, len(rbacNodes)), nil
	})
}

// testRBACEvents checks that the operator's events were recorded
// (events.k8s.io, in "default" for the cluster-scoped LoadBalancerConfig).
func testRBACEvents(ctx context.Context, t *testing.T, c client.Client) {
	rbacWaitFor(ctx, t, &rbacRunner{}, "the operator's events", func(ctx context.Context) (bool, string, error) {
		var list eventsv1.EventList
		if err := c.List(ctx, &list); err != nil {
			return false, "", err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind == "LoadBalancerConfig" && e.Regarding.Name == "control-plane" {
				seen = append(seen, e.Reason)
			}
		}
		sort.Strings(seen)
		joined := strings.Join(seen, ",")
		return strings.Contains(joined, operator.EventRendered) && strings.Contains(joined, operator.EventReady), joined, nil
	})
}

// rbacForbiddenCase is one request a service account must not be allowed.
type rbacForbiddenCase struct {
	name string
	do   func(ctx context.Context, c client.Client) error
}

func rbacCheckForbidden(ctx context.Context, t *testing.T, c client.Client, cases []rbacForbiddenCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(ctx, c)
			if !apierrors.IsForbidden(err) {
				t.Errorf("got %v, want Forbidden", err)
			}
		})
	}
}

func rbacConfigMap(ns, name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

// testOperatorForbidden checks what the operator may not do: anything
// with ConfigMaps, Leases outside its namespace, writing Nodes or Secrets
// outside its namespace, creating or deleting LoadBalancerConfigs, creating
// workloads.
func testOperatorForbidden(ctx context.Context, t *testing.T, cfg *rest.Config, s *runtime.Scheme) {
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	rbacCheckForbidden(ctx, t, c, []rbacForbiddenCase{
		{"create configmap in its namespace", func(ctx context.Context, c client.Client) error {
			return c.Create(ctx, rbacConfigMap(manifests.Namespace, "x"))
		}},
		{"list configmaps in its namespace", func(ctx context.Context, c client.Client) error {
			return c.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(manifests.Namespace))
		}},
		{"create configmap in default", func(ctx context.Context, c client.Client) error { return c.Create(ctx, rbacConfigMap("default", "x")) }},
		{"list configmaps in kube-system", func(ctx context.Context, c client.Client) error {
			return c.List(ctx, &corev1.ConfigMapList{}, client.InNamespace("kube-system"))
		}},
		{"create secret in default", func(ctx context.Context, c client.Client) error {
			return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}})
		}},
		{"update referenced secret", func(ctx context.Context, c client.Client) error {
			var s corev1.Secret
			if err := c.Get(ctx, types.NamespacedName{Namespace: "vrrp-secrets", Name: "vrrp"}, &s); err != nil {
				return err // the get is allowed
			}
			return c.Update(ctx, &s)
		}},
		{"delete referenced secret", func(ctx context.Context, c client.Client) error {
			return c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "vrrp-secrets", Name: "vrrp"}})
		}},
		{"patch node", func(ctx context.Context, c client.Client) error {
			return c.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: rbacNodes[0].name}},
				client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`)))
		}},
		{"create loadbalancerconfig", func(ctx context.Context, c client.Client) error {
			return c.Create(ctx, &v1alpha1.LoadBalancerConfig{ObjectMeta: metav1.ObjectMeta{Name: "x"}})
		}},
		{"delete loadbalancerconfig", func(ctx context.Context, c client.Client) error {
			return c.Delete(ctx, &v1alpha1.LoadBalancerConfig{ObjectMeta: metav1.ObjectMeta{Name: "control-plane"}})
		}},
		{"create lease in default", func(ctx context.Context, c client.Client) error {
			return c.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}})
		}},
		{"delete lease", func(ctx context.Context, c client.Client) error {
			return c.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: manifests.Namespace, Name: operator.LeaderElectionID}})
		}},
		{"list pods", func(ctx context.Context, c client.Client) error {
			return c.List(ctx, &corev1.PodList{}, client.InNamespace(manifests.Namespace))
		}},
	})
}

// testCompanionAllowed checks, besides what the running companions did,
// each verb of the companion's Role.
func testCompanionAllowed(ctx context.Context, t *testing.T, cfg *rest.Config, s *runtime.Scheme) {
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	published, err := rbacSecrets(ctx, c, "control-plane")
	if err != nil || len(published) == 0 {
		t.Fatalf("list secrets as the companion: %d, %v", len(published), err)
	}
	var one corev1.Secret
	if err := c.Get(ctx, client.ObjectKeyFromObject(&published[0]), &one); err != nil {
		t.Errorf("get secret as the companion: %v", err)
	}
	w, err := c.Watch(ctx, &corev1.SecretList{}, client.InNamespace(manifests.Namespace), client.MatchingLabels{companion.LabelNode: rbacNodes[0].name})
	if err != nil {
		t.Errorf("watch secrets as the companion: %v", err)
	} else {
		w.Stop()
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"test.vipvs.io/patched":"yes"}}}`))
	if err := c.Patch(ctx, &one, patch); err != nil {
		t.Errorf("patch secret as the companion: %v", err)
	}
}

// testCompanionForbidden checks what the companion may not do: change
// Secrets other than by patching, touch ConfigMaps, read Nodes, or anything
// outside its namespace.
func testCompanionForbidden(ctx context.Context, t *testing.T, cfg *rest.Config, s *runtime.Scheme) {
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	rbacCheckForbidden(ctx, t, c, []rbacForbiddenCase{
		{"get secret", func(ctx context.Context, c client.Client) error {
			return c.Get(ctx, types.NamespacedName{Namespace: "vrrp-secrets", Name: "vrrp"}, &corev1.Secret{})
		}},
		{"list secrets in default", func(ctx context.Context, c client.Client) error {
			return c.List(ctx, &corev1.SecretList{}, client.InNamespace("default"))
		}},
		{"get node", func(ctx context.Context, c client.Client) error {
			return c.Get(ctx, types.NamespacedName{Name: rbacNodes[0].name}, &corev1.Node{})
		}},
		{"list nodes", func(ctx context.Context, c client.Client) error { return c.List(ctx, &corev1.NodeList{}) }},
		{"create secret", func(ctx context.Context, c client.Client) error {
			return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: manifests.Namespace, Name: "x"}})
		}},
		{"update secret", func(ctx context.Context, c client.Client) error {
			// The Get is allowed, the Update is not.
			var one corev1.Secret
			if err := c.Get(ctx, types.NamespacedName{Namespace: manifests.Namespace, Name: "vipvs-control-plane-master-0"}, &one); err != nil {
				return err
			}
			return c.Update(ctx, &one)
		}},
		{"delete secret", func(ctx context.Context, c client.Client) error {
			return c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: manifests.Namespace, Name: "vipvs-control-plane-master-0"}})
		}},
		{"get configmap in its namespace", func(ctx context.Context, c client.Client) error {
			return c.Get(ctx, types.NamespacedName{Namespace: manifests.Namespace, Name: "vipvs-control-plane-master-0"}, &corev1.ConfigMap{})
		}},
		{"list configmaps in its namespace", func(ctx context.Context, c client.Client) error {
			return c.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(manifests.Namespace))
		}},
		{"create configmap", func(ctx context.Context, c client.Client) error {
			return c.Create(ctx, rbacConfigMap(manifests.Namespace, "x"))
		}},
		{"get loadbalancerconfig", func(ctx context.Context, c client.Client) error {
			return c.Get(ctx, types.NamespacedName{Name: "control-plane"}, &v1alpha1.LoadBalancerConfig{})
		}},
		{"create event", func(ctx context.Context, c client.Client) error {
			return c.Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: manifests.Namespace, Name: "x"},
				InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: rbacNodes[0].name}})
		}},
	})
}

// testRBACDelete deletes the LoadBalancerConfigs: the operator deletes
// their Secrets and releases its finalizer, and the companions remove the
// files.
func testRBACDelete(ctx context.Context, t *testing.T, c client.Client, run *rbacRunner, roots map[string]string) {
	for _, name := range []string{"control-plane", "legacy"} {
		if err := c.Delete(ctx, &v1alpha1.LoadBalancerConfig{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	rbacWaitFor(ctx, t, run, "the LoadBalancerConfigs, their Secrets and files to be gone", func(ctx context.Context) (bool, string, error) {
		var lbcs v1alpha1.LoadBalancerConfigList
		if err := c.List(ctx, &lbcs); err != nil {
			return false, "", err
		}
		var published corev1.SecretList
		if err := c.List(ctx, &published, client.InNamespace(manifests.Namespace), client.HasLabels{companion.LabelLoadBalancerConfig}); err != nil {
			return false, "", err
		}
		var files []string
		for _, n := range rbacNodes {
			for _, lbc := range []string{"control-plane", "legacy"} {
				for _, p := range []string{render.AgentConfigPath(lbc, n.name), render.StaticPodPath(lbc)} {
					if _, err := os.Stat(filepath.Join(roots[n.name], p)); err == nil {
						files = append(files, n.name+":"+p)
					}
				}
			}
		}
		seen := fmt.Sprintf("%d LoadBalancerConfigs, %d Secrets, files %v", len(lbcs.Items), len(published.Items), files)
		return len(lbcs.Items) == 0 && len(published.Items) == 0 && len(files) == 0, seen, nil
	})
}
