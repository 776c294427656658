package v1alpha1

// Defaults of ipvs.connectionSync: the kernel's own (IP_VS_SYNC_GROUP,
// IP_VS_SYNC_PORT, a TTL of 1: the directors share a segment).
const (
	// DefaultConnectionSyncGroupIPv4 is the multicast group of the sync
	// messages when the routers with virtual services are IPv4.
	DefaultConnectionSyncGroupIPv4 = "224.0.0.81"
	// DefaultConnectionSyncGroupIPv6 is the group when they are all IPv6.
	DefaultConnectionSyncGroupIPv6 = "ff02::81"
	// DefaultConnectionSyncPort is the UDP port of the sync messages.
	DefaultConnectionSyncPort = 8848
	// DefaultConnectionSyncTTL is the multicast TTL of the sync messages.
	DefaultConnectionSyncTTL = 1
)

// ConnectionSync configures the kernel's IPVS connection synchronisation:
// every director runs a master and a backup sync daemon, so that the
// connections the master balances are known to the backups, and survive
// the VIP moving to one of them (a failover, a graceful stop, a
// preemption). It applies when at least one virtual router has virtual
// services.
//
// The kernel runs one master and one backup daemon per network namespace:
// one setting for all routers of the agent, and one agent per node (of
// all LoadBalancerConfigs) may enable it. The kernel's sync protocol is
// multicast only: the directors must share a segment that carries
// multicast, even where VRRP runs unicast.
type ConnectionSync struct {
	// Enabled runs the sync daemons. Default true; false leaves the
	// kernel's daemons alone (and established connections break when the
	// VIP moves).
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// Interface is the interface the daemons send and listen on. Default:
	// the interface of the first virtual router with virtual services.
	// +optional
	Interface string `json:"interface,omitempty"`
	// SyncID is the ID of the sync messages, 0 to 255: a backup accepts only
	// messages of its ID (0: of any ID), so that two clusters on one
	// segment keep their tables apart. Default: the VRID of the first
	// virtual router with virtual services.
	// +optional
	SyncID *int32 `json:"syncID,omitempty"`
	// MulticastGroup is the IPv4 or IPv6 multicast group of the sync
	// messages. Default 224.0.0.81, or ff02::81 when every router with
	// virtual services is IPv6. An IPv6 group needs IPv6 on the interface.
	// +optional
	MulticastGroup string `json:"multicastGroup,omitempty"`
	// Port is the UDP port of the sync messages, 1 to 65535. Default 8848.
	// +optional
	Port *int32 `json:"port,omitempty"`
	// TTL is the multicast TTL (IPv6: hop limit), 1 to 255. Default 1.
	// +optional
	TTL *int32 `json:"ttl,omitempty"`
}
