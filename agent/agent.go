// Package agent runs the vipvs agent. New assembles an Agent from its parts
// (the config source, the shared VRRP sockets, the VIP manager, the
// announcers, the link watcher, the IPVS balancer, the route announcer of
// mode bgp, see Parts) and wires them to one VRRP state machine per virtual
// router in mode vrrp, and runs the routers in mode bgp beside them (see
// bgprouter.go); Run builds the real parts and runs it. Every goroutine the Agent starts belongs to its
// group and is waited for before Run returns.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/vipvs/vipvs/agent/check"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/link"
	"github.com/vipvs/vipvs/agent/notify"
	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/agent/vrrp"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/version"
)

// Options configure an Agent.
type Options struct {
	// ConfigPath is the agent config file (agent.vipvs.io/v1alpha1 AgentConfig).
	ConfigPath string
	// Log receives the agent's structured logs.
	Log logr.Logger
	// Clock is the clock; nil means the real one.
	Clock clock.WithTicker
	// TimerClock is the clock of the VRRP routers' timers (vrrp.NewRunner);
	// nil means Clock. Run gives the real agent one timerfd-backed clock
	// (agent/timerfd) shared by every router, so that a timer costs no Go
	// runtime timer.
	TimerClock clock.Clock
	// Reload, when it receives, re-reads the config file (SIGHUP).
	Reload <-chan struct{}
	// HardStop, when closed, cuts a graceful hand-over short (a second
	// SIGTERM).
	HardStop <-chan struct{}
	// Pprof serves /debug/pprof/ on the status server and socket.
	Pprof bool
}

// Agent is the agent: the routers of the current config and the parts
// they use. Create it with New, run it with Run.
type Agent struct {
	opts    Options
	log     logr.Logger
	clk     clock.WithTicker
	parts   Parts
	reg     *prometheus.Registry
	m       *metrics
	notify  *notify.Notifier
	started time.Time

	// group holds every goroutine the Agent starts; Run waits for it.
	group sync.WaitGroup
	// applyMu serialises the changes of the router set: a config applied,
	// routers restarted on a re-created interface, the final stop.
	applyMu sync.Mutex
	stopped bool // guarded by applyMu: no router starts after the final stop
	// runCtx is the context of the routers started outside a config
	// change (on a re-created interface); done when Run ends.
	runCtx context.Context

	mu          sync.Mutex
	links       map[string]link.State   // interface -> state, as last seen
	checks      *check.Pool             // the track checks
	checkCfgs   map[string]config.Check // the running checks' configs
	everHealthy map[string]bool         // checks that have been healthy since they started
	cfg         *config.Config
	routers     map[string]*router
	announcers  map[string]Announcer
	// bgp runs the routers in mode bgp and their route announcer.
	bgp *bgpSide
	// arps shares one ARP watcher per interface between the routers
	// (nil without Parts.OpenARPWatch).
	arps        *arpShares
	configError string
	// configProblems are configError's typed problems (the status contract).
	configProblems []statusv1.Problem
}

