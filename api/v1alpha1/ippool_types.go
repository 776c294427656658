package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names the IP pools and the Service allocator share with Services.
const (
	// LoadBalancerClass is the spec.loadBalancerClass of the Services whose
	// IPs vipvs allocates from IPPools.
	LoadBalancerClass = "vipvs.io/lb"
	// AnnotationLoadBalancerIPs requests addresses for a Service: a comma
	// separated list of at most one IPv4 and one IPv6 address, each inside
	// an IPPool that admits the Service (spec.loadBalancerIP is deprecated;
	// it is honoured only without this annotation).
	AnnotationLoadBalancerIPs = "vipvs.io/load-balancer-ips"
	// AnnotationIPPool names the IPPool a Service's addresses come from,
	// also one whose autoAssign is false.
	AnnotationIPPool = "vipvs.io/ip-pool"
	// AnnotationAllowSharedIP is the sharing key: Services carrying the
	// same value may be given the same address when no two of them use
	// the same protocol and port.
	AnnotationAllowSharedIP = "vipvs.io/allow-shared-ip"
	// ConditionServiceIPAllocated is the condition the allocator sets on a
	// Service's status.conditions: True with the addresses, False with why
	// none could be given (a Reason* of the allocator).
	ConditionServiceIPAllocated = "vipvs.io/IPAllocated"
)

// MaxPoolAddresses is the largest number of spec.addresses of an IPPool.
const MaxPoolAddresses = 64

// Conditions and reasons of an IPPool's status.
const (
	// IPPoolConditionReady is True when the pool hands out addresses: its
	// addresses are valid and overlap no older pool's.
	IPPoolConditionReady = "Ready"
	// IPPoolConditionExhausted is True when every usable address of the
	// pool is assigned.
	IPPoolConditionExhausted = "Exhausted"

	// ReasonPoolValid: the pool is in use.
	ReasonPoolValid = "Valid"
	// ReasonPoolOverlap: an address of the pool is also in another pool
	// created before it (or, created at the same second, with a smaller
	// name); this pool hands out no address until the overlap is removed.
	ReasonPoolOverlap = "Overlap"
	// ReasonPoolInvalidAddresses: an entry of spec.addresses is not what
	// the API server checks could catch (an IPv6 range whose start is after
	// its end).
	ReasonPoolInvalidAddresses = "InvalidAddresses"
	// ReasonPoolInvalidSelector: a selector of spec.serviceAllocation is
	// not a valid label selector.
	ReasonPoolInvalidSelector = "InvalidSelector"
	// ReasonPoolFull: every usable address is assigned.
	ReasonPoolFull = "Full"
	// ReasonPoolHasFree: at least one usable address is free.
	ReasonPoolHasFree = "AddressesAvailable"
)

