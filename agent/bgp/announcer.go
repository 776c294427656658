package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Announcer advertises a changing set of host routes to BGP peers. Create it
// with [New], start it with [Run]; [Advertise], [Withdraw], [Status] and
// [GracefulShutdown] are safe for concurrent use, before, during and after
// Run.
type Announcer struct {
	log logr.Logger

	mu sync.Mutex
	// cfg is the configuration; Reconfigure replaces its peers.
	cfg Config
	// want is the set of routes the caller wants advertised.
	want map[netip.Prefix]struct{}
	// srv is the running BGP server, nil outside Run.
	srv *server.BgpServer
	// gshut marks the routes with the GRACEFUL_SHUTDOWN community.
	gshut bool
	// drained withdraws every route whatever want holds.
	drained bool
	// running is true from Run's start to its end (one Run at a time).
	running bool
}

// New checks cfg and returns an Announcer that is not yet running.
func New(cfg Config, log logr.Logger) (*Announcer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bgp config: %w", err)
	}
	return &Announcer{
		cfg:  cfg.withDefaults(),
		log:  log,
		want: make(map[netip.Prefix]struct{}),
	}, nil
}

// Run starts the BGP server, configures the peers, advertises the wanted
// routes and serves until ctx is done; then it closes every session (the
// peers drop the routes at once: call [GracefulShutdown] first to drain) and
// returns once every goroutine it started has ended. It returns an error
// only when the server cannot be started.
func (a *Announcer) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.running {
		a.mu.Unlock()
		return errors.New("bgp: announcer already running")
	}
	a.running = true
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.running = false
		a.mu.Unlock()
	}()

	srv := server.NewBgpServer(server.LoggerOption(slog.New(logr.ToSlogHandler(a.log.WithName("gobgp"))), nil))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.Serve()
	}()
	// StartBgp below is handled by Serve's loop, so by the time it returns
	// Serve is running and Stop (which stops it, the FSMs and BFD) will
	// not miss it.
	defer func() {
		srv.Stop()
		wg.Wait()
		a.log.Info("bgp: stopped")
	}()

	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()
	listen := int32(-1) // GoBGP: a negative port does not listen.
	if cfg.ListenPort != 0 {
		listen = int32(cfg.ListenPort)
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        cfg.ASN,
		RouterId:   cfg.RouterID.String(),
		ListenPort: listen,
	}}); err != nil {
		return fmt.Errorf("bgp: start server (asn %d, router id %s): %w", cfg.ASN, cfg.RouterID, err)
	}

	// The peers are added under the lock that Reconfigure takes: it sees
	// either no server (and changes only the config) or every peer.
	a.mu.Lock()
	for _, p := range a.cfg.Peers {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: a.apiPeer(p)}); err != nil {
			a.mu.Unlock()
			return fmt.Errorf("bgp: add peer %s (asn %d): %w", p.Address, p.ASN, err)
		}
	}
	var errs []error
	if !a.drained {
		for _, p := range a.sortedWant() {
			if err := a.addPath(srv, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	a.srv = srv
	a.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		a.log.Error(err, "bgp: advertise the routes wanted before the start")
	}
	a.log.Info("bgp: running", "asn", cfg.ASN, "routerID", cfg.RouterID, "peers", len(cfg.Peers))

	<-ctx.Done()
	a.mu.Lock()
	a.srv = nil
	a.mu.Unlock()
	return nil
}

// apiPeer is p in GoBGP's terms; a.mu is held.
func (a *Announcer) apiPeer(p Peer) *api.Peer {
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			AuthPassword:    p.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(p.HoldTime / time.Second),
			KeepaliveInterval: uint64(p.KeepaliveTime / time.Second),
			ConnectRetry:      uint64(p.ConnectRetry / time.Second),
			// After a reset (BFD down, hold timer expired) reconnect as
			// soon as a connection attempt would, not GoBGP's 30 s later.
			IdleHoldTimeAfterReset: uint64(p.ConnectRetry / time.Second),
		}},
		Transport: &api.Transport{
			RemotePort: uint32(p.Port),
		},
	}
	if p.SourceAddress.IsValid() {
		ap.Transport.LocalAddress = p.SourceAddress.String()
	}
	if p.MultihopTTL > 1 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.MultihopTTL)}
	}
	if p.BFD {
		ap.Bfd = &api.BfdPeerConfig{
			Enabled: true,
			// GoBGP's BFD intervals are in microseconds.
			DesiredMinimumTxInterval: micros(a.cfg.BFD.MinTx),
			RequiredMinimumReceive:   micros(a.cfg.BFD.MinRx),
			DetectionMultiplier:      uint32(a.cfg.BFD.Multiplier),
		}
	}
	return ap
}

