package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Status is a snapshot of an [Announcer].
type Status struct {
	// Running is true while Run serves.
	Running bool
	// GracefulShutdown is true once [Announcer.GracefulShutdown] has marked
	// the routes with the GRACEFUL_SHUTDOWN community.
	GracefulShutdown bool
	// Drained is true once GracefulShutdown has withdrawn every route.
	Drained bool
	// Wanted are the routes the caller asked to advertise, in address order.
	Wanted []netip.Prefix
	// Peers are the configured peers, in configuration order.
	Peers []PeerStatus
}

// PeerStatus is the state of one BGP session.
type PeerStatus struct {
	// Address is the peer's address.
	Address netip.Addr
	// ASN is the peer's AS number.
	ASN uint32
	// State is the BGP session state: idle, connect, active, opensent,
	// openconfirm or established ("" while not running).
	State string
	// BFD is the BFD session state: up, down, init or admin-down; "" when
	// the peer does not use BFD or Run is not serving.
	BFD string
	// Advertised are the routes sent to the peer (its Adj-RIB-Out), in
	// address order.
	Advertised []netip.Prefix
}

// Established reports whether the BGP session is up.
func (p PeerStatus) Established() bool { return p.State == "established" }

// Status returns a snapshot of the announcer and of every session.
func (a *Announcer) Status(ctx context.Context) (Status, error) {
	a.mu.Lock()
	st := Status{
		Running:          a.srv != nil,
		GracefulShutdown: a.gshut,
		Drained:          a.drained,
		Wanted:           a.sortedWant(),
	}
	srv := a.srv
	peers := a.cfg.Peers
	a.mu.Unlock()

	st.Peers = make([]PeerStatus, len(peers))
	for i, p := range peers {
		st.Peers[i] = PeerStatus{Address: p.Address, ASN: p.ASN}
	}
	if srv == nil {
		return st, nil
	}
	byAddr := make(map[netip.Addr]*api.Peer, len(peers))
	if err := srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if addr, err := netip.ParseAddr(p.GetConf().GetNeighborAddress()); err == nil {
			byAddr[addr] = p
		}
	}); err != nil {
		return st, fmt.Errorf("bgp: list peers: %w", err)
	}
	for i := range st.Peers {
		ps := &st.Peers[i]
		p, ok := byAddr[ps.Address]
		if !ok {
			continue
		}
		ps.State = sessionState(p.GetState().GetSessionState())
		if peers[i].BFD {
			ps.BFD = bfdState(p.GetState().GetBfdState().GetSessionState())
		}
		if !ps.Established() {
			continue
		}
		family := bgppkt.RF_IPv4_UC
		if ps.Address.Is6() {
			family = bgppkt.RF_IPv6_UC
		}
		if err := srv.ListPath(apiutil.ListPathRequest{
			TableType: api.TableType_TABLE_TYPE_ADJ_OUT,
			Name:      ps.Address.String(),
			Family:    family,
		}, func(nlri bgppkt.NLRI, _ []*apiutil.Path) {
			if pfx, err := netip.ParsePrefix(nlri.String()); err == nil {
				ps.Advertised = append(ps.Advertised, pfx)
			}
		}); err != nil {
			return st, fmt.Errorf("bgp: list routes advertised to %s: %w", ps.Address, err)
		}
		slices.SortFunc(ps.Advertised, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	}
	return st, nil
}

// sessionState is s without GoBGP's prefix, in lower case: "established".
func sessionState(s api.PeerState_SessionState) string {
	if s == api.PeerState_SESSION_STATE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "SESSION_STATE_"))
}

// bfdState is s without GoBGP's prefix, in lower case: "up", "admin-down".
func bfdState(s api.BfdSessionState) string {
	if s == api.BfdSessionState_BFD_SESSION_STATE_UNSPECIFIED {
		return ""
	}
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.String(), "BFD_SESSION_STATE_")), "_", "-")
}
