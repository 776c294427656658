package v1alpha1

import "time"

// Defaults and limits of virtual services.
const (
	// DefaultScheduler is the default IPVS scheduler (ipvsadm's).
	DefaultScheduler = "wlc"
	// BGPScheduler is the scheduler of the virtual services of a router in
	// mode bgp, and the only one allowed there: Maglev hashing, the real
	// servers in one order on every node, so that every node sends a flow
	// to the same real server (see docs/forwarding.md).
	BGPScheduler = "mh"
	// DefaultRealServerWeight is the default weight of a real server.
	DefaultRealServerWeight = 1
	// MaxRealServerWeight is the largest weight of a real server.
	MaxRealServerWeight = 65535
	// MaxVirtualServices is the largest number of virtual services of one
	// virtual router.
	MaxVirtualServices = 64
	// MaxRealServers is the largest number of real servers of one virtual
	// service.
	MaxRealServers = 256
	// MaxPersistence is the longest persistence timeout (a day).
	MaxPersistence = 24 * time.Hour
	// DefaultIPVSResyncInterval is the default of ipvs.resyncInterval.
	DefaultIPVSResyncInterval = 10 * time.Second
	// DefaultRealServerCheckConcurrency is the default of
	// ipvs.checkConcurrency.
	DefaultRealServerCheckConcurrency = 16
)

// Protocol is the transport protocol of a virtual service.
type Protocol string

// Protocols.
const (
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolSCTP Protocol = "SCTP"
)

// Forwarding is how IPVS forwards packets to the real servers.
type Forwarding string

// Forwarding methods.
const (
	// ForwardingNAT rewrites the destination to the real server and, with
	// the source NAT the agent installs, the source to the director: the
	// real servers need no route back through the director, and a client on
	// a director or on a real server can use the VIP.
	ForwardingNAT Forwarding = "NAT"
	// ForwardingDR (direct routing) rewrites only the destination MAC: the
	// real servers hold the VIP on a non-ARPing interface (lo) and answer
	// the client directly. The port cannot change.
	ForwardingDR Forwarding = "DR"
	// ForwardingTunnel encapsulates the packets in IP-in-IP to the real
	// servers, which hold the VIP on tunl0 and answer the client directly.
	// The port cannot change.
	ForwardingTunnel Forwarding = "Tunnel"
)

// IPVS configures how the agent programs the kernel's IPVS table.
type IPVS struct {
	// ResyncInterval is how often the agent re-reads the kernel's IPVS table
	// and restores what someone else changed (kube-proxy in IPVS mode
	// deletes services it does not know), 1s to 1h. Changes of the
	// configuration and of real-server health are applied at once,
	// whatever the interval. Default 10s.
	// +optional
	ResyncInterval *Duration `json:"resyncInterval,omitempty"`
	// CheckConcurrency bounds how many real-server health checks run at the
	// same time, 1 to 1024. Default 16.
	// +optional
	CheckConcurrency *int32 `json:"checkConcurrency,omitempty"`
	// ConnectionSync configures the synchronisation of IPVS connections
	// between the directors, on by default (see ConnectionSync).
	// +optional
	ConnectionSync *ConnectionSync `json:"connectionSync,omitempty"`
}

// VirtualService is an IPVS virtual service offered on every VIP of its
// virtual router: connections to VIP:port are balanced over the real
// servers. The services are programmed on every node, master or backup, so
// that a takeover needs no programming (see the agent's package
// documentation for why, and for the exception of DR and Tunnel).
type VirtualService struct {
	// Name identifies the service in logs, metrics and status: a DNS-1123
	// label, unique within its virtual router. Required.
	Name string `json:"name"`
	// Port is the port of the service on each VIP, 1 to 65535. Required.
	Port int32 `json:"port"`
	// Protocol is TCP, UDP or SCTP. Default TCP.
	// +optional
	Protocol Protocol `json:"protocol,omitempty"`
	// Scheduler is the IPVS scheduler: rr, wrr, lc, wlc, sh or mh.
	// Default wlc. In mode bgp it is mh (Maglev hashing with fallback and,
	// without persistence, the client's port in the hash), the default and
	// the only one allowed: every node balances the VIP, and a flow that
	// the routers' ECMP moves to another node must reach the same real
	// server there.
	// +optional
	Scheduler string `json:"scheduler,omitempty"`
	// Persistence sends the connections of one client to the same real
	// server until this long after its last connection ended, in whole
	// seconds, 1s to 24h (keepalived's persistence_timeout). Default:
	// none.
	// +optional
	Persistence *Duration `json:"persistence,omitempty"`
	// Forwarding is NAT, DR or Tunnel. Default NAT.
	// +optional
	Forwarding Forwarding `json:"forwarding,omitempty"`
	// RealServers are the backends: 1 to 256 distinct address:port pairs,
	// each in the family of the VIPs. Required.
	RealServers []RealServer `json:"realServers"`
	// HealthCheck checks each real server: one that fails it is drained
	// (weight 0: no new connections, existing ones may finish) until it is
	// healthy again. Optional: without it every real server is in service.
	// +optional
	HealthCheck *RealServerCheck `json:"healthCheck,omitempty"`
}

