package v1alpha1

import (
	"net/netip"
	"strings"
)

// SetDefaults fills in the default of every optional field that is unset,
// in place, so that the result states explicitly what the agent runs. It
// never overrides a value that is set, valid or not: validation judges
// those. A nil c is left alone.
//
// checksumMode is defaulted only where it applies: version 3 routers whose
// first VIP is an IPv4 address; the VRRP fields of a router in mode bgp are
// left unset.
func SetDefaults(c *AgentConfig) {
	if c == nil {
		return
	}
	if c.Status == nil {
		c.Status = &Status{}
	}
	if c.Status.ListenAddress == nil {
		c.Status.ListenAddress = ptr(DefaultStatusListenAddress)
	}
	if c.Status.SocketPath == nil {
		c.Status.SocketPath = ptr(DefaultStatusSocketPath)
	}
	if c.Notify != nil && c.Notify.Timeout == nil {
		c.Notify.Timeout = &Duration{DefaultNotifyTimeout}
	}
	if c.IPVS == nil {
		c.IPVS = &IPVS{}
	}
	if c.IPVS.ResyncInterval == nil {
		c.IPVS.ResyncInterval = &Duration{DefaultIPVSResyncInterval}
	}
	if c.IPVS.CheckConcurrency == nil {
		c.IPVS.CheckConcurrency = ptr[int32](DefaultRealServerCheckConcurrency)
	}
	setBGPDefaults(c.BGP)
	setConnectionSyncDefaults(c.IPVS)
	for i := range c.VirtualRouters {
		setRouterDefaults(&c.VirtualRouters[i])
		for j := range c.VirtualRouters[i].VirtualServices {
			setServiceDefaults(&c.VirtualRouters[i].VirtualServices[j], c.VirtualRouters[i].Mode)
		}
	}
	for i := range c.Checks {
		setCheckDefaults(&c.Checks[i])
	}
}

func setCheckDefaults(c *Check) {
	if c.Interval == nil {
		c.Interval = &Duration{DefaultCheckInterval}
	}
	if c.Timeout == nil {
		c.Timeout = &Duration{min(DefaultCheckTimeout, c.Interval.Duration)}
	}
	if c.Rise == nil {
		c.Rise = ptr[int32](DefaultCheckRise)
	}
	if c.Fall == nil {
		c.Fall = ptr[int32](DefaultCheckFall)
	}
	if c.HTTP != nil && len(c.HTTP.ExpectStatus) == 0 {
		c.HTTP.ExpectStatus = []int32{200}
	}
}

func setRouterDefaults(r *VirtualRouter) {
	if r.Mode == ModeBGP {
		return // the VRRP fields do not apply
	}
	if r.Version == nil {
		r.Version = ptr[int32](DefaultVersion)
	}
	if r.Priority == nil {
		r.Priority = ptr[int32](DefaultPriority)
	}
	if r.AdvertInterval == nil {
		r.AdvertInterval = &Duration{DefaultAdvertInterval}
	}
	if r.Preempt == nil {
		r.Preempt = ptr(true)
	}
	if r.PreemptDelay == nil {
		r.PreemptDelay = &Duration{}
	}
	if r.ChecksumMode == "" && *r.Version == 3 && len(r.VIPs) > 0 && isIPv4(r.VIPs[0]) {
		r.ChecksumMode = ChecksumPseudoHeader
	}
	if r.Announce == nil {
		r.Announce = &Announce{}
	}
	a := r.Announce
	if a.Count == nil {
		a.Count = ptr[int32](DefaultAnnounceCount)
	}
	if a.RepeatDelay == nil {
		a.RepeatDelay = &Duration{DefaultAnnounceRepeatDelay}
	}
	if a.RefreshInterval == nil {
		a.RefreshInterval = &Duration{}
	}
}

func setServiceDefaults(s *VirtualService, mode AnnouncementMode) {
	if s.Protocol == "" {
		s.Protocol = ProtocolTCP
	}
	if s.Scheduler == "" {
		s.Scheduler = DefaultScheduler
		if mode == ModeBGP {
			s.Scheduler = BGPScheduler
		}
	}
	if s.Forwarding == "" {
		s.Forwarding = ForwardingNAT
	}
	for i := range s.RealServers {
		r := &s.RealServers[i]
		if r.Port == nil {
			r.Port = ptr(s.Port)
		}
		if r.Weight == nil {
			r.Weight = ptr[int32](DefaultRealServerWeight)
		}
	}
	hc := s.HealthCheck
	if hc == nil {
		return
	}
	if hc.Interval == nil {
		hc.Interval = &Duration{DefaultCheckInterval}
	}
	if hc.Timeout == nil {
		hc.Timeout = &Duration{min(DefaultCheckTimeout, hc.Interval.Duration)}
	}
	if hc.Rise == nil {
		hc.Rise = ptr[int32](DefaultCheckRise)
	}
	if hc.Fall == nil {
		hc.Fall = ptr[int32](DefaultCheckFall)
	}
	if h := hc.HTTP; h != nil {
		if h.Scheme == "" {
			h.Scheme = "http"
		}
		if h.Path == "" {
			h.Path = "/"
		}
		if len(h.ExpectStatus) == 0 {
			h.ExpectStatus = []int32{200}
		}
	}
}

// isIPv4 reports whether s is an IPv4 address or prefix.
func isIPv4(s string) bool {
	addr, _, _ := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	return err == nil && a.Is4()
}

func ptr[T any](v T) *T { return &v }

// setConnectionSyncDefaults fills in the defaults of ipvs.connectionSync
// that do not depend on the routers; the interface, the sync ID and the
// group follow the first router with virtual services, which the agent
// resolves (the interface may be picked at run time).
func setConnectionSyncDefaults(v *IPVS) {
	if v.ConnectionSync == nil {
		v.ConnectionSync = &ConnectionSync{}
	}
	cs := v.ConnectionSync
	if cs.Enabled == nil {
		cs.Enabled = ptr(true)
	}
	if cs.Port == nil {
		cs.Port = ptr[int32](DefaultConnectionSyncPort)
	}
	if cs.TTL == nil {
		cs.TTL = ptr[int32](DefaultConnectionSyncTTL)
	}
}
