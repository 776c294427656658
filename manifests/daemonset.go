package manifests

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// NodeFile is the manifest of the node companion's DaemonSet.
const NodeFile = "30-node.yaml"

// NodeDaemonSet returns the node companion's DaemonSet of NodeFile for an
// install in namespace with image: its namespace, its --namespace argument,
// its containers' image and its service account (NodeName) set. The
// operator creates it from this with --manage-node-daemonset (an OLM
// bundle cannot hold a DaemonSet), so that there is one DaemonSet whichever
// way vipvs is installed.
func NodeDaemonSet(namespace, image string) (*unstructured.Unstructured, error) {
	if namespace == "" || image == "" {
		return nil, fmt.Errorf("manifests: the node DaemonSet needs a namespace and an image")
	}
	objs, err := Load(NodeFile)
	if err != nil {
		return nil, err
	}
	var ds []Object
	for _, o := range objs {
		if o.GetKind() == "DaemonSet" && o.GetName() == NodeName {
			ds = append(ds, o)
		}
	}
	if len(ds) != 1 {
		return nil, fmt.Errorf("manifests: %s holds %d DaemonSets %s, want one", NodeFile, len(ds), NodeName)
	}
	if err := SetImage(ds, image); err != nil {
		return nil, err
	}
	u := ds[0].Unstructured
	u.SetNamespace(namespace)
	if err := unstructured.SetNestedField(u.Object, NodeName, "spec", "template", "spec", "serviceAccountName"); err != nil {
		return nil, fmt.Errorf("manifests: %s: %w", ds[0], err)
	}
	cs, _, err := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if err != nil {
		return nil, fmt.Errorf("manifests: %s: %w", ds[0], err)
	}
	found := false
	for _, c := range cs {
		m, _ := c.(map[string]any)
		args, _ := m["args"].([]any)
		for i, a := range args {
			if a == "--namespace="+Namespace {
				args[i] = "--namespace=" + namespace
				found = true
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("manifests: %s: no container has the argument --namespace=%s", ds[0], Namespace)
	}
	if err := unstructured.SetNestedSlice(u.Object, cs, "spec", "template", "spec", "containers"); err != nil {
		return nil, fmt.Errorf("manifests: %s: %w", ds[0], err)
	}
	return u, nil
}
