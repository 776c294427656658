package services

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/api/agent/validation"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/render"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func node(name string, addrs ...string) render.Node {
	n := render.Node{Name: name}
	for _, a := range addrs {
		n.Addresses = append(n.Addresses, netip.MustParseAddr(a))
	}
	return n
}

var (
	n1 = node("n1", "10.0.0.1", "fd00::1")
	n2 = node("n2", "10.0.0.2", "fd00::2")
	n3 = node("n3", "10.0.0.3", "fd00::3")
	n4 = node("n4", "10.0.0.4") // IPv4 only
)

func vrrpPool(nodes ...render.Node) Pool {
	return Pool{
		Pool: v1alpha1.IPPool{
			ObjectMeta: metav1.ObjectMeta{Name: "vrrp"},
			Spec: v1alpha1.IPPoolSpec{
				Addresses: []v1alpha1.IPPoolAddress{"192.0.2.0/24", "2001:db8:1::/120"},
				Announcement: v1alpha1.Announcement{Mode: v1alpha1.AnnouncementVRRP, VRRP: &v1alpha1.VRRPAnnouncement{
					NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"lb": ""}},
					Interface:    "eth0",
				}},
			},
		},
		Nodes: nodes,
	}
}

func bgpPool(nodes ...render.Node) Pool {
	return Pool{
		Pool: v1alpha1.IPPool{
			ObjectMeta: metav1.ObjectMeta{Name: "bgp"},
			Spec: v1alpha1.IPPoolSpec{
				Addresses:    []v1alpha1.IPPoolAddress{"198.51.100.0/24", "2001:db8:2::/120"},
				Announcement: v1alpha1.Announcement{Mode: v1alpha1.AnnouncementBGP, BGP: &v1alpha1.BGPAnnouncement{LoadBalancerConfig: "edge"}},
			},
		},
		Nodes: nodes,
	}
}

// svc is a Service of type LoadBalancer created age seconds after epoch,
// with addresses ips and ports "name:port[/proto]".
func svc(name string, age int, ips []string, ports ...string) corev1.Service {
	s := corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name, CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Second))},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
	for _, p := range ports {
		pn, rest, _ := strings.Cut(p, ":")
		num, proto, _ := strings.Cut(rest, "/")
		var n int32
		fmt.Sscan(num, &n)
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: pn, Port: n, Protocol: corev1.Protocol(proto)})
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

type ep struct {
	addr                        string
	node                        string
	ready, serving, terminating *bool
}

var (
	yes = ptr(true)
	no  = ptr(false)
)

func ready(addr, node string) ep { return ep{addr: addr, node: node, ready: yes, serving: yes} }

// slice is an EndpointSlice of Service svcName with ports "name=port" (one
// protocol TCP).
func slice(svcName, name string, typ discoveryv1.AddressType, ports []string, eps ...ep) discoveryv1.EndpointSlice {
	es := discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "apps", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: typ,
	}
	for _, p := range ports {
		pn, num, _ := strings.Cut(p, "=")
		var n int32
		fmt.Sscan(num, &n)
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr(pn), Port: ptr(n), Protocol: ptr(corev1.ProtocolTCP)})
	}
	for _, e := range eps {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{e.addr},
			NodeName:   ptr(e.node),
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating},
		})
	}
	return es
}

// check renders in, validates every node's routers as an agent config
// (encoded and decoded strictly, as the agent reads it) and returns the
// output.
func check(t *testing.T, in Input) Output {
	t.Helper()
	out := Render(in)
	for _, n := range out.Nodes {
		validate(t, n)
	}
	return out
}

func validate(t *testing.T, n NodeRouters) {
	t.Helper()
	ac := &agentv1alpha1.AgentConfig{APIVersion: agentv1alpha1.GroupVersion, Kind: agentv1alpha1.Kind, NodeName: n.Node, VirtualRouters: n.Routers}
	if slices.ContainsFunc(n.Routers, func(r agentv1alpha1.VirtualRouter) bool { return r.Mode == agentv1alpha1.ModeBGP }) {
		ac.BGP = &agentv1alpha1.BGP{LocalASN: 64512, Peers: []agentv1alpha1.BGPPeer{{Address: "10.0.0.254", ASN: 64513}}}
	}
	data, err := agentv1alpha1.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := agentv1alpha1.Decode(data)
	if err != nil {
		t.Fatalf("node %s: decoding the rendered config: %v\n%s", n.Node, err, data)
	}
	if errs := validation.ValidateAgentConfig(obj); len(errs) > 0 {
		t.Fatalf("node %s: the rendered config is invalid: %v\n%s", n.Node, errs.ToAggregate(), data)
	}
}

