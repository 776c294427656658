package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/vipvs/vipvs/agent/config"
	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/api/agent/validation"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/internal/strictyaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testImage = "quay.io/vipvs/vipvs:v0.1.0"

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// decodeStrict decodes YAML into v as `vipvs render` does (strictyaml).
func decodeStrict(data []byte, v any) error { return strictyaml.Decode(data, v) }

func loadLBC(t *testing.T, path string) *v1alpha1.LoadBalancerConfig {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c v1alpha1.LoadBalancerConfig
	if err := decodeStrict(data, &c); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return &c
}

func readCA(t *testing.T) []byte {
	t.Helper()
	ca, err := os.ReadFile("testdata/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

type goldenCase struct {
	name string
	in   Input
}

// goldenCases are the inputs of the golden files; the other tests render
// them too.
func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	masters := []Node{
		{Name: "master-0", Addresses: addrs("192.0.2.11")},
		{Name: "master-1", Addresses: addrs("192.0.2.12")},
		{Name: "master-2", Addresses: addrs("192.0.2.13")},
	}
	dual := []Node{
		{Name: "master-0", Addresses: addrs("192.0.2.11", "2001:db8::11")},
		{Name: "master-1", Addresses: addrs("192.0.2.12", "2001:db8::12")},
		{Name: "master-2", Addresses: addrs("192.0.2.13", "2001:db8::13")},
	}
	in := func(file string, nodes []Node) Input {
		return Input{Config: loadLBC(t, file), Nodes: nodes, Image: testImage}
	}
	withPassword := in("testdata/input/v2-password.yaml", masters)
	withPassword.Password = "s3cret"
	withCA := in("testdata/input/ca-secret.yaml", []Node{
		{Name: "registry-0", Addresses: addrs("192.0.2.51")},
		{Name: "registry-1", Addresses: addrs("192.0.2.52")},
	})
	withCA.Secrets = map[string][]byte{"registry/registry-ca/ca.crt": readCA(t)}
	withBGP := in("../api/v1alpha1/testdata/bgp.yaml", dual)
	withBGP.Secrets = map[string][]byte{"vipvs/bgp-tor/password": []byte("s3cret-md5-key\n")}
	withBootstrap := in("../api/v1alpha1/testdata/control-plane.yaml", masters)
	withBootstrap.Bootstrap = &Node{Name: "bootstrap", Addresses: addrs("192.0.2.19")}
	return []goldenCase{
		// activeStandby, unicast IPv4, byNode priorities, a track check
		// and an HTTPS /readyz service over the selected nodes.
		{"control-plane", in("../api/v1alpha1/testdata/control-plane.yaml", masters)},
		// spread: 3 VIPs (two IPv4, one IPv6) over 3 dual-stack nodes.
		{"ingress", in("../api/v1alpha1/testdata/ingress.yaml", []Node{
			{Name: "infra-0", Addresses: addrs("192.0.2.31", "2001:db8::31")},
			{Name: "infra-1", Addresses: addrs("192.0.2.32", "2001:db8::32")},
			{Name: "infra-2", Addresses: addrs("192.0.2.33", "2001:db8::33")},
		})},
		{"dual-stack", in("testdata/input/dual-stack.yaml", dual)},
		// master-1 lists its IPv6 address first and has a second IPv4
		// address; master-2 has no IPv6 address and sits the IPv6 VIP out.
		{"dual-stack-ipv4-only-node", in("testdata/input/dual-stack.yaml", []Node{
			{Name: "master-0", Addresses: addrs("192.0.2.11", "2001:db8::11")},
			{Name: "master-1", Addresses: addrs("2001:db8::12", "192.0.2.12", "192.0.2.112")},
			{Name: "master-2", Addresses: addrs("192.0.2.13")},
		})},
		{"v2-password", withPassword},
		{"multicast", in("testdata/input/multicast.yaml", []Node{
			{Name: "dns-0", Addresses: addrs("198.51.100.11")},
			{Name: "dns-1", Addresses: addrs("198.51.100.12")},
		})},
		// ipvs.connectionSync rendered as set (enabled defaulted to true).
		{"connection-sync", in("testdata/input/connection-sync.yaml", []Node{
			{Name: "infra-0", Addresses: addrs("192.0.2.31")},
			{Name: "infra-1", Addresses: addrs("192.0.2.32")},
		})},
		{"by-node", in("testdata/input/by-node.yaml", []Node{
			{Name: "master-0", Addresses: addrs("192.0.2.11")},
			{Name: "master-1", Addresses: addrs("192.0.2.12")},
			{Name: "master-2", Addresses: addrs("192.0.2.13")},
			{Name: "master-3", Addresses: addrs("192.0.2.14")},
		})},
		{"static-backends", in("testdata/input/static-backends.yaml", []Node{
			{Name: "lb-0", Addresses: addrs("203.0.113.1", "2001:db8:80::1")},
			{Name: "lb-1", Addresses: addrs("203.0.113.2", "2001:db8:80::2")},
		})},
		{"ca-secret", withCA},
		// the control plane on day 0 with an installer's bootstrap node:
		// a member of every router below every master, and a backend.
		{"bootstrap", withBootstrap},
		// BGP (active/active): IPv4 and IPv6 virtual IPs and peers, the
		// IPv4 peer's TCP MD5 key as a file of mode 0600, master-2 in
		// another AS with its own router ID.
		{"bgp", withBGP},
	}
}

// goldenText is out as the golden files show it: every node's files, a
// file that is the same as on an earlier node only named.
func goldenText(out Output) []byte {
	var b bytes.Buffer
	firstNode := map[string]string{}
	firstData := map[string][]byte{}
	for _, n := range out.Nodes {
		fmt.Fprintf(&b, "######## node %s, configHash %s\n", n.NodeName, n.Hash)
		for _, f := range n.Files {
			if prev, ok := firstData[f.Path]; ok && bytes.Equal(prev, f.Data) {
				fmt.Fprintf(&b, "#### %s (mode %04o): the same as on node %s\n", f.Path, f.Mode, firstNode[f.Path])
				continue
			}
			firstNode[f.Path], firstData[f.Path] = n.NodeName, f.Data
			fmt.Fprintf(&b, "#### %s (mode %04o)\n%s", f.Path, f.Mode, f.Data)
		}
	}
	return b.Bytes()
}

func checkGolden(t *testing.T, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", t.Name()+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./render -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got); run go test ./render -update and review the diff:\n%s", path, diff)
	}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(tc.in)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			checkGolden(t, goldenText(out))
			checkOutput(t, tc.in, out)
		})
	}
}

