package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/go-logr/logr"

	"github.com/vipvs/vipvs/agent/bgp"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/routetable"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
)

// embeddedSpeaker is the agent's own BGP speaker (agent/bgp, GoBGP) as a
// RouteAnnouncer.
type embeddedSpeaker struct{ a *bgp.Announcer }

var _ RouteAnnouncer = embeddedSpeaker{}

// newEmbeddedSpeaker builds the speaker of c: the peers' TCP MD5 keys are
// read from their files now.
func newEmbeddedSpeaker(c *config.BGP, log logr.Logger) (embeddedSpeaker, error) {
	bc, err := bgpConfig(c, nodeRouterID)
	if err != nil {
		return embeddedSpeaker{}, err
	}
	a, err := bgp.New(bc, log)
	if err != nil {
		return embeddedSpeaker{}, err
	}
	return embeddedSpeaker{a}, nil
}

func (e embeddedSpeaker) Run(ctx context.Context) error  { return e.a.Run(ctx) }
func (e embeddedSpeaker) Advertise(p netip.Prefix) error { return e.a.Advertise(p.Addr()) }
func (e embeddedSpeaker) Withdraw(p netip.Prefix) error  { return e.a.Withdraw(p.Addr()) }
func (e embeddedSpeaker) GracefulShutdown(ctx context.Context) error {
	return e.a.GracefulShutdown(ctx)
}

// Reconfigure applies a changed bgp section to the running speaker: only the
// sessions of peers added, removed or changed are opened or closed.
func (e embeddedSpeaker) Reconfigure(ctx context.Context, c *config.BGP) (bool, error) {
	if c.ExternalSpeaker != nil {
		return false, nil
	}
	bc, err := bgpConfig(c, nodeRouterID)
	if err != nil {
		return false, err
	}
	switch err := e.a.Reconfigure(ctx, bc); {
	case errors.Is(err, bgp.ErrRestartNeeded):
		return false, nil
	case err != nil:
		return true, err
	}
	return true, nil
}

// Status converts the speaker's status to the status contract.
func (e embeddedSpeaker) Status(ctx context.Context) (*statusv1.BGP, error) {
	st, err := e.a.Status(ctx)
	out := &statusv1.BGP{Speaker: statusv1.SpeakerEmbedded, GracefulShutdown: st.GracefulShutdown}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, statusv1.BGPPeer{
			Address: p.Address.String(), ASN: p.ASN, State: p.State, BFD: p.BFD, Advertised: prefixStrings(p.Advertised),
		})
	}
	return out, err
}

// externalSpeaker hands the routes to the node's own BGP daemon through a
// kernel routing table (bgp.externalSpeaker, agent/routetable) as a
// RouteAnnouncer. It is no RouteReconfigurer: a changed bgp section
// replaces it (the new writer writes what the node serves).
type externalSpeaker struct{ w *routetable.Writer }

var _ RouteAnnouncer = externalSpeaker{}

// newExternalSpeaker builds the route table writer of c.ExternalSpeaker.
func newExternalSpeaker(c *config.BGP, log logr.Logger) (externalSpeaker, error) {
	w, err := routetable.New(routetable.Config{
		Table:        c.ExternalSpeaker.Table,
		Protocol:     c.ExternalSpeaker.Protocol,
		GracefulWait: c.GracefulShutdownWait,
	}, log)
	if err != nil {
		return externalSpeaker{}, fmt.Errorf("bgp.externalSpeaker: %w", err)
	}
	return externalSpeaker{w}, nil
}

func (e externalSpeaker) Run(ctx context.Context) error  { return e.w.Run(ctx) }
func (e externalSpeaker) Advertise(p netip.Prefix) error { return e.w.Advertise(p.Addr()) }
func (e externalSpeaker) Withdraw(p netip.Prefix) error  { return e.w.Withdraw(p.Addr()) }
func (e externalSpeaker) GracefulShutdown(ctx context.Context) error {
	return e.w.GracefulShutdown(ctx)
}
func (e externalSpeaker) Status(ctx context.Context) (*statusv1.BGP, error) {
	return e.w.Status(ctx)
}

// bgpConfig is the agent/bgp configuration of c: the password files are
// read, a missing router ID is the node's (routerID).
func bgpConfig(c *config.BGP, routerID func() (netip.Addr, error)) (bgp.Config, error) {
	bc := bgp.Config{
		ASN:          c.LocalASN,
		RouterID:     c.RouterID,
		ListenPort:   c.ListenPort,
		BFD:          bgp.BFDProfile{MinTx: c.BFD.MinTx, MinRx: c.BFD.MinRx, Multiplier: c.BFD.Multiplier},
		GracefulWait: c.GracefulShutdownWait,
	}
	if c.GracefulShutdownWait == 0 {
		// agent/bgp reads 0 as its default; the config means no wait.
		bc.GracefulWait = 1
	}
	if !bc.RouterID.IsValid() {
		id, err := routerID()
		if err != nil {
			return bgp.Config{}, fmt.Errorf("bgp.routerID is not set and %w: set it", err)
		}
		bc.RouterID = id
	}
	for i, p := range c.Peers {
		bp := bgp.Peer{
			Address: p.Address, ASN: p.ASN, Port: p.Port, SourceAddress: p.SourceAddress,
			HoldTime: p.HoldTime, KeepaliveTime: p.KeepaliveTime, ConnectRetry: p.ConnectRetry,
			MultihopTTL: p.EBGPMultihop, BFD: p.BFD,
		}
		if p.PasswordFile != "" {
			key, err := bgp.ReadPassword(p.PasswordFile)
			if err != nil {
				return bgp.Config{}, fmt.Errorf("bgp.peers[%d].passwordFile: %w", i, err)
			}
			bp.Password = key
		}
		bc.Peers = append(bc.Peers, bp)
	}
	return bc, nil
}

// nodeRouterID is the node's first IPv4 address that is not on a loopback
// interface (where the bgp VIPs are) and not link-local: the default BGP
// router ID.
func nodeRouterID() (netip.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("listing the node's interfaces: %w", err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if ip = ip.Unmap(); ok && ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errors.New("the node has no IPv4 address outside loopback")
}
