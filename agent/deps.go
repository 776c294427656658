package agent

import (
	"context"
	"net/netip"

	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"

	"github.com/vipvs/vipvs/agent/arpwatch"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/link"
	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/agent/transport"
)

// The parts the agent is assembled from. Production builds them in Run
// (see production.go); the unit tests of this package give fakes, so that
// reload, live changes, link faults and router restarts are tested without
// root.

// ConfigSource delivers the agent config: the one loaded at start, then
// every accepted change and every rejected one (*config.Watcher).
type ConfigSource interface {
	// Current returns the config loaded at start.
	Current() *config.Config
	// Updates delivers each accepted new config.
	Updates() <-chan *config.Config
	// Errors delivers the reason each new config was rejected.
	Errors() <-chan error
	// Reload re-reads the config now (SIGHUP).
	Reload()
	// Run watches the config until ctx is done.
	Run(ctx context.Context) error
}

// Network opens the VRRP endpoints of virtual routers: one socket per
// (interface, family), shared by the routers on it (*transport.Hub).
type Network interface {
	// Subscribe opens the endpoint of the router with vrid on
	// opts.Interface; h receives its packets (see transport.Handler).
	Subscribe(opts transport.Options, vrid uint8, h transport.Handler) (Endpoint, error)
}

// Endpoint is one virtual router's share of a VRRP socket
// (*transport.Sub).
type Endpoint interface {
	// Source is the address adverts are sent from.
	Source() netip.Addr
	// IfIndex is the index of the interface the socket is bound to: a
	// router whose interface now has another index must be restarted.
	IfIndex() int
	// Write sends one VRRP message to dst.
	Write(payload []byte, dst netip.Addr) error
	// SetPeers replaces the unicast peer filter.
	SetPeers(peers []netip.Addr) error
	// Dropped counts the packets the endpoint skipped, by reason.
	Dropped() map[transport.DropReason]uint64
	// Close ends the subscription.
	Close() error
}

// VIPs adds and removes VIPs on interfaces and puts back a held VIP that
// something else deleted while Run runs (*vip.Manager).
type VIPs interface {
	Add(ifname string, vip netip.Prefix) error
	Remove(ifname string, vip netip.Prefix) error
	// RemoveStale removes the copies of vips on ifname that are not held
	// (a crashed agent's) and returns them.
	RemoveStale(ifname string, vips []netip.Prefix) ([]netip.Prefix, error)
	Run(ctx context.Context) error
}

// Announcer announces VIPs on one interface: gratuitous ARP, unsolicited
// neighbour advertisement (*announce.Announcer).
type Announcer interface {
	Announce(vips []netip.Addr) error
	Close() error
}

// LinkWatcher follows the state of the interfaces of the current config
// (*link.Watcher).
type LinkWatcher interface {
	// Follow replaces the set of interfaces followed; Run reports the
	// state of a newly followed one at once.
	Follow(ifnames []string)
	// Run calls changed for every change of a followed interface's state
	// (up, index) until ctx is done.
	Run(ctx context.Context, changed func(ifname string, st link.State)) error
}

// Balancer programs IPVS for the routers this node is master of
// (*balancer.Balancer).
type Balancer interface {
	// Update applies a new config.
	Update(c *config.Config)
	// SetMaster says whether the node holds the VIPs of a router.
	SetMaster(router string, master bool)
	// Run reconciles until ctx is done.
	Run(ctx context.Context)
	// Shutdown removes what the balancer programmed.
	Shutdown(ctx context.Context) error
	// Status is the balancer's part of the status document.
	Status() *status.IPVS
}