// checkOutput checks what every output must satisfy: nodes sorted, files
// sorted, the hash, and each agent config accepted by the agent's own
// decoding and validation.
func checkOutput(t *testing.T, in Input, out Output) {
	t.Helper()
	want := len(in.Nodes)
	if in.Bootstrap != nil {
		want++
	}
	if len(out.Nodes) != want {
		t.Fatalf("got %d nodes, want %d", len(out.Nodes), want)
	}
	if !slices.IsSortedFunc(out.Nodes, func(a, b NodeFiles) int { return strings.Compare(a.NodeName, b.NodeName) }) {
		t.Errorf("nodes are not sorted by name")
	}
	lbc := in.Config.Name
	for _, n := range out.Nodes {
		if !slices.IsSortedFunc(n.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) }) {
			t.Errorf("node %s: files are not sorted by path", n.NodeName)
		}
		i := slices.IndexFunc(n.Files, func(f File) bool { return f.Path == AgentConfigPath(lbc, n.NodeName) })
		if i < 0 {
			t.Fatalf("node %s: no agent config at %s", n.NodeName, AgentConfigPath(lbc, n.NodeName))
		}
		data := n.Files[i].Data
		sum := sha256.Sum256(data)
		if n.Hash != hex.EncodeToString(sum[:]) {
			t.Errorf("node %s: Hash %s is not the SHA-256 of the agent config", n.NodeName, n.Hash)
		}
		wantHeader := "# Rendered by vipvs from LoadBalancerConfig " + lbc + "; do not edit.\n"
		if !bytes.HasPrefix(data, []byte(wantHeader)) {
			t.Errorf("node %s: agent config does not start with %q", n.NodeName, wantHeader)
		}
		wantMode := ModePublic
		if in.Password != "" || bytes.Contains(n.Files[i].Data, []byte("passwordFile: ")) {
			wantMode = ModeSecret
		}
		if n.Files[i].Mode != wantMode {
			t.Errorf("node %s: agent config mode %04o, want %04o", n.NodeName, n.Files[i].Mode, wantMode)
		}
		checkAgentConfigValid(t, n.NodeName, data, n.Hash)
	}
}