// routers returns the routers named name of every node, by node name.
func routers(out Output, name string) map[string]agentv1alpha1.VirtualRouter {
	m := map[string]agentv1alpha1.VirtualRouter{}
	for _, n := range out.Nodes {
		for _, r := range n.Routers {
			if r.Name == name {
				m[n.Node] = r
			}
		}
	}
	return m
}

// rs lists a service's real servers as "addr:port" or "addr:port w0".
func rs(vs agentv1alpha1.VirtualService) []string {
	var out []string
	for _, r := range vs.RealServers {
		s := netip.AddrPortFrom(netip.MustParseAddr(r.Address), uint16(*r.Port)).String()
		if r.Weight != nil {
			s += fmt.Sprintf(" w%d", *r.Weight)
		}
		out = append(out, s)
	}
	return out
}

func service(t *testing.T, r agentv1alpha1.VirtualRouter, name string) agentv1alpha1.VirtualService {
	t.Helper()
	for _, vs := range r.VirtualServices {
		if vs.Name == name {
			return vs
		}
	}
	t.Fatalf("router %s has no virtual service %s: %+v", r.Name, name, r.VirtualServices)
	return agentv1alpha1.VirtualService{}
}

func TestVRRPSpreadWithBackups(t *testing.T) {
	in := Input{Pools: []Pool{vrrpPool(n1, n2, n3)}, UsedVRIDs: []UsedVRID{{Interface: "eth0", VRID: 51}}}
	for i := range 12 {
		name := fmt.Sprintf("s%d", i)
		in.Services = append(in.Services, svc(name, i, []string{fmt.Sprintf("192.0.2.%d", 10+i)}, ":80"))
		in.EndpointSlices = append(in.EndpointSlices, slice(name, name+"-1", discoveryv1.AddressTypeIPv4, []string{"=8080"}, ready("10.1.0.1", "n1")))
	}
	out := check(t, in)
	if len(out.Problems) > 0 {
		t.Fatalf("problems: %q", out.Problems)
	}
	masters := map[string]int{}
	vrids := map[int32]string{}
	for i := range 12 {
		addr := fmt.Sprintf("192.0.2.%d", 10+i)
		rt := routers(out, routerName(netip.MustParseAddr(addr)))
		if len(rt) != 2 {
			t.Fatalf("%s is on %d nodes, want a master and one backup: %v", addr, len(rt), rt)
		}
		var prios []int32
		var vrid int32
		for n, r := range rt {
			prios = append(prios, *r.Priority)
			if *r.Priority == MasterPriority {
				masters[n]++
			}
			if vrid != 0 && r.VRID != vrid {
				t.Errorf("%s: VRIDs %d and %d on its nodes", addr, vrid, r.VRID)
			}
			vrid = r.VRID
			if r.Interface != "eth0" || len(r.UnicastPeers) != 1 || r.UnicastPeers[0] == r.SourceAddress {
				t.Errorf("%s on %s: interface %q, source %s, peers %v", addr, n, r.Interface, r.SourceAddress, r.UnicastPeers)
			}
			if vs := service(t, r, "tcp-80"); vs.Scheduler != "wlc" || vs.Forwarding != agentv1alpha1.ForwardingNAT {
				t.Errorf("%s: scheduler %q forwarding %q, want wlc NAT", addr, vs.Scheduler, vs.Forwarding)
			}
		}
		slices.Sort(prios)
		if !slices.Equal(prios, []int32{MasterPriority - 1, MasterPriority}) {
			t.Errorf("%s: priorities %v, want a master and a backup", addr, prios)
		}
		if vrid == 51 {
			t.Errorf("%s took the used VRID 51", addr)
		}
		if other, ok := vrids[vrid]; ok {
			t.Errorf("%s and %s share VRID %d", addr, other, vrid)
		}
		vrids[vrid] = addr
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if masters[n] == 0 {
			t.Errorf("node %s is master of no address: %v", n, masters)
		}
	}
	// In one agent config with the LoadBalancerConfig's router that uses
	// VRID 51 on eth0, the VRIDs do not collide.
	for _, n := range out.Nodes {
		api := agentv1alpha1.VirtualRouter{Name: "api", VRID: 51, Interface: "eth0", VIPs: []string{"10.0.0.100/24"}}
		n.Routers = append([]agentv1alpha1.VirtualRouter{api}, n.Routers...)
		validate(t, n)
	}
}

