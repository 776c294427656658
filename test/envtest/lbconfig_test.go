package envtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/api/validation"
	"github.com/vipvs/vipvs/test/envtest"
)

const (
	crdDir  = "../../manifests/crd"
	crdName = "loadbalancerconfigs.vipvs.io"
)

// loadExample reads one of the API's example LoadBalancerConfigs strictly.
func loadExample(t *testing.T, name string) *v1alpha1.LoadBalancerConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "api", "v1alpha1", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var lbc v1alpha1.LoadBalancerConfig
	if err := yaml.UnmarshalStrict(b, &lbc); err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
	return &lbc
}

// TestLoadBalancerConfigCRD installs the generated CRD in a real API server
// and checks its schema, defaults, validation rules and printer columns.
// One environment serves every subtest.
func TestLoadBalancerConfigCRD(t *testing.T) {
	start := time.Now()
	cfg, _ := envtest.Start(t, crdDir)
	t.Logf("envtest started in %v", time.Since(start).Round(time.Millisecond))

	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("schema", func(t *testing.T) { testSchema(ctx, t, c) })
	t.Run("valid", func(t *testing.T) { testValid(ctx, t, c) })
	t.Run("accepted", func(t *testing.T) { testAccepted(ctx, t, c) })
	t.Run("invalid", func(t *testing.T) { testInvalid(ctx, t, c) })
	t.Run("invalidRaw", func(t *testing.T) { testInvalidRaw(ctx, t, c) })
	t.Run("statusAndPrinterColumns", func(t *testing.T) { testStatusAndColumns(ctx, t, c, cfg) })
}

