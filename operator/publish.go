package operator

import (
	"context"
	"fmt"
	"reflect"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/operator/node"
	"github.com/vipvs/vipvs/operator/render"
)

// Labels of the published ConfigMaps besides node.LabelLoadBalancerConfig
// and node.LabelNode.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "vipvs-operator"
	// annotationNodeName holds the full node name (the label may hold a
	// shortened one).
	annotationNodeName = "vipvs.io/node-name"
)

// maxConfigMapName is the length limit of a ConfigMap's name.
const maxConfigMapName = 253

// ConfigMapName is the name of the ConfigMap that carries the files of node
// for LoadBalancerConfig lbc: vipvs-<lbc>-<node>, shortened with a hash
// when longer than 253 characters.
func ConfigMapName(lbc, nodeName string) string {
	return node.Shorten("vipvs-"+lbc+"-"+nodeName, maxConfigMapName)
}

// desiredConfigMap builds the ConfigMap of one node's rendered files,
// owned by lbc.
func (r *Reconciler) desiredConfigMap(lbc *v1alpha1.LoadBalancerConfig, nf render.NodeFiles) (*corev1.ConfigMap, error) {
	files := make([]node.File, len(nf.Files))
	for i, f := range nf.Files {
		files[i] = node.File{Path: f.Path, Data: f.Data, Mode: f.Mode}
	}
	data, bin, ann, err := node.EncodeFiles(files)
	if err != nil {
		return nil, fmt.Errorf("encoding the files of node %s: %w", nf.NodeName, err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ConfigMapName(lbc.Name, nf.NodeName),
			Namespace: r.opts.Namespace,
			Labels: map[string]string{
				node.LabelLoadBalancerConfig: node.LabelValue(lbc.Name),
				node.LabelNode:               node.LabelValue(nf.NodeName),
				labelManagedBy:               managedBy,
			},
			Annotations: map[string]string{
				node.AnnotationFiles:      ann,
				node.AnnotationConfigHash: nf.Hash,
				annotationNodeName:        nf.NodeName,
			},
		},
		Data:       data,
		BinaryData: bin,
	}
	if err := controllerutil.SetControllerReference(lbc, cm, r.scheme); err != nil {
		return nil, fmt.Errorf("setting the owner of configmap %s: %w", cm.Name, err)
	}
	return cm, nil
}

// publishResult counts what publish changed.
type publishResult struct {
	created, updated, deleted []string
}

func (p publishResult) changed() bool {
	return len(p.created)+len(p.updated)+len(p.deleted) > 0
}

// publish makes the ConfigMaps of lbc in the namespace exactly want: it
// creates the missing ones, updates those whose data, labels, operator
// annotations or owner differ (keeping the companion's annotations), and
// deletes the others. It returns the ConfigMaps as they are afterwards,
// by name.
func (r *Reconciler) publish(ctx context.Context, lbc *v1alpha1.LoadBalancerConfig, want []*corev1.ConfigMap) (map[string]*corev1.ConfigMap, publishResult, error) {
	var res publishResult
	existing, err := r.configMaps(ctx, lbc.Name)
	if err != nil {
		return nil, res, err
	}
	out := map[string]*corev1.ConfigMap{}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.Name] = true
		cur, ok := existing[w.Name]
		if !ok {
			if err := r.client.Create(ctx, w); err != nil {
				return nil, res, fmt.Errorf("creating configmap %s/%s: %w", w.Namespace, w.Name, err)
			}
			res.created = append(res.created, w.Name)
			out[w.Name] = w
			continue
		}
		if upToDate(cur, w) {
			out[w.Name] = cur
			continue
		}
		upd := cur.DeepCopy()
		if upd.Labels == nil {
			upd.Labels = map[string]string{}
		}
		for k, v := range w.Labels {
			upd.Labels[k] = v
		}
		if upd.Annotations == nil {
			upd.Annotations = map[string]string{}
		}
		for k, v := range w.Annotations {
			upd.Annotations[k] = v
		}
		upd.Data, upd.BinaryData, upd.OwnerReferences = w.Data, w.BinaryData, w.OwnerReferences
		if err := r.client.Update(ctx, upd); err != nil {
			return nil, res, fmt.Errorf("updating configmap %s/%s: %w", upd.Namespace, upd.Name, err)
		}
		res.updated = append(res.updated, w.Name)
		out[w.Name] = upd
	}
	names := make([]string, 0, len(existing))
	for name := range existing {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if wanted[name] {
			continue
		}
		if err := r.client.Delete(ctx, existing[name]); err != nil && !apierrors.IsNotFound(err) {
			return nil, res, fmt.Errorf("deleting configmap %s/%s: %w", r.opts.Namespace, name, err)
		}
		res.deleted = append(res.deleted, name)
	}
	return out, res, nil
}

// configMaps lists the ConfigMaps of a LoadBalancerConfig in the
// namespace (from the cache), by name.
func (r *Reconciler) configMaps(ctx context.Context, lbc string) (map[string]*corev1.ConfigMap, error) {
	var list corev1.ConfigMapList
	if err := r.client.List(ctx, &list, client.InNamespace(r.opts.Namespace),
		client.MatchingLabels{node.LabelLoadBalancerConfig: node.LabelValue(lbc)}); err != nil {
		return nil, fmt.Errorf("listing the configmaps of LoadBalancerConfig %s: %w", lbc, err)
	}
	out := make(map[string]*corev1.ConfigMap, len(list.Items))
	for i := range list.Items {
		cm := &list.Items[i]
		if cm.DeletionTimestamp == nil {
			out[cm.Name] = cm
		}
	}
	return out, nil
}

// upToDate reports whether cur already has what the operator writes in
// want.
func upToDate(cur, want *corev1.ConfigMap) bool {
	for k, v := range want.Labels {
		if cur.Labels[k] != v {
			return false
		}
	}
	for k, v := range want.Annotations {
		if cur.Annotations[k] != v {
			return false
		}
	}
	return sameStrings(cur.Data, want.Data) && sameBytes(cur.BinaryData, want.BinaryData) &&
		reflect.DeepEqual(cur.OwnerReferences, want.OwnerReferences)
}

func sameStrings(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameBytes(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || string(w) != string(v) {
			return false
		}
	}
	return true
}
