package v1alpha1

import "time"

// Defaults and limits of BGP announcement (virtualRouters[].mode: bgp).
const (
	// DefaultBFDInterval is the default of bgp.bfdProfile.minTxInterval
	// and minRxInterval: with DefaultBFDMultiplier a node that dies silently
	// leaves the routers' ECMP set within 900 ms.
	DefaultBFDInterval = 300 * time.Millisecond
	// DefaultBFDMultiplier is the default of bgp.bfdProfile.multiplier.
	DefaultBFDMultiplier = 3
	// MinBFDInterval is the shortest BFD interval accepted.
	MinBFDInterval = 10 * time.Millisecond
	// MaxBFDInterval is the longest BFD interval accepted (BFD carries the
	// intervals in microseconds in 32 bits; a minute is plenty).
	MaxBFDInterval = time.Minute
	// DefaultBGPHoldTime is the default of bgp.peers[].holdTime (RFC 4271).
	DefaultBGPHoldTime = 90 * time.Second
	// DefaultBGPConnectRetry is the default of bgp.peers[].connectRetry.
	DefaultBGPConnectRetry = 5 * time.Second
	// MinBGPConnectRetry is the shortest connectRetry accepted.
	MinBGPConnectRetry = 2 * time.Second
	// DefaultGracefulShutdownWait is the default of
	// bgp.gracefulShutdownWait.
	DefaultGracefulShutdownWait = 2 * time.Second
	// MaxGracefulShutdownWait is the longest gracefulShutdownWait accepted.
	MaxGracefulShutdownWait = 10 * time.Minute
	// MaxBGPPeers is the largest number of BGP peers.
	MaxBGPPeers = 16
	// MaxBGPPasswordFileLength bounds passwordFile's path length.
	MaxBGPPasswordFileLength = 4096
	// DefaultRouteProtocol is the default of bgp.externalSpeaker.protocol:
	// a number that /etc/iproute2/rt_protos leaves unassigned.
	DefaultRouteProtocol = 250
)

// AnnouncementMode is how a virtual router's VIPs are announced.
type AnnouncementMode string

const (
	// ModeVRRP elects one master node that holds the VIPs and announces
	// them with gratuitous ARP or neighbour advertisements. The default.
	ModeVRRP AnnouncementMode = "vrrp"
	// ModeBGP has every node whose tracked checks pass hold the VIPs on a
	// local interface and advertise them as host routes (/32, /128) to the
	// BGP peers of the bgp section, so that the routers spread the flows
	// over every healthy node with ECMP (active/active).
	ModeBGP AnnouncementMode = "bgp"
)

// BGP configures the BGP speaker of the agent, which advertises the VIPs of
// the virtual routers in mode bgp. It does not accept BGP connections unless
// listenPort is set: the node connects to its peers. With externalSpeaker
// set the agent speaks no BGP: it writes the routes into a kernel routing
// table for the node's own BGP daemon, and localASN, routerID, listenPort,
// peers and bfdProfile are not set.
type BGP struct {
	// LocalASN is this node's autonomous system number, 1 to 4294967294.
	// Peers with the same ASN are iBGP, the others eBGP. Required unless
	// externalSpeaker is set.
	// +optional
	LocalASN int64 `json:"localASN,omitempty"`
	// RouterID is this node's BGP identifier, an IPv4 address unique among
	// the speakers the peers see. Optional, default: the node's first
	// IPv4 address.
	// +optional
	RouterID string `json:"routerID,omitempty"`
	// ListenPort is the TCP port to accept BGP connections on, 1 to 65535.
	// Optional, default 0: no listener (the node connects to its peers, and
	// never conflicts with a BGP daemon on the node).
	// +optional
	ListenPort int32 `json:"listenPort,omitempty"`
	// Peers are the routers to advertise to: 1 to 16, unique by address.
	// IPv4 VIPs are advertised to IPv4 peers, IPv6 VIPs to IPv6 peers.
	// Required unless externalSpeaker is set.
	// +optional
	Peers []BGPPeer `json:"peers,omitempty"`
	// BFDProfile is the BFD timing of the peers whose bfd is true.
	// Optional: when omitted, the defaults of its fields apply
	// (300ms x 3).
	// +optional
	BFDProfile *BFDProfile `json:"bfdProfile,omitempty"`
	// GracefulShutdownWait is how long a node that stops or is drained
	// waits after re-advertising its VIPs with the GRACEFUL_SHUTDOWN
	// community (RFC 8326), and again after withdrawing them, for the
	// routers to move the traffic; 0 to 10m. Default 2s.
	// +optional
	GracefulShutdownWait *Duration `json:"gracefulShutdownWait,omitempty"`
	// ExternalSpeaker hands the announcement to a BGP daemon that already
	// runs on the node (FRR, frr-k8s): instead of speaking BGP the agent
	// writes a host route for each VIP it serves, while its tracked checks
	// pass, into a kernel routing table, for that daemon to redistribute.
	// Optional, default: the agent speaks BGP to peers itself.
	// +optional
	ExternalSpeaker *ExternalSpeaker `json:"externalSpeaker,omitempty"`
}