// checkAgentConfigValid decodes an agent config strictly and validates it
// as the agent does. Until validation accepts a router without interface
// (the agent then picks the interface whose subnet holds the VIP), that
// one error is skipped for such routers, and the agent's own loader
// (agent/config.Parse) runs only on configs whose routers all name their
// interface.
func checkAgentConfigValid(t *testing.T, node string, data []byte, hash string) {
	t.Helper()
	ac, err := agentv1alpha1.Decode(data)
	if err != nil {
		t.Fatalf("node %s: strict decoding of the agent config: %v", node, err)
	}
	allNamed := true
	for i, e := range validation.ValidateAgentConfig(ac) {
		r := -1
		if _, err := fmt.Sscanf(e.Field, "virtualRouters[%d].interface", &r); err == nil && e.Type == field.ErrorTypeRequired && ac.VirtualRouters[r].Interface == "" {
			continue
		}
		t.Errorf("node %s: agent config problem %d: %v", node, i, e)
	}
	for _, r := range ac.VirtualRouters {
		allNamed = allNamed && r.Interface != ""
	}
	if !allNamed {
		return
	}
	c, err := config.Parse(data)
	if err != nil {
		t.Fatalf("node %s: the agent's config.Parse rejects the agent config: %v", node, err)
	}
	if c.Hash != hash {
		t.Errorf("node %s: the agent would report configHash %s, Render says %s", node, c.Hash, hash)
	}
}

func TestDeterministic(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			want, err := Render(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Render(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, again); diff != "" {
				t.Fatalf("a second Render differs (-first +second):\n%s", diff)
			}
			for _, perm := range permutations(len(tc.in.Nodes)) {
				in := tc.in
				in.Nodes = nil
				for _, i := range perm {
					in.Nodes = append(in.Nodes, tc.in.Nodes[i])
				}
				in.Config = tc.in.Config.DeepCopy()
				if p := in.Config.Spec.Priorities; p != nil {
					slices.Reverse(p.ByNode)
				}
				in.Secrets = reinsert(tc.in.Secrets)
				got, err := Render(in)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("nodes in order %v, byNode reversed, Secrets rebuilt: output differs (-want +got):\n%s", perm, diff)
				}
			}
		})
	}
}

// permutations are all orders of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

// reinsert is a copy of m built in reverse key order, with an entry that
// nothing refers to.
func reinsert(m map[string][]byte) map[string][]byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Reverse(keys)
	out := map[string][]byte{"other/secret/key": []byte("unused")}
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

func TestRenderDoesNotModifyInput(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.in.Config.DeepCopy()
			nodes := slices.Clone(tc.in.Nodes)
			if _, err := Render(tc.in); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, tc.in.Config); diff != "" {
				t.Errorf("Render modified the LoadBalancerConfig (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(nodes, tc.in.Nodes, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("Render modified the nodes (-before +after):\n%s", diff)
			}
		})
	}
}

