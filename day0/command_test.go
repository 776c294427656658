package day0

import (
	"bytes"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/render"
)

const testImage = "quay.io/vipvs/vipvs:v0.1.0"

const validLBC = `apiVersion: vipvs.io/v1alpha1
kind: LoadBalancerConfig
metadata:
  name: api
spec:
  nodeSelector:
    matchLabels:
      node-role.kubernetes.io/control-plane: ""
  virtualIPs:
  - name: api
    address: 192.0.2.10
    vrid: 51
  services:
  - name: kube-apiserver
    port: 6443
    backends:
      selectedNodes: {}
`

// validNodes has three masters and a worker that the selector leaves out.
const validNodes = `nodes:
- name: master-0
  addresses: [192.0.2.11]
  labels: {node-role.kubernetes.io/control-plane: ""}
- name: master-1
  addresses: [192.0.2.12]
- name: master-2
  addresses: [192.0.2.13, "2001:db8::13"]
  labels: {node-role.kubernetes.io/control-plane: ""}
- name: worker-0
  addresses: [192.0.2.21]
  labels: {node-role.kubernetes.io/worker: ""}
`

const v2LBC = `apiVersion: vipvs.io/v1alpha1
kind: LoadBalancerConfig
metadata:
  name: legacy
spec:
  nodeSelector:
    matchLabels: {node-role.kubernetes.io/control-plane: ""}
  virtualIPs:
  - {name: api, address: 192.0.2.10, vrid: 51, interface: eth0}
  vrrp:
    version: 2
    passwordSecretRef: {namespace: vipvs-system, name: vrrp, key: password}
`

const caLBC = `apiVersion: vipvs.io/v1alpha1
kind: LoadBalancerConfig
metadata:
  name: api
spec:
  nodeSelector:
    matchLabels: {node-role.kubernetes.io/control-plane: ""}
  virtualIPs:
  - {name: api, address: 192.0.2.10, vrid: 51}
  services:
  - name: kube-apiserver
    port: 6443
    backends: {selectedNodes: {}}
    healthCheck:
      http:
        scheme: HTTPS
        path: /readyz
        caSecretRef: {namespace: openshift-config, name: api-ca, key: ca.crt}
`

const testCA = `-----BEGIN CERTIFICATE-----
MIIBhzCCAS2gAwIBAgIUfVFeMdvaYAImoq//GFxZ35bcfK4wCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNdmlwdnMgdGVzdCBDQTAgFw0yNjExMjQyMjAwMjNaGA8yMTI2
MTAzMTIyMDAyM1owGDEWMBQGA1UEAwwNdmlwdnMgdGVzdCBDQTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABPL1UU0uXy/p5K6vDLXUnFGQVWt76xeAJtZMNxpUk5Ia
4/wEPjCpmrOIY0BlYnA5M8i+g39c1aISjtRSkihtfFqjUzBRMB0GA1UdDgQWBBRK
quBU/LIhWMkoA6A2GSX5pgPzKzAfBgNVHSMEGDAWgBRKquBU/LIhWMkoA6A2GSX5
pgPzKzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQC8OW9m15OA
vyeS/01lvGURTWxVInAs6P5zs8Xsp0N3YwIgQ+VvCnNeU3cc8TmE5D5AMc5W0qN5
RmL1jsP/fi0EnJM=
-----END CERTIFICATE-----
`

// workdir writes files (name -> content) into a new directory and returns
// it.
func workdir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run runs the command with args, in which "DIR/" is replaced by dir.
func run(dir string, args ...string) (int, string, string) {
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "DIR/", dir+"/")
	}
	var stdout, stderr bytes.Buffer
	code := Command(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestHelp(t *testing.T) {
	code, stdout, stderr := run("", "-h")
	if code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	if stdout != "" {
		t.Errorf("-h wrote to stdout: %q", stdout)
	}
	for _, want := range []string{
		"Usage: vipvs render --config LBC.yaml --nodes NODES.yaml --out DIR",
		"  nodes:\n  - name: master-0", `addresses: [192.0.2.11, "2001:db8::11"]`, "labels:",
		"<node>/etc/vipvs/<lbc>/nodes/<node>.yaml", "openshift/99-<role>-vipvs-<lbc>.yaml",
		"-config", "-nodes", "-out", "-image", "-password-file", "-secret-file", "-openshift", "-role",
		"Examples:",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the help does not show %q", want)
		}
	}
}

