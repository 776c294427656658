package manifests

import (
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// TestLoad decodes every manifest strictly and checks the install order:
// what an object needs comes before it.
func TestLoad(t *testing.T) {
	objs, err := Load(append(append([]string{}, Files...), MonitoringFiles...)...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.String())
	}
	want := []string{
		"Namespace/vipvs-system",
		"CustomResourceDefinition/loadbalancerconfigs.vipvs.io",
		"CustomResourceDefinition/ippools.vipvs.io",
		"ServiceAccount/vipvs-system/vipvs-operator",
		"ClusterRole/vipvs-operator",
		"ClusterRoleBinding/vipvs-operator",
		"Role/vipvs-system/vipvs-operator",
		"RoleBinding/vipvs-system/vipvs-operator",
		"ServiceAccount/vipvs-system/vipvs-node",
		"Role/vipvs-system/vipvs-node",
		"RoleBinding/vipvs-system/vipvs-node",
		"Deployment/vipvs-system/vipvs-operator",
		"Service/vipvs-system/vipvs-operator-metrics",
		"DaemonSet/vipvs-system/vipvs-node",
		"Service/vipvs-system/vipvs-node-metrics",
		"PrometheusRule/vipvs-system/vipvs",
		"ServiceMonitor/vipvs-system/vipvs-operator",
		"ServiceMonitor/vipvs-system/vipvs-node",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("objects (-want +got):\n%s", d)
	}
	for _, o := range objs {
		scoped := o.GetKind() != "Namespace" && o.GetKind() != "CustomResourceDefinition" &&
			o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding"
		if scoped && o.GetNamespace() != Namespace {
			t.Errorf("%s (%s): namespace %q, want %q", o, o.File, o.GetNamespace(), Namespace)
		}
		if o.GetLabels()["app.kubernetes.io/part-of"] != "vipvs" && o.GetKind() != "CustomResourceDefinition" {
			t.Errorf("%s: no label app.kubernetes.io/part-of=vipvs", o)
		}
	}
}

// TestFileLists checks that every YAML file of the directory is in Files
// or MonitoringFiles, and that the kustomizations list the same files in
// the same order.
func TestFileLists(t *testing.T) {
	var onDisk []string
	for _, dir := range []string{".", "crd", "monitoring"} {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") && e.Name() != "kustomization.yaml" {
				onDisk = append(onDisk, path.Join(dir, e.Name()))
			}
		}
	}
	listed := append(append([]string{}, Files...), MonitoringFiles...)
	sort.Strings(onDisk)
	sorted := append([]string{}, listed...)
	sort.Strings(sorted)
	if d := cmp.Diff(sorted, onDisk); d != "" {
		t.Errorf("YAML files in the directory vs Files+MonitoringFiles (-listed +on disk):\n%s", d)
	}

	for _, tt := range []struct {
		file, prefix string
		want         []string
	}{
		{"kustomization.yaml", "", Files},
		{"monitoring/kustomization.yaml", "monitoring/", MonitoringFiles},
	} {
		b, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		var k struct {
			APIVersion string   `json:"apiVersion"`
			Kind       string   `json:"kind"`
			Resources  []string `json:"resources"`
		}
		if err := yaml.UnmarshalStrict(b, &k); err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		var got []string
		for _, r := range k.Resources {
			got = append(got, tt.prefix+r)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s resources (-want +got):\n%s", tt.file, d)
		}
	}
}

// TestDecodeStrict checks that Decode refuses what a lenient decoder would
// silently drop.
func TestDecodeStrict(t *testing.T) {
	s, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, doc, wantErr string
	}{
		{"unknown field", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\nsecret: []\n", `unknown field "secret"`},
		{"misspelt nested field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        imagePullPolicey: Always\n", `unknown field "spec.template.spec.containers[0].imagePullPolicey"`},
		{"wrong case", "apiVersion: v1\nkind: ServiceAccount\nMetadata: {name: a}\n", "metadata.name is required"},
		{"duplicate key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: a, k: b}\n", `"k" already set`},
		{"no name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "metadata.name is required"},
		{"wrong type", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: eighty}]}\n", "port"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(s, "test.yaml", []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Decode error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	// Comment-only documents and separators are skipped; unknown kinds are
	// kept as they are.
	objs, err := Decode(s, "test.yaml", []byte("# only a comment\n---\napiVersion: example.com/v1\nkind: Thing\nmetadata: {name: a}\nspec: {anything: 1}\n---\n"))
	if err != nil || len(objs) != 1 || objs[0].GetKind() != "Thing" {
		t.Errorf("Decode = %v, %v; want the one Thing", objs, err)
	}
}

func typed[T runtime.Object](t *testing.T, objs []Object, kind, name string, into T) T {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
				t.Fatalf("%s: %v", o, err)
			}
			return into
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return into
}