// Parts are the components New assembles into an Agent. Every field is
// required.
type Parts struct {
	Config   ConfigSource
	Network  Network
	VIPs     VIPs
	Links    LinkWatcher
	Balancer Balancer
	// OpenAnnouncer returns the announcer of an interface.
	OpenAnnouncer func(ifname string) (Announcer, error)
	// PickInterfaces fills in the interface of routers that name none (see
	// pickInterfaces). It returns a usable config even when it fails.
	PickInterfaces func(c *config.Config) (*config.Config, error)
	// OpenRouteAnnouncer, optional, builds the route announcer of the
	// routers in mode bgp from the bgp section (see openRouteAnnouncer).
	// Nil: a config with bgp routers runs them without announcing.
	OpenRouteAnnouncer func(c *config.BGP) (RouteAnnouncer, error)
	// OpenLocalVIPs, optional, returns a holder of VIPs as local routes of
	// protocol (*routetable.LocalVIPs, not yet running): the routers in
	// mode bgp hold their VIPs so with bgp.externalSpeaker. Nil: that mode
	// is refused.
	OpenLocalVIPs func(protocol uint8) (VIPs, error)
	// ARPGuard, optional, keeps the node from answering ARP for the VIPs
	// of the routers in mode bgp. Nil: no guard.
	ARPGuard ARPGuard
	// OpenARPWatch, optional, returns an ARP watcher of an interface
	// (*arpwatch.Watcher); an IPv4 router uses it to see other nodes
	// announce or answer for its VIPs. Nil: no watching (a router that
	// yields releases its VIPs after the linger).
	OpenARPWatch func(ifname string) (ARPWatch, error)
}

// ARPWatch sees the ARP packets of other nodes that claim our VIPs
// (*arpwatch.Watcher).
type ARPWatch interface {
	// Run reports the claims of watched addresses until ctx is done.
	Run(ctx context.Context, watched func(netip.Addr) bool, seen func(arpwatch.Sighting)) error
	// Probe asks who holds addr; the answers come through Run.
	Probe(addr netip.Addr) error
	// Close closes the socket.
	Close() error
}

// RouteAnnouncer advertises the VIPs of the routers in mode bgp as host
// routes (/32, /128): the embedded BGP speaker (agent/bgp in the
// vipvs-bgp-speaker child process, see childSpeaker), or a writer of
// routes into a kernel table for the node's own BGP daemon
// (bgp.externalSpeaker). The agent runs one, built by
// Parts.OpenRouteAnnouncer from the bgp section; a changed section is
// applied to it when it is a RouteReconfigurer, else a new one replaces it.
// Advertise and Withdraw are called before and during Run.
type RouteAnnouncer interface {
	// Run announces until ctx is done, then stops announcing (the routes
	// go away with the sessions, or are removed). It returns an error only
	// when it cannot start.
	Run(ctx context.Context) error
	// Advertise adds the host route of vip; advertising it again does
	// nothing.
	Advertise(vip netip.Prefix) error
	// Withdraw removes the host route of vip; withdrawing a route not
	// advertised does nothing.
	Withdraw(vip netip.Prefix) error
	// GracefulShutdown drains (RFC 8326): the routes are re-advertised with
	// the GRACEFUL_SHUTDOWN community, and after bgp.gracefulShutdownWait
	// withdrawn, and it waits once more. Routes advertised afterwards are
	// not announced. It returns early with ctx's error.
	GracefulShutdown(ctx context.Context) error
	// Status is the announcer's part of the status document: sessions
	// (embedded) or table (external). The agent fills in Advertised.
	Status(ctx context.Context) (*statusv1.BGP, error)
}

// RouteReconfigurer is implemented by a RouteAnnouncer that can take a
// changed bgp section while it runs, keeping the sessions the change does
// not concern (the embedded speaker: peers added, removed or changed).
type RouteReconfigurer interface {
	// Reconfigure applies c. applied false means it cannot (say, the ASN
	// changed): the agent builds a new announcer, or, with an error, keeps
	// this one as it is and reports the error.
	Reconfigure(ctx context.Context, c *config.BGP) (applied bool, err error)
}

// ARPGuard keeps the node from answering ARP requests for the IPv4 VIPs of
// the routers in mode bgp, which it holds on a local interface (lo) while
// the routers reach it by its host routes (see docs/bgp.md).
type ARPGuard interface {
	// Set replaces the addresses the node does not answer ARP for.
	Set(addrs []netip.Addr) error
	// Close removes the guard.
	Close() error
}
