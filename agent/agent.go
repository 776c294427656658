// Package agent runs the vipvs agent: it builds the real implementations of
// every part (raw VRRP sockets, netlink VIPs, ARP/NDP announcements, the status
// server) and wires them to one VRRP state machine per virtual router. Nothing
// else in vipvs constructs them.
package agent

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/utils/clock"

	"github.com/vipvs/vipvs/agent/announce"
	"github.com/vipvs/vipvs/agent/balancer"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/ipvssync"
	"github.com/vipvs/vipvs/agent/link"
	"github.com/vipvs/vipvs/agent/notify"
	"github.com/vipvs/vipvs/agent/snat"
	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/agent/vip"
	"github.com/vipvs/vipvs/agent/vrrp"
	"github.com/vipvs/vipvs/version"
)

// Options configure Run.
type Options struct {
	// ConfigPath is the agent config file (agent.vipvs.io/v1alpha1 AgentConfig).
	ConfigPath string
	// Log receives the agent's structured logs.
	Log logr.Logger
	// Clock is the clock; nil means the real one.
	Clock clock.WithTicker
	// Reload, when it receives, re-reads the config file (SIGHUP).
	Reload <-chan struct{}
	// HardStop, when closed, cuts a graceful hand-over short (a second
	// SIGTERM).
	HardStop <-chan struct{}
	// Pprof serves /debug/pprof/ on the status server and socket.
	Pprof bool
}

// Agent is a running agent.
type Agent struct {
	opts    Options
	log     logr.Logger
	clk     clock.WithTicker
	reg     *prometheus.Registry
	m       *metrics
	vips    *vip.Manager
	notify  *notify.Notifier
	bal     *balancer.Balancer
	started time.Time

	mu          sync.Mutex
	linkUp      map[string]bool // interface -> up, as last seen
	checks      map[string]*checkRunner
	cfg         *config.Config
	routers     map[string]*router
	announcers  map[string]*announce.Announcer
	configError string
}

