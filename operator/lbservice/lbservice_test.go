package lbservice

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/operator/ipam"
)

func ptr[T any](v T) *T { return &v }

func TestOurs(t *testing.T) {
	tests := []struct {
		typ       corev1.ServiceType
		class     *string
		classless bool
		want      bool
	}{
		{corev1.ServiceTypeLoadBalancer, ptr(v1alpha1.LoadBalancerClass), false, true},
		{corev1.ServiceTypeLoadBalancer, ptr("example.com/lb"), false, false},
		{corev1.ServiceTypeLoadBalancer, ptr("example.com/lb"), true, false},
		{corev1.ServiceTypeLoadBalancer, nil, false, false},
		{corev1.ServiceTypeLoadBalancer, nil, true, true},
		{corev1.ServiceTypeClusterIP, nil, true, false},
		{corev1.ServiceTypeNodePort, ptr(v1alpha1.LoadBalancerClass), true, false},
	}
	for _, tt := range tests {
		s := &corev1.Service{Spec: corev1.ServiceSpec{Type: tt.typ, LoadBalancerClass: tt.class}}
		if got := ours(s, tt.classless); got != tt.want {
			t.Errorf("ours(%s, class %v, classless %v) = %v", tt.typ, tt.class, tt.classless, got)
		}
	}
}