// ExternalSpeaker is where the agent writes the host routes of its VIPs for
// a BGP daemon of the node to redistribute (for FRR: "ip import-table" in
// zebra and "redistribute table" in bgpd).
type ExternalSpeaker struct {
	// Table is the kernel routing table the routes are written to: 1 to
	// 4294967295, not 253 (default), 254 (main) or 255 (local). The agent
	// owns the routes of its protocol in this table and removes the others
	// of that protocol. Required.
	Table int64 `json:"table"`
	// Protocol is the routing protocol number (rtm_protocol) the routes
	// carry, so that they can be told from other routes and matched in the
	// daemon's filters: 5 to 255, not one that /etc/iproute2/rt_protos
	// assigns to a routing daemon. Default 250.
	// +optional
	Protocol *int32 `json:"protocol,omitempty"`
}

// BGPPeer is one BGP neighbour of the node.
type BGPPeer struct {
	// Address is the peer's IP address, without prefix length. Required.
	Address string `json:"address"`
	// ASN is the peer's autonomous system number, 1 to 4294967294.
	// Required.
	ASN int64 `json:"asn"`
	// Port is the peer's TCP port, 1 to 65535. Default 179.
	// +optional
	Port int32 `json:"port,omitempty"`
	// SourceAddress is the local address the session is opened from, in
	// the peer's family; it is also the next hop of the advertised VIPs.
	// Optional, default: chosen by the kernel's routing.
	// +optional
	SourceAddress string `json:"sourceAddress,omitempty"`
	// PasswordFile is the absolute path of a file holding the TCP MD5
	// signature key (RFC 2385) of the session, 1 to 80 bytes; a trailing
	// newline is ignored. The key itself is never part of the
	// configuration (it comes from a Secret mounted as a file). Optional,
	// default: no key.
	// +optional
	PasswordFile string `json:"passwordFile,omitempty"`
	// HoldTime is the BGP hold time proposed to the peer: 3s to 65535s, in
	// whole seconds. Default 90s.
	// +optional
	HoldTime *Duration `json:"holdTime,omitempty"`
	// KeepaliveTime is the interval of keepalives: 1s up to the hold time,
	// in whole seconds. Default: a third of the hold time.
	// +optional
	KeepaliveTime *Duration `json:"keepaliveTime,omitempty"`
	// ConnectRetry is the wait between connection attempts, also after a
	// session reset: 2s to 1h in whole seconds. Default 5s.
	// +optional
	ConnectRetry *Duration `json:"connectRetry,omitempty"`
	// EBGPMultihop, when 2 to 255, allows an eBGP peer that many hops away
	// (the TTL of the session's packets). Optional, default 0: the peer is
	// directly connected. Not with bfd (BFD here is single-hop, RFC 5881).
	// +optional
	EBGPMultihop int32 `json:"ebgpMultihop,omitempty"`
	// BFD watches the session with BFD (single-hop, RFC 5880/5881) using
	// bgp.bfdProfile, so that a node that dies silently leaves the peer's
	// ECMP set within the detection time instead of the hold time.
	// Default false.
	// +optional
	BFD bool `json:"bfd,omitempty"`
}

// BFDProfile is the BFD timing of the sessions that use BFD. A peer that
// stops sending is declared down after minRxInterval x multiplier.
type BFDProfile struct {
	// MinTxInterval is the desired minimum interval between the BFD
	// packets this node sends: 10ms to 1m, in whole microseconds.
	// Default 300ms.
	// +optional
	MinTxInterval *Duration `json:"minTxInterval,omitempty"`
	// MinRxInterval is the required minimum interval between the BFD
	// packets this node receives: 10ms to 1m, in whole microseconds.
	// Default 300ms.
	// +optional
	MinRxInterval *Duration `json:"minRxInterval,omitempty"`
	// Multiplier is the detection multiplier, 1 to 255. Default 3.
	// +optional
	Multiplier *int32 `json:"multiplier,omitempty"`
}

// setBGPDefaults fills in the defaults of b's optional fields.
func setBGPDefaults(b *BGP) {
	if b == nil {
		return
	}
	if b.GracefulShutdownWait == nil {
		b.GracefulShutdownWait = &Duration{DefaultGracefulShutdownWait}
	}
	if b.ExternalSpeaker != nil {
		if b.ExternalSpeaker.Protocol == nil {
			b.ExternalSpeaker.Protocol = ptr[int32](DefaultRouteProtocol)
		}
		return
	}
	if b.BFDProfile == nil {
		b.BFDProfile = &BFDProfile{}
	}
	if b.BFDProfile.MinTxInterval == nil {
		b.BFDProfile.MinTxInterval = &Duration{DefaultBFDInterval}
	}
	if b.BFDProfile.MinRxInterval == nil {
		b.BFDProfile.MinRxInterval = &Duration{DefaultBFDInterval}
	}
	if b.BFDProfile.Multiplier == nil {
		b.BFDProfile.Multiplier = ptr[int32](DefaultBFDMultiplier)
	}
	for i := range b.Peers {
		p := &b.Peers[i]
		if p.Port == 0 {
			p.Port = 179
		}
		if p.HoldTime == nil {
			p.HoldTime = &Duration{DefaultBGPHoldTime}
		}
		if p.KeepaliveTime == nil {
			p.KeepaliveTime = &Duration{(p.HoldTime.Duration / 3).Truncate(time.Second)}
		}
		if p.ConnectRetry == nil {
			p.ConnectRetry = &Duration{DefaultBGPConnectRetry}
		}
	}
}