func TestVRRPOneNodeHasNoBackup(t *testing.T) {
	in := Input{
		Pools:          []Pool{vrrpPool(n1)},
		Services:       []corev1.Service{svc("s", 0, []string{"192.0.2.1"}, ":80")},
		EndpointSlices: []discoveryv1.EndpointSlice{slice("s", "s-1", discoveryv1.AddressTypeIPv4, []string{"=80"}, ready("10.1.0.1", "n1"))},
	}
	out := check(t, in)
	if len(out.Nodes) != 1 || len(out.Problems) != 1 || !strings.Contains(out.Problems[0], "no backup") {
		t.Fatalf("nodes %v problems %q, want n1 alone and a problem", out.Nodes, out.Problems)
	}
}

func TestBGPOnAllNodes(t *testing.T) {
	s := svc("s", 0, []string{"198.51.100.7"}, "http:80", "dns:53/UDP")
	s.Annotations = map[string]string{AnnotationScheduler: "rr"}
	sl := slice("s", "s-1", discoveryv1.AddressTypeIPv4, []string{"http=8080"}, ready("10.1.0.1", "n1"), ready("10.1.0.2", "n2"))
	sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: ptr("dns"), Port: ptr(int32(5353)), Protocol: ptr(corev1.ProtocolUDP)})
	out := check(t, Input{Pools: []Pool{bgpPool(n4, n2, n1, n3)}, Services: []corev1.Service{s}, EndpointSlices: []discoveryv1.EndpointSlice{sl}})
	rt := routers(out, "svc-198-51-100-7")
	if len(rt) != 4 {
		t.Fatalf("on %d nodes, want all 4", len(rt))
	}
	for n, r := range rt {
		if r.Mode != agentv1alpha1.ModeBGP || r.VRID != 0 || r.Priority != nil || len(r.UnicastPeers) != 0 {
			t.Errorf("%s: %+v, want a bare bgp router", n, r)
		}
		if len(r.VirtualServices) != 2 {
			t.Fatalf("%s: services %+v, want tcp-80 and udp-53", n, r.VirtualServices)
		}
		for _, vs := range r.VirtualServices {
			if vs.Scheduler != "mh" {
				t.Errorf("%s %s: scheduler %q, want mh", n, vs.Name, vs.Scheduler)
			}
		}
		if got := rs(service(t, r, "udp-53")); !slices.Equal(got, []string{"10.1.0.1:5353", "10.1.0.2:5353"}) {
			t.Errorf("udp-53 real servers %v", got)
		}
	}
	if len(out.Problems) != 1 || !strings.Contains(out.Problems[0], `"rr" is ignored`) {
		t.Errorf("problems %q, want the rr annotation reported", out.Problems)
	}
}

func TestSchedulerAnnotation(t *testing.T) {
	for _, tc := range []struct{ value, want, problem string }{
		{"", "wlc", ""},
		{"sh", "sh", ""},
		{"fastest", "wlc", "not one of"},
	} {
		s := svc("s", 0, []string{"192.0.2.1"}, ":80")
		if tc.value != "" {
			s.Annotations = map[string]string{AnnotationScheduler: tc.value}
		}
		out := check(t, Input{Pools: []Pool{vrrpPool(n1, n2)}, Services: []corev1.Service{s},
			EndpointSlices: []discoveryv1.EndpointSlice{slice("s", "s-1", discoveryv1.AddressTypeIPv4, []string{"=80"}, ready("10.1.0.1", "n1"))}})
		if got := service(t, routers(out, "svc-192-0-2-1")["n1"], "tcp-80").Scheduler; got != tc.want {
			t.Errorf("annotation %q: scheduler %q, want %q", tc.value, got, tc.want)
		}
		if (tc.problem == "") != (len(out.Problems) == 0) || (tc.problem != "" && !strings.Contains(out.Problems[0], tc.problem)) {
			t.Errorf("annotation %q: problems %q, want %q", tc.value, out.Problems, tc.problem)
		}
	}
}