// testSchema checks that every property of the installed CRD's schema has
// a description (kubectl explain), and that the markers' limits match the
// package's constants.
func testSchema(ctx context.Context, t *testing.T, c client.Client) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := c.Get(ctx, client.ObjectKey{Name: crdName}, &crd); err != nil {
		t.Fatalf("getting the CRD: %v", err)
	}
	if got := crd.Spec.Scope; got != apiextensionsv1.ClusterScoped {
		t.Errorf("scope = %s, want Cluster", got)
	}
	if got := crd.Spec.Names.ShortNames; !cmp.Equal(got, []string{"lbc"}) {
		t.Errorf("shortNames = %v, want [lbc]", got)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Subresources == nil || crd.Spec.Versions[0].Subresources.Status == nil {
		t.Fatalf("want one version with the status subresource, got %+v", crd.Spec.Versions)
	}
	root := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	var missing []string
	walkSchema("", root, func(path string, p *apiextensionsv1.JSONSchemaProps) {
		// apiVersion and kind are described by the API machinery; metadata
		// has no schema of its own in a CRD.
		if p.Description == "" {
			missing = append(missing, path)
		}
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("%d schema properties without description (kubectl explain shows nothing):\n%s", len(missing), strings.Join(missing, "\n"))
	}

	spec := root.Properties["spec"]
	for _, tt := range []struct {
		name string
		prop *apiextensionsv1.JSONSchemaProps
		want int64
	}{
		{"spec.virtualIPs", prop(spec, "virtualIPs"), v1alpha1.MaxVirtualIPs},
		{"spec.services", prop(spec, "services"), v1alpha1.MaxServices},
		{"spec.services[].backends.static", prop(spec, "services", "[]", "backends", "static"), v1alpha1.MaxStaticBackends},
		{"spec.trackChecks", prop(spec, "trackChecks"), v1alpha1.MaxTrackChecks},
		{"spec.priorities.byNode", prop(spec, "priorities", "byNode"), v1alpha1.MaxNodes},
		{"spec.trackChecks[].exec.command", prop(spec, "trackChecks", "[]", "exec", "command"), v1alpha1.MaxCommandArgs},
		{"spec.trackChecks[].http.expectStatus", prop(spec, "trackChecks", "[]", "http", "expectStatus"), v1alpha1.MaxExpectStatus},
		{"status.nodes", prop(root.Properties["status"], "nodes"), v1alpha1.MaxNodes},
		{"status.vips", prop(root.Properties["status"], "vips"), v1alpha1.MaxVirtualIPs},
		{"status.conditions", prop(root.Properties["status"], "conditions"), v1alpha1.MaxConditions},
	} {
		if tt.prop == nil || tt.prop.MaxItems == nil || *tt.prop.MaxItems != tt.want {
			t.Errorf("%s: maxItems in the CRD differs from the Go constant %d", tt.name, tt.want)
		}
	}
}

// prop follows a path of property names ("[]" for a list's items).
func prop(p apiextensionsv1.JSONSchemaProps, path ...string) *apiextensionsv1.JSONSchemaProps {
	cur := &p
	for _, name := range path {
		if name == "[]" {
			if cur.Items == nil || cur.Items.Schema == nil {
				return nil
			}
			cur = cur.Items.Schema
			continue
		}
		next, ok := cur.Properties[name]
		if !ok {
			return nil
		}
		cur = &next
	}
	return cur
}

// walkSchema calls f for every named property below p (not p itself),
// including the properties of list items and map values, except the
// top-level metadata.
func walkSchema(path string, p *apiextensionsv1.JSONSchemaProps, f func(string, *apiextensionsv1.JSONSchemaProps)) {
	for name, child := range p.Properties {
		cp := name
		if path != "" {
			cp = path + "." + name
		}
		if path == "" && name == "metadata" {
			// controller-gen reduces metadata to {type: object}; kubectl
			// explain documents it from ObjectMeta.
			continue
		}
		f(cp, &child)
		walkSchema(cp, &child, f)
	}
	if p.Items != nil && p.Items.Schema != nil {
		walkSchema(path+"[]", p.Items.Schema, f)
	}
	if p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil {
		walkSchema(path+"{}", p.AdditionalProperties.Schema, f)
	}
}

// testValid creates the two example LoadBalancerConfigs and checks that the
// API server applied exactly the defaults SetDefaults applies.
func testValid(ctx context.Context, t *testing.T, c client.Client) {
	for _, tt := range []struct {
		name string
		file string
		// check spot-checks some defaults by hand, independently of
		// SetDefaults.
		check func(t *testing.T, got *v1alpha1.LoadBalancerConfig)
	}{
		{
			name: "control plane",
			file: "control-plane.yaml",
			check: func(t *testing.T, got *v1alpha1.LoadBalancerConfig) {
				v := got.Spec.VRRP
				if v.Version != 3 || v.AdvertInterval.Duration != 100*time.Millisecond || !*v.Unicast || !*v.Preempt || v.PreemptDelay.Duration != 0 {
					t.Errorf("vrrp defaults: got %+v", *v)
				}
				if got.Spec.Mode != v1alpha1.ModeActiveStandby {
					t.Errorf("mode = %q, want activeStandby", got.Spec.Mode)
				}
				svc := got.Spec.Services[0]
				if svc.Protocol != "TCP" || svc.Forwarding != "NAT" || *svc.Backends.SelectedNodes.Weight != 1 || *svc.HealthCheck.Rise != 2 || *svc.HealthCheck.Fall != 3 {
					t.Errorf("service defaults: got %+v", svc)
				}
				if diff := cmp.Diff([]int32{200}, svc.HealthCheck.HTTP.ExpectStatus); diff != "" {
					t.Errorf("expectStatus (-want +got):\n%s", diff)
				}
				if got.Spec.Services[1].Scheduler != "wlc" || got.Spec.Services[1].HealthCheck.Interval.Duration != 2*time.Second {
					t.Errorf("service defaults: got %+v", got.Spec.Services[1])
				}
			},
		},
		{
			name: "ingress",
			file: "ingress.yaml",
			check: func(t *testing.T, got *v1alpha1.LoadBalancerConfig) {
				if got.Spec.VRRP.AdvertInterval.Duration != time.Second {
					t.Errorf("advertInterval = %v, want 1s", got.Spec.VRRP.AdvertInterval)
				}
				if got.Spec.Mode != v1alpha1.ModeSpread {
					t.Errorf("mode = %q, want spread", got.Spec.Mode)
				}
				if h := got.Spec.Services[0].HealthCheck.HTTP; h.Scheme != "HTTP" {
					t.Errorf("scheme = %q, want HTTP", h.Scheme)
				}
			},
		},
		{
			name: "bgp",
			file: "bgp.yaml",
			check: func(t *testing.T, got *v1alpha1.LoadBalancerConfig) {
				if v := got.Spec.VirtualIPs[0]; v.Mode != v1alpha1.AnnouncementBGP || v.VRID != 0 {
					t.Errorf("virtualIPs[0] = %+v, want mode bgp without vrid", v)
				}
				if b := got.Spec.BGP; b == nil || len(b.Peers) != 2 || b.Peers[0].PasswordSecretRef == nil || *b.LocalASN != 64513 {
					t.Errorf("bgp = %+v", got.Spec.BGP)
				}
			},
		},
		{
			name: "minimal",
			file: "",
			check: func(t *testing.T, got *v1alpha1.LoadBalancerConfig) {
				if got.Spec.VRRP == nil || got.Spec.VRRP.Version != 3 || got.Spec.VRRP.AdvertInterval.Duration != time.Second {
					t.Errorf("vrrp defaults from {}: got %+v", got.Spec.VRRP)
				}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := minimal("minimal")
			if tt.file != "" {
				in = loadExample(t, tt.file)
			}
			want := in.DeepCopy()
			v1alpha1.SetDefaults(want)
			if errs := validation.ValidateLoadBalancerConfig(in); len(errs) > 0 {
				t.Errorf("ValidateLoadBalancerConfig rejects what the API server should accept: %v", errs.ToAggregate())
			}
			if errs := validation.ValidateLoadBalancerConfig(want); len(errs) > 0 {
				t.Errorf("ValidateLoadBalancerConfig rejects the defaulted object: %v", errs.ToAggregate())
			}
			if err := c.Create(ctx, in); err != nil {
				t.Fatalf("creating %s: %v", in.Name, err)
			}
			t.Cleanup(func() { _ = c.Delete(context.Background(), in) })
			var got v1alpha1.LoadBalancerConfig
			if err := c.Get(ctx, client.ObjectKeyFromObject(in), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
				t.Errorf("spec read back differs from SetDefaults(spec) (-want +got):\n%s", diff)
			}
			tt.check(t, &got)
		})
	}
}

// minimal is the smallest valid LoadBalancerConfig.
func minimal(name string) *v1alpha1.LoadBalancerConfig {
	return &v1alpha1.LoadBalancerConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.LoadBalancerConfigSpec{
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/control-plane": ""}},
			VirtualIPs:   []v1alpha1.VirtualIP{{Name: "api", Address: "192.0.2.10", VRID: 51}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func dur(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: d}
}

// testInvalid mutates the control-plane example into each invalid case and
// checks that the API server rejects it with a message naming the field.
func testInvalid(ctx context.Context, t *testing.T, c client.Client) {
	base := loadExample(t, "control-plane.yaml")
	ingress := loadExample(t, "ingress.yaml")
	bgp := loadExample(t, "bgp.yaml")
	for _, tt := range []struct {
		name   string
		base   *v1alpha1.LoadBalancerConfig
		mutate func(s *v1alpha1.LoadBalancerConfigSpec)
		want   []string // substrings of the error
	}{
		{
			name:   "empty node selector",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.NodeSelector = metav1.LabelSelector{} },
			want:   []string{"spec.nodeSelector", "must not be empty"},
		},
		{
			name:   "no virtual IPs",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs = nil },
			want:   []string{"spec.virtualIPs", "Required value"},
		},
		{
			name: "too many virtual IPs",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				for i := 1; i <= v1alpha1.MaxVirtualIPs; i++ {
					s.VirtualIPs = append(s.VirtualIPs, v1alpha1.VirtualIP{Name: fmt.Sprintf("vip%d", i), Address: fmt.Sprintf("192.0.2.%d", 100+i), VRID: int32(100 + i)})
				}
			},
			want: []string{"spec.virtualIPs", "must have at most 16 items"},
		},
		{
			name: "duplicate VRID",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VirtualIPs = append(s.VirtualIPs, v1alpha1.VirtualIP{Name: "api2", Address: "192.0.2.11", VRID: 51})
			},
			want: []string{"spec.virtualIPs", "vrid must be unique"},
		},
		{
			name: "duplicate VIP",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VirtualIPs = append(s.VirtualIPs, v1alpha1.VirtualIP{Name: "api2", Address: "192.0.2.10", VRID: 52})
			},
			want: []string{"spec.virtualIPs", "each virtualIPs address must appear once"},
		},
		{
			name: "duplicate VIP name",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VirtualIPs = append(s.VirtualIPs, v1alpha1.VirtualIP{Name: "api", Address: "192.0.2.11", VRID: 52})
			},
			want: []string{"spec.virtualIPs[1]", "Duplicate value"},
		},
		{
			name:   "bad IP",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[0].Address = "192.0.2.300" },
			want:   []string{"spec.virtualIPs[0].address", "must be an IP address"},
		},
		{
			name:   "IP with prefix",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[0].Address = "192.0.2.10/24" },
			want:   []string{"spec.virtualIPs[0].address", "without prefix length"},
		},
		{
			name:   "non-canonical IPv6",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[0].Address = "2001:DB8::10" },
			want:   []string{"spec.virtualIPs[0].address", "canonical form"},
		},
		{
			name:   "loopback VIP",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[0].Address = "127.0.0.10" },
			want:   []string{"spec.virtualIPs[0].address", "must be a unicast address"},
		},
		{
			// vrid is omitempty since mode bgp has none: 0 is no vrid.
			name:   "VRID 0",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[0].VRID = 0 },
			want:   []string{"spec.virtualIPs[0].vrid", "vrid is required for a virtual IP in mode vrrp"},
		},
		{
			name:   "VRID 256",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[0].VRID = 256 },
			want:   []string{"spec.virtualIPs[0].vrid", "less than or equal to 255"},
		},
		{
			name:   "IPv4 prefix length 33",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[0].PrefixLength = ptr(int32(33)) },
			want:   []string{"spec.virtualIPs[0].prefixLength", "at most 32"},
		},
		{
			name:   "bad interface name",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[0].Interface = "eth0:1" },
			want:   []string{"spec.virtualIPs[0].interface"},
		},
		{
			name: "v2 with IPv6",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VRRP.Version = 2
				s.VRRP.AdvertInterval = dur("1s")
				s.VirtualIPs[0].Address = "2001:db8::10"
			},
			want: []string{"spec.vrrp.version", "VRRP version 2 supports IPv4 only"},
		},
		{
			name: "passwordSecretRef with v3",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VRRP.PasswordSecretRef = &v1alpha1.SecretKeyReference{Namespace: "vipvs", Name: "vrrp", Key: "password"}
			},
			want: []string{"spec.vrrp.passwordSecretRef", "applies only to VRRP version 2"},
		},
		{
			name: "checksumMode with v2",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VRRP.Version = 2
				s.VRRP.AdvertInterval = dur("1s")
				s.VRRP.ChecksumMode = v1alpha1.ChecksumRFC9568
			},
			want: []string{"spec.vrrp.checksumMode", "applies only to VRRP version 3"},
		},
		{
			name:   "unknown checksumMode",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VRRP.ChecksumMode = "none" },
			want:   []string{"spec.vrrp.checksumMode", `Unsupported value: "none"`},
		},
		{
			name:   "unknown version",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VRRP.Version = 4 },
			want:   []string{"spec.vrrp.version", "Unsupported value: 4"},
		},
		{
			name:   "v3 advert interval not in 10ms steps",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VRRP.AdvertInterval = dur("105ms") },
			want:   []string{"spec.vrrp.advertInterval", "in steps of 10ms"},
		},
		{
			name:   "v3 advert interval too long",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VRRP.AdvertInterval = dur("41s") },
			want:   []string{"spec.vrrp.advertInterval", "between 10ms and 40.95s"},
		},
		{
			name: "v2 advert interval not whole seconds",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VRRP.Version = 2
				s.VRRP.AdvertInterval = dur("1500ms")
			},
			want: []string{"spec.vrrp.advertInterval", "in whole seconds for VRRP version 2"},
		},
		{
			name: "preemptDelay without preempt",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VRRP.Preempt = ptr(false)
				s.VRRP.PreemptDelay = dur("10s")
			},
			want: []string{"spec.vrrp.preemptDelay", "must be 0s when preempt is false"},
		},
		{
			name:   "preemptDelay too long",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VRRP.PreemptDelay = dur("2h") },
			want:   []string{"spec.vrrp.preemptDelay", "at most 1h"},
		},
		{
			name:   "unknown mode",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Mode = "roundRobin" },
			want:   []string{"spec.mode", `Unsupported value: "roundRobin"`},
		},
		{
			name:   "byNode in spread mode",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Mode = v1alpha1.ModeSpread },
			want:   []string{"spec.priorities.byNode", "applies only to mode activeStandby"},
		},
		{
			name:   "priority 255",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Priorities.ByNode[0].Priority = 255 },
			want:   []string{"spec.priorities.byNode[0].priority", "less than or equal to 254"},
		},
		{
			name: "duplicate port and protocol",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[1].Port = 6443
			},
			want: []string{"spec.services", "each port and protocol must appear once"},
		},
		{
			name:   "unknown protocol",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Services[0].Protocol = "ICMP" },
			want:   []string{"spec.services[0].protocol", `Unsupported value: "ICMP"`},
		},
		{
			name:   "unknown scheduler",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Services[0].Scheduler = "random" },
			want:   []string{"spec.services[0].scheduler", `Unsupported value: "random"`},
		},
		{
			name:   "unknown forwarding",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Services[0].Forwarding = "FullNAT" },
			want:   []string{"spec.services[0].forwarding", `Unsupported value: "FullNAT"`},
		},
		{
			name:   "port 0",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Services[0].Port = 0 },
			want:   []string{"spec.services[0].port", "greater than or equal to 1"},
		},
		{
			name:   "no backends",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Services[0].Backends = v1alpha1.Backends{} },
			want:   []string{"spec.services[0].backends", "exactly one of selectedNodes or static"},
		},
		{
			name: "both backend kinds",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[0].Backends.Static = []v1alpha1.StaticBackend{{Address: "192.0.2.31"}}
			},
			want: []string{"spec.services[0].backends", "exactly one of selectedNodes or static"},
		},
		{
			name: "duplicate static backend",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[0].Backends = v1alpha1.Backends{Static: []v1alpha1.StaticBackend{{Address: "192.0.2.31"}, {Address: "192.0.2.31"}}}
			},
			want: []string{"spec.services[0].backends.static", "must appear once"},
		},
		{
			name: "static backend of another family",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[0].Backends = v1alpha1.Backends{Static: []v1alpha1.StaticBackend{{Address: "2001:db8::31"}}}
			},
			want: []string{"spec.services", "family (IPv4 or IPv6) of one of the virtualIPs"},
		},
		{
			name: "too many static backends",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				var bs []v1alpha1.StaticBackend
				for i := 0; i <= v1alpha1.MaxStaticBackends; i++ {
					bs = append(bs, v1alpha1.StaticBackend{Address: fmt.Sprintf("192.0.2.%d", i+1)})
				}
				s.Services[0].Backends = v1alpha1.Backends{Static: bs}
			},
			want: []string{"spec.services[0].backends.static", "must have at most 64 items"},
		},
		{
			name: "DR changes the port",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[0].Forwarding = v1alpha1.ForwardingDR
				s.Services[0].Backends.SelectedNodes.Port = ptr(int32(16443))
			},
			want: []string{"spec.services[0].backends", "DR and Tunnel cannot change the port"},
		},
		{
			name: "two check kinds",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[0].HealthCheck.TCP = &v1alpha1.ServiceTCPCheck{}
			},
			want: []string{"spec.services[0].healthCheck", "exactly one of tcp, http or exec"},
		},
		{
			name: "no check kind",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[1].HealthCheck.TCP = nil
			},
			want: []string{"spec.services[1].healthCheck", "exactly one of tcp, http or exec"},
		},
		{
			name: "timeout > interval",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[0].HealthCheck.Timeout = dur("3s")
			},
			want: []string{"spec.services[0].healthCheck.timeout", "must be at most interval"},
		},
		{
			name: "CA and insecureSkipVerify",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[0].HealthCheck.HTTP.InsecureSkipVerify = true
			},
			want: []string{"spec.services[0].healthCheck.http", "at most one of caSecretRef, caFile and insecureSkipVerify"},
		},
		{
			name: "TLS settings with HTTP",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[0].HealthCheck.HTTP.Scheme = v1alpha1.URISchemeHTTP
			},
			want: []string{"spec.services[0].healthCheck.http.scheme", "need scheme HTTPS"},
		},
		{
			name:   "path without slash",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Services[0].HealthCheck.HTTP.Path = "readyz" },
			want:   []string{"spec.services[0].healthCheck.http.path"},
		},
		{
			name:   "expect status 600",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Services[0].HealthCheck.HTTP.ExpectStatus = []int32{600} },
			want:   []string{"spec.services[0].healthCheck.http.expectStatus[0]", "less than or equal to 599"},
		},
		{
			name:   "unknown scheme",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.Services[0].HealthCheck.HTTP.Scheme = "FTP" },
			want:   []string{"spec.services[0].healthCheck.http.scheme", `Unsupported value: "FTP"`},
		},
		{
			name: "track check with two kinds",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.TrackChecks[0].Interface = &v1alpha1.InterfaceCheck{Name: "eth0"}
			},
			want: []string{"spec.trackChecks[0]", "exactly one of tcp, http, exec or interface"},
		},
		{
			name: "track check timeout > interval",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.TrackChecks[0].Timeout = dur("1500ms")
			},
			want: []string{"spec.trackChecks[0].timeout", "must be at most interval"},
		},
		{
			name:   "track check interval too short",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.TrackChecks[0].Interval = dur("10ms") },
			want:   []string{"spec.trackChecks[0].interval", "between 100ms and 1h"},
		},
		{
			name:   "track check bad URL",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.TrackChecks[0].HTTP.URL = "ftp://127.0.0.1/readyz" },
			want:   []string{"spec.trackChecks[0].http.url", "must be an http:// or https:// URL"},
		},
		{
			name: "track check bad TCP address",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.TrackChecks[0].HTTP = nil
				s.TrackChecks[0].TCP = &v1alpha1.TCPCheck{Address: "localhost:6443"}
			},
			want: []string{"spec.trackChecks[0].tcp.address", "must be IP:port"},
		},
		{
			name: "track check relative exec",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.TrackChecks[0].HTTP = nil
				s.TrackChecks[0].Exec = &v1alpha1.ExecCheck{Command: []string{"check.sh"}}
			},
			want: []string{"spec.trackChecks[0].exec.command", "absolute path"},
		},
		{
			name:   "weight out of range",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.TrackChecks[0].Weight = -255 },
			want:   []string{"spec.trackChecks[0].weight", "greater than or equal to -254"},
		},
		{
			name: "too many track checks",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				for i := 0; i < v1alpha1.MaxTrackChecks; i++ {
					s.TrackChecks = append(s.TrackChecks, v1alpha1.TrackCheck{Name: fmt.Sprintf("if%d", i), Interface: &v1alpha1.InterfaceCheck{Name: "eth0"}})
				}
			},
			want: []string{"spec.trackChecks", "must have at most 16 items"},
		},
		{
			name:   "preemptAfterChecks without track checks",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.TrackChecks = nil },
			want:   []string{"spec.preemptAfterChecks", "needs trackChecks"},
		},
		{
			name: "ingress: same VRID same family on unknown interface",
			base: ingress,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VirtualIPs[1].VRID = 61
			},
			want: []string{"spec.virtualIPs", "vrid must be unique"},
		},
		{
			name: "ingress: checksumMode with v2 and IPv6",
			base: ingress,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VRRP.Version = 2
			},
			want: []string{"spec.vrrp.version", "VRRP version 2 supports IPv4 only", "spec.vrrp.checksumMode", "applies only to VRRP version 3"},
		},
		// BGP (issue 14): each rejection names the field and the fix.
		{
			name:   "bgp virtual IP without peers",
			base:   bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.BGP = nil },
			want:   []string{"spec.bgp", "a virtual IP in mode bgp needs spec.bgp with peers"},
		},
		{
			name:   "bgp virtual IP with an empty bgp section",
			base:   bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.BGP = &v1alpha1.BGP{} },
			want:   []string{"spec.bgp", "a virtual IP in mode bgp needs spec.bgp with peers"},
		},
		{
			name:   "localASN 0",
			base:   bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.BGP.LocalASN = ptr(int64(0)) },
			want:   []string{"spec.bgp.localASN", "greater than or equal to 1"},
		},
		{
			name:   "peer ASN 4294967295",
			base:   bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.BGP.Peers[0].ASN = 4294967295 },
			want:   []string{"spec.bgp.peers[0].asn", "less than or equal to 4294967294"},
		},
		{
			name:   "byNode ASN 0",
			base:   bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.BGP.ByNode[0].LocalASN = ptr(int64(0)) },
			want:   []string{"spec.bgp.byNode[0].localASN", "greater than or equal to 1"},
		},
		{
			name:   "BFD interval below 10ms",
			base:   bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.BGP.BFDProfile.MinRxInterval = dur("9ms") },
			want:   []string{"spec.bgp.bfdProfile.minRxInterval", "minRxInterval must be between 10ms and 1m"},
		},
		{
			name:   "vrid on a bgp virtual IP",
			base:   bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[0].VRID = 51 },
			want:   []string{"spec.virtualIPs[0].vrid", "vrid is a VRRP setting and does not apply to a virtual IP in mode bgp: remove it"},
		},
		{
			name:   "prefixLength on a bgp virtual IP",
			base:   bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[1].PrefixLength = ptr(int32(64)) },
			want:   []string{"spec.virtualIPs[1].prefixLength", "advertised as a host route: remove prefixLength"},
		},
		{
			name:   "vrrp virtual IP without vrid",
			base:   bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VirtualIPs[0].Mode = v1alpha1.AnnouncementVRRP },
			want:   []string{"spec.virtualIPs[0].vrid", "vrid is required for a virtual IP in mode vrrp"},
		},
		{
			name: "externalSpeaker with peers",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP.ExternalSpeaker = &v1alpha1.ExternalSpeaker{Table: 198}
			},
			want: []string{"spec.bgp.externalSpeaker", "externalSpeaker and peers exclude each other", "localASN, listenPort, bfdProfile and byNode configure the agent's BGP speaker"},
		},
		{
			name: "externalSpeaker table 254",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP = &v1alpha1.BGP{ExternalSpeaker: &v1alpha1.ExternalSpeaker{Table: 254}}
			},
			want: []string{"spec.bgp.externalSpeaker.table", "table must not be 253 (default), 254 (main) or 255 (local)"},
		},
		{
			name: "externalSpeaker table 253",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP = &v1alpha1.BGP{ExternalSpeaker: &v1alpha1.ExternalSpeaker{Table: 253}}
			},
			want: []string{"spec.bgp.externalSpeaker.table", "table must not be 253"},
		},
		{
			name: "externalSpeaker table 255",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP = &v1alpha1.BGP{ExternalSpeaker: &v1alpha1.ExternalSpeaker{Table: 255}}
			},
			want: []string{"spec.bgp.externalSpeaker.table", "table must not be 253"},
		},
		{
			name: "peers without localASN",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP.LocalASN = nil
			},
			want: []string{"spec.bgp.localASN", "localASN is required with peers"},
		},
		{
			name: "multihop with BFD",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP.Peers[0].EBGPMultihop = ptr(int32(2))
			},
			want: []string{"spec.bgp.peers[0].ebgpMultihop", "BFD here is single-hop"},
		},
		{
			name: "multihop on an iBGP peer",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP.Peers[1].BFD = false
				s.BGP.Peers[1].ASN = 64513
				s.BGP.Peers[1].EBGPMultihop = ptr(int32(2))
			},
			want: []string{"spec.bgp.peers", "ebgpMultihop applies to eBGP peers only"},
		},
		{
			name: "keepalive above hold time",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP.Peers[0].KeepaliveTime = dur("91s")
			},
			want: []string{"spec.bgp.peers[0].keepaliveTime", "keepaliveTime must be at most holdTime"},
		},
		{
			name: "hold time not whole seconds",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP.Peers[0].HoldTime = dur("2.5s")
			},
			want: []string{"spec.bgp.peers[0].holdTime", "holdTime must be between 3s and 65535s"},
		},
		{
			name: "duplicate peer",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP.Peers[1].Address = "192.0.2.1"
			},
			want: []string{"spec.bgp.peers[1]", "Duplicate value"},
		},
		{
			name: "link-local peer",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP.Peers[1].Address = "fe80::1"
			},
			want: []string{"spec.bgp.peers[1].address", "must be a unicast address"},
		},
		{
			name: "bgp virtual IP without a peer of its family",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP.Peers = s.BGP.Peers[1:]
			},
			want: []string{"every virtual IP in mode bgp needs a BGP peer of its family", "spec.bgp.peers"},
		},
		{
			name: "byNode router ID IPv6",
			base: bgp,
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP.ByNode[0].RouterID = "2001:db8::13"
			},
			want: []string{"spec.bgp.byNode[0].routerID", "routerID must be an IPv4 address"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := base
			if tt.base != nil {
				b = tt.base
			}
			in := b.DeepCopy()
			v1alpha1.SetDefaults(in) // so that the cases can change defaulted fields
			tt.mutate(&in.Spec)
			// The Go twin of the CRD's rules rejects the object too, naming
			// the same field (its messages for schema errors differ).
			if errs := validation.ValidateLoadBalancerConfig(in); len(errs) == 0 {
				t.Errorf("ValidateLoadBalancerConfig accepts what the API server must reject")
			} else if !strings.Contains(errs.ToAggregate().Error(), tt.want[0]) {
				t.Errorf("ValidateLoadBalancerConfig's errors do not name %s:\n%v", tt.want[0], errs.ToAggregate())
			}
			err := c.Create(ctx, in, client.DryRunAll)
			if err == nil {
				t.Fatalf("the API server accepted the object, want an error containing %q", tt.want)
			}
			t.Logf("API server: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// testAccepted checks variants near the rules' edges that both the API
// server and ValidateLoadBalancerConfig must accept.
func testAccepted(ctx context.Context, t *testing.T, c client.Client) {
	for _, tt := range []struct {
		name   string
		file   string
		mutate func(s *v1alpha1.LoadBalancerConfigSpec)
	}{
		{
			name: "VRRPv2 with password, like keepalived",
			file: "control-plane.yaml",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VRRP = &v1alpha1.VRRP{Version: 2, AdvertInterval: dur("2s"), PasswordSecretRef: &v1alpha1.SecretKeyReference{Namespace: "vipvs", Name: "vrrp", Key: "password"}}
			},
		},
		{
			name:   "v3 advertInterval with a fraction of seconds",
			file:   "control-plane.yaml",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) { s.VRRP.AdvertInterval = dur("1.55s") },
		},
		{
			name: "no preempt",
			file: "control-plane.yaml",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VRRP.Preempt = ptr(false)
				s.VRRP.PreemptDelay = dur("0s")
			},
		},
		{
			name: "same VRID on two named interfaces",
			file: "control-plane.yaml",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VirtualIPs[0].Interface = "eth0"
				s.VirtualIPs = append(s.VirtualIPs, v1alpha1.VirtualIP{Name: "api-int", Address: "198.51.100.10", VRID: 51, Interface: "eth1"})
			},
		},
		{
			name: "dual-stack static backends with DR",
			file: "ingress.yaml",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[0].Forwarding = v1alpha1.ForwardingDR
				s.Services[0].HealthCheck = &v1alpha1.ServiceHealthCheck{TCP: &v1alpha1.ServiceTCPCheck{}}
				s.Services[0].Backends = v1alpha1.Backends{Static: []v1alpha1.StaticBackend{
					{Address: "192.0.2.31", Port: ptr(int32(80))}, {Address: "192.0.2.32", Weight: ptr(int32(0))}, {Address: "2001:db8::31"},
				}}
			},
		},
		{
			name: "TCP and UDP on one port, exec checks",
			file: "ingress.yaml",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.Services[1].Port = 80
				s.Services[1].Protocol = v1alpha1.ProtocolUDP
				s.Services[1].HealthCheck = &v1alpha1.ServiceHealthCheck{Exec: &v1alpha1.ExecCheck{Command: []string{"/usr/local/bin/check-backend", "--udp"}}}
				s.TrackChecks = append(s.TrackChecks,
					v1alpha1.TrackCheck{Name: "script", Weight: -10, Exec: &v1alpha1.ExecCheck{Command: []string{"/bin/true"}}},
					v1alpha1.TrackCheck{Name: "v6-api", Weight: 0, TCP: &v1alpha1.TCPCheck{Address: "[::1]:6443"}},
					v1alpha1.TrackCheck{Name: "uplink", Weight: 0, Interface: &v1alpha1.InterfaceCheck{Name: "bond0.100"}})
			},
		},
		{
			name: "bgp: external speaker",
			file: "bgp.yaml",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.BGP = &v1alpha1.BGP{ExternalSpeaker: &v1alpha1.ExternalSpeaker{Table: 198, Protocol: ptr(int32(250))}, GracefulShutdownWait: dur("0s")}
			},
		},
		{
			name: "bgp: VRRPv2 for the vrrp virtual IP beside an IPv6 bgp one",
			file: "bgp.yaml",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VirtualIPs = append(s.VirtualIPs, v1alpha1.VirtualIP{Name: "vrrp", Address: "192.0.2.50", VRID: 70})
				s.VRRP.Version = 2
				s.VRRP.AdvertInterval = dur("1s")
			},
		},
		{
			name: "bgp: beside a vrrp virtual IP, host prefix, edge values",
			file: "bgp.yaml",
			mutate: func(s *v1alpha1.LoadBalancerConfigSpec) {
				s.VirtualIPs = append(s.VirtualIPs, v1alpha1.VirtualIP{Name: "vrrp", Address: "192.0.2.50", VRID: 70, PrefixLength: ptr(int32(24))})
				s.VirtualIPs[0].PrefixLength = ptr(int32(32))
				s.BGP.LocalASN = ptr(int64(4294967294))
				s.BGP.BFDProfile.MinTxInterval = dur("10ms")
				s.BGP.Peers[1].BFD = false
				s.BGP.Peers[1].EBGPMultihop = ptr(int32(255))
				s.BGP.Peers[1].HoldTime, s.BGP.Peers[1].KeepaliveTime, s.BGP.Peers[1].ConnectRetry = dur("3s"), dur("3s"), dur("1h")
				s.BGP.ByNode[0].SourceAddresses = []string{"192.0.2.13", "2001:db8::13"}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := loadExample(t, tt.file)
			v1alpha1.SetDefaults(in)
			tt.mutate(&in.Spec)
			if errs := validation.ValidateLoadBalancerConfig(in); len(errs) > 0 {
				t.Errorf("ValidateLoadBalancerConfig: %v", errs.ToAggregate())
			}
			if err := c.Create(ctx, in, client.DryRunAll); err != nil {
				t.Errorf("the API server rejected the object: %v", err)
			}
		})
	}
}

