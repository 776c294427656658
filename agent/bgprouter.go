package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/vipvs/vipvs/agent/bgp/wire"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/routetable"
	"github.com/vipvs/vipvs/agent/status"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
)

// The routers in mode bgp (issue 14). They have no state machine: a bgp
// router whose tracked checks all pass holds its VIPs on its interface (lo
// by default) and has the agent's one route announcer advertise them as
// host routes; when a check fails the routes are withdrawn first and the
// VIPs removed after the drain delay (bgp.gracefulShutdownWait), so that
// the flows the routers still send while they converge are served. The
// node drains (RFC 8326 graceful shutdown) when the agent stops or when an
// administrator asks for it (Agent.Drain).

// bgpRouter is one router in mode bgp.
type bgpRouter struct {
	cfg config.Router
	// serving: the VIPs are held and handed to the announcer (its checks
	// pass). While the node drains they stay held but are not advertised.
	serving     bool
	reason      string // why the router is in its state (for people)
	since       time.Time
	transitions uint64
	reported    string // the state last counted (StateAdvertised or StateWithdrawn)
}

// vipKey is a VIP on an interface.
type vipKey struct {
	ifname string
	vip    netip.Prefix
}

// bgpSide runs the routers in mode bgp and their route announcer.
type bgpSide struct {
	log logr.Logger
	clk clock.WithTicker
	// vips holds the VIPs: addrVIPs (interface addresses) with the
	// embedded speaker, a holder of local routes (openLocal) with
	// bgp.externalSpeaker, whose FRR would prefer the connected route of an
	// address to the route the agent exports (docs/external-speaker.md).
	vips      VIPs
	addrVIPs  VIPs
	openLocal func(protocol uint8) (VIPs, error)
	bal       Balancer
	m         *metrics
	group     func(func())
	open      func(*config.BGP) (RouteAnnouncer, error)
	guard     ARPGuard // nil: none

	mu sync.Mutex
	// vipsKey says how vips holds them: 0 as addresses, else as local
	// routes of that protocol; stopHolder ends the local holder's Run.
	vipsKey    int
	stopHolder func()
	// cfg is the bgp section the announcer runs (nil: no announcer).
	cfg *config.BGP
	// ann is the running announcer; stopAnn cancels its Run and waits.
	ann     RouteAnnouncer
	stopAnn func()
	routers map[string]*bgpRouter
	// held are the VIPs this side put on interfaces, by the router that
	// holds them; pending are those withdrawn whose removal waits for the
	// drain delay (closing the channel cancels the removal).
	held    map[vipKey]string
	pending map[vipKey]chan struct{}
	// drained: the routes are not advertised (Drain, or the agent stops).
	drained  bool
	stopping bool
	lastErr  string
	// secrets is the digest of the password files' keys the announcer was
	// built with: a changed key restarts it on reload.
	secrets string
	// runErr is the error the announcer's Run returned (its own lock: Run's
	// goroutine must not wait for mu, which stopAnnouncerLocked holds).
	errMu  sync.Mutex
	runErr string
	// ctx is the agent's run context; the announcer and the removals live
	// in it.
	ctx context.Context
}

func newBGPSide(a *Agent) *bgpSide {
	return &bgpSide{
		log: a.log.WithName("bgp"), clk: a.clk, vips: a.parts.VIPs, addrVIPs: a.parts.VIPs, openLocal: a.parts.OpenLocalVIPs, bal: a.parts.Balancer, m: a.m, group: a.goroutine,
		open: a.parts.OpenRouteAnnouncer, guard: a.parts.ARPGuard,
		routers: map[string]*bgpRouter{}, held: map[vipKey]string{}, pending: map[vipKey]chan struct{}{},
	}
}

// drainDelay is how long withdrawn VIPs stay on their interface.
func (s *bgpSide) drainDelayLocked() time.Duration {
	if s.cfg == nil {
		return 0
	}
	return s.cfg.GracefulShutdownWait
}