func TestSharedAddress(t *testing.T) {
	web := svc("web", 0, []string{"192.0.2.5"}, "http:80")
	tls := svc("tls", 1, []string{"192.0.2.5"}, "https:443")
	clash := svc("clash", 2, []string{"192.0.2.5"}, "http:80")
	out := check(t, Input{
		Pools:    []Pool{vrrpPool(n1, n2, n3)},
		Services: []corev1.Service{clash, tls, web},
		EndpointSlices: []discoveryv1.EndpointSlice{
			slice("web", "web-1", discoveryv1.AddressTypeIPv4, []string{"http=8080"}, ready("10.1.0.1", "n1")),
			slice("tls", "tls-1", discoveryv1.AddressTypeIPv4, []string{"https=8443"}, ready("10.2.0.1", "n2")),
			slice("clash", "clash-1", discoveryv1.AddressTypeIPv4, []string{"http=9090"}, ready("10.3.0.1", "n3")),
		},
	})
	rt := routers(out, "svc-192-0-2-5")
	if len(rt) != 2 {
		t.Fatalf("on %d nodes, want 2", len(rt))
	}
	for n, r := range rt {
		if len(r.VirtualServices) != 2 {
			t.Fatalf("%s: %d services, want tcp-443 and tcp-80 in one router", n, len(r.VirtualServices))
		}
		if got := rs(service(t, r, "tcp-80")); !slices.Equal(got, []string{"10.1.0.1:8080"}) {
			t.Errorf("tcp-80 real servers %v, want the older Service web's", got)
		}
		if got := rs(service(t, r, "tcp-443")); !slices.Equal(got, []string{"10.2.0.1:8443"}) {
			t.Errorf("tcp-443 real servers %v, want tls's", got)
		}
	}
	if len(out.Problems) != 1 || !strings.Contains(out.Problems[0], "apps/clash: port TCP/80 on 192.0.2.5 is already Service apps/web's") {
		t.Errorf("problems %q, want the collision of clash", out.Problems)
	}
}

func TestTrafficPolicy(t *testing.T) {
	eps := []ep{ready("10.1.0.1", "n1"), ready("10.1.0.2", "n2"), ready("10.1.0.3", "n3"), ready("10.1.0.4", "n3")}
	for _, tc := range []struct {
		policy corev1.ServiceExternalTrafficPolicy
		want   map[string][]string // node -> real servers; nil: no service there
	}{
		{corev1.ServiceExternalTrafficPolicyCluster, map[string][]string{
			"n1": {"10.1.0.1:80", "10.1.0.2:80", "10.1.0.3:80", "10.1.0.4:80"},
			"n2": {"10.1.0.1:80", "10.1.0.2:80", "10.1.0.3:80", "10.1.0.4:80"},
			"n3": {"10.1.0.1:80", "10.1.0.2:80", "10.1.0.3:80", "10.1.0.4:80"},
			"n4": {"10.1.0.1:80", "10.1.0.2:80", "10.1.0.3:80", "10.1.0.4:80"},
		}},
		{corev1.ServiceExternalTrafficPolicyLocal, map[string][]string{
			"n1": {"10.1.0.1:80"},
			"n2": {"10.1.0.2:80"},
			"n3": {"10.1.0.3:80", "10.1.0.4:80"},
			"n4": nil,
		}},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			s := svc("s", 0, []string{"198.51.100.1"}, ":80")
			s.Spec.ExternalTrafficPolicy = tc.policy
			out := check(t, Input{Pools: []Pool{bgpPool(n1, n2, n3, n4)}, Services: []corev1.Service{s},
				EndpointSlices: []discoveryv1.EndpointSlice{slice("s", "s-1", discoveryv1.AddressTypeIPv4, []string{"=80"}, eps...)}})
			rt := routers(out, "svc-198-51-100-1")
			for n, want := range tc.want {
				r, ok := rt[n]
				if !ok {
					t.Fatalf("no router on %s", n)
				}
				if want == nil {
					if len(r.VirtualServices) != 0 {
						t.Errorf("%s: services %+v, want none (no local endpoint)", n, r.VirtualServices)
					}
					continue
				}
				vs := service(t, r, "tcp-80")
				if got := rs(vs); !slices.Equal(got, want) {
					t.Errorf("%s: real servers %v, want %v", n, got, want)
				}
				if vs.Forwarding != agentv1alpha1.ForwardingNAT {
					t.Errorf("%s: forwarding %q, want NAT", n, vs.Forwarding)
				}
			}
		})
	}
}

