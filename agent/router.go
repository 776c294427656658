package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/vipvs/vipvs/agent/announce"
	"github.com/vipvs/vipvs/agent/arpwatch"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/agent/transport"
	"github.com/vipvs/vipvs/agent/vrrp"
	"github.com/vipvs/vipvs/agent/vrrp/packet"
)

// router is one running virtual router: its endpoint on the shared socket,
// its state machine runner and the receive handler that feeds it.
type router struct {
	cfg    config.Router
	ep     Endpoint
	runner *vrrp.Runner
	// ready is set once runner exists: receive drops what the socket
	// delivers before (it delivers from the subscription on).
	ready  atomic.Bool
	send   *advertSender
	holder *vipHolder
	log    logr.Logger
	m      *metrics
	rm     routerMetrics
	expect packet.Expect

	cancel context.CancelFunc // graceful stop
	hard   chan struct{}      // closed to cut the hand-over short
	hardMu sync.Once
	done   chan struct{} // closed when Run has returned

	clk       clock.WithTicker
	conflicts *conflicts

	// Used by the receive handler only (one socket goroutine).
	last    lastAdvert
	lastMAC net.HardwareAddr

	mu    sync.Mutex
	recv  uint64
	drops map[string]uint64
	track trackState // last priority, fault and hold delivered by recompute
}

// lastAdvert is the outcome of the checks of the last packet received: a
// master sends the same bytes every interval, so in the steady state a
// packet is compared, not parsed again (parsing allocates the address
// list). The checks depend on nothing else than what is compared.
type lastAdvert struct {
	payload  []byte
	src, dst netip.Addr
	ttl      int
	adv      packet.Advert
	reason   packet.DropReason
	valid    bool
}

// routerDeps is what a router is built from.
type routerDeps struct {
	cfg  config.Router
	net  Network
	vips VIPs
	ann  Announcer
	clk  clock.WithTicker
	// timers is the clock of the runner's timer (Options.TimerClock).
	timers clock.Clock
	log    logr.Logger
	m      *metrics
	obs    vrrp.Observer
	group  func(func()) // runs a goroutine in the agent's group
	// arps shares the interfaces' ARP watchers (nil: no ARP watching).
	arps *arpShares
	// takeover starts the router Active: it succeeds this node's Active
	// router of the previous config (see handover.go).
	takeover bool
}

// newRouter subscribes the router to its socket and starts it.
func newRouter(parent context.Context, d routerDeps) (*router, error) {
	rc := d.cfg
	log := d.log.WithValues("router", rc.Name, "vrid", rc.VRID, "interface", rc.Interface, "family", family(rc.IPv6))
	m := d.m
	r := &router{
		cfg:   rc,
		log:   log,
		m:     m,
		rm:    m.forRouter(rc),
		hard:  make(chan struct{}),
		done:  make(chan struct{}),
		drops: map[string]uint64{},
		clk:   d.clk,
		expect: packet.Expect{
			Version:  rc.Version,
			VRID:     rc.VRID,
			Interval: rc.AdvertInterval,
			Password: rc.AuthPassword,
			Addrs:    prefixAddrs(rc.VIPs),
			Owner:    rc.Priority == vrrp.OwnerPriority,
		},
		last:      lastAdvert{payload: make([]byte, 0, 1500)},
		conflicts: newConflicts(log.WithName("conflict"), conflictTTL(rc.AdvertInterval), func(kind string) { m.conflict(rc, kind) }),
	}
	ep, err := subscribe(parent, d.net, rc, r.receive, d.clk, log)
	if err != nil {
		return nil, fmt.Errorf("starting router %s: %w", rc.Name, err)
	}
	r.ep = ep
	r.holder = &vipHolder{
		ifname:   rc.Interface,
		vips:     rc.VIPs,
		mgr:      d.vips,
		ann:      d.ann,
		schedule: announce.Schedule{Count: rc.Announce.Count, RepeatDelay: rc.Announce.RepeatDelay, Refresh: rc.Announce.RefreshInterval},
		clk:      d.clk,
		log:      log.WithName("vip"),
		m:        m,
		router:   rc.Name,
		group:    d.group,
	}
	if p, ok := d.ann.(preparer); ok {
		// Open the announcement socket now, not when we become master: the
		// first announcement must follow the VIP at once.
		if err := p.Prepare(rc.IPv6); err != nil {
			log.V(1).Info("announcement socket not opened yet: the first announcement will open it", "error", err.Error())
		}
	}
	r.send = newAdvertSender(ep, rc, r.rm.sent)
	vcfg := vrrp.Config{
		Version:        rc.Version,
		Priority:       rc.Priority,
		AdvertInterval: rc.AdvertInterval,
		Preempt:        rc.Preempt,
		PreemptDelay:   rc.PreemptDelay,
		Primary:        ep.Source(),
		TakeOver:       d.takeover,
	}
	if rc.Multicast() {
		vcfg.AllowedPeers = rc.MulticastPeers
	}
	var arps *arpShare
	if !rc.IPv6 && d.arps != nil {
		sh, err := d.arps.acquire(rc.Interface)
		if err != nil {
			log.Error(err, "no ARP watching: a yielding master will not wait for the winner's announcement, duplicate owners go unseen")
		} else {
			arps = sh
			vcfg.AwaitAnnouncement = true
		}
	}
	obs := d.obs
	r.runner = vrrp.NewRunner(vcfg, r.send, r.holder, d.timers, log.WithName("vrrp"), vrrp.WithObserver(func(t vrrp.Transition, prio uint8) {
		m.transition(rc, t)
		if obs != nil {
			obs(t, prio)
		}
	}), vrrp.WithReporter(routerReporter{r}))
	r.ready.Store(true)
	m.setState(rc, vrrp.Initialize)

	ctx, cancel := context.WithCancel(parent)
	r.cancel = cancel
	var sub *arpSub
	if arps != nil {
		sub = r.arpSub()
		arps.add(sub)
	}
	d.group(func() {
		defer close(r.done)
		if arps != nil {
			defer d.arps.release(arps, sub)
		}
		defer func() {
			if err := ep.Close(); err != nil {
				log.Error(err, "closing the VRRP endpoint")
			}
		}()
		if err := r.runner.Run(ctx, r.hard); err != nil {
			log.Error(err, "router stopped with an error")
		}
	})
	log.Info("router started", "priority", rc.Priority, "source", ep.Source().String(), "multicast", rc.Multicast(), "vips", prefixStrings(rc.VIPs))
	return r, nil
}