// testInvalidRaw sends objects the Go types cannot express (strings where a
// duration belongs, wrong JSON types, unknown fields).
func testInvalidRaw(ctx context.Context, t *testing.T, c client.Client) {
	for _, tt := range []struct {
		name string
		set  func(spec map[string]any)
		want []string
	}{
		{
			name: "advertInterval not a duration",
			set:  func(spec map[string]any) { spec["vrrp"] = map[string]any{"advertInterval": "1d"} },
			want: []string{"spec.vrrp.advertInterval", "should match"},
		},
		{
			name: "negative preemptDelay",
			set:  func(spec map[string]any) { spec["vrrp"] = map[string]any{"preemptDelay": "-1s"} },
			want: []string{"spec.vrrp.preemptDelay", "should match"},
		},
		{
			name: "vrid as string",
			set: func(spec map[string]any) {
				spec["virtualIPs"] = []any{map[string]any{"name": "api", "address": "192.0.2.10", "vrid": "51"}}
			},
			want: []string{"spec.virtualIPs[0].vrid", "must be of type integer"},
		},
		{
			name: "virtual IP without vrid",
			set: func(spec map[string]any) {
				spec["virtualIPs"] = []any{map[string]any{"name": "api", "address": "192.0.2.10"}}
			},
			want: []string{"spec.virtualIPs[0].vrid", "vrid is required for a virtual IP in mode vrrp"},
		},
		{
			name: "unknown mode",
			set: func(spec map[string]any) {
				spec["virtualIPs"] = []any{map[string]any{"name": "api", "address": "192.0.2.10", "vrid": 51, "mode": "ospf"}}
			},
			want: []string{"spec.virtualIPs[0].mode", "Unsupported value", `"vrrp", "bgp"`},
		},
		{
			name: "externalSpeaker table 0",
			set: func(spec map[string]any) {
				spec["virtualIPs"] = []any{map[string]any{"name": "api", "address": "192.0.2.10", "mode": "bgp"}}
				spec["bgp"] = map[string]any{"externalSpeaker": map[string]any{"table": 0}}
			},
			want: []string{"spec.bgp.externalSpeaker.table", "greater than or equal to 1"},
		},
		{
			name: "BGP password in the spec",
			set: func(spec map[string]any) {
				spec["virtualIPs"] = []any{map[string]any{"name": "api", "address": "192.0.2.10", "mode": "bgp"}}
				spec["bgp"] = map[string]any{"localASN": 64513, "peers": []any{map[string]any{"address": "192.0.2.1", "asn": 64512, "password": "s3cret"}}}
			},
			want: []string{`unknown field "spec.bgp.peers[0].password"`},
		},
		{
			name: "track check without weight",
			set: func(spec map[string]any) {
				spec["trackChecks"] = []any{map[string]any{"name": "api", "tcp": map[string]any{"address": "127.0.0.1:6443"}}}
			},
			want: []string{"spec.trackChecks[0].weight", "Required value"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lbc := minimal("raw")
			lbc.APIVersion, lbc.Kind = v1alpha1.GroupVersion.String(), "LoadBalancerConfig"
			b, err := json.Marshal(lbc)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(b); err != nil {
				t.Fatal(err)
			}
			spec := u.Object["spec"].(map[string]any)
			tt.set(spec)
			// Strict, as kubectl does by default: an unknown field (a
			// password where only a Secret reference belongs) is an error,
			// not silently dropped.
			err = c.Create(ctx, u, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
			if err == nil {
				t.Fatalf("the API server accepted the object, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// testStatusAndColumns writes a status through the status subresource and
// reads the printer columns back as kubectl get does (a Table).
func testStatusAndColumns(ctx context.Context, t *testing.T, c client.Client, cfg *rest.Config) {
	lbc := loadExample(t, "ingress.yaml")
	lbc.Name = "columns"
	if err := c.Create(ctx, lbc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), lbc) })
	lbc.Status = v1alpha1.LoadBalancerConfigStatus{
		ObservedGeneration: lbc.Generation,
		Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonRouterFault, Message: "node worker-1: router ingress-a is FAULT", LastTransitionTime: metav1.Now(), ObservedGeneration: lbc.Generation},
			{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonRouterFault, Message: "node worker-1: router ingress-a is FAULT", LastTransitionTime: metav1.Now(), ObservedGeneration: lbc.Generation},
		},
		Nodes: []v1alpha1.NodeStatus{{Name: "worker-0", RenderedConfigHash: "abc", RunningConfigHash: "abc", Running: true}},
		VIPs: []v1alpha1.VIPStatus{
			{Name: "ingress-a", Address: "192.0.2.20", MasterNode: "worker-0"},
			{Name: "ingress-b", Address: "192.0.2.21", MasterNode: "worker-1"},
			{Name: "ingress-v6", Address: "2001:db8::20", MasterNode: "worker-2"},
		},
		Masters: "192.0.2.20=worker-0,192.0.2.21=worker-1,2001:db8::20=worker-2",
	}
	if err := c.Status().Update(ctx, lbc); err != nil {
		t.Fatalf("updating status: %v", err)
	}

	rc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := newTableRequest(ctx, cfg, "/apis/vipvs.io/v1alpha1/loadbalancerconfigs/columns")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var table metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&table); err != nil {
		t.Fatalf("decoding the table (HTTP %d): %v", resp.StatusCode, err)
	}
	var names []string
	for _, col := range table.ColumnDefinitions {
		names = append(names, col.Name)
	}
	if diff := cmp.Diff([]string{"Name", "VIP", "Masters", "Ready", "Degraded", "Mode", "Age"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("want one row, got %d", len(table.Rows))
	}
	got := fmt.Sprint(table.Rows[0].Cells[:6])
	want := "[columns 192.0.2.20 192.0.2.20=worker-0,192.0.2.21=worker-1,2001:db8::20=worker-2 False RouterFault spread]"
	if got != want {
		t.Errorf("row = %s, want %s", got, want)
	}
}

// newTableRequest is a GET of path that asks for the server-side Table
// kubectl get prints.
func newTableRequest(ctx context.Context, cfg *rest.Config, path string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	return req, nil
}
