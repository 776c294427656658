package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// IPVS configures the programming of the virtual services.
type IPVS struct {
	// ResyncInterval is how often the kernel's table is re-read and
	// repaired: 1s to 1h.
	ResyncInterval time.Duration
	// CheckConcurrency bounds the real-server probes running at once:
	// 1 to 1024.
	CheckConcurrency int
	// Sync is the connection synchronisation between the directors.
	Sync ConnectionSync

	// RecordFile is where the agent records the IPVS services it
	// programmed, so that after a restart it deletes those dropped from the
	// configuration while it was down: beside the status socket, its path
	// with ".ipvs.json" in place of ".sock" (so unique per agent on a node,
	// as the socket is); "" (no record) when the socket is disabled. It is
	// not part of the file format.
	RecordFile string
}

// recordFile returns IPVS.RecordFile for the status socket path socket.
func recordFile(socket string) string {
	if socket == "" {
		return ""
	}
	return strings.TrimSuffix(socket, ".sock") + ".ipvs.json"
}

// VirtualService is a validated IPVS virtual service of one router, offered
// on each of the router's VIPs.
type VirtualService struct {
	// Router is the name of the router whose VIPs carry the service.
	Router string
	// Name is a DNS-1123 label, unique within the router.
	Name string
	// Port is 1 to 65535; Protocol, Port is unique within the router.
	Port uint16
	// Protocol is TCP, UDP or SCTP.
	Protocol agentv1alpha1.Protocol
	// Scheduler is rr, wrr, lc, wlc, sh or mh.
	Scheduler string
	// Persistence is 0 (none) or 1s to 24h in whole seconds.
	Persistence time.Duration
	// Forwarding is NAT, DR or Tunnel.
	Forwarding agentv1alpha1.Forwarding
	// RealServers are 1 to 256 distinct address:port pairs in the family
	// of the router's VIPs; with DR and Tunnel their port is Port.
	RealServers []RealServer
	// HealthCheck checks each real server, when not nil.
	HealthCheck *RealServerCheck
	// ConsistentHashing is set for the services of a router in mode bgp,
	// which every node balances at once: Scheduler is mh, and the balancer
	// programs the service with the mh flags and sloppy TCP/SCTP so that a
	// flow the routers' ECMP moves between nodes keeps its real server
	// (see agent/balancer).
	ConsistentHashing bool
}

// RealServer is a backend of a virtual service.
type RealServer struct {
	Addr netip.AddrPort
	// Weight is 0 to 65535.
	Weight int
}

// RealServerCheck is a validated health check of every real server of a
// service. Exactly one of TCPPort (non-zero), HTTP and Exec is set.
type RealServerCheck struct {
	// TCPPort is the port a TCP check connects to (the real server's port
	// when the file leaves it out); 0 when the check is not TCP.
	TCPPort uint16
	// TCP reports whether the check is a TCP connect.
	TCP bool
	// HTTP is the GET to send, when not nil.
	HTTP *RealServerHTTPCheck
	// Exec is the argv to run (absolute program path), when not empty.
	Exec []string
	// Interval is 100ms to 1h; Timeout is greater than 0 and at most
	// Interval.
	Interval, Timeout time.Duration
	// Rise and Fall are 1 to 100.
	Rise, Fall int
}

// RealServerHTTPCheck is a validated HTTP(S) GET of a real server.
type RealServerHTTPCheck struct {
	// HTTPS selects https.
	HTTPS bool
	// Port is the port to connect to; 0 means the real server's port.
	Port uint16
	// Path is an absolute path.
	Path string
	// ExpectStatus is not empty; each code is 100 to 599.
	ExpectStatus []int
	// CAFile is an absolute path or "" (system roots).
	CAFile string
	// InsecureSkipVerify is never true together with CAFile.
	InsecureSkipVerify bool
	// ServerName is the verified name and SNI; "" means the address.
	ServerName string
}

// URL returns the URL a probe of real server addr GETs.
func (h *RealServerHTTPCheck) URL(addr netip.AddrPort) string {
	scheme := "http"
	if h.HTTPS {
		scheme = "https"
	}
	port := addr.Port()
	if h.Port != 0 {
		port = h.Port
	}
	return fmt.Sprintf("%s://%s%s", scheme, netip.AddrPortFrom(addr.Addr(), port), h.Path)
}

func servicesFromV1alpha1(vr *agentv1alpha1.VirtualRouter) ([]VirtualService, error) {
	var out []VirtualService
	for i := range vr.VirtualServices {
		s := &vr.VirtualServices[i]
		vs := VirtualService{
			Router:      vr.Name,
			Name:        s.Name,
			Port:        uint16(s.Port),
			Protocol:    s.Protocol,
			Scheduler:   s.Scheduler,
			Persistence: durationOf(s.Persistence),
			Forwarding:  s.Forwarding,

			ConsistentHashing: vr.Mode == agentv1alpha1.ModeBGP,
		}
		for j, r := range s.RealServers {
			a, err := netip.ParseAddr(r.Address)
			if err != nil {
				return nil, fmt.Errorf("virtualServices[%d].realServers[%d].address: %w", i, j, err)
			}
			vs.RealServers = append(vs.RealServers, RealServer{
				Addr:   netip.AddrPortFrom(a.Unmap(), uint16(deref(r.Port))),
				Weight: int(deref(r.Weight)),
			})
		}
		if hc := s.HealthCheck; hc != nil {
			c := &RealServerCheck{
				Interval: durationOf(hc.Interval),
				Timeout:  durationOf(hc.Timeout),
				Rise:     int(deref(hc.Rise)),
				Fall:     int(deref(hc.Fall)),
			}
			switch {
			case hc.TCP != nil:
				c.TCP = true
				c.TCPPort = uint16(deref(hc.TCP.Port))
			case hc.HTTP != nil:
				h := hc.HTTP
				c.HTTP = &RealServerHTTPCheck{
					HTTPS:              h.Scheme == "https",
					Port:               uint16(deref(h.Port)),
					Path:               h.Path,
					CAFile:             h.CAFile,
					InsecureSkipVerify: h.InsecureSkipVerify,
					ServerName:         h.ServerName,
				}
				for _, code := range h.ExpectStatus {
					c.HTTP.ExpectStatus = append(c.HTTP.ExpectStatus, int(code))
				}
			case hc.Exec != nil:
				c.Exec = cloneArgv(hc.Exec.Command)
			}
			vs.HealthCheck = c
		}
		out = append(out, vs)
	}
	return out, nil
}
