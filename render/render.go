package render

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/api/validation"
)

// Where the files of a LoadBalancerConfig go on a node.
const (
	// ConfigDir holds one directory per LoadBalancerConfig, mounted
	// read-only into its agent: the agent configs and the CA bundles.
	ConfigDir = "/etc/vipvs"
	// ManifestsDir is the kubelet's static-pod directory.
	ManifestsDir = "/etc/kubernetes/manifests"
	// RunDir holds the agents' status sockets, mounted into every agent.
	RunDir = "/run/vipvs"
)

// File modes of the rendered files.
const (
	// ModePublic is the mode of a file without a secret.
	ModePublic os.FileMode = 0o644
	// ModeSecret is the mode of an agent config that holds a VRRP
	// password or names a BGP key file, and of the BGP key files.
	ModeSecret os.FileMode = 0o600
)

// MaxNameLength is the longest LoadBalancerConfig name Render accepts:
// the name is a label value of the static pod (at most 63 characters), and
// it keeps the status socket's path well within the 107 bytes of a unix
// socket address.
const MaxNameLength = 63

// ErrNoNodes is the error (found with errors.Is) of a Render given no
// node: spec.nodeSelector selects no node, and there is nothing to render.
var ErrNoNodes = errors.New("spec.nodeSelector selects no node")

// Node is a selected node as the renderer needs it.
type Node struct {
	// Name is the Kubernetes node name, a DNS-1123 subdomain.
	Name string
	// Addresses are its InternalIP addresses, in the node's order (IPv4
	// and/or IPv6). The node's first address of a family is its VRRP
	// source address, its unicast peer address on the other nodes and its
	// address as a selectedNodes backend, for the virtual IPs of that
	// family.
	Addresses []netip.Addr
}

// Input is what Render renders.
type Input struct {
	// Config is the LoadBalancerConfig. Render does not modify it: it
	// applies v1alpha1.SetDefaults to a deep copy, so an object read from
	// a file and the same object read from the API server (which applied
	// the defaults) render the same.
	Config *v1alpha1.LoadBalancerConfig
	// Nodes are the member nodes, in any order (Render sorts them by
	// name); 1 to v1alpha1.MaxNodes.
	Nodes []Node
	// Image is the agent image for the static pod, required.
	Image string
	// Password is the resolved value of spec.vrrp.passwordSecretRef ("" =
	// none): required when the reference is set, refused when it is not.
	Password string
	// Secrets holds resolved secret values by "namespace/name/key" (see
	// SecretKey): the CA bundles of HTTPS backend health checks
	// (healthCheck.http.caSecretRef) and the TCP MD5 keys of BGP peers
	// (spec.bgp.peers[].passwordSecretRef). Each becomes a file next to
	// the agent configs (a BGP key with ModeSecret, see
	// BGPPasswordFilePath), which the agent config names. Entries nothing
	// refers to are ignored.
	Secrets map[string][]byte
	// Bootstrap, when set, is a temporary node that serves the API before
	// the members do: an installer's bootstrap host (OpenShift IPI, a
	// kubeadm bootstrap machine). It is rendered like a member (its agent
	// config and the static pod), and joins every virtual IP of its
	// families at a priority one below the lowest member's for that
	// virtual IP, so that it holds a VIP only while no member does. It is a
	// unicast peer of the members and a selectedNodes backend on every
	// node, so that the members' IPVS services send to its API server
	// until it is gone. Only day 0 renders it: the operator never does, so
	// once the operator runs, the bootstrap node is out of every peer list
	// and backend (a live change, no restart). Its name and addresses must
	// differ from every member's.
	Bootstrap *Node
}

// NodeFiles are one node's files, with their absolute paths on the host.
type NodeFiles struct {
	// NodeName is the node's name.
	NodeName string
	// Files are sorted by Path: the static pod, the CA files, the agent
	// config.
	Files []File
	// Hash is the hex SHA-256 of the agent config's bytes: what the agent
	// reports as its configHash when it runs this config.
	Hash string
	// Bootstrap is set for the files of Input.Bootstrap.
	Bootstrap bool
}

