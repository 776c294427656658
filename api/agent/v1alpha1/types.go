package v1alpha1

import "time"

// GroupVersion is the apiVersion of an agent configuration file.
const GroupVersion = "agent.vipvs.io/v1alpha1"

// Kind is the kind of an agent configuration file.
const Kind = "AgentConfig"

// Defaults applied by SetDefaults, and limits checked by
// github.com/vipvs/vipvs/api/validation.
const (
	// DefaultStatusListenAddress is the default of status.listenAddress.
	// Port 9444 rather than 9443, which webhook servers (controller-runtime's
	// default) commonly take on the host network.
	DefaultStatusListenAddress = "127.0.0.1:9444"
	// DefaultStatusSocketPath is the default of status.socketPath.
	DefaultStatusSocketPath = "/run/vipvs/agent.sock"
	// DefaultNotifyTimeout is the default of notify.timeout.
	DefaultNotifyTimeout = 10 * time.Second
	// DefaultVersion is the default VRRP version of a virtual router.
	DefaultVersion = 3
	// DefaultPriority is the default priority of a virtual router.
	DefaultPriority = 100
	// DefaultAdvertInterval is the default advertisement interval.
	DefaultAdvertInterval = time.Second
	// DefaultAnnounceCount is the default of announce.count.
	DefaultAnnounceCount = 5
	// DefaultAnnounceRepeatDelay is the default of announce.repeatDelay.
	DefaultAnnounceRepeatDelay = time.Second

	// MaxVirtualRouters is the largest number of virtual routers in one
	// file: every VRID of one interface and family.
	MaxVirtualRouters = 255
	// MaxVIPs is the largest number of VIPs of one virtual router.
	MaxVIPs = 16
	// MaxUnicastPeers is the largest number of unicast peers of one virtual
	// router.
	MaxUnicastPeers = 64
	// MaxAuthPasswordLength is the length limit of authPassword in bytes:
	// VRRPv2 carries 8 octets of authentication data (RFC 2338 §5.3.10).
	MaxAuthPasswordLength = 8
)

// ChecksumMode selects how the checksum of a VRRPv3 IPv4 advertisement is
// computed when sending. Received advertisements are accepted with either.
type ChecksumMode string

const (
	// ChecksumPseudoHeader includes the IPv4 pseudo-header in the checksum,
	// as keepalived and FRR do. It is the default.
	ChecksumPseudoHeader ChecksumMode = "pseudoHeader"
	// ChecksumRFC9568 leaves the IPv4 pseudo-header out, as RFC 9568 §5.2.8
	// specifies for IPv4.
	ChecksumRFC9568 ChecksumMode = "rfc9568"
)

// AgentConfig is the configuration of one vipvs agent: the virtual routers
// (VRRP instances) that it runs on one node, each with its VIPs, and where
// it reports its status.
type AgentConfig struct {
	// APIVersion must be "agent.vipvs.io/v1alpha1". Required.
	APIVersion string `json:"apiVersion"`
	// Kind must be "AgentConfig". Required.
	Kind string `json:"kind"`

	// NodeName is the name of the node that runs the agent, used in logs and
	// in the status; a DNS-1123 subdomain (the form of a Kubernetes node
	// name). Optional, default "" (not reported).
	// +optional
	NodeName string `json:"nodeName,omitempty"`
	// Interface is the network interface of every virtual router that does
	// not name its own: a Linux interface name of 1 to 15 characters
	// without '/', ':' or whitespace. Required unless every virtual router
	// sets interface.
	// +optional
	Interface string `json:"interface,omitempty"`
	// Status configures the agent's status endpoints. Optional: when
	// omitted, both endpoints are on with their defaults.
	// +optional
	Status *Status `json:"status,omitempty"`
	// Notify configures a command run on every state transition of a
	// virtual router, as keepalived's notify. Optional: when omitted, no
	// command is run.
	// +optional
	Notify *Notify `json:"notify,omitempty"`
	// Checks are health checks of this node that virtual routers track
	// (trackChecks): up to 32, with unique names. Optional.
	// +optional
	Checks []Check `json:"checks,omitempty"`
	// IPVS configures the programming of virtual services (see
	// virtualRouters[].virtualServices). Optional: the defaults of its
	// fields apply.
	// +optional
	IPVS *IPVS `json:"ipvs,omitempty"`
	// BGP configures the BGP speaker that advertises the VIPs of the
	// virtual routers in mode bgp. Required when a virtual router is in
	// mode bgp; optional otherwise.
	// +optional
	BGP *BGP `json:"bgp,omitempty"`
	// VirtualRouters are the VRRP virtual routers the agent runs: 1 to 255.
	// Required.
	VirtualRouters []VirtualRouter `json:"virtualRouters"`
}

