package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Limits of the API. The CRD's markers repeat these numbers (markers cannot
// name constants); the envtest tests check that the two agree.
const (
	// MaxVirtualIPs is the largest number of spec.virtualIPs.
	MaxVirtualIPs = 16
	// MaxServices is the largest number of spec.services.
	MaxServices = 16
	// MaxStaticBackends is the largest number of static backends of one
	// service.
	MaxStaticBackends = 64
	// MaxTrackChecks is the largest number of spec.trackChecks.
	MaxTrackChecks = 16
	// MaxNodes is the largest number of nodes of one LoadBalancerConfig
	// (spec.priorities.byNode, status.nodes): an agent has at most 64
	// unicast peers.
	MaxNodes = 64
	// MaxExpectStatus is the largest number of expectStatus codes.
	MaxExpectStatus = 16
	// MaxCommandArgs is the largest number of elements of an exec command.
	MaxCommandArgs = 32
	// MaxConditions is the largest number of status.conditions.
	MaxConditions = 8
)

// Defaults, applied by the API server from the CRD's schema and by
// SetDefaults for `vipvs render`.
const (
	// DefaultVRRPVersion is the default of spec.vrrp.version.
	DefaultVRRPVersion int32 = 3
	// DefaultAgentStatusPort is the default of spec.agentStatusPort.
	DefaultAgentStatusPort int32 = 9444
	// DefaultAdvertInterval is the default of spec.vrrp.advertInterval.
	DefaultAdvertInterval = "1s"
	// DefaultPreemptDelay is the default of spec.vrrp.preemptDelay.
	DefaultPreemptDelay = "0s"
	// DefaultNamePriority is the priority of the first node in name order
	// (see Priorities); the next gets one less, and so on.
	DefaultNamePriority int32 = 100
	// DefaultWeight is the default IPVS weight of a backend.
	DefaultWeight int32 = 1
	// DefaultCheckInterval is the default interval of a check.
	DefaultCheckInterval = "2s"
	// DefaultCheckTimeout is the timeout of a check that sets none, unless
	// its interval is shorter (then the interval). It is applied by the
	// renderer, not by the schema, because it depends on the interval.
	DefaultCheckTimeout = "1s"
	// DefaultCheckRise is the default rise of a check.
	DefaultCheckRise int32 = 2
	// DefaultCheckFall is the default fall of a check.
	DefaultCheckFall int32 = 3
	// DefaultHTTPPath is the default path of an HTTP health check.
	DefaultHTTPPath = "/"
	// DefaultExpectStatus is the default expected HTTP status code.
	DefaultExpectStatus int32 = 200
)