// preparer is an Announcer that can open its socket before the first
// announcement (*announce.Announcer).
type preparer interface {
	Prepare(ipv6 bool) error
}

// sourceWait bounds how long a router waits for its source address: an IPv6
// link-local address is unusable until duplicate address detection is done
// (1-2 s after the link comes up with default sysctls).
const sourceWait = 30 * time.Second

// subscribe opens the router's endpoint, waiting for a source address that
// is missing or still tentative.
func subscribe(ctx context.Context, nw Network, rc config.Router, h transport.Handler, clk clock.WithTicker, log logr.Logger) (Endpoint, error) {
	opts := transport.Options{
		Interface: rc.Interface,
		IPv6:      rc.IPv6,
		Multicast: rc.Multicast(),
		Peers:     rc.Peers,
		Source:    rc.SourceAddr,
	}
	deadline := clk.Now().Add(sourceWait)
	logged := false
	for {
		ep, err := nw.Subscribe(opts, rc.VRID, h)
		if err == nil {
			return ep, nil
		}
		if !errors.Is(err, transport.ErrTentative) && !errors.Is(err, transport.ErrNoSource) || clk.Now().After(deadline) {
			return nil, err
		}
		if !logged {
			log.Info("waiting for the source address", "reason", err.Error())
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-clk.After(200 * time.Millisecond):
		}
	}
}

// stop stops the router gracefully and waits; after grace the hand-over is cut
// short.
func (r *router) stop(grace time.Duration) {
	r.cancel()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		r.cutShort()
		<-r.done
	}
}

// cutShort ends a graceful hand-over at once: the VIPs are released.
func (r *router) cutShort() { r.hardMu.Do(func() { close(r.hard) }) }

