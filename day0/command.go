// Package day0 is `vipvs render`: the day-0 renderer. Before a
// cluster and its operator exist, it renders from a LoadBalancerConfig
// file and a list of nodes the files that run the vipvs agent on each
// node, with the same renderer as the operator (package render),
// so that the operator later finds the files it would have written.
package day0

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"path"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/render"
	"github.com/vipvs/vipvs/version"
)

// ImageRepository is the repository of the agent image; the default image
// is this repository at the version of the running vipvs.
const ImageRepository = "quay.io/vipvs/vipvs"

// DefaultRole is the default MachineConfig role of --openshift.
const DefaultRole = "master"

// openshiftDir is the directory, under --out, of the MachineConfig.
const openshiftDir = "openshift"

const usage = `Usage: vipvs render --config LBC.yaml --nodes NODES.yaml --out DIR [flags]

Renders the files that run the vipvs agent on every node of a
LoadBalancerConfig, for day 0, before the cluster and its operator exist:
each node's agent config and the agent's static pod (and the CA bundles of
HTTPS health checks). The operator renders the same bytes from the same
LoadBalancerConfig, nodes and image, so it takes the nodes over without
changing their files.

--config is one LoadBalancerConfig (apiVersion vipvs.io/v1alpha1), read
strictly: an unknown or mis-cased field is an error. The defaults are
applied as the API server applies them.

--nodes lists the nodes that share the virtual IPs, for example:

  nodes:
  - name: master-0                           # the Kubernetes node name
    addresses: [192.0.2.11, "2001:db8::11"]  # its InternalIPs, in order
    labels: {node-role.kubernetes.io/control-plane: ""}
  - name: master-1
    addresses: [192.0.2.12, "2001:db8::12"]
    labels: {node-role.kubernetes.io/control-plane: ""}
  - name: master-2
    addresses: [192.0.2.13, "2001:db8::13"]
    labels: {node-role.kubernetes.io/control-plane: ""}

  A node's first address of a family is its address for the virtual IPs of
  that family (VRRP source, unicast peer, selectedNodes backend); a node
  without an address of a VIP's family sits that VIP out. labels are
  optional: a node that has them is rendered only when they match
  spec.nodeSelector; a node without them is always rendered.

It writes, under --out (nothing at all when an input is wrong; each file is
replaced atomically):

  <node>/etc/vipvs/<lbc>/nodes/<node>.yaml          the node's agent config
  <node>/etc/kubernetes/manifests/vipvs-<lbc>.yaml  the agent's static pod
  <node>/etc/vipvs/<lbc>/ca-<service>.crt           CA bundles (--secret-file)
  <node>/etc/vipvs/<lbc>/bgp-peer-<i>-<v>.password  BGP TCP MD5 keys, mode 0600
                                                    (--secret-file)
  openshift/99-<role>-vipvs-<lbc>.yaml              with --openshift
  openshift/bootstrap-vipvs-<lbc>.ign               with --openshift --bootstrap

Copy each <node>/ tree to the root of its node. On OpenShift, put the
MachineConfig into the installer's manifests directory instead: it writes
every node's files on every node of --role, so the nodes of the role must be
exactly the nodes rendered.

--bootstrap NAME=ADDRESS[,ADDRESS] adds an installer's bootstrap node (OpenShift
IPI, a kubeadm bootstrap host), which serves the API before the masters
run kube-apiserver: it gets its own agent config and the static pod under
<NAME>/, joins every virtual IP at a priority one below the lowest
member's (so a master that runs its agent takes the VIP over), and is a
unicast peer of every node and a selectedNodes backend of every service on
every node (so the masters send API traffic to it until their own API
servers pass the health checks). Give the services a health check: a
backend gets no connection before its first probe passes, and a bootstrap
node that is shut down is drained. Before it goes away, let the operator
take over (it removes the node from the backends) or stop its
kube-apiserver with --shutdown-delay-duration of at least the check's
fall x interval + timeout (7s with the defaults): see docs/bootstrap.md.
The operator never renders
it: once the operator runs, the bootstrap node leaves every peer list and
backend, a change that the agents apply live. With --openshift, the
bootstrap node's files are left out of the MachineConfig and written as an
Ignition config instead, to merge into bootstrap.ign (after
'openshift-install create ignition-configs': append its storage.files to
those of bootstrap.ign).

Render each LoadBalancerConfig with its own run. Two that share a node need
different spec.agentStatusPort values, and VRIDs that do not collide.

Examples:
  vipvs render --config control-plane.yaml --nodes nodes.yaml --out rendered
  vipvs render --config control-plane.yaml --nodes nodes.yaml --out rendered \
      --openshift --role master --image quay.io/vipvs/vipvs:v0.1.0
  vipvs render --config legacy.yaml --nodes nodes.yaml --out rendered \
      --password-file vrrp-password.txt
  vipvs render --config control-plane.yaml --nodes nodes.yaml --out rendered \
      --openshift --bootstrap bootstrap=192.0.2.19

Flags:
`

