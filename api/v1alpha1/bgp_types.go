package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Limits of the BGP section. The CRD's markers repeat these numbers
// (markers cannot name constants).
const (
	// MaxBGPPeers is the largest number of spec.bgp.peers.
	MaxBGPPeers = 16
	// MaxASN is the largest AS number (4294967295 is reserved, RFC 7300).
	MaxASN = 4294967294
)

// AnnouncementMode is how a virtual IP is announced to the network.
//
// +kubebuilder:validation:Enum=vrrp;bgp
type AnnouncementMode string

const (
	// AnnouncementVRRP elects one master node that holds the virtual IP
	// and announces it with gratuitous ARP or neighbour advertisements.
	// The default.
	AnnouncementVRRP AnnouncementMode = "vrrp"
	// AnnouncementBGP has every selected node whose track checks pass
	// hold the virtual IP and advertise it as a host route to the BGP
	// peers (active/active over ECMP).
	AnnouncementBGP AnnouncementMode = "bgp"
)

// IsBGP reports whether v is announced over BGP (mode bgp).
func (v *VirtualIP) IsBGP() bool { return v.Mode == AnnouncementBGP }

// BGP configures how the virtual IPs in mode bgp are announced: by the
// agent's own BGP speaker to peers (localASN, peers, bfdProfile, byNode),
// or by a BGP daemon that already runs on every node (externalSpeaker).
// The agent accepts no BGP connection unless listenPort is set: each node
// connects to its peers.
//
// +kubebuilder:validation:XValidation:rule="!has(self.externalSpeaker) || !has(self.peers)",message="externalSpeaker and peers exclude each other: with externalSpeaker the nodes' own BGP daemon talks to the routers; remove peers, or remove externalSpeaker to have the agent speak BGP",fieldPath=".externalSpeaker"
// +kubebuilder:validation:XValidation:rule="!has(self.externalSpeaker) || !(has(self.localASN) || has(self.listenPort) || has(self.bfdProfile) || has(self.byNode))",message="localASN, listenPort, bfdProfile and byNode configure the agent's BGP speaker, which does not run with externalSpeaker: remove them",fieldPath=".externalSpeaker"
// +kubebuilder:validation:XValidation:rule="!has(self.peers) || size(self.peers) == 0 || has(self.localASN)",message="localASN is required with peers: set the nodes' AS number (byNode may override it per node)",fieldPath=".localASN"
// +kubebuilder:validation:XValidation:rule="!has(self.peers) || !has(self.localASN) || self.peers.all(p, !has(p.ebgpMultihop) || p.asn != self.localASN)",message="ebgpMultihop applies to eBGP peers only: a peer whose asn is localASN is iBGP; remove ebgpMultihop from it",fieldPath=".peers"
type BGP struct {
	// localASN is the nodes' autonomous system number, 1 to 4294967294;
	// peers of the same ASN are iBGP, the others eBGP. Required with
	// peers; byNode may set another per node (one ASN per rack).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967294
	LocalASN *int64 `json:"localASN,omitempty"`

	// listenPort is the TCP port, 1 to 65535, on which the agents accept
	// BGP connections. Optional: when unset the agents listen on no port
	// (they connect to their peers, and never conflict with a BGP daemon
	// of the node on port 179).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ListenPort *int32 `json:"listenPort,omitempty"`

	// peers are the routers every selected node advertises the bgp virtual
	// IPs to: 1 to 16, each address once. IPv4 virtual IPs are advertised
	// to the IPv4 peers, IPv6 ones to the IPv6 peers. Not with
	// externalSpeaker.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=address
	Peers []BGPPeer `json:"peers,omitempty"`

	// bfdProfile is the BFD timing of the peers whose bfd is true.
	// Optional: when unset, 300ms x 3 (a node that dies silently leaves
	// the routers' ECMP set within 900ms).
	// +optional
	BFDProfile *BFDProfile `json:"bfdProfile,omitempty"`

	// gracefulShutdownWait is how long a node that stops or is drained
	// waits after re-advertising its virtual IPs with the
	// GRACEFUL_SHUTDOWN community (RFC 8326), and again after withdrawing
	// them, for the routers to move the traffic away: 0s to 10m. Optional,
	// default 2s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]{1,3})?s|[0-9]+(ms|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('10m')",message="gracefulShutdownWait must be at most 10m"
	GracefulShutdownWait *metav1.Duration `json:"gracefulShutdownWait,omitempty"`

	// externalSpeaker hands the announcement to a BGP daemon that already
	// runs on every selected node (FRR, frr-k8s): instead of speaking BGP,
	// each agent writes a host route for every bgp virtual IP it serves
	// (while its track checks pass) into a kernel routing table, for that
	// daemon to redistribute. Not with peers, localASN, listenPort,
	// bfdProfile or byNode.
	// +optional
	ExternalSpeaker *ExternalSpeaker `json:"externalSpeaker,omitempty"`

	// byNode sets, per node, what differs between the nodes' BGP
	// speakers: the local ASN (an AS per rack), the router ID, and the
	// source addresses of the sessions. At most 64 nodes, each once.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=nodeName
	ByNode []BGPNode `json:"byNode,omitempty"`
}