// receive applies the receive checks to one packet of our VRID and delivers
// a good advert to the state machine. A bad packet changes nothing but a
// counter. It runs on the socket's goroutine; p is valid only during the
// call.
func (r *router) receive(p transport.Packet) {
	if !r.ready.Load() {
		// The socket delivers from the moment the router subscribes; the
		// state machine exists a moment later.
		return
	}
	l := &r.last
	if !l.valid || l.src != p.Src || l.dst != p.Dst || l.ttl != p.TTL || !bytes.Equal(l.payload, p.Payload) {
		adv, reason := packet.Parse(packet.Received{Payload: p.Payload, Src: p.Src, Dst: p.Dst, TTL: p.TTL})
		if reason == packet.DropNone && adv.VRID != r.cfg.VRID {
			return // not ours (the socket demultiplexes by the same byte)
		}
		if reason == packet.DropNone {
			reason = packet.Check(adv, r.expect)
		}
		l.payload = append(l.payload[:0], p.Payload...)
		l.src, l.dst, l.ttl, l.adv, l.reason, l.valid = p.Src, p.Dst, p.TTL, adv, reason, true
	}
	if l.reason != packet.DropNone {
		r.drop(l.reason, p.Src, l.adv)
		return
	}
	adv := l.adv
	r.mu.Lock()
	r.recv++
	r.mu.Unlock()
	r.rm.recv.Inc()
	r.observe(p.Src, adv)
	// The state machine may keep the MAC: give it a copy that is never
	// written, the same one as long as the peer's MAC does not change.
	if !bytes.Equal(r.lastMAC, p.SrcMAC) {
		r.lastMAC = slices.Clone(p.SrcMAC)
	}
	r.runner.HandleAdvert(vrrp.AdvertReceived{Src: p.Src, SrcMAC: r.lastMAC, Priority: adv.Priority, Interval: adv.Interval})
}

func (r *router) drop(reason packet.DropReason, src netip.Addr, adv packet.Advert) {
	r.m.advertDropped(r.cfg, reason.String())
	r.mu.Lock()
	r.drops[reason.String()]++
	r.mu.Unlock()
	r.log.V(1).Info("advert dropped", "peer", src.String(), "reason", reason.String())
	// A drop of an advert that carries our VRID (Parse passed it) by a
	// per-router check is a disagreement with a peer: report it.
	now := r.clk.Now()
	switch reason {
	case packet.DropAddressMismatch:
		r.conflicts.seen(now, conflictAddresses, src.String(), fmt.Sprintf("it advertises %v, we have %v", addrStrings(adv.Addrs), prefixStrings(r.cfg.VIPs)))
	case packet.DropVersion:
		r.conflicts.seen(now, conflictVersion, src.String(), fmt.Sprintf("it speaks VRRPv%d, we speak VRRPv%d", adv.Version, r.cfg.Version))
	case packet.DropInterval:
		r.conflicts.seen(now, conflictInterval, src.String(), fmt.Sprintf("it advertises every %v, we every %v", adv.Interval, r.cfg.AdvertInterval))
	case packet.DropAuth:
		r.conflicts.seen(now, conflictAuth, src.String(), "its authentication (type or password) differs from ours")
	}
}

// observe looks at a valid advert for disagreements that are not drops: a
// v3 interval other than ours (the RFC has Backups learn it), and a second
// master while we are master.
func (r *router) observe(src netip.Addr, adv packet.Advert) {
	now := r.clk.Now()
	if r.cfg.Version == 3 && adv.Interval != r.cfg.AdvertInterval {
		r.conflicts.seen(now, conflictInterval, src.String(), fmt.Sprintf("it advertises every %v, we every %v", adv.Interval, r.cfg.AdvertInterval))
	}
	if adv.Priority > 0 && r.runner.State() == vrrp.Active {
		// A conflict only when both stay master (not a preemption).
		r.conflicts.masterSeen(now, src.String(), fmt.Sprintf("it advertises priority %d while we are master at %d", adv.Priority, r.runner.Status().Priority), secondMasterPersist(r.cfg.AdvertInterval))
	}
}

func (r *router) report() status.Router {
	st := r.runner.Status()
	r.mu.Lock()
	drops := make(map[string]uint64, len(r.drops))
	var dropped uint64
	for k, v := range r.drops {
		drops[k] = v
		dropped += v
	}
	for k, v := range r.ep.Dropped() {
		if v > 0 {
			drops[k.String()] += v
			dropped += v
		}
	}
	recv := r.recv
	r.mu.Unlock()
	rep := status.Router{
		Name:               r.cfg.Name,
		VRID:               r.cfg.VRID,
		Interface:          r.cfg.Interface,
		Family:             family(r.cfg.IPv6),
		State:              st.State.Keepalived(),
		ProtocolState:      st.State.String(),
		Priority:           st.Priority,
		ConfiguredPriority: r.cfg.Priority,
		Source:             r.ep.Source().String(),
		VIPs:               prefixStrings(r.cfg.VIPs),
		Since:              st.Since,
		LastReason:         st.LastTransition.Reason,
		Transitions:        st.Transitions,
		AdvertsSent:        st.AdvertsSent,
		AdvertsRecv:        recv,
		AdvertsDropped:     dropped,
		Drops:              drops,
	}
	if st.Master.IsValid() {
		rep.Master = st.Master.String()
	}
	for _, tc := range r.cfg.TrackChecks {
		rep.TrackChecks = append(rep.TrackChecks, status.TrackCheck{Check: tc.Check, Weight: tc.Weight})
	}
	for _, c := range r.conflicts.current(r.clk.Now()) {
		rep.Conflicts = append(rep.Conflicts, status.Conflict{Kind: c.Kind, Peer: c.Peer, Detail: c.Detail, First: c.First, Last: c.Last, Count: c.Count})
	}
	return rep
}

