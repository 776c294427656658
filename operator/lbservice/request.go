package lbservice

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/operator/ipam"
)

// ours reports whether svc is a Service whose addresses the allocator
// gives: type LoadBalancer with class vipvs.io/lb, or with no class when
// classless is set.
func ours(svc *corev1.Service, classless bool) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if svc.Spec.LoadBalancerClass == nil {
		return classless
	}
	return *svc.Spec.LoadBalancerClass == v1alpha1.LoadBalancerClass
}

// request returns what svc asks for, admits telling which pools admit it,
// or an error about its annotations.
func request(svc *corev1.Service, admits func(string) bool) (ipam.Request, error) {
	req := ipam.Request{
		Pool:       strings.TrimSpace(svc.Annotations[v1alpha1.AnnotationIPPool]),
		SharingKey: svc.Annotations[v1alpha1.AnnotationAllowSharedIP],
		Ports:      ports(svc),
		Admits:     admits,
	}
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			req.Families = append(req.Families, ipam.IPv4)
		case corev1.IPv6Protocol:
			req.Families = append(req.Families, ipam.IPv6)
		}
	}
	policy := corev1.IPFamilyPolicySingleStack
	if svc.Spec.IPFamilyPolicy != nil {
		policy = *svc.Spec.IPFamilyPolicy
	}
	switch policy {
	case corev1.IPFamilyPolicyRequireDualStack:
	case corev1.IPFamilyPolicyPreferDualStack:
		req.Optional = true
	default:
		if len(req.Families) > 1 {
			req.Families = req.Families[:1]
		}
	}
	if v, ok := svc.Annotations[v1alpha1.AnnotationLoadBalancerIPs]; ok {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" || a.Is4In6() {
				return req, &ipam.Error{Reason: ipam.ReasonInvalidRequest,
					Message: fmt.Sprintf("annotation %s: %q is not an IP address: write one IPv4 and/or one IPv6 address, comma separated", v1alpha1.AnnotationLoadBalancerIPs, s)}
			}
			req.Requested = append(req.Requested, a)
		}
	} else if s := svc.Spec.LoadBalancerIP; s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return req, &ipam.Error{Reason: ipam.ReasonInvalidRequest,
				Message: fmt.Sprintf("spec.loadBalancerIP %q is not an IP address (it is deprecated: use the annotation %s)", s, v1alpha1.AnnotationLoadBalancerIPs)}
		}
		req.Requested = append(req.Requested, a)
	}
	if len(req.Families) == 0 {
		// The API server always sets ipFamilies; a Service without them
		// gets the families of what it requests, else IPv4.
		for _, a := range req.Requested {
			req.Families = append(req.Families, ipam.FamilyOf(a))
		}
		if len(req.Families) == 0 {
			req.Families = []ipam.Family{ipam.IPv4}
		}
	}
	return req, nil
}

// ports returns the protocols and ports of svc, sorted.
func ports(svc *corev1.Service) []ipam.Port {
	out := make([]ipam.Port, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		out = append(out, ipam.Port{Protocol: proto, Port: p.Port})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Protocol != out[j].Protocol {
			return out[i].Protocol < out[j].Protocol
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// satisfies reports whether addrs, given to svc before, still fit req:
// one address per family asked for (the optional families may be
// missing), the requested addresses among them, all in the named pool
// when one is named, and each in a pool that admits the Service, or in no
// pool at all (a pool deleted or changed keeps its Services' addresses).
func satisfies(a *ipam.Allocator, addrs []netip.Addr, req ipam.Request, poolExists func(string) bool) bool {
	if len(addrs) == 0 || len(addrs) > len(req.Families) {
		return false
	}
	for i, f := range req.Families {
		if i >= len(addrs) {
			if !req.Optional || i == 0 {
				return false
			}
			break
		}
		if ipam.FamilyOf(addrs[i]) != f {
			return false
		}
	}
	for _, r := range req.Requested {
		found := false
		for _, x := range addrs {
			found = found || x == r
		}
		if !found {
			return false
		}
	}
	for _, x := range addrs {
		p := a.PoolOf(x)
		if req.Pool != "" && poolExists(req.Pool) && p != req.Pool {
			return false
		}
		if p != "" && req.Admits != nil && !req.Admits(p) {
			return false
		}
	}
	return true
}

// statusAddresses returns the addresses of svc's status.loadBalancer, in
// order, skipping hostnames and what does not parse.
func statusAddresses(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// ingress returns status.loadBalancer.ingress for addrs.
func ingress(addrs []netip.Addr) []corev1.LoadBalancerIngress {
	if len(addrs) == 0 {
		return nil
	}
	vip := corev1.LoadBalancerIPModeVIP
	out := make([]corev1.LoadBalancerIngress, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, corev1.LoadBalancerIngress{IP: a.String(), IPMode: &vip})
	}
	return out
}

// selectors are a pool's serviceAllocation, parsed.
type selectors struct {
	namespace, service labels.Selector
}

func parseSelectors(sa *v1alpha1.ServiceAllocation) (selectors, error) {
	var s selectors
	if sa == nil {
		return s, nil
	}
	var err error
	if sa.NamespaceSelector != nil {
		if s.namespace, err = metav1.LabelSelectorAsSelector(sa.NamespaceSelector); err != nil {
			return s, fmt.Errorf("spec.serviceAllocation.namespaceSelector: %w", err)
		}
	}
	if sa.ServiceSelector != nil {
		if s.service, err = metav1.LabelSelectorAsSelector(sa.ServiceSelector); err != nil {
			return s, fmt.Errorf("spec.serviceAllocation.serviceSelector: %w", err)
		}
	}
	return s, nil
}

// admits reports whether a Service with labels svc in a namespace with
// labels ns matches.
func (s selectors) admits(ns, svc labels.Set) bool {
	return (s.namespace == nil || s.namespace.Matches(ns)) && (s.service == nil || s.service.Matches(svc))
}