// RealServer is a backend of a virtual service.
type RealServer struct {
	// Address is the real server's IP address. Required.
	Address string `json:"address"`
	// Port is the real server's port, 1 to 65535. Default: the service's
	// port. With DR and Tunnel it must equal the service's port.
	// +optional
	Port *int32 `json:"port,omitempty"`
	// Weight is the real server's share of new connections, 0 to 65535; 0
	// keeps it out of service. Default 1.
	// +optional
	Weight *int32 `json:"weight,omitempty"`
}

// RealServerCheck is the health check of each real server of a virtual
// service. Exactly one of tcp, http and exec is set.
type RealServerCheck struct {
	// TCP is healthy when a TCP connection to the real server succeeds.
	// +optional
	TCP *RealServerTCPCheck `json:"tcp,omitempty"`
	// HTTP is healthy when an HTTP(S) GET to the real server is answered
	// with an expected status (kube-apiserver: https, path /readyz).
	// +optional
	HTTP *RealServerHTTPCheck `json:"http,omitempty"`
	// Exec is healthy when a command exits with status 0 (keepalived's
	// MISC_CHECK). The command gets the real server in its environment as
	// VIPVS_BACKEND_ADDRESS and VIPVS_BACKEND_PORT.
	// +optional
	Exec *ExecCheck `json:"exec,omitempty"`
	// Interval between two probes of one real server, 100ms to 1h.
	// Default 2s.
	// +optional
	Interval *Duration `json:"interval,omitempty"`
	// Timeout of one probe, greater than 0 and at most interval. Default 1s
	// (or the interval, if shorter).
	// +optional
	Timeout *Duration `json:"timeout,omitempty"`
	// Rise is the number of consecutive successes that bring a drained real
	// server back, 1 to 100. Default 2.
	// +optional
	Rise *int32 `json:"rise,omitempty"`
	// Fall is the number of consecutive failures that drain a real server,
	// 1 to 100. Default 3.
	// +optional
	Fall *int32 `json:"fall,omitempty"`
}

// RealServerTCPCheck connects to the real server.
type RealServerTCPCheck struct {
	// Port to connect to, 1 to 65535. Default: the real server's port.
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// RealServerHTTPCheck sends a GET to the real server.
type RealServerHTTPCheck struct {
	// Scheme is "http" or "https". Default "http".
	// +optional
	Scheme string `json:"scheme,omitempty"`
	// Port to connect to, 1 to 65535. Default: the real server's port.
	// +optional
	Port *int32 `json:"port,omitempty"`
	// Path is the absolute path to GET. Default "/".
	// +optional
	Path string `json:"path,omitempty"`
	// ExpectStatus lists the status codes that mean healthy, each 100 to
	// 599. Default [200].
	// +optional
	ExpectStatus []int32 `json:"expectStatus,omitempty"`
	// CAFile is an absolute path to the PEM bundle that verifies the
	// server's certificate. Default: the system roots.
	// +optional
	CAFile string `json:"caFile,omitempty"`
	// InsecureSkipVerify accepts any server certificate. Default false.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// ServerName is the name the certificate is verified against and the
	// TLS SNI (real servers are addressed by IP). Optional.
	// +optional
	ServerName string `json:"serverName,omitempty"`
}
