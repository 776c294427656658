// Command bundle writes the OLM bundle of vipvs (bundle/: the
// ClusterServiceVersion, the CRD and the other bundle objects, the bundle
// metadata and bundle.Dockerfile) from the install manifests of
// manifests/ (package manifests), the example LoadBalancerConfigs of
// api/v1alpha1/testdata and icon.svg, so that the bundle cannot drift from
// them: `make bundle` runs it, and TestBundleUpToDate fails when bundle/ is
// not what it writes.
//
//	go run ./hack/bundle [--root .] [--out bundle]
//
// What the bundle holds and why:
//   - the operator's Deployment and RBAC become the CSV's install strategy
//     (deployments, clusterPermissions, permissions). OLM installs the
//     operator in a namespace chosen at install time, so the Deployment
//     takes --namespace from its own namespace (downward API) instead of
//     the fixed vipvs-system of manifests/;
//   - the node companion's RBAC becomes a permissions entry of its service
//     account vipvs-node (OLM creates the account, the Role and the
//     binding);
//   - the companion's DaemonSet cannot be a bundle object (OLM installs
//     only Deployments, through the CSV): the operator's Deployment gets
//     --manage-node-daemonset, and the operator creates the DaemonSet of
//     manifests/30-node.yaml in its namespace, with its own image;
//   - the CRDs (LoadBalancerConfig, IPPool), the metrics Services, the PrometheusRule and the
//     ServiceMonitors are bundle objects.
package main

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/internal/strictyaml"
	"github.com/vipvs/vipvs/manifests"
)

//go:embed icon.svg
var icon []byte

// Package, channel and the facts of the CSV that are not in manifests/.
const (
	packageName = "vipvs"
	// channel follows OLM's naming convention (candidate, fast, stable):
	// pre-release versions; maturity says how settled the API is.
	channel        = "candidate"
	maturity       = "alpha"
	minKubeVersion = "1.31.0" // the CRD's validation rules use CEL's IP library (isIP, ip()), new in 1.31
	repository     = "https://github.com/vipvs/vipvs"
)