// advertSender encodes and sends this router's adverts: to the multicast
// group, or to every unicast peer. Everything but the priority and the
// interval is fixed, so it is computed once.
type advertSender struct {
	conn Endpoint
	cfg  config.Router
	sent prometheus.Counter
	adv  packet.Advert
	dsts atomic.Pointer[[]netip.Addr] // replaced by a live peer change
	mode packet.ChecksumMode
}

var _ vrrp.Sender = (*advertSender)(nil)

func newAdvertSender(conn Endpoint, rc config.Router, sent prometheus.Counter) *advertSender {
	s := &advertSender{
		conn: conn,
		cfg:  rc,
		sent: sent,
		adv:  packet.Advert{Version: rc.Version, VRID: rc.VRID, Addrs: prefixAddrs(rc.VIPs)},
		mode: packet.ChecksumMode(rc.ChecksumMode),
	}
	dsts := rc.Peers
	if rc.Version == 2 && rc.AuthPassword != "" {
		s.adv.AuthType = packet.AuthSimple
		s.adv.AuthData = packet.PasswordAuthData(rc.AuthPassword)
	}
	if rc.Multicast() {
		dsts = []netip.Addr{transport.MulticastGroup(rc.IPv6)}
	}
	s.dsts.Store(&dsts)
	return s
}

// setPeers changes the unicast peers the adverts go to.
func (s *advertSender) setPeers(peers []netip.Addr) {
	dsts := append([]netip.Addr(nil), peers...)
	s.dsts.Store(&dsts)
}

func (s *advertSender) SendAdvert(priority uint8, interval time.Duration) error {
	adv := s.adv
	adv.Priority, adv.Interval = priority, interval
	var errs []error
	for _, dst := range *s.dsts.Load() {
		b, err := adv.Marshal(s.conn.Source(), dst, s.mode)
		if err != nil {
			return fmt.Errorf("encoding advert for %s: %w", dst, err)
		}
		if err := s.conn.Write(b, dst); err != nil {
			errs = append(errs, fmt.Errorf("sending advert to %s: %w", dst, err))
			continue
		}
		s.sent.Inc()
	}
	return errors.Join(errs...)
}

// vipHolder adds, announces and removes one router's VIPs.
type vipHolder struct {
	ifname   string
	vips     []netip.Prefix
	mgr      VIPs
	ann      Announcer
	schedule announce.Schedule
	clk      clock.WithTicker
	log      logr.Logger
	m        *metrics
	router   string
	group    func(func()) // runs the announcing goroutine in the agent's group

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	// kept are the VIPs that Release leaves on the interface: the
	// successor of this router holds them (see handover.go).
	kept []netip.Prefix
}

var (
	_ vrrp.VIPHolder  = (*vipHolder)(nil)
	_ announce.Sender = (*vipHolder)(nil)
)

// Acquire adds the VIPs and sends their first announcement before it
// returns, then starts the announcement schedule (whose first announcement
// is the one already sent).
//
// The first announcement is not left to the schedule's goroutine: from the
// moment a VIP is on our interface until clients have processed our
// announcement, the previous master still receives their new connections,
// and with IPVS NAT it may forward them to this node with the VIP as their
// source, which our kernel drops as a martian (its own address as source):
// the client's SYN is lost (docs/bootstrap.md). Every millisecond between
// the address and the announcement widens that window; in the emulated test
// VM the goroutine's first send came 40 ms after the address.
func (h *vipHolder) Acquire() error {
	var errs []error
	for _, p := range h.vips {
		if err := h.mgr.Add(h.ifname, p); err != nil {
			errs = append(errs, err)
		}
	}
	addrs := prefixAddrs(h.vips)
	if err := h.Announce(addrs); err != nil {
		// Best effort, as in the schedule: its next announcements may pass.
		h.log.Error(err, "first announcement failed")
	}
	h.startAnnouncing(true)
	return errors.Join(errs...)
}