// Run runs the agent until ctx is cancelled, then stops every router
// gracefully (see vrrp.Runner.Run) and returns. It returns an error at once
// when the config file cannot be loaded or the agent's own parts (metrics,
// netlink) cannot start; a router that cannot start (say, no interface holds
// the subnet of its VIP) is reported in the log and the status, the others
// run, and the agent is not ready.
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
	cfg := watcher.Current()
	log.Info("config accepted", "path", opts.ConfigPath, "configHash", cfg.Hash, "routers", len(cfg.Routers))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := newMetrics(reg)
	if err != nil {
		return err
	}
	vips, err := vip.New(log.WithName("vip"))
	if err != nil {
		return fmt.Errorf("starting the VIP manager: %w", err)
	}
	defer vips.Close()

	a := &Agent{
		opts:       opts,
		log:        log,
		clk:        opts.Clock,
		reg:        reg,
		m:          m,
		vips:       vips,
		started:    opts.Clock.Now(),
		routers:    map[string]*router{},
		linkUp:     map[string]bool{},
		checks:     map[string]*checkRunner{},
		announcers: map[string]*announce.Announcer{},
	}
	defer a.closeAnnouncers()
	a.bal, err = balancer.New(balancer.Options{
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
	a.notify = notify.New(notifyCommands(cfg.Notify), log.WithName("notify"), nil)
	notifyCtx, stopNotify := context.WithCancel(context.Background())
	notifyDone := make(chan struct{})
	go func() { a.notify.Run(notifyCtx); close(notifyDone) }()
	defer func() {
		// Deliver the STOP notifications of the routers just stopped.
		stopNotify()
		<-notifyDone
	}()

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go func() {
		if err := vips.Run(bg); err != nil && bg.Err() == nil {
			log.Error(err, "watching VIPs stopped; a VIP deleted by something else will not be put back")
		}
	}()

	balCtx, stopBal := context.WithCancel(bg)
	balDone := make(chan struct{})
	go func() { a.bal.Run(balCtx); close(balDone) }()
	defer func() {
		// After the VIPs were handed over: stop the real-server checks and
		// remove the virtual services and the source NAT.
		stopBal()
		<-balDone
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.bal.Shutdown(sctx); err != nil {
			log.Error(err, "removing the virtual services failed")
		}
	}()

	defer a.stopChecks()
	if err := a.apply(bg, cfg); err != nil {
		// Keep running what could start, and say what could not: in the
		// log, in the status (configError) and by not being ready. A
		// crash loop would hide the reason from the companion.
		a.mu.Lock()
		a.configError = err.Error()
		a.mu.Unlock()
		log.Error(err, "some of the config could not be applied; the agent runs the rest and is not ready")
	}
	srv := status.NewServer(a.Report, a.ready, reg, log.WithName("status"))
	if opts.Pprof {
		srv.EnablePprof()
	}
	if cfg.StatusListen != "" {
		go func() {
			if err := srv.ListenAndServe(bg, cfg.StatusListen); err != nil {
				log.Error(err, "status server stopped")
			}
		}()
	}
	if cfg.StatusSocket != "" {
		go func() {
			if err := srv.ServeSocket(bg, cfg.StatusSocket); err != nil {
				log.Error(err, "status socket stopped")
			}
		}()
	}

	go func() {
		if err := watcher.Run(bg); err != nil {
			log.Error(err, "watching the config file failed; only SIGHUP reloads it")
		}
	}()
	go a.watchLinks(bg)
	updates, errs := watcher.Updates(), watcher.Errors()

	for {
		select {
		case <-ctx.Done():
			log.Info("stopping: releasing the VIPs after a hand-over")
			a.stopAll()
			log.Info("stopped")
			return nil
		case <-opts.Reload:
			log.Info("reload requested")
			watcher.Reload()
		case c := <-updates:
			a.reload(bg, c)
		case err := <-errs:
			a.reject(err)
		}
	}
}

func (a *Agent) reject(err error) {
	a.m.reloads.WithLabelValues("rejected").Inc()
	a.mu.Lock()
	a.configError = err.Error()
	hash := a.cfg.Hash
	a.mu.Unlock()
	a.log.Error(err, "config rejected; the running config stays", "configHash", hash)
}

func (a *Agent) reload(ctx context.Context, c *config.Config) {
	a.mu.Lock()
	same := a.cfg != nil && a.cfg.Hash == c.Hash
	a.configError = ""
	a.mu.Unlock()
	if same {
		a.m.reloads.WithLabelValues("unchanged").Inc()
		return
	}
	if err := a.apply(ctx, c); err != nil {
		a.m.reloads.WithLabelValues("rejected").Inc()
		a.mu.Lock()
		a.configError = err.Error()
		a.mu.Unlock()
		a.log.Error(err, "applying the new config failed")
		return
	}
	a.m.reloads.WithLabelValues("applied").Inc()
	a.log.Info("config accepted", "configHash", c.Hash, "routers", len(c.Routers))
}

// apply makes the running routers match c: unchanged routers keep running
// (state and VIPs), a priority-only change is applied without a restart,
// anything else restarts the router.
func (a *Agent) apply(ctx context.Context, c *config.Config) error {
	c, err := pickInterfaces(c)
	if c == nil {
		return err
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if err := a.applyChecks(ctx, c.Checks); err != nil {
		errs = append(errs, err)
	}
	a.mu.Lock()
	old := a.routers
	a.mu.Unlock()
	want := map[string]config.Router{}
	for _, rc := range c.Routers {
		want[rc.Name] = rc
	}
	next := map[string]*router{}
	var toStop []*router
	for name, r := range old {
		rc, ok := want[name]
		switch {
		case !ok:
			a.log.Info("router removed from the config", "router", name)
			toStop = append(toStop, r)
		case reflect.DeepEqual(rc, r.cfg):
			next[name] = r
		case liveChange(r.cfg, rc):
			// Priority, track checks and unicast peers change without a
			// restart: the state and the VIPs stay, recompute delivers the
			// difference.
			a.log.Info("router priority, track checks or peers changed, applying them live", "router", name, "priority", rc.Priority, "peers", len(rc.Peers))
			if !slices.Equal(r.cfg.Peers, rc.Peers) {
				if err := r.setPeers(rc.Peers); err != nil {
					errs = append(errs, fmt.Errorf("router %s: %w", name, err))
				}
			}
			a.mu.Lock()
			r.cfg.Priority, r.cfg.TrackChecks, r.cfg.PreemptAfterChecks, r.cfg.Peers = rc.Priority, rc.TrackChecks, rc.PreemptAfterChecks, rc.Peers
			a.mu.Unlock()
			next[name] = r
		default:
			a.log.Info("router changed, restarting it", "router", name)
			toStop = append(toStop, r)
		}
	}
	a.stopRouters(toStop)
	for _, r := range toStop {
		if _, kept := want[r.cfg.Name]; !kept {
			a.m.forget(r.cfg)
		}
	}

	names := make([]string, 0, len(want))
	for name := range want {
		if _, ok := next[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		rc := want[name]
		if rc.Interface == "" {
			continue // pickInterfaces said why
		}
		// A copy of a VIP we do not hold is a leftover (a crashed agent):
		// remove it before we start as Backup.
		removed, err := a.vips.RemoveStale(rc.Interface, rc.VIPs)
		if err != nil {
			errs = append(errs, fmt.Errorf("removing stale VIPs of router %s: %w", name, err))
		}
		for _, p := range removed {
			a.log.Info("stale VIP removed", "router", name, "interface", rc.Interface, "vip", p.String())
		}
		ann, err := a.announcer(rc.Interface)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r, err := startRouter(ctx, rc, a.vips, ann, a.clk, a.log, a.m, a.observer(rc.Name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next[name] = r
	}
	a.mu.Lock()
	a.routers = next
	a.cfg = c
	a.mu.Unlock()
	a.notify.SetCommands(notifyCommands(c.Notify))
	a.recompute()
	a.bal.Update(c)
	return errors.Join(errs...)
}

// observer returns the transition observer of a router: it tells the
// balancer whether the node holds the router's VIPs, and queues a notify
// event when the keepalived state word changes (Active -> Releasing does not).
func (a *Agent) observer(name string) vrrp.Observer {
	return func(t vrrp.Transition, prio uint8) {
		a.bal.SetMaster(name, t.To == vrrp.Active || t.To == vrrp.Releasing)
		if t.From.Keepalived() == t.To.Keepalived() {
			return
		}
		a.notify.Notify(notify.Event{Router: name, State: t.To.Keepalived(), Priority: prio})
	}
}

func notifyCommands(n config.Notify) notify.Commands {
	return notify.Commands{Command: n.Command, Master: n.Master, Backup: n.Backup, Fault: n.Fault, Stop: n.Stop, Timeout: n.Timeout}
}

// liveChange reports whether a and b differ only in what a running router
// can take without a restart: the priority (not to or from 255, the owner's,
// which changes the receive checks), the track checks, and the unicast peer
// list (not between unicast and multicast, which changes the socket).
func liveChange(a, b config.Router) bool {
	if a.Priority == vrrp.OwnerPriority || b.Priority == vrrp.OwnerPriority {
		return false
	}
	if a.Multicast() != b.Multicast() {
		return false
	}
	a.Priority, a.TrackChecks, a.PreemptAfterChecks, a.Peers = b.Priority, b.TrackChecks, b.PreemptAfterChecks, b.Peers
	return reflect.DeepEqual(a, b)
}

func (a *Agent) announcer(ifname string) (*announce.Announcer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ann, ok := a.announcers[ifname]; ok {
		return ann, nil
	}
	ann, err := announce.New(ifname, a.log.WithName("announce"))
	if err != nil {
		return nil, fmt.Errorf("opening announcer on %s: %w", ifname, err)
	}
	a.announcers[ifname] = ann
	return ann, nil
}

func (a *Agent) closeAnnouncers() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, ann := range a.announcers {
		_ = ann.Close()
		delete(a.announcers, name)
	}
}

// stopGrace bounds a graceful hand-over of a router: the longest any Backup
// can take to become Active (Master_Down_Interval at priority 1 of the longest
// v2 interval) plus a margin. The state machine has its own, tighter bound.
func stopGrace(rc config.Router) time.Duration {
	return 4*rc.AdvertInterval + 2*time.Second
}

// stopRouters stops routers concurrently and waits for all of them.
func (a *Agent) stopRouters(rs []*router) {
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			grace := stopGrace(r.cfg)
			stopped := make(chan struct{})
			go func() { r.stop(grace); close(stopped) }()
			select {
			case <-stopped:
			case <-a.opts.HardStop:
				r.cutShort()
				<-stopped
			}
		}()
	}
	wg.Wait()
}

func (a *Agent) stopAll() {
	a.mu.Lock()
	rs := make([]*router, 0, len(a.routers))
	for _, r := range a.routers {
		rs = append(rs, r)
	}
	a.routers = map[string]*router{}
	a.mu.Unlock()
	a.stopRouters(rs)
}

// ready reports whether every configured router runs.
func (a *Agent) ready() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg == nil {
		return errors.New("no config loaded")
	}
	for _, rc := range a.cfg.Routers {
		if _, ok := a.routers[rc.Name]; !ok {
			return fmt.Errorf("router %s is not running", rc.Name)
		}
	}
	return nil
}

// Report returns the agent's status document.
func (a *Agent) Report() status.Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	rep := status.Report{Version: version.Version, Started: a.started, ConfigError: a.configError, Checks: a.checkReports(), IPVS: a.bal.Status()}
	if a.cfg != nil {
		rep.Node = a.cfg.NodeName
		rep.ConfigHash = a.cfg.Hash
		for _, rc := range a.cfg.Routers {
			if r, ok := a.routers[rc.Name]; ok {
				rep.Routers = append(rep.Routers, r.report())
			}
		}
	}
	return rep
}

// linkResync is how often the link states are re-read in case a netlink
// notification was lost.
const linkResync = 5 * time.Second

// watchLinks moves the routers of an interface that goes down to Fault (no
// VIP, no adverts: another node takes over, and this one does not claim the
// VIPs back blindly), and back to Backup when it returns, as keepalived does.
func (a *Agent) watchLinks(ctx context.Context) {
	a.mu.Lock()
	seen := map[string]bool{}
	var names []string
	for _, rc := range a.cfg.Routers {
		if !seen[rc.Interface] {
			seen[rc.Interface] = true
			names = append(names, rc.Interface)
		}
	}
	a.mu.Unlock()
	err := link.Watch(ctx, names, linkResync, a.log.WithName("link"), func(ifname string, up bool) {
		a.mu.Lock()
		prev, known := a.linkUp[ifname]
		a.linkUp[ifname] = up
		a.mu.Unlock()
		if known && prev == up || !known && up {
			return
		}
		if up {
			a.log.Info("interface up", "interface", ifname)
		} else {
			a.log.Info("interface down: its routers go to FAULT", "interface", ifname)
		}
		a.recompute()
	})
	if err != nil {
		a.log.Error(err, "watching the interfaces failed; a router on a down interface will not go to FAULT")
	}
}
