package importer

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

const commandUsage = `Usage: vipvs import [flags] [-f FILE | --node NAME=FILE]...

Translates keepalived configurations into LoadBalancerConfig YAML, and reports
on stderr, line by line ("file:line: keyword: what happened"), every keepalived
line that was ignored or only approximated and what to do about it.

A keepalived.conf is one node's view: it holds that node's priority only.
Import every node's file, each with the Kubernetes node's name, so that the
priorities of all nodes are known and the files are checked to agree (same
virtual_router_ids, virtual IPs, advert_int and password):

  vipvs import --node master-0=master-0/keepalived.conf \
               --node master-1=master-1/keepalived.conf \
               --node master-2=master-2/keepalived.conf \
               --node-selector node-role.kubernetes.io/master= \
               --secrets-out vrrp-secrets.yaml --out lbc.yaml

With -f FILE the node's name is the file's router_id when that is a valid node
name, else node-0, node-1, ... (or --node-name NAME for a single file).
Conditional lines (@id, @^id) are evaluated with the node name's first label
as keepalived's config id.

The virtual routers become one LoadBalancerConfig when they share what a
LoadBalancerConfig holds once (VRRP settings, priorities, track checks and
services); otherwise one each, in one multi-document YAML. VRRPv2 passwords
(auth_pass) go into Secrets: the LoadBalancerConfig names them, the report
never shows them, and --secrets-out writes them (mode 0600).

Exit status: 0 when converted (even with notes), 1 when the input is invalid
or holds nothing to import, 2 on usage errors.

Flags:
`

// notMappedBGP is the report's line on what keepalived cannot say, so
// nothing maps to it: announcing virtual IPs over BGP.
const notMappedBGP = "vipvs import: not mapped: BGP (active/active over ECMP: virtualIPs[].mode bgp, spec.bgp) is available, but keepalived has no BGP: every virtual IP is imported in mode vrrp (see docs/bgp-config.md)"

// inputsFlag collects -f and --node in command-line order.
type inputsFlag struct {
	inputs *[]Input
	named  bool
}

func (f inputsFlag) String() string { return "" }

func (f inputsFlag) Set(v string) error {
	if !f.named {
		*f.inputs = append(*f.inputs, Input{File: v})
		return nil
	}
	name, file, ok := strings.Cut(v, "=")
	if !ok || name == "" || file == "" {
		return fmt.Errorf("want NAME=FILE, got %q", v)
	}
	*f.inputs = append(*f.inputs, Input{Node: name, File: file})
	return nil
}

// selectorFlag collects KEY=VALUE labels.
type selectorFlag map[string]string

func (f selectorFlag) String() string { return "" }

func (f selectorFlag) Set(v string) error {
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE (VALUE may be empty), got %q", kv)
		}
		f[k] = val
	}
	return nil
}

