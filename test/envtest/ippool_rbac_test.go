package envtest_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/manifests"
	"github.com/vipvs/vipvs/operator"
	"github.com/vipvs/vipvs/test/envtest"
)

// TestIPPoolAllocatorRBAC installs the manifests and runs the Service
// allocator under exactly the operator's service account (impersonation):
// it reads the pools, Services and Namespaces, writes the Services' and
// the pools' status and the events; and it may not change a Service's
// spec nor create a pool.
func TestIPPoolAllocatorRBAC(t *testing.T) {
	cfg, _ := envtest.Start(t)
	s := installScheme(t)
	admin, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	objs, err := manifests.Load(manifests.Files...)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifests.Apply(ctx, admin, objs, manifests.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	h := &poolHarness{t: t, cfg: rbacImpersonate(cfg, manifests.OperatorName), c: admin, ctx: ctx}
	h.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appsNS}})
	h.create(t, ippool("rbac", true, "192.0.2.8/31"))
	h.startAllocator(false)

	h.create(t, lbService(appsNS, "one"))
	h.waitIngress(t, appsNS, "one", "192.0.2.8")
	h.waitServiceEvent(t, appsNS, "one", corev1.EventTypeNormal, "IPAllocated", "192.0.2.8 (IPPool rbac)")
	h.create(t, lbService(appsNS, "unknown", annotate(v1alpha1.AnnotationIPPool, "nope")))
	h.waitRejected(t, appsNS, "unknown", "UnknownPool", `IPPool "nope"`)
	h.waitPool(t, "rbac", 1, 1, metav1.ConditionTrue, v1alpha1.ReasonPoolValid)

	sc, err := operator.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	op, err := client.New(rbacImpersonate(cfg, manifests.OperatorName), client.Options{Scheme: sc})
	if err != nil {
		t.Fatal(err)
	}
	svc := h.service(t, appsNS, "one")
	svc.Spec.Ports[0].Port = 81
	if err := op.Update(ctx, svc); !apierrors.IsForbidden(err) {
		t.Errorf("the operator updated a Service's spec: %v, want Forbidden", err)
	}
	if err := op.Create(ctx, ippool("by-operator", true, "192.0.2.10/31")); !apierrors.IsForbidden(err) {
		t.Errorf("the operator created an IPPool: %v, want Forbidden", err)
	}
}