// examples are the alm-examples, from api/v1alpha1/testdata.
var examples = []string{"control-plane.yaml", "ingress.yaml", "ippool.yaml"}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("bundle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "the repository's root (where api/v1alpha1/testdata is)")
	out := fs.String("out", "bundle", "the bundle directory to write (its manifests/, metadata/ and bundle.Dockerfile are replaced)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	files, err := Generate(*root)
	if err == nil {
		err = Write(*out, files)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bundle: %v\n", err)
		return 1
	}
	return 0
}

// Write replaces the bundle in dir with files (paths relative to dir).
func Write(dir string, files map[string][]byte) error {
	for _, p := range []string{"manifests", "metadata", "bundle.Dockerfile"} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(files) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Generate returns the files of the bundle, by path relative to the bundle
// directory. root is the repository's root.
func Generate(root string) (map[string][]byte, error) {
	objs, err := manifests.Load(manifests.Files...)
	if err != nil {
		return nil, err
	}
	mon, err := manifests.Load(manifests.MonitoringFiles...)
	if err != nil {
		return nil, err
	}
	image, err := manifests.Image(objs)
	if err != nil {
		return nil, err
	}
	version, err := versionOf(image)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	var owned []any
	for _, oc := range ownedCRDs {
		crdBytes, err := manifests.Read(oc.file)
		if err != nil {
			return nil, err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := strictyaml.Decode(crdBytes, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", oc.file, err)
		}
		o, err := ownedCRD(&crd, oc)
		if err != nil {
			return nil, err
		}
		owned = append(owned, o)
		// The CRD as controller-gen wrote it (one document per file: the
		// bundle loader reads the first only).
		files["manifests/"+crd.Spec.Group+"_"+crd.Spec.Names.Plural+".yaml"] = bytes.TrimPrefix(crdBytes, []byte("---\n"))
	}
	csv, err := clusterServiceVersion(root, objs, owned, image, version)
	if err != nil {
		return nil, err
	}
	if files["manifests/"+packageName+".clusterserviceversion.yaml"], err = marshal(csv); err != nil {
		return nil, err
	}

	for _, o := range append(append([]manifests.Object{}, objs...), mon...) {
		switch o.GetKind() {
		case "Service", "PrometheusRule", "ServiceMonitor":
		default:
			continue
		}
		u := o.DeepCopy()
		u.SetNamespace("") // OLM creates them in the operator's namespace
		b, err := marshal(u.Object)
		if err != nil {
			return nil, err
		}
		gv := u.GroupVersionKind().GroupVersion().String()
		files["manifests/"+u.GetName()+"_"+strings.ReplaceAll(gv, "/", "_")+"_"+strings.ToLower(u.GetKind())+".yaml"] = b
	}

	labels := map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1":       "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1":       "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":        "metadata/",
		"operators.operatorframework.io.bundle.package.v1":         packageName,
		"operators.operatorframework.io.bundle.channels.v1":        channel,
		"operators.operatorframework.io.bundle.channel.default.v1": channel,
	}
	ann, err := marshal(map[string]any{"annotations": labels})
	if err != nil {
		return nil, err
	}
	files["metadata/annotations.yaml"] = ann
	var df strings.Builder
	df.WriteString("# Generated by hack/bundle (make bundle); do not edit.\n")
	df.WriteString("# docker build -f bundle/bundle.Dockerfile -t quay.io/vipvs/vipvs-bundle:v" + version + " bundle/\n")
	df.WriteString("FROM scratch\n\n")
	for _, k := range sortedKeys(labels) {
		fmt.Fprintf(&df, "LABEL %s=%s\n", k, labels[k])
	}
	df.WriteString("\nCOPY manifests /manifests/\nCOPY metadata /metadata/\n")
	files["bundle.Dockerfile"] = []byte(df.String())
	return files, nil
}

// versionOf returns the semantic version of an image tagged vX.Y.Z.
func versionOf(image string) (string, error) {
	m := regexp.MustCompile(`:v(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$`).FindStringSubmatch(image)
	if m == nil {
		return "", fmt.Errorf("the operator's image %q is not tagged vX.Y.Z: the bundle's version comes from it", image)
	}
	return m[1], nil
}

// clusterServiceVersion builds the CSV as a plain object, so that it holds
// exactly what the manifests say (TestBundle decodes it strictly into the
// operator-framework type).
func clusterServiceVersion(root string, objs []manifests.Object, owned []any, image, version string) (map[string]any, error) {
	byKind := func(kind, name string) (*unstructured.Unstructured, error) {
		for _, o := range objs {
			if o.GetKind() == kind && o.GetName() == name {
				return o.DeepCopy(), nil
			}
		}
		return nil, fmt.Errorf("manifests: no %s %s", kind, name)
	}
	dep, err := byKind("Deployment", manifests.OperatorName)
	if err != nil {
		return nil, err
	}
	if err := ownNamespace(dep); err != nil {
		return nil, err
	}
	if err := addArg(dep, manageNodeDaemonSet); err != nil {
		return nil, err
	}
	// The DaemonSet the operator creates: checked here, so that the
	// bundle is not generated when the operator could not build it.
	if _, err := manifests.NodeDaemonSet(manifests.Namespace, image); err != nil {
		return nil, err
	}
	ns, err := byKind("Namespace", manifests.Namespace)
	if err != nil {
		return nil, err
	}
	perms, clusterPerms, err := permissions(objs)
	if err != nil {
		return nil, err
	}
	almExamples, err := exampleJSON(root)
	if err != nil {
		return nil, err
	}
	nsJSON, err := json.Marshal(ns.Object)
	if err != nil {
		return nil, err
	}
	depSpec, _, _ := unstructured.NestedMap(dep.Object, "spec")

	return map[string]any{
		"apiVersion": "operators.coreos.com/v1alpha1",
		"kind":       "ClusterServiceVersion",
		"metadata": map[string]any{
			"name": packageName + ".v" + version,
			"annotations": map[string]any{
				"alm-examples":   almExamples,
				"capabilities":   "Basic Install",
				"categories":     "Networking",
				"containerImage": image,
				"description":    "Highly available virtual IPs (VRRP) and IPVS load balancing for the API server and the ingress of bare-metal clusters, keepalived-compatible.",
				"repository":     repository,
				"support":        "vipvs",
				"operatorframework.io/suggested-namespace": manifests.Namespace,
				// With its Pod Security labels: the node companion needs
				// hostPath volumes.
				"operatorframework.io/suggested-namespace-template": string(nsJSON),
				"operatorframework.io/cluster-monitoring":           "true",
			},
		},
		"spec": map[string]any{
			"displayName":    "vipvs",
			"description":    description,
			"version":        version,
			"maturity":       maturity,
			"minKubeVersion": minKubeVersion,
			"keywords":       []any{"vrrp", "ipvs", "keepalived", "load balancer", "virtual ip", "bare metal", "api vip", "ingress vip", "high availability"},
			"maintainers":    []any{map[string]any{"name": "vipvs maintainers", "email": "maintainers@vipvs.io"}},
			"provider":       map[string]any{"name": "vipvs", "url": repository},
			"links": []any{
				map[string]any{"name": "Source code", "url": repository},
				map[string]any{"name": "Documentation", "url": repository + "/blob/main/README.md"},
			},
			"icon": []any{map[string]any{"base64data": base64.StdEncoding.EncodeToString(icon), "mediatype": "image/svg+xml"}},
			// One operator per cluster: it watches the cluster-scoped
			// LoadBalancerConfigs and its own namespace, whatever the
			// OperatorGroup targets.
			"installModes": []any{
				map[string]any{"type": "OwnNamespace", "supported": false},
				map[string]any{"type": "SingleNamespace", "supported": false},
				map[string]any{"type": "MultiNamespace", "supported": false},
				map[string]any{"type": "AllNamespaces", "supported": true},
			},
			"install": map[string]any{
				"strategy": "deployment",
				"spec": map[string]any{
					"deployments": []any{map[string]any{
						"name":  dep.GetName(),
						"label": toAny(dep.GetLabels()),
						"spec":  depSpec,
					}},
					"clusterPermissions": clusterPerms,
					"permissions":        perms,
				},
			},
			"customresourcedefinitions": map[string]any{"owned": owned},
			"relatedImages":             []any{map[string]any{"name": "vipvs", "image": image}},
		},
	}, nil
}

// ownNamespace makes a workload take --namespace from the namespace it
// runs in: OLM chooses the namespace at install time.
func ownNamespace(u *unstructured.Unstructured) error {
	cs, _, err := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if err != nil {
		return err
	}
	found := false
	for _, c := range cs {
		m := c.(map[string]any)
		args, _ := m["args"].([]any)
		for i, a := range args {
			if a == "--namespace="+manifests.Namespace {
				args[i] = "--namespace=$(POD_NAMESPACE)"
				found = true
			}
		}
		env, _ := m["env"].([]any)
		m["env"] = append([]any{map[string]any{
			"name":      "POD_NAMESPACE",
			"valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.namespace"}},
		}}, env...)
	}
	if !found {
		return fmt.Errorf("%s %s: no --namespace=%s argument", u.GetKind(), u.GetName(), manifests.Namespace)
	}
	return unstructured.SetNestedSlice(u.Object, cs, "spec", "template", "spec", "containers")
}