// BGPPeer is one BGP neighbour (a router of the fabric) of every selected
// node.
//
// +kubebuilder:validation:XValidation:rule="!has(self.ebgpMultihop) || !has(self.bfd) || !self.bfd",message="BFD here is single-hop (RFC 5881) and needs a directly connected peer: remove ebgpMultihop or set bfd: false",fieldPath=".ebgpMultihop"
// +kubebuilder:validation:XValidation:rule="!has(self.keepaliveTime) || duration(self.keepaliveTime) <= (has(self.holdTime) ? duration(self.holdTime) : duration('90s'))",message="keepaliveTime must be at most holdTime (default 90s); a third of it is usual",fieldPath=".keepaliveTime"
type BGPPeer struct {
	// address is the peer's IP address, IPv4 or IPv6, without prefix
	// length and in canonical form; a unicast address, not link-local.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip.isCanonical(self)",message="address must be an IP address without prefix length, in canonical form (e.g. 192.0.2.1 or 2001:db8::1)"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).isGlobalUnicast()",message="address must be a unicast address: not loopback, link-local, multicast, unspecified or broadcast"
	Address string `json:"address"`

	// asn is the peer's autonomous system number, 1 to 4294967294.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967294
	ASN int64 `json:"asn"`

	// port is the peer's TCP port, 1 to 65535. Optional, default 179.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`

	// passwordSecretRef names the key of a Secret that holds the TCP MD5
	// signature key (RFC 2385) of the sessions, 1 to 80 bytes (a trailing
	// newline is ignored). There is no inline password field: the
	// operator reads the Secret and the node companion writes the key to
	// a file of mode 0600 beside the agent's configuration, which names
	// only that file. Optional: when unset the sessions are not signed.
	// +optional
	PasswordSecretRef *SecretKeyReference `json:"passwordSecretRef,omitempty"`

	// holdTime is the BGP hold time proposed to the peer, 3s to 65535s in
	// whole seconds. Optional, default 90s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]{1,3})?s|[0-9]+(ms|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('3s') && duration(self) <= duration('65535s') && duration(self).getMilliseconds() % 1000 == 0",message="holdTime must be between 3s and 65535s in whole seconds (RFC 4271)"
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// keepaliveTime is the interval of the keepalives, 1s up to holdTime
	// in whole seconds. Optional, default a third of holdTime.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]{1,3})?s|[0-9]+(ms|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self).getMilliseconds() % 1000 == 0",message="keepaliveTime must be at least 1s, in whole seconds"
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// connectRetry is the wait between connection attempts, also after a
	// session reset: 2s to 1h in whole seconds. Optional, default 5s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]{1,3})?s|[0-9]+(ms|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('2s') && duration(self) <= duration('1h') && duration(self).getMilliseconds() % 1000 == 0",message="connectRetry must be between 2s and 1h in whole seconds"
	ConnectRetry *metav1.Duration `json:"connectRetry,omitempty"`

	// ebgpMultihop, 2 to 255, allows an eBGP peer that many hops away (the
	// TTL of the session's packets). Optional: when unset the peer is
	// directly connected. Not with bfd, nor for an iBGP peer.
	// +optional
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=255
	EBGPMultihop *int32 `json:"ebgpMultihop,omitempty"`

	// bfd watches the sessions with BFD (single-hop, RFC 5880/5881) with
	// spec.bgp.bfdProfile, so that a node that dies silently leaves the
	// peer's ECMP set within the detection time instead of the hold
	// time. Default false.
	// +optional
	BFD bool `json:"bfd,omitempty"`
}