// New assembles an Agent from its parts. reg receives the agent's metrics.
// It starts nothing.
func New(opts Options, parts Parts, reg *prometheus.Registry) (*Agent, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.TimerClock == nil {
		opts.TimerClock = opts.Clock
	}
	if parts.Config == nil || parts.Network == nil || parts.VIPs == nil || parts.Links == nil ||
		parts.Balancer == nil || parts.OpenAnnouncer == nil || parts.PickInterfaces == nil {
		return nil, errors.New("agent: every part must be given")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	cfg := parts.Config.Current()
	a := &Agent{
		opts:        opts,
		log:         opts.Log,
		clk:         opts.Clock,
		parts:       parts,
		reg:         reg,
		m:           m,
		notify:      notify.New(notifyCommands(cfg.Notify), opts.Log.WithName("notify"), nil),
		started:     opts.Clock.Now(),
		routers:     map[string]*router{},
		links:       map[string]link.State{},
		checks:      check.NewPool(opts.Clock, opts.Log.WithName("check")),
		checkCfgs:   map[string]config.Check{},
		everHealthy: map[string]bool{},
		announcers:  map[string]Announcer{},
	}
	a.bgp = newBGPSide(a)
	if err := reg.Register(newBGPCollector(a.bgp.report)); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	if parts.OpenARPWatch != nil {
		a.arps = &arpShares{open: parts.OpenARPWatch, clk: opts.Clock, group: a.goroutine, log: opts.Log.WithName("arpwatch"), byIf: map[string]*arpShare{}}
	}
	return a, nil
}

// goroutine runs f in the Agent's group.
func (a *Agent) goroutine(f func()) {
	a.group.Add(1)
	go func() {
		defer a.group.Done()
		f()
	}()
}

// Run runs the agent until ctx is cancelled, then stops every router
// gracefully (see vrrp.Runner.Run), stops every goroutine of the group,
// waits for them, removes the virtual services and returns. A router that
// cannot start (say, no interface holds the subnet of its VIP) is reported
// in the log and the status, the others run, and the agent is not ready.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.parts.Config.Current()
	a.log.Info("config accepted", "path", a.opts.ConfigPath, "configHash", cfg.Hash, "routers", len(cfg.Routers))
	// bg lives until the routers have stopped: the parts the routers use
	// (VIP watcher, balancer, notify hooks, link watcher) outlive them.
	bg, stopBG := context.WithCancel(context.Background())
	a.applyMu.Lock()
	a.runCtx = bg
	a.applyMu.Unlock()
	defer func() {
		stopBG()
		a.group.Wait()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// After the VIPs were handed over: remove the virtual services
		// and the source NAT.
		if err := a.parts.Balancer.Shutdown(sctx); err != nil {
			a.log.Error(err, "removing the virtual services failed")
		}
		a.closeAnnouncers()
	}()

	a.goroutine(func() { a.notify.Run(bg) })
	a.goroutine(func() { a.checks.Run(bg) })
	a.goroutine(func() {
		if err := a.parts.VIPs.Run(bg); err != nil && bg.Err() == nil {
			a.log.Error(err, "watching VIPs stopped; a VIP deleted by something else will not be put back")
		}
	})
	a.goroutine(func() { a.parts.Balancer.Run(bg) })
	a.goroutine(func() {
		if err := a.parts.Links.Run(bg, a.linkChanged); err != nil {
			a.log.Error(err, "watching the interfaces failed; a router on a down interface will not go to FAULT")
		}
	})

	if err := a.apply(bg, cfg); err != nil {
		// Keep running what could start, and say what could not: in the
		// log, in the status (configError) and by not being ready. A
		// crash loop would hide the reason from the companion.
		a.setConfigError(err)
		a.log.Error(err, "some of the config could not be applied; the agent runs the rest and is not ready")
	}
	a.serveStatus(bg, cfg)
	a.goroutine(func() {
		if err := a.parts.Config.Run(bg); err != nil {
			a.log.Error(err, "watching the config file failed; only SIGHUP reloads it")
		}
	})
	updates, errs := a.parts.Config.Updates(), a.parts.Config.Errors()
	for {
		select {
		case <-ctx.Done():
			a.log.Info("stopping: releasing the VIPs after a hand-over")
			a.stopAll()
			a.log.Info("stopped")
			return nil
		case <-a.opts.Reload:
			a.log.Info("reload requested")
			a.parts.Config.Reload()
			// The password files of the bgp peers are read again even
			// when the config file did not change.
			a.bgp.reloadSecrets()
		case c := <-updates:
			a.reload(bg, c)
		case err := <-errs:
			a.reject(err)
		}
	}
}

