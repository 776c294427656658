package envtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/operator"
	"github.com/vipvs/vipvs/operator/lbservice"
	"github.com/vipvs/vipvs/test/envtest"
)

// startDualStack starts etcd and a kube-apiserver whose Services may be
// dual-stack (service-cluster-ip-range of both families), with the CRDs.
func startDualStack(t *testing.T) *rest.Config {
	t.Helper()
	dir, err := envtest.AssetsDir()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	env := &crenvtest.Environment{BinaryAssetsDirectory: dir, CRDDirectoryPaths: []string{crdDir}, ErrorIfCRDPathMissing: true, ControlPlaneStartTimeout: time.Minute}
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/24,fd00:10::/108")
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return cfg
}

// poolHarness runs the Service allocator against the API server.
type poolHarness struct {
	t   *testing.T
	cfg *rest.Config
	c   client.Client
	ctx context.Context
	// reg holds the metrics of the allocator running now.
	reg *prometheus.Registry
	// stop stops the allocator running now.
	stop func()
}

// startAllocator starts the operator's manager with the allocator only, as
// `vipvs operator` sets it up (the operator's cache options and scheme).
func (h *poolHarness) startAllocator(classless bool) {
	h.t.Helper()
	s, err := operator.NewScheme()
	if err != nil {
		h.t.Fatal(err)
	}
	skip := true
	mgr, err := ctrl.NewManager(h.cfg, ctrl.Options{
		Scheme:                 s,
		Cache:                  operator.CacheOptions(opNamespace),
		Logger:                 testr.New(h.t).WithName("allocator"),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.reg = prometheus.NewRegistry()
	if err := lbservice.Setup(mgr, lbservice.Options{ServeClassless: classless, Registerer: h.reg}); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("allocator: %v", err)
			}
		})
	}
	h.t.Cleanup(h.stop)
}

const (
	appsNS  = "apps"
	otherNS = "other"
)

func lbService(ns, name string, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:              corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass: ptr(v1alpha1.LoadBalancerClass),
			Ports:             []corev1.ServicePort{{Name: "p", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func annotate(kv ...string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func port(p int32) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.Ports[0].Port = p }
}

func (h *poolHarness) create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := h.c.Create(h.ctx, obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

func (h *poolHarness) service(t *testing.T, ns, name string) *corev1.Service {
	t.Helper()
	var s corev1.Service
	if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func ingressIPs(s *corev1.Service) []string {
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		mode := "<nil>"
		if in.IPMode != nil {
			mode = string(*in.IPMode)
		}
		out = append(out, in.IP+"/"+mode)
	}
	return out
}

// waitIngress waits until the Service's status.loadBalancer.ingress is want
// (addresses, each with ipMode VIP) and its condition True.
func (h *poolHarness) waitIngress(t *testing.T, ns, name string, want ...string) {
	t.Helper()
	var w []string
	for _, a := range want {
		w = append(w, a+"/VIP")
	}
	waitFor(t, fmt.Sprintf("Service %s/%s to get %v", ns, name, want), func() (bool, string) {
		var s corev1.Service
		if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			return false, err.Error()
		}
		got := ingressIPs(&s)
		c := apimeta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionServiceIPAllocated)
		ok := slices.Equal(got, w) && c != nil && c.Status == metav1.ConditionTrue
		return ok, fmt.Sprintf("ingress %v, condition %+v", got, c)
	})
}

// waitRejected waits until the Service's condition is False with reason
// and a message containing msg, and a Warning event says the same; the
// Service then has no address.
func (h *poolHarness) waitRejected(t *testing.T, ns, name, reason, msg string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("Service %s/%s to be refused with %s %q", ns, name, reason, msg), func() (bool, string) {
		var s corev1.Service
		if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionServiceIPAllocated)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != reason || !strings.Contains(c.Message, msg) {
			return false, fmt.Sprintf("condition %+v", c)
		}
		if len(s.Status.LoadBalancer.Ingress) != 0 {
			return false, fmt.Sprintf("refused but has ingress %v", ingressIPs(&s))
		}
		return true, ""
	})
	h.waitServiceEvent(t, ns, name, corev1.EventTypeWarning, reason, msg)
}

