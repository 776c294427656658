package validation

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

func lbcDur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func ptr[T any](v T) *T { return &v }

// example reads one of the API's examples (api/v1alpha1/testdata), which
// the envtest tests also send to a real API server.
func example(t *testing.T, name string) *v1alpha1.LoadBalancerConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "v1alpha1", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var c v1alpha1.LoadBalancerConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
	return &c
}

// errStrings renders errors as the user sees them.
func errStrings(errs field.ErrorList) []string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return s
}

func TestValidateLoadBalancerConfigGood(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		modify func(c *v1alpha1.LoadBalancerConfig)
	}{
		{name: "control plane", file: "control-plane.yaml", modify: func(*v1alpha1.LoadBalancerConfig) {}},
		{name: "control plane with defaults", file: "control-plane.yaml", modify: v1alpha1.SetDefaults},
		{name: "ingress", file: "ingress.yaml", modify: func(*v1alpha1.LoadBalancerConfig) {}},
		{name: "ingress with defaults", file: "ingress.yaml", modify: v1alpha1.SetDefaults},
		{name: "vrrp v2 with password", file: "control-plane.yaml", modify: func(c *v1alpha1.LoadBalancerConfig) {
			c.Spec.VRRP = &v1alpha1.VRRP{Version: 2, AdvertInterval: lbcDur(3 * time.Second), PasswordSecretRef: &v1alpha1.SecretKeyReference{Namespace: "vipvs", Name: "vrrp", Key: "password"}}
		}},
		{name: "same vrid on two named interfaces", file: "control-plane.yaml", modify: func(c *v1alpha1.LoadBalancerConfig) {
			c.Spec.VirtualIPs[0].Interface = "eth0"
			c.Spec.VirtualIPs = append(c.Spec.VirtualIPs, v1alpha1.VirtualIP{Name: "api-int", Address: "198.51.100.10", VRID: 51, Interface: "eth1"})
		}},
		{name: "same vrid in the other family", file: "control-plane.yaml", modify: func(c *v1alpha1.LoadBalancerConfig) {
			c.Spec.VirtualIPs = append(c.Spec.VirtualIPs, v1alpha1.VirtualIP{Name: "api-v6", Address: "2001:db8::10", VRID: 51})
		}},
		{name: "DR with the service's port", file: "ingress.yaml", modify: func(c *v1alpha1.LoadBalancerConfig) {
			c.Spec.Services[0].Forwarding = v1alpha1.ForwardingDR
			c.Spec.Services[0].Backends = v1alpha1.Backends{Static: []v1alpha1.StaticBackend{{Address: "192.0.2.31", Port: ptr(int32(80))}, {Address: "2001:db8::31"}}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := example(t, tt.file)
			tt.modify(c)
			if errs := ValidateLoadBalancerConfig(c); len(errs) > 0 {
				t.Errorf("unexpected errors:\n%v", errs.ToAggregate())
			}
		})
	}
}