// IPPool is a set of addresses that the operator gives to Services of type
// LoadBalancer whose spec.loadBalancerClass is vipvs.io/lb: which Services
// may use them, and how the nodes announce them (VRRP on selected nodes, or
// BGP with the peers of a LoadBalancerConfig). It is cluster-scoped. An
// address is never given to two Services, except to Services that share it
// by the annotation vipvs.io/allow-shared-ip and use different ports.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ippool
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.spec.addresses`,description="The pool's CIDRs and ranges."
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.announcement.mode`,description="How the addresses are announced: VRRP or BGP."
// +kubebuilder:printcolumn:name="Assigned",type=integer,JSONPath=`.status.assigned`,description="Addresses given to Services."
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.available`,description="Usable addresses not given to any Service."
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,description="Whether the pool hands out addresses (False: see the reason, e.g. Overlap)."
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPPool struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata; the name orders the pools (the
	// first pool by name that admits a Service gives it its address).
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the pool's addresses, who may use them and how they are
	// announced.
	Spec IPPoolSpec `json:"spec"`
	// Status is what the operator observed: how many addresses are
	// assigned and available, and whether the pool is in use.
	// +optional
	Status IPPoolStatus `json:"status,omitempty"`
}

// IPPoolList is a list of IPPools.
//
// +kubebuilder:object:root=true
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the IPPools.
	Items []IPPool `json:"items"`
}

// IPPoolSpec is the desired state of an IPPool.
type IPPoolSpec struct {
	// Addresses are the pool's addresses, IPv4 and IPv6 in any mix: each
	// a CIDR ("192.0.2.0/24", "2001:db8::/120"; a single address is a /32
	// or /128) or an inclusive range of one family
	// ("192.0.2.10-192.0.2.50"). An address that is also in an older pool
	// makes this pool unusable (condition Ready=False, reason Overlap).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	Addresses []IPPoolAddress `json:"addresses"`

	// AutoAssign lets the operator take addresses from this pool for any
	// Service it admits. When false, only Services that name the pool
	// (annotation vipvs.io/ip-pool) or request one of its addresses
	// (annotation vipvs.io/load-balancer-ips) get its addresses.
	// +kubebuilder:default=true
	// +optional
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// AvoidBuggyIPs skips the IPv4 addresses ending in .0 and .255, which
	// some old clients and routers take for network or broadcast
	// addresses. It does not change IPv6.
	// +optional
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// ServiceAllocation restricts which Services may use the pool. Unset:
	// every Service of the class.
	// +optional
	ServiceAllocation *ServiceAllocation `json:"serviceAllocation,omitempty"`

	// Announcement is how the nodes make the pool's addresses reachable.
	Announcement Announcement `json:"announcement"`
}

// IPPoolAddress is one entry of an IPPool's addresses: a CIDR with no host
// bits set, or a range "start-end" of two addresses of one family with
// start not after end.
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=100
// +kubebuilder:validation:XValidation:rule="self.contains('-') || isCIDR(self)",message="must be a CIDR such as 192.0.2.0/24 or 2001:db8::/120 (a single address is a /32 or /128), or a range such as 192.0.2.10-192.0.2.50"
// +kubebuilder:validation:XValidation:rule="self.contains('-') || !isCIDR(self) || cidr(self) == cidr(self).masked()",message="a CIDR must not have host bits set: write its network address (192.0.2.0/24, not 192.0.2.1/24)"
// +kubebuilder:validation:XValidation:rule="!self.contains('-') || (self.split('-').size() == 2 && isIP(self.split('-')[0]) && isIP(self.split('-')[1]))",message="a range must be two IP addresses joined by '-', such as 192.0.2.10-192.0.2.50 or 2001:db8::10-2001:db8::50"
// +kubebuilder:validation:XValidation:rule="!self.contains('-') || self.split('-').size() != 2 || !isIP(self.split('-')[0]) || !isIP(self.split('-')[1]) || ip(self.split('-')[0]).family() == ip(self.split('-')[1]).family()",message="a range's start and end must be of one family: both IPv4 or both IPv6"
// +kubebuilder:validation:XValidation:rule="!self.contains('-') || self.split('-').size() != 2 || !isIP(self.split('-')[0]) || !isIP(self.split('-')[1]) || ip(self.split('-')[0]).family() != 4 || ip(self.split('-')[1]).family() != 4 || int(self.split('-')[0].split('.')[0]) * 16777216 + int(self.split('-')[0].split('.')[1]) * 65536 + int(self.split('-')[0].split('.')[2]) * 256 + int(self.split('-')[0].split('.')[3]) <= int(self.split('-')[1].split('.')[0]) * 16777216 + int(self.split('-')[1].split('.')[1]) * 65536 + int(self.split('-')[1].split('.')[2]) * 256 + int(self.split('-')[1].split('.')[3])",message="a range's start must not be after its end"
type IPPoolAddress string

// ServiceAllocation says which Services may take addresses from a pool.
// A Service must match both selectors that are set.
type ServiceAllocation struct {
	// NamespaceSelector selects the namespaces (by their labels) whose
	// Services may use the pool; unset: every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// ServiceSelector selects the Services (by their labels) that may use
	// the pool; unset: every Service.
	// +optional
	ServiceSelector *metav1.LabelSelector `json:"serviceSelector,omitempty"`
}

// Announcement is how the nodes announce a pool's addresses: mode vrrp
// with the vrrp section (the selected nodes hold the addresses by VRRP, spread
// over them, each with a backup node), or mode bgp with the bgp section
// (every selected node whose checks pass advertises each address as a host
// route to the BGP peers of a LoadBalancerConfig). The modes are those of
// spec.virtualIPs[].mode of a LoadBalancerConfig.
//
// +kubebuilder:validation:XValidation:rule="self.mode != 'vrrp' || (has(self.vrrp) && !has(self.bgp))",message="mode vrrp needs the vrrp section and no bgp section"
// +kubebuilder:validation:XValidation:rule="self.mode != 'bgp' || (has(self.bgp) && !has(self.vrrp))",message="mode bgp needs the bgp section and no vrrp section"
type Announcement struct {
	// Mode is vrrp or bgp.
	Mode AnnouncementMode `json:"mode"`
	// VRRP announces the addresses by VRRP; required for mode vrrp.
	// +optional
	VRRP *VRRPAnnouncement `json:"vrrp,omitempty"`
	// BGP announces the addresses by BGP; required for mode bgp.
	// +optional
	BGP *BGPAnnouncement `json:"bgp,omitempty"`
}

// VRRPAnnouncement is the VRRP announcement of a pool: its addresses are
// spread over the selected nodes, each held by one node with another as
// its backup.
type VRRPAnnouncement struct {
	// NodeSelector selects the nodes that hold the pool's addresses (by
	// their labels). It must not be empty: an empty selector would select
	// every node.
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="nodeSelector must not be empty: an empty selector selects every node"
	NodeSelector metav1.LabelSelector `json:"nodeSelector"`
	// Interface is the network interface that carries the addresses on
	// every selected node; unset: the interface whose subnet contains the
	// address (as for a LoadBalancerConfig's virtual IPs).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[^\s/:]+$`
	// +optional
	Interface string `json:"interface,omitempty"`
}

// BGPAnnouncement is the BGP announcement of a pool: the peers, BFD and
// graceful shutdown settings are those of the bgp section of a
// LoadBalancerConfig, whose selected nodes advertise the pool's addresses.
type BGPAnnouncement struct {
	// LoadBalancerConfig names the LoadBalancerConfig whose spec.bgp
	// section (peers, BFD) and selected nodes announce the addresses.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	LoadBalancerConfig string `json:"loadBalancerConfig"`
}

// IPPoolStatus is the observed state of an IPPool.
type IPPoolStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Assigned is the number of the pool's addresses given to Services (an
	// address shared by several Services counts once).
	// +optional
	Assigned int64 `json:"assigned"`
	// Available is the number of usable addresses (without .0 and .255
	// when avoidBuggyIPs is set) not given to any Service, at most
	// 9223372036854775807 (a large IPv6 pool says that).
	// +optional
	Available int64 `json:"available"`
	// Conditions are Ready (the pool hands out addresses; False with
	// reason Overlap, InvalidAddresses or InvalidSelector) and Exhausted (True when no
	// usable address is left).
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