// LoadBalancerConfig describes virtual IPs held by VRRP among a set of
// nodes (or, in mode bgp, advertised over BGP by every healthy node), and
// the IPVS virtual services offered on them. It is
// cluster-scoped; one object per purpose (e.g. "control-plane" for the API
// VIP, "ingress" for the ingress VIPs). The operator renders from it one
// agent configuration per selected node and reports, per node, whether the
// agent runs it and, per VIP, which node is master.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=lbc
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="VIP",type=string,JSONPath=`.spec.virtualIPs[0].address`,description="The first virtual IP address (Masters lists them all)."
// +kubebuilder:printcolumn:name="Masters",type=string,JSONPath=`.status.masters`,description="Each virtual IP address with its master node, as address=node (mode bgp: address=bgp:node+node)."
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,description="Whether every VIP has a master (mode bgp: is advertised) and every node runs its rendered configuration."
// +kubebuilder:printcolumn:name="Degraded",type=string,JSONPath=`.status.conditions[?(@.type=="Degraded")].reason`,description="Why something needs attention (e.g. RouterFault, ConfigRejected, AgentNotRunning, NotAdvertised); AsExpected when nothing does."
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`,priority=1,description="activeStandby or spread."
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LoadBalancerConfig struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata; the name says the purpose, e.g.
	// "control-plane" or "ingress".
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired load balancer: nodes, virtual IPs, VRRP settings,
	// services and track checks.
	// +required
	Spec LoadBalancerConfigSpec `json:"spec"`

	// status is the load balancer as observed by the operator.
	// +optional
	Status LoadBalancerConfigStatus `json:"status,omitempty"`
}

// LoadBalancerConfigList is a list of LoadBalancerConfig.
//
// +kubebuilder:object:root=true
type LoadBalancerConfigList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the list's metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the LoadBalancerConfigs.
	Items []LoadBalancerConfig `json:"items"`
}

// LoadBalancerConfigSpec is the desired state of a LoadBalancerConfig.
//
// +kubebuilder:validation:XValidation:rule="!has(self.vrrp) || self.vrrp.version != 2 || self.virtualIPs.all(v, !isIP(v.address) || (has(v.mode) && v.mode == 'bgp') || ip(v.address).family() == 4)",message="VRRP version 2 supports IPv4 only: use version 3 for IPv6 virtualIPs",fieldPath=".vrrp.version"
// +kubebuilder:validation:XValidation:rule="!has(self.priorities) || !has(self.priorities.byNode) || !has(self.mode) || self.mode == 'activeStandby'",message="priorities.byNode applies only to mode activeStandby: spread mode orders the nodes by name for each VIP",fieldPath=".priorities.byNode"
// +kubebuilder:validation:XValidation:rule="!has(self.preemptAfterChecks) || !self.preemptAfterChecks || (has(self.trackChecks) && size(self.trackChecks) > 0)",message="preemptAfterChecks needs trackChecks: there is no check to wait for",fieldPath=".preemptAfterChecks"
// +kubebuilder:validation:XValidation:rule="!has(self.services) || self.services.all(s, !has(s.backends.static) || s.backends.static.all(b, !isIP(b.address) || self.virtualIPs.exists(v, isIP(v.address) && ip(v.address).family() == ip(b.address).family())))",message="every static backend address must be in the family (IPv4 or IPv6) of one of the virtualIPs",fieldPath=".services"
// +kubebuilder:validation:XValidation:rule="!self.virtualIPs.exists(v, has(v.mode) && v.mode == 'bgp') || (has(self.bgp) && ((has(self.bgp.peers) && size(self.bgp.peers) > 0) || has(self.bgp.externalSpeaker)))",message="a virtual IP in mode bgp needs spec.bgp with peers (or externalSpeaker, for a BGP daemon of the nodes): add them, or use mode vrrp",fieldPath=".bgp"
// +kubebuilder:validation:XValidation:rule="!has(self.bgp) || !has(self.bgp.peers) || self.virtualIPs.all(v, !has(v.mode) || v.mode != 'bgp' || !isIP(v.address) || self.bgp.peers.exists(p, isIP(p.address) && ip(p.address).family() == ip(v.address).family()))",message="every virtual IP in mode bgp needs a BGP peer of its family (IPv4 or IPv6): routes are advertised to the peers of their family; add a peer, or remove the virtual IP",fieldPath=".bgp.peers"
type LoadBalancerConfigSpec struct {
	// nodeSelector selects the nodes that run the agent and share the
	// virtual IPs (for the API VIP, typically
	// node-role.kubernetes.io/control-plane). It must not be empty: an empty
	// selector would select every node. A node that disappears from the API
	// is not taken out of the other nodes' peer lists until it is deleted
	// (the operator never shrinks a peer list by accident).
	// +required
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="nodeSelector must not be empty: an empty selector selects every node"
	NodeSelector metav1.LabelSelector `json:"nodeSelector"`

	// virtualIPs are the virtual IP addresses, 1 to 16. Each is a VRRP
	// virtual router of its own (one address, one VRID), or, in mode bgp,
	// a host route that every healthy node advertises. For dual stack,
	// list an IPv4 and an IPv6 entry. Names and addresses are unique; a VRID
	// is unique among the entries of one address family on one interface
	// (an entry without interface counts as being on every interface).
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b.address == a.address))",message="each virtualIPs address must appear once"
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.all(b, a.name == b.name || !has(a.vrid) || !has(b.vrid) || a.vrid != b.vrid || !isIP(a.address) || !isIP(b.address) || ip(a.address).family() != ip(b.address).family() || (has(a.interface) && has(b.interface) && a.interface != b.interface)))",message="vrid must be unique among the virtualIPs of one address family on one interface (an entry without interface may be on any interface)"
	VirtualIPs []VirtualIP `json:"virtualIPs"`

	// vrrp holds the VRRP settings shared by every virtual IP. Optional:
	// when omitted, the defaults of its fields apply.
	// +optional
	// +kubebuilder:default={}
	VRRP *VRRP `json:"vrrp,omitempty"`

	// mode is how the virtual IPs are spread over the nodes. activeStandby
	// (the default): every VIP has the same node priorities, so one node is
	// master of all VIPs (the API VIP). spread: the preferred master moves
	// one node along for each VIP, so that N VIPs spread over N nodes
	// (ingress). See priorities for the exact rule.
	// +optional
	// +kubebuilder:default=activeStandby
	Mode Mode `json:"mode,omitempty"`

	// priorities sets the VRRP priority of each node. Optional: when
	// omitted, priorities follow the order of the node names (see
	// Priorities).
	// +optional
	Priorities *Priorities `json:"priorities,omitempty"`

	// services are the IPVS virtual services, up to 16. Each is offered on
	// every virtual IP (one IPVS virtual service per VIP address); a port
	// and protocol appears once. Use another LoadBalancerConfig for VIPs
	// that offer other services. Optional: without services the VIPs only
	// move (the workload listens on the VIP itself).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b.port == a.port && b.protocol == a.protocol))",message="each port and protocol must appear once among services: every service is offered on every virtual IP"
	Services []VirtualService `json:"services,omitempty"`

	// trackChecks are health checks that every selected node runs against
	// itself (e.g. its own kube-apiserver's /readyz); while one fails, the
	// node's priority for every virtual IP changes by the check's weight, or
	// the node gives the VIPs up (weight 0). Up to 16, with unique names.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	TrackChecks []TrackCheck `json:"trackChecks,omitempty"`

	// preemptAfterChecks keeps a node from preempting until every track
	// check has been healthy since its agent started: a rebooted master
	// does not take the VIPs back before its API server is ready, whatever
	// the weights. Needs trackChecks. Default false.
	// +optional
	PreemptAfterChecks bool `json:"preemptAfterChecks,omitempty"`

	// agentStatusPort is the port, on the node's 127.0.0.1, of the agent's
	// HTTP endpoint (/healthz for the static pod's liveness probe, /readyz,
	// /metrics, /status), 1024 to 65535. Each LoadBalancerConfig runs its
	// own agent on a node, so two LoadBalancerConfigs that select a common
	// node need different ports. Default 9444.
	// +optional
	// +kubebuilder:default=9444
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=65535
	AgentStatusPort int32 `json:"agentStatusPort,omitempty"`

	// bgp configures the announcement of the virtual IPs in mode bgp: the
	// BGP peers (the fabric's routers) every selected node advertises them
	// to, BFD, graceful shutdown, or instead a BGP daemon of the nodes
	// (externalSpeaker). Required when a virtual IP is in mode bgp.
	// +optional
	BGP *BGP `json:"bgp,omitempty"`

	// connectionSync configures the synchronisation of established
	// connections between the selected nodes (the kernel's IPVS sync
	// daemon, a master and a backup on every node), so that they survive
	// the virtual IPs moving: a failover, a graceful stop, an upgrade of
	// the agents. On by default when services are set.
	// +optional
	ConnectionSync *ConnectionSync `json:"connectionSync,omitempty"`
}

// ConnectionSync configures the kernel's IPVS connection synchronisation.
// The kernel runs one pair of sync daemons per node: one
// LoadBalancerConfig per node may enable it (the others set enabled:
// false). Its protocol is multicast only: the selected nodes must share a
// segment that carries multicast, even where VRRP is unicast.
type ConnectionSync struct {
	// enabled runs the sync daemons on every selected node. Default true;
	// false lets established connections break when a virtual IP moves.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// interface is the network interface of the sync messages. Default:
	// the interface of the first virtual IP.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[^/\s:]+$`
	Interface string `json:"interface,omitempty"`

	// syncID is the ID of the sync messages, 0 to 255: a node accepts only
	// messages of its ID (0: of any), so that two clusters on one segment
	// keep their tables apart. Default: the VRID of the first virtual IP.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	SyncID *int32 `json:"syncID,omitempty"`

	// multicastGroup is the IPv4 or IPv6 multicast group of the sync
	// messages. Default 224.0.0.81 (ff02::81 when every virtual IP is IPv6).
	// +optional
	// +kubebuilder:validation:MaxLength=45
	MulticastGroup string `json:"multicastGroup,omitempty"`

	// port is the UDP port of the sync messages, 1 to 65535. Default 8848.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`

	// ttl is the multicast TTL (IPv6: hop limit) of the sync messages, 1 to
	// 255. Default 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	TTL *int32 `json:"ttl,omitempty"`
}

