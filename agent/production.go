package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/vipvs/vipvs/agent/ipvssync"
	"github.com/vipvs/vipvs/agent/snat"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/utils/clock"

	"github.com/vipvs/vipvs/agent/announce"
	"github.com/vipvs/vipvs/agent/arpwatch"
	"github.com/vipvs/vipvs/agent/balancer"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/link"
	"github.com/vipvs/vipvs/agent/noarp"
	"github.com/vipvs/vipvs/agent/routetable"
	"github.com/vipvs/vipvs/agent/timerfd"
	"github.com/vipvs/vipvs/agent/transport"
	"github.com/vipvs/vipvs/agent/vip"
)

// linkResync is how often the link states are re-read in case a netlink
// notification was lost.
const linkResync = 5 * time.Second

// Run builds the real parts of the agent (the config watcher, the shared
// raw VRRP sockets, netlink VIPs, ARP/NDP announcers, the link watcher,
// IPVS), assembles them with New and runs the agent until ctx is cancelled
// (see Agent.Run). It returns an error at once when the config file cannot
// be loaded or the agent's own parts cannot start.
func Run(ctx context.Context, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	log := opts.Log
	// The watcher loads the file: a change between loading and watching
	// cannot be missed.
	watcher, err := config.NewWatcher(opts.ConfigPath, log.WithName("config"))
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	vips, err := vip.New(log.WithName("vip"))
	if err != nil {
		return fmt.Errorf("starting the VIP manager: %w", err)
	}
	defer vips.Close()
	bal, err := balancer.New(balancer.Options{
		Log:             log.WithName("ipvs"),
		Clock:           opts.Clock,
		Registerer:      reg,
		OpenTable:       openIPVS,
		OpenSNAT:        snatOpener(log.WithName("snat")),
		PrepareKernel:   prepareKernel,
		OpenSync:        func() (balancer.ConnSync, error) { return ipvssync.OpenManager(log.WithName("ipvssync")) },
		CountConns:      ipvssync.ReadConnCounts,
		PrepareTakeover: snat.EnableTakeover,
	})
	if err != nil {
		return err
	}
	hub := transport.NewHub(log.WithName("transport"))
	defer hub.Close()
	if _, real := opts.Clock.(clock.RealClock); real && opts.TimerClock == nil {
		// One timerfd for every router's timer: see agent/timerfd. It is
		// closed after a.Run, which waits for the routers.
		timers, err := timerfd.New()
		if err != nil {
			return err
		}
		defer timers.Close()
		opts.TimerClock = timers
	}
	a, err := New(opts, Parts{
		Config:   watcher,
		Network:  hubNetwork{hub},
		VIPs:     vips,
		Links:    link.NewWatcher(linkResync, log.WithName("link")),
		Balancer: bal,
		OpenAnnouncer: func(ifname string) (Announcer, error) {
			return announce.New(ifname, log.WithName("announce"))
		},
		PickInterfaces: pickInterfaces,
		OpenARPWatch: func(ifname string) (ARPWatch, error) {
			return arpwatch.Open(ifname)
		},
		OpenRouteAnnouncer: func(c *config.BGP) (RouteAnnouncer, error) {
			return openRouteAnnouncer(c, log.WithName("bgp"))
		},
		OpenLocalVIPs: func(protocol uint8) (VIPs, error) {
			return openLocalVIPs(protocol, log.WithName("localvips"))
		},
		ARPGuard: noarp.New(noarpTable(opts.ConfigPath)),
	}, reg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// openRouteAnnouncer builds the route announcer of the routers in mode bgp
// from the bgp section: the embedded BGP speaker (agent/bgp, run in a child
// process, vipvs-bgp-speaker, so that the agent does not link GoBGP: see
// childSpeaker), or, when
// c.ExternalSpeaker is set, the writer of host routes into a kernel table
// for the node's own BGP daemon (agent/routetable). This is the one place
// that chooses it.
func openRouteAnnouncer(c *config.BGP, log logr.Logger) (RouteAnnouncer, error) {
	if c.ExternalSpeaker != nil {
		return newExternalSpeaker(c, log)
	}
	return newChildSpeaker(c, log)
}

// openLocalVIPs is the holder of the bgp routers' VIPs as local routes of
// protocol in external-speaker mode (see bgpSide.vips).
func openLocalVIPs(protocol uint8, log logr.Logger) (VIPs, error) {
	return routetable.NewLocalVIPs(routetable.LocalConfig{Protocol: protocol}, log)
}

// noarpTable is the name of the agent's "arp" nftables table (agent/noarp):
// one per config file, so that the agents of several LoadBalancerConfigs on
// a node keep their own.
func noarpTable(configPath string) string {
	sum := sha256.Sum256([]byte(configPath))
	return "vipvs-noarp-" + hex.EncodeToString(sum[:4])
}

// hubNetwork adapts a transport.Hub to Network.
type hubNetwork struct{ hub *transport.Hub }

func (n hubNetwork) Subscribe(opts transport.Options, vrid uint8, h transport.Handler) (Endpoint, error) {
	sub, err := n.hub.Subscribe(opts, vrid, h)
	if err != nil {
		return nil, err
	}
	return sub, nil
}