// serveStatus starts the status server and socket the config asks for.
func (a *Agent) serveStatus(ctx context.Context, cfg *config.Config) {
	if cfg.StatusListen == "" && cfg.StatusSocket == "" {
		return
	}
	srv := status.NewServer(a.Report, a.ready, a.reg, a.log.WithName("status"))
	if a.opts.Pprof {
		srv.EnablePprof()
	}
	srv.EnableDrain(a.Drain)
	if cfg.StatusListen != "" {
		a.goroutine(func() {
			if err := srv.ListenAndServe(ctx, cfg.StatusListen); err != nil {
				a.log.Error(err, "status server stopped")
			}
		})
	}
	if cfg.StatusSocket != "" {
		a.goroutine(func() {
			if err := srv.ServeSocket(ctx, cfg.StatusSocket); err != nil {
				a.log.Error(err, "status socket stopped")
			}
		})
	}
}

func (a *Agent) setConfigError(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.configError, a.configProblems = "", nil
	if err != nil {
		a.configError, a.configProblems = err.Error(), statusv1.ProblemsOf(err, statusv1.CodeApplyFailed)
	}
}

func (a *Agent) reject(err error) {
	a.m.reloads.WithLabelValues("rejected").Inc()
	a.mu.Lock()
	a.configError, a.configProblems = err.Error(), statusv1.ProblemsOf(err, statusv1.CodeConfigInvalid)
	hash := ""
	if a.cfg != nil {
		hash = a.cfg.Hash
	}
	a.mu.Unlock()
	a.log.Error(err, "config rejected; the running config stays", "configHash", hash)
}

func (a *Agent) reload(ctx context.Context, c *config.Config) {
	a.mu.Lock()
	same := a.cfg != nil && a.cfg.Hash == c.Hash
	a.configError, a.configProblems = "", nil
	a.mu.Unlock()
	if same {
		a.m.reloads.WithLabelValues("unchanged").Inc()
		return
	}
	if err := a.apply(ctx, c); err != nil {
		a.m.reloads.WithLabelValues("rejected").Inc()
		a.setConfigError(err)
		a.log.Error(err, "applying the new config failed")
		return
	}
	a.m.reloads.WithLabelValues("applied").Inc()
	a.log.Info("config accepted", "configHash", c.Hash, "routers", len(c.Routers))
}

// apply makes the running routers match c: unchanged routers keep running
// (state and VIPs), a change of priority, track checks or peers is applied
// without a restart, anything else restarts the router (an Active one
// hands over to its successor on this node: handover.go). The config is
// recorded even when parts of it cannot start, so that the status, the
// link watcher and the next reload see it.
func (a *Agent) apply(ctx context.Context, c *config.Config) error {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	if a.stopped {
		return errors.New("the agent is stopping")
	}
	var errs []error
	picked, err := a.parts.PickInterfaces(c)
	if err != nil {
		errs = append(errs, err)
	}
	if picked != nil {
		c = picked
	}
	if err := a.applyChecks(c.Checks); err != nil {
		errs = append(errs, err)
	}
	a.mu.Lock()
	old := a.routers
	a.mu.Unlock()
	want := map[string]config.Router{}
	for _, rc := range c.VRRPRouters() {
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
	served := map[netip.Prefix]bool{}
	for _, rc := range c.Routers {
		for _, p := range rc.VIPs {
			served[p] = true
		}
	}
	handovers := a.stopForRestart(toStop, want, served)
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
			continue // PickInterfaces said why
		}
		r, err := a.startSuccessor(ctx, rc, handovers[name])
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
	if err := a.bgp.apply(ctx, c, a.checks.Healthy); err != nil {
		errs = append(errs, err)
	}
	a.parts.Links.Follow(interfaces(c))
	a.notify.SetCommands(notifyCommands(c.Notify))
	a.recompute()
	a.parts.Balancer.Update(c)
	return errors.Join(errs...)
}