// TestWorkloads checks what the workloads must keep: the flags the
// operator and the companion are started with, one image everywhere, the
// host directories the companion sees, and the security settings.
func TestWorkloads(t *testing.T) {
	objs, err := Load(Files...)
	if err != nil {
		t.Fatal(err)
	}
	dep := typed(t, objs, "Deployment", OperatorName, &appsv1.Deployment{})
	ds := typed(t, objs, "DaemonSet", NodeName, &appsv1.DaemonSet{})

	op := dep.Spec.Template.Spec.Containers[0]
	if d := cmp.Diff([]string{"operator", "--namespace=vipvs-system", "--leader-elect"}, op.Args); d != "" {
		t.Errorf("operator args (-want +got):\n%s", d)
	}
	img, err := Image(objs)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^quay\.io/vipvs/vipvs:v\d+\.\d+\.\d+$`).MatchString(img) {
		t.Errorf("operator image %q: want quay.io/vipvs/vipvs:vX.Y.Z", img)
	}
	if env := envValue(op.Env, "VIPVS_IMAGE"); env != img {
		t.Errorf("VIPVS_IMAGE = %q, want the operator's image %q", env, img)
	}
	ps := dep.Spec.Template.Spec.SecurityContext
	sc := op.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !cmp.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("operator security: pod %+v container %+v; want runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, drop ALL", ps, sc)
	}
	if op.LivenessProbe == nil || op.ReadinessProbe == nil {
		t.Error("operator: want liveness and readiness probes")
	}

	node := ds.Spec.Template.Spec.Containers[0]
	if d := cmp.Diff([]string{"node", "--node-name=$(NODE_NAME)", "--namespace=vipvs-system", "--host-root=/host", "--metrics-bind-address=:8080"}, node.Args); d != "" {
		t.Errorf("companion args (-want +got):\n%s", d)
	}
	if node.Image != img {
		t.Errorf("companion image %q, want the operator's %q", node.Image, img)
	}
	hostPaths := map[string]string{}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.HostPath == nil {
			t.Errorf("companion volume %s is not a hostPath", v.Name)
			continue
		}
		hostPaths[v.Name] = v.HostPath.Path
	}
	mounts := map[string]string{}
	for _, m := range node.VolumeMounts {
		mounts[hostPaths[m.Name]] = m.MountPath
	}
	wantMounts := map[string]string{
		"/etc/vipvs":                "/host/etc/vipvs",
		"/etc/kubernetes/manifests": "/host/etc/kubernetes/manifests",
		"/run/vipvs":                "/host/run/vipvs",
		"/var/lib/vipvs":            "/host/var/lib/vipvs",
	}
	if d := cmp.Diff(wantMounts, mounts); d != "" {
		t.Errorf("companion host mounts (-want +got):\n%s", d)
	}
	csc := node.SecurityContext
	if csc == nil || csc.Privileged == nil || *csc.Privileged || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		csc.Capabilities == nil || !cmp.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) != 0 {
		t.Errorf("companion security context %+v: want not privileged, no escalation, no capabilities", csc)
	}
	if ds.Spec.Template.Spec.PriorityClassName != "system-node-critical" {
		t.Errorf("companion priorityClassName %q", ds.Spec.Template.Spec.PriorityClassName)
	}
	if tol := ds.Spec.Template.Spec.Tolerations; len(tol) != 1 || tol[0].Operator != corev1.TolerationOpExists || tol[0].Key != "" {
		t.Errorf("companion tolerations %+v: want one {operator: Exists}", tol)
	}
}

func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func TestSetImage(t *testing.T) {
	objs, err := Load(Files...)
	if err != nil {
		t.Fatal(err)
	}
	const img = "registry.example/vipvs:v9.9.9"
	if err := SetImage(objs, img); err != nil {
		t.Fatal(err)
	}
	dep := typed(t, objs, "Deployment", OperatorName, &appsv1.Deployment{})
	ds := typed(t, objs, "DaemonSet", NodeName, &appsv1.DaemonSet{})
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != img || envValue(c.Env, "VIPVS_IMAGE") != img || ds.Spec.Template.Spec.Containers[0].Image != img {
		t.Errorf("after SetImage: operator %q (VIPVS_IMAGE %q), companion %q; want %q everywhere",
			c.Image, envValue(c.Env, "VIPVS_IMAGE"), ds.Spec.Template.Spec.Containers[0].Image, img)
	}
	// The embedded files are not changed.
	again, _ := Load(Files...)
	if got, _ := Image(again); got == img {
		t.Error("SetImage changed the embedded manifests")
	}
}

// TestAlertMetrics checks that every vipvs metric the alerts use is one
// the README documents (the agents', the companion's and the operator's).
func TestAlertMetrics(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(vipvs_[a-z_]+)`").FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = true
	}
	if len(documented) < 10 {
		t.Fatalf("found only %d metrics in the README's table: has its format changed?", len(documented))
	}
	objs, err := Load("monitoring/40-prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	groups, _, _ := unstructured.NestedSlice(objs[0].Object, "spec", "groups")
	metric := regexp.MustCompile(`\bvipvs_[a-z_]+\b`)
	alerts := 0
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			rm := r.(map[string]any)
			alerts++
			expr, _ := rm["expr"].(string)
			for _, m := range metric.FindAllString(expr, -1) {
				if !documented[m] {
					t.Errorf("alert %v uses %s, which the README does not list", rm["alert"], m)
				}
			}
			if strings.Count(expr, "(") != strings.Count(expr, ")") {
				t.Errorf("alert %v: unbalanced parentheses in %q", rm["alert"], expr)
			}
			ann, _ := rm["annotations"].(map[string]any)
			if ann["summary"] == nil || ann["description"] == nil {
				t.Errorf("alert %v: want a summary and a description", rm["alert"])
			}
		}
	}
	if alerts < 5 {
		t.Errorf("%d alerts, want at least 5", alerts)
	}
}