func TestEndpointConditions(t *testing.T) {
	out := check(t, Input{
		Pools:    []Pool{vrrpPool(n1, n2)},
		Services: []corev1.Service{svc("s", 0, []string{"192.0.2.9"}, ":80")},
		EndpointSlices: []discoveryv1.EndpointSlice{
			slice("s", "s-1", discoveryv1.AddressTypeIPv4, []string{"=8080"},
				ready("10.1.0.1", "n1"),
				ep{addr: "10.1.0.2", node: "n1", ready: no, serving: no},                    // not ready: out
				ep{addr: "10.1.0.3", node: "n1", ready: no, serving: yes, terminating: yes}, // draining: weight 0
				ep{addr: "10.1.0.4", node: "n1", ready: no, serving: no, terminating: yes},  // terminated: out
				ep{addr: "10.1.0.5", node: "n1"},                                            // unknown: ready
				ep{addr: "10.1.0.6", node: "n1", ready: no, serving: yes, terminating: yes}, // draining here,
			),
			slice("s", "s-2", discoveryv1.AddressTypeIPv4, []string{"=8080"},
				ready("10.1.0.6", "n1"), // ... ready in the newer slice: ready wins
			),
		},
	})
	got := rs(service(t, routers(out, "svc-192-0-2-9")["n1"], "tcp-80"))
	want := []string{"10.1.0.1:8080", "10.1.0.3:8080 w0", "10.1.0.5:8080", "10.1.0.6:8080"}
	if !slices.Equal(got, want) {
		t.Errorf("real servers %v, want %v", got, want)
	}

	// No endpoint at all: the router announces the address, without a service.
	out = check(t, Input{Pools: []Pool{vrrpPool(n1, n2)}, Services: []corev1.Service{svc("s", 0, []string{"192.0.2.9"}, ":80")}})
	if r := routers(out, "svc-192-0-2-9"); len(r) != 2 || len(r["n1"].VirtualServices) != 0 {
		t.Errorf("without endpoints: %+v, want two routers without services", r)
	}
}

func TestNamedTargetPorts(t *testing.T) {
	// Port "web" has targetPort "http", which the pods of s-1 name 8080 and
	// those of s-2 8081 (the EndpointSlice controller puts them apart);
	// s-3's pods lack it. The single unnamed port of t has a numbered one.
	s := svc("s", 0, []string{"192.0.2.20"}, "web:80", "admin:9000")
	s.Spec.Ports[0].TargetPort.StrVal = "http"
	tt := svc("t", 1, []string{"192.0.2.21"}, ":53/UDP")
	udp := slice("t", "t-1", discoveryv1.AddressTypeIPv4, nil, ready("10.2.0.1", "n1"))
	udp.Ports = []discoveryv1.EndpointPort{{Port: ptr(int32(5353)), Protocol: ptr(corev1.ProtocolUDP)}}
	tcp := slice("t", "t-2", discoveryv1.AddressTypeIPv4, []string{"=5353"}, ready("10.2.0.9", "n1")) // TCP: not the UDP port
	out := check(t, Input{
		Pools:    []Pool{vrrpPool(n1, n2)},
		Services: []corev1.Service{s, tt},
		EndpointSlices: []discoveryv1.EndpointSlice{
			slice("s", "s-1", discoveryv1.AddressTypeIPv4, []string{"web=8080", "admin=9900"}, ready("10.1.0.1", "n1")),
			slice("s", "s-2", discoveryv1.AddressTypeIPv4, []string{"web=8081"}, ready("10.1.0.2", "n2")),
			slice("s", "s-3", discoveryv1.AddressTypeIPv4, []string{"other=7000"}, ready("10.1.0.3", "n2")),
			udp, tcp,
		},
	})
	r := routers(out, "svc-192-0-2-20")["n1"]
	if got := rs(service(t, r, "tcp-80")); !slices.Equal(got, []string{"10.1.0.1:8080", "10.1.0.2:8081"}) {
		t.Errorf("tcp-80 real servers %v", got)
	}
	if got := rs(service(t, r, "tcp-9000")); !slices.Equal(got, []string{"10.1.0.1:9900"}) {
		t.Errorf("tcp-9000 real servers %v", got)
	}
	if got := rs(service(t, routers(out, "svc-192-0-2-21")["n1"], "udp-53")); !slices.Equal(got, []string{"10.2.0.1:5353"}) {
		t.Errorf("udp-53 real servers %v", got)
	}
}