// TestHelpExample renders the nodes file of the help text.
func TestHelpExample(t *testing.T) {
	i := strings.Index(usage, "  nodes:\n")
	j := strings.Index(usage[i:], "\n\n")
	example := usage[i : i+j+1]
	dir := workdir(t, map[string]string{"lbc.yaml": validLBC, "nodes.yaml": example})
	if code, _, stderr := run(dir, "--config", "DIR/lbc.yaml", "--nodes", "DIR/nodes.yaml", "--out", "DIR/out", "--image", testImage); code != 0 {
		t.Fatalf("the help's nodes file does not render: exit %d:\n%s\n%s", code, stderr, example)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "vipvs render: missing --config (the LoadBalancerConfig file), --nodes (the nodes file), --out (the output directory); see 'vipvs render -h'\n"},
		{"no --out", []string{"--config", "a", "--nodes", "b"}, "vipvs render: missing --out (the output directory); see 'vipvs render -h'\n"},
		{"a positional argument", []string{"lbc.yaml"}, "vipvs render: unexpected argument \"lbc.yaml\": every input is a flag (see 'vipvs render -h')\n"},
		{"an unknown flag", []string{"--node", "x"}, "flag provided but not defined: -node\n"},
		{"a bad --secret-file", []string{"--secret-file", "ca.crt"}, `invalid value "ca.crt" for flag -secret-file: want NAMESPACE/NAME/KEY=FILE, e.g. openshift-config/api-ca/ca.crt=ca.crt` + "\n"},
		{"no --image in a build without version", []string{"--config", "a", "--nodes", "b", "--out", "c"},
			"vipvs render: this vipvs was built without a version, so there is no default image: pass --image, e.g. --image quay.io/vipvs/vipvs:v0.1.0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run("", tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.HasPrefix(stderr, tt.want) {
				t.Errorf("stderr:\n%s\nwant it to start with:\n%s", stderr, tt.want)
			}
		})
	}
}

