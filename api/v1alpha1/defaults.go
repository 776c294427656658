package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SetDefaults fills in, in place, every default that the CRD's schema
// (+kubebuilder:default) applies, so that `vipvs render`, which reads a
// LoadBalancerConfig from a file without an API server, sees the same
// object the API server would have stored. It never overrides a value that
// is set, valid or not. A nil c is left alone.
//
// Like the schema, it leaves a check's timeout unset: its default (1s, or
// the interval if shorter) depends on the interval and is the renderer's to
// apply (see DefaultCheckTimeout). The envtest tests compare SetDefaults
// with the API server's defaulting.
func SetDefaults(c *LoadBalancerConfig) {
	if c == nil {
		return
	}
	s := &c.Spec
	if s.VRRP == nil {
		s.VRRP = &VRRP{}
	}
	v := s.VRRP
	if v.Version == 0 {
		v.Version = DefaultVRRPVersion
	}
	if v.AdvertInterval == nil {
		v.AdvertInterval = mustDuration(DefaultAdvertInterval)
	}
	if v.Unicast == nil {
		v.Unicast = ptr(true)
	}
	if v.Preempt == nil {
		v.Preempt = ptr(true)
	}
	if v.PreemptDelay == nil {
		v.PreemptDelay = mustDuration(DefaultPreemptDelay)
	}
	if s.AgentStatusPort == 0 {
		s.AgentStatusPort = DefaultAgentStatusPort
	}
	if s.Mode == "" {
		s.Mode = ModeActiveStandby
	}
	if cs := s.ConnectionSync; cs != nil && cs.Enabled == nil {
		// The struct stays absent when unset (the agent's default, on).
		cs.Enabled = ptr(true)
	}
	for i := range s.Services {
		setServiceDefaults(&s.Services[i])
	}
	for i := range s.TrackChecks {
		tc := &s.TrackChecks[i]
		if tc.HTTP != nil && tc.HTTP.ExpectStatus == nil {
			tc.HTTP.ExpectStatus = []int32{DefaultExpectStatus}
		}
		setTimingDefaults(&tc.ProbeTiming)
	}
}

func setServiceDefaults(svc *VirtualService) {
	if svc.Protocol == "" {
		svc.Protocol = ProtocolTCP
	}
	if svc.Scheduler == "" {
		svc.Scheduler = SchedulerWeightedLeastConnection
	}
	if svc.Forwarding == "" {
		svc.Forwarding = ForwardingNAT
	}
	if b := svc.Backends.SelectedNodes; b != nil && b.Weight == nil {
		b.Weight = ptr(DefaultWeight)
	}
	for i := range svc.Backends.Static {
		if b := &svc.Backends.Static[i]; b.Weight == nil {
			b.Weight = ptr(DefaultWeight)
		}
	}
	hc := svc.HealthCheck
	if hc == nil {
		return
	}
	if h := hc.HTTP; h != nil {
		if h.Scheme == "" {
			h.Scheme = URISchemeHTTP
		}
		if h.Path == "" {
			h.Path = DefaultHTTPPath
		}
		if h.ExpectStatus == nil {
			h.ExpectStatus = []int32{DefaultExpectStatus}
		}
	}
	setTimingDefaults(&hc.ProbeTiming)
}

func setTimingDefaults(t *ProbeTiming) {
	if t.Interval == nil {
		t.Interval = mustDuration(DefaultCheckInterval)
	}
	if t.Rise == nil {
		t.Rise = ptr(DefaultCheckRise)
	}
	if t.Fall == nil {
		t.Fall = ptr(DefaultCheckFall)
	}
}

// mustDuration parses one of this file's constant duration strings.
func mustDuration(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic("v1alpha1: bad default duration " + s) // a bug in this package's constants
	}
	return &metav1.Duration{Duration: d}
}

func ptr[T any](v T) *T { return &v }