func TestPriorities(t *testing.T) {
	names := func(ss ...string) []Node {
		var out []Node
		for _, s := range ss {
			out = append(out, Node{Name: s})
		}
		return out
	}
	vips := func(n int) []v1alpha1.VirtualIP { return make([]v1alpha1.VirtualIP, n) }
	tests := []struct {
		name  string
		spec  v1alpha1.LoadBalancerConfigSpec
		nodes []Node
		want  [][]int32
	}{
		{
			name:  "activeStandby without byNode: 100, 99, 98 by name, the same for every VIP",
			spec:  v1alpha1.LoadBalancerConfigSpec{Mode: v1alpha1.ModeActiveStandby, VirtualIPs: vips(2)},
			nodes: names("a", "b", "c"),
			want:  [][]int32{{100, 100}, {99, 99}, {98, 98}},
		},
		{
			name: "activeStandby with byNode: listed nodes keep theirs, the others 100, 99 by name",
			spec: v1alpha1.LoadBalancerConfigSpec{Mode: v1alpha1.ModeActiveStandby, VirtualIPs: vips(1),
				Priorities: &v1alpha1.Priorities{ByNode: []v1alpha1.NodePriority{{NodeName: "c", Priority: 150}, {NodeName: "absent", Priority: 200}}}},
			nodes: names("a", "b", "c", "d"),
			want:  [][]int32{{100}, {99}, {150}, {98}},
		},
		{
			name:  "spread: VIP j prefers node j mod n",
			spec:  v1alpha1.LoadBalancerConfigSpec{Mode: v1alpha1.ModeSpread, VirtualIPs: vips(4)},
			nodes: names("a", "b", "c"),
			// node k, VIP j: 100 - ((k - j) mod 3)
			want: [][]int32{{100, 98, 99, 100}, {99, 100, 98, 99}, {98, 99, 100, 98}},
		},
		{
			name:  "spread with one node",
			spec:  v1alpha1.LoadBalancerConfigSpec{Mode: v1alpha1.ModeSpread, VirtualIPs: vips(2)},
			nodes: names("a"),
			want:  [][]int32{{100, 100}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := priorities(&tt.spec, tt.nodes)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("priorities (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{AgentConfigPath("control-plane", "master-0"), "/etc/vipvs/control-plane/nodes/master-0.yaml"},
		{StaticPodPath("control-plane"), "/etc/kubernetes/manifests/vipvs-control-plane.yaml"},
		{SocketPath("control-plane"), "/run/vipvs/control-plane.sock"},
		{CAFilePath("control-plane", "kube-apiserver"), "/etc/vipvs/control-plane/ca-kube-apiserver.crt"},
		{SecretKey(v1alpha1.SecretKeyReference{Namespace: "ns", Name: "name", Key: "ca.crt"}), "ns/name/ca.crt"},
		{MachineConfigName("master", "control-plane"), "99-master-vipvs-control-plane"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestDefaultCheckTimeout(t *testing.T) {
	d, err := time.ParseDuration(v1alpha1.DefaultCheckTimeout)
	if err != nil || d != defaultCheckTimeout {
		t.Errorf("defaultCheckTimeout = %v, v1alpha1.DefaultCheckTimeout = %q", defaultCheckTimeout, v1alpha1.DefaultCheckTimeout)
	}
}

// TestRenderBGPExternalSpeaker renders the bgp example with
// spec.bgp.externalSpeaker: the agent config's bgp section holds only the
// table, the protocol and the graceful shutdown wait, and there is no
// password file.
func TestRenderBGPExternalSpeaker(t *testing.T) {
	c := loadLBC(t, "../api/v1alpha1/testdata/bgp.yaml")
	c.Spec.BGP = &v1alpha1.BGP{ExternalSpeaker: &v1alpha1.ExternalSpeaker{Table: 100}}
	in := Input{Config: c, Image: testImage, Nodes: []Node{
		{Name: "w0", Addresses: addrs("192.0.2.21", "2001:db8::21")},
		{Name: "w1", Addresses: addrs("192.0.2.22", "2001:db8::22")},
	}}
	out, err := Render(in)
	if err != nil {
		if strings.Contains(err.Error(), "agentConfig.bgp") {
			t.Skipf("the agent's validation in this tree does not accept bgp.externalSpeaker yet: %v", err)
		}
		t.Fatalf("Render: %v", err)
	}
	checkOutput(t, in, out)
	for _, n := range out.Nodes {
		ac := agentConfigOf(t, c.Name, out, n.NodeName)
		want := &agentv1alpha1.BGP{ExternalSpeaker: &agentv1alpha1.ExternalSpeaker{Table: 100}}
		if diff := cmp.Diff(want, ac.BGP); diff != "" {
			t.Errorf("node %s: bgp (-want +got):\n%s", n.NodeName, diff)
		}
		if len(n.Files) != 2 {
			t.Errorf("node %s: %d files, want the agent config and the static pod", n.NodeName, len(n.Files))
		}
		for _, r := range ac.VirtualRouters {
			if r.Mode != agentv1alpha1.ModeBGP || r.VRID != 0 || r.Priority != nil || len(r.UnicastPeers) > 0 || r.SourceAddress != "" {
				t.Errorf("node %s: router %s has VRRP settings or no mode bgp: %+v", n.NodeName, r.Name, r)
			}
		}
	}
}

// TestRenderBGPOnlyWhereNeeded checks that a spec.bgp without virtual IPs
// in mode bgp renders no bgp section (no BGP session is opened for
// nothing), and that vrrp and bgp virtual IPs render side by side.
func TestRenderBGPOnlyWhereNeeded(t *testing.T) {
	c := loadLBC(t, "../api/v1alpha1/testdata/bgp.yaml")
	c.Spec.VirtualIPs = append(c.Spec.VirtualIPs, v1alpha1.VirtualIP{Name: "vrrp", Address: "192.0.2.50", VRID: 70})
	nodes := []Node{{Name: "w0", Addresses: addrs("192.0.2.21", "2001:db8::21")}, {Name: "w1", Addresses: addrs("192.0.2.22", "2001:db8::22")}}
	secrets := map[string][]byte{"vipvs/bgp-tor/password": []byte("k")}
	out, err := Render(Input{Config: c, Image: testImage, Nodes: nodes, Secrets: secrets})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	ac := agentConfigOf(t, c.Name, out, "w0")
	if ac.BGP == nil || len(ac.VirtualRouters) != 3 || ac.VirtualRouters[2].Mode != "" || ac.VirtualRouters[2].VRID != 70 || ac.VirtualRouters[2].UnicastPeers[0] != "192.0.2.22" {
		t.Errorf("mixed vrrp and bgp: bgp %v, routers %+v", ac.BGP != nil, ac.VirtualRouters)
	}
	for i := range c.Spec.VirtualIPs[:2] {
		c.Spec.VirtualIPs[i].Mode = ""
		c.Spec.VirtualIPs[i].VRID = int32(80 + i)
	}
	out, err = Render(Input{Config: c, Image: testImage, Nodes: nodes, Secrets: secrets})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if ac := agentConfigOf(t, c.Name, out, "w0"); ac.BGP != nil {
		t.Errorf("no virtual IP in mode bgp, but the agent config has a bgp section: %+v", ac.BGP)
	}
	for _, f := range out.Nodes[0].Files {
		if strings.Contains(f.Path, "bgp-peer") {
			t.Errorf("no virtual IP in mode bgp, but the password file %s is rendered", f.Path)
		}
	}
}

// TestRenderBGPKeyRotation: a new TCP MD5 key in the Secret is a new key
// file and so a new agent config (the agent reads its key files when its
// config changes, not when only a key file does); the key is only in the
// key file, and the agent config that names it is private too.
func TestRenderBGPKeyRotation(t *testing.T) {
	render := func(key string) NodeFiles {
		t.Helper()
		out, err := Render(Input{Config: loadLBC(t, "../api/v1alpha1/testdata/bgp.yaml"), Image: testImage,
			Nodes:   []Node{{Name: "w0", Addresses: addrs("192.0.2.21", "2001:db8::21")}},
			Secrets: map[string][]byte{"vipvs/bgp-tor/password": []byte(key)}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Nodes[0]
	}
	keyFile := func(n NodeFiles) File {
		for _, f := range n.Files {
			if strings.Contains(f.Path, "/bgp-peer-0-") {
				return f
			}
		}
		t.Fatalf("no key file among %v", n.Files)
		return File{}
	}
	a, b := render("old-key"), render("new-key")
	ka, kb := keyFile(a), keyFile(b)
	if ka.Path == kb.Path || a.Hash == b.Hash {
		t.Errorf("a new key keeps the key file %s or the config hash %s", ka.Path, a.Hash)
	}
	if string(kb.Data) != "new-key" || kb.Mode != ModeSecret {
		t.Errorf("key file %s (mode %04o): %q", kb.Path, kb.Mode, kb.Data)
	}
	for _, f := range b.Files {
		if f.Path == AgentConfigPath("ingress-bgp", "w0") {
			if f.Mode != ModeSecret || !bytes.Contains(f.Data, []byte("passwordFile: "+kb.Path+"\n")) || bytes.Contains(f.Data, []byte("new-key")) {
				t.Errorf("agent config (mode %04o):\n%s", f.Mode, f.Data)
			}
		}
	}
	if again := render("new-key"); keyFile(again).Path != kb.Path || again.Hash != b.Hash {
		t.Errorf("the same key renders another path or config")
	}
}
