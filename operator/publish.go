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
	"github.com/vipvs/vipvs/companion"
	"github.com/vipvs/vipvs/render"
)

// Labels of the published Secrets besides companion.LabelLoadBalancerConfig and
// companion.LabelNode.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "vipvs-operator"
	// annotationNodeName holds the full node name (the label may hold a
	// shortened one).
	annotationNodeName = "vipvs.io/node-name"
)

// maxSecretName is the length limit of a Secret's name.
const maxSecretName = 253

// NodeFilesName is the name of the Secret that carries the files of node
// for LoadBalancerConfig lbc: vipvs-<lbc>-<node>, shortened with a hash
// when longer than 253 characters.
func NodeFilesName(lbc, nodeName string) string {
	return companion.Shorten("vipvs-"+lbc+"-"+nodeName, maxSecretName)
}

// desiredSecret builds the Secret of one node's rendered files, owned by
// lbc. It is a Secret, not a ConfigMap: the agent's configuration may hold
// the VRRPv2 password.
func (r *Reconciler) desiredSecret(lbc *v1alpha1.LoadBalancerConfig, nf render.NodeFiles) (*corev1.Secret, error) {
	files := make([]companion.File, len(nf.Files))
	for i, f := range nf.Files {
		files[i] = companion.File{Path: f.Path, Data: f.Data, Mode: f.Mode}
	}
	data, ann, err := companion.EncodeFiles(files)
	if err != nil {
		return nil, fmt.Errorf("encoding the files of node %s: %w", nf.NodeName, err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      NodeFilesName(lbc.Name, nf.NodeName),
			Namespace: r.opts.Namespace,
			Labels: map[string]string{
				companion.LabelLoadBalancerConfig: companion.LabelValue(lbc.Name),
				companion.LabelNode:               companion.LabelValue(nf.NodeName),
				labelManagedBy:                    managedBy,
			},
			Annotations: map[string]string{
				companion.AnnotationFiles:      ann,
				companion.AnnotationConfigHash: nf.Hash,
				annotationNodeName:             nf.NodeName,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	if err := controllerutil.SetControllerReference(lbc, s, r.scheme); err != nil {
		return nil, fmt.Errorf("setting the owner of secret %s: %w", s.Name, err)
	}
	return s, nil
}

// publishResult counts what publish changed.
type publishResult struct {
	created, updated, deleted []string
}

func (p publishResult) changed() bool {
	return len(p.created)+len(p.updated)+len(p.deleted) > 0
}

// publish makes the Secrets of lbc in the namespace exactly want: it
// creates the missing ones, updates those whose data, labels, operator
// annotations or owner differ (keeping the companion's annotations), and
// deletes the others. It returns the Secrets as they are afterwards, by
// name.
func (r *Reconciler) publish(ctx context.Context, lbc *v1alpha1.LoadBalancerConfig, want []*corev1.Secret) (map[string]*corev1.Secret, publishResult, error) {
	var res publishResult
	existing, err := r.nodeSecrets(ctx, lbc.Name)
	if err != nil {
		return nil, res, err
	}
	out := map[string]*corev1.Secret{}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.Name] = true
		cur, ok := existing[w.Name]
		if !ok {
			if err := r.client.Create(ctx, w); err != nil {
				return nil, res, fmt.Errorf("creating secret %s/%s: %w", w.Namespace, w.Name, err)
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
		upd.Data, upd.StringData, upd.OwnerReferences = w.Data, nil, w.OwnerReferences
		if err := r.client.Update(ctx, upd); err != nil {
			return nil, res, fmt.Errorf("updating secret %s/%s: %w", upd.Namespace, upd.Name, err)
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
			return nil, res, fmt.Errorf("deleting secret %s/%s: %w", r.opts.Namespace, name, err)
		}
		res.deleted = append(res.deleted, name)
	}
	return out, res, nil
}

// nodeSecrets lists the published Secrets of a LoadBalancerConfig in the
// namespace (from the cache), by name.
func (r *Reconciler) nodeSecrets(ctx context.Context, lbc string) (map[string]*corev1.Secret, error) {
	var list corev1.SecretList
	if err := r.client.List(ctx, &list, client.InNamespace(r.opts.Namespace),
		client.MatchingLabels{companion.LabelLoadBalancerConfig: companion.LabelValue(lbc)}); err != nil {
		return nil, fmt.Errorf("listing the secrets of LoadBalancerConfig %s: %w", lbc, err)
	}
	out := make(map[string]*corev1.Secret, len(list.Items))
	for i := range list.Items {
		s := &list.Items[i]
		if s.DeletionTimestamp == nil {
			out[s.Name] = s
		}
	}
	return out, nil
}

// upToDate reports whether cur already has what the operator writes in
// want.
func upToDate(cur, want *corev1.Secret) bool {
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
	return sameBytes(cur.Data, want.Data) && reflect.DeepEqual(cur.OwnerReferences, want.OwnerReferences)
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