func (h *poolHarness) waitServiceEvent(t *testing.T, ns, name, typ, reason, msg string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("a %s event %s %q about Service %s/%s", typ, reason, msg, ns, name), func() (bool, string) {
		var list eventsv1.EventList
		if err := h.c.List(h.ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind != "Service" || e.Regarding.Name != name {
				continue
			}
			if e.Type == typ && e.Reason == reason && strings.Contains(e.Note, msg) {
				return true, ""
			}
			seen = append(seen, e.Type+" "+e.Reason+": "+e.Note)
		}
		return false, strings.Join(seen, "\n")
	})
}

// waitPool waits until the pool's status has assigned and available and
// its Ready condition the status and reason given.
func (h *poolHarness) waitPool(t *testing.T, name string, assigned, available int64, ready metav1.ConditionStatus, reason string) *v1alpha1.IPPool {
	t.Helper()
	var p v1alpha1.IPPool
	waitFor(t, fmt.Sprintf("IPPool %s: assigned %d, available %d, Ready %s %s", name, assigned, available, ready, reason), func() (bool, string) {
		if err := h.c.Get(h.ctx, client.ObjectKey{Name: name}, &p); err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(p.Status.Conditions, v1alpha1.IPPoolConditionReady)
		ok := p.Status.Assigned == assigned && p.Status.Available == available && c != nil && c.Status == ready && c.Reason == reason && p.Status.ObservedGeneration == p.Generation
		return ok, fmt.Sprintf("%+v", p.Status)
	})
	return &p
}

// metric returns the value of the series of the allocator's registry whose
// name and labels are given ("" when absent).
func (h *poolHarness) metric(t *testing.T, name string, labels map[string]string) string {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if m.GetGauge() != nil {
				return fmt.Sprint(m.GetGauge().GetValue())
			}
			return fmt.Sprint(m.GetCounter().GetValue())
		}
	}
	return ""
}

// loadPoolExample reads the IPPool example of the API (and of the OLM
// bundle's alm-examples).
func loadPoolExample(t *testing.T) *v1alpha1.IPPool {
	t.Helper()
	b, err := os.ReadFile("../../api/v1alpha1/testdata/ippool.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p v1alpha1.IPPool
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatalf("ippool.yaml: %v", err)
	}
	return &p
}

func ippool(name string, auto bool, addrs ...string) *v1alpha1.IPPool {
	p := &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.IPPoolSpec{
			AutoAssign: ptr(auto),
			Announcement: v1alpha1.Announcement{Mode: v1alpha1.AnnouncementVRRP, VRRP: &v1alpha1.VRRPAnnouncement{
				NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/worker": ""}},
			}},
		},
	}
	for _, a := range addrs {
		p.Spec.Addresses = append(p.Spec.Addresses, v1alpha1.IPPoolAddress(a))
	}
	return p
}