// VirtualIP is one virtual IP address and the VRRP virtual router that
// holds it (or, in mode bgp, the nodes that advertise it).
//
// +kubebuilder:validation:XValidation:rule="(has(self.mode) && self.mode == 'bgp') || has(self.vrid)",message="vrid is required for a virtual IP in mode vrrp: set a VRID (1 to 255) unique on the segment, or set mode: bgp",fieldPath=".vrid"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'bgp' || !has(self.vrid)",message="vrid is a VRRP setting and does not apply to a virtual IP in mode bgp: remove it",fieldPath=".vrid"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'bgp' || !has(self.prefixLength) || !isIP(self.address) || self.prefixLength == (ip(self.address).family() == 4 ? 32 : 128)",message="a virtual IP in mode bgp is advertised as a host route: remove prefixLength (or set 32 for IPv4, 128 for IPv6)",fieldPath=".prefixLength"
// +kubebuilder:validation:XValidation:rule="!has(self.prefixLength) || !isIP(self.address) || self.prefixLength <= (ip(self.address).family() == 4 ? 32 : 128)",message="prefixLength must be at most 32 for an IPv4 address and at most 128 for IPv6",fieldPath=".prefixLength"
type VirtualIP struct {
	// name identifies the virtual IP (and its virtual router) in the
	// status, logs, metrics and notify commands: a DNS-1123 label (at most
	// 63 lower-case letters, digits and '-'), e.g. "api" or "ingress-v4".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// address is the virtual IP address, IPv4 or IPv6, without prefix
	// length and in canonical form (e.g. "192.0.2.10" or "2001:db8::10",
	// lower-case, zeros compressed). It must be a unicast address: not
	// loopback, link-local, multicast, unspecified or broadcast.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip.isCanonical(self)",message="address must be an IP address without prefix length, in canonical form (e.g. 192.0.2.10 or 2001:db8::10)"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).isGlobalUnicast()",message="address must be a unicast address: not loopback, link-local, multicast, unspecified or broadcast"
	Address string `json:"address"`

	// vrid is the VRRP Virtual Router Identifier, 1 to 255. It is set
	// explicitly (never derived from a name) and must not collide with
	// another VRRP router on the same network segment, including routers
	// outside this cluster. Required in mode vrrp; not set in mode bgp
	// (there is no virtual router).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	VRID int32 `json:"vrid,omitempty"`

	// mode is how the virtual IP is announced. vrrp (the default): one
	// node, the VRRP master, holds it and answers ARP / neighbour
	// solicitations for it. bgp: every selected node whose track checks
	// pass holds it (not ARP-visible) and advertises it as a host route
	// (/32, /128) to spec.bgp's peers, or hands it to the node's own BGP
	// daemon (spec.bgp.externalSpeaker); the routers spread the flows
	// over the nodes with ECMP (active/active). A bgp virtual IP needs
	// spec.bgp and sets neither vrid nor a prefixLength shorter than a
	// host route.
	// +optional
	Mode AnnouncementMode `json:"mode,omitempty"`

	// interface is the network interface of the nodes that carries the
	// virtual IP and the VRRP advertisements: a Linux interface name, 1 to
	// 15 characters without '/', ':' or whitespace. Optional: when empty,
	// each node uses the interface whose subnet holds the address (the
	// interface with an address whose prefix contains the VIP); in mode
	// bgp, the loopback interface "lo" (the agent keeps the node from
	// answering ARP for it on its other interfaces).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[^\s/:]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="interface must not be '.' or '..'"
	Interface string `json:"interface,omitempty"`

	// prefixLength is the prefix length the address is added with, 1 to 32
	// for IPv4 and 1 to 128 for IPv6. Optional: when unset, the address is
	// added as a host address (/32 or /128), without a subnet route.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	PrefixLength *int32 `json:"prefixLength,omitempty"`
}