// Status configures the agent's status endpoints.
type Status struct {
	// ListenAddress is the host:port of the HTTP server that serves
	// /healthz, /readyz, /metrics and /status (JSON). The host is an IP
	// address or empty (all addresses); the port is 1 to 65535. "" disables
	// the server. Default "127.0.0.1:9444".
	// +optional
	ListenAddress *string `json:"listenAddress,omitempty"`
	// SocketPath is the absolute path of the unix socket that serves the
	// JSON status to `vipvs status`; at most 107 bytes (the kernel's limit).
	// "" disables the socket. Default "/run/vipvs/agent.sock". Beside it,
	// at the same path with ".ipvs.json" in place of ".sock", the agent
	// records the IPVS virtual services it programmed, so that when it
	// starts again it deletes those removed from the configuration while it
	// was down; with the socket disabled there is no such record.
	// +optional
	SocketPath *string `json:"socketPath,omitempty"`
}

// Notify configures a command run on every state transition of a virtual
// router, compatible with keepalived's notify scripts.
type Notify struct {
	// Command is the program and its leading arguments (an argv, no shell).
	// The program is an absolute path. On each transition the agent appends
	// keepalived's arguments: INSTANCE <router name> <STATE> <priority>,
	// where STATE is MASTER, BACKUP, FAULT or STOP. Runs are queued
	// and run one at a time, in order, never holding up VRRP. Optional when
	// a per-state command is set.
	// +optional
	Command []string `json:"command,omitempty"`
	// Master runs when a router enters MASTER (keepalived's notify_master).
	// It and Backup, Fault and Stop are argvs with an absolute program path
	// (no shell), run without extra arguments after Command; the router's
	// name, state and priority are in the environment as VIPVS_ROUTER,
	// VIPVS_STATE and VIPVS_PRIORITY.
	// +optional
	Master []string `json:"master,omitempty"`
	// Backup runs when a router enters BACKUP (keepalived's notify_backup).
	// +optional
	Backup []string `json:"backup,omitempty"`
	// Fault runs when a router enters FAULT (keepalived's notify_fault).
	// +optional
	Fault []string `json:"fault,omitempty"`
	// Stop runs when a router stops (keepalived's notify_stop).
	// +optional
	Stop []string `json:"stop,omitempty"`
	// Timeout bounds one run of a command; a run still going after it is
	// killed. Greater than 0 and at most 1h. Default 10s.
	// +optional
	Timeout *Duration `json:"timeout,omitempty"`
}