func TestIPv6(t *testing.T) {
	s := svc("s", 0, []string{"192.0.2.30", "2001:db8:1::"}, ":443")
	out := check(t, Input{
		Pools:    []Pool{vrrpPool(n1, n2, n3, n4)},
		Services: []corev1.Service{s},
		EndpointSlices: []discoveryv1.EndpointSlice{
			slice("s", "s-4", discoveryv1.AddressTypeIPv4, []string{"=8443"}, ready("10.1.0.1", "n1")),
			slice("s", "s-6", discoveryv1.AddressTypeIPv6, []string{"=8443"}, ready("fd10::1", "n1"), ready("fd10::2", "n2")),
		},
	})
	rt := routers(out, "svc-2001-db8-1--0")
	if len(rt) != 2 {
		t.Fatalf("IPv6 router on %d nodes, want 2: %v", len(rt), out.Nodes)
	}
	if _, ok := rt["n4"]; ok {
		t.Errorf("n4 has no IPv6 address but carries the IPv6 router")
	}
	for n, r := range rt {
		if r.VIPs[0] != "2001:db8:1::" || !strings.HasPrefix(r.SourceAddress, "fd00::") || !strings.HasPrefix(r.UnicastPeers[0], "fd00::") {
			t.Errorf("%s: vips %v source %s peers %v", n, r.VIPs, r.SourceAddress, r.UnicastPeers)
		}
		if got := rs(service(t, r, "tcp-443")); !slices.Equal(got, []string{"[fd10::1]:8443", "[fd10::2]:8443"}) {
			t.Errorf("%s: real servers %v, want the IPv6 endpoints only", n, got)
		}
	}
	for n, r := range routers(out, "svc-192-0-2-30") {
		if got := rs(service(t, r, "tcp-443")); !slices.Equal(got, []string{"10.1.0.1:8443"}) {
			t.Errorf("%s: IPv4 real servers %v", n, got)
		}
	}
}

// bigInput is a mix of everything: two pools, shared and dual-stack
// addresses, many endpoints in several slices.
func bigInput() Input {
	in := Input{Pools: []Pool{vrrpPool(n1, n2, n3, n4), bgpPool(n1, n2, n3)}, UsedVRIDs: []UsedVRID{{VRID: 10}, {Interface: "eth1", VRID: 11}}}
	for i := range 30 {
		name := fmt.Sprintf("s%02d", i)
		ips := []string{fmt.Sprintf("192.0.2.%d", i/2+1)}
		if i%3 == 0 {
			ips = []string{fmt.Sprintf("198.51.100.%d", i+1), fmt.Sprintf("2001:db8:2::%x", i+1)}
		}
		s := svc(name, i%7, ips, "http:80", fmt.Sprintf("x:%d", 1000+i))
		if i%2 == 1 {
			s.Spec.Ports = s.Spec.Ports[1:] // shares its address with s-1 on another port
		}
		if i%4 == 0 {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}
		in.Services = append(in.Services, s)
		var eps, eps6 []ep
		for j := range 6 {
			n := []string{"n1", "n2", "n3"}[j%3]
			eps = append(eps, ready(fmt.Sprintf("10.%d.0.%d", i, j+1), n))
			eps6 = append(eps6, ready(fmt.Sprintf("fd10::%x:%x", i, j+1), n))
		}
		eps[5].ready, eps[5].terminating = no, yes
		in.EndpointSlices = append(in.EndpointSlices,
			slice(name, name+"-a", discoveryv1.AddressTypeIPv4, []string{"http=8080", fmt.Sprintf("x=%d", 2000+i)}, eps[:3]...),
			slice(name, name+"-b", discoveryv1.AddressTypeIPv4, []string{"http=8080", fmt.Sprintf("x=%d", 2000+i)}, eps[3:]...),
			slice(name, name+"-c", discoveryv1.AddressTypeIPv6, []string{"http=8080", fmt.Sprintf("x=%d", 2000+i)}, eps6...),
		)
	}
	return in
}

