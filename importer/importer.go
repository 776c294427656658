package importer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/vipvs/vipvs/api/v1alpha1"
	apivalidation "github.com/vipvs/vipvs/api/validation"
)

// DefaultSecretNamespace is the namespace of the Secrets that hold the
// VRRP passwords, unless Options.SecretNamespace says otherwise.
const DefaultSecretNamespace = "vipvs-system"

// ErrNothingToImport is returned when the input is valid but holds no
// vrrp_instance with an address vipvs can hold.
var ErrNothingToImport = errors.New("nothing to import: no vrrp_instance with a virtual_ipaddress that vipvs can hold")

// Input is one node's keepalived configuration.
type Input struct {
	// Node is the Kubernetes name of the node that runs the
	// configuration. Optional: when empty, the configuration's router_id
	// (if it is a valid node name and not taken) or "node-N", N being the
	// input's index.
	Node string
	// File is the path of the node's keepalived.conf; includes are
	// resolved relative to the including file's directory.
	File string
}

// Options configure an import.
type Options struct {
	// Inputs are the nodes' configurations, one per node, at least one.
	Inputs []Input
	// NodeSelector is the nodeSelector of the LoadBalancerConfigs, as
	// matchLabels. Optional: when empty, a placeholder
	// (node-role.kubernetes.io/control-plane: "") and a note.
	NodeSelector map[string]string
	// SecretNamespace is the namespace of the password Secrets. Default
	// DefaultSecretNamespace.
	SecretNamespace string
	// FS is where files are read from. Default: the operating system's.
	FS FileSystem
}

// Secret is the VRRPv2 password of a LoadBalancerConfig, to be stored in
// a Kubernetes Secret that the LoadBalancerConfig names.
type Secret struct {
	// Namespace is the Secret's namespace (Options.SecretNamespace).
	Namespace string
	// Name is the Secret's name: the LoadBalancerConfig's, with "-vrrp".
	Name string
	// Key is the key of the password in the Secret's data: "password".
	Key string
	// Value is the password as keepalived sends it (at most 8
	// characters). Never print it.
	Value string
	// Pos is the auth_pass line it comes from.
	Pos Pos
}

// Result is an import's output.
type Result struct {
	// Configs are the LoadBalancerConfigs, each valid (after defaulting)
	// and, together, free of shared addresses and VRIDs.
	Configs []v1alpha1.LoadBalancerConfig
	// Secrets are the passwords the Configs' passwordSecretRefs name.
	Secrets []Secret
	// Notes are the lines that were ignored or approximated, sorted by
	// position.
	Notes []Note
}

// Import translates keepalived configurations, one per node, into
// LoadBalancerConfigs.
//
// Virtual routers are identified across the nodes' files by address
// family and virtual_router_id; the files must agree on each router's
// addresses, VRRP version, advert interval and password. Each node's
// priority goes into spec.priorities.byNode. The virtual routers (with
// the virtual_servers on their addresses) become one LoadBalancerConfig
// as long as they share what a LoadBalancerConfig holds once: VRRP
// settings, priorities, track checks and services (real servers may
// differ by address family: dual stack); others become further
// LoadBalancerConfigs.
//
// Errors name the file and line. When the input is valid but holds no
// usable vrrp_instance, the error is ErrNothingToImport. The result's
// Configs are validated with api/validation; an invalid result is an
// error listing the field errors. The Result is never nil: on error it
// holds the notes collected so far (they may explain the error) and no
// Configs.
func Import(opts Options) (*Result, error) {
	n := &notes{}
	res, err := importConfigs(opts, n)
	if err != nil {
		return &Result{Notes: n.sorted()}, err
	}
	return res, nil
}