// TestIPPools runs the Service allocator (operator/lbservice) against a
// real, dual-stack kube-apiserver: the IPPool CRD's validation, then
// Services created by the test as a user would, and a restart of the
// allocator.
func TestIPPools(t *testing.T) {
	cfg := startDualStack(t)
	s, err := operator.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &poolHarness{t: t, cfg: cfg, c: c, ctx: ctx}
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: opNamespace}},
		{ObjectMeta: metav1.ObjectMeta{Name: appsNS, Labels: map[string]string{"team": "a"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: otherNS}},
	} {
		h.create(t, ns)
	}

	t.Run("crdValidation", h.testPoolValidation)
	t.Run("columns", h.testPoolColumns)

	// The pools of the Services below.
	autoA := ippool("auto-a", true, "192.0.2.0/30") // .0 avoided: .1 .2 .3
	autoA.Spec.AvoidBuggyIPs = true
	team := ippool("team", false, "192.0.2.128/30")
	team.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}}
	for _, p := range []*v1alpha1.IPPool{
		autoA,
		ippool("manual-b", false, "198.51.100.10-198.51.100.20"),
		ippool("dual", false, "203.0.113.0/30", "2001:db8::/126"),
		team,
	} {
		h.create(t, p)
	}
	// Created after manual-b, with an address of it: unusable.
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has seconds
	h.create(t, ippool("overlap-z", true, "198.51.100.20-198.51.100.30"))
	h.create(t, ippool("bad-v6-range", true, "2001:db8:1::2-2001:db8:1::1"))

	h.startAllocator(false)
	t.Run("poolStatus", h.testPoolStatus)
	t.Run("allocateAndExhaust", h.testAllocateAndExhaust)
	t.Run("requested", h.testRequested)
	t.Run("sharing", h.testSharing)
	t.Run("dualStack", h.testDualStack)
	t.Run("unknownPool", h.testUnknownPool)
	t.Run("namespaceSelector", h.testNamespaceSelector)
	t.Run("classFiltering", h.testClassFiltering)
	t.Run("typeChangeReleases", h.testTypeChange)
	t.Run("restart", h.testRestart)
	t.Run("sharerChangesPorts", h.testSharerChangesPorts)
}