func encode(t *testing.T, out Output) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, n := range out.Nodes {
		data, err := agentv1alpha1.Marshal(&agentv1alpha1.AgentConfig{APIVersion: agentv1alpha1.GroupVersion, Kind: agentv1alpha1.Kind, NodeName: n.Node, VirtualRouters: n.Routers})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	fmt.Fprintf(&b, "%q", out.Problems)
	return b.Bytes()
}

func TestDeterministic(t *testing.T) {
	want := encode(t, check(t, bigInput()))
	for seed := range uint64(20) {
		in := bigInput()
		r := rand.New(rand.NewPCG(seed, 1))
		shuffle := func(n int, swap func(i, j int)) { r.Shuffle(n, swap) }
		shuffle(len(in.Pools), func(i, j int) { in.Pools[i], in.Pools[j] = in.Pools[j], in.Pools[i] })
		for k := range in.Pools {
			ns := in.Pools[k].Nodes
			shuffle(len(ns), func(i, j int) { ns[i], ns[j] = ns[j], ns[i] })
		}
		shuffle(len(in.Services), func(i, j int) { in.Services[i], in.Services[j] = in.Services[j], in.Services[i] })
		shuffle(len(in.EndpointSlices), func(i, j int) {
			in.EndpointSlices[i], in.EndpointSlices[j] = in.EndpointSlices[j], in.EndpointSlices[i]
		})
		for k := range in.EndpointSlices {
			es := in.EndpointSlices[k].Endpoints
			shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		}
		if got := encode(t, check(t, in)); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: the shuffled input renders differently", seed)
		}
	}
}

// vridsOf returns the VRID of every vrrp router by name.
func vridsOf(out Output) map[string]int32 {
	m := map[string]int32{}
	for _, n := range out.Nodes {
		for _, r := range n.Routers {
			if r.Mode == agentv1alpha1.ModeVRRP {
				m[r.Name] = r.VRID
			}
		}
	}
	return m
}

func TestVRIDStableWhenServiceAdded(t *testing.T) {
	// Used VRIDs: 7 on eth0 and on an unknown interface (both taken), 8
	// on eth1 (another segment: free for the pool on eth0), 9 for IPv6.
	used := []UsedVRID{{Interface: "eth0", VRID: 7}, {VRID: 12}, {Interface: "eth1", VRID: 8}, {IPv6: true, VRID: 9}}
	in := Input{Pools: []Pool{vrrpPool(n1, n2, n3)}, UsedVRIDs: used}
	prev := map[string]int32{}
	addrOf := map[string]netip.Addr{}
	// Addresses in no order, so that a newer Service's address may sort
	// before the older ones'.
	hosts := rand.New(rand.NewPCG(1, 2)).Perm(200)
	for i := range 120 { // enough addresses that the hashed starts collide and probe
		ip := fmt.Sprintf("192.0.2.%d", hosts[i]+1)
		if i%2 == 1 {
			ip = fmt.Sprintf("2001:db8:1::%x", hosts[i]+1)
		}
		addrOf[routerName(netip.MustParseAddr(ip))] = netip.MustParseAddr(ip)
		in.Services = append(in.Services, svc(fmt.Sprintf("s%d", i), i, []string{ip}, ":80"))
		// The new Service comes first in the list; it is the newest.
		slices.Reverse(in.Services)
		out := check(t, in)
		slices.Reverse(in.Services)
		if len(out.Problems) > 0 {
			t.Fatalf("with %d Services: %q", i+1, out.Problems)
		}
		got := vridsOf(out)
		for name, v := range prev {
			if got[name] != v {
				t.Fatalf("adding Service %d moved %s from VRID %d to %d", i, name, v, got[name])
			}
		}
		for name, v := range got {
			if v4 := !strings.Contains(name, "--"); (v4 && (v == 7 || v == 12)) || (!v4 && v == 9) {
				t.Errorf("%s took the used VRID %d", name, v)
			}
		}
		prev = got
	}
	if len(prev) != 120 {
		t.Errorf("%d routers, want 120", len(prev))
	}
	probed := 0
	for name, v := range prev {
		if v != vridStart(addrOf[name]) {
			probed++
		}
	}
	if probed == 0 {
		t.Errorf("no address probed past its hashed VRID: the test proves nothing")
	}
	t.Logf("%d of %d addresses probed past their hashed VRID", probed, len(prev))
}