// apply makes the bgp routers and the announcer match c, then recomputes
// each router's state from healthy. A router whose VIPs did not change keeps
// advertising them.
func (s *bgpSide) apply(ctx context.Context, c *config.Config, healthy func(string) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil
	}
	s.ctx = ctx
	var errs []error
	want := map[string]config.Router{}
	for _, rc := range c.BGPRouters() {
		want[rc.Name] = rc
	}
	// Routers removed or moved to another interface: withdraw and drain.
	for name, r := range s.routers {
		rc, ok := want[name]
		switch {
		case !ok:
			s.log.Info("bgp router removed from the config: withdrawing its VIPs", "router", name)
			s.withdrawLocked(r, r.cfg.VIPs)
			delete(s.routers, name)
			s.m.forgetBGPRouter(r.cfg)
		case rc.Interface != r.cfg.Interface || rc.IPv6 != r.cfg.IPv6:
			s.log.Info("bgp router moved to another interface: withdrawing its VIPs there", "router", name, "from", r.cfg.Interface, "to", rc.Interface)
			s.withdrawLocked(r, r.cfg.VIPs)
			r.serving = false
			r.cfg = rc
		default:
			var gone []netip.Prefix
			for _, p := range r.cfg.VIPs {
				if !slices.Contains(rc.VIPs, p) {
					gone = append(gone, p)
				}
			}
			if len(gone) > 0 && r.serving {
				s.log.Info("VIPs removed from a bgp router: withdrawing them", "router", name, "vips", prefixStrings(gone))
				s.withdrawLocked(r, gone)
			}
			old := r.cfg
			r.cfg = rc
			if r.serving {
				var added []netip.Prefix
				for _, p := range rc.VIPs {
					if !slices.Contains(old.VIPs, p) {
						added = append(added, p)
					}
				}
				if len(added) > 0 {
					s.log.Info("VIPs added to a bgp router: advertising them", "router", name, "vips", prefixStrings(added))
					errs = append(errs, s.advertiseLocked(r, added))
				}
			}
		}
	}
	var names []string
	for name := range want {
		if _, ok := s.routers[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		rc := want[name]
		s.routers[name] = &bgpRouter{cfg: rc, reason: "starting: the tracked checks have not passed yet", since: s.clk.Now()}
		s.log.Info("bgp router started", "router", name, "interface", rc.Interface, "vips", prefixStrings(rc.VIPs))
	}
	if err := s.setAnnouncerLocked(c.BGP, len(want) > 0); err != nil {
		errs = append(errs, err)
	}
	// In the holder the announcer chose: a copy of a VIP we do not hold is
	// a leftover (a crashed agent).
	for _, name := range names {
		rc := want[name]
		removed, err := s.vips.RemoveStale(rc.Interface, rc.VIPs)
		if err != nil {
			errs = append(errs, fmt.Errorf("removing stale VIPs of router %s: %w", rc.Name, err))
		}
		for _, p := range removed {
			s.log.Info("stale VIP removed", "router", rc.Name, "interface", rc.Interface, "vip", p.String())
		}
	}
	s.guardLocked()
	s.evaluateLocked(healthy)
	return errors.Join(errs...)
}

// setAnnouncerLocked starts, reconfigures, restarts or stops the announcer
// for cfg: a changed bgp section (or a changed key in a password file) is
// applied to the running announcer when it can take it (RouteReconfigurer),
// else a new one replaces it and advertises what the node serves. The
// running one stays when the change cannot be applied.
func (s *bgpSide) setAnnouncerLocked(cfg *config.BGP, needed bool) error {
	if !needed || cfg == nil {
		s.stopAnnouncerLocked()
		s.cfg = cfg
		s.lastErr = ""
		return nil
	}
	secrets, err := secretsDigest(cfg)
	if err != nil {
		err = fmt.Errorf("bgp: %w", err)
		s.lastErr = err.Error()
		return err
	}
	if s.ann != nil && reflect.DeepEqual(s.cfg, cfg) && secrets == s.secrets {
		return nil
	}
	if rc, ok := s.ann.(RouteReconfigurer); ok {
		applied, err := rc.Reconfigure(s.ctx, cfg)
		if applied {
			s.cfg, s.secrets, s.lastErr = cfg, secrets, ""
			if err != nil {
				err = fmt.Errorf("bgp: %w", err)
				s.lastErr = err.Error()
				return err
			}
			s.log.Info("bgp section changed: applied to the running speaker")
			return nil
		}
		if err != nil {
			err = fmt.Errorf("bgp: %w", err)
			s.lastErr = err.Error()
			s.log.Error(err, "the new bgp section cannot be applied; the running speaker stays")
			return err
		}
	}
	if s.open == nil {
		err := errors.New("bgp: this agent has no route announcer")
		s.lastErr = err.Error()
		return err
	}
	key := holderKey(cfg)
	var holder VIPs
	if key != s.vipsKey {
		if holder, err = s.openHolderLocked(key); err != nil {
			err = fmt.Errorf("bgp: %w", err)
			s.lastErr = err.Error()
			if s.ann != nil {
				s.log.Error(err, "the new bgp section cannot be applied; the running speaker stays")
			}
			return err
		}
	}
	ann, err := s.open(cfg)
	if err != nil {
		err = fmt.Errorf("bgp: %w", err)
		s.lastErr = err.Error()
		if s.ann != nil {
			s.log.Error(err, "the new bgp section cannot be applied; the running speaker stays")
		}
		return err
	}
	restart := s.ann != nil
	s.stopAnnouncerLocked()
	s.cfg, s.lastErr, s.secrets = cfg, "", secrets
	s.ann = ann
	var errs []error
	if !s.drained {
		for k, name := range s.held {
			if _, gone := s.pending[k]; gone {
				continue
			}
			if r := s.routers[name]; r != nil && r.serving {
				errs = append(errs, ann.Advertise(k.vip))
			}
		}
	}
	s.startAnnouncerLocked(ann)
	if holder != nil {
		errs = append(errs, s.switchHolderLocked(holder, key))
	}
	if restart {
		s.log.Info("bgp section changed: speaker restarted")
	}
	return errors.Join(errs...)
}