func (h *poolHarness) testPoolValidation(t *testing.T) {
	withAddrs := func(a ...string) func(*v1alpha1.IPPool) {
		return func(p *v1alpha1.IPPool) {
			p.Spec.Addresses = nil
			for _, x := range a {
				p.Spec.Addresses = append(p.Spec.Addresses, v1alpha1.IPPoolAddress(x))
			}
		}
	}
	tests := []struct {
		name   string
		mutate func(*v1alpha1.IPPool)
		msg    string
	}{
		{"hostBits", withAddrs("192.0.2.1/24"), "a CIDR must not have host bits set: write its network address"},
		{"hostBitsV6", withAddrs("2001:db8::1/64"), "a CIDR must not have host bits set"},
		{"notACIDR", withAddrs("192.0.2.1"), "must be a CIDR such as 192.0.2.0/24"},
		{"garbage", withAddrs("pool"), "must be a CIDR such as"},
		{"rangeNotIPs", withAddrs("192.0.2.1-x"), "a range must be two IP addresses joined by '-'"},
		{"rangeThree", withAddrs("192.0.2.1-192.0.2.2-192.0.2.3"), "a range must be two IP addresses"},
		{"rangeMixed", withAddrs("192.0.2.1-2001:db8::1"), "a range's start and end must be of one family"},
		{"rangeBackwards", withAddrs("192.0.2.50-192.0.2.10"), "a range's start must not be after its end"},
		{"rangeBackwardsOctet", withAddrs("192.0.3.0-192.0.2.255"), "a range's start must not be after its end"},
		{"empty", withAddrs(), "spec.addresses"},
		{"duplicate", withAddrs("192.0.2.0/24", "192.0.2.0/24"), "Duplicate value"},
		{"vrrpWithoutSection", func(p *v1alpha1.IPPool) { p.Spec.Announcement.VRRP = nil }, "mode vrrp needs the vrrp section and no bgp section"},
		{"bgpWithVRRP", func(p *v1alpha1.IPPool) {
			p.Spec.Announcement.Mode = v1alpha1.AnnouncementBGP
			p.Spec.Announcement.BGP = &v1alpha1.BGPAnnouncement{LoadBalancerConfig: "fabric"}
		}, "mode bgp needs the bgp section and no vrrp section"},
		{"badMode", func(p *v1alpha1.IPPool) { p.Spec.Announcement.Mode = "ARP" }, `Unsupported value: "ARP"`},
		{"emptyNodeSelector", func(p *v1alpha1.IPPool) { p.Spec.Announcement.VRRP.NodeSelector = metav1.LabelSelector{} }, "nodeSelector must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ippool("bad-"+strings.ToLower(tt.name), true, "192.0.2.0/24")
			tt.mutate(p)
			err := h.c.Create(h.ctx, p)
			if err == nil {
				_ = h.c.Delete(h.ctx, p)
				t.Fatalf("accepted, want an error containing %q", tt.msg)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
	// What is valid: both families, CIDRs and ranges, BGP; defaults.
	ok := ippool("valid-mix", true, "192.0.2.0/24", "192.0.2.255-192.0.3.0", "2001:db8::/64", "2001:db8:1::10-2001:db8:1::ff", "198.51.100.7/32")
	ok.Spec.AutoAssign = nil
	ok.Spec.Announcement = v1alpha1.Announcement{Mode: v1alpha1.AnnouncementBGP, BGP: &v1alpha1.BGPAnnouncement{LoadBalancerConfig: "fabric"}}
	if err := h.c.Create(h.ctx, ok); err != nil {
		t.Fatalf("valid pool refused: %v", err)
	}
	if ok.Spec.AutoAssign == nil || !*ok.Spec.AutoAssign {
		t.Errorf("autoAssign not defaulted to true: %v", ok.Spec.AutoAssign)
	}
	if err := h.c.Delete(h.ctx, ok); err != nil {
		t.Fatal(err)
	}
}

func (h *poolHarness) testPoolColumns(t *testing.T) {
	p := ippool("columns", false, "192.0.2.0/24")
	h.create(t, p)
	t.Cleanup(func() { _ = h.c.Delete(context.Background(), p) })
	p.Status = v1alpha1.IPPoolStatus{Assigned: 3, Available: 253, Conditions: []metav1.Condition{
		{Type: v1alpha1.IPPoolConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonPoolValid, LastTransitionTime: metav1.Now()},
	}}
	if err := h.c.Status().Update(h.ctx, p); err != nil {
		t.Fatal(err)
	}
	rc, err := rest.HTTPClientFor(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := newTableRequest(h.ctx, h.cfg, "/apis/vipvs.io/v1alpha1/ippools/columns")
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
		t.Fatal(err)
	}
	var names []string
	for _, col := range table.ColumnDefinitions {
		names = append(names, col.Name)
	}
	if diff := cmp.Diff([]string{"Name", "Addresses", "Mode", "Assigned", "Available", "Ready", "Age"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if got, want := fmt.Sprint(table.Rows[0].Cells[:6]), `[columns ["192.0.2.0/24"] vrrp 3 253 True]`; got != want {
		t.Errorf("row = %s, want %s", got, want)
	}
}

func (h *poolHarness) testPoolStatus(t *testing.T) {
	h.waitPool(t, "auto-a", 0, 3, metav1.ConditionTrue, v1alpha1.ReasonPoolValid)
	h.waitPool(t, "manual-b", 0, 11, metav1.ConditionTrue, v1alpha1.ReasonPoolValid)
	h.waitPool(t, "dual", 0, 8, metav1.ConditionTrue, v1alpha1.ReasonPoolValid)
	p := h.waitPool(t, "overlap-z", 0, 0, metav1.ConditionFalse, v1alpha1.ReasonPoolOverlap)
	if c := apimeta.FindStatusCondition(p.Status.Conditions, v1alpha1.IPPoolConditionReady); !strings.Contains(c.Message, "addresses 198.51.100.20-198.51.100.20 are also in IPPool manual-b, which is older") {
		t.Errorf("overlap message: %q", c.Message)
	}
	p = h.waitPool(t, "bad-v6-range", 0, 0, metav1.ConditionFalse, v1alpha1.ReasonPoolInvalidAddresses)
	if c := apimeta.FindStatusCondition(p.Status.Conditions, v1alpha1.IPPoolConditionReady); !strings.Contains(c.Message, "spec.addresses[0]: range \"2001:db8:1::2-2001:db8:1::1\": start 2001:db8:1::2 is after end 2001:db8:1::1") {
		t.Errorf("invalid range message: %q", c.Message)
	}
	waitFor(t, "pool metrics", func() (bool, string) {
		got := h.metric(t, lbservice.MetricPoolAddressesTotal, map[string]string{"pool": "auto-a"}) + " " +
			h.metric(t, lbservice.MetricPoolAddressesTotal, map[string]string{"pool": "overlap-z"})
		return got == "3 0", got
	})
}

func (h *poolHarness) testAllocateAndExhaust(t *testing.T) {
	h.create(t, lbService(appsNS, "web"))
	h.waitIngress(t, appsNS, "web", "192.0.2.1") // 192.0.2.0 avoided
	h.waitServiceEvent(t, appsNS, "web", corev1.EventTypeNormal, lbservice.EventAllocated, "192.0.2.1 (IPPool auto-a)")
	h.waitPool(t, "auto-a", 1, 2, metav1.ConditionTrue, v1alpha1.ReasonPoolValid)

	h.create(t, lbService(appsNS, "web2"))
	h.waitIngress(t, appsNS, "web2", "192.0.2.2")
	h.create(t, lbService(appsNS, "web3"))
	h.waitIngress(t, appsNS, "web3", "192.0.2.3")
	p := h.waitPool(t, "auto-a", 3, 0, metav1.ConditionTrue, v1alpha1.ReasonPoolValid)
	if c := apimeta.FindStatusCondition(p.Status.Conditions, v1alpha1.IPPoolConditionExhausted); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Exhausted = %+v, want True", c)
	}
	// manual-b and dual assign no address automatically; overlap-z is unusable.
	h.create(t, lbService(appsNS, "web4"))
	h.waitRejected(t, appsNS, "web4", "PoolExhausted", "no free IPv4 address in IPPool auto-a")
	waitFor(t, "metrics", func() (bool, string) {
		got := h.metric(t, lbservice.MetricPoolAddressesInUse, map[string]string{"pool": "auto-a"}) + " " +
			h.metric(t, lbservice.MetricAllocationFailures, map[string]string{"reason": "PoolExhausted"})
		return got == "3 1", got
	})
	// Deleting a Service frees its address for the waiting one.
	if err := h.c.Delete(h.ctx, h.service(t, appsNS, "web2")); err != nil {
		t.Fatal(err)
	}
	h.waitIngress(t, appsNS, "web4", "192.0.2.2")
	h.waitServiceEvent(t, appsNS, "web4", corev1.EventTypeNormal, lbservice.EventAllocated, "192.0.2.2")
	h.waitPool(t, "auto-a", 3, 0, metav1.ConditionTrue, v1alpha1.ReasonPoolValid)
}

func (h *poolHarness) testRequested(t *testing.T) {
	h.create(t, lbService(appsNS, "req1", annotate(v1alpha1.AnnotationLoadBalancerIPs, "198.51.100.12")))
	h.waitIngress(t, appsNS, "req1", "198.51.100.12")
	h.create(t, lbService(appsNS, "req-taken", annotate(v1alpha1.AnnotationLoadBalancerIPs, "198.51.100.12")))
	h.waitRejected(t, appsNS, "req-taken", "IPTaken", "198.51.100.12 is used by apps/req1, which does not share it")
	h.create(t, lbService(appsNS, "req-outside", annotate(v1alpha1.AnnotationLoadBalancerIPs, "203.0.113.200")))
	h.waitRejected(t, appsNS, "req-outside", "IPOutsidePools", "requested address 203.0.113.200 is in no usable IPPool")
	// An address only in the overlapping (unusable) pool is in no usable pool.
	h.create(t, lbService(appsNS, "req-overlap", annotate(v1alpha1.AnnotationLoadBalancerIPs, "198.51.100.25")))
	h.waitRejected(t, appsNS, "req-overlap", "IPOutsidePools", "198.51.100.25 is in no usable IPPool")
	h.create(t, lbService(appsNS, "req-bad", annotate(v1alpha1.AnnotationLoadBalancerIPs, "198.51.100.300")))
	h.waitRejected(t, appsNS, "req-bad", "InvalidRequest", `annotation vipvs.io/load-balancer-ips: "198.51.100.300" is not an IP address`)
	h.create(t, lbService(appsNS, "req-family", annotate(v1alpha1.AnnotationLoadBalancerIPs, "2001:db8::2")))
	h.waitRejected(t, appsNS, "req-family", "InvalidRequest", "requested address 2001:db8::2 is IPv6 but the Service's ipFamilies are [IPv4]")

	// Changing the request moves the Service: the old address goes back.
	s := h.service(t, appsNS, "req1")
	s.Annotations[v1alpha1.AnnotationLoadBalancerIPs] = "198.51.100.13"
	if err := h.c.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.waitIngress(t, appsNS, "req1", "198.51.100.13")
	// ... and the Service refused for it gets it now.
	h.waitIngress(t, appsNS, "req-taken", "198.51.100.12")
}

func (h *poolHarness) testSharing(t *testing.T) {
	shared := func(p int32) func(*corev1.Service) {
		return func(s *corev1.Service) {
			annotate(v1alpha1.AnnotationIPPool, "manual-b", v1alpha1.AnnotationAllowSharedIP, "k")(s)
			port(p)(s)
		}
	}
	h.create(t, lbService(appsNS, "sh-http", shared(80)))
	h.waitIngress(t, appsNS, "sh-http", "198.51.100.10")
	h.create(t, lbService(appsNS, "sh-tls", shared(443)))
	h.waitIngress(t, appsNS, "sh-tls", "198.51.100.10")
	h.create(t, lbService(appsNS, "sh-dns", shared(53), func(s *corev1.Service) { s.Spec.Ports[0].Protocol = corev1.ProtocolUDP }))
	h.waitIngress(t, appsNS, "sh-dns", "198.51.100.10")
	h.create(t, lbService(appsNS, "sh-clash", shared(80), annotate(v1alpha1.AnnotationLoadBalancerIPs, "198.51.100.10")))
	h.waitRejected(t, appsNS, "sh-clash", "PortCollision", "198.51.100.10 is shared with apps/sh-http, which already uses port TCP/80")
	// Without a requested address, a colliding Service of the key gets another address.
	h.create(t, lbService(appsNS, "sh-http2", shared(80)))
	h.waitIngress(t, appsNS, "sh-http2", "198.51.100.11")
	// Another key may not join.
	h.create(t, lbService(appsNS, "sh-otherkey", shared(8080), annotate(v1alpha1.AnnotationAllowSharedIP, "other", v1alpha1.AnnotationLoadBalancerIPs, "198.51.100.10")))
	h.waitRejected(t, appsNS, "sh-otherkey", "IPTaken", "198.51.100.10 is used by apps/sh-dns, apps/sh-http, apps/sh-tls")
	// A shared address counts once.
	h.waitPool(t, "manual-b", 4, 7, metav1.ConditionTrue, v1alpha1.ReasonPoolValid) // .10 .11 .12 .13
}

func (h *poolHarness) testDualStack(t *testing.T) {
	dual := func(policy corev1.IPFamilyPolicy, fams ...corev1.IPFamily) func(*corev1.Service) {
		return func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = &policy
			s.Spec.IPFamilies = fams
			annotate(v1alpha1.AnnotationIPPool, "dual")(s)
		}
	}
	h.create(t, lbService(appsNS, "ds", dual(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)))
	h.waitIngress(t, appsNS, "ds", "203.0.113.0", "2001:db8::")
	h.create(t, lbService(appsNS, "ds6", dual(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv6Protocol, corev1.IPv4Protocol)))
	h.waitIngress(t, appsNS, "ds6", "2001:db8::1", "203.0.113.1")
	h.create(t, lbService(appsNS, "single6", dual(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)))
	h.waitIngress(t, appsNS, "single6", "2001:db8::2")
	h.create(t, lbService(appsNS, "ds-req", dual(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol),
		annotate(v1alpha1.AnnotationLoadBalancerIPs, "2001:db8::3, 203.0.113.3")))
	h.waitIngress(t, appsNS, "ds-req", "203.0.113.3", "2001:db8::3")
	// A RequireDualStack Service from a pool of one family is refused.
	h.create(t, lbService(appsNS, "ds-nov6", dual(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol), annotate(v1alpha1.AnnotationIPPool, "manual-b")))
	h.waitRejected(t, appsNS, "ds-nov6", "NoMatchingPool", `IPPool "manual-b" has no IPv6 addresses`)
	// PreferDualStack takes what the pool has.
	h.create(t, lbService(appsNS, "ds-prefer", dual(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol), annotate(v1alpha1.AnnotationIPPool, "manual-b")))
	h.waitIngress(t, appsNS, "ds-prefer", "198.51.100.14")
}

func (h *poolHarness) testUnknownPool(t *testing.T) {
	h.create(t, lbService(appsNS, "unknown", annotate(v1alpha1.AnnotationIPPool, "nope")))
	h.waitRejected(t, appsNS, "unknown", "UnknownPool", `IPPool "nope" (annotation vipvs.io/ip-pool) does not exist or hands out no address`)
	// The pool appears: the Service gets its address.
	h.create(t, ippool("nope", false, "192.0.2.200/30"))
	h.waitIngress(t, appsNS, "unknown", "192.0.2.200")
}

func (h *poolHarness) testNamespaceSelector(t *testing.T) {
	h.create(t, lbService(otherNS, "team-other", annotate(v1alpha1.AnnotationIPPool, "team")))
	h.waitRejected(t, otherNS, "team-other", "PoolNotAllowed", `IPPool "team" does not admit the Service`)
	h.create(t, lbService(appsNS, "team-apps", annotate(v1alpha1.AnnotationIPPool, "team")))
	h.waitIngress(t, appsNS, "team-apps", "192.0.2.128")
	// Labelling the namespace admits it.
	var ns corev1.Namespace
	if err := h.c.Get(h.ctx, client.ObjectKey{Name: otherNS}, &ns); err != nil {
		t.Fatal(err)
	}
	ns.Labels = map[string]string{"team": "a"}
	if err := h.c.Update(h.ctx, &ns); err != nil {
		t.Fatal(err)
	}
	h.waitIngress(t, otherNS, "team-other", "192.0.2.129")
}

func (h *poolHarness) testClassFiltering(t *testing.T) {
	h.create(t, lbService(appsNS, "class-other", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr("example.com/lb") }))
	h.create(t, lbService(appsNS, "classless", func(s *corev1.Service) { s.Spec.LoadBalancerClass = nil }))
	// A Service of the class created after them: once it has its address,
	// the allocator has seen the other two.
	h.create(t, lbService(appsNS, "class-marker", annotate(v1alpha1.AnnotationIPPool, "manual-b")))
	h.waitIngress(t, appsNS, "class-marker", "198.51.100.15")
	time.Sleep(500 * time.Millisecond)
	for _, name := range []string{"class-other", "classless"} {
		s := h.service(t, appsNS, name)
		if len(s.Status.LoadBalancer.Ingress) != 0 || len(s.Status.Conditions) != 0 {
			t.Errorf("Service %s of another class was touched: %+v", name, s.Status)
		}
	}
}

func (h *poolHarness) testTypeChange(t *testing.T) {
	s := h.service(t, appsNS, "web3")
	s.Spec.Type = corev1.ServiceTypeClusterIP
	s.Spec.LoadBalancerClass = nil
	if err := h.c.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web3's status cleared", func() (bool, string) {
		s := h.service(t, appsNS, "web3")
		return len(s.Status.LoadBalancer.Ingress) == 0 && len(s.Status.Conditions) == 0, fmt.Sprintf("%+v", s.Status)
	})
	h.waitServiceEvent(t, appsNS, "web3", corev1.EventTypeNormal, lbservice.EventReleased, "released 192.0.2.3")
	h.waitPool(t, "auto-a", 2, 1, metav1.ConditionTrue, v1alpha1.ReasonPoolValid)
}

