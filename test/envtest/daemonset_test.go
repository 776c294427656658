package envtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vipvs/vipvs/manifests"
	"github.com/vipvs/vipvs/test/envtest"
)

// TestOperatorManagesNodeDaemonSet installs vipvs as the OLM bundle does,
// without the companion's DaemonSet (a bundle cannot hold one), and runs
// the real operator with --manage-node-daemonset under exactly its service
// account's RBAC (impersonation): it creates the DaemonSet of
// manifests/30-node.yaml in its namespace with its own image and the
// companion's service account, puts it back after a deletion and undoes a
// change of the image. Its Role lets it neither delete the DaemonSet nor
// touch DaemonSets elsewhere.
func TestOperatorManagesNodeDaemonSet(t *testing.T) {
	start := time.Now()
	cfg, _ := envtest.Start(t)
	t.Logf("envtest started in %v", time.Since(start).Round(time.Millisecond))
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
	var bundle []manifests.Object
	for _, o := range objs {
		if o.GetKind() != "DaemonSet" {
			bundle = append(bundle, o)
		}
	}
	if err := manifests.Apply(ctx, admin, bundle, manifests.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}

	// Not the image of the manifests: the DaemonSet's must be the
	// operator's own.
	const image = "registry.example/vipvs:v9.9.9"
	logs := &rbacLogs{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator logs:\n%s", logs.String())
		}
	})
	run := newRBACRunner(t)
	run.start("operator", func(ctx context.Context) error {
		return rbacRunOperator(ctx, rbacImpersonate(cfg, manifests.OperatorName), image, true, logs.logger("operator"))
	})

	key := types.NamespacedName{Namespace: manifests.Namespace, Name: manifests.NodeName}
	// waitDaemonSet waits for the DaemonSet as the operator makes it; a UID
	// other than notUID (a new object) when notUID is set.
	waitDaemonSet := func(what, notUID string) *appsv1.DaemonSet {
		t.Helper()
		var ds appsv1.DaemonSet
		rbacWaitFor(ctx, t, run, what, func(ctx context.Context) (bool, string, error) {
			if err := admin.Get(ctx, key, &ds); err != nil {
				if apierrors.IsNotFound(err) {
					return false, err.Error(), nil
				}
				return false, "", err
			}
			if string(ds.UID) == notUID {
				return false, "the deleted DaemonSet " + notUID, nil
			}
			c := ds.Spec.Template.Spec.Containers
			if len(c) != 1 || c[0].Image != image {
				return false, fmt.Sprintf("containers %+v", c), nil
			}
			return true, "", nil
		})
		return &ds
	}

	ds := waitDaemonSet("the operator to create the node DaemonSet", "")
	want, err := manifests.NodeDaemonSet(manifests.Namespace, image)
	if err != nil {
		t.Fatal(err)
	}
	var wantDS appsv1.DaemonSet
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(want.Object, &wantDS); err != nil {
		t.Fatal(err)
	}
	wantArgs := wantDS.Spec.Template.Spec.Containers[0].Args
	c := ds.Spec.Template.Spec.Containers[0]
	if ds.Namespace != manifests.Namespace || ds.Spec.Template.Spec.ServiceAccountName != manifests.NodeName ||
		!cmp.Equal(c.Args, wantArgs) || ds.Labels["app.kubernetes.io/managed-by"] != "vipvs-operator" {
		t.Errorf("DaemonSet %s/%s: service account %q, args %v, labels %v; want service account %s, args %v, managed by vipvs-operator",
			ds.Namespace, ds.Name, ds.Spec.Template.Spec.ServiceAccountName, c.Args, ds.Labels, manifests.NodeName, wantArgs)
	}
	if len(ds.OwnerReferences) != 0 {
		t.Errorf("owner references %v, want none", ds.OwnerReferences)
	}

	// Deleted: put back (a new object).
	if err := admin.Delete(ctx, ds); err != nil {
		t.Fatal(err)
	}
	ds = waitDaemonSet("the operator to put the deleted node DaemonSet back", string(ds.UID))

	// Another image set by hand: undone.
	patch := client.RawPatch(types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"node","image":"registry.example/other:v1"}]}}}}`))
	if err := admin.Patch(ctx, ds, patch, client.FieldOwner("someone")); err != nil {
		t.Fatal(err)
	}
	if ds.Spec.Template.Spec.Containers[0].Image != "registry.example/other:v1" {
		t.Fatalf("the patch did not change the image: %s", ds.Spec.Template.Spec.Containers[0].Image)
	}
	waitDaemonSet("the operator to undo the change of the DaemonSet's image", "")

	// What the operator's Role does not allow: deleting the DaemonSet,
	// DaemonSets elsewhere.
	op, err := client.New(rbacImpersonate(cfg, manifests.OperatorName), client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	rbacCheckForbidden(ctx, t, op, []rbacForbiddenCase{
		{"delete the node daemonset", func(ctx context.Context, c client.Client) error {
			return c.Delete(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
		}},
		{"list daemonsets in kube-system", func(ctx context.Context, c client.Client) error {
			return c.List(ctx, &appsv1.DaemonSetList{}, client.InNamespace("kube-system"))
		}},
	})
}