func TestRender(t *testing.T) {
	dir := workdir(t, map[string]string{"lbc.yaml": validLBC, "nodes.yaml": validNodes})
	code, stdout, stderr := run(dir, "--config", "DIR/lbc.yaml", "--nodes", "DIR/nodes.yaml", "--out", "DIR/out", "--image", testImage)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	for _, want := range []string{"skipped worker-0: its labels do not match spec.nodeSelector", "master-1/etc/vipvs/api/nodes/master-1.yaml", "Wrote 6 files under " + dir + "/out.\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, stdout)
		}
	}

	// The files are those of render.Render, byte for byte: the operator
	// renders the same.
	var c v1alpha1.LoadBalancerConfig
	if msgs := decodeStrict([]byte(validLBC), &c); msgs != nil {
		t.Fatal(msgs)
	}
	out, err := render.Render(render.Input{Config: &c, Image: testImage, Nodes: []render.Node{
		{Name: "master-0", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.11")}},
		{Name: "master-1", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.12")}},
		{Name: "master-2", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.13"), netip.MustParseAddr("2001:db8::13")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fileInfo{}
	for _, n := range out.Nodes {
		for _, f := range n.Files {
			want[path.Join(n.NodeName, f.Path)] = fileInfo{string(f.Data), f.Mode}
		}
	}
	if diff := cmp.Diff(want, tree(t, filepath.Join(dir, "out"))); diff != "" {
		t.Errorf("written files (-render.Render +written):\n%s", diff)
	}

	// A second run finds everything up to date; a changed file is put back.
	code, stdout, _ = run(dir, "--config", "DIR/lbc.yaml", "--nodes", "DIR/nodes.yaml", "--out", "DIR/out", "--image", testImage)
	if code != 0 || !strings.Contains(stdout, "Wrote 0 files under "+dir+"/out; 6 were already up to date.") {
		t.Errorf("second run: exit %d:\n%s", code, stdout)
	}
	changed := filepath.Join(dir, "out/master-0/etc/vipvs/api/nodes/master-0.yaml")
	if err := os.WriteFile(changed, []byte("edited"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = run(dir, "--config", "DIR/lbc.yaml", "--nodes", "DIR/nodes.yaml", "--out", "DIR/out", "--image", testImage)
	if code != 0 || !strings.Contains(stdout, "Wrote 1 files under") {
		t.Errorf("third run: exit %d:\n%s", code, stdout)
	}
	if diff := cmp.Diff(want, tree(t, filepath.Join(dir, "out"))); diff != "" {
		t.Errorf("after the third run (-render.Render +written):\n%s", diff)
	}
}

type fileInfo struct {
	Data string
	Mode os.FileMode
}

// tree reads every file under dir; it fails on a leftover temporary file.
func tree(t *testing.T, dir string) map[string]fileInfo {
	t.Helper()
	files := map[string]fileInfo{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("leftover temporary file %s", p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = fileInfo{string(data), fi.Mode().Perm()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRenderOpenShiftWithPassword(t *testing.T) {
	dir := workdir(t, map[string]string{"lbc.yaml": v2LBC, "nodes.yaml": validNodes, "pw": "s3cret\n"})
	code, _, stderr := run(dir, "--config", "DIR/lbc.yaml", "--nodes", "DIR/nodes.yaml", "--out", "DIR/out", "--image", testImage,
		"--password-file", "DIR/pw", "--openshift", "--role", "control-plane")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	got := tree(t, filepath.Join(dir, "out"))
	mc, ok := got["openshift/99-control-plane-vipvs-legacy.yaml"]
	if !ok {
		t.Fatalf("no MachineConfig; files: %v", keys(got))
	}
	if mc.Mode != 0o600 {
		t.Errorf("the MachineConfig holds the password but has mode %04o, want 0600", mc.Mode)
	}
	if !strings.Contains(mc.Data, "machineconfiguration.openshift.io/role: control-plane") || !strings.Contains(mc.Data, "mode: 384") {
		t.Errorf("MachineConfig:\n%s", mc.Data)
	}
	cfg := got["master-0/etc/vipvs/legacy/nodes/master-0.yaml"]
	if cfg.Mode != 0o600 || !strings.Contains(cfg.Data, "authPassword: s3cret\n") {
		t.Errorf("agent config (mode %04o):\n%s", cfg.Mode, cfg.Data)
	}
}

func TestRenderSecretFile(t *testing.T) {
	dir := workdir(t, map[string]string{"lbc.yaml": caLBC, "nodes.yaml": validNodes, "ca.crt": testCA})
	code, _, stderr := run(dir, "--config", "DIR/lbc.yaml", "--nodes", "DIR/nodes.yaml", "--out", "DIR/out", "--image", testImage,
		"--secret-file", "openshift-config/api-ca/ca.crt=DIR/ca.crt")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	got := tree(t, filepath.Join(dir, "out"))
	if ca := got["master-2/etc/vipvs/api/ca-kube-apiserver.crt"]; ca.Data != testCA || ca.Mode != 0o644 {
		t.Errorf("CA file (mode %04o):\n%s", ca.Mode, ca.Data)
	}
	if cfg := got["master-2/etc/vipvs/api/nodes/master-2.yaml"]; !strings.Contains(cfg.Data, "caFile: /etc/vipvs/api/ca-kube-apiserver.crt\n") {
		t.Errorf("agent config:\n%s", cfg.Data)
	}
}

func keys(m map[string]fileInfo) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRenderRefuses runs the command on bad inputs: it must exit 1, say
// what is wrong where and how to fix it, and write nothing.
func TestRenderRefuses(t *testing.T) {
	tests := []struct {
		name  string
		lbc   string
		nodes string
		args  []string
		want  []string
	}{
		{
			name: "unknown and mis-cased fields",
			lbc:  strings.Replace(strings.Replace(validLBC, "vrid: 51", "VRID: 51\n    prefix: 24", 1), "port: 6443", "port: 6443\n    portt: 1", 1),
			want: []string{
				"vipvs render: DIR/lbc.yaml: 3 problems:\n",
				`  - spec.services[0].portt: Forbidden: unknown field; known fields: name, port,`,
				`  - spec.virtualIPs[0].VRID: Forbidden: unknown field; field names are case-sensitive: did you mean "vrid"?`,
				`  - spec.virtualIPs[0].prefix: Forbidden: unknown field; known fields: name, address, vrid, mode, interface, prefixLength`,
				"  hint: field names are case-sensitive;",
				"Nothing was written.",
			},
		},
		{
			name: "a value of the wrong type",
			lbc:  strings.Replace(validLBC, "vrid: 51", `vrid: "51"`, 1),
			want: []string{`vipvs render: DIR/lbc.yaml: spec.virtualIPs[0].vrid: Invalid value: "51": must be an integer, not a string`},
		},
		{
			name: "a duration without unit",
			lbc:  validLBC + "  vrrp:\n    advertInterval: 100\n",
			want: []string{`vipvs render: DIR/lbc.yaml: spec.vrrp.advertInterval: Invalid value: 100: must be a duration string such as "1s" or "10ms", not a number`},
		},
		{
			name: "a name that YAML reads as a boolean",
			lbc:  strings.Replace(validLBC, "- name: api\n    address", "- name: yes\n    address", 1),
			want: []string{`spec.virtualIPs[0].name: Invalid value: true: must be a string, not a boolean (quote it if it is meant as a string: YAML reads unquoted true, false, yes, no, on and off as booleans)`},
		},
		{
			name: "a repeated key",
			lbc:  strings.Replace(validLBC, "vrid: 51", "vrid: 51\n    vrid: 52", 1),
			want: []string{"vipvs render: DIR/lbc.yaml: parsing YAML: yaml: unmarshal errors:\n  line 13: key \"vrid\" already set in map"},
		},
		{
			name: "two documents",
			lbc:  validLBC + "---\n" + validLBC,
			want: []string{"vipvs render: DIR/lbc.yaml: parsing YAML: found more than one document, want exactly one"},
		},
		{
			name: "an empty file",
			lbc:  "# nothing\n",
			want: []string{"vipvs render: DIR/lbc.yaml: parsing YAML: the document is empty"},
		},
		{
			name: "not a LoadBalancerConfig",
			lbc:  strings.Replace(strings.Replace(validLBC, "kind: LoadBalancerConfig", "kind: LoadBalancer", 1), "vipvs.io/v1alpha1", "vipvs.io/v1", 1),
			want: []string{
				"vipvs render: DIR/lbc.yaml: 2 problems:",
				`  - apiVersion: Unsupported value: "vipvs.io/v1": must be "vipvs.io/v1alpha1"`,
				`  - kind: Unsupported value: "LoadBalancer": must be "LoadBalancerConfig"`,
				"  hint: --config takes one LoadBalancerConfig",
			},
		},
		{
			name:  "problems in both files at once",
			lbc:   strings.Replace(validLBC, "vrid: 51", "vrd: 51", 1),
			nodes: "nodes:\n- name: master-0\n  adresses: [192.0.2.11]\n",
			want: []string{
				`vipvs render: DIR/lbc.yaml: spec.virtualIPs[0].vrd: Forbidden: unknown field`,
				`vipvs render: DIR/nodes.yaml: nodes[0].adresses: Forbidden: unknown field`,
				"  hint: see 'vipvs render -h' for the format of the nodes file",
			},
		},
		{
			name:  "a node address that is not an address",
			nodes: "nodes:\n- name: master-0\n  addresses: [192.0.2.11/24]\n",
			want:  []string{`vipvs render: DIR/nodes.yaml: nodes[0].addresses[0]: Invalid value: "192.0.2.11/24": must be an IP address without prefix length`},
		},
		{
			name:  "no node in the file",
			nodes: "nodes: []\n",
			want:  []string{"vipvs render: DIR/nodes.yaml: nodes: Required value: must list the nodes that share the virtual IPs"},
		},
		{
			name:  "no node matches the selector",
			nodes: "nodes:\n- name: worker-0\n  addresses: [192.0.2.21]\n  labels: {node-role.kubernetes.io/worker: \"\"}\n",
			want: []string{
				"vipvs render: DIR/lbc.yaml: spec.nodeSelector: Required value: selects no node",
				"vipvs render: DIR/nodes.yaml: no node is selected",
				"  hint: none of the 1 node(s) of DIR/nodes.yaml has labels matching spec.nodeSelector (node-role.kubernetes.io/control-plane=)",
			},
		},
		{
			name:  "problems that Render finds, under the file they are in",
			lbc:   strings.Replace(validLBC, "vrid: 51", "vrid: 0", 1),
			nodes: "nodes:\n- name: Master-0\n  addresses: [192.0.2.11]\n- name: master-1\n  addresses: [192.0.2.10]\n",
			want: []string{
				"vipvs render: DIR/lbc.yaml: spec.virtualIPs[0].vrid: Required value: vrid is required for a virtual IP in mode vrrp: set a VRID (1 to 255) unique on the segment, or set mode: bgp\n",
				"vipvs render: DIR/nodes.yaml: 2 problems:\n",
				`  - nodes[0].name: Invalid value: "Master-0": must be a Kubernetes node name`,
				`  - nodes[master-1].addresses[0]: Invalid value: "192.0.2.10": is the virtual IP spec.virtualIPs[0].address`,
			},
		},
		{
			name: "a password the LoadBalancerConfig needs",
			lbc:  v2LBC,
			want: []string{
				`vipvs render: DIR/lbc.yaml: spec.vrrp.passwordSecretRef: the VRRP password (key "password" of Secret vipvs-system/vrrp) is needed`,
				"  hint: put the password (1 to 8 bytes) in a file and pass --password-file FILE",
			},
		},
		{
			name: "a password the LoadBalancerConfig does not take",
			args: []string{"--password-file", "DIR/pw"},
			want: []string{"vipvs render: --password-file: the LoadBalancerConfig has no spec.vrrp.passwordSecretRef, so there is no password to give"},
		},
		{
			name: "a password too long",
			lbc:  v2LBC,
			args: []string{"--password-file", "DIR/longpw"},
			want: []string{`vipvs render: DIR/lbc.yaml: spec.vrrp.passwordSecretRef: Invalid value: "<redacted>": the password is 9 bytes long, at most 8`},
		},
		{
			name: "a CA the LoadBalancerConfig needs",
			lbc:  caLBC,
			want: []string{"vipvs render: DIR/lbc.yaml: spec.services[0].healthCheck.http.caSecretRef: the value of Secret key openshift-config/api-ca/ca.crt is needed: pass --secret-file openshift-config/api-ca/ca.crt=FILE"},
		},
		{
			name: "a secret nothing refers to",
			args: []string{"--secret-file", "a/b/c=DIR/pw"},
			want: []string{"vipvs render: DIR/lbc.yaml: --secret-file a/b/c: the LoadBalancerConfig refers to no such Secret key"},
		},
		{
			name:  "a node named like the MachineConfig directory",
			nodes: "nodes:\n- name: openshift\n  addresses: [192.0.2.11]\n",
			args:  []string{"--openshift"},
			want:  []string{`vipvs render: a node named "openshift" would share its directory under --out with the MachineConfig: render it without --openshift`},
		},
		{
			name: "a bad role",
			args: []string{"--openshift", "--role", "Master"},
			want: []string{`vipvs render: --role: invalid MachineConfig role "Master": must be a DNS-1123 label, e.g. master or worker`},
		},
		{
			name: "a missing file",
			args: []string{"--config", "DIR/nope.yaml"},
			want: []string{"vipvs render: reading the LoadBalancerConfig: open DIR/nope.yaml: no such file or directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.lbc == "" {
				tt.lbc = validLBC
			}
			if tt.nodes == "" {
				tt.nodes = validNodes
			}
			dir := workdir(t, map[string]string{"lbc.yaml": tt.lbc, "nodes.yaml": tt.nodes, "pw": "pw\n", "longpw": "123456789"})
			args := append([]string{"--config", "DIR/lbc.yaml", "--nodes", "DIR/nodes.yaml", "--out", "DIR/out", "--image", testImage}, tt.args...)
			code, stdout, stderr := run(dir, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			for _, w := range tt.want {
				if w = strings.ReplaceAll(w, "DIR/", dir+"/"); !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			if !strings.HasSuffix(stderr, "Nothing was written.\n") {
				t.Errorf("stderr does not end with \"Nothing was written.\":\n%s", stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
				t.Errorf("--out was created: %v", err)
			}
		})
	}
}

func TestSecretFilesFlag(t *testing.T) {
	s := secretFiles{}
	if err := s.Set("ns/name/ca.crt=/tmp/ca.crt"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"ns/name/ca.crt=/other", "ns/name=/x", "ns/name/key=", "/a/b=c", "a//b=c", "a/b/=c", "a/b/c"} {
		if err := s.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted it", bad)
		}
	}
	if got, want := s.String(), "ns/name/ca.crt=/tmp/ca.crt"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestRenderBGP renders the BGP example (api/v1alpha1/testdata/bgp.yaml)
// with its peer's TCP MD5 key from --secret-file: each node gets the key
// as a file of mode 0600 that its agent config names, never the key
// itself, and the OpenShift MachineConfig that carries it is 0600 too.
func TestRenderBGP(t *testing.T) {
	lbc, err := os.ReadFile("../api/v1alpha1/testdata/bgp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := os.ReadFile("../static-pods/input/nodes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := workdir(t, map[string]string{"lbc.yaml": string(lbc), "nodes.yaml": string(nodes), "md5": "s3cret-md5-key\n"})
	code, _, stderr := run(dir, "--config", "DIR/lbc.yaml", "--nodes", "DIR/nodes.yaml", "--out", "DIR/out", "--image", testImage)
	if code != 1 || !strings.Contains(stderr, "spec.bgp.peers[0].passwordSecretRef: the value of Secret key vipvs/bgp-tor/password is needed: pass --secret-file vipvs/bgp-tor/password=FILE") {
		t.Errorf("without --secret-file: exit %d:\n%s", code, stderr)
	}
	code, _, stderr = run(dir, "--config", "DIR/lbc.yaml", "--nodes", "DIR/nodes.yaml", "--out", "DIR/out", "--image", testImage,
		"--secret-file", "vipvs/bgp-tor/password=DIR/md5", "--openshift", "--role", "worker")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	got := tree(t, filepath.Join(dir, "out"))
	keyPath := render.BGPPasswordFilePath("ingress-bgp", 0, []byte("s3cret-md5-key\n"))
	for _, n := range []string{"master-0", "master-1", "master-2"} {
		key := got[n+keyPath]
		if key.Data != "s3cret-md5-key\n" || key.Mode != 0o600 {
			t.Errorf("%s: key file %s (mode %04o): %q", n, keyPath, key.Mode, key.Data)
		}
		cfg := got[n+"/etc/vipvs/ingress-bgp/nodes/"+n+".yaml"]
		if !strings.Contains(cfg.Data, "passwordFile: "+keyPath+"\n") || strings.Contains(cfg.Data, "s3cret") || !strings.Contains(cfg.Data, "mode: bgp\n") || cfg.Mode != 0o600 {
			t.Errorf("%s: agent config (mode %04o):\n%s", n, cfg.Mode, cfg.Data)
		}
	}
	if cfg := got["master-2/etc/vipvs/ingress-bgp/nodes/master-2.yaml"]; !strings.Contains(cfg.Data, "localASN: 64514\n") || !strings.Contains(cfg.Data, "routerID: 192.0.2.13\n") {
		t.Errorf("master-2's byNode entry is not applied:\n%s", cfg.Data)
	}
	if mc := got["openshift/99-worker-vipvs-ingress-bgp.yaml"]; mc.Mode != 0o600 {
		t.Errorf("the MachineConfig carries the BGP key but has mode %04o, want 0600", mc.Mode)
	}
}
