package day0

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/internal/strictyaml"
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

// decodeStrict decodes one YAML document into v with strictyaml.Decode and
// returns its problems, one message each (field path first); none when v
// was decoded.
func decodeStrict(data []byte, v any) []string {
	err := strictyaml.Decode(data, v)
	if err == nil {
		return nil
	}
	var agg utilerrors.Aggregate
	if !errors.As(err, &agg) {
		return []string{err.Error()}
	}
	msgs := make([]string, 0, len(agg.Errors()))
	for _, e := range agg.Errors() {
		msgs = append(msgs, e.Error())
	}
	return msgs
}

// unknownField reports whether msg, a message of decodeStrict, is about an
// unknown field.
func unknownField(msg string) bool { return strings.Contains(msg, ": Forbidden: unknown field") }

// loadConfig reads and strictly decodes a LoadBalancerConfig file.
func loadConfig(path string) (*v1alpha1.LoadBalancerConfig, error) {
	data, err := readInput(path)
	if err != nil {
		return nil, fmt.Errorf("reading the LoadBalancerConfig: %w", err)
	}
	var c v1alpha1.LoadBalancerConfig
	if msgs := decodeStrict(data, &c); len(msgs) > 0 {
		pe := &problemsError{source: path, errs: msgs}
		if slices.ContainsFunc(msgs, unknownField) {
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
