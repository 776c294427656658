package config

import (
	"fmt"
	"net/netip"
	"time"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// Mode is how a virtual router's VIPs are announced.
type Mode int

const (
	// ModeVRRP elects one master node that holds the VIPs (the default).
	ModeVRRP Mode = iota
	// ModeBGP has every node whose tracked checks pass hold the VIPs on a
	// local interface and advertise them as host routes (see BGP).
	ModeBGP
)

// String returns the mode's name in the configuration file.
func (m Mode) String() string {
	switch m {
	case ModeVRRP:
		return string(agentv1alpha1.ModeVRRP)
	case ModeBGP:
		return string(agentv1alpha1.ModeBGP)
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DefaultBGPInterface is the interface of a router in mode bgp that names
// none: its VIPs are held on the loopback interface, not on an uplink, so
// that only the routers' host routes bring traffic to them.
const DefaultBGPInterface = "lo"

// BGP is the validated bgp section: the speaker that advertises the VIPs of
// the routers in mode bgp. Its durations have their defaults applied.
type BGP struct {
	// LocalASN is 1 to 4294967294 (0 with ExternalSpeaker).
	LocalASN uint32
	// RouterID is an IPv4 address other than 0.0.0.0, or the zero Addr for
	// the node's first IPv4 address (chosen when the speaker starts).
	RouterID netip.Addr
	// ListenPort is the TCP port BGP connections are accepted on; 0 accepts
	// none.
	ListenPort uint16
	// Peers are 1 to 16 peers with distinct addresses (none with
	// ExternalSpeaker).
	Peers []BGPPeer
	// BFD is the BFD timing of the peers whose BFD is true.
	BFD BFDProfile
	// GracefulShutdownWait is 0 to 10m: how long a draining node waits after
	// re-advertising with GRACEFUL_SHUTDOWN, and again after withdrawing.
	GracefulShutdownWait time.Duration
	// ExternalSpeaker, when not nil, replaces the embedded speaker: the
	// routes go into a kernel routing table for the node's BGP daemon.
	ExternalSpeaker *ExternalSpeaker
}

// BGPPeer is one validated BGP neighbour.
type BGPPeer struct {
	// Address is the peer's address, without zone.
	Address netip.Addr
	// ASN is 1 to 4294967294.
	ASN uint32
	// Port is 1 to 65535 (default 179).
	Port uint16
	// SourceAddress is the local address of the session, in Address's
	// family, or the zero Addr to let the kernel choose.
	SourceAddress netip.Addr
	// PasswordFile is the absolute path of the file holding the TCP MD5
	// key, or "" for none. The key is read when the speaker is configured
	// (at start and on every reload), never kept in the Config.
	PasswordFile string
	// HoldTime is 3s to 65535s in whole seconds (default 90s).
	HoldTime time.Duration
	// KeepaliveTime is 1s to HoldTime in whole seconds.
	KeepaliveTime time.Duration
	// ConnectRetry is 2s to 1h in whole seconds (default 5s).
	ConnectRetry time.Duration
	// EBGPMultihop is 0 (directly connected) or 2 to 255; 0 when BFD.
	EBGPMultihop uint8
	// BFD watches the session with single-hop BFD.
	BFD bool
}

// BFDProfile is the BFD timing of the sessions that use BFD.
type BFDProfile struct {
	// MinTx and MinRx are 10ms to 1m in whole microseconds.
	MinTx, MinRx time.Duration
	// Multiplier is 1 to 255.
	Multiplier uint8
}

// ExternalSpeaker is where the host routes go for the node's BGP daemon.
type ExternalSpeaker struct {
	// Table is the kernel routing table: 1 to 4294967295, not 253, 254 or
	// 255.
	Table uint32
	// Protocol is the routes' rtm_protocol, 5 to 255 (default 250).
	Protocol uint8
}

// bgpFromV1alpha1 converts a validated, defaulted bgp section (nil stays
// nil).
func bgpFromV1alpha1(b *agentv1alpha1.BGP) (*BGP, error) {
	if b == nil {
		return nil, nil
	}
	out := &BGP{
		LocalASN:             uint32(b.LocalASN),
		ListenPort:           uint16(b.ListenPort),
		GracefulShutdownWait: durationOf(b.GracefulShutdownWait),
	}
	if b.RouterID != "" {
		a, err := netip.ParseAddr(b.RouterID)
		if err != nil {
			return nil, fmt.Errorf("bgp.routerID: %w", err)
		}
		out.RouterID = a
	}
	if es := b.ExternalSpeaker; es != nil {
		out.ExternalSpeaker = &ExternalSpeaker{Table: uint32(es.Table), Protocol: uint8(deref(es.Protocol))}
	}
	if p := b.BFDProfile; p != nil {
		out.BFD = BFDProfile{MinTx: durationOf(p.MinTxInterval), MinRx: durationOf(p.MinRxInterval), Multiplier: uint8(deref(p.Multiplier))}
	}
	for i := range b.Peers {
		p := &b.Peers[i]
		a, err := netip.ParseAddr(p.Address)
		if err != nil {
			return nil, fmt.Errorf("bgp.peers[%d].address: %w", i, err)
		}
		peer := BGPPeer{
			Address:       a,
			ASN:           uint32(p.ASN),
			Port:          uint16(p.Port),
			PasswordFile:  p.PasswordFile,
			HoldTime:      durationOf(p.HoldTime),
			KeepaliveTime: durationOf(p.KeepaliveTime),
			ConnectRetry:  durationOf(p.ConnectRetry),
			EBGPMultihop:  uint8(p.EBGPMultihop),
			BFD:           p.BFD,
		}
		if p.SourceAddress != "" {
			s, err := netip.ParseAddr(p.SourceAddress)
			if err != nil {
				return nil, fmt.Errorf("bgp.peers[%d].sourceAddress: %w", i, err)
			}
			peer.SourceAddress = s
		}
		out.Peers = append(out.Peers, peer)
	}
	return out, nil
}

// BGPRouters returns the routers in mode bgp, in file order.
func (c *Config) BGPRouters() []Router {
	var out []Router
	for _, r := range c.Routers {
		if r.Mode == ModeBGP {
			out = append(out, r)
		}
	}
	return out
}

// VRRPRouters returns the routers in mode vrrp, in file order.
func (c *Config) VRRPRouters() []Router {
	var out []Router
	for _, r := range c.Routers {
		if r.Mode == ModeVRRP {
			out = append(out, r)
		}
	}
	return out
}