// manageNodeDaemonSet is the operator's flag that makes it create the
// node companion's DaemonSet (operator/command.go).
const manageNodeDaemonSet = "--manage-node-daemonset"

// addArg appends arg to the arguments of a workload's first container.
func addArg(u *unstructured.Unstructured, arg string) error {
	cs, _, err := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if err != nil || len(cs) == 0 {
		return fmt.Errorf("%s %s: no containers", u.GetKind(), u.GetName())
	}
	m := cs[0].(map[string]any)
	args, _ := m["args"].([]any)
	m["args"] = append(args, arg)
	return unstructured.SetNestedSlice(u.Object, cs, "spec", "template", "spec", "containers")
}

// permissions turns the RBAC of the manifests into the CSV's: the rules of
// each Role (ClusterRole) bound to a service account of the namespace, by
// account.
func permissions(objs []manifests.Object) (perms, clusterPerms []any, err error) {
	rules := map[string][]any{}
	for _, o := range objs {
		if o.GetKind() == "Role" || o.GetKind() == "ClusterRole" {
			r, _, _ := unstructured.NestedSlice(o.Object, "rules")
			rules[o.GetKind()+"/"+o.GetName()] = r
		}
	}
	type binding struct{ sa, role string }
	var bs, cbs []binding
	for _, o := range objs {
		if o.GetKind() != "RoleBinding" && o.GetKind() != "ClusterRoleBinding" {
			continue
		}
		kind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
		name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		for _, s := range subjects {
			m := s.(map[string]any)
			if m["kind"] != "ServiceAccount" || m["namespace"] != manifests.Namespace {
				return nil, nil, fmt.Errorf("%s: subject %v is not a service account of %s", o, m, manifests.Namespace)
			}
			b := binding{sa: m["name"].(string), role: kind + "/" + name}
			if _, ok := rules[b.role]; !ok {
				return nil, nil, fmt.Errorf("%s: no %s", o, b.role)
			}
			if o.GetKind() == "RoleBinding" {
				bs = append(bs, b)
			} else {
				cbs = append(cbs, b)
			}
		}
	}
	conv := func(bs []binding) []any {
		sort.Slice(bs, func(i, j int) bool { return bs[i].sa+bs[i].role < bs[j].sa+bs[j].role })
		var out []any
		for _, b := range bs {
			out = append(out, map[string]any{"serviceAccountName": b.sa, "rules": rules[b.role]})
		}
		return out
	}
	return conv(bs), conv(cbs), nil
}

