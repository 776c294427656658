package config

import (
	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// The conversion back to the file format, for the round-trip tests
// (Parse(marshal(c)) == c).

// toV1alpha1 turns c back into the file format, with every default written
// out. Parsing the marshalled result gives a Config equal to c except for
// Hash.
func toV1alpha1(c *Config) *agentv1alpha1.AgentConfig {
	obj := &agentv1alpha1.AgentConfig{
		APIVersion: agentv1alpha1.GroupVersion,
		Kind:       agentv1alpha1.Kind,
		NodeName:   c.NodeName,
		Status: &agentv1alpha1.Status{
			ListenAddress: ptr(c.StatusListen),
			SocketPath:    ptr(c.StatusSocket),
		},
	}
	if n := c.Notify; len(n.Command)+len(n.Master)+len(n.Backup)+len(n.Fault)+len(n.Stop) > 0 {
		obj.Notify = &agentv1alpha1.Notify{
			Command: cloneArgv(c.Notify.Command),
			Master:  cloneArgv(c.Notify.Master),
			Backup:  cloneArgv(c.Notify.Backup),
			Fault:   cloneArgv(c.Notify.Fault),
			Stop:    cloneArgv(c.Notify.Stop),
			Timeout: durationPtr(c.Notify.Timeout),
		}
	}
	for _, ch := range c.Checks {
		obj.Checks = append(obj.Checks, checkToV1alpha1(ch))
	}
	if c.IPVS.ResyncInterval != 0 || c.IPVS.CheckConcurrency != 0 {
		obj.IPVS = &agentv1alpha1.IPVS{
			ResyncInterval:   durationPtr(c.IPVS.ResyncInterval),
			CheckConcurrency: ptr(int32(c.IPVS.CheckConcurrency)),
			ConnectionSync:   connectionSyncToV1alpha1(c.IPVS.Sync),
		}
	}
	for _, r := range c.Routers {
		vr := agentv1alpha1.VirtualRouter{
			Name:           r.Name,
			VRID:           int32(r.VRID),
			Interface:      r.Interface,
			Version:        ptr(int32(r.Version)),
			Priority:       ptr(int32(r.Priority)),
			AdvertInterval: durationPtr(r.AdvertInterval),
			Preempt:        ptr(r.Preempt),
			PreemptDelay:   durationPtr(r.PreemptDelay),
			AuthPassword:   r.AuthPassword,
			Announce: &agentv1alpha1.Announce{
				Count:           ptr(int32(r.Announce.Count)),
				RepeatDelay:     durationPtr(r.Announce.RepeatDelay),
				RefreshInterval: durationPtr(r.Announce.RefreshInterval),
			},
		}
		vr.PreemptAfterChecks = r.PreemptAfterChecks
		for _, tc := range r.TrackChecks {
			vr.TrackChecks = append(vr.TrackChecks, agentv1alpha1.TrackCheck{Check: tc.Check, Weight: int32(tc.Weight)})
		}
		if r.Version == 3 && !r.IPv6 {
			vr.ChecksumMode = agentv1alpha1.ChecksumMode(r.ChecksumMode.String())
		}
		if r.SourceAddr.IsValid() {
			vr.SourceAddress = r.SourceAddr.String()
		}
		for _, p := range r.Peers {
			vr.UnicastPeers = append(vr.UnicastPeers, p.String())
		}
		for _, p := range r.MulticastPeers {
			vr.MulticastPeers = append(vr.MulticastPeers, p.String())
		}
		for _, p := range r.VIPs {
			vr.VIPs = append(vr.VIPs, p.String())
		}
		vr.VirtualServices = servicesToV1alpha1(c.Services, r.Name)
		obj.VirtualRouters = append(obj.VirtualRouters, vr)
	}
	return obj
}

func checkToV1alpha1(c Check) agentv1alpha1.Check {
	out := agentv1alpha1.Check{
		Name:     c.Name,
		Interval: durationPtr(c.Interval),
		Timeout:  durationPtr(c.Timeout),
		Rise:     ptr(int32(c.Rise)),
		Fall:     ptr(int32(c.Fall)),
	}
	switch {
	case c.TCP.IsValid():
		out.TCP = &agentv1alpha1.TCPCheck{Address: c.TCP.String()}
	case c.HTTP != nil:
		h := &agentv1alpha1.HTTPCheck{URL: c.HTTP.URL, CAFile: c.HTTP.CAFile, InsecureSkipVerify: c.HTTP.InsecureSkipVerify, ServerName: c.HTTP.ServerName}
		for _, s := range c.HTTP.ExpectStatus {
			h.ExpectStatus = append(h.ExpectStatus, int32(s))
		}
		out.HTTP = h
	case len(c.Exec) > 0:
		out.Exec = &agentv1alpha1.ExecCheck{Command: cloneArgv(c.Exec)}
	case c.Interface != "":
		out.Interface = &agentv1alpha1.InterfaceCheck{Name: c.Interface}
	}
	return out
}

func servicesToV1alpha1(svcs []VirtualService, router string) []agentv1alpha1.VirtualService {
	var out []agentv1alpha1.VirtualService
	for _, vs := range svcs {
		if vs.Router != router {
			continue
		}
		s := agentv1alpha1.VirtualService{
			Name:       vs.Name,
			Port:       int32(vs.Port),
			Protocol:   vs.Protocol,
			Scheduler:  vs.Scheduler,
			Forwarding: vs.Forwarding,
		}
		if vs.Persistence > 0 {
			s.Persistence = durationPtr(vs.Persistence)
		}
		for _, r := range vs.RealServers {
			s.RealServers = append(s.RealServers, agentv1alpha1.RealServer{
				Address: r.Addr.Addr().String(),
				Port:    ptr(int32(r.Addr.Port())),
				Weight:  ptr(int32(r.Weight)),
			})
		}
		if c := vs.HealthCheck; c != nil {
			hc := &agentv1alpha1.RealServerCheck{
				Interval: durationPtr(c.Interval),
				Timeout:  durationPtr(c.Timeout),
				Rise:     ptr(int32(c.Rise)),
				Fall:     ptr(int32(c.Fall)),
			}
			switch {
			case c.TCP:
				hc.TCP = &agentv1alpha1.RealServerTCPCheck{}
				if c.TCPPort != 0 {
					hc.TCP.Port = ptr(int32(c.TCPPort))
				}
			case c.HTTP != nil:
				h := c.HTTP
				scheme := "http"
				if h.HTTPS {
					scheme = "https"
				}
				hc.HTTP = &agentv1alpha1.RealServerHTTPCheck{
					Scheme: scheme, Path: h.Path, CAFile: h.CAFile,
					InsecureSkipVerify: h.InsecureSkipVerify, ServerName: h.ServerName,
				}
				if h.Port != 0 {
					hc.HTTP.Port = ptr(int32(h.Port))
				}
				for _, code := range h.ExpectStatus {
					hc.HTTP.ExpectStatus = append(hc.HTTP.ExpectStatus, int32(code))
				}
			case len(c.Exec) > 0:
				hc.Exec = &agentv1alpha1.ExecCheck{Command: cloneArgv(c.Exec)}
			}
			s.HealthCheck = hc
		}
		out = append(out, s)
	}
	return out
}

// connectionSyncToV1alpha1 is the inverse of connectionSyncFromV1alpha1,
// with every field stated.
func connectionSyncToV1alpha1(cs ConnectionSync) *agentv1alpha1.ConnectionSync {
	out := &agentv1alpha1.ConnectionSync{
		Enabled:   ptr(cs.Enabled),
		Interface: cs.Interface,
		SyncID:    ptr(int32(cs.SyncID)),
		Port:      ptr(int32(cs.Port)),
		TTL:       ptr(int32(cs.TTL)),
	}
	if cs.Group.IsValid() {
		out.MulticastGroup = cs.Group.String()
	}
	return out
}