// File is one file to write on a node.
type File struct {
	// Path is the file's absolute path on the node.
	Path string
	// Data is the file's content.
	Data []byte
	// Mode is the file's permission bits: ModeSecret for an agent config
	// with a password, ModePublic otherwise.
	Mode os.FileMode
}

// Output is everything Render rendered.
type Output struct {
	// Nodes are the nodes' files, sorted by node name.
	Nodes []NodeFiles
}

// AgentConfigPath is the path, on the host, of the agent config of node in
// LoadBalancerConfig lbc: /etc/vipvs/<lbc>/nodes/<node>.yaml.
func AgentConfigPath(lbc, node string) string {
	return configDir(lbc) + "/nodes/" + node + ".yaml"
}

// StaticPodPath is the path, on the host, of the static-pod manifest of
// LoadBalancerConfig lbc: /etc/kubernetes/manifests/vipvs-<lbc>.yaml.
func StaticPodPath(lbc string) string {
	return ManifestsDir + "/" + podName(lbc) + ".yaml"
}

// SocketPath is the path, on the host and in the agent's container, of the
// status socket of the agent of LoadBalancerConfig lbc:
// /run/vipvs/<lbc>.sock.
func SocketPath(lbc string) string {
	return RunDir + "/" + lbc + ".sock"
}

// CAFilePath is the path, on the host and in the agent's container, of the
// CA bundle of the health check of service in LoadBalancerConfig lbc, from
// healthCheck.http.caSecretRef: /etc/vipvs/<lbc>/ca-<service>.crt.
func CAFilePath(lbc, service string) string {
	return configDir(lbc) + "/ca-" + service + ".crt"
}

// BGPPasswordFilePath is the path, on the host and in the agent's
// container, of the TCP MD5 key of the BGP peer at index peer of
// spec.bgp.peers in LoadBalancerConfig lbc, from its passwordSecretRef:
// /etc/vipvs/<lbc>/bgp-peer-<peer>-<version>.password (mode 0600). The
// agent config names it as the peer's passwordFile; the key itself is never
// in the agent config. version is the first 12 hex digits of a SHA-256 of
// the LoadBalancerConfig's name and the key, so that a new key is a new
// path and so a new agent config, which the agent reloads (it reads the
// key files when its config changes); the agent config that names it is
// then of mode 0600 too.
func BGPPasswordFilePath(lbc string, peer int, key []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "vipvs bgp key\x00%s\x00", lbc)
	h.Write(key)
	return fmt.Sprintf("%s/bgp-peer-%d-%s.password", configDir(lbc), peer, hex.EncodeToString(h.Sum(nil))[:12])
}

// SecretKey is the key of Input.Secrets for ref: "namespace/name/key".
func SecretKey(ref v1alpha1.SecretKeyReference) string {
	return ref.Namespace + "/" + ref.Name + "/" + ref.Key
}

func configDir(lbc string) string { return ConfigDir + "/" + lbc }

func podName(lbc string) string { return "vipvs-" + lbc }

// InvalidError reports every reason why a LoadBalancerConfig cannot be
// rendered, each naming its field path: fields of the LoadBalancerConfig
// (spec.virtualIPs[0].address), or of the input (nodes[master-0].addresses,
// image). errors.As finds each *field.Error through it, and errors.Is
// finds ErrNoNodes when no node was given.
type InvalidError struct {
	// Name is the LoadBalancerConfig's name.
	Name string
	// Errs are the problems, in the order found.
	Errs field.ErrorList
	// noNodes is set when no node was given.
	noNodes bool
}

// Error lists the problems on one line, separated by "; ".
func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		msgs[i] = fe.Error()
	}
	if len(msgs) == 1 {
		return fmt.Sprintf("cannot render LoadBalancerConfig %q: %s", e.Name, msgs[0])
	}
	return fmt.Sprintf("cannot render LoadBalancerConfig %q (%d problems): %s", e.Name, len(msgs), strings.Join(msgs, "; "))
}

// Unwrap returns the field errors, and ErrNoNodes when no node was given.
func (e *InvalidError) Unwrap() []error {
	errs := make([]error, 0, len(e.Errs)+1)
	for _, fe := range e.Errs {
		errs = append(errs, fe)
	}
	if e.noNodes {
		errs = append(errs, ErrNoNodes)
	}
	return errs
}