// holderKey is how the VIPs are held with cfg: 0 as interface addresses
// (the embedded speaker), else as local routes of the external speaker's
// protocol.
func holderKey(cfg *config.BGP) int {
	if cfg == nil || cfg.ExternalSpeaker == nil {
		return 0
	}
	if cfg.ExternalSpeaker.Protocol == 0 {
		return routetable.DefaultProtocol
	}
	return int(cfg.ExternalSpeaker.Protocol)
}

// openHolderLocked returns the VIP holder of key (see holderKey), not yet
// running.
func (s *bgpSide) openHolderLocked(key int) (VIPs, error) {
	if key == 0 {
		return s.addrVIPs, nil
	}
	if s.openLocal == nil {
		return nil, errors.New("bgp.externalSpeaker: this agent cannot hold VIPs as local routes")
	}
	v, err := s.openLocal(uint8(key))
	if err != nil {
		return nil, fmt.Errorf("bgp.externalSpeaker: holding the VIPs as local routes: %w", err)
	}
	return v, nil
}

// switchHolderLocked moves the held VIPs to holder (a reload between the
// embedded and the external speaker, or a changed externalSpeaker.protocol):
// each is removed in its old form, then added in the new one (the node does
// not accept the VIP's traffic for that moment), and the old local holder
// stops. The announcer already runs for the new form.
func (s *bgpSide) switchHolderLocked(holder VIPs, key int) error {
	for k := range s.held {
		if err := s.vips.Remove(k.ifname, k.vip); err != nil {
			s.log.Error(err, "removing a VIP in its old form", "interface", k.ifname, "vip", k.vip.String())
		}
	}
	if s.stopHolder != nil {
		s.stopHolder()
		s.stopHolder = nil
	}
	s.vips, s.vipsKey = holder, key
	if key != 0 {
		ctx, cancel := context.WithCancel(s.ctx)
		done := make(chan struct{})
		s.group(func() {
			defer close(done)
			if err := holder.Run(ctx); err != nil && ctx.Err() == nil {
				s.log.Error(err, "the local routes of the VIPs are not kept")
				s.errMu.Lock()
				s.runErr = err.Error()
				s.errMu.Unlock()
			}
		})
		s.stopHolder = func() { cancel(); <-done }
		s.log.Info("bgp VIPs are held as local routes (bgp.externalSpeaker)", "protocol", key, "moved", len(s.held))
	} else {
		s.log.Info("bgp VIPs are held as interface addresses", "moved", len(s.held))
	}
	var errs []error
	for k, name := range s.held {
		if err := s.vips.Add(k.ifname, k.vip); err != nil {
			errs = append(errs, fmt.Errorf("router %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// startAnnouncerLocked runs ann in the agent's group until stopAnnouncer.
func (s *bgpSide) startAnnouncerLocked(ann RouteAnnouncer) {
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	s.group(func() {
		defer close(done)
		if err := ann.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error(err, "bgp speaker stopped")
			s.errMu.Lock()
			s.runErr = err.Error()
			s.errMu.Unlock()
		}
	})
	s.stopAnn = func() { cancel(); <-done }
	s.errMu.Lock()
	s.runErr = ""
	s.errMu.Unlock()
}

// reloadSecrets reads the password files again (SIGHUP) and restarts the
// announcer when a key changed.
func (s *bgpSide) reloadSecrets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || s.ann == nil || s.cfg == nil {
		return
	}
	if err := s.setAnnouncerLocked(s.cfg, true); err != nil {
		s.log.Error(err, "reading the bgp password files again")
	}
}

// secretsDigest is a digest of the keys of cfg's password files, so that a
// changed key is noticed without keeping it. The error names the file.
func secretsDigest(cfg *config.BGP) (string, error) {
	h := sha256.New()
	for i, p := range cfg.Peers {
		if p.PasswordFile == "" {
			continue
		}
		key, err := wire.ReadPassword(p.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("bgp.peers[%d].passwordFile: %w", i, err)
		}
		fmt.Fprintf(h, "%d:%d:%s\n", i, len(key), key)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// stopAnnouncerLocked stops the running announcer: its sessions close.
func (s *bgpSide) stopAnnouncerLocked() {
	if s.stopAnn != nil {
		s.stopAnn()
	}
	s.ann, s.stopAnn = nil, nil
}

// evaluate recomputes every bgp router's state from its checks.
func (s *bgpSide) evaluate(healthy func(string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evaluateLocked(healthy)
}

func (s *bgpSide) evaluateLocked(healthy func(string) bool) {
	if s.stopping {
		return
	}
	names := make([]string, 0, len(s.routers))
	for name := range s.routers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r := s.routers[name]
		var failing []string
		for _, tc := range r.cfg.TrackChecks {
			if !healthy(tc.Check) {
				failing = append(failing, "track check "+tc.Check+" failed")
			}
		}
		switch serve := len(failing) == 0; {
		case serve && !r.serving:
			r.serving = true
			r.reason = "the tracked checks pass"
			if len(r.cfg.TrackChecks) == 0 {
				r.reason = "no tracked checks"
			}
			if err := s.advertiseLocked(r, r.cfg.VIPs); err != nil {
				s.log.Error(err, "advertising the VIPs of a bgp router", "router", name)
				s.lastErr = fmt.Sprintf("router %s: %v", name, err)
			}
		case !serve && r.serving:
			r.serving = false
			r.reason = strings.Join(failing, ", ")
			s.log.Info("a tracked check failed: withdrawing the VIPs", "router", name, "reason", r.reason)
			s.withdrawLocked(r, r.cfg.VIPs)
		case !serve:
			r.reason = strings.Join(failing, ", ")
		}
		s.noteStateLocked(r)
	}
}

// state is the router's reported state.
func (s *bgpSide) stateLocked(r *bgpRouter) (string, string) {
	switch {
	case s.stopping:
		return statusv1.StateWithdrawn, "the agent is stopping"
	case r.serving && s.drained:
		return statusv1.StateWithdrawn, "the node is drained"
	case r.serving:
		return statusv1.StateAdvertised, r.reason
	}
	return statusv1.StateWithdrawn, r.reason
}

// noteStateLocked counts a change of the reported state.
func (s *bgpSide) noteStateLocked(r *bgpRouter) {
	st, reason := s.stateLocked(r)
	if st == r.reported {
		return
	}
	if r.reported != "" {
		r.transitions++
		s.log.Info("bgp router "+strings.ToLower(st), "router", r.cfg.Name, "reason", reason)
	}
	r.reported, r.since = st, s.clk.Now()
	s.m.setBGPRouterState(r.cfg, st)
}

// advertiseLocked holds vips of r on its interface and advertises them
// (not while the node drains), and tells the balancer the node serves r.
func (s *bgpSide) advertiseLocked(r *bgpRouter, vips []netip.Prefix) error {
	var errs []error
	for _, p := range vips {
		k := vipKey{r.cfg.Interface, p}
		if c, ok := s.pending[k]; ok {
			close(c)
			delete(s.pending, k)
		}
		if err := s.vips.Add(r.cfg.Interface, p); err != nil {
			errs = append(errs, err)
			continue
		}
		s.held[k] = r.cfg.Name
		if s.ann != nil && !s.drained {
			if err := s.ann.Advertise(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.bal.SetMaster(r.cfg.Name, true)
	return errors.Join(errs...)
}

// withdrawLocked withdraws vips of r now and removes them from the
// interface after the drain delay, unless they are advertised again
// before. When r serves nothing any more the balancer is told then too.
func (s *bgpSide) withdrawLocked(r *bgpRouter, vips []netip.Prefix) {
	for _, p := range vips {
		k := vipKey{r.cfg.Interface, p}
		if owner, ok := s.held[k]; !ok || owner != r.cfg.Name {
			continue // not held, or moved to another router by a reload
		}
		if s.ann != nil && !s.drained {
			if err := s.ann.Withdraw(p); err != nil {
				s.log.Error(err, "withdrawing a VIP", "router", r.cfg.Name, "vip", p.String())
			}
		}
		if _, ok := s.pending[k]; ok {
			continue
		}
		cancel := make(chan struct{})
		s.pending[k] = cancel
		delay, name, ctx := s.drainDelayLocked(), r.cfg.Name, s.ctx
		s.group(func() {
			select {
			case <-cancel:
				return
			case <-ctx.Done():
			case <-s.clk.After(delay):
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.pending[k] != cancel {
				return // advertised again, or removed by the stop
			}
			delete(s.pending, k)
			s.removeLocked(k)
			if rr := s.routers[name]; rr == nil || !rr.serving {
				s.bal.SetMaster(name, false)
			}
		})
	}
}

// removeLocked takes a held VIP off its interface.
func (s *bgpSide) removeLocked(k vipKey) {
	delete(s.held, k)
	if err := s.vips.Remove(k.ifname, k.vip); err != nil {
		s.log.Error(err, "removing a withdrawn VIP", "interface", k.ifname, "vip", k.vip.String())
	}
	s.guardLocked()
}

// guardLocked keeps the node from answering ARP for the IPv4 VIPs of the
// bgp routers, configured or still held.
func (s *bgpSide) guardLocked() {
	if s.guard == nil {
		return
	}
	set := map[netip.Addr]bool{}
	for _, r := range s.routers {
		for _, p := range r.cfg.VIPs {
			set[p.Addr()] = true
		}
	}
	for k := range s.held {
		set[k.vip.Addr()] = true
	}
	var addrs []netip.Addr
	for a := range set {
		if a.Is4() {
			addrs = append(addrs, a)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	if err := s.guard.Set(addrs); err != nil {
		s.log.Error(err, "the node may answer ARP for its bgp VIPs on its uplinks")
		s.lastErr = err.Error()
	}
}

// Drain withdraws every route of the node gracefully (RFC 8326), or, with
// on false, advertises them again. The VIPs stay on their interfaces, the
// virtual services programmed, so that flows still arriving are served.
// Draining returns at once; the GRACEFUL_SHUTDOWN phase and the withdrawal
// follow in the background.
func (s *bgpSide) drain(on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return errors.New("the agent is stopping")
	}
	if on == s.drained {
		return nil
	}
	s.drained = on
	if on {
		s.log.Info("draining: the routes are re-advertised with GRACEFUL_SHUTDOWN, then withdrawn")
		if ann := s.ann; ann != nil {
			ctx := s.ctx
			s.group(func() {
				if err := ann.GracefulShutdown(ctx); err != nil && ctx.Err() == nil {
					s.log.Error(err, "draining")
				}
			})
		}
	} else {
		s.log.Info("undrained: advertising the routes again")
		if s.cfg != nil && s.ann != nil {
			// The drained speaker is replaced by a fresh one (nothing is
			// advertised by it, so the restart costs no traffic).
			cfg := s.cfg
			s.stopAnnouncerLocked()
			if err := s.setAnnouncerLocked(cfg, true); err != nil {
				return err
			}
		}
	}
	for _, r := range s.routers {
		s.noteStateLocked(r)
	}
	return nil
}

// Drain drains the node's bgp routes (on true) or advertises them again
// (on false); see bgpSide.drain. It is what `vipvs status --drain` calls
// through the status socket.
func (a *Agent) Drain(on bool) error {
	return a.bgp.drain(on)
}

// shutdown drains the node gracefully when it advertises anything (RFC
// 8326: GRACEFUL_SHUTDOWN, wait, withdraw, wait), then removes the VIPs and
// stops the announcer. hard cuts the waits short.
func (s *bgpSide) shutdown(hard <-chan struct{}) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return
	}
	s.stopping = true
	ann, wait := s.ann, s.drainDelayLocked()
	advertising := false
	for _, r := range s.routers {
		advertising = advertising || r.serving
		s.noteStateLocked(r)
	}
	advertising = advertising && !s.drained
	s.mu.Unlock()
	if ann != nil && advertising {
		s.log.Info("stopping: graceful shutdown of the bgp routes (RFC 8326)", "wait", wait)
		ctx, cancel := context.WithTimeout(context.Background(), 2*wait+10*time.Second)
		stop := make(chan struct{})
		go func() {
			select {
			case <-hard:
				cancel()
			case <-stop:
			}
		}()
		if err := ann.GracefulShutdown(ctx); err != nil {
			s.log.Error(err, "the graceful shutdown was cut short")
		}
		close(stop)
		cancel()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.pending {
		close(c)
		delete(s.pending, k)
	}
	for k := range s.held {
		s.removeLocked(k)
	}
	for name := range s.routers {
		s.bal.SetMaster(name, false)
	}
	s.stopAnnouncerLocked()
	if s.stopHolder != nil {
		s.stopHolder()
		s.stopHolder = nil
	}
	if s.guard != nil {
		if err := s.guard.Close(); err != nil {
			s.log.Error(err, "removing the ARP guard")
		}
		s.guard = nil
	}
	if len(s.routers) > 0 {
		s.log.Info("bgp routers stopped")
	}
}

// routerReports returns the status of the bgp routers, by name.
func (s *bgpSide) routerReports() map[string]status.Router {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]status.Router, len(s.routers))
	for name, r := range s.routers {
		st, reason := s.stateLocked(r)
		rep := status.Router{
			Name:        name,
			Mode:        statusv1.ModeBGP,
			Interface:   r.cfg.Interface,
			Family:      family(r.cfg.IPv6),
			State:       st,
			VIPs:        prefixStrings(r.cfg.VIPs),
			Since:       r.since,
			LastReason:  reason,
			Transitions: r.transitions,
		}
		for _, tc := range r.cfg.TrackChecks {
			rep.TrackChecks = append(rep.TrackChecks, status.TrackCheck{Check: tc.Check, Weight: tc.Weight})
		}
		out[name] = rep
	}
	return out
}

// has reports whether the bgp router name runs.
func (s *bgpSide) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.routers[name]
	return ok
}

// report returns the bgp part of the status document (nil without bgp
// routers): the announcer's view of its sessions, and what the node
// serves.
func (s *bgpSide) report(ctx context.Context) *statusv1.BGP {
	s.mu.Lock()
	if len(s.routers) == 0 {
		s.mu.Unlock()
		return nil
	}
	ann, lastErr, drained := s.ann, s.lastErr, s.drained || s.stopping
	s.errMu.Lock()
	if s.runErr != "" {
		lastErr = s.runErr
	}
	s.errMu.Unlock()
	var adv []netip.Prefix
	if !drained {
		for k := range s.held {
			if _, gone := s.pending[k]; !gone {
				adv = append(adv, k.vip)
			}
		}
	}
	external := s.cfg != nil && s.cfg.ExternalSpeaker != nil
	s.mu.Unlock()
	out := &statusv1.BGP{Speaker: statusv1.SpeakerEmbedded}
	if ann != nil {
		st, err := ann.Status(ctx)
		switch {
		case err != nil:
			lastErr = err.Error()
		case st != nil:
			out = st
		}
	}
	if out.Speaker == "" {
		out.Speaker = statusv1.SpeakerEmbedded
		if external {
			out.Speaker = statusv1.SpeakerExternal
		}
	}
	slices.SortFunc(adv, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	out.Advertised = prefixStrings(adv)
	out.GracefulShutdown = out.GracefulShutdown || drained
	if lastErr != "" {
		out.LastError = lastErr
	}
	return out
}

// notReady says why the bgp side is not ready, or "".
func (s *bgpSide) notReady() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.routers) > 0 && s.ann == nil {
		if s.lastErr != "" {
			return "the bgp speaker is not running: " + s.lastErr
		}
		return "the bgp speaker is not running"
	}
	return ""
}
