package manifests

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestNodeDaemonSet checks the DaemonSet the operator creates with
// --manage-node-daemonset: that of 30-node.yaml, in the operator's
// namespace, with its image and the companion's service account, and
// nothing else changed.
func TestNodeDaemonSet(t *testing.T) {
	const ns, img = "operators", "registry.example/vipvs:v9.9.9"
	u, err := NodeDaemonSet(ns, img)
	if err != nil {
		t.Fatal(err)
	}
	var got appsv1.DaemonSet
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &got); err != nil {
		t.Fatal(err)
	}
	objs, err := Load(NodeFile)
	if err != nil {
		t.Fatal(err)
	}
	want := typed(t, objs, "DaemonSet", NodeName, &appsv1.DaemonSet{})
	want.Namespace = ns
	want.Spec.Template.Spec.ServiceAccountName = NodeName
	c := &want.Spec.Template.Spec.Containers[0]
	c.Image = img
	for i, a := range c.Args {
		if a == "--namespace="+Namespace {
			c.Args[i] = "--namespace=" + ns
		}
	}
	if d := cmp.Diff(want, &got); d != "" {
		t.Errorf("NodeDaemonSet (-want +got):\n%s", d)
	}
	if got.Spec.Template.Spec.ServiceAccountName != "vipvs-node" || got.Spec.Template.Spec.Containers[0].Args[2] != "--namespace=operators" {
		t.Errorf("service account %q, args %v", got.Spec.Template.Spec.ServiceAccountName, got.Spec.Template.Spec.Containers[0].Args)
	}

	for _, tt := range []struct{ name, ns, img string }{{"no namespace", "", img}, {"no image", ns, ""}} {
		if _, err := NodeDaemonSet(tt.ns, tt.img); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}