// testRestart stops the allocator; meanwhile the Service holding the
// lowest address of auto-a is deleted (a fresh allocation would now move
// the others down) and a new Service is given, in its status (as a second
// writer or a restored backup might), an address another Service holds.
// The allocator then starts again, now also serving Services with no
// class: every Service keeps what its status says, the newcomer is given
// another address and told why, and no address is given twice.
func (h *poolHarness) testRestart(t *testing.T) {
	h.stop()
	if err := h.c.Delete(h.ctx, h.service(t, appsNS, "web")); err != nil { // 192.0.2.1
		t.Fatal(err)
	}
	before := h.allIngress(t)
	h.create(t, lbService(appsNS, "late"))
	late := h.service(t, appsNS, "late")
	vip := corev1.LoadBalancerIPModeVIP
	late.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.2", IPMode: &vip}} // web4's
	if err := h.c.Status().Update(h.ctx, late); err != nil {
		t.Fatal(err)
	}

	h.startAllocator(true)
	// late is newer than web4: web4 keeps 192.0.2.2. The classless
	// Service, older than late, gets the lowest free address.
	h.waitIngress(t, appsNS, "classless", "192.0.2.1")
	h.waitServiceEvent(t, appsNS, "late", corev1.EventTypeWarning, lbservice.EventAddressConflict, "the addresses 192.0.2.2 in this Service's status are also claimed by an older Service")
	h.waitIngress(t, appsNS, "late", "192.0.2.3")
	after := h.allIngress(t)
	for name, addrs := range before {
		if !slices.Equal(after[name], addrs) {
			t.Errorf("Service %s had %v before the restart, %v after", name, addrs, after[name])
		}
	}
	// No address is given to two Services, but to those that share it.
	owners := map[string][]string{}
	for name, addrs := range after {
		for _, a := range addrs {
			owners[a] = append(owners[a], name)
		}
	}
	for a, names := range owners {
		sort.Strings(names)
		if len(names) > 1 && !slices.Equal(names, []string{"apps/sh-dns", "apps/sh-http", "apps/sh-tls"}) {
			t.Errorf("address %s given to %v", a, names)
		}
	}
	h.waitPool(t, "auto-a", 3, 0, metav1.ConditionTrue, v1alpha1.ReasonPoolValid)
	waitFor(t, "conflict metric", func() (bool, string) {
		got := h.metric(t, lbservice.MetricAllocationFailures, map[string]string{"reason": "AddressConflict"})
		return got == "1", got
	})
}

// testSharerChangesPorts changes the port of the oldest Service sharing
// 198.51.100.10 to one another sharer uses: the Service that changed moves
// (to the other address of its key where its port fits), the others keep
// the address.
func (h *poolHarness) testSharerChangesPorts(t *testing.T) {
	s := h.service(t, appsNS, "sh-http")
	s.Spec.Ports[0].Port = 443 // sh-tls's
	if err := h.c.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.waitIngress(t, appsNS, "sh-http", "198.51.100.11") // with sh-http2 (TCP/80)
	for _, name := range []string{"sh-tls", "sh-dns"} {
		h.waitIngress(t, appsNS, name, "198.51.100.10")
	}
	h.waitIngress(t, appsNS, "sh-http2", "198.51.100.11")
}

// allIngress returns the addresses of every Service, by namespace/name.
func (h *poolHarness) allIngress(t *testing.T) map[string][]string {
	t.Helper()
	var list corev1.ServiceList
	if err := h.c.List(h.ctx, &list); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, s := range list.Items {
		for _, in := range s.Status.LoadBalancer.Ingress {
			out[s.Namespace+"/"+s.Name] = append(out[s.Namespace+"/"+s.Name], in.IP)
		}
	}
	return out
}