// Render renders, for every node of in.Nodes, its agent config, the static
// pod and the CA files (see the package documentation for the paths).
//
// It refuses, with an *InvalidError that lists every problem:
//   - a LoadBalancerConfig that fails validation.ValidateLoadBalancerConfig
//     (after v1alpha1.SetDefaults) or whose name is longer than
//     MaxNameLength;
//   - no node (ErrNoNodes), more than v1alpha1.MaxNodes, a node name that
//     is not a DNS-1123 subdomain or is repeated, a node without an
//     address, an address that is not a unicast address or is another
//     node's or a virtual IP;
//   - a virtual IP whose family no node has an address of, a node that has
//     no address of the family of any virtual IP, a service whose static
//     backends leave out the family of a virtual IP;
//   - spec.vrrp.passwordSecretRef without in.Password, or in.Password
//     without the reference, or longer than 8 bytes; a caSecretRef without
//     its value in in.Secrets, or one that holds no PEM certificate; a BGP
//     peer's passwordSecretRef without its value, or one longer than 80
//     bytes;
//   - a node that speaks BGP without an IPv4 address nor a
//     spec.bgp.byNode[].routerID;
//   - no image.
//
// A node that has no address of a virtual IP's family (an IPv4-only node
// of a dual-stack LoadBalancerConfig) does not take part in that virtual
// IP: it has no router for it, is nobody's peer in it, and is no backend
// of it. A router whose node is the only one of its family has no unicast
// peers, which the agent reads as multicast.
//
// Every rendered agent config passes api/agent/validation.ValidateAgentConfig after
// a strict agentv1alpha1.Decode (a failure is reported as an error of
// nodes[<name>].agentConfig), except for one demand: a virtual IP without
// interface gives a router without interface, which the agent resolves to
// the interface whose subnet holds the VIP.
func Render(in Input) (Output, error) {
	if in.Config == nil {
		return Output{}, errors.New("cannot render: no LoadBalancerConfig given")
	}
	c := in.Config.DeepCopy()
	v1alpha1.SetDefaults(c)

	errs := validation.ValidateLoadBalancerConfig(c)
	if len(c.Name) > MaxNameLength {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), c.Name,
			fmt.Sprintf("must be at most %d characters for the agent's static pod, whose labels hold the name", MaxNameLength)))
	}
	if in.Image == "" {
		errs = append(errs, field.Required(field.NewPath("image"), "the agent image of the static pod must be given, e.g. quay.io/vipvs/vipvs:v0.1.0"))
	} else if strings.ContainsFunc(in.Image, isSpace) {
		errs = append(errs, field.Invalid(field.NewPath("image"), in.Image, "must be an image reference, without whitespace"))
	}
	vips := parseVIPs(c)
	all := in.Nodes
	if in.Bootstrap != nil {
		all = append(slices.Clone(in.Nodes), *in.Bootstrap)
	}
	nodes, nerrs := checkNodes(all, vips)
	errs = append(errs, nerrs...)
	if len(nodes) > 0 {
		errs = append(errs, checkFamilies(c, nodes, vips)...)
		errs = append(errs, checkBGPNodes(c, nodes)...)
	}
	var prios [][]int32
	if len(errs) == 0 && len(in.Nodes) > 0 {
		var perrs field.ErrorList
		prios, perrs = nodePriorities(&c.Spec, nodes, in.Bootstrap)
		errs = append(errs, perrs...)
	}
	errs = append(errs, checkPassword(c, in.Password)...)
	errs = append(errs, checkSecrets(c, in.Secrets)...)
	if len(errs) > 0 || len(in.Nodes) == 0 {
		if len(in.Nodes) == 0 {
			errs = append(errs, field.Required(field.NewPath("spec", "nodeSelector"), "selects no node: there is no node to render for"))
		}
		return Output{}, &InvalidError{Name: c.Name, Errs: errs, noNodes: len(in.Nodes) == 0}
	}

	r := renderer{lbc: c, vips: vips, nodes: nodes, prios: prios, password: in.Password, secrets: in.Secrets}
	pod, err := staticPod(c, in.Image)
	if err != nil {
		return Output{}, fmt.Errorf("rendering the static pod of LoadBalancerConfig %q: %w", c.Name, err)
	}
	out := Output{Nodes: make([]NodeFiles, 0, len(nodes))}
	for k := range nodes {
		nf, verrs, err := r.node(k, pod)
		if err != nil {
			return Output{}, fmt.Errorf("rendering LoadBalancerConfig %q for node %s: %w", c.Name, nodes[k].Name, err)
		}
		errs = append(errs, verrs...)
		nf.Bootstrap = in.Bootstrap != nil && nf.NodeName == in.Bootstrap.Name
		out.Nodes = append(out.Nodes, nf)
	}
	if len(errs) > 0 {
		return Output{}, &InvalidError{Name: c.Name, Errs: errs}
	}
	return out, nil
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// vip is a parsed spec.virtualIPs entry; addr is invalid when the address
// does not parse (validation reports it).
type vip struct {
	index int
	spec  *v1alpha1.VirtualIP
	addr  netip.Addr
}