func TestUsedOn(t *testing.T) {
	used := []UsedVRID{{Interface: "eth0", VRID: 7}, {VRID: 12}, {Interface: "eth1", VRID: 8}, {IPv6: true, VRID: 9}}
	for _, tc := range []struct {
		iface string
		v6    bool
		vrid  int32
		want  bool
	}{
		{"eth0", false, 7, true},
		{"eth1", false, 7, false}, // another segment
		{"", false, 7, true},      // the pool's interface is unknown: could be eth0
		{"eth2", false, 12, true}, // the used one's interface is unknown
		{"eth0", false, 8, false},
		{"eth0", true, 7, false}, // another family
		{"eth0", true, 9, true},
		{"eth0", false, 9, false},
	} {
		if got := usedOn(used, tc.iface, tc.v6, tc.vrid); got != tc.want {
			t.Errorf("usedOn(%q, v6=%v, %d) = %v, want %v", tc.iface, tc.v6, tc.vrid, got, tc.want)
		}
	}
}

func TestLimits(t *testing.T) {
	// 300 addresses on one node: the 255 oldest are announced.
	in := Input{Pools: []Pool{bgpPool(n1)}}
	for i := range 300 {
		ip := fmt.Sprintf("198.51.100.%d", 255-i)
		if i >= 200 {
			ip = fmt.Sprintf("2001:db8:2::%x", i)
		}
		in.Services = append(in.Services, svc(fmt.Sprintf("s%03d", i), i, []string{ip}, ":80"))
	}
	out := check(t, in)
	if n := len(out.Nodes[0].Routers); n != agentv1alpha1.MaxVirtualRouters {
		t.Fatalf("%d routers, want %d", n, agentv1alpha1.MaxVirtualRouters)
	}
	if len(out.Problems) != 300-agentv1alpha1.MaxVirtualRouters || !strings.Contains(out.Problems[0], "apps/s255: node n1 already carries 255 addresses") {
		t.Errorf("%d problems, first %q; want the 45 newest Services reported", len(out.Problems), out.Problems[0])
	}

	// 70 ports on one shared address: the first 64 (oldest Service first) are balanced.
	a := svc("a", 0, []string{"198.51.100.1"})
	b := svc("b", 1, []string{"198.51.100.1"})
	for p := range 70 {
		s := &a
		if p >= 40 {
			s = &b
		}
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", p), Port: int32(1000 + p)})
	}
	var ports []string
	for p := range 70 {
		ports = append(ports, fmt.Sprintf("p%d=%d", p, 2000+p))
	}
	out = check(t, Input{Pools: []Pool{bgpPool(n1)}, Services: []corev1.Service{b, a}, EndpointSlices: []discoveryv1.EndpointSlice{
		slice("a", "a-1", discoveryv1.AddressTypeIPv4, ports, ready("10.1.0.1", "n1")),
		slice("b", "b-1", discoveryv1.AddressTypeIPv4, ports, ready("10.1.0.2", "n1")),
	}})
	r := out.Nodes[0].Routers[0]
	if len(r.VirtualServices) != agentv1alpha1.MaxVirtualServices || len(out.Problems) != 70-agentv1alpha1.MaxVirtualServices {
		t.Errorf("%d services and %d problems, want %d and %d", len(r.VirtualServices), len(out.Problems), agentv1alpha1.MaxVirtualServices, 70-agentv1alpha1.MaxVirtualServices)
	}
	if got := rs(service(t, r, "tcp-1063")); !slices.Equal(got, []string{"10.1.0.2:2063"}) {
		t.Errorf("tcp-1063 real servers %v, want b's", got)
	}
}