func TestValidateLoadBalancerConfigBad(t *testing.T) {
	tests := []struct {
		name   string
		file   string // default control-plane.yaml
		modify func(c *v1alpha1.LoadBalancerConfig)
		want   []string
	}{
		{
			name:   "nil",
			modify: nil,
			want:   []string{"loadBalancerConfig: Required value: the object is empty"},
		},
		{
			name: "connection sync",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.ConnectionSync = &v1alpha1.ConnectionSync{MulticastGroup: "10.0.0.1", SyncID: ptr[int32](300)}
			},
			want: []string{
				`spec.connectionSync.syncID: Invalid value: 300: must be between 0 and 255 (0: the backups accept every sync ID)`,
				`spec.connectionSync.multicastGroup: Invalid value: "10.0.0.1": must be a multicast address (224.0.0.0/4 or ff00::/8), without a zone: the kernel's sync protocol is multicast only`,
			},
		},
		{
			name:   "no name",
			modify: func(c *v1alpha1.LoadBalancerConfig) { c.Name = "" },
			want:   []string{`metadata.name: Required value: must name the LoadBalancerConfig (a DNS-1123 subdomain), e.g. "control-plane"`},
		},
		{
			name:   "empty selector",
			modify: func(c *v1alpha1.LoadBalancerConfig) { c.Spec.NodeSelector = metav1.LabelSelector{} },
			want:   []string{`spec.nodeSelector: Invalid value: "{}": nodeSelector must not be empty: an empty selector selects every node`},
		},
		{
			name: "bad selector operator",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.NodeSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}
			},
			want: []string{`spec.nodeSelector: Invalid value: "&LabelSelector{MatchLabels:map[string]string{},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:a,Operator:Near,Values:[],},},}": "Near" is not a valid label selector operator`},
		},
		{
			name: "duplicate vrid, address and name",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.VirtualIPs = append(c.Spec.VirtualIPs, v1alpha1.VirtualIP{Name: "api", Address: "192.0.2.10", VRID: 51, Interface: "eth0"})
			},
			want: []string{
				`spec.virtualIPs[1].name: Duplicate value: "api"`,
				`spec.virtualIPs[1].address: Invalid value: "192.0.2.10": each virtualIPs address must appear once`,
				`spec.virtualIPs[1].vrid: Invalid value: 51: vrid must be unique among the virtualIPs of one address family on one interface (an entry without interface may be on any interface)`,
			},
		},
		{
			name: "bad addresses",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.VirtualIPs = []v1alpha1.VirtualIP{
					{Name: "a", Address: "192.0.2.10/24", VRID: 1},
					{Name: "b", Address: "2001:DB8::1", VRID: 2},
					{Name: "c", Address: "::ffff:192.0.2.1", VRID: 3},
					{Name: "d", Address: "fe80::1", VRID: 4},
					{Name: "e", Address: "224.0.0.18", VRID: 5},
				}
			},
			want: []string{
				`spec.virtualIPs[0].address: Invalid value: "192.0.2.10/24": address must be an IP address without prefix length, in canonical form (e.g. 192.0.2.10 or 2001:db8::10)`,
				`spec.virtualIPs[1].address: Invalid value: "2001:DB8::1": address must be an IP address without prefix length, in canonical form (e.g. 192.0.2.10 or 2001:db8::10)`,
				`spec.virtualIPs[2].address: Invalid value: "::ffff:192.0.2.1": address must be an IP address without prefix length, in canonical form (e.g. 192.0.2.10 or 2001:db8::10)`,
				`spec.virtualIPs[3].address: Invalid value: "fe80::1": address must be a unicast address: not loopback, link-local, multicast, unspecified or broadcast`,
				`spec.virtualIPs[4].address: Invalid value: "224.0.0.18": address must be a unicast address: not loopback, link-local, multicast, unspecified or broadcast`,
			},
		},
		{
			name: "vrid, interface and prefix length",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				v := &c.Spec.VirtualIPs[0]
				v.VRID, v.Interface, v.PrefixLength = 0, "eth0:1", ptr(int32(33))
			},
			want: []string{
				`spec.virtualIPs[0].vrid: Required value: vrid is required for a virtual IP in mode vrrp: set a VRID (1 to 255) unique on the segment, or set mode: bgp`,
				`spec.virtualIPs[0].interface: Invalid value: "eth0:1": must be a Linux interface name: 1 to 15 bytes, not "." or "..", without '/', ':', NUL or whitespace`,
				`spec.virtualIPs[0].prefixLength: Invalid value: 33: prefixLength must be at most 32 for an IPv4 address and at most 128 for IPv6`,
			},
		},
		{
			name: "v2 with IPv6, checksumMode and a fractional interval",
			file: "ingress.yaml",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.VRRP.Version = 2
				c.Spec.VRRP.AdvertInterval = lbcDur(1500 * time.Millisecond)
			},
			want: []string{
				`spec.vrrp.advertInterval: Invalid value: "1.5s": advertInterval must be between 1s and 4m15s in whole seconds for VRRP version 2`,
				`spec.vrrp.checksumMode: Invalid value: "rfc9568": checksumMode applies only to VRRP version 3 (version 2 has one checksum): remove it`,
				`spec.vrrp.version: Invalid value: 2: VRRP version 2 supports IPv4 only: use version 3 for IPv6 virtualIPs`,
			},
		},
		{
			name: "password with v3, sub-millisecond interval, preemptDelay",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.VRRP.PasswordSecretRef = &v1alpha1.SecretKeyReference{Namespace: "vipvs", Name: "vrrp", Key: "pass word"}
				c.Spec.VRRP.AdvertInterval = lbcDur(10*time.Millisecond + 500*time.Microsecond)
				c.Spec.VRRP.Preempt = ptr(false)
				c.Spec.VRRP.PreemptDelay = lbcDur(time.Second)
			},
			want: []string{
				`spec.vrrp.advertInterval: Invalid value: "10.5ms": must be a whole number of milliseconds (the CRD accepts e.g. "500ms", "1.5s", "2m")`,
				`spec.vrrp.passwordSecretRef: Invalid value: "vipvs/vrrp": passwordSecretRef applies only to VRRP version 2 (version 3 has no authentication): remove it or set version: 2`,
				`spec.vrrp.passwordSecretRef.key: Invalid value: "pass word": must be a Secret data key: at most 253 letters, digits, '-', '_' and '.'`,
				`spec.vrrp.preemptDelay: Invalid value: "1s": preemptDelay must be 0s when preempt is false: a router that does not preempt has nothing to delay`,
			},
		},
		{
			name: "bad version and mode, byNode in spread mode",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.VRRP.Version = 4
				c.Spec.Mode = v1alpha1.ModeSpread
				c.Spec.Priorities.ByNode[1] = v1alpha1.NodePriority{NodeName: "master-0", Priority: 255}
			},
			want: []string{
				`spec.vrrp.version: Unsupported value: 4: supported values: "2", "3"`,
				`spec.priorities.byNode: Invalid value: 3: priorities.byNode applies only to mode activeStandby: spread mode orders the nodes by name for each VIP`,
				`spec.priorities.byNode[1].nodeName: Duplicate value: "master-0"`,
				`spec.priorities.byNode[1].priority: Invalid value: 255: priority must be between 1 and 254 (255 is reserved for an address owner)`,
			},
		},
		{
			name: "services: duplicate port, enums, backends",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				s := c.Spec.Services
				s[1].Port = 6443
				s[1].Scheduler = "random"
				s[1].Forwarding = "FullNAT"
				s[1].Backends = v1alpha1.Backends{}
				s[0].Protocol = "ICMP"
				s[0].PersistenceSeconds = ptr(int32(0))
			},
			want: []string{
				`spec.services[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"`,
				`spec.services[0].persistenceSeconds: Invalid value: 0: persistenceSeconds must be between 1 and 86400`,
				`spec.services[1].scheduler: Unsupported value: "random": supported values: "rr", "wrr", "lc", "wlc", "sh", "mh"`,
				`spec.services[1].forwarding: Unsupported value: "FullNAT": supported values: "NAT", "DR", "Tunnel"`,
				`spec.services[1].backends: Invalid value: "none": backends must set exactly one of selectedNodes or static`,
			},
		},
		{
			name: "services: duplicate port and protocol",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.Services[1].Port = 6443
			},
			want: []string{`spec.services[1].port: Invalid value: 6443: each port and protocol must appear once among services: every service is offered on every virtual IP`},
		},
		{
			name: "static backends: family, effective port duplicate, DR port",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				s := &c.Spec.Services[0]
				s.Forwarding = v1alpha1.ForwardingDR
				s.Backends = v1alpha1.Backends{Static: []v1alpha1.StaticBackend{
					{Address: "192.0.2.31"},
					{Address: "192.0.2.31", Port: ptr(int32(6443))},
					{Address: "192.0.2.32", Port: ptr(int32(16443)), Weight: ptr(int32(70000))},
					{Address: "2001:db8::31"},
				}}
			},
			want: []string{
				`spec.services[0].backends.static[1]: Invalid value: "192.0.2.31:6443": each static backend address and port must appear once`,
				`spec.services[0].backends.static[2].port: Invalid value: 16443: forwarding DR and Tunnel cannot change the port: the backends' port must be unset or equal to port`,
				`spec.services[0].backends.static[2].weight: Invalid value: 70000: weight must be between 0 (no new connections) and 65535`,
				`spec.services[0].backends.static[3].address: Invalid value: "2001:db8::31": every static backend address must be in the family (IPv4 or IPv6) of one of the virtualIPs`,
			},
		},
		{
			name: "health checks: two kinds, timeout, TLS",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				hc := c.Spec.Services[0].HealthCheck
				hc.TCP = &v1alpha1.ServiceTCPCheck{}
				hc.Timeout = lbcDur(3 * time.Second)
				hc.HTTP.Scheme = v1alpha1.URISchemeHTTP
				hc.HTTP.InsecureSkipVerify = true
				hc.HTTP.Path = "readyz"
				c.Spec.Services[1].HealthCheck.TCP = nil
			},
			want: []string{
				`spec.services[0].healthCheck.http.path: Invalid value: "readyz": path must start with '/' and hold no whitespace, at most 1024 characters`,
				`spec.services[0].healthCheck.http: Invalid value: 2: set at most one of caSecretRef, caFile and insecureSkipVerify: either verify the certificate (with one CA) or do not`,
				`spec.services[0].healthCheck.http.scheme: Invalid value: "HTTP": caSecretRef, caFile, insecureSkipVerify and serverName need scheme HTTPS`,
				`spec.services[0].healthCheck: Invalid value: "tcp, http": healthCheck must set exactly one of tcp, http or exec`,
				`spec.services[0].healthCheck.timeout: Invalid value: "3s": timeout must be at most interval: probes of one check never overlap`,
				`spec.services[1].healthCheck: Invalid value: "none": healthCheck must set exactly one of tcp, http or exec`,
			},
		},
		{
			name: "track checks",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				tc := &c.Spec.TrackChecks[0]
				tc.Weight = -255
				tc.Interface = &v1alpha1.InterfaceCheck{Name: "eth0"}
				tc.HTTP.URL = "ftp://127.0.0.1/readyz"
				tc.HTTP.InsecureSkipVerify = true
				tc.Interval = lbcDur(50 * time.Millisecond)
				c.Spec.TrackChecks = append(c.Spec.TrackChecks,
					v1alpha1.TrackCheck{Name: "tcp", TCP: &v1alpha1.TCPCheck{Address: "localhost:6443"}},
					v1alpha1.TrackCheck{Name: "tcp", Exec: &v1alpha1.ExecCheck{Command: []string{"check.sh"}}})
			},
			want: []string{
				`spec.trackChecks[0].weight: Invalid value: -255: weight must be between -254 and 254 (0: give the virtual IPs up while the check fails)`,
				`spec.trackChecks[0].http.url: Invalid value: "ftp://127.0.0.1/readyz": url must be an http:// or https:// URL with a host, e.g. https://127.0.0.1:6443/readyz`,
				`spec.trackChecks[0].http.insecureSkipVerify: Invalid value: true: insecureSkipVerify must not be set together with caFile: either verify the certificate or do not`,
				`spec.trackChecks[0]: Invalid value: "http, interface": a track check must set exactly one of tcp, http, exec or interface`,
				`spec.trackChecks[0].interval: Invalid value: "50ms": interval must be between 100ms and 1h`,
				`spec.trackChecks[0].timeout: Invalid value: "500ms": timeout must be at most interval: probes of one check never overlap`,
				`spec.trackChecks[1].tcp.address: Invalid value: "localhost:6443": address must be IP:port, e.g. 127.0.0.1:6443 or [::1]:6443`,
				`spec.trackChecks[2].name: Duplicate value: "tcp"`,
				`spec.trackChecks[2].exec.command[0]: Invalid value: "check.sh": command[0] must be the absolute path of the program: the command runs without a shell or a PATH lookup`,
			},
		},
		{
			name:   "preemptAfterChecks without track checks",
			modify: func(c *v1alpha1.LoadBalancerConfig) { c.Spec.TrackChecks = nil },
			want:   []string{`spec.preemptAfterChecks: Invalid value: true: preemptAfterChecks needs trackChecks: there is no check to wait for`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *v1alpha1.LoadBalancerConfig
			if tt.modify != nil {
				file := tt.file
				if file == "" {
					file = "control-plane.yaml"
				}
				c = example(t, file)
				v1alpha1.SetDefaults(c)
				tt.modify(c)
			}
			got := errStrings(ValidateLoadBalancerConfig(c))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateLoadBalancerConfigSet(t *testing.T) {
	cp, ing := example(t, "control-plane.yaml"), example(t, "ingress.yaml")
	tests := []struct {
		name   string
		modify func(ing *v1alpha1.LoadBalancerConfig)
		want   []string
	}{
		{name: "disjoint", modify: func(*v1alpha1.LoadBalancerConfig) {}},
		{
			name: "shared VIP and VRID",
			modify: func(ing *v1alpha1.LoadBalancerConfig) {
				ing.Spec.VirtualIPs[0].Address = "192.0.2.10"
				ing.Spec.VirtualIPs[1].VRID = 51
			},
			want: []string{
				`loadBalancerConfig[ingress].spec.virtualIPs[0].address: Invalid value: "192.0.2.10": address is already a virtual IP of LoadBalancerConfig "control-plane" (loadBalancerConfig[control-plane].spec.virtualIPs[0]): a virtual IP belongs to one LoadBalancerConfig`,
				`loadBalancerConfig[ingress].spec.virtualIPs[1].vrid: Invalid value: 51: vrid is already used by LoadBalancerConfig "control-plane" (loadBalancerConfig[control-plane].spec.virtualIPs[0]) in the same address family: VRIDs must be unique per segment across LoadBalancerConfigs`,
			},
		},
		{
			name: "same VRID in another family",
			modify: func(ing *v1alpha1.LoadBalancerConfig) {
				ing.Spec.VirtualIPs[2].VRID = 51
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := ing.DeepCopy()
			tt.modify(i)
			got := errStrings(ValidateLoadBalancerConfigSet([]v1alpha1.LoadBalancerConfig{*cp, *i}))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
