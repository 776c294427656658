package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Defaults applied by [Config.withDefaults] to fields left zero.
const (
	// DefaultBFDInterval is the BFD transmit and receive interval of the
	// default profile: with [DefaultBFDMultiplier] a silent peer is declared
	// down after 900 ms.
	DefaultBFDInterval = 300 * time.Millisecond
	// DefaultBFDMultiplier is the BFD detection multiplier of the default
	// profile.
	DefaultBFDMultiplier = 3
	// MinBFDInterval is the shortest BFD interval accepted.
	MinBFDInterval = 10 * time.Millisecond
	// DefaultHoldTime is the BGP hold time proposed to a peer, the 90 s
	// RFC 4271 suggests; BFD, not the hold time, is the fast detection.
	DefaultHoldTime = 90 * time.Second
	// DefaultConnectRetry is how long to wait between attempts to connect
	// to a peer (GoBGP's own default is 120 s; a node should rejoin sooner).
	DefaultConnectRetry = 5 * time.Second
	// DefaultGracefulWait is how long [Announcer.GracefulShutdown] waits
	// after re-advertising with GRACEFUL_SHUTDOWN, and again after the
	// withdrawal.
	DefaultGracefulWait = 2 * time.Second
	// GracefulShutdownCommunity is the well-known GRACEFUL_SHUTDOWN
	// community 65535:0 of RFC 8326.
	GracefulShutdownCommunity uint32 = 0xFFFF0000
)

// Config is what an [Announcer] needs. Its zero durations take the defaults
// above.
type Config struct {
	// ASN is the node's autonomous system number (1..4294967294). Peers
	// with the same ASN are iBGP, the others eBGP.
	ASN uint32
	// RouterID is the node's BGP identifier, an IPv4 address unique among
	// the speakers the peers see (usually the node's IPv4 address).
	RouterID netip.Addr
	// ListenPort is the TCP port to accept BGP connections on; 0 does not
	// listen at all (the node connects to its peers), which is the usual
	// case and never conflicts with a BGP daemon on the node.
	ListenPort uint16
	// Peers are the routers to announce to; at least one.
	Peers []Peer
	// BFD is the BFD profile of the peers whose BFD is on.
	BFD BFDProfile
	// GracefulWait is how long [Announcer.GracefulShutdown] waits after the
	// GRACEFUL_SHUTDOWN re-advertisement and again after the withdrawal;
	// 0 means [DefaultGracefulWait].
	GracefulWait time.Duration
}

// Peer is one BGP neighbour.
type Peer struct {
	// Address is the peer's IP address.
	Address netip.Addr
	// ASN is the peer's autonomous system number.
	ASN uint32
	// Port is the peer's TCP port; 0 means 179.
	Port uint16
	// SourceAddress is the local address the session is opened from (and
	// so the next hop of the advertised routes); invalid (the zero value)
	// lets the kernel choose.
	SourceAddress netip.Addr
	// Password is the TCP MD5 signature key (RFC 2385); empty for none.
	// It comes from a file or a Secret, never from a spec.
	Password string
	// HoldTime is the BGP hold time proposed (0 or at least 3 s, whole
	// seconds); 0 means [DefaultHoldTime].
	HoldTime time.Duration
	// KeepaliveTime is the keepalive interval (whole seconds); 0 means a
	// third of the hold time.
	KeepaliveTime time.Duration
	// ConnectRetry is the wait between connection attempts (whole seconds,
	// at least 2 s); 0 means [DefaultConnectRetry].
	ConnectRetry time.Duration
	// MultihopTTL, when above 1, allows an eBGP peer that many hops away
	// (eBGP multihop); 0 or 1 means directly connected. BFD stays
	// single-hop (RFC 5881) and so needs a directly connected peer.
	MultihopTTL uint8
	// BFD watches the session with BFD using [Config.BFD].
	BFD bool
}

// BFDProfile is the BFD timing of the sessions that use BFD. A peer that
// stops sending is declared down after MinRx x Multiplier.
type BFDProfile struct {
	// MinTx is the desired minimum transmit interval; 0 means
	// [DefaultBFDInterval]; at least [MinBFDInterval].
	MinTx time.Duration
	// MinRx is the required minimum receive interval; 0 means
	// [DefaultBFDInterval]; at least [MinBFDInterval].
	MinRx time.Duration
	// Multiplier is the detection multiplier (1..255); 0 means
	// [DefaultBFDMultiplier].
	Multiplier uint8
}

// DetectionTime is how long a silent peer takes to be declared down.
func (p BFDProfile) DetectionTime() time.Duration {
	return p.MinRx * time.Duration(p.Multiplier)
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if c.BFD.MinTx == 0 {
		c.BFD.MinTx = DefaultBFDInterval
	}
	if c.BFD.MinRx == 0 {
		c.BFD.MinRx = DefaultBFDInterval
	}
	if c.BFD.Multiplier == 0 {
		c.BFD.Multiplier = DefaultBFDMultiplier
	}
	if c.GracefulWait == 0 {
		c.GracefulWait = DefaultGracefulWait
	}
	peers := make([]Peer, len(c.Peers))
	for i, p := range c.Peers {
		if p.HoldTime == 0 {
			p.HoldTime = DefaultHoldTime
		}
		if p.KeepaliveTime == 0 {
			p.KeepaliveTime = (p.HoldTime / 3).Truncate(time.Second)
		}
		if p.ConnectRetry == 0 {
			p.ConnectRetry = DefaultConnectRetry
		}
		peers[i] = p
	}
	c.Peers = peers
	return c
}