func importConfigs(opts Options, n *notes) (*Result, error) {
	if len(opts.Inputs) == 0 {
		return nil, errors.New("no input: name at least one keepalived.conf")
	}
	fsys := opts.FS
	if fsys == nil {
		fsys = osFS{}
	}
	ns := opts.SecretNamespace
	if ns == "" {
		ns = DefaultSecretNamespace
	}
	m := &merger{n: n, selector: opts.NodeSelector, namespace: ns}
	taken := map[string]bool{}
	for _, in := range opts.Inputs {
		if in.Node != "" {
			if msgs := validation.IsDNS1123Subdomain(in.Node); len(msgs) > 0 {
				return nil, fmt.Errorf("node name %q of %s: %s", in.Node, in.File, strings.Join(msgs, "; "))
			}
			if taken[in.Node] {
				return nil, fmt.Errorf("node name %q is given twice", in.Node)
			}
			taken[in.Node] = true
		}
	}
	var errs []error
	for i, in := range opts.Inputs {
		nc, err := readNode(fsys, in, i, taken, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.nodes = append(m.nodes, nc)
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	m.collect()
	if len(m.errs) > 0 {
		return nil, joinErrors(m.errs)
	}
	if len(m.routers) == 0 {
		return nil, ErrNothingToImport
	}
	configs, secrets := m.build()
	if len(m.errs) > 0 {
		return nil, joinErrors(m.errs)
	}
	if err := validate(configs); err != nil {
		return nil, err
	}
	return &Result{Configs: configs, Secrets: secrets, Notes: n.sorted()}, nil
}

// readNode reads and translates one node's configuration and settles its
// node name.
func readNode(fsys FileSystem, in Input, i int, taken map[string]bool, n *notes) (*nodeConf, error) {
	configID := ""
	if in.Node != "" {
		configID, _, _ = strings.Cut(in.Node, ".")
	}
	toks, err := lex(fsys, in.File, configID, n)
	if err != nil {
		return nil, err
	}
	stmts, err := parse(toks)
	if err != nil {
		return nil, err
	}
	node := in.Node
	nc, err := translateFile(stmts, node, in.File, n)
	if err != nil {
		return nil, err
	}
	if node == "" {
		rid := strings.ToLower(nc.routerID)
		switch {
		case rid != "" && len(validation.IsDNS1123Subdomain(rid)) == 0 && !taken[rid]:
			node = rid
			n.add(nc.routerIDPos, "router_id", "node name %q taken from router_id: check that it is the Kubernetes node's name, or name the node with --node NAME=FILE", node)
		default:
			node = "node-" + strconv.Itoa(i)
			for taken[node] {
				node += "-x"
			}
			if nc.routerID != "" {
				n.add(nc.routerIDPos, "router_id", "%q is not a node name (or is taken): the node is called %q; name it with --node NAME=FILE", nc.routerID, node)
			} else {
				n.add(Pos{File: in.File}, "node", "no router_id and no name given: the node is called %q; name it with --node NAME=FILE", node)
			}
		}
		taken[node] = true
	} else if nc.routerID != "" && !strings.EqualFold(nc.routerID, node) {
		n.add(nc.routerIDPos, "router_id", "%q is not used: the node is %q, as named with --node", nc.routerID, node)
	}
	nc.node = node
	return nc, nil
}

// validate checks each LoadBalancerConfig as `vipvs render` would (after
// defaulting a copy), and the set of them for shared addresses and VRIDs.
func validate(configs []v1alpha1.LoadBalancerConfig) error {
	var errs []string
	for i := range configs {
		c := configs[i].DeepCopy()
		v1alpha1.SetDefaults(c)
		for _, e := range apivalidation.ValidateLoadBalancerConfig(c) {
			errs = append(errs, fmt.Sprintf("LoadBalancerConfig %s: %s", c.Name, e.Error()))
		}
	}
	for _, e := range apivalidation.ValidateLoadBalancerConfigSet(configs) {
		errs = append(errs, e.Error())
	}
	if len(errs) > 0 {
		return &invalidError{lines: errs}
	}
	return nil
}

// invalidError is a result that fails validation: the import's output
// would be rejected by the API server.
type invalidError struct{ lines []string }

func (e *invalidError) Error() string {
	return "the imported LoadBalancerConfigs would be rejected:\n  " + strings.Join(e.lines, "\n  ")
}
