package envtest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/manifests"
	"github.com/vipvs/vipvs/test/envtest"
)

// monitoringCRDs are minimal stand-ins for the Prometheus Operator's CRDs
// (see the file's comment).
const monitoringCRDs = "testdata/monitoring-crds.yaml"

// installScheme is the scheme of the install tests: what the manifests
// decode into, and the LoadBalancerConfig API.
func installScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s, err := manifests.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestInstallManifests checks the install manifests of manifests/ against
// a real API server that starts empty (the manifests install the CRD):
// each object decodes strictly and passes a server-side dry-run create, the
// pod templates pass the namespace's Pod Security level (and the operator
// would pass "restricted"), `make install`'s Apply installs everything and
// is idempotent, and the Prometheus Operator objects pass the API server's
// strict field validation against minimal CRDs. One API server serves
// every subtest; they run in order.
func TestInstallManifests(t *testing.T) {
	start := time.Now()
	cfg, _ := envtest.Start(t)
	t.Logf("envtest started in %v", time.Since(start).Round(time.Millisecond))
	s := installScheme(t)
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var objs, mon []manifests.Object
	t.Run("decode", func(t *testing.T) {
		if objs, err = manifests.Load(manifests.Files...); err != nil {
			t.Fatal(err)
		}
		if mon, err = manifests.Load(manifests.MonitoringFiles...); err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Run("dryRun", func(t *testing.T) { testDryRun(ctx, t, c, objs) })
	t.Run("podSecurity", func(t *testing.T) { testPodSecurity(ctx, t, c, objs) })
	t.Run("install", func(t *testing.T) { testInstall(ctx, t, c, objs) })
	t.Run("monitoring", func(t *testing.T) { testMonitoring(ctx, t, cfg, s, mon) })
}

// installDryRun creates o with dryRun=All and strict field validation: the
// API server runs its validation and admission and persists nothing.
func installDryRun(ctx context.Context, c client.Client, o *unstructured.Unstructured) error {
	return c.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
}

// testDryRun dry-run creates every object. The namespaced ones need their
// namespace and the examples their CRD: the Namespace and the CRD are
// dry-run created first, then created for real, then the rest.
func testDryRun(ctx context.Context, t *testing.T, c client.Client, objs []manifests.Object) {
	var first, rest []manifests.Object
	for _, o := range objs {
		if o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition" {
			first = append(first, o)
		} else {
			rest = append(rest, o)
		}
	}
	if len(first) != 3 {
		t.Fatalf("want the Namespace and the two CRDs first, got %v", first)
	}
	for _, o := range first {
		if err := installDryRun(ctx, c, o.Unstructured); err != nil {
			t.Errorf("dry-run create %s (%s): %v", o, o.File, err)
		}
	}
	if err := manifests.Apply(ctx, c, first, manifests.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, o := range rest {
		if err := installDryRun(ctx, c, o.Unstructured); err != nil {
			t.Errorf("dry-run create %s (%s): %v", o, o.File, err)
		}
	}
	// The examples of the OLM bundle (alm-examples) against the CRD.
	for _, name := range []string{"control-plane.yaml", "ingress.yaml"} {
		lbc := loadExample(t, name)
		if err := c.Create(ctx, lbc, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
			t.Errorf("dry-run create of example %s: %v", name, err)
		}
	}
	pool := loadPoolExample(t)
	if err := c.Create(ctx, pool, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
		t.Errorf("dry-run create of example ippool.yaml: %v", err)
	}
	// Nothing was persisted.
	var sas corev1.ServiceAccountList
	if err := c.List(ctx, &sas, client.InNamespace(manifests.Namespace)); err != nil {
		t.Fatal(err)
	}
	for _, sa := range sas.Items {
		if sa.Name == manifests.OperatorName || sa.Name == manifests.NodeName {
			t.Errorf("dry run persisted ServiceAccount %s", sa.Name)
		}
	}
}

// installPodFrom returns a Pod in namespace with the pod template of a
// Deployment's or DaemonSet's manifest.
func installPodFrom(t *testing.T, objs []manifests.Object, kind, name, namespace string) *corev1.Pod {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != kind || o.GetName() != name {
			continue
		}
		var tmpl corev1.PodTemplateSpec
		switch kind {
		case "Deployment":
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
				t.Fatal(err)
			}
			tmpl = d.Spec.Template
		case "DaemonSet":
			var d appsv1.DaemonSet
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
				t.Fatal(err)
			}
			tmpl = d.Spec.Template
		}
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-", Namespace: namespace, Labels: tmpl.Labels},
			Spec:       tmpl.Spec,
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

// testPodSecurity checks the pods the workloads would create against the
// Pod Security admission of the API server: the companion is admitted in
// vipvs-system (privileged) and refused under "baseline" for its hostPath
// volumes, which is why the namespace is privileged; the operator is
// admitted under "restricted".
func testPodSecurity(ctx context.Context, t *testing.T, c client.Client, objs []manifests.Object) {
	for _, level := range []string{"restricted", "baseline"} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "psa-" + level, Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": level, "pod-security.kubernetes.io/enforce-version": "latest",
		}}}
		if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, kind, object, namespace string
		wantErr                       []string // all of these, or admitted when empty
	}{
		{"operator under restricted", "Deployment", manifests.OperatorName, "psa-restricted", nil},
		{"operator in vipvs-system", "Deployment", manifests.OperatorName, manifests.Namespace, nil},
		{"companion in vipvs-system", "DaemonSet", manifests.NodeName, manifests.Namespace, nil},
		{"companion under baseline", "DaemonSet", manifests.NodeName, "psa-baseline",
			[]string{`violates PodSecurity "baseline:latest"`, "hostPath volumes", "etc-vipvs", "static-pods", "run-vipvs", "state"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pod := installPodFrom(t, objs, tt.kind, tt.object, tt.namespace)
			err := c.Create(ctx, pod, client.DryRunAll)
			switch {
			case len(tt.wantErr) == 0 && err != nil:
				t.Errorf("pod of %s %s refused in %s: %v", tt.kind, tt.object, tt.namespace, err)
			case len(tt.wantErr) > 0 && err == nil:
				t.Errorf("pod of %s %s admitted in %s, want it refused", tt.kind, tt.object, tt.namespace)
			case len(tt.wantErr) > 0:
				if !apierrors.IsForbidden(err) {
					t.Errorf("error %v: want Forbidden", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
			}
		})
	}
}

// testInstall applies the manifests as `make install` does, checks that
// every object exists, and applies them again: nothing changes.
func testInstall(ctx context.Context, t *testing.T, c client.Client, objs []manifests.Object) {
	var log strings.Builder
	if err := manifests.Apply(ctx, c, objs, manifests.ApplyOptions{Log: &log}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), " applied\n"); n != len(objs) {
		t.Errorf("Apply logged %d objects, want %d:\n%s", n, len(objs), log.String())
	}
	versions := map[string]string{}
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("%s: %v", o, err)
			continue
		}
		versions[o.String()] = got.GetResourceVersion()
		var owned bool
		for _, mf := range got.GetManagedFields() {
			owned = owned || (mf.Manager == manifests.DefaultFieldManager && mf.Operation == metav1.ManagedFieldsOperationApply)
		}
		if !owned {
			t.Errorf("%s: not applied by field manager %s", o, manifests.DefaultFieldManager)
		}
	}
	if err := manifests.Apply(ctx, c, objs, manifests.ApplyOptions{}); err != nil {
		t.Fatalf("applying again: %v", err)
	}
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Fatal(err)
		}
		if rv := got.GetResourceVersion(); rv != versions[o.String()] {
			t.Errorf("%s changed when applied again (resourceVersion %s -> %s)", o, versions[o.String()], rv)
		}
	}
}