// secretFiles is the repeatable --secret-file flag: NAMESPACE/NAME/KEY=FILE.
type secretFiles map[string]string

func (s secretFiles) String() string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k+"="+s[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (s secretFiles) Set(v string) error {
	key, file, ok := strings.Cut(v, "=")
	if !ok || file == "" || strings.Count(key, "/") != 2 || strings.Contains(key, "//") || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("want NAMESPACE/NAME/KEY=FILE, e.g. openshift-config/api-ca/ca.crt=ca.crt")
	}
	if _, dup := s[key]; dup {
		return fmt.Errorf("%s is given twice", key)
	}
	s[key] = file
	return nil
}

// bootstrapFlag is the --bootstrap flag: NAME=ADDRESS[,ADDRESS].
type bootstrapFlag struct{ node *render.Node }

func (b *bootstrapFlag) String() string {
	if b == nil || b.node == nil {
		return ""
	}
	as := make([]string, len(b.node.Addresses))
	for i, a := range b.node.Addresses {
		as[i] = a.String()
	}
	return b.node.Name + "=" + strings.Join(as, ",")
}

func (b *bootstrapFlag) Set(v string) error {
	if b.node != nil {
		return errors.New("given twice: there is one bootstrap node")
	}
	name, list, ok := strings.Cut(v, "=")
	if !ok || name == "" || list == "" {
		return errors.New("want NAME=ADDRESS[,ADDRESS], e.g. bootstrap=192.0.2.19")
	}
	if msgs := k8svalidation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("node name %q: must be a Kubernetes node name (a DNS-1123 subdomain: lower-case letters, digits, '-' and '.')", name)
	}
	n := &render.Node{Name: name}
	for _, s := range strings.Split(list, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("address %q of %s: not an IP address", s, name)
		}
		n.Addresses = append(n.Addresses, a)
	}
	b.node = n
	return nil
}

// options are the parsed flags.
type options struct {
	config, nodes, out, image, passwordFile, role string
	openshift                                     bool
	secrets                                       secretFiles
	bootstrap                                     bootstrapFlag
}

