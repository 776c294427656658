package operator

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/vipvs/vipvs/manifests"
)

// NodeDaemonSetFieldManager owns the fields of the node companion's
// DaemonSet that the operator applies (--manage-node-daemonset).
const NodeDaemonSetFieldManager = "vipvs-operator"

// NodeDaemonSet keeps the node companion's DaemonSet (manifests.NodeName,
// the one of manifests/30-node.yaml) in the operator's namespace, with the
// operator's image: it creates it, puts it back when it is deleted, and
// undoes changes to what it sets, with server-side apply. It is for the
// installs that cannot ship a DaemonSet (the OLM bundle); the plain
// manifests apply their own, and the operator then takes over its fields.
// It has no owner (the operator does not own the cluster's nodes), and it
// is left in place when the operator stops managing it.
type NodeDaemonSet struct {
	client  client.Client
	desired *unstructured.Unstructured
}

// nodeDaemonSetCache restricts the cache of DaemonSets to the companion's
// in namespace: the operator's Role allows nothing wider.
func nodeDaemonSetCache(namespace string) cache.ByObject {
	return cache.ByObject{
		Namespaces: map[string]cache.Config{namespace: {}},
		Field:      fields.OneTermEqualSelector("metadata.name", manifests.NodeName),
	}
}

// SetupNodeDaemonSet creates a NodeDaemonSet for namespace and image and
// registers it with mgr, whose cache must be restricted with
// CacheOptions(namespace). Like the LoadBalancerConfig controller, it runs
// on the leader only.
func SetupNodeDaemonSet(mgr manager.Manager, namespace, image string) error {
	r, err := NewNodeDaemonSet(mgr.GetClient(), namespace, image)
	if err != nil {
		return err
	}
	return r.SetupWithManager(mgr)
}

// NewNodeDaemonSet returns the reconciler of the node companion's
// DaemonSet in namespace, whose pods run image.
func NewNodeDaemonSet(c client.Client, namespace, image string) (*NodeDaemonSet, error) {
	ds, err := manifests.NodeDaemonSet(namespace, image)
	if err != nil {
		return nil, fmt.Errorf("operator: the node DaemonSet: %w", err)
	}
	labels := ds.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	// Whoever edits it sees why the edit is undone.
	labels[labelManagedBy] = managedBy
	ds.SetLabels(labels)
	return &NodeDaemonSet{client: c, desired: ds}, nil
}

// SetupWithManager registers the controller: the DaemonSet's creation,
// deletion and changes of its spec, labels or annotations (not of its
// status), and a first run at start, which creates it when it is missing.
func (r *NodeDaemonSet) SetupWithManager(mgr manager.Manager) error {
	key := r.key()
	start := make(chan event.GenericEvent, 1)
	start <- event.GenericEvent{Object: &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}}
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == key.Namespace && o.GetName() == key.Name
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("node-daemonset").
		For(&appsv1.DaemonSet{}, builder.WithPredicates(ours, predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WatchesRawSource(source.Channel(start, &handler.EnqueueRequestForObject{})).
		Complete(r)
}

func (r *NodeDaemonSet) key() types.NamespacedName {
	return types.NamespacedName{Namespace: r.desired.GetNamespace(), Name: r.desired.GetName()}
}

// The DaemonSet permissions are in the Role of
// manifests/10-operator-rbac.yaml (see Reconciler.Reconcile).

// Reconcile applies the DaemonSet, whatever the request (there is one).
func (r *NodeDaemonSet) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	key := r.key()
	log := logr.FromContextOrDiscard(ctx) // names the DaemonSet already
	var cur appsv1.DaemonSet
	err := r.client.Get(ctx, key, &cur)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("getting DaemonSet %s: %w", key, err)
	case cur.DeletionTimestamp != nil:
		// Its deletion event brings the next run, which creates it anew.
		log.V(1).Info("node daemonset being deleted: waiting to create it again")
		return reconcile.Result{}, nil
	}
	u := r.desired.DeepCopy()
	if err := r.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(NodeDaemonSetFieldManager), client.ForceOwnership); err != nil {
		return reconcile.Result{}, fmt.Errorf("applying DaemonSet %s: %w", key, err)
	}
	switch {
	case cur.UID == "":
		log.Info("node daemonset created", "image", r.image())
	case u.GetGeneration() != cur.Generation:
		log.Info("node daemonset updated", "image", r.image(), "generation", u.GetGeneration())
	default:
		log.V(1).Info("node daemonset up to date")
	}
	return reconcile.Result{}, nil
}

// image is the image of the DaemonSet's first container.
func (r *NodeDaemonSet) image() string {
	cs, _, _ := unstructured.NestedSlice(r.desired.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		return ""
	}
	img, _, _ := unstructured.NestedString(cs[0].(map[string]any), "image")
	return img
}