// Advertise adds the host route of addr (/32 or /128) to the advertised set.
// Advertising a route already advertised does nothing.
func (a *Announcer) Advertise(addr netip.Addr) error {
	p, err := hostPrefix(addr)
	if err != nil {
		return fmt.Errorf("bgp: advertise: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.want[p]; ok {
		return nil
	}
	if a.srv != nil && !a.drained {
		if err := a.addPath(a.srv, p); err != nil {
			return err
		}
	}
	a.want[p] = struct{}{}
	a.log.Info("bgp: advertise", "prefix", p)
	return nil
}

// Withdraw removes the host route of addr from the advertised set.
// Withdrawing a route not advertised does nothing.
func (a *Announcer) Withdraw(addr netip.Addr) error {
	p, err := hostPrefix(addr)
	if err != nil {
		return fmt.Errorf("bgp: withdraw: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.want[p]; !ok {
		return nil
	}
	if a.srv != nil && !a.drained {
		if err := a.deletePath(a.srv, p); err != nil {
			return err
		}
	}
	delete(a.want, p)
	a.log.Info("bgp: withdraw", "prefix", p)
	return nil
}

// GracefulShutdown drains the node (RFC 8326): it re-advertises every route
// with the GRACEFUL_SHUTDOWN community so that routers honouring it prefer
// other paths, waits [Config.GracefulWait], withdraws every route, and waits
// again for the routers to converge. The sessions stay up; cancel Run's
// context afterwards. Routes advertised afterwards are recorded but not
// announced. It returns early with ctx's error when ctx ends first.
func (a *Announcer) GracefulShutdown(ctx context.Context) error {
	a.mu.Lock()
	a.gshut = true
	var errs []error
	if a.srv != nil && !a.drained {
		for _, p := range a.sortedWant() {
			if err := a.addPath(a.srv, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	running := a.srv != nil
	wait := a.cfg.GracefulWait
	a.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bgp: graceful shutdown: %w", err)
	}
	a.log.Info("bgp: graceful shutdown: routes marked GRACEFUL_SHUTDOWN", "wait", wait)
	if running {
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}

	a.mu.Lock()
	if a.srv != nil && !a.drained {
		for _, p := range a.sortedWant() {
			if err := a.deletePath(a.srv, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	a.drained = true
	running = a.srv != nil
	a.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bgp: graceful shutdown: %w", err)
	}
	a.log.Info("bgp: graceful shutdown: routes withdrawn", "wait", wait)
	if running {
		return sleep(ctx, wait)
	}
	return nil
}

// sleep waits d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sortedWant returns the wanted routes in a stable order; a.mu is held.
func (a *Announcer) sortedWant() []netip.Prefix {
	ps := make([]netip.Prefix, 0, len(a.want))
	for p := range a.want {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return ps
}

// addPath advertises p (again, replacing the previous advertisement) with
// the current attributes; a.mu is held.
func (a *Announcer) addPath(srv *server.BgpServer, p netip.Prefix) error {
	path, err := a.path(p, false)
	if err != nil {
		return err
	}
	if _, err := srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}}); err != nil {
		return fmt.Errorf("bgp: advertise %s: %w", p, err)
	}
	return nil
}

// deletePath withdraws p; a.mu is held.
func (a *Announcer) deletePath(srv *server.BgpServer, p netip.Prefix) error {
	path, err := a.path(p, true)
	if err != nil {
		return err
	}
	if err := srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{path}}); err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", p, err)
	}
	return nil
}

// path is the GoBGP path of p: origin IGP, an unspecified next hop (which
// GoBGP replaces with each session's local address) and, while draining,
// the GRACEFUL_SHUTDOWN community.
func (a *Announcer) path(p netip.Prefix, withdraw bool) (*apiutil.Path, error) {
	nlri, err := bgppkt.NewIPAddrPrefix(p)
	if err != nil {
		return nil, fmt.Errorf("bgp: prefix %s: %w", p, err)
	}
	family, nh := bgppkt.RF_IPv4_UC, netip.IPv4Unspecified()
	if p.Addr().Is6() {
		family, nh = bgppkt.RF_IPv6_UC, netip.IPv6Unspecified()
	}
	attrs := []bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if family == bgppkt.RF_IPv4_UC {
		attr, err := bgppkt.NewPathAttributeNextHop(nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, attr)
	} else {
		attr, err := bgppkt.NewPathAttributeMpReachNLRI(family, []bgppkt.PathNLRI{{NLRI: nlri}}, nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, attr)
	}
	if a.gshut {
		attrs = append(attrs, bgppkt.NewPathAttributeCommunities([]uint32{GracefulShutdownCommunity}))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw}, nil
}

// ErrRestartNeeded is returned by [Announcer.Reconfigure] for a change it
// cannot apply to a running server (the ASN, the router ID or the listen
// port): build a new Announcer.
var ErrRestartNeeded = errors.New("bgp: the ASN, router ID or listen port changed: the speaker must be restarted")

// Reconfigure applies cfg to the announcer without closing the sessions it
// does not change: removed peers are deleted, new ones added, and a peer
// whose settings changed (or, with BFD, the BFD profile) is re-added alone.
// The routes stay advertised to the other peers; a new peer gets them once
// its session is up. A change of the ASN, router ID or listen port returns
// [ErrRestartNeeded] and changes nothing.
func (a *Announcer) Reconfigure(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("bgp config: %w", err)
	}
	cfg = cfg.withDefaults()
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.cfg
	if old.ASN != cfg.ASN || old.RouterID != cfg.RouterID || old.ListenPort != cfg.ListenPort {
		return ErrRestartNeeded
	}
	if a.srv == nil {
		a.cfg = cfg
		return nil
	}
	newBy := make(map[netip.Addr]Peer, len(cfg.Peers))
	for _, p := range cfg.Peers {
		newBy[p.Address] = p
	}
	var errs []error
	kept := make(map[netip.Addr]bool, len(old.Peers))
	for _, p := range old.Peers {
		np, ok := newBy[p.Address]
		if ok && np == p && (!p.BFD || old.BFD == cfg.BFD) {
			kept[p.Address] = true
			continue
		}
		if err := a.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: delete peer %s: %w", p.Address, err))
			kept[p.Address] = true // still there: do not add it twice
			continue
		}
		a.log.Info("bgp: peer removed", "peer", p.Address, "changed", ok)
	}
	a.cfg = cfg
	for _, p := range cfg.Peers {
		if kept[p.Address] {
			continue
		}
		if err := a.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: a.apiPeer(p)}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: add peer %s (asn %d): %w", p.Address, p.ASN, err))
			continue
		}
		a.log.Info("bgp: peer added", "peer", p.Address, "asn", p.ASN)
	}
	return errors.Join(errs...)
}