// Command runs `vipvs render` with args (without the subcommand name) and
// returns the exit code: 0 done, 1 an input is wrong or writing failed, 2
// a usage error.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipvs render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{secrets: secretFiles{}}
	fs.StringVar(&o.config, "config", "", "the LoadBalancerConfig YAML file (required)")
	fs.StringVar(&o.nodes, "nodes", "", "the nodes YAML file (required; format above)")
	fs.StringVar(&o.out, "out", "", "the directory to write into (required; created if missing)")
	fs.StringVar(&o.image, "image", "", `the agent image of the static pod (default "`+ImageRepository+`:<this vipvs's version>")`)
	fs.StringVar(&o.passwordFile, "password-file", "", "a file holding the VRRPv2 password of spec.vrrp.passwordSecretRef (one trailing newline is ignored)")
	fs.Var(o.secrets, "secret-file", "a Secret key the LoadBalancerConfig refers to (a healthCheck.http.caSecretRef CA bundle, a spec.bgp.peers[].passwordSecretRef TCP MD5 key) and the file holding its value, as `NAMESPACE/NAME/KEY=FILE`; repeatable")
	fs.BoolVar(&o.openshift, "openshift", false, "also write a MachineConfig with all files, for the OpenShift installer's manifests directory")
	fs.StringVar(&o.role, "role", DefaultRole, "the MachineConfig role (machineconfiguration.openshift.io/role) of --openshift")
	fs.Var(&o.bootstrap, "bootstrap", "an installer's bootstrap node that serves the API until the masters do, as `NAME=ADDRESS[,ADDRESS]` (see above)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vipvs render: unexpected argument %q: every input is a flag (see 'vipvs render -h')\n", fs.Arg(0))
		return 2
	}
	var missing []string
	for _, f := range []struct{ name, value, what string }{
		{"config", o.config, "the LoadBalancerConfig file"},
		{"nodes", o.nodes, "the nodes file"},
		{"out", o.out, "the output directory"},
	} {
		if f.value == "" {
			missing = append(missing, fmt.Sprintf("--%s (%s)", f.name, f.what))
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "vipvs render: missing %s; see 'vipvs render -h'\n", strings.Join(missing, ", "))
		return 2
	}
	if o.image == "" {
		if version.Version == "" || version.Version == "dev" {
			fmt.Fprintf(stderr, "vipvs render: this vipvs was built without a version, so there is no default image: pass --image, e.g. --image %s:v0.1.0\n", ImageRepository)
			return 2
		}
		o.image = ImageRepository + ":" + version.Version
	}

	files, summary, err := renderFiles(o)
	if err != nil {
		printError(stderr, err)
		return 1
	}
	n, err := writeAll(o.out, files)
	if err != nil {
		fmt.Fprintf(stderr, "vipvs render: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, summary)
	if same := len(files) - n; same > 0 {
		fmt.Fprintf(stdout, "Wrote %d files under %s; %d were already up to date.\n", n, o.out, same)
	} else {
		fmt.Fprintf(stdout, "Wrote %d files under %s.\n", n, o.out)
	}
	return 0
}

// renderFiles reads the inputs and renders every file, writing nothing.
// It returns the files and a summary for the user.
func renderFiles(o options) ([]outFile, string, error) {
	// Read both inputs before giving up, so that one run lists the
	// problems of both.
	c, cerr := loadConfig(o.config)
	var selector *metav1.LabelSelector
	if cerr == nil {
		selector = &c.Spec.NodeSelector
	}
	sel, nerr := loadNodes(o.nodes, selector)
	if cerr != nil || nerr != nil {
		return nil, "", errors.Join(cerr, nerr)
	}
	in := render.Input{Config: c, Nodes: sel.nodes, Image: o.image, Secrets: map[string][]byte{}, Bootstrap: o.bootstrap.node}
	if err := readSecrets(o, c, &in); err != nil {
		return nil, "", err
	}
	out, err := render.Render(in)
	if err != nil {
		return nil, "", renderError(err, o, sel, c)
	}

	var files []outFile
	var b strings.Builder
	fmt.Fprintf(&b, "Rendered LoadBalancerConfig %s for %d node(s):\n", c.Name, len(out.Nodes))
	for _, n := range out.Nodes {
		if o.openshift && n.NodeName == openshiftDir {
			return nil, "", fmt.Errorf("a node named %q would share its directory under --out with the MachineConfig: render it without --openshift", openshiftDir)
		}
		role := ""
		if n.Bootstrap {
			role = ", the bootstrap node"
		}
		fmt.Fprintf(&b, "  %s (configHash %s%s)\n", n.NodeName, n.Hash, role)
		for _, f := range n.Files {
			rel := path.Join(n.NodeName, f.Path)
			files = append(files, outFile{rel: rel, data: f.Data, mode: f.Mode})
			fmt.Fprintf(&b, "    %s\n", rel)
		}
	}
	for _, name := range sel.skipped {
		fmt.Fprintf(&b, "  skipped %s: its labels do not match spec.nodeSelector\n", name)
	}
	if o.openshift {
		mc, err := render.MachineConfig(c.Name, o.role, out)
		if err != nil {
			return nil, "", fmt.Errorf("--role: %w", err)
		}
		mode := render.ModePublic
		if in.Password != "" || hasSecretFile(out) {
			mode = render.ModeSecret
		}
		rel := path.Join(openshiftDir, render.MachineConfigName(o.role, c.Name)+".yaml")
		files = append(files, outFile{rel: rel, data: mc, mode: mode})
		fmt.Fprintf(&b, "  MachineConfig for the %s nodes:\n    %s\n", o.role, rel)
		if in.Bootstrap != nil {
			ign, err := render.BootstrapIgnition(c.Name, out)
			if err != nil {
				return nil, "", err
			}
			rel := path.Join(openshiftDir, render.BootstrapIgnitionName(c.Name))
			files = append(files, outFile{rel: rel, data: ign, mode: mode})
			fmt.Fprintf(&b, "  Ignition config of the bootstrap node %s (merge into bootstrap.ign):\n    %s\n", in.Bootstrap.Name, rel)
		}
	}
	return files, strings.TrimSuffix(b.String(), "\n"), nil
}

// readSecrets reads --password-file and --secret-file into in, checking
// them against what the LoadBalancerConfig refers to.
func readSecrets(o options, c *v1alpha1.LoadBalancerConfig, in *render.Input) error {
	var ref *v1alpha1.SecretKeyReference
	if c.Spec.VRRP != nil {
		ref = c.Spec.VRRP.PasswordSecretRef
	}
	switch {
	case ref != nil && o.passwordFile == "":
		return &problemsError{source: o.config, errs: []string{fmt.Sprintf("spec.vrrp.passwordSecretRef: the VRRP password (key %q of Secret %s/%s) is needed", ref.Key, ref.Namespace, ref.Name)},
			hint: "put the password (1 to 8 bytes) in a file and pass --password-file FILE"}
	case ref == nil && o.passwordFile != "":
		return &problemsError{source: "--password-file", errs: []string{"the LoadBalancerConfig has no spec.vrrp.passwordSecretRef, so there is no password to give"},
			hint: "set spec.vrrp.version: 2 and spec.vrrp.passwordSecretRef, or leave --password-file out"}
	case ref != nil:
		data, err := readInput(o.passwordFile)
		if err != nil {
			return fmt.Errorf("reading --password-file: %w", err)
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if pw == "" {
			return &problemsError{source: o.passwordFile, errs: []string{"the password file is empty"}, hint: "the VRRPv2 password is 1 to 8 bytes"}
		}
		in.Password = pw
	}

	wanted := map[string]string{} // secret key -> field path
	for i, s := range c.Spec.Services {
		if s.HealthCheck != nil && s.HealthCheck.HTTP != nil && s.HealthCheck.HTTP.CASecretRef != nil {
			wanted[render.SecretKey(*s.HealthCheck.HTTP.CASecretRef)] = fmt.Sprintf("spec.services[%d].healthCheck.http.caSecretRef", i)
		}
	}
	if b := c.Spec.BGP; b != nil {
		for i, p := range b.Peers {
			if p.PasswordSecretRef != nil {
				wanted[render.SecretKey(*p.PasswordSecretRef)] = fmt.Sprintf("spec.bgp.peers[%d].passwordSecretRef", i)
			}
		}
	}
	var msgs []string
	keys := make([]string, 0, len(wanted))
	for k := range wanted {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := o.secrets[k]; !ok {
			msgs = append(msgs, fmt.Sprintf("%s: the value of Secret key %s is needed: pass --secret-file %s=FILE", wanted[k], k, k))
		}
	}
	given := make([]string, 0, len(o.secrets))
	for k := range o.secrets {
		given = append(given, k)
	}
	sort.Strings(given)
	for _, k := range given {
		if _, ok := wanted[k]; !ok {
			msgs = append(msgs, fmt.Sprintf("--secret-file %s: the LoadBalancerConfig refers to no such Secret key", k))
			continue
		}
		data, err := readInput(o.secrets[k])
		if err != nil {
			return fmt.Errorf("reading --secret-file %s: %w", k, err)
		}
		in.Secrets[k] = data
	}
	if len(msgs) > 0 {
		return &problemsError{source: o.config, errs: msgs}
	}
	return nil
}

// renderError adds to a Render error what the user of the command needs
// to fix it: which file each problem is in, and a hint for the usual ones.
func renderError(err error, o options, sel selection, c *v1alpha1.LoadBalancerConfig) error {
	var inv *render.InvalidError
	if !errors.As(err, &inv) {
		return err
	}
	byFile := map[string][]string{}
	var order []string
	for _, fe := range inv.Errs {
		src := o.config
		switch {
		case strings.HasPrefix(fe.Field, "nodes"):
			src = o.nodes
		case fe.Field == "image":
			src = "--image"
		}
		if _, ok := byFile[src]; !ok {
			order = append(order, src)
		}
		byFile[src] = append(byFile[src], fe.Error())
	}
	var errs []error
	for _, src := range order {
		pe := &problemsError{source: src, errs: byFile[src]}
		if src == o.nodes {
			pe.hint = "node paths name the node (nodes[master-0]) or, for a bad name, its index in " + o.nodes
		}
		errs = append(errs, pe)
	}
	if errors.Is(err, render.ErrNoNodes) {
		hint := fmt.Sprintf("%s lists no node", o.nodes)
		if sel.total > 0 {
			hint = fmt.Sprintf("none of the %d node(s) of %s has labels matching spec.nodeSelector (%s): fix the labels, or leave labels out to render a node whatever its labels",
				sel.total, o.nodes, selectorString(c))
		}
		errs = append(errs, &problemsError{source: o.nodes, errs: []string{"no node is selected"}, hint: hint})
	}
	return errors.Join(errs...)
}

func selectorString(c *v1alpha1.LoadBalancerConfig) string {
	return metav1.FormatLabelSelector(&c.Spec.NodeSelector)
}

// printError prints err for a person: every problem on its own line,
// under the file it is in, with the hint that says how to fix it.
func printError(w io.Writer, err error) {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var pe *problemsError
		if !errors.As(e, &pe) {
			fmt.Fprintf(w, "vipvs render: %v\n", e)
			continue
		}
		if len(pe.errs) == 1 {
			fmt.Fprintf(w, "vipvs render: %s: %s\n", pe.source, pe.errs[0])
		} else {
			fmt.Fprintf(w, "vipvs render: %s: %d problems:\n", pe.source, len(pe.errs))
			for _, m := range pe.errs {
				fmt.Fprintf(w, "  - %s\n", m)
			}
		}
		if pe.hint != "" {
			fmt.Fprintf(w, "  hint: %s\n", pe.hint)
		}
	}
	fmt.Fprintln(w, "Nothing was written.")
}

// hasSecretFile reports whether out holds a file of mode
// render.ModeSecret (a BGP password): a MachineConfig or Ignition file
// that carries it must be as private.
func hasSecretFile(out render.Output) bool {
	for _, n := range out.Nodes {
		for _, f := range n.Files {
			if f.Mode == render.ModeSecret {
				return true
			}
		}
	}
	return false
}
