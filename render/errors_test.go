package render

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

// baseInput is a valid input: one IPv4 VIP over three masters.
func baseInput() Input {
	return Input{
		Config: &v1alpha1.LoadBalancerConfig{
			ObjectMeta: metav1.ObjectMeta{Name: "api"},
			Spec: v1alpha1.LoadBalancerConfigSpec{
				NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/control-plane": ""}},
				VirtualIPs:   []v1alpha1.VirtualIP{{Name: "api", Address: "192.0.2.10", VRID: 51}},
			},
		},
		Nodes: []Node{
			{Name: "master-0", Addresses: addrs("192.0.2.11")},
			{Name: "master-1", Addresses: addrs("192.0.2.12")},
			{Name: "master-2", Addresses: addrs("192.0.2.13")},
		},
		Image: testImage,
	}
}

func TestRenderRefuses(t *testing.T) {
	pemCA := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	v2 := func(in *Input) {
		in.Config.Spec.VRRP = &v1alpha1.VRRP{Version: 2, PasswordSecretRef: &v1alpha1.SecretKeyReference{Namespace: "vipvs-system", Name: "vrrp", Key: "password"}}
	}
	caService := func(in *Input) {
		in.Config.Spec.Services = []v1alpha1.VirtualService{{
			Name: "api", Port: 6443,
			Backends: v1alpha1.Backends{SelectedNodes: &v1alpha1.SelectedNodesBackends{}},
			HealthCheck: &v1alpha1.ServiceHealthCheck{HTTP: &v1alpha1.ServiceHTTPCheck{
				Scheme: v1alpha1.URISchemeHTTPS, Path: "/readyz",
				CASecretRef: &v1alpha1.SecretKeyReference{Namespace: "openshift-config", Name: "api-ca", Key: "ca.crt"},
			}},
		}}
	}
	dualStack := func(in *Input) {
		in.Config.Spec.VirtualIPs = append(in.Config.Spec.VirtualIPs, v1alpha1.VirtualIP{Name: "api-v6", Address: "2001:db8::10", VRID: 51})
	}
	bgp := func(in *Input) {
		in.Config.Spec.VirtualIPs[0] = v1alpha1.VirtualIP{Name: "api", Address: "192.0.2.10", Mode: v1alpha1.AnnouncementBGP}
		in.Config.Spec.BGP = &v1alpha1.BGP{LocalASN: ptr(int64(64513)), Peers: []v1alpha1.BGPPeer{{Address: "192.0.2.1", ASN: 64512,
			PasswordSecretRef: &v1alpha1.SecretKeyReference{Namespace: "vipvs", Name: "bgp", Key: "password"}}}}
	}
	tests := []struct {
		name    string
		mutate  func(in *Input)
		want    []string
		noNodes bool
	}{
		{
			name: "BGP password not given",
			mutate: func(in *Input) {
				bgp(in)
				in.Secrets = map[string][]byte{"vipvs/bgp/password": []byte("\n")}
			},
			want: []string{`spec.bgp.peers[0].passwordSecretRef: Required value: the TCP MD5 key of the BGP sessions (key "password" of Secret vipvs/bgp) is not given or empty: it must be 1 to 80 bytes`},
		},
		{
			name: "BGP password too long",
			mutate: func(in *Input) {
				bgp(in)
				in.Secrets = map[string][]byte{"vipvs/bgp/password": bytes.Repeat([]byte("k"), 81)}
			},
			want: []string{`spec.bgp.peers[0].passwordSecretRef: Invalid value: "<redacted>": the key in Secret vipvs/bgp is 81 bytes long, at most 80 (TCP MD5 keys are at most 80 bytes)`},
		},
		{
			name: "BGP node without router ID",
			mutate: func(in *Input) {
				bgp(in)
				in.Config.Spec.VirtualIPs[0].Address = "2001:db8::10"
				in.Config.Spec.BGP.Peers[0].Address = "2001:db8::1"
				in.Secrets = map[string][]byte{"vipvs/bgp/password": []byte("k")}
				in.Config.Spec.BGP.ByNode = []v1alpha1.BGPNode{{NodeName: "master-0", RouterID: "192.0.2.11"}}
				in.Nodes = []Node{
					{Name: "master-0", Addresses: addrs("2001:db8::11")},
					{Name: "master-1", Addresses: addrs("2001:db8::12")},
				}
			},
			want: []string{`spec.bgp.byNode[master-1].routerID: Required value: node master-1 has no IPv4 address to be its BGP router ID: list it in spec.bgp.byNode with a routerID (an IPv4 address unique among the speakers)`},
		},
		{
			name: "invalid LoadBalancerConfig: validation's messages",
			mutate: func(in *Input) {
				in.Config.Spec.VirtualIPs[0].VRID = 0
				in.Config.Spec.NodeSelector = metav1.LabelSelector{}
			},
			want: []string{
				`spec.nodeSelector: Invalid value: "{}": nodeSelector must not be empty: an empty selector selects every node`,
				`spec.virtualIPs[0].vrid: Required value: vrid is required for a virtual IP in mode vrrp: set a VRID (1 to 255) unique on the segment, or set mode: bgp`,
			},
		},
		{
			name:   "name longer than a label value",
			mutate: func(in *Input) { in.Config.Name = strings.Repeat("a", 64) },
			want: []string{
				`metadata.name: Invalid value: "` + strings.Repeat("a", 64) + `": must be at most 63 characters for the agent's static pod, whose labels hold the name`,
			},
		},
		{
			name:    "no nodes",
			mutate:  func(in *Input) { in.Nodes = nil },
			want:    []string{`spec.nodeSelector: Required value: selects no node: there is no node to render for`},
			noNodes: true,
		},
		{
			name: "more nodes than an agent can have peers",
			mutate: func(in *Input) {
				in.Nodes = nil
				for i := range 65 {
					in.Nodes = append(in.Nodes, Node{Name: fmt.Sprintf("node-%d", i), Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})}})
				}
			},
			want: []string{`nodes: Too many: 65: must have at most 64 items`},
		},
		{
			name: "node names that are not Kubernetes node names, or repeated",
			mutate: func(in *Input) {
				in.Nodes[0].Name = "Master_0"
				in.Nodes[1].Name = ""
				in.Nodes[2].Name = "Master_0"
			},
			want: []string{
				`nodes[0].name: Invalid value: "Master_0": must be a Kubernetes node name (a DNS-1123 subdomain): at most 253 characters, dot-separated labels of lower-case letters, digits and '-', each starting and ending with a letter or digit`,
				`nodes[1].name: Invalid value: "": must be a Kubernetes node name (a DNS-1123 subdomain): at most 253 characters, dot-separated labels of lower-case letters, digits and '-', each starting and ending with a letter or digit`,
				`nodes[2].name: Invalid value: "Master_0": must be a Kubernetes node name (a DNS-1123 subdomain): at most 253 characters, dot-separated labels of lower-case letters, digits and '-', each starting and ending with a letter or digit`,
			},
		},
		{
			name:   "duplicate node name",
			mutate: func(in *Input) { in.Nodes[2].Name = "master-0" },
			want:   []string{`nodes[2].name: Duplicate value: "master-0"`},
		},
		{
			name:   "node without address",
			mutate: func(in *Input) { in.Nodes[2].Addresses = nil },
			want:   []string{`nodes[master-2].addresses: Required value: the node has no address: it needs an InternalIP address of the family of the virtual IPs`},
		},
		{
			name: "node addresses that are not a node's unicast address",
			mutate: func(in *Input) {
				in.Nodes[2].Addresses = []netip.Addr{{}, netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("::ffff:192.0.2.13"),
					netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("169.254.0.1"), netip.MustParseAddr("224.0.0.18"),
					netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("192.0.2.13")}
			},
			want: []string{
				`nodes[master-2].addresses[0]: Invalid value: "invalid IP": must be an IP address`,
				`nodes[master-2].addresses[1]: Invalid value: "fe80::1%eth0": must not have a zone`,
				`nodes[master-2].addresses[2]: Invalid value: "::ffff:192.0.2.13": must not be an IPv4-mapped IPv6 address: write IPv4 addresses in dotted decimal`,
				`nodes[master-2].addresses[3]: Invalid value: "127.0.0.1": must be a unicast address of the node (an InternalIP): not unspecified, loopback, multicast, link-local or broadcast`,
				`nodes[master-2].addresses[4]: Invalid value: "169.254.0.1": must be a unicast address of the node (an InternalIP): not unspecified, loopback, multicast, link-local or broadcast`,
				`nodes[master-2].addresses[5]: Invalid value: "224.0.0.18": must be a unicast address of the node (an InternalIP): not unspecified, loopback, multicast, link-local or broadcast`,
				`nodes[master-2].addresses[6]: Invalid value: "0.0.0.0": must be a unicast address of the node (an InternalIP): not unspecified, loopback, multicast, link-local or broadcast`,
				`nodes[master-2].addresses[7]: Invalid value: "255.255.255.255": must be a unicast address of the node (an InternalIP): not unspecified, loopback, multicast, link-local or broadcast`,
			},
		},
		{
			name: "an address of two nodes, or twice of one",
			mutate: func(in *Input) {
				in.Nodes[1].Addresses = addrs("192.0.2.12", "192.0.2.12")
				in.Nodes[2].Addresses = addrs("192.0.2.11")
			},
			want: []string{
				`nodes[master-1].addresses[1]: Duplicate value: "192.0.2.12"`,
				`nodes[master-2].addresses[0]: Invalid value: "192.0.2.11": is already an address of node master-0: nodes must not share an address`,
			},
		},
		{
			name:   "a node address that is the virtual IP",
			mutate: func(in *Input) { in.Nodes[2].Addresses = addrs("192.0.2.13", "192.0.2.10") },
			want:   []string{`nodes[master-2].addresses[1]: Invalid value: "192.0.2.10": is the virtual IP spec.virtualIPs[0].address: a virtual IP must not be an address of a node`},
		},
		{
			name:   "a virtual IP whose family no node has an address of",
			mutate: dualStack,
			want:   []string{`spec.virtualIPs[1].address: Invalid value: "2001:db8::10": no selected node has an IPv6 address: give the nodes IPv6 addresses, or remove this virtual IP`},
		},
		{
			name:   "a node without an address of any virtual IP's family",
			mutate: func(in *Input) { in.Nodes[2].Addresses = addrs("2001:db8::13") },
			want:   []string{`nodes[master-2].addresses: Invalid value: "2001:db8::13": has no IPv4 address: the node cannot take part in any virtual IP`},
		},
		{
			name: "static backends without a virtual IP's family",
			mutate: func(in *Input) {
				dualStack(in)
				for i := range in.Nodes {
					in.Nodes[i].Addresses = append(in.Nodes[i].Addresses, netip.MustParseAddr(fmt.Sprintf("2001:db8::2%d", i)))
				}
				in.Config.Spec.Services = []v1alpha1.VirtualService{{Name: "web", Port: 80, Backends: v1alpha1.Backends{Static: []v1alpha1.StaticBackend{{Address: "192.0.2.80"}}}}}
			},
			want: []string{`spec.services[0].backends.static: Invalid value: 1: has no IPv6 backend for spec.virtualIPs[1] (2001:db8::10): every service is offered on every virtual IP, and IPVS does not forward between families; add an IPv6 backend, or put the IPv6 virtual IPs in a LoadBalancerConfig of their own`},
		},
		{
			name:   "passwordSecretRef without the password",
			mutate: v2,
			want:   []string{`spec.vrrp.passwordSecretRef: Required value: the password (key "password" of Secret vipvs-system/vrrp) is not given: it must be 1 to 8 bytes`},
		},
		{
			name:   "a password without passwordSecretRef",
			mutate: func(in *Input) { in.Password = "hunter2" },
			want:   []string{`spec.vrrp.passwordSecretRef: Required value: a VRRP password is given but passwordSecretRef is not set: set it (with vrrp.version 2), or give no password`},
		},
		{
			name:   "a password longer than VRRPv2 carries, not shown",
			mutate: func(in *Input) { v2(in); in.Password = "123456789" },
			want:   []string{`spec.vrrp.passwordSecretRef: Invalid value: "<redacted>": the password is 9 bytes long, at most 8: VRRPv2 carries 8 octets of authentication data`},
		},
		{
			name: "caSecretRef without its value",
			mutate: func(in *Input) {
				caService(in)
				in.Secrets = map[string][]byte{"openshift-config/api-ca/other": []byte(pemCA)}
			},
			want: []string{`spec.services[0].healthCheck.http.caSecretRef: Required value: the CA bundle (key "ca.crt" of Secret openshift-config/api-ca) is not given`},
		},
		{
			name: "caSecretRef that holds no certificate",
			mutate: func(in *Input) {
				caService(in)
				in.Secrets = map[string][]byte{"openshift-config/api-ca/ca.crt": []byte("not a certificate")}
			},
			want: []string{`spec.services[0].healthCheck.http.caSecretRef: Invalid value: "openshift-config/api-ca/ca.crt": must hold a PEM bundle of CA certificates (-----BEGIN CERTIFICATE-----)`},
		},
		{
			name:   "no image",
			mutate: func(in *Input) { in.Image = "" },
			want:   []string{`image: Required value: the agent image of the static pod must be given, e.g. quay.io/vipvs/vipvs:v0.1.0`},
		},
		{
			name:   "an image with whitespace",
			mutate: func(in *Input) { in.Image = "quay.io/vipvs/vipvs: v1" },
			want:   []string{`image: Invalid value: "quay.io/vipvs/vipvs: v1": must be an image reference, without whitespace`},
		},
		{
			name: "every problem at once",
			mutate: func(in *Input) {
				in.Config.Spec.VirtualIPs[0].VRID = 256
				in.Image = ""
				in.Nodes[0].Addresses = nil
				in.Password = "x"
			},
			want: []string{
				`spec.virtualIPs[0].vrid: Invalid value: 256: vrid must be between 1 and 255`,
				`image: Required value: the agent image of the static pod must be given, e.g. quay.io/vipvs/vipvs:v0.1.0`,
				`nodes[master-0].addresses: Required value: the node has no address: it needs an InternalIP address of the family of the virtual IPs`,
				`spec.vrrp.passwordSecretRef: Required value: a VRRP password is given but passwordSecretRef is not set: set it (with vrrp.version 2), or give no password`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput()
			tt.mutate(&in)
			out, err := Render(in)
			if err == nil {
				t.Fatalf("Render accepted it: %d nodes rendered", len(out.Nodes))
			}
			if len(out.Nodes) != 0 {
				t.Errorf("Render returned %d nodes with its error", len(out.Nodes))
			}
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T) is not an *InvalidError", err, err)
			}
			if ie.Name != in.Config.Name {
				t.Errorf("InvalidError.Name = %q, want %q", ie.Name, in.Config.Name)
			}
			var got []string
			for _, fe := range ie.Errs {
				got = append(got, fe.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if errors.Is(err, ErrNoNodes) != tt.noNodes {
				t.Errorf("errors.Is(err, ErrNoNodes) = %v, want %v", !tt.noNodes, tt.noNodes)
			}
			var fe *field.Error
			if !errors.As(err, &fe) {
				t.Errorf("errors.As does not find a *field.Error in %v", err)
			}
			if strings.Contains(err.Error(), in.Password) && in.Password != "" && len(in.Password) > 1 {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestRenderNilConfig(t *testing.T) {
	if _, err := Render(Input{Image: testImage, Nodes: baseInput().Nodes}); err == nil || !strings.Contains(err.Error(), "no LoadBalancerConfig") {
		t.Errorf("Render without Config: %v", err)
	}
}

func TestInvalidErrorMessage(t *testing.T) {
	one := &InvalidError{Name: "api", Errs: field.ErrorList{field.Required(field.NewPath("image"), "give one")}}
	if got, want := one.Error(), `cannot render LoadBalancerConfig "api": image: Required value: give one`; got != want {
		t.Errorf("one problem:\n got %s\nwant %s", got, want)
	}
	two := &InvalidError{Name: "api", Errs: field.ErrorList{field.Required(field.NewPath("a"), "x"), field.Required(field.NewPath("b"), "y")}}
	if got, want := two.Error(), `cannot render LoadBalancerConfig "api" (2 problems): a: Required value: x; b: Required value: y`; got != want {
		t.Errorf("two problems:\n got %s\nwant %s", got, want)
	}
}
