package operator

import (
	"context"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/companion"
	"github.com/vipvs/vipvs/render"
)

// events records the reasons of the events a reconciler emits.
type events struct{ reasons []string }

func (e *events) Eventf(_ runtime.Object, _ runtime.Object, _, reason, _, _ string, _ ...interface{}) {
	e.reasons = append(e.reasons, reason)
}

// TestReconcile runs the reconciler against a fake API client: it
// publishes one Secret per node, reads the companions' reports from them
// into the status and the metrics, deletes the Secret and the series of a
// node that leaves, and, on deletion, every Secret and series.
func TestReconcile(t *testing.T) {
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	m0, m1 := testNode("m0", true, "192.0.2.11"), testNode("m1", true, "192.0.2.12")
	lbc := testLBC("cp")
	cl := fake.NewClientBuilder().WithScheme(s).WithStatusSubresource(&v1alpha1.LoadBalancerConfig{}).
		WithObjects(lbc, &m0, &m1).Build()
	reg := prometheus.NewRegistry()
	rec := &events{}
	r, err := NewReconciler(cl, cl, s, rec, Options{Namespace: "ns", Image: "quay.io/vipvs/vipvs:test", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := logr.NewContext(context.Background(), testr.New(t))
	run := func() {
		t.Helper()
		if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: "cp"}}); err != nil {
			t.Fatal(err)
		}
	}
	secrets := func() map[string]*corev1.Secret {
		t.Helper()
		var list corev1.SecretList
		if err := cl.List(ctx, &list, client.InNamespace("ns")); err != nil {
			t.Fatal(err)
		}
		out := map[string]*corev1.Secret{}
		for i := range list.Items {
			out[list.Items[i].Name] = &list.Items[i]
		}
		return out
	}
	check := func(step string, current, master []string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exposition(current, master)), MetricNodeConfigCurrent, MetricVIPMaster); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}

	run()
	got := secrets()
	if len(got) != 2 {
		t.Fatalf("secrets %v, want vipvs-cp-m0 and vipvs-cp-m1", got)
	}
	for _, n := range []string{"m0", "m1"} {
		sec := got[NodeFilesName("cp", n)]
		if sec == nil {
			t.Fatalf("no secret %s", NodeFilesName("cp", n))
		}
		if sec.Type != corev1.SecretTypeOpaque || sec.Labels[companion.LabelNode] != n || sec.Labels[companion.LabelLoadBalancerConfig] != "cp" ||
			len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].Name != "cp" {
			t.Errorf("secret of %s: type %q, labels %v, owners %v", n, sec.Type, sec.Labels, sec.OwnerReferences)
		}
		files, err := companion.DecodeFiles(sec)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, f := range files {
			paths = append(paths, f.Path)
		}
		if d := cmp.Diff([]string{render.StaticPodPath("cp"), render.AgentConfigPath("cp", n)}, paths); d != "" {
			t.Errorf("files of %s (-want +got):\n%s", n, d)
		}
	}
	check("published, no report yet", []string{
		`{load_balancer_config="cp",node="m0"} 0`,
		`{load_balancer_config="cp",node="m1"} 0`,
	}, nil)

	// The companions report: both run their configuration, m0 is master.
	for _, n := range []string{"m0", "m1"} {
		sec := got[NodeFilesName("cp", n)]
		state := "BACKUP"
		if n == "m0" {
			state = statusv1.StateMaster
		}
		orig := sec.DeepCopy()
		sec.Annotations[companion.AnnotationRunningConfigHash] = sec.Annotations[companion.AnnotationConfigHash]
		sec.Annotations[companion.AnnotationAgentStatus] = statusv1.Summarize(statusv1.Report{Routers: []statusv1.Router{{Name: "api", State: state}}}).Encode()
		if err := cl.Patch(ctx, sec, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
	}
	run()
	var cur v1alpha1.LoadBalancerConfig
	if err := cl.Get(ctx, client.ObjectKey{Name: "cp"}, &cur); err != nil {
		t.Fatal(err)
	}
	if c := findCondition(cur.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != "True" {
		t.Errorf("Ready = %+v, want True", c)
	}
	check("running", []string{
		`{load_balancer_config="cp",node="m0"} 1`,
		`{load_balancer_config="cp",node="m1"} 1`,
	}, []string{
		`{load_balancer_config="cp",node="m0",vip="192.0.2.10"} 1`,
	})

	// m0 no longer matches: its Secret and its series go, and m1 is alone
	// (re-rendered without peers: not running its configuration yet).
	delete(m0.Labels, cpLabel)
	if err := cl.Update(ctx, &m0); err != nil {
		t.Fatal(err)
	}
	run()
	if got := secrets(); len(got) != 1 || got[NodeFilesName("cp", "m1")] == nil {
		t.Errorf("secrets after m0 left: %v, want only m1's", got)
	}
	check("m0 left", []string{`{load_balancer_config="cp",node="m1"} 0`}, nil)

	if err := cl.Delete(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	run()
	if got := secrets(); len(got) != 0 {
		t.Errorf("secrets after deletion: %v", got)
	}
	if err := cl.Get(ctx, client.ObjectKey{Name: "cp"}, &cur); !apierrors.IsNotFound(err) {
		t.Errorf("LoadBalancerConfig after deletion: %v (finalizers %v), want it gone", err, cur.Finalizers)
	}
	check("deleted", nil, nil)
	for _, want := range []string{EventPublished, EventReady, EventNodeLeft, EventCleanedUp} {
		if !strings.Contains(strings.Join(rec.reasons, ","), want) {
			t.Errorf("events %v: no %s", rec.reasons, want)
		}
	}
}

// TestReconcileKeepsMembersWhenTheAPIFails: when listing the nodes fails,
// the reconcile returns the error and leaves the status (the remembered
// members, so the peer lists) and the published Secrets as they are.
func TestReconcileKeepsMembersWhenTheAPIFails(t *testing.T) {
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	m0, m1 := testNode("m0", true, "192.0.2.11"), testNode("m1", true, "192.0.2.12")
	failLists := false
	cl := fake.NewClientBuilder().WithScheme(s).WithStatusSubresource(&v1alpha1.LoadBalancerConfig{}).
		WithObjects(testLBC("cp"), &m0, &m1).
		WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*corev1.NodeList); ok && failLists {
				return apierrors.NewServiceUnavailable("etcd is down")
			}
			return c.List(ctx, list, opts...)
		}}).Build()
	r, err := NewReconciler(cl, cl, s, &events{}, Options{Namespace: "ns", Image: "quay.io/vipvs/vipvs:test", Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := logr.NewContext(context.Background(), testr.New(t))
	req := reconcile.Request{NamespacedName: types.NamespacedName{Name: "cp"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	var before v1alpha1.LoadBalancerConfig
	if err := cl.Get(ctx, client.ObjectKey{Name: "cp"}, &before); err != nil {
		t.Fatal(err)
	}
	if len(before.Status.Nodes) != 2 {
		t.Fatalf("status.nodes = %+v, want m0 and m1", before.Status.Nodes)
	}

	failLists = true
	if _, err := r.Reconcile(ctx, req); err == nil || !strings.Contains(err.Error(), "etcd is down") {
		t.Fatalf("Reconcile() with the node list failing = %v, want its error", err)
	}
	var after v1alpha1.LoadBalancerConfig
	if err := cl.Get(ctx, client.ObjectKey{Name: "cp"}, &after); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before.Status, after.Status); d != "" {
		t.Errorf("status changed although nothing could be observed (-before +after):\n%s", d)
	}
	var secrets corev1.SecretList
	if err := cl.List(ctx, &secrets, client.InNamespace("ns")); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 2 {
		t.Errorf("%d published Secrets after the failed reconcile, want 2", len(secrets.Items))
	}
}
