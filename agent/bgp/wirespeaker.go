package bgp

import (
	"context"
	"errors"
	"net/netip"

	"github.com/go-logr/logr"

	"github.com/vipvs/vipvs/agent/bgp/wire"
)

// OpenWire returns the builder of an Announcer from a wire.Config for
// wire.Serve: the speaker process (vipvs-bgp-speaker) serves the agent
// with it.
func OpenWire(log logr.Logger) func(wire.Config) (wire.Speaker, error) {
	return func(c wire.Config) (wire.Speaker, error) {
		a, err := New(FromWire(c), log)
		if err != nil {
			return nil, err
		}
		return wireSpeaker{a}, nil
	}
}

// FromWire is the Config of c.
func FromWire(c wire.Config) Config {
	out := Config{
		ASN: c.ASN, RouterID: c.RouterID, ListenPort: c.ListenPort, GracefulWait: c.GracefulWait,
		BFD: BFDProfile{MinTx: c.BFD.MinTx, MinRx: c.BFD.MinRx, Multiplier: c.BFD.Multiplier},
	}
	for _, p := range c.Peers {
		out.Peers = append(out.Peers, Peer{
			Address: p.Address, ASN: p.ASN, Port: p.Port, SourceAddress: p.SourceAddress, Password: p.Password,
			HoldTime: p.HoldTime, KeepaliveTime: p.KeepaliveTime, ConnectRetry: p.ConnectRetry,
			MultihopTTL: p.MultihopTTL, BFD: p.BFD,
		})
	}
	return out
}

// wireSpeaker adapts an Announcer to wire.Speaker.
type wireSpeaker struct{ a *Announcer }

func (w wireSpeaker) Run(ctx context.Context) error              { return w.a.Run(ctx) }
func (w wireSpeaker) Advertise(addr netip.Addr) error            { return w.a.Advertise(addr) }
func (w wireSpeaker) Withdraw(addr netip.Addr) error             { return w.a.Withdraw(addr) }
func (w wireSpeaker) GracefulShutdown(ctx context.Context) error { return w.a.GracefulShutdown(ctx) }

func (w wireSpeaker) Reconfigure(ctx context.Context, c wire.Config) (bool, error) {
	err := w.a.Reconfigure(ctx, FromWire(c))
	if errors.Is(err, ErrRestartNeeded) {
		return true, nil
	}
	return false, err
}

func (w wireSpeaker) Status(ctx context.Context) (wire.Status, error) {
	st, err := w.a.Status(ctx)
	out := wire.Status{Running: st.Running, GracefulShutdown: st.GracefulShutdown}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, wire.PeerStatus{
			Address: p.Address, ASN: p.ASN, State: p.State, BFD: p.BFD, Advertised: p.Advertised,
		})
	}
	return out, err
}