// exampleJSON returns the alm-examples annotation: the example
// LoadBalancerConfigs, checked strictly against the Go types.
func exampleJSON(root string) (string, error) {
	var out []any
	for _, name := range examples {
		p := filepath.Join(root, "api", "v1alpha1", "testdata", name)
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		var obj map[string]any
		if err := yaml.Unmarshal(b, &obj); err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		var typed any = &v1alpha1.LoadBalancerConfig{}
		if obj["kind"] == "IPPool" {
			typed = &v1alpha1.IPPool{}
		}
		if err := strictyaml.Decode(b, typed); err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, obj)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// descriptor is a field shown in the console, described by the CRD's
// schema.
type descriptor struct {
	path, displayName string
	xDescriptors      []string
}

const advanced = "urn:alm:descriptor:com.tectonic.ui:advanced"

var specDescriptors = []descriptor{
	{"nodeSelector", "Node selector", []string{"urn:alm:descriptor:com.tectonic.ui:selector:core:v1:Node"}},
	{"virtualIPs", "Virtual IPs", nil},
	{"mode", "Mode", nil}, // x-descriptors from the schema's enum
	{"services", "Services", nil},
	{"vrrp", "VRRP", []string{advanced}},
	{"priorities", "Priorities", []string{advanced}},
	{"trackChecks", "Track checks", []string{advanced}},
	{"preemptAfterChecks", "Preempt after checks", []string{"urn:alm:descriptor:com.tectonic.ui:booleanSwitch", advanced}},
	{"agentStatusPort", "Agent status port", []string{"urn:alm:descriptor:com.tectonic.ui:number", advanced}},
}

var statusDescriptors = []descriptor{
	{"conditions", "Conditions", []string{"urn:alm:descriptor:io.kubernetes.conditions"}},
	{"masters", "Masters", []string{"urn:alm:descriptor:text"}},
	{"vips", "Virtual IPs", nil},
	{"nodes", "Nodes", nil},
}

var poolSpecDescriptors = []descriptor{
	{"addresses", "Addresses", nil},
	{"autoAssign", "Assign automatically", []string{"urn:alm:descriptor:com.tectonic.ui:booleanSwitch"}},
	{"avoidBuggyIPs", "Avoid .0 and .255", []string{"urn:alm:descriptor:com.tectonic.ui:booleanSwitch", advanced}},
	{"serviceAllocation", "Service allocation", []string{advanced}},
	{"announcement", "Announcement", nil},
}

var poolStatusDescriptors = []descriptor{
	{"conditions", "Conditions", []string{"urn:alm:descriptor:io.kubernetes.conditions"}},
	{"assigned", "Assigned", []string{"urn:alm:descriptor:text"}},
	{"available", "Available", []string{"urn:alm:descriptor:text"}},
}

// ownedCRDInfo is what the CSV says of one owned CRD besides its schema.
type ownedCRDInfo struct {
	file, displayName string
	spec, status      []descriptor
	// resources are the kinds of objects the operator makes or changes
	// for the CRD's objects.
	resources []any
}

// ownedCRDs are the CRDs of the bundle, in the CSV's order.
var ownedCRDs = []ownedCRDInfo{
	{file: manifests.CRDFile, displayName: "Load Balancer Config", spec: specDescriptors, status: statusDescriptors,
		resources: []any{map[string]any{"kind": "Secret", "name": "", "version": "v1"}}},
	{file: manifests.IPPoolCRDFile, displayName: "IP Pool", spec: poolSpecDescriptors, status: poolStatusDescriptors,
		resources: []any{map[string]any{"kind": "Service", "name": "", "version": "v1"}}},
}

// ownedCRD describes the CRD for the CSV, with the descriptions of its
// schema.
func ownedCRD(crd *apiextensionsv1.CustomResourceDefinition, info ownedCRDInfo) (map[string]any, error) {
	var version *apiextensionsv1.CustomResourceDefinitionVersion
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Storage {
			version = &crd.Spec.Versions[i]
		}
	}
	if version == nil || version.Schema == nil || version.Schema.OpenAPIV3Schema == nil {
		return nil, fmt.Errorf("CRD %s: no storage version with a schema", crd.Name)
	}
	root := version.Schema.OpenAPIV3Schema
	descs := func(section string, ds []descriptor) ([]any, error) {
		props := root.Properties[section].Properties
		var out []any
		for _, d := range ds {
			p, ok := props[d.path]
			if !ok {
				return nil, fmt.Errorf("CRD %s: no field %s.%s", crd.Name, section, d.path)
			}
			x := d.xDescriptors
			for _, e := range p.Enum {
				var v string
				if err := json.Unmarshal(e.Raw, &v); err == nil {
					x = append(x, "urn:alm:descriptor:com.tectonic.ui:select:"+v)
				}
			}
			m := map[string]any{"path": d.path, "displayName": d.displayName, "description": firstParagraph(p.Description)}
			if len(x) > 0 {
				m["x-descriptors"] = toAnySlice(x)
			}
			out = append(out, m)
		}
		return out, nil
	}
	spec, err := descs("spec", info.spec)
	if err != nil {
		return nil, err
	}
	status, err := descs("status", info.status)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"name":              crd.Name,
		"version":           version.Name,
		"kind":              crd.Spec.Names.Kind,
		"displayName":       info.displayName,
		"description":       firstParagraph(root.Description),
		"resources":         info.resources,
		"specDescriptors":   spec,
		"statusDescriptors": status,
	}, nil
}

// firstParagraph returns the first paragraph of a schema description, on
// one line.
func firstParagraph(s string) string {
	p, _, _ := strings.Cut(strings.TrimSpace(s), "\n\n")
	return strings.Join(strings.Fields(p), " ")
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func toAnySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// marshal writes an object as YAML, with a header saying where it comes
// from.
func marshal(obj any) ([]byte, error) {
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Generated by hack/bundle (make bundle) from manifests/; do not edit.\n"), b...), nil
}