// VRRP holds the VRRP settings shared by every virtual router of a
// LoadBalancerConfig.
//
// +kubebuilder:validation:XValidation:rule="!has(self.passwordSecretRef) || (has(self.version) && self.version == 2)",message="passwordSecretRef applies only to VRRP version 2 (version 3 has no authentication): remove it or set version: 2",fieldPath=".passwordSecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.checksumMode) || !has(self.version) || self.version == 3",message="checksumMode applies only to VRRP version 3 (version 2 has one checksum): remove it",fieldPath=".checksumMode"
// +kubebuilder:validation:XValidation:rule="!has(self.advertInterval) || (has(self.version) && self.version != 3) || (duration(self.advertInterval) >= duration('10ms') && duration(self.advertInterval) <= duration('40950ms') && duration(self.advertInterval).getMilliseconds() % 10 == 0)",message="advertInterval must be between 10ms and 40.95s in steps of 10ms for VRRP version 3",fieldPath=".advertInterval"
// +kubebuilder:validation:XValidation:rule="!has(self.advertInterval) || !has(self.version) || self.version != 2 || (duration(self.advertInterval) >= duration('1s') && duration(self.advertInterval) <= duration('255s') && duration(self.advertInterval).getMilliseconds() % 1000 == 0)",message="advertInterval must be between 1s and 4m15s in whole seconds for VRRP version 2",fieldPath=".advertInterval"
// +kubebuilder:validation:XValidation:rule="!has(self.preempt) || !has(self.preemptDelay) || self.preempt || duration(self.preemptDelay) == duration('0s')",message="preemptDelay must be 0s when preempt is false: a router that does not preempt has nothing to delay",fieldPath=".preemptDelay"
type VRRP struct {
	// version is the VRRP version: 3 (RFC 9568, IPv4 and IPv6; the
	// default) or 2 (RFC 3768, IPv4 only, for virtual routers shared with
	// keepalived nodes that run version 2).
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Enum=2;3
	Version int32 `json:"version,omitempty"`

	// advertInterval is the interval between advertisements sent by the
	// master, as a duration string ("1s", "100ms"). Version 3: 10ms to
	// 40.95s in steps of 10ms. Version 2: 1s to 255s in whole seconds. A
	// backup takes over after about three intervals without
	// advertisements. Default "1s".
	// +optional
	// +kubebuilder:default="1s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]{1,3})?s|[0-9]+(ms|m|h))+$`
	AdvertInterval *metav1.Duration `json:"advertInterval,omitempty"`

	// unicast sends advertisements by unicast to the other selected nodes
	// (their first InternalIP address of the VIP's family, from the Node's
	// status) and drops advertisements from any other source; the default,
	// true, works on networks that filter multicast. false sends them to
	// the VRRP multicast group (224.0.0.18 or ff02::12).
	// +optional
	// +kubebuilder:default=true
	Unicast *bool `json:"unicast,omitempty"`

	// checksumMode is how the checksum of sent VRRPv3 IPv4 advertisements
	// is computed: pseudoHeader (with the IPv4 pseudo-header, as keepalived
	// and FRR do; what the agent uses when unset) or rfc9568 (without, as
	// RFC 9568 §5.2.8 says). Received advertisements are accepted with
	// either. Only with version 3; it applies to the IPv4 virtual IPs
	// (IPv6 always includes the pseudo-header).
	// +optional
	ChecksumMode ChecksumMode `json:"checksumMode,omitempty"`

	// passwordSecretRef names the key of a Secret that holds the VRRPv2
	// simple text authentication password (keepalived's auth_type PASS), 1
	// to 8 bytes. Only with version 2. There is no inline password field:
	// the password is read from the Secret by the operator and written
	// only into the agents' configuration files on the nodes. Note that
	// VRRPv2 sends it in clear text: it protects against mistakes, not
	// attacks. Optional: when unset, advertisements are not authenticated.
	// +optional
	PasswordSecretRef *SecretKeyReference `json:"passwordSecretRef,omitempty"`

	// preempt lets a node take the virtual IPs over from a master of lower
	// priority. Default true.
	// +optional
	// +kubebuilder:default=true
	Preempt *bool `json:"preempt,omitempty"`

	// preemptDelay is how long a node that could preempt waits after its
	// agent starts before it does, as a duration string; 0s to 1h, and
	// only 0s when preempt is false. Default "0s".
	// +optional
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]{1,3})?s|[0-9]+(ms|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('1h')",message="preemptDelay must be at most 1h"
	PreemptDelay *metav1.Duration `json:"preemptDelay,omitempty"`
}

// ChecksumMode selects how the checksum of a VRRPv3 IPv4 advertisement is
// computed when sending.
//
// +kubebuilder:validation:Enum=pseudoHeader;rfc9568
type ChecksumMode string

const (
	// ChecksumPseudoHeader includes the IPv4 pseudo-header in the checksum,
	// as keepalived and FRR do.
	ChecksumPseudoHeader ChecksumMode = "pseudoHeader"
	// ChecksumRFC9568 leaves the IPv4 pseudo-header out, as RFC 9568 §5.2.8
	// specifies for IPv4.
	ChecksumRFC9568 ChecksumMode = "rfc9568"
)