func parseVIPs(c *v1alpha1.LoadBalancerConfig) []vip {
	vips := make([]vip, len(c.Spec.VirtualIPs))
	for j := range c.Spec.VirtualIPs {
		v := &c.Spec.VirtualIPs[j]
		vips[j] = vip{index: j, spec: v}
		if a, err := netip.ParseAddr(v.Address); err == nil && a.Zone() == "" {
			vips[j].addr = a.Unmap()
		}
	}
	return vips
}

// family is an address family, as the messages name it.
type family string

const (
	ipv4 family = "IPv4"
	ipv6 family = "IPv6"
)

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return ipv4
	}
	return ipv6
}

// firstAddr is n's first address of family f.
func (n *Node) firstAddr(f family) (netip.Addr, bool) {
	for _, a := range n.Addresses {
		if familyOf(a) == f {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// checkNodes checks the nodes and returns them sorted by name, each with
// its own copy of its addresses.
func checkNodes(in []Node, vips []vip) ([]Node, field.ErrorList) {
	var errs field.ErrorList
	np := field.NewPath("nodes")
	if len(in) > v1alpha1.MaxNodes {
		errs = append(errs, field.TooMany(np, len(in), v1alpha1.MaxNodes))
	}
	vipAt := map[netip.Addr]int{}
	for _, v := range vips {
		if v.addr.IsValid() {
			vipAt[v.addr] = v.index
		}
	}
	names := map[string]bool{}
	owners := map[netip.Addr]string{}
	nodes := make([]Node, 0, len(in))
	for i, n := range in {
		p := np.Index(i)
		switch msg := nodeNameError(n.Name); {
		case msg != "":
			errs = append(errs, field.Invalid(p.Child("name"), n.Name, msg))
		case names[n.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), n.Name))
		default:
			p = np.Key(n.Name)
		}
		names[n.Name] = true
		if len(n.Addresses) == 0 {
			errs = append(errs, field.Required(p.Child("addresses"), "the node has no address: it needs an InternalIP address of the family of the virtual IPs"))
		}
		for j, a := range n.Addresses {
			ap := p.Child("addresses").Index(j)
			if msg := nodeAddrError(a); msg != "" {
				errs = append(errs, field.Invalid(ap, a.String(), msg))
				continue
			}
			if idx, ok := vipAt[a]; ok {
				errs = append(errs, field.Invalid(ap, a.String(), fmt.Sprintf("is the virtual IP spec.virtualIPs[%d].address: a virtual IP must not be an address of a node", idx)))
				continue
			}
			if other, ok := owners[a]; ok {
				if other == n.Name {
					errs = append(errs, field.Duplicate(ap, a.String()))
				} else {
					errs = append(errs, field.Invalid(ap, a.String(), fmt.Sprintf("is already an address of node %s: nodes must not share an address", other)))
				}
				continue
			}
			owners[a] = n.Name
		}
		nodes = append(nodes, Node{Name: n.Name, Addresses: slices.Clone(n.Addresses)})
	}
	slices.SortFunc(nodes, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
	return nodes, errs
}

// nodeNameError checks a node name; it returns what is wrong, or "".
func nodeNameError(s string) string {
	if len(k8svalidation.IsDNS1123Subdomain(s)) > 0 {
		return "must be a Kubernetes node name (a DNS-1123 subdomain): at most 253 characters, dot-separated labels of lower-case letters, digits and '-', each starting and ending with a letter or digit"
	}
	return ""
}

// nodeAddrError checks a node address; it returns what is wrong, or "".
func nodeAddrError(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "must be an IP address"
	case a.Zone() != "":
		return "must not have a zone"
	case a.Is4In6():
		return "must not be an IPv4-mapped IPv6 address: write IPv4 addresses in dotted decimal"
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a.IsLinkLocalUnicast(),
		a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "must be a unicast address of the node (an InternalIP): not unspecified, loopback, multicast, link-local or broadcast"
	}
	return ""
}

// checkFamilies checks that every virtual IP has nodes of its family, that
// every node takes part in at least one virtual IP, and that static
// backends cover every family of the virtual IPs.
func checkFamilies(c *v1alpha1.LoadBalancerConfig, nodes []Node, vips []vip) field.ErrorList {
	var errs field.ErrorList
	fams := map[family]bool{}
	var famOrder []family
	firstVIP := map[family]vip{}
	for _, v := range vips {
		if !v.addr.IsValid() {
			continue
		}
		f := familyOf(v.addr)
		if !fams[f] {
			famOrder = append(famOrder, f)
			firstVIP[f] = v
		}
		fams[f] = true
		has := slices.ContainsFunc(nodes, func(n Node) bool { _, ok := n.firstAddr(f); return ok })
		if !has {
			errs = append(errs, field.Invalid(field.NewPath("spec", "virtualIPs").Index(v.index).Child("address"), v.spec.Address,
				fmt.Sprintf("no selected node has an %s address: give the nodes %s addresses, or remove this virtual IP", f, f)))
		}
	}
	if len(famOrder) == 0 {
		return errs
	}
	for _, n := range nodes {
		if len(n.Addresses) == 0 {
			continue // reported by checkNodes
		}
		if !slices.ContainsFunc(famOrder, func(f family) bool { _, ok := n.firstAddr(f); return ok }) {
			errs = append(errs, field.Invalid(field.NewPath("nodes").Key(n.Name).Child("addresses"), addrList(n.Addresses),
				fmt.Sprintf("has no %s address: the node cannot take part in any virtual IP", joinFamilies(famOrder))))
		}
	}
	for i := range c.Spec.Services {
		s := &c.Spec.Services[i]
		if len(s.Backends.Static) == 0 {
			continue
		}
		for _, f := range famOrder {
			has := slices.ContainsFunc(s.Backends.Static, func(b v1alpha1.StaticBackend) bool {
				a, err := netip.ParseAddr(b.Address)
				return err == nil && familyOf(a) == f
			})
			if !has {
				v := firstVIP[f]
				errs = append(errs, field.Invalid(field.NewPath("spec", "services").Index(i).Child("backends", "static"), len(s.Backends.Static),
					fmt.Sprintf("has no %s backend for spec.virtualIPs[%d] (%s): every service is offered on every virtual IP, and IPVS does not forward between families; add an %s backend, or put the %s virtual IPs in a LoadBalancerConfig of their own", f, v.index, v.spec.Address, f, f)))
			}
		}
	}
	return errs
}

// checkBGPNodes checks that every node that speaks BGP has a router ID:
// its byNode entry's, or its first IPv4 address.
func checkBGPNodes(c *v1alpha1.LoadBalancerConfig, nodes []Node) field.ErrorList {
	b := c.Spec.BGP
	if b == nil || b.ExternalSpeaker != nil || len(b.Peers) == 0 || !slices.ContainsFunc(c.Spec.VirtualIPs, func(v v1alpha1.VirtualIP) bool { return v.IsBGP() }) {
		return nil
	}
	ids := map[string]bool{}
	for _, n := range b.ByNode {
		if n.RouterID != "" {
			ids[n.NodeName] = true
		}
	}
	var errs field.ErrorList
	for _, n := range nodes {
		if _, ok := n.firstAddr(ipv4); !ok && !ids[n.Name] && len(n.Addresses) > 0 {
			errs = append(errs, field.Required(field.NewPath("spec", "bgp", "byNode").Key(n.Name).Child("routerID"),
				fmt.Sprintf("node %s has no IPv4 address to be its BGP router ID: list it in spec.bgp.byNode with a routerID (an IPv4 address unique among the speakers)", n.Name)))
		}
	}
	return errs
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func joinFamilies(fs []family) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, " or ")
}