// startAnnouncing (re)starts the announcement schedule; sentFirst says that
// its first announcement has been sent already (Acquire).
func (h *vipHolder) startAnnouncing(sentFirst bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopAnnouncingLocked()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	h.cancel, h.done = cancel, done
	addrs := prefixAddrs(h.vips)
	ctx = logr.NewContext(ctx, h.log)
	var s announce.Sender = h
	if sentFirst {
		s = &skipFirst{Sender: h}
	}
	h.group(func() {
		defer close(done)
		h.schedule.Run(ctx, h.clk, s, addrs)
	})
}

// skipFirst is a Sender whose first announcement has been sent by its
// caller: it counts the schedule's first call as that one.
type skipFirst struct {
	announce.Sender
	skipped bool // used by the schedule's goroutine only
}

// Announce passes every call but the first on.
func (s *skipFirst) Announce(vips []netip.Addr) error {
	if !s.skipped {
		s.skipped = true
		return nil
	}
	return s.Sender.Announce(vips)
}

// Announce sends one announcement per VIP and counts it; the schedule calls it.
func (h *vipHolder) Announce(addrs []netip.Addr) error {
	err := h.ann.Announce(addrs)
	h.m.announced(h.router, addrs)
	return err
}

func (h *vipHolder) stopAnnouncingLocked() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel, h.done = nil, nil
	}
}

func (h *vipHolder) Release() error {
	h.mu.Lock()
	h.stopAnnouncingLocked()
	kept := h.kept
	h.mu.Unlock()
	var errs []error
	for _, p := range h.vips {
		if slices.Contains(kept, p) {
			continue
		}
		if err := h.mgr.Remove(h.ifname, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// StopAnnouncing cancels the announcement schedule; the VIPs stay (a
// router that stepped down keeps them until the winner has announced).
func (h *vipHolder) StopAnnouncing() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopAnnouncingLocked()
	return nil
}

// Reannounce starts the announcement schedule again: a burst now, a repeat,
// the refresh.
func (h *vipHolder) Reannounce() error {
	h.startAnnouncing(false)
	return nil
}

func family(ipv6 bool) string {
	if ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

func prefixAddrs(ps []netip.Prefix) []netip.Addr {
	out := make([]netip.Addr, len(ps))
	for i, p := range ps {
		out[i] = p.Addr()
	}
	return out
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// setPeers applies a new unicast peer list to the running router: the
// socket's filter and the adverts' destinations. The state and VIPs stay.
func (r *router) setPeers(peers []netip.Addr) error {
	if err := r.ep.SetPeers(peers); err != nil {
		return err
	}
	r.send.setPeers(peers)
	return nil
}

// routerReporter counts and reports what the state machine dropped and its
// alarms: metrics by reason, the status's drops and conflicts (logged once
// per change).
type routerReporter struct{ r *router }

func (rr routerReporter) Dropped(d vrrp.Dropped) {
	r := rr.r
	reason := string(d.Reason)
	r.m.advertDropped(r.cfg, reason)
	r.mu.Lock()
	r.drops[reason]++
	r.mu.Unlock()
	peer := d.Src.String()
	if len(d.MAC) > 0 {
		peer += " (" + d.MAC.String() + ")"
	}
	r.conflicts.seen(r.clk.Now(), reason, peer, d.Detail)
}

func (rr routerReporter) Alarm(a vrrp.Alarm) {
	rr.r.conflicts.seen(rr.r.clk.Now(), string(a.Kind), a.Peer, a.Detail)
}

// arpSub is the router's subscription to its interface's ARP watcher:
// other nodes' claims of its VIPs (Announced) and its peers' MACs from the
// neighbour table (PeerMAC) go to the state machine; while master it
// probes for other holders of its VIPs.
func (r *router) arpSub() *arpSub {
	return &arpSub{
		vips:   prefixAddrs(r.cfg.VIPs),
		peers:  append(append([]netip.Addr(nil), r.cfg.Peers...), r.cfg.MulticastPeers...),
		active: func() bool { return r.runner.State() == vrrp.Active },
		claimed: func(s arpwatch.Sighting) {
			r.runner.Deliver(vrrp.Announced{Addr: s.Addr, MAC: s.MAC})
		},
		neighbor: func(a netip.Addr, mac net.HardwareAddr) {
			r.runner.Deliver(vrrp.PeerMAC{Addr: a, MAC: mac})
		},
	}
}
