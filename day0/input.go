package day0

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"
	"strings"

	yamlv2 "go.yaml.in/yaml/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/render"
)

// maxInputSize bounds every input file: they are small YAML documents.
const maxInputSize = 4 << 20

// readInput reads a file of at most maxInputSize bytes.
func readInput(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxInputSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxInputSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxInputSize)
	}
	return data, nil
}

// problemsError is a list of problems of one input, printed one per line.
type problemsError struct {
	source string // the file or flag the problems are in
	errs   []string
	hint   string
}

func (e *problemsError) Error() string {
	return fmt.Sprintf("%s: %s", e.source, strings.Join(e.errs, "; "))
}

// decodeStrict decodes one YAML document into v: a repeated key, an
// unknown field (field names are case-sensitive) and a value of the wrong
// type are errors, all of them reported.
func decodeStrict(data []byte, v any) []string {
	root := reflect.TypeOf(v).Elem()
	if err := checkSingleDocument(data); err != nil {
		return []string{err.Error()}
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return []string{fmt.Sprintf("parsing YAML: %v", err)}
	}
	strict, err := sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	var msgs []string
	if err != nil {
		msgs = append(msgs, decodeErrorMessage(j, err, root))
	}
	for _, e := range strict {
		msgs = append(msgs, e.Error())
	}
	return msgs
}

// hasUnknownFields reports whether data, decoded into v, has fields that v
// does not know: the strict decoder's errors do not say their kind but in
// their text, so only unknown fields are disallowed in this decode.
func hasUnknownFields(data []byte, v any) bool {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return false
	}
	strict, _ := sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowUnknownFields)
	return len(strict) > 0
}

// decodeErrorMessage says, for a person, what the error err of decoding
// the JSON j into a root means. The strict decoder's errors are of an
// internal type, so j is decoded again with encoding/json, whose
// *json.UnmarshalTypeError carries the field path, the JSON kind and the Go
// type as fields (and *json.SyntaxError the offset): nothing is read from
// an error's text.
func decodeErrorMessage(j []byte, err error, root reflect.Type) string {
	stdErr := json.Unmarshal(j, reflect.New(root).Interface())
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(stdErr, &te):
		return typeErrorMessage(te, root)
	case errors.As(stdErr, &se):
		return fmt.Sprintf("parsing: invalid JSON at byte %d: %v", se.Offset, se)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// typeErrorMessage says, for a person, what a value of the wrong type,
// decoded into root, means: which field, what it holds, what it must hold.
func typeErrorMessage(te *json.UnmarshalTypeError, root reflect.Type) string {
	got := map[string]string{"string": "a string", "number": "a number", "bool": "a boolean", "array": "a list", "object": "a mapping"}[te.Value]
	if got == "" {
		got = te.Value
	}
	if te.Field == "" {
		return fmt.Sprintf("Invalid value: %s: must be %s", got, kindName(te.Type))
	}
	t, ok := fieldType(root, strings.Split(te.Field, "."))
	if !ok {
		return fmt.Sprintf("%s: Invalid value: %s: has the wrong type", te.Field, got)
	}
	var want, hint string
	switch {
	case t == reflect.TypeFor[metav1.Duration]():
		want = `a duration string such as "1s" or "100ms"`
	case t.Kind() == reflect.String:
		want = "a string"
		if te.Value == "number" || te.Value == "bool" {
			hint = " (quote it: YAML reads unquoted numbers, true, false, yes, no, on and off as other types)"
		}
	default:
		want = kindName(t)
	}
	return fmt.Sprintf("%s: Invalid value: %s: must be %s%s", te.Field, got, want, hint)
}

// kindName names what a value of Go type t looks like in YAML.
func kindName(t reflect.Type) string {
	switch {
	case t == nil:
		return "another type"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Bool:
		return "a boolean (true or false)"
	case t.Kind() == reflect.Slice:
		return "a list"
	}
	return "a mapping"
}

// fieldType follows a path of JSON field names from t, through pointers,
// lists and inlined structs, to the type of the field.
func fieldType(t reflect.Type, path []string) (reflect.Type, bool) {
	for _, name := range path {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		f, ok := jsonField(t, name)
		if !ok {
			return nil, false
		}
		t = f
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, true
}

// jsonField finds the field of struct t whose JSON name is name, also in
// inlined (embedded) structs.
func jsonField(t reflect.Type, name string) (reflect.Type, bool) {
	for f := range t.Fields() {
		tag, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name {
			return f.Type, true
		}
		if tag == "" && f.Anonymous && (strings.Contains(opts, "inline") || f.Type.Kind() == reflect.Struct) {
			if ft, ok := jsonField(f.Type, name); ok {
				return ft, true
			}
		}
	}
	return nil, false
}

// checkSingleDocument rejects an empty file and a stream of several YAML
// documents, of which the YAML to JSON conversion would silently read only
// the first.
func checkSingleDocument(data []byte) error {
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	docs := 0
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("parsing YAML: %w", err)
		}
		if v != nil {
			docs++
		}
	}
	switch {
	case docs == 0:
		return errors.New("the file holds no YAML document")
	case docs > 1:
		return fmt.Errorf("the file holds %d YAML documents, want exactly one", docs)
	}
	return nil
}