// startRouter removes stale copies of the router's VIPs and starts it
// (Active when it takes over, see handover.go).
func (a *Agent) startRouter(ctx context.Context, rc config.Router, takeover bool) (*router, error) {
	// A copy of a VIP we do not hold is a leftover (a crashed agent):
	// remove it before we start as Backup.
	var errs []error
	removed, err := a.parts.VIPs.RemoveStale(rc.Interface, rc.VIPs)
	if err != nil {
		errs = append(errs, fmt.Errorf("removing stale VIPs of router %s: %w", rc.Name, err))
	}
	for _, p := range removed {
		a.log.Info("stale VIP removed", "router", rc.Name, "interface", rc.Interface, "vip", p.String())
	}
	ann, err := a.announcer(rc.Interface)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	r, err := newRouter(ctx, routerDeps{
		cfg: rc, net: a.parts.Network, vips: a.parts.VIPs, ann: ann, clk: a.clk, timers: a.opts.TimerClock,
		log: a.log, m: a.m, obs: a.observer(rc.Name), group: a.goroutine,
		arps: a.arps, takeover: takeover,
	})
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	if len(errs) > 0 {
		a.log.Error(errors.Join(errs...), "router started, with errors")
	}
	return r, nil
}

// interfaces returns the interfaces of c's VRRP routers.
func interfaces(c *config.Config) []string {
	var names []string
	for _, rc := range c.VRRPRouters() {
		if rc.Interface != "" && !slices.Contains(names, rc.Interface) {
			names = append(names, rc.Interface)
		}
	}
	return names
}

// observer returns the transition observer of a router: it tells the
// balancer whether the node holds the router's VIPs, and queues a notify
// event when the keepalived state word changes (Active -> Releasing does not).
func (a *Agent) observer(name string) vrrp.Observer {
	return func(t vrrp.Transition, prio uint8) {
		a.parts.Balancer.SetMaster(name, t.To == vrrp.Active || t.To == vrrp.Releasing)
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

func (a *Agent) announcer(ifname string) (Announcer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ann, ok := a.announcers[ifname]; ok {
		return ann, nil
	}
	ann, err := a.parts.OpenAnnouncer(ifname)
	if err != nil {
		return nil, fmt.Errorf("opening announcer on %s: %w", ifname, err)
	}
	a.announcers[ifname] = ann
	return ann, nil
}

// dropAnnouncer closes the announcer of an interface that went away: the
// next router on it opens a new one on the new interface.
func (a *Agent) dropAnnouncer(ifname string) {
	a.mu.Lock()
	ann, ok := a.announcers[ifname]
	delete(a.announcers, ifname)
	a.mu.Unlock()
	if ok {
		_ = ann.Close()
	}
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
		wg.Go(func() {
			grace := stopGrace(r.cfg)
			stopped := make(chan struct{})
			go func() { r.stop(grace); close(stopped) }()
			select {
			case <-stopped:
			case <-a.opts.HardStop:
				r.cutShort()
				<-stopped
			}
		})
	}
	wg.Wait()
}

// stopAll stops every router: the VRRP routers hand over, and at the same
// time the bgp routes are drained gracefully (bgpSide.shutdown).
func (a *Agent) stopAll() {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.stopped = true
	a.mu.Lock()
	rs := make([]*router, 0, len(a.routers))
	for _, r := range a.routers {
		rs = append(rs, r)
	}
	a.routers = map[string]*router{}
	a.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { a.bgp.shutdown(a.opts.HardStop) })
	a.stopRouters(rs)
	wg.Wait()
}

// ready reports whether every configured router runs.
func (a *Agent) ready() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg == nil {
		return errors.New("no config loaded")
	}
	for _, rc := range a.cfg.Routers {
		running := false
		if rc.Mode == config.ModeBGP {
			running = a.bgp.has(rc.Name)
		} else {
			_, running = a.routers[rc.Name]
		}
		if !running {
			return fmt.Errorf("router %s is not running", rc.Name)
		}
	}
	if why := a.bgp.notReady(); why != "" {
		return errors.New(why)
	}
	return nil
}