// testMonitoring installs minimal Prometheus Operator CRDs and checks the
// monitoring objects against them with strict field validation; an object
// with a field the CRD does not have is refused, so the check has teeth.
func testMonitoring(ctx context.Context, t *testing.T, cfg *rest.Config, s *runtime.Scheme, mon []manifests.Object) {
	c0, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := manifests.MonitoringAvailable(c0.RESTMapper()); err != nil || ok {
		t.Fatalf("MonitoringAvailable before the CRDs = %v, %v; want false", ok, err)
	}
	b, err := os.ReadFile(monitoringCRDs)
	if err != nil {
		t.Fatal(err)
	}
	crds, err := manifests.Decode(s, monitoringCRDs, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifests.Apply(ctx, c0, crds, manifests.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := manifests.MonitoringAvailable(c.RESTMapper()); err != nil || !ok {
		t.Fatalf("MonitoringAvailable after the CRDs = %v, %v; want true", ok, err)
	}
	for _, o := range mon {
		if err := installDryRun(ctx, c, o.Unstructured); err != nil {
			t.Errorf("dry-run create %s (%s): %v", o, o.File, err)
		}
	}
	// Teeth: a misplaced field and a malformed duration are refused.
	for _, tt := range []struct {
		name    string
		mutate  func(u *unstructured.Unstructured)
		wantErr string
	}{
		{"unknown field", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "critical", "spec", "severity")
		}, `unknown field "spec.severity"`},
		{"bad duration", func(u *unstructured.Unstructured) {
			groups, _, _ := unstructured.NestedSlice(u.Object, "spec", "groups")
			rules := groups[0].(map[string]any)["rules"].([]any)
			rules[0].(map[string]any)["for"] = "five minutes"
			_ = unstructured.SetNestedSlice(u.Object, groups, "spec", "groups")
		}, "spec.groups[0].rules[0].for"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := mon[0].DeepCopy()
			if u.GetKind() != "PrometheusRule" {
				t.Fatalf("first monitoring object is %s, want the PrometheusRule", u.GetKind())
			}
			tt.mutate(u)
			err := installDryRun(ctx, c, u)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("dry-run create = %v, want an error about %s", err, tt.wantErr)
			}
		})
	}
	if err := manifests.Apply(ctx, c, mon, manifests.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
}