// loadConfig reads and strictly decodes a LoadBalancerConfig file.
func loadConfig(path string) (*v1alpha1.LoadBalancerConfig, error) {
	data, err := readInput(path)
	if err != nil {
		return nil, fmt.Errorf("reading the LoadBalancerConfig: %w", err)
	}
	var c v1alpha1.LoadBalancerConfig
	if msgs := decodeStrict(data, &c); len(msgs) > 0 {
		pe := &problemsError{source: path, errs: msgs}
		if hasUnknownFields(data, &v1alpha1.LoadBalancerConfig{}) {
			pe.hint = "field names are case-sensitive; `kubectl explain loadbalancerconfig.spec --recursive` (with the CRD installed) or api/v1alpha1 in the vipvs source lists them"
		}
		return nil, pe
	}
	var msgs []string
	if want := v1alpha1.GroupVersion.String(); c.APIVersion != want {
		msgs = append(msgs, fmt.Sprintf("apiVersion: Unsupported value: %q: must be %q", c.APIVersion, want))
	}
	if c.Kind != "LoadBalancerConfig" {
		msgs = append(msgs, fmt.Sprintf("kind: Unsupported value: %q: must be \"LoadBalancerConfig\"", c.Kind))
	}
	if len(msgs) > 0 {
		return nil, &problemsError{source: path, errs: msgs, hint: "--config takes one LoadBalancerConfig (apiVersion: vipvs.io/v1alpha1, kind: LoadBalancerConfig); render each LoadBalancerConfig with its own `vipvs render`"}
	}
	return &c, nil
}

// nodesFile is the format of --nodes.
type nodesFile struct {
	// Nodes are the candidate nodes.
	Nodes []nodeEntry `json:"nodes"`
}

// nodeEntry is one node of nodes.yaml.
type nodeEntry struct {
	// Name is the Kubernetes node name.
	Name string `json:"name"`
	// Addresses are the node's InternalIP addresses, in the node's order.
	Addresses []string `json:"addresses"`
	// Labels are the node's labels; when set (even empty), the
	// LoadBalancerConfig's nodeSelector decides whether the node is
	// rendered.
	Labels map[string]string `json:"labels,omitempty"`
}

// selection is the outcome of loadNodes.
type selection struct {
	nodes   []render.Node // the selected nodes, in file order
	skipped []string      // names of the nodes whose labels do not match
	total   int
}

// loadNodes reads and strictly decodes a nodes file, and selects the nodes
// whose labels, where given, match sel; a nil sel selects every node.
func loadNodes(path string, sel *metav1.LabelSelector) (selection, error) {
	data, err := readInput(path)
	if err != nil {
		return selection{}, fmt.Errorf("reading the nodes: %w", err)
	}
	var f nodesFile
	if msgs := decodeStrict(data, &f); len(msgs) > 0 {
		return selection{}, &problemsError{source: path, errs: msgs, hint: nodesHint}
	}
	if len(f.Nodes) == 0 {
		return selection{}, &problemsError{source: path, errs: []string{"nodes: Required value: must list the nodes that share the virtual IPs"}, hint: nodesHint}
	}
	var errs field.ErrorList
	s := selection{total: len(f.Nodes)}
	// An invalid selector is reported by the LoadBalancerConfig's
	// validation; until it is fixed, no node is filtered out.
	selector, selErr := labels.Everything(), error(nil)
	if sel != nil {
		selector, selErr = metav1.LabelSelectorAsSelector(sel)
	}
	for i, n := range f.Nodes {
		p := field.NewPath("nodes").Index(i)
		node := render.Node{Name: n.Name}
		for j, s := range n.Addresses {
			a, err := netip.ParseAddr(s)
			if err != nil {
				errs = append(errs, field.Invalid(p.Child("addresses").Index(j), s, "must be an IP address without prefix length, e.g. 192.0.2.11 or \"2001:db8::11\" (quoted: YAML reads an unquoted address with colons as something else)"))
				continue
			}
			node.Addresses = append(node.Addresses, a)
		}
		if n.Labels != nil && sel != nil && selErr == nil && !selector.Matches(labels.Set(n.Labels)) {
			s.skipped = append(s.skipped, n.Name)
			continue
		}
		s.nodes = append(s.nodes, node)
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return selection{}, &problemsError{source: path, errs: msgs, hint: nodesHint}
	}
	return s, nil
}

const nodesHint = `see 'vipvs render -h' for the format of the nodes file`
