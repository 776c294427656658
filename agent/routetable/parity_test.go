package routetable

import (
	"context"
	"net/netip"

	"github.com/vipvs/vipvs/agent/bgp"
)

// announcer is what the agent drives in mode bgp, embedded speaker
// (agent/bgp) or external (this package) alike; only Status differs in
// type (bgp.Status there, the status API's BGP here).
type announcer interface {
	Run(ctx context.Context) error
	Advertise(addr netip.Addr) error
	Withdraw(addr netip.Addr) error
	GracefulShutdown(ctx context.Context) error
}

var (
	_ announcer = (*Writer)(nil)
	_ announcer = (*bgp.Announcer)(nil)
)