// BFDProfile is the BFD timing of the sessions that use BFD: a peer that
// stops sending is declared down after minRxInterval x multiplier.
type BFDProfile struct {
	// minTxInterval is the desired minimum interval between the BFD
	// packets a node sends, 10ms to 1m. Optional, default 300ms.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]{1,3})?s|[0-9]+(ms|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10ms') && duration(self) <= duration('1m')",message="minTxInterval must be between 10ms and 1m: BFD below 10ms is not supported"
	MinTxInterval *metav1.Duration `json:"minTxInterval,omitempty"`

	// minRxInterval is the required minimum interval between the BFD
	// packets a node receives, 10ms to 1m. Optional, default 300ms.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]{1,3})?s|[0-9]+(ms|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10ms') && duration(self) <= duration('1m')",message="minRxInterval must be between 10ms and 1m: BFD below 10ms is not supported"
	MinRxInterval *metav1.Duration `json:"minRxInterval,omitempty"`

	// multiplier is the detection multiplier, 1 to 255. Optional,
	// default 3.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	Multiplier *int32 `json:"multiplier,omitempty"`
}

// ExternalSpeaker is where the agents write the host routes of the
// virtual IPs they serve, for a BGP daemon of the node to redistribute
// (FRR: "ip import-table <table>" in zebra and "redistribute table
// <table>" in bgpd).
type ExternalSpeaker struct {
	// table is the kernel routing table the routes go to: 1 to
	// 4294967295, not 253 (default), 254 (main) or 255 (local). The agent
	// owns the routes of its protocol in this table.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:XValidation:rule="self != 253 && self != 254 && self != 255",message="table must not be 253 (default), 254 (main) or 255 (local): use a table of its own, e.g. 198"
	Table int64 `json:"table"`

	// protocol is the routing protocol number (rtm_protocol) of the
	// routes, so that the daemon's filters can match them: 5 to 255, not
	// one that /etc/iproute2/rt_protos gives to a routing daemon.
	// Optional, default 250.
	// +optional
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=255
	Protocol *int32 `json:"protocol,omitempty"`
}

// BGPNode is what differs for one node's BGP speaker.
type BGPNode struct {
	// nodeName is the name of the Node.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName"`

	// localASN is the node's autonomous system number, 1 to 4294967294,
	// in place of spec.bgp.localASN. Optional.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967294
	LocalASN *int64 `json:"localASN,omitempty"`

	// routerID is the node's BGP identifier, an IPv4 address unique among
	// the speakers the peers see. Optional, default: the node's first IPv4
	// address (an IPv6-only node must set it).
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4 && ip.isCanonical(self) && self != '0.0.0.0'",message="routerID must be an IPv4 address other than 0.0.0.0 (BGP identifiers are 32 bits), usually the node's own"
	RouterID string `json:"routerID,omitempty"`

	// sourceAddresses are the node's addresses the sessions are opened
	// from: at most one IPv4 address (for the IPv4 peers) and one IPv6
	// address (for the IPv6 peers); the source address is also the next
	// hop of the advertised routes. Optional, default: chosen by the
	// node's routing.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="self.all(a, isIP(a) && ip.isCanonical(a))",message="sourceAddresses must be IP addresses in canonical form (e.g. 192.0.2.21 or 2001:db8::21)"
	// +kubebuilder:validation:XValidation:rule="size(self) < 2 || !isIP(self[0]) || !isIP(self[1]) || ip(self[0]).family() != ip(self[1]).family()",message="sourceAddresses holds at most one address per family: one IPv4 and one IPv6"
	SourceAddresses []string `json:"sourceAddresses,omitempty"`
}

// BGPPeerStatus is the state of one BGP session of a node, as its agent
// reports it.
type BGPPeerStatus struct {
	// address is the peer's address.
	// +required
	// +kubebuilder:validation:MaxLength=45
	Address string `json:"address"`
	// state is the session state: idle, connect, active, opensent,
	// openconfirm or established ("" while not running).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	State string `json:"state,omitempty"`
	// bfd is the BFD state: admin-down, down, init or up; empty when the
	// peer does not use BFD.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	BFD string `json:"bfd,omitempty"`
	// advertised is the number of routes the node advertises to the peer.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Advertised int32 `json:"advertised,omitempty"`
}