func TestRequest(t *testing.T) {
	svc := func(policy corev1.IPFamilyPolicy, fams []corev1.IPFamily, ann map[string]string, lbIP string) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Annotations: ann},
			Spec: corev1.ServiceSpec{IPFamilyPolicy: &policy, IPFamilies: fams, LoadBalancerIP: lbIP, Ports: []corev1.ServicePort{
				{Protocol: corev1.ProtocolUDP, Port: 53}, {Protocol: corev1.ProtocolTCP, Port: 443}, {Port: 80},
			}},
		}
	}
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol
	tests := []struct {
		name string
		svc  *corev1.Service
		want string // fmt of families/optional/requested/pool/key, or the error
	}{
		{"single", svc(corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{v6}, nil, ""), "[IPv6] false [] "},
		{"singleCut", svc(corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{v4, v6}, nil, ""), "[IPv4] false [] "},
		{"prefer", svc(corev1.IPFamilyPolicyPreferDualStack, []corev1.IPFamily{v4, v6}, nil, ""), "[IPv4 IPv6] true [] "},
		{"require", svc(corev1.IPFamilyPolicyRequireDualStack, []corev1.IPFamily{v6, v4}, nil, ""), "[IPv6 IPv4] false [] "},
		{"annotations", svc(corev1.IPFamilyPolicyRequireDualStack, []corev1.IPFamily{v4, v6}, map[string]string{
			v1alpha1.AnnotationLoadBalancerIPs: " 2001:db8::1 ,192.0.2.1,", v1alpha1.AnnotationIPPool: "p", v1alpha1.AnnotationAllowSharedIP: "k"}, ""),
			"[IPv4 IPv6] false [2001:db8::1 192.0.2.1] p k"},
		{"loadBalancerIP", svc(corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{v4}, nil, "192.0.2.9"), "[IPv4] false [192.0.2.9] "},
		{"annotationWins", svc(corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{v4}, map[string]string{v1alpha1.AnnotationLoadBalancerIPs: "192.0.2.1"}, "192.0.2.9"), "[IPv4] false [192.0.2.1] "},
		{"noFamilies", svc(corev1.IPFamilyPolicySingleStack, nil, map[string]string{v1alpha1.AnnotationLoadBalancerIPs: "2001:db8::1"}, ""), "[IPv6] false [2001:db8::1] "},
		{"bad", svc(corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{v4}, map[string]string{v1alpha1.AnnotationLoadBalancerIPs: "192.0.2.1,nope"}, ""),
			`InvalidRequest: annotation vipvs.io/load-balancer-ips: "nope" is not an IP address`},
		{"mapped", svc(corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{v4}, map[string]string{v1alpha1.AnnotationLoadBalancerIPs: "::ffff:192.0.2.1"}, ""),
			`InvalidRequest: annotation vipvs.io/load-balancer-ips: "::ffff:192.0.2.1" is not an IP address`},
		{"badLoadBalancerIP", svc(corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{v4}, nil, "x"), `InvalidRequest: spec.loadBalancerIP "x" is not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := request(tt.svc, nil)
			var got string
			if err != nil {
				got = string(ipam.ErrorReason(err)) + ": " + err.Error()
			} else {
				got = fmt.Sprintf("%v %v %v %s %s", req.Families, req.Optional, req.Requested, req.Pool, req.SharingKey)
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err == nil && fmt.Sprint(req.Ports) != "[TCP/80 TCP/443 UDP/53]" {
				t.Errorf("ports %v", req.Ports)
			}
		})
	}
}

func TestSatisfies(t *testing.T) {
	a := ipam.New([]ipam.Pool{
		{Name: "a", Ranges: []ipam.Range{mustRange(t, "192.0.2.0/24"), mustRange(t, "2001:db8::/120")}, AutoAssign: true},
		{Name: "b", Ranges: []ipam.Range{mustRange(t, "198.51.100.0/24")}},
	})
	exists := func(p string) bool { return p == "a" || p == "b" }
	ip := netip.MustParseAddr
	v4, v6 := ipam.IPv4, ipam.IPv6
	tests := []struct {
		name  string
		addrs []netip.Addr
		req   ipam.Request
		want  bool
	}{
		{"same", []netip.Addr{ip("192.0.2.1")}, ipam.Request{Families: []ipam.Family{v4}}, true},
		{"none", nil, ipam.Request{Families: []ipam.Family{v4}}, false},
		{"familyChanged", []netip.Addr{ip("192.0.2.1")}, ipam.Request{Families: []ipam.Family{v6}}, false},
		{"nowDual", []netip.Addr{ip("192.0.2.1")}, ipam.Request{Families: []ipam.Family{v4, v6}}, false},
		{"preferDual", []netip.Addr{ip("192.0.2.1")}, ipam.Request{Families: []ipam.Family{v4, v6}, Optional: true}, true},
		{"nowSingle", []netip.Addr{ip("192.0.2.1"), ip("2001:db8::1")}, ipam.Request{Families: []ipam.Family{v4}}, false},
		{"requestedHeld", []netip.Addr{ip("192.0.2.1")}, ipam.Request{Families: []ipam.Family{v4}, Requested: []netip.Addr{ip("192.0.2.1")}}, true},
		{"requestedOther", []netip.Addr{ip("192.0.2.1")}, ipam.Request{Families: []ipam.Family{v4}, Requested: []netip.Addr{ip("192.0.2.2")}}, false},
		{"poolNamed", []netip.Addr{ip("192.0.2.1")}, ipam.Request{Families: []ipam.Family{v4}, Pool: "a"}, true},
		{"poolChanged", []netip.Addr{ip("192.0.2.1")}, ipam.Request{Families: []ipam.Family{v4}, Pool: "b"}, false},
		{"poolUnknownKeeps", []netip.Addr{ip("192.0.2.1")}, ipam.Request{Families: []ipam.Family{v4}, Pool: "gone"}, true},
		{"notAdmitted", []netip.Addr{ip("192.0.2.1")}, ipam.Request{Families: []ipam.Family{v4}, Admits: func(p string) bool { return p != "a" }}, false},
		{"outsidePoolsKeeps", []netip.Addr{ip("203.0.113.1")}, ipam.Request{Families: []ipam.Family{v4}}, true},
	}
	for _, tt := range tests {
		if got := satisfies(a, tt.addrs, tt.req, exists); got != tt.want {
			t.Errorf("%s: satisfies = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func mustRange(t *testing.T, s string) ipam.Range {
	t.Helper()
	r, err := ipam.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParsePools(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pool := func(name string, age time.Duration, addrs ...string) v1alpha1.IPPool {
		p := v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(age))}}
		for _, a := range addrs {
			p.Spec.Addresses = append(p.Spec.Addresses, v1alpha1.IPPoolAddress(a))
		}
		return p
	}
	bad := pool("bad-selector", 0, "10.9.0.0/24")
	bad.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{ServiceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}}
	got := parsePools([]v1alpha1.IPPool{
		pool("z-old", 0, "10.0.0.0/24"),
		pool("a-new", time.Hour, "10.0.0.128/25"),        // overlaps z-old, newer
		pool("b-same-second", 0, "10.0.0.255-10.0.1.10"), // same age as z-old, smaller name: older
		pool("c-after-invalid", 2*time.Hour, "10.1.0.0/24"),
		pool("d-invalid", time.Minute, "10.1.0.5-10.1.0.1"), // invalid: does not block c
		bad,
	})
	var lines []string
	for _, p := range got {
		lines = append(lines, p.obj.Name+": "+p.reason+" "+p.message)
	}
	want := []string{
		"a-new: Overlap addresses 10.0.0.255-10.0.0.255 are also in IPPool b-same-second, which is older",
		"b-same-second:  ",
		"bad-selector: InvalidSelector spec.serviceAllocation.serviceSelector:",
		"c-after-invalid:  ",
		`d-invalid: InvalidAddresses spec.addresses[0]: range "10.1.0.5-10.1.0.1": start 10.1.0.5 is after end 10.1.0.1`,
		"z-old: Overlap addresses 10.0.0.255-10.0.0.255 are also in IPPool b-same-second, which is older",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d pools: %q", len(lines), lines)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("pool %d: got %q, want %q...", i, lines[i], want[i])
		}
	}
}