// Validate checks c (after the defaults are applied) and returns every
// problem found, each naming the field and what to do.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.ASN == 0 || c.ASN == 0xFFFFFFFF {
		errs = append(errs, fmt.Errorf("asn: %d is not a usable AS number: use 1..4294967294", c.ASN))
	}
	if !c.RouterID.Is4() || c.RouterID.IsUnspecified() {
		errs = append(errs, fmt.Errorf("routerID: %q is not an IPv4 address other than 0.0.0.0: use the node's IPv4 address", c.RouterID))
	}
	if len(c.Peers) == 0 {
		errs = append(errs, errors.New("peers: none configured: add at least one router to announce to"))
	}
	errs = append(errs, c.BFD.validate("bfd")...)
	if c.GracefulWait < 0 {
		errs = append(errs, fmt.Errorf("gracefulWait: %s is negative", c.GracefulWait))
	}
	seen := make(map[netip.Addr]int, len(c.Peers))
	for i, p := range c.Peers {
		f := fmt.Sprintf("peers[%d]", i)
		if j, dup := seen[p.Address]; dup && p.Address.IsValid() {
			errs = append(errs, fmt.Errorf("%s.address: %s is also peers[%d]: list each router once", f, p.Address, j))
		}
		seen[p.Address] = i
		errs = append(errs, p.validate(f)...)
	}
	return errors.Join(errs...)
}

func (p Peer) validate(f string) []error {
	var errs []error
	if !p.Address.IsValid() || p.Address.IsUnspecified() || p.Address.IsMulticast() || p.Address.Zone() != "" {
		errs = append(errs, fmt.Errorf("%s.address: %q is not a unicast IP address", f, p.Address))
	}
	if p.ASN == 0 || p.ASN == 0xFFFFFFFF {
		errs = append(errs, fmt.Errorf("%s.asn: %d is not a usable AS number: use 1..4294967294", f, p.ASN))
	}
	if p.SourceAddress.IsValid() && p.Address.IsValid() && p.SourceAddress.Is4() != p.Address.Is4() {
		errs = append(errs, fmt.Errorf("%s.sourceAddress: %s is not of the address family of %s", f, p.SourceAddress, p.Address))
	}
	if len(p.Password) > 80 {
		errs = append(errs, fmt.Errorf("%s.password: %d bytes; TCP MD5 keys are at most 80", f, len(p.Password)))
	}
	wholeSeconds := func(name string, d time.Duration) {
		if d%time.Second != 0 || d < 0 {
			errs = append(errs, fmt.Errorf("%s.%s: %s is not a whole number of seconds", f, name, d))
		}
	}
	wholeSeconds("holdTime", p.HoldTime)
	wholeSeconds("keepaliveTime", p.KeepaliveTime)
	wholeSeconds("connectRetry", p.ConnectRetry)
	if p.HoldTime > 0 && p.HoldTime < 3*time.Second {
		errs = append(errs, fmt.Errorf("%s.holdTime: %s is below 3s (RFC 4271): use 3s or more", f, p.HoldTime))
	}
	if p.HoldTime > 65535*time.Second {
		errs = append(errs, fmt.Errorf("%s.holdTime: %s is above 65535s", f, p.HoldTime))
	}
	if p.KeepaliveTime > p.HoldTime || p.KeepaliveTime < time.Second {
		errs = append(errs, fmt.Errorf("%s.keepaliveTime: %s must be between 1s and the hold time %s (a third of it is usual)", f, p.KeepaliveTime, p.HoldTime))
	}
	if p.ConnectRetry < 2*time.Second {
		errs = append(errs, fmt.Errorf("%s.connectRetry: %s is below 2s, GoBGP's minimum", f, p.ConnectRetry))
	}
	if p.BFD && p.MultihopTTL > 1 {
		errs = append(errs, fmt.Errorf("%s.bfd: BFD here is single-hop (RFC 5881) but the peer is multihop (ttl %d): turn one of them off", f, p.MultihopTTL))
	}
	return errs
}

func (b BFDProfile) validate(f string) []error {
	var errs []error
	// GoBGP carries the intervals in microseconds in a uint32.
	const maxInterval = time.Duration(1<<32-1) * time.Microsecond
	for _, iv := range []struct {
		name string
		d    time.Duration
	}{{"minTx", b.MinTx}, {"minRx", b.MinRx}} {
		if iv.d < MinBFDInterval {
			errs = append(errs, fmt.Errorf("%s.%s: %s is below %s: use %s or more", f, iv.name, iv.d, MinBFDInterval, MinBFDInterval))
		}
		if iv.d > maxInterval {
			errs = append(errs, fmt.Errorf("%s.%s: %s is above %s", f, iv.name, iv.d, maxInterval))
		}
	}
	return errs
}

// micros converts d to the microseconds GoBGP's BFD API takes.
func micros(d time.Duration) uint32 {
	return uint32(d / time.Microsecond)
}

// hostPrefix returns the host route of a: a /32 or a /128.
func hostPrefix(a netip.Addr) (netip.Prefix, error) {
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not a global unicast address to announce", a)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