// VirtualRouter is one VRRP virtual router: a VRID on an interface, in one
// address family, that holds one or more VIPs on whichever node is master.
type VirtualRouter struct {
	// Name identifies the router in logs, metrics, the status and notify
	// commands (keepalived's instance name): a DNS-1123 label (lower-case
	// letters, digits and '-', at most 63 characters), unique in the file.
	// Required.
	Name string `json:"name"`
	// VRID is the Virtual Router Identifier, 1 to 255, the same on every
	// node of the router. Unique per interface and address family.
	// Required in mode vrrp; unset in mode bgp.
	VRID int32 `json:"vrid,omitempty"`
	// Mode is how the VIPs are announced: "vrrp" (one master node holds
	// them) or "bgp" (every node whose tracked checks pass holds them and
	// advertises them to the peers of the bgp section: active/active over
	// ECMP). In mode bgp the VIPs are host addresses (/32, /128) and the
	// VRRP fields (vrid, version, priority, advertInterval, preempt,
	// preemptDelay, checksumMode, authPassword, sourceAddress, unicastPeers,
	// announce, preemptAfterChecks) are not set; any failing tracked check
	// withdraws the VIPs, whatever its weight. Default "vrrp".
	// +optional
	Mode AnnouncementMode `json:"mode,omitempty"`
	// Interface is the network interface the router runs on, which carries
	// its VIPs. Same form as the top-level interface, which it overrides.
	// Optional, default: the top-level interface; in mode bgp "lo" (the
	// VIPs are held on the loopback interface and the agent keeps the node
	// from answering ARP for them on its uplinks).
	// +optional
	Interface string `json:"interface,omitempty"`
	// Version is the VRRP version: 3 (RFC 9568, IPv4 and IPv6) or 2
	// (RFC 3768, IPv4 only; for routers shared with keepalived nodes that run
	// version 2). Default 3.
	// +optional
	Version *int32 `json:"version,omitempty"`
	// Priority is this node's priority in the router, 1 to 255; the highest
	// becomes master. 255 means the node owns the VIPs (RFC 9568 §6.1).
	// Default 100.
	// +optional
	Priority *int32 `json:"priority,omitempty"`
	// AdvertInterval is the interval between advertisements sent by the
	// master. Version 3: 10ms to 40.95s in steps of 10ms (the wire unit is
	// the centisecond). Version 2: 1s to 255s in whole seconds. Default 1s.
	// +optional
	AdvertInterval *Duration `json:"advertInterval,omitempty"`
	// Preempt lets this node take over from a master of lower priority.
	// Default true. A node of priority 255 becomes master when it starts
	// whatever preempt says (RFC 9568 §6.4.1).
	// +optional
	Preempt *bool `json:"preempt,omitempty"`
	// PreemptDelay is how long a backup that could preempt waits after it
	// starts before it does; 0 to 1h, and only with preempt true. Default 0.
	// +optional
	PreemptDelay *Duration `json:"preemptDelay,omitempty"`
	// ChecksumMode is how the checksum of sent VRRPv3 IPv4 advertisements is
	// computed: "pseudoHeader" (with the IPv4 pseudo-header, as keepalived
	// and FRR) or "rfc9568" (without). Received advertisements are accepted
	// with either. Only for version 3 with IPv4 VIPs; must be unset
	// otherwise. Default "pseudoHeader" for version 3 IPv4 routers.
	// +optional
	ChecksumMode ChecksumMode `json:"checksumMode,omitempty"`
	// AuthPassword is the VRRPv2 simple text authentication password
	// (keepalived's auth_type PASS), 1 to 8 bytes. Only for version 2; ""
	// means no authentication. It is never logged or reported.
	// +optional
	AuthPassword string `json:"authPassword,omitempty" datapolicy:"password"`
	// SourceAddress is the source address of the advertisements, an address
	// of this node in the family of the VIPs, without prefix length.
	// Optional, default: the interface's first address of the family (for
	// IPv6, its link-local address).
	// +optional
	SourceAddress string `json:"sourceAddress,omitempty"`
	// UnicastPeers are the addresses of the other nodes of the router, to
	// which advertisements are sent by unicast; advertisements from any
	// other source are dropped. Up to 64 distinct addresses in the family of
	// the VIPs, none of them sourceAddress or a VIP, nor multicast, loopback
	// or unspecified. Empty (the default) means multicast to 224.0.0.18
	// (IPv4) or ff02::12 (IPv6).
	// +optional
	UnicastPeers []string `json:"unicastPeers,omitempty"`
	// MulticastPeers, in multicast mode (unicastPeers empty), are the only
	// nodes whose advertisements count: an advertisement from any other
	// source is dropped and counted (reason unknown-peer), so that a stray
	// router or a forged advert on the segment cannot take the VIPs. The
	// same rules as unicastPeers (up to 64 distinct addresses of the other
	// nodes, in the family of the VIPs). Empty (the default) accepts any
	// source, as the RFC does.
	// +optional
	MulticastPeers []string `json:"multicastPeers,omitempty"`
	// VIPs are the virtual IP addresses the master holds: 1 to 16 addresses
	// of one family, as "address/prefix-length" or a bare address (meaning
	// /32 for IPv4, /128 for IPv6). An address appears once in the whole
	// file; multicast, loopback, unspecified and link-local addresses are
	// not allowed. Required.
	VIPs []string `json:"vips"`
	// TrackChecks are the checks (by name, from checks) that change this
	// router's priority or put it in FAULT while they fail; up to 16,
	// each check once. Optional.
	// +optional
	TrackChecks []TrackCheck `json:"trackChecks,omitempty"`
	// PreemptAfterChecks keeps this node from preempting until every
	// tracked check has been healthy since the agent started: a rebooted
	// master does not take the VIP back before its API server is ready,
	// whatever the weights. Default false.
	// +optional
	PreemptAfterChecks bool `json:"preemptAfterChecks,omitempty"`
	// Announce configures the gratuitous ARP (IPv4) or unsolicited neighbour
	// advertisement (IPv6) sent for each VIP when this node becomes master.
	// Optional: when omitted, the defaults of its fields apply.
	// +optional
	Announce *Announce `json:"announce,omitempty"`
	// VirtualServices are the IPVS virtual services offered on each of the
	// router's VIPs, balanced over their real servers: up to 64, unique by
	// protocol and port. Optional: without them the router only moves its
	// VIPs.
	// +optional
	VirtualServices []VirtualService `json:"virtualServices,omitempty"`
}

// Announce configures the gratuitous ARP or unsolicited neighbour
// advertisement packets that tell the network a VIP moved to this node.
// The packets of a burst are sent back to back.
type Announce struct {
	// Count is the number of packets per VIP in each burst, 1 to 100.
	// Default 5.
	// +optional
	Count *int32 `json:"count,omitempty"`
	// RepeatDelay is the delay after becoming master at which a second
	// burst is sent, for switches and neighbours that missed the first; 0 to
	// 1m, 0 disables the second burst. Default 1s.
	// +optional
	RepeatDelay *Duration `json:"repeatDelay,omitempty"`
	// RefreshInterval is the interval of a periodic burst while master; 0
	// (the default) disables it, otherwise 1s to 1h.
	// +optional
	RefreshInterval *Duration `json:"refreshInterval,omitempty"`
}