// SecretKeyReference names one key of a Secret. The LoadBalancerConfig is
// cluster-scoped, so the namespace is explicit.
type SecretKeyReference struct {
	// namespace is the Secret's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
	// name is the Secret's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// key is the key in the Secret's data, e.g. "password" or "ca.crt".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// Mode is how the virtual IPs of a LoadBalancerConfig are spread over the
// nodes.
//
// +kubebuilder:validation:Enum=activeStandby;spread
type Mode string

const (
	// ModeActiveStandby gives every virtual IP the same node priorities:
	// one node is master of all of them.
	ModeActiveStandby Mode = "activeStandby"
	// ModeSpread rotates the node order by one for each virtual IP, so that
	// the virtual IPs are spread over the nodes.
	ModeSpread Mode = "spread"
)

// Priorities sets the VRRP priority of each node; the node of highest
// priority that is up is master. The rule:
//
//   - A node listed in byNode has that priority, for every virtual IP.
//   - The other selected nodes (all of them when byNode is empty) are
//     sorted by name (byte order) and get 100, 99, 98, ... in that order:
//     when all are up, the first name is master. List a node in byNode
//     with a priority above 100 to prefer it.
//   - In spread mode byNode is not allowed: for the virtual IP at index j
//     of virtualIPs, the n selected nodes sorted by name are rotated by j,
//     so node k (0-based) gets 100 - ((k - j) mod n); the VIP at index j
//     prefers node j mod n.
//
// Name-ordered priorities change when a node whose name sorts before
// others joins or leaves; list the nodes in byNode where the master must
// not move.
type Priorities struct {
	// byNode lists nodes by name with their priority, 1 to 254; only in
	// mode activeStandby. At most 64 nodes, each once.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=nodeName
	ByNode []NodePriority `json:"byNode,omitempty"`
}

// NodePriority is the VRRP priority of one node.
type NodePriority struct {
	// nodeName is the name of the Node.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName"`
	// priority is the node's VRRP priority, 1 to 254 (255 is reserved for
	// the owner of an address, which a virtual IP never is).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=254
	Priority int32 `json:"priority"`
}

// VirtualService is an IPVS virtual service, offered on every virtual IP of
// the LoadBalancerConfig.
//
// +kubebuilder:validation:XValidation:rule="!(self.forwarding in ['DR', 'Tunnel']) || ((!has(self.backends.selectedNodes) || !has(self.backends.selectedNodes.port) || self.backends.selectedNodes.port == self.port) && (!has(self.backends.static) || self.backends.static.all(b, !has(b.port) || b.port == self.port)))",message="forwarding DR and Tunnel cannot change the port: the backends' port must be unset or equal to port",fieldPath=".backends"
type VirtualService struct {
	// name identifies the service in the status, logs and metrics: a
	// DNS-1123 label, e.g. "api" or "https".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// port is the port of the virtual service on each virtual IP, 1 to
	// 65535.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// protocol is the transport protocol: TCP (the default), UDP or SCTP.
	// +optional
	// +kubebuilder:default=TCP
	Protocol Protocol `json:"protocol,omitempty"`

	// scheduler is the IPVS scheduler that picks a backend for a new
	// connection: rr (round robin), wrr (weighted round robin), lc (least
	// connections), wlc (weighted least connections; the default), sh
	// (source hashing) or mh (Maglev hashing).
	// +optional
	// +kubebuilder:default=wlc
	Scheduler Scheduler `json:"scheduler,omitempty"`

	// persistenceSeconds makes connections from one client go to the same
	// backend for this many seconds after its last connection ends, 1 to
	// 86400 (IPVS persistence, keepalived's persistence_timeout). Optional:
	// when unset, connections are scheduled one by one.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	PersistenceSeconds *int32 `json:"persistenceSeconds,omitempty"`

	// forwarding is how IPVS forwards packets to the backends: NAT (the
	// default; the master rewrites the destination, and the agent adds the
	// SNAT rules that make replies come back through it), DR (direct
	// routing: the backends must hold the VIP on a non-ARPing interface and
	// reply directly) or Tunnel (IP-in-IP to the backends). DR and Tunnel
	// cannot change the port.
	// +optional
	// +kubebuilder:default=NAT
	Forwarding ForwardingMethod `json:"forwarding,omitempty"`

	// backends are where the service's connections go: the selected nodes,
	// or a static list of addresses. Exactly one of the two.
	// +required
	Backends Backends `json:"backends"`

	// healthCheck is the health check of each backend: a backend that fails
	// it gets weight 0 (no new connections) until it is healthy again.
	// Optional: without it every backend is always in service.
	// +optional
	HealthCheck *ServiceHealthCheck `json:"healthCheck,omitempty"`
}

// Protocol is the transport protocol of a virtual service.
//
// +kubebuilder:validation:Enum=TCP;UDP;SCTP
type Protocol string

const (
	// ProtocolTCP is TCP.
	ProtocolTCP Protocol = "TCP"
	// ProtocolUDP is UDP.
	ProtocolUDP Protocol = "UDP"
	// ProtocolSCTP is SCTP.
	ProtocolSCTP Protocol = "SCTP"
)

// Scheduler is an IPVS scheduler.
//
// +kubebuilder:validation:Enum=rr;wrr;lc;wlc;sh;mh
type Scheduler string

const (
	// SchedulerRoundRobin is round robin.
	SchedulerRoundRobin Scheduler = "rr"
	// SchedulerWeightedRoundRobin is weighted round robin.
	SchedulerWeightedRoundRobin Scheduler = "wrr"
	// SchedulerLeastConnection is least connections.
	SchedulerLeastConnection Scheduler = "lc"
	// SchedulerWeightedLeastConnection is weighted least connections.
	SchedulerWeightedLeastConnection Scheduler = "wlc"
	// SchedulerSourceHashing is source hashing.
	SchedulerSourceHashing Scheduler = "sh"
	// SchedulerMaglevHashing is Maglev hashing.
	SchedulerMaglevHashing Scheduler = "mh"
)

// ForwardingMethod is how IPVS forwards packets to a backend.
//
// +kubebuilder:validation:Enum=NAT;DR;Tunnel
type ForwardingMethod string

const (
	// ForwardingNAT is masquerading (destination NAT).
	ForwardingNAT ForwardingMethod = "NAT"
	// ForwardingDR is direct routing.
	ForwardingDR ForwardingMethod = "DR"
	// ForwardingTunnel is IP-in-IP tunnelling.
	ForwardingTunnel ForwardingMethod = "Tunnel"
)

// Backends are the real servers of a virtual service: exactly one of
// selectedNodes and static.
//
// +kubebuilder:validation:XValidation:rule="has(self.selectedNodes) != has(self.static)",message="backends must set exactly one of selectedNodes or static"
type Backends struct {
	// selectedNodes makes every node selected by nodeSelector a backend,
	// at its first InternalIP address of the virtual IP's family (for the
	// API VIP: every control-plane node's kube-apiserver).
	// +optional
	SelectedNodes *SelectedNodesBackends `json:"selectedNodes,omitempty"`

	// static lists the backends by address, 1 to 64 distinct
	// address and port pairs. Each virtual IP uses the backends of its own
	// address family.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b.address == a.address && (has(b.port) ? b.port : 0) == (has(a.port) ? a.port : 0)))",message="each static backend address and port must appear once"
	Static []StaticBackend `json:"static,omitempty"`
}

// SelectedNodesBackends configures the selected nodes as backends.
type SelectedNodesBackends struct {
	// port is the nodes' port, 1 to 65535. Optional, default: the
	// service's port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
	// weight is each node's IPVS weight, 0 to 65535 (0: no new
	// connections). Default 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	Weight *int32 `json:"weight,omitempty"`
}

// StaticBackend is one backend given by address.
type StaticBackend struct {
	// address is the backend's IP address, in canonical form (as
	// virtualIPs addresses), in the family of at least one virtual IP.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip.isCanonical(self)",message="address must be an IP address without prefix length, in canonical form (e.g. 192.0.2.21 or 2001:db8::21)"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).isGlobalUnicast()",message="address must be a unicast address: not loopback, link-local, multicast, unspecified or broadcast"
	Address string `json:"address"`
	// port is the backend's port, 1 to 65535. Optional, default: the
	// service's port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
	// weight is the backend's IPVS weight, 0 to 65535 (0: no new
	// connections). Default 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	Weight *int32 `json:"weight,omitempty"`
}

// ProbeTiming is how often a check probes and how many results change its
// state.
type ProbeTiming struct {
	// interval is the time between two probes, as a duration string, 100ms
	// to 1h. Default "2s".
	// +optional
	// +kubebuilder:default="2s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]{1,3})?s|[0-9]+(ms|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('1h')",message="interval must be between 100ms and 1h"
	Interval *metav1.Duration `json:"interval,omitempty"`
	// timeout bounds one probe, as a duration string: greater than 0 and at
	// most interval (probes of one check never overlap). Optional, default:
	// 1s, or the interval if that is shorter.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]{1,3})?s|[0-9]+(ms|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="timeout must be greater than 0"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// rise is the number of consecutive successes that make a failed check
	// healthy, 1 to 100. Default 2.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Rise *int32 `json:"rise,omitempty"`
	// fall is the number of consecutive failures that make a healthy check
	// failed, 1 to 100. Default 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Fall *int32 `json:"fall,omitempty"`
}

// ServiceHealthCheck is the health check of each backend of a virtual
// service, run by the agent of the master: exactly one of tcp, http and
// exec.
//
// +kubebuilder:validation:XValidation:rule="[has(self.tcp), has(self.http), has(self.exec)].exists_one(k, k)",message="healthCheck must set exactly one of tcp, http or exec"
// +kubebuilder:validation:XValidation:rule="!has(self.timeout) || duration(self.timeout) <= duration(self.interval)",message="timeout must be at most interval: probes of one check never overlap",fieldPath=".timeout"
type ServiceHealthCheck struct {
	// tcp is healthy when a TCP connection to the backend succeeds.
	// +optional
	TCP *ServiceTCPCheck `json:"tcp,omitempty"`
	// http is healthy when an HTTP(S) GET to the backend is answered with
	// an expected status (kube-apiserver: HTTPS, /readyz).
	// +optional
	HTTP *ServiceHTTPCheck `json:"http,omitempty"`
	// exec is healthy when a command exits with status 0; the backend's
	// address and port are in its environment as VIPVS_BACKEND_ADDRESS and
	// VIPVS_BACKEND_PORT.
	// +optional
	Exec *ExecCheck `json:"exec,omitempty"`

	ProbeTiming `json:",inline"`
}

// ServiceTCPCheck connects to a backend.
type ServiceTCPCheck struct {
	// port is the port to connect to, 1 to 65535. Optional, default: the
	// backend's port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
}

// ServiceHTTPCheck sends a GET to a backend and compares the status code.
//
// +kubebuilder:validation:XValidation:rule="[has(self.caSecretRef), has(self.caFile), has(self.insecureSkipVerify) && self.insecureSkipVerify].filter(k, k).size() <= 1",message="set at most one of caSecretRef, caFile and insecureSkipVerify: either verify the certificate (with one CA) or do not"
// +kubebuilder:validation:XValidation:rule="self.scheme == 'HTTPS' || !(has(self.caSecretRef) || has(self.caFile) || has(self.serverName) || (has(self.insecureSkipVerify) && self.insecureSkipVerify))",message="caSecretRef, caFile, insecureSkipVerify and serverName need scheme HTTPS",fieldPath=".scheme"
type ServiceHTTPCheck struct {
	// scheme is HTTP (the default) or HTTPS.
	// +optional
	// +kubebuilder:default=HTTP
	Scheme URIScheme `json:"scheme,omitempty"`
	// port is the port to send the request to, 1 to 65535. Optional,
	// default: the backend's port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
	// path is the request's path (and query), starting with '/'. Default
	// "/".
	// +optional
	// +kubebuilder:default="/"
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[^\s]*$`
	Path string `json:"path,omitempty"`
	// expectStatus lists the status codes that mean healthy, each 100 to
	// 599, up to 16. Default [200].
	// +optional
	// +kubebuilder:default={200}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=100
	// +kubebuilder:validation:items:Maximum=599
	ExpectStatus []int32 `json:"expectStatus,omitempty"`
	// caSecretRef names the key of a Secret holding the PEM bundle that
	// verifies the backends' certificates; the operator writes it to the
	// nodes. Default: the system roots.
	// +optional
	CASecretRef *SecretKeyReference `json:"caSecretRef,omitempty"`
	// caFile is the absolute path, on the nodes, of the PEM bundle that
	// verifies the backends' certificates (kubeadm:
	// /etc/kubernetes/pki/ca.crt). Default: the system roots.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:Pattern=`^/`
	CAFile string `json:"caFile,omitempty"`
	// insecureSkipVerify accepts any certificate. Default false.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// serverName is the name the certificate is verified against (and the
	// TLS SNI); the request goes to the backend's address. Optional.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServerName string `json:"serverName,omitempty"`
}

// URIScheme is the scheme of an HTTP health check.
//
// +kubebuilder:validation:Enum=HTTP;HTTPS
type URIScheme string

const (
	// URISchemeHTTP is plain HTTP.
	URISchemeHTTP URIScheme = "HTTP"
	// URISchemeHTTPS is HTTP over TLS.
	URISchemeHTTPS URIScheme = "HTTPS"
)

// ExecCheck runs a command on the node.
//
// +kubebuilder:validation:XValidation:rule="self.command[0].startsWith('/')",message="command[0] must be the absolute path of the program: the command runs without a shell or a PATH lookup",fieldPath=".command"
type ExecCheck struct {
	// command is the program (an absolute path) and its arguments, 1 to 32
	// elements; no shell.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=atomic
	Command []string `json:"command"`
}

// TrackCheck is a health check that every selected node runs against
// itself and that changes its priority: exactly one of tcp, http, exec and
// interface.
//
// +kubebuilder:validation:XValidation:rule="[has(self.tcp), has(self.http), has(self.exec), has(self.interface)].exists_one(k, k)",message="a track check must set exactly one of tcp, http, exec or interface"
// +kubebuilder:validation:XValidation:rule="!has(self.timeout) || duration(self.timeout) <= duration(self.interval)",message="timeout must be at most interval: probes of one check never overlap",fieldPath=".timeout"
type TrackCheck struct {
	// name identifies the check in the status, logs and metrics: a
	// DNS-1123 label.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// weight is what the check does to the node's priority, -254 to 254
	// (keepalived's semantics): negative lowers it by -weight while the
	// check fails; positive raises it by weight while the check is
	// healthy; 0 makes the node give up the virtual IPs (FAULT: no VIP, no
	// advertisements) while the check fails. The effective priority stays
	// within 1 to 254.
	// +required
	// +kubebuilder:validation:Minimum=-254
	// +kubebuilder:validation:Maximum=254
	Weight int32 `json:"weight"`

	// tcp is healthy when a TCP connection to an address succeeds.
	// +optional
	TCP *TCPCheck `json:"tcp,omitempty"`
	// http is healthy when an HTTP(S) GET is answered with an expected
	// status (kube-apiserver: https://127.0.0.1:6443/readyz).
	// +optional
	HTTP *HTTPCheck `json:"http,omitempty"`
	// exec is healthy when a command exits with status 0 (keepalived's
	// vrrp_script).
	// +optional
	Exec *ExecCheck `json:"exec,omitempty"`
	// interface is healthy while a network interface is up (keepalived's
	// track_interface).
	// +optional
	Interface *InterfaceCheck `json:"interface,omitempty"`

	ProbeTiming `json:",inline"`
}

// TCPCheck connects to an address from the node.
type TCPCheck struct {
	// address is "IP:port" ("127.0.0.1:6443", or "[::1]:6443" for IPv6).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9.]+|\[[0-9a-f:.]+\]):[0-9]{1,5}$`
	// +kubebuilder:validation:XValidation:rule="self.lastIndexOf(':') > 0 && self.lastIndexOf(':') < size(self) - 1 && (!self.startsWith('[') || self.lastIndexOf(']') == self.lastIndexOf(':') - 1) && isIP(self.startsWith('[') ? self.substring(1, self.lastIndexOf(']')) : self.substring(0, self.lastIndexOf(':'))) && int(self.substring(self.lastIndexOf(':') + 1)) >= 1 && int(self.substring(self.lastIndexOf(':') + 1)) <= 65535",message="address must be IP:port, e.g. 127.0.0.1:6443 or [::1]:6443"
	Address string `json:"address"`
}

// HTTPCheck sends a GET from the node and compares the status code.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.caFile) && has(self.insecureSkipVerify) && self.insecureSkipVerify)",message="insecureSkipVerify must not be set together with caFile: either verify the certificate or do not",fieldPath=".insecureSkipVerify"
// +kubebuilder:validation:XValidation:rule="self.url.startsWith('https://') || !(has(self.caFile) || has(self.serverName) || (has(self.insecureSkipVerify) && self.insecureSkipVerify))",message="caFile, insecureSkipVerify and serverName need an https:// URL",fieldPath=".url"
type HTTPCheck struct {
	// url is the http:// or https:// URL to GET, with an IP address or a
	// host name, e.g. "https://127.0.0.1:6443/readyz".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="url must be an http:// or https:// URL with a host, e.g. https://127.0.0.1:6443/readyz"
	URL string `json:"url"`
	// expectStatus lists the status codes that mean healthy, each 100 to
	// 599, up to 16. Default [200].
	// +optional
	// +kubebuilder:default={200}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=100
	// +kubebuilder:validation:items:Maximum=599
	ExpectStatus []int32 `json:"expectStatus,omitempty"`
	// caFile is the absolute path, on the node, of the PEM bundle that
	// verifies the server's certificate (kubeadm:
	// /etc/kubernetes/pki/ca.crt). Default: the system roots.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:Pattern=`^/`
	CAFile string `json:"caFile,omitempty"`
	// insecureSkipVerify accepts any server certificate. Default false.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// serverName is the name the certificate is verified against (and the
	// TLS SNI), when the URL holds an IP address. Optional.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServerName string `json:"serverName,omitempty"`
}

// InterfaceCheck watches a network interface of the node.
type InterfaceCheck struct {
	// name is the interface's name, 1 to 15 characters without '/', ':' or
	// whitespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[^\s/:]+$`
	Name string `json:"name"`
}

// LoadBalancerConfigStatus is the observed state of a LoadBalancerConfig,
// written by the operator.
type LoadBalancerConfigStatus struct {
	// conditions are Ready (every virtual IP has a master, or in mode bgp
	// a node that advertises it, and every selected node runs its rendered
	// configuration), Progressing (a configuration is being rolled out to
	// the nodes) and Degraded (something needs attention: rendering or
	// delivery failed, a node's agent is down, a VIP has no master or two,
	// or no node advertises a bgp VIP).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the metadata.generation of the spec the status
	// describes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// nodes are the selected nodes, by name, with the configuration
	// rendered for each and the one its agent runs.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Nodes []NodeStatus `json:"nodes,omitempty"`

	// vips are the virtual IPs with their current master.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	VIPs []VIPStatus `json:"vips,omitempty"`

	// masters summarises vips for `kubectl get`: "address=node" for each
	// virtual IP in spec order, comma-separated, with "-" for a VIP without
	// master, e.g. "192.0.2.10=master-0,2001:db8::10=master-1". A virtual
	// IP in mode bgp shows "address=bgp:" and the nodes that advertise it,
	// joined by "+" ("bgp:-" for none), e.g. "192.0.2.20=bgp:w0+w1".
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	Masters string `json:"masters,omitempty"`
}

// NodeStatus is the state of one selected node.
type NodeStatus struct {
	// name is the Node's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// addresses are the node's InternalIP addresses (IPv4 and/or IPv6, in
	// the node's order) that the operator rendered it with. The operator
	// remembers them here: a member whose Node object disappears from the
	// API stays a peer of the other nodes, with these addresses, until it
	// is named in the LoadBalancerConfig's vipvs.io/forget-nodes
	// annotation. Empty while a selected node has no InternalIP yet (it is
	// not rendered).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=45
	Addresses []string `json:"addresses,omitempty"`
	// renderedConfigHash is the hash (sha256, hex) of the agent
	// configuration the operator rendered for the node.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	RenderedConfigHash string `json:"renderedConfigHash,omitempty"`
	// runningConfigHash is the hash of the configuration the node's agent
	// reports it runs; equal to renderedConfigHash when the node is up to
	// date.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	RunningConfigHash string `json:"runningConfigHash,omitempty"`
	// running is whether the node's agent is running and reporting.
	// +optional
	Running bool `json:"running,omitempty"`
	// message says what is wrong with the node, if anything.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
	// bgpPeers are the node's BGP sessions (virtual IPs in mode bgp, the
	// agent's own speaker), in spec.bgp.peers order, with their session
	// and BFD states and the number of routes advertised to each.
	// +optional
	// +listType=map
	// +listMapKey=address
	// +kubebuilder:validation:MaxItems=16
	BGPPeers []BGPPeerStatus `json:"bgpPeers,omitempty"`
}

// VIPStatus is the state of one virtual IP.
type VIPStatus struct {
	// name is the virtual IP's name in spec.virtualIPs.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// address is the virtual IP address.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	Address string `json:"address,omitempty"`
	// masterNode is the node whose agent reports being master of the
	// virtual IP; empty when none does. When several do (split brain),
	// their names joined by "+", e.g. "master-0+master-1".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	MasterNode string `json:"masterNode,omitempty"`
	// mode is "bgp" for a virtual IP in mode bgp (which has advertisedBy
	// instead of a masterNode); empty for one in mode vrrp.
	// +optional
	Mode AnnouncementMode `json:"mode,omitempty"`
	// advertisedBy are the nodes that advertise the virtual IP (mode bgp:
	// they hold it and their track checks pass), sorted by name; empty
	// when none does.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	AdvertisedBy []string `json:"advertisedBy,omitempty"`
}

// Condition types of LoadBalancerConfigStatus.conditions.
const (
	// ConditionReady is True when every virtual IP has exactly one master
	// (mode bgp: at least one node advertises it) and every selected node
	// runs its rendered configuration.
	ConditionReady = "Ready"
	// ConditionProgressing is True while a configuration is being rolled
	// out to the nodes.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when something needs attention.
	ConditionDegraded = "Degraded"
)

// Condition reasons of LoadBalancerConfigStatus.conditions.
const (
	// ReasonAsExpected: the condition is in its healthy state (Ready True,
	// Progressing False, Degraded False).
	ReasonAsExpected = "AsExpected"
	// ReasonNoNodesSelected: nodeSelector selects no node.
	ReasonNoNodesSelected = "NoNodesSelected"
	// ReasonInvalidSpec: the spec fails validation that the API server
	// could not do (e.g. the password Secret is missing or too long).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonRenderFailed: an agent configuration could not be rendered.
	ReasonRenderFailed = "RenderFailed"
	// ReasonDeliveryFailed: a rendered configuration could not be written
	// to a node.
	ReasonDeliveryFailed = "DeliveryFailed"
	// ReasonRollingOut: nodes do not run their rendered configuration yet.
	ReasonRollingOut = "RollingOut"
	// ReasonAgentNotRunning: a selected node's agent is not running or not
	// reporting.
	ReasonAgentNotRunning = "AgentNotRunning"
	// ReasonNoMaster: a virtual IP has no master.
	ReasonNoMaster = "NoMaster"
	// ReasonNotAdvertised: a virtual IP in mode bgp is advertised by no
	// node (no node's agent serves it: their track checks fail, or their
	// BGP speaker cannot run).
	ReasonNotAdvertised = "NotAdvertised"
	// ReasonMultipleMasters: more than one node reports being master of a
	// virtual IP (split brain).
	ReasonMultipleMasters = "MultipleMasters"
	// ReasonConflict: the spec collides with another LoadBalancerConfig
	// (a virtual IP address, a VRID in one address family on one
	// interface, spec.agentStatusPort on a common node, or a BGP peer
	// spoken to from one address of a common node) that already
	// runs, or, when neither runs yet, that was created earlier. This spec
	// is not rendered; the nodes keep what they ran before.
	ReasonConflict = "Conflict"
	// ReasonNodeMissing: a member node's Node object is gone from the API.
	// It stays a peer of the other nodes until it is named in the
	// vipvs.io/forget-nodes annotation (or comes back and no longer
	// matches spec.nodeSelector).
	ReasonNodeMissing = "NodeMissing"
	// ReasonConfigRejected: a node's agent rejected the rendered
	// configuration and keeps running its previous one.
	ReasonConfigRejected = "ConfigRejected"
	// ReasonRouterFault: a node's virtual router is in FAULT: it cannot run
	// (its interface is down, or it has none) and holds no VIP. The message
	// names the node, the router, the interface and the agent's reason.
	ReasonRouterFault = "RouterFault"
)

// Annotations of a LoadBalancerConfig read by the operator.
const (
	// AnnotationForgetNodes lists, comma-separated, member nodes that are
	// gone for good: a member whose Node object is gone from the API stays
	// a peer of the other nodes (the operator never shrinks a peer list
	// because a Node vanished) until it is named here.
	AnnotationForgetNodes = "vipvs.io/forget-nodes"
)