// Report returns the agent's status document.
func (a *Agent) Report() status.Report {
	rep := a.report()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rep.BGP = a.bgp.report(ctx) // not under a.mu: it asks the speaker
	return rep
}

// report is Report without the bgp speaker's part.
func (a *Agent) report() status.Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	rep := status.Report{Version: version.Version, Started: a.started, ConfigError: a.configError, ConfigProblems: a.configProblems, Checks: a.checkReports(), IPVS: a.parts.Balancer.Status()}
	if a.cfg != nil {
		rep.Node = a.cfg.NodeName
		rep.ConfigHash = a.cfg.Hash
		bgpReports := a.bgp.routerReports()
		for _, rc := range a.cfg.Routers {
			if r, ok := a.routers[rc.Name]; ok && rc.Mode == config.ModeVRRP {
				rep.Routers = append(rep.Routers, r.report())
			} else if br, ok := bgpReports[rc.Name]; ok && rc.Mode == config.ModeBGP {
				rep.Routers = append(rep.Routers, br)
			}
		}
	}
	return rep
}

// linkChanged handles a change of a followed interface: its routers go to
// FAULT while it is down or gone (no VIP, no adverts: another node takes
// over, and this one does not claim the VIPs back blindly), and back to
// Backup when it returns, as keepalived does. A router whose socket is on
// another index than the interface now has (deleted and re-created,
// renamed back) is restarted on the new interface: new socket, multicast
// joined again, new announcer.
func (a *Agent) linkChanged(ifname string, st link.State) {
	a.mu.Lock()
	prev, known := a.links[ifname]
	a.links[ifname] = st
	a.mu.Unlock()
	switch {
	case known && prev.Up != st.Up && st.Up:
		a.log.Info("interface up", "interface", ifname, "index", st.Index)
	case (!known || prev.Up) && !st.Up:
		a.log.Info("interface down or gone: its routers go to FAULT", "interface", ifname, "index", st.Index)
	}
	if st.Up && st.Index != 0 {
		// Not on the watcher's goroutine: a router may wait for its
		// source address (sourceWait), and the other interfaces' changes
		// must not wait for it.
		a.goroutine(func() { a.restartMoved(ifname, st.Index) })
	}
	a.recompute()
}

// restartMoved restarts the routers of ifname whose socket is bound to
// another index than index, and starts those of the config that could not
// start (the interface did not exist then).
func (a *Agent) restartMoved(ifname string, index int) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	if a.stopped {
		return
	}
	a.mu.Lock()
	var moved []*router
	var missing []config.Router
	for _, r := range a.routers {
		if r.cfg.Interface == ifname && r.ep.IfIndex() != index {
			moved = append(moved, r)
		}
	}
	if a.cfg != nil {
		for _, rc := range a.cfg.VRRPRouters() {
			if _, ok := a.routers[rc.Name]; !ok && rc.Interface == ifname {
				missing = append(missing, rc)
			}
		}
	}
	a.mu.Unlock()
	if len(moved) == 0 && len(missing) == 0 {
		return
	}
	a.log.Info("interface (re-)created: starting its routers on it", "interface", ifname, "index", index, "restarted", len(moved), "started", len(missing))
	a.stopRouters(moved)
	if len(moved) > 0 {
		a.dropAnnouncer(ifname)
	}
	for _, r := range moved {
		missing = append(missing, r.cfg)
	}
	ctx := a.runCtx
	var errs []error
	started := map[string]*router{}
	for _, rc := range missing {
		nr, err := a.startRouter(ctx, rc, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		started[rc.Name] = nr
	}
	a.mu.Lock()
	for _, r := range moved {
		delete(a.routers, r.cfg.Name)
	}
	for name, nr := range started {
		a.routers[name] = nr
	}
	a.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		a.setConfigError(err)
		a.log.Error(err, "restarting routers on the re-created interface failed")
	}
	a.recompute()
}