// Command runs `vipvs import` and returns the exit status.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipvs import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var inputs []Input
	selector := selectorFlag{}
	fs.Var(inputsFlag{inputs: &inputs}, "f", "a node's keepalived.conf `FILE` (repeat for each node)")
	fs.Var(inputsFlag{inputs: &inputs, named: true}, "node", "node NAME's keepalived.conf, as `NAME=FILE` (repeat for each node)")
	nodeName := fs.String("node-name", "", "the node's `NAME` when a single -f FILE is imported")
	fs.Var(selector, "node-selector", "the LoadBalancerConfigs' nodeSelector labels, as `KEY=VALUE[,KEY=VALUE]` (default: a placeholder, reported)")
	out := fs.String("out", "", "write the LoadBalancerConfigs to `FILE` instead of stdout")
	secretsOut := fs.String("secrets-out", "", "write the Secrets holding the VRRP passwords to `FILE` (mode 0600)")
	namespace := fs.String("secret-namespace", DefaultSecretNamespace, "the `NAMESPACE` of the password Secrets")
	fs.Usage = func() {
		fmt.Fprint(stderr, commandUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	for _, f := range fs.Args() {
		inputs = append(inputs, Input{File: f})
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vipvs import: "+format+"\nRun 'vipvs import -h' for help.\n", a...)
		return 2
	}
	if len(inputs) == 0 {
		return usage("name a keepalived.conf: -f FILE, or --node NAME=FILE for each node")
	}
	if *nodeName != "" {
		if len(inputs) != 1 || inputs[0].Node != "" {
			return usage("--node-name names the node of a single -f FILE; use --node NAME=FILE for several")
		}
		inputs[0].Node = *nodeName
	}
	names := map[string]bool{}
	for _, in := range inputs {
		if in.Node == "" {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(in.Node); len(msgs) > 0 {
			return usage("node name %q is not a Kubernetes node name: %s", in.Node, strings.Join(msgs, "; "))
		}
		if names[in.Node] {
			return usage("node name %q is given twice", in.Node)
		}
		names[in.Node] = true
	}
	if *secretsOut != "" && *secretsOut == *out {
		return usage("--secrets-out and --out must be different files")
	}
	opts := Options{Inputs: inputs, NodeSelector: selector, SecretNamespace: *namespace}
	res, err := Import(opts)
	for _, n := range res.Notes {
		fmt.Fprintln(stderr, n)
	}
	if err != nil {
		if errors.Is(err, ErrNothingToImport) {
			fmt.Fprintf(stderr, "vipvs import: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "%v\nvipvs import: the input is not imported\n", err)
		}
		return 1
	}
	files := make([]string, len(inputs))
	for i, in := range inputs {
		files[i] = in.File
	}
	var buf bytes.Buffer
	if err := WriteConfigs(&buf, res.Configs, files); err != nil {
		fmt.Fprintf(stderr, "vipvs import: %v\n", err)
		return 1
	}
	if *out != "" {
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintf(stderr, "vipvs import: writing the LoadBalancerConfigs: %v\n", err)
			return 1
		}
	} else if _, err := stdout.Write(buf.Bytes()); err != nil {
		fmt.Fprintf(stderr, "vipvs import: writing the LoadBalancerConfigs: %v\n", err)
		return 1
	}
	if len(res.Secrets) > 0 {
		if *secretsOut != "" {
			var sb bytes.Buffer
			if err := WriteSecrets(&sb, res.Secrets); err != nil {
				fmt.Fprintf(stderr, "vipvs import: %v\n", err)
				return 1
			}
			if err := writePrivate(*secretsOut, sb.Bytes()); err != nil {
				fmt.Fprintf(stderr, "vipvs import: writing the Secrets: %v\n", err)
				return 1
			}
			fmt.Fprintf(stderr, "vipvs import: wrote %d Secret(s) with the VRRP passwords to %s: apply them before the LoadBalancerConfigs\n", len(res.Secrets), *secretsOut)
		} else {
			for _, s := range res.Secrets {
				fmt.Fprintf(stderr, "vipvs import: Secret %s/%s is not written: rerun with --secrets-out FILE, or create it with\n  kubectl -n %s create secret generic %s --from-literal=%s='<the first 8 characters of the auth_pass at %s>'\n", s.Namespace, s.Name, s.Namespace, s.Name, s.Key, s.Pos)
			}
		}
	}
	lbcs := make([]string, len(res.Configs))
	for i, c := range res.Configs {
		lbcs[i] = c.Name
	}
	dest := "stdout"
	if *out != "" {
		dest = *out
	}
	fmt.Fprintln(stderr, notMappedBGP)
	fmt.Fprintf(stderr, "vipvs import: %d LoadBalancerConfig(s) (%s) from %d file(s) to %s, %d note(s)\n", len(res.Configs), strings.Join(lbcs, ", "), len(inputs), dest, len(res.Notes))
	return 0
}

// writePrivate writes a file only its owner can read.
func writePrivate(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