// checkPassword checks the VRRPv2 password against the reference to it.
func checkPassword(c *v1alpha1.LoadBalancerConfig, password string) field.ErrorList {
	p := field.NewPath("spec", "vrrp", "passwordSecretRef")
	ref := c.Spec.VRRP.PasswordSecretRef
	switch {
	case ref != nil && password == "":
		return field.ErrorList{field.Required(p, fmt.Sprintf("the password (key %q of Secret %s/%s) is not given: it must be 1 to 8 bytes", ref.Key, ref.Namespace, ref.Name))}
	case ref == nil && password != "":
		return field.ErrorList{field.Required(p, "a VRRP password is given but passwordSecretRef is not set: set it (with vrrp.version 2), or give no password")}
	case len(password) > 8:
		return field.ErrorList{field.Invalid(p, "<redacted>", fmt.Sprintf("the password is %d bytes long, at most 8: VRRPv2 carries 8 octets of authentication data", len(password)))}
	}
	return nil
}

// maxBGPPasswordBytes is the longest TCP MD5 key (TCP_MD5SIG_MAXKEYLEN).
const maxBGPPasswordBytes = 80

// checkSecrets checks that the CA bundle of every caSecretRef and the key
// of every BGP peer's passwordSecretRef are given.
func checkSecrets(c *v1alpha1.LoadBalancerConfig, secrets map[string][]byte) field.ErrorList {
	var errs field.ErrorList
	if b := c.Spec.BGP; b != nil {
		for i, peer := range b.Peers {
			ref := peer.PasswordSecretRef
			if ref == nil {
				continue
			}
			p := field.NewPath("spec", "bgp", "peers").Index(i).Child("passwordSecretRef")
			data, ok := secrets[SecretKey(*ref)]
			key := strings.TrimRight(string(data), "\r\n")
			switch {
			case !ok || len(key) == 0:
				errs = append(errs, field.Required(p, fmt.Sprintf("the TCP MD5 key of the BGP sessions (key %q of Secret %s/%s) is not given or empty: it must be 1 to %d bytes", ref.Key, ref.Namespace, ref.Name, maxBGPPasswordBytes)))
			case len(key) > maxBGPPasswordBytes:
				errs = append(errs, field.Invalid(p, "<redacted>", fmt.Sprintf("the key in Secret %s/%s is %d bytes long, at most %d (TCP MD5 keys are at most 80 bytes)", ref.Namespace, ref.Name, len(key), maxBGPPasswordBytes)))
			}
		}
	}
	for i := range c.Spec.Services {
		s := &c.Spec.Services[i]
		if s.HealthCheck == nil || s.HealthCheck.HTTP == nil || s.HealthCheck.HTTP.CASecretRef == nil {
			continue
		}
		ref := s.HealthCheck.HTTP.CASecretRef
		p := field.NewPath("spec", "services").Index(i).Child("healthCheck", "http", "caSecretRef")
		data, ok := secrets[SecretKey(*ref)]
		switch {
		case !ok || len(data) == 0:
			errs = append(errs, field.Required(p, fmt.Sprintf("the CA bundle (key %q of Secret %s/%s) is not given", ref.Key, ref.Namespace, ref.Name)))
		case !hasPEMCertificate(data):
			errs = append(errs, field.Invalid(p, SecretKey(*ref), "must hold a PEM bundle of CA certificates (-----BEGIN CERTIFICATE-----)"))
		}
	}
	return errs
}

// sha256Hex is the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
