package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/go-logr/logr"

	"github.com/vipvs/vipvs/agent/bgp/wire"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/routetable"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
)

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

// wireConfig is the speaker's configuration of c (agent/bgp/wire): the
// password files are read (the keys go to the speaker process through its
// stdin only), a missing router ID is the node's (routerID). The speaker
// validates the rest.
func wireConfig(c *config.BGP, routerID func() (netip.Addr, error)) (wire.Config, error) {
	wc := wire.Config{
		ASN:          c.LocalASN,
		RouterID:     c.RouterID,
		ListenPort:   c.ListenPort,
		BFD:          wire.BFDProfile{MinTx: c.BFD.MinTx, MinRx: c.BFD.MinRx, Multiplier: c.BFD.Multiplier},
		GracefulWait: c.GracefulShutdownWait,
	}
	if c.GracefulShutdownWait == 0 {
		// agent/bgp reads 0 as its default; the config means no wait.
		wc.GracefulWait = 1
	}
	if !wc.RouterID.IsValid() {
		id, err := routerID()
		if err != nil {
			return wire.Config{}, fmt.Errorf("bgp.routerID is not set and %w: set it", err)
		}
		wc.RouterID = id
	}
	for i, p := range c.Peers {
		wp := wire.Peer{
			Address: p.Address, ASN: p.ASN, Port: p.Port, SourceAddress: p.SourceAddress,
			HoldTime: p.HoldTime, KeepaliveTime: p.KeepaliveTime, ConnectRetry: p.ConnectRetry,
			MultihopTTL: p.EBGPMultihop, BFD: p.BFD,
		}
		if p.PasswordFile != "" {
			key, err := wire.ReadPassword(p.PasswordFile)
			if err != nil {
				return wire.Config{}, fmt.Errorf("bgp.peers[%d].passwordFile: %w", i, err)
			}
			wp.Password = key
		}
		wc.Peers = append(wc.Peers, wp)
	}
	return wc, nil
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
