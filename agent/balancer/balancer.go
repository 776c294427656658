// Package balancer turns the agent's virtual services into the kernel's IPVS
// table and keeps it there: it health-checks every real server, drains the
// failing ones (weight 0, so existing connections may finish), reconciles the
// table declaratively (package ipvs), incrementally at once on every change
// and fully on a timer, and installs the source NAT (package snat) that NAT
// forwarding needs.
//
// # Backups keep the services programmed
//
// Every node programs the NAT services of every router, master or backup.
// A service on a VIP that a node does not hold receives nothing from the
// network (the VIP's traffic goes to the master), so it is harmless there,
// and it buys two things: a takeover needs no IPVS programming at all (for
// 1000 services that is seconds saved on the critical path), and a client on
// a backup that connects to the VIP is balanced locally over the healthy real
// servers (the hairpin case). Real-server health checks run on every node
// too, so that a new master starts with the right weights.
//
// DR and Tunnel services are the exception: they are programmed only while
// the router is master (or handing over). A real server of a DR service holds
// the VIP itself (on lo); when the directors are also real servers, a backup
// director with the service programmed would take the packets the master
// forwarded to it and balance them again, bouncing them between directors.
// With the connection sync running, a backup that is none of the service's
// real servers programs it too (connsync.go).
//
// # BGP routers: consistent hashing
//
// A router in mode bgp has its VIPs on every node whose checks pass, and
// the routers of the fabric spread the flows over those nodes with ECMP;
// the agent calls SetMaster(router, true) on each of them, so its services
// (DR and Tunnel too) are programmed on every node at once. When a node
// joins or leaves, ECMP moves some established flows to another node,
// which has never seen them. Such a service (config.VirtualService's
// ConsistentHashing) is therefore programmed so that every node sends a
// flow to the same real server without sharing any state:
//
//   - scheduler mh (Maglev hashing), whose lookup table is a function of
//     the real servers' addresses and ports, their weights, and the order
//     they were added in: package ipvs adds them in one canonical order
//     (ascending) and restores it when it differs (ipvs.Diff);
//   - the flags mh-fallback (a flow that hashes to a drained real server
//     goes to the next in its preference order, the same on every node)
//     and, without persistence, mh-port (the client's port is hashed too);
//   - a failing real server is drained with weight 0, never removed: mh
//     keeps a drained real server's slots in its table (the kernel's
//     last_weight) and only skips it, so the flows of every other real
//     server keep their place; removing it would rebuild the table and
//     move some of them. A real server added while drained is added with
//     its weight and drained at once (ipvs.Real.Nominal), so its table is
//     the same as on a node that drained it later;
//   - net.ipv4.vs.sloppy_tcp=1 and sloppy_sctp=1 in the table's network
//     namespace, so that IPVS schedules the first packet it sees of a
//     flow, not only a SYN: an established flow that arrives from another
//     node is balanced, to the same real server. When they cannot be set
//     the reconcile fails with the reason (Status: failing, LastError).
//
// Every node must run the same configuration of the service (real
// servers, ports, weights) and a kernel with the same mh table size
// (CONFIG_IP_VS_MH_TAB_INDEX, 4093 slots by default). docs/forwarding.md
// says which forwarding methods keep moved flows (DR, Tunnel) and why NAT
// cannot.
//
// # No IPVS
//
// When the kernel has no IPVS the balancer says so (log, Status, the metric
// vipvs_ipvs_available 0) and tries again every resync interval; the agent
// keeps moving its VIPs regardless.
package balancer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/vipvs/vipvs/agent/check"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/ipvs"
	"github.com/vipvs/vipvs/agent/ipvssync"
	"github.com/vipvs/vipvs/agent/status"
	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// Table is the kernel's IPVS table; *ipvs.Programmer implements it.
type Table interface {
	ipvs.Table
	Close() error
}

// SourceNAT installs the source NAT of NAT services; *snat.Manager
// implements it.
type SourceNAT interface {
	// Sync makes the rules match targets (idempotent).
	Sync(targets []SNATTarget) error
	// Delete removes every rule.
	Delete() error
}

// SNATTarget is a NAT virtual service whose forwarded connections are
// source-NATed to the director.
type SNATTarget struct {
	VIP      netip.Addr
	Port     uint16
	Protocol ipvs.Protocol
	// Masquerade: to the node's own address, not to the VIP (a VIP that
	// every node holds: a router in mode bgp; see snat.Target.Masquerade).
	Masquerade bool
}

// Options configure a Balancer.
type Options struct {
	// Log receives the balancer's logs.
	Log logr.Logger
	// Clock drives the checks and the resync timer; nil means the real one.
	Clock clock.WithTicker
	// Registerer receives the balancer's metrics; nil means none.
	Registerer prometheus.Registerer
	// OpenTable opens the IPVS table. It is called when the first
	// services are configured and, while it fails, again every resync
	// interval. An error wrapping ipvs.ErrNoIPVS means the kernel has no
	// IPVS.
	OpenTable func() (Table, error)
	// OpenSNAT opens the source NAT, once, with the table; nil means no
	// source NAT (NAT services then need real servers that route back
	// through the director).
	OpenSNAT func() (SourceNAT, error)
	// PrepareKernel, if not nil, is called before each reconcile with
	// whether NAT services exist in each family, to set the sysctls they
	// need (net.ipv4.vs.conntrack, forwarding).
	PrepareKernel func(ipv4NAT, ipv6NAT bool) error
	// OpenSync opens the IPVS connection sync, once, with the table; nil
	// means none (see connsync.go).
	OpenSync func() (ConnSync, error)
	// PrepareTakeover, if not nil, is called before the sync daemons are
	// checked, while they should run, to set what the kernel needs to
	// take over established NAT connections (snat.EnableTakeover).
	PrepareTakeover func() error
	// CountConns, if not nil, counts the table's connections by origin
	// at each full reconcile while the sync runs.
	CountConns func() (ipvssync.ConnCounts, error)
}

// Balancer programs the virtual services of one agent. Its methods are safe
// for concurrent use.
type Balancer struct {
	opts Options
	log  logr.Logger
	clk  clock.WithTicker
	m    *metrics
	sm   *syncMetrics

	trigger chan struct{}
	// prepareErr is the last error of PrepareKernel, logged when it changes;
	// only Run's goroutine uses it.
	prepareErr string

	// checks are the real-server checks.
	checks *check.Pool
	// syncMu serialises syncChecks; realKeys (guarded by it) maps the
	// checks' names to their real servers.
	syncMu   sync.Mutex
	realKeys map[string]realKey

	mu       sync.Mutex
	services []config.VirtualService
	vips     map[string][]netip.Prefix // router -> VIPs
	master   map[string]bool           // router -> master or handing over
	resync   time.Duration
	sem      chan struct{} // bounds concurrent probes
	st       status.IPVS
	table    Table
	snat     SourceNAT
	rec      *ipvs.Reconciler
	sync     syncState
	// sloppyOK is set once the table switched sloppy TCP and SCTP on.
	sloppyOK bool
	// localAddrs lists this node's addresses; nil means the system's.
	localAddrs func() ([]netip.Addr, error)

	// record is the file of the services the table's Reconciler owns
	// (config.IPVS.RecordFile); "" for none. Read when the table opens.
	record string
}

// realKey identifies one real server of one service.
type realKey struct {
	router, service string
	addr            netip.AddrPort
}

// realConfig is what a real server's check is built from: a change
// restarts it.
type realConfig struct {
	key  realKey
	spec config.RealServerCheck
}

// New returns a Balancer; Run starts it.
func New(opts Options) (*Balancer, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.OpenTable == nil {
		return nil, errors.New("balancer: Options.OpenTable is required")
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	sm, err := newSyncMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Balancer{
		opts:    opts,
		log:     opts.Log,
		clk:     opts.Clock,
		m:       m,
		sm:      sm,
		trigger: make(chan struct{}, 1),
		vips:    map[string][]netip.Prefix{},
		master:  map[string]bool{},
		resync:  agentv1alpha1.DefaultIPVSResyncInterval,
		sem:     make(chan struct{}, agentv1alpha1.DefaultRealServerCheckConcurrency),
		checks:  check.NewPool(opts.Clock, opts.Log.WithName("real")),
	}, nil
}

// Update sets the services to program, the routers' VIPs and the IPVS
// settings from c. Unchanged real-server checks keep running with their
// state; a changed one starts again in the state of the one it replaces;
// a new one starts failed (weight 0) and probes at once, and its first
// probe decides (keepalived's alpha mode): a real server gets no traffic
// before a probe vouched for it, for example a master whose API server is
// not up yet when a bootstrap node sends to it. It never blocks on IPVS.
func (b *Balancer) Update(c *config.Config) {
	b.mu.Lock()
	b.services = c.Services
	b.vips = map[string][]netip.Prefix{}
	for _, r := range c.Routers {
		b.vips[r.Name] = r.VIPs
	}
	if c.IPVS.ResyncInterval > 0 {
		b.resync = c.IPVS.ResyncInterval
	}
	b.record = c.IPVS.RecordFile
	if n := c.IPVS.CheckConcurrency; n > 0 && n != cap(b.sem) {
		// Probes in flight finish on the old semaphore.
		b.sem = make(chan struct{}, n)
	}
	members := b.checkMembersLocked()
	b.updateSyncLocked(c)
	b.mu.Unlock()
	b.syncChecks(members)
	b.Trigger()
}

// SetMaster tells the balancer whether this node is master of router (or
// handing its VIPs over), which decides whether its DR and Tunnel services
// are programmed, and makes a node that becomes master take the NAT
// connections over (connsync.go).
func (b *Balancer) SetMaster(router string, master bool) {
	b.mu.Lock()
	changed := b.master[router] != master
	b.master[router] = master
	hasDirect := false
	for _, s := range b.services {
		hasDirect = hasDirect || (s.Router == router && s.Forwarding != agentv1alpha1.ForwardingNAT)
	}
	adopt := changed && master && b.noteMasterLocked(router)
	b.mu.Unlock()
	if changed && (hasDirect || adopt) {
		b.Trigger()
	}
}

// Trigger asks for an incremental reconcile now; it never blocks, and
// triggers during a reconcile coalesce into one more.
func (b *Balancer) Trigger() {
	select {
	case b.trigger <- struct{}{}:
	default:
	}
}

// Run runs the health checks and reconciles the table until ctx is done.
// It then stops the checks and returns; the table keeps its services until
// Shutdown.
//
// A trigger (a change of configuration, of a real server's health or of
// mastership) runs an incremental reconcile (ipvs.Reconciler.ReconcileChanged:
// the service list and the real servers of the changed services). The
// resync interval runs a full one (Reconcile: every desired service's real
// servers, repairing what someone else changed); it is measured from the
// last full reconcile, or attempt to open the table, and triggers do not
// postpone it, so that a steady stream of health changes cannot starve the
// repair of drift. The first reconcile after the table opens is full.
//
// The services the balancer programs are recorded in config.IPVS.RecordFile
// (see ipvs.WithRecord): when the agent starts again, the first reconcile
// deletes those no longer configured, even when none is configured any more;
// services it did not program are never touched.
func (b *Balancer) Run(ctx context.Context) {
	var checks sync.WaitGroup
	checks.Go(func() { b.checks.Run(ctx) })
	defer checks.Wait()

	full := true
	lastFull := b.clk.Now()
	for {
		b.mu.Lock()
		idle := len(b.services) == 0 && b.rec == nil
		every, record := b.resync, b.record
		b.mu.Unlock()
		if idle && record != "" {
			// Services recorded by an earlier run are to be deleted.
			_, err := os.Stat(record)
			idle = errors.Is(err, fs.ErrNotExist)
		}
		if idle || b.reconcile(ctx, full) {
			lastFull = b.clk.Now()
		}
		if ctx.Err() != nil {
			return
		}
		wait := lastFull.Add(every).Sub(b.clk.Now())
		if wait <= 0 {
			full = true
			continue
		}
		t := b.clk.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
			full = true
		case <-b.trigger:
			t.Stop()
			full = false
		}
	}
}

// reconcile opens the table if needed and makes it match the desired
// services: fully if full is set or the table was just opened, otherwise
// incrementally. It reports whether the resync interval starts again: a
// full reconcile was made, or the table could not be opened.
func (b *Balancer) reconcile(ctx context.Context, full bool) bool {
	opened, ok := b.open()
	if !ok {
		return true
	}
	full = full || opened
	b.adoptNAT()
	desired, v4NAT, v6NAT, sloppy, everywhere := b.desired()
	if b.opts.PrepareKernel != nil {
		err := b.opts.PrepareKernel(v4NAT, v6NAT)
		if msg := errString(err); msg != b.prepareErr {
			if err != nil {
				b.log.Error(err, "preparing the kernel for IPVS NAT failed; NAT services may not forward until the sysctls are set")
			} else if b.prepareErr != "" {
				b.log.Info("kernel prepared for IPVS NAT")
			}
			b.prepareErr = msg
		}
	}
	var sloppyErr error
	if sloppy {
		// Before the services: a bgp router's service must never run
		// without it.
		sloppyErr = b.enableSloppy(full)
	}
	b.mu.Lock()
	rec := b.rec
	b.mu.Unlock()
	start := b.clk.Now()
	var plan ipvs.Plan
	var err error
	if full {
		plan, err = rec.Reconcile(ctx, desired)
	} else {
		plan, err = rec.ReconcileChanged(ctx, desired)
	}
	took := b.clk.Since(start)
	if ctx.Err() != nil {
		return full
	}
	if serr := b.syncSNAT(desired, everywhere); serr != nil {
		err = errors.Join(err, serr)
	}
	err = errors.Join(err, sloppyErr)
	b.syncDaemons(full)
	b.m.observe(plan, took, err)
	b.m.services.Set(float64(len(desired)))

	b.mu.Lock()
	prev := b.st.LastError
	b.st.Services = len(desired)
	b.st.LastReconcile = b.clk.Now()
	b.st.LastError = ""
	b.st.State = status.IPVSActive
	if err != nil {
		b.st.LastError = err.Error()
		b.st.State = status.IPVSFailing
	}
	b.mu.Unlock()
	switch {
	case err != nil && err.Error() != prev:
		b.log.Error(err, "IPVS reconcile failed; retrying on the next change or resync")
	case err == nil && prev != "":
		b.log.Info("IPVS reconcile succeeds again")
	}
	return full
}

// open opens the table (and the source NAT) when it is not open yet. It
// reports whether the table is open, and whether it was opened now.
func (b *Balancer) open() (opened, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rec != nil {
		return false, true
	}
	t, err := b.opts.OpenTable()
	if err != nil {
		reason := fmt.Sprintf("cannot balance: %v", err)
		if errors.Is(err, ipvs.ErrNoIPVS) {
			reason = "cannot balance: the kernel has no IPVS (module ip_vs is not loaded and cannot be loaded from the agent's container: load it on the node, e.g. `modprobe ip_vs` and list it in /etc/modules-load.d/); the VIPs are still managed, connections to them are served by the master alone"
		}
		if b.st.State != status.IPVSUnavailable || b.st.Reason != reason {
			b.log.Error(err, "IPVS is unavailable: the virtual services are not programmed, the VIPs still move", "retryEvery", b.resync)
		}
		b.st.State, b.st.Reason = status.IPVSUnavailable, reason
		b.m.available.Set(0)
		return false, false
	}
	if b.opts.OpenSNAT != nil {
		s, err := b.opts.OpenSNAT()
		if err != nil {
			b.log.Error(err, "source NAT is unavailable: NAT real servers must route their replies through the director, and hairpin clients are not served")
		} else {
			b.snat = s
		}
	}
	b.openSyncLocked()
	b.table = t
	var opts []ipvs.ReconcilerOption
	if b.record != "" {
		opts = append(opts, ipvs.WithRecord(ipvs.OwnedFile(b.record)))
	}
	b.rec = ipvs.NewReconciler(t, b.clk, b.log, opts...)
	b.st.State, b.st.Reason = status.IPVSActive, ""
	b.m.available.Set(1)
	b.log.Info("IPVS table opened")
	return true, true
}

// desired computes the IPVS services: each virtual service on each VIP of
// its router, real servers drained while their check fails, DR and Tunnel
// services only while master. It also reports which families have NAT
// services, and whether some service hashes consistently (sloppy TCP and
// SCTP are then needed).
func (b *Balancer) desired() (out []ipvs.Service, v4NAT, v6NAT, sloppy bool, everywhere map[netip.Addr]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	active, drained := 0, 0
	for _, s := range b.services {
		nat := s.Forwarding == agentv1alpha1.ForwardingNAT
		if !nat && !b.master[s.Router] && !b.directOnBackupLocked(s) {
			continue
		}
		var reals []ipvs.Real
		for _, r := range s.RealServers {
			w := r.Weight
			if rc, ok := b.checks.Runner(keyString(realKey{s.Router, s.Name, r.Addr})); ok && !rc.Healthy() {
				w = 0
			}
			if w > 0 {
				active++
			} else {
				drained++
			}
			reals = append(reals, ipvs.Real{Addr: r.Addr.Addr(), Port: r.Addr.Port(), Weight: w, Nominal: r.Weight})
		}
		var flags ipvs.Flag
		if s.ConsistentHashing {
			flags = consistentFlags(s)
			sloppy = sloppy || len(b.vips[s.Router]) > 0
			for _, vip := range b.vips[s.Router] {
				if everywhere == nil {
					everywhere = map[netip.Addr]bool{}
				}
				everywhere[vip.Addr()] = true
			}
		}
		for _, vip := range b.vips[s.Router] {
			if nat {
				if vip.Addr().Is4() {
					v4NAT = true
				} else {
					v6NAT = true
				}
			}
			out = append(out, ipvs.Service{
				VIP:         vip.Addr(),
				Port:        s.Port,
				Protocol:    protocol(s.Protocol),
				Scheduler:   s.Scheduler,
				Persistence: s.Persistence,
				Flags:       flags,
				Forward:     forward(s.Forwarding),
				Reals:       reals,
			})
		}
	}
	b.m.reals.WithLabelValues("active").Set(float64(active))
	b.m.reals.WithLabelValues("drained").Set(float64(drained))
	return out, v4NAT, v6NAT, sloppy, everywhere
}

// consistentFlags returns the mh flags of a service of a bgp router:
// mh-fallback always, so that a new flow that hashes to a drained real
// server goes to the next one in its Maglev preference order (the same on
// every node) instead of being refused; mh-port unless the service is
// persistent, so that the flows of one client spread over the real
// servers as ECMP spreads them over the nodes (with persistence the
// client's address alone is hashed: every node then sends a client to the
// same real server, which is what persistence asks for).
func consistentFlags(s config.VirtualService) ipvs.Flag {
	f := ipvs.FlagSched1
	if s.Persistence == 0 {
		f |= ipvs.FlagSched2
	}
	return f
}

// sloppyTable is a Table that can switch on sloppy TCP and SCTP in its
// network namespace; *ipvs.Programmer is one.
type sloppyTable interface {
	EnableSloppy() error
}

// enableSloppy sets net.ipv4.vs.sloppy_tcp and sloppy_sctp to 1 while some
// service hashes consistently (a bgp router's): without them IPVS
// schedules only a SYN (INIT), and this node would reset every established
// flow that the routers' ECMP moves to it when another node leaves or
// joins. It is called at each full reconcile and, until it succeeds, at
// each reconcile; the sysctls are left as they are when no longer needed
// (others may rely on them). An error is reported as the reconcile's.
func (b *Balancer) enableSloppy(full bool) error {
	b.mu.Lock()
	t, done := b.table, b.sloppyOK
	b.mu.Unlock()
	st, ok := t.(sloppyTable)
	if !ok || (done && !full) {
		return nil
	}
	err := st.EnableSloppy()
	b.mu.Lock()
	b.sloppyOK = err == nil
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("enabling sloppy TCP and SCTP for the consistent hashing of the bgp routers' services (flows that the routers move to this node from another are reset without it): %w", err)
	}
	return nil
}

// syncSNAT makes the source NAT cover the NAT services of desired; those
// on the VIPs in everywhere (held by every node: routers in mode bgp) are
// masqueraded to this node's address.
func (b *Balancer) syncSNAT(desired []ipvs.Service, everywhere map[netip.Addr]bool) error {
	b.mu.Lock()
	s := b.snat
	b.mu.Unlock()
	if s == nil {
		return nil
	}
	var targets []SNATTarget
	for _, d := range desired {
		if d.Forward == ipvs.NAT || d.Forward == ipvs.ForwardDefault {
			targets = append(targets, SNATTarget{VIP: d.VIP, Port: d.Port, Protocol: d.Protocol, Masquerade: everywhere[d.VIP]})
		}
	}
	if err := s.Sync(targets); err != nil {
		return fmt.Errorf("installing the source NAT rules: %w", err)
	}
	return nil
}

// Shutdown deletes the services the balancer programmed and the source
// NAT, after the VIPs were handed over; the agent calls it when it stops.
func (b *Balancer) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	rec, t, s := b.rec, b.table, b.snat
	b.rec, b.table, b.snat = nil, nil, nil
	b.mu.Unlock()
	if rec == nil {
		return nil
	}
	var errs []error
	plan, err := rec.Reconcile(ctx, nil)
	if err != nil {
		errs = append(errs, fmt.Errorf("deleting the virtual services: %w", err))
	}
	if c := plan.Counts()[ipvs.DelService]; c > 0 {
		b.log.Info("virtual services deleted", "services", c)
	}
	if s != nil {
		if err := s.Delete(); err != nil {
			errs = append(errs, fmt.Errorf("deleting the source NAT rules: %w", err))
		}
	}
	if err := t.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Status returns the balancer's state for the status report, or nil when
// no service is configured and the table was never opened.
func (b *Balancer) Status() *status.IPVS {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.services) == 0 && b.rec == nil && b.st.State == "" {
		return nil
	}
	st := b.st
	if st.State == "" {
		st.State = status.IPVSActive
	}
	st.ConnectionSync = b.syncStatusLocked()
	st.RealServers = nil
	for _, s := range b.services {
		for _, r := range s.RealServers {
			rs := status.RealServer{Router: s.Router, Service: s.Name, Address: r.Addr.String(), Weight: r.Weight, Healthy: true}
			if rc, ok := b.checks.Runner(keyString(realKey{s.Router, s.Name, r.Addr})); ok {
				rs.Healthy = rc.Healthy()
				if last := rc.Last(); last.Err != nil {
					rs.LastError = last.Err.Error()
				}
			}
			if !rs.Healthy {
				rs.Weight = 0
			}
			st.RealServers = append(st.RealServers, rs)
		}
	}
	return &st
}

// checkMembersLocked returns the real-server checks the services ask for.
// b.mu is held.
func (b *Balancer) checkMembersLocked() []check.Member {
	var members []check.Member
	for _, s := range b.services {
		if s.HealthCheck == nil {
			continue
		}
		for _, r := range s.RealServers {
			k := realKey{s.Router, s.Name, r.Addr}
			m, err := b.checkMember(k, *s.HealthCheck, b.sem)
			if err != nil {
				b.log.Error(err, "real-server check not started; the real server stays in service", "router", k.router, "service", k.service, "real", k.addr)
				continue
			}
			if old, ok := b.checks.Runner(m.Spec.Name); ok && !old.Last().At.IsZero() {
				// A changed check carries on from the state its
				// predecessor's probes reached (an unchanged one keeps
				// running and ignores this).
				m.Spec.InitiallyHealthy, m.Spec.FirstProbeDecides = old.Healthy(), false
			}
			members = append(members, m)
		}
	}
	return members
}

// syncChecks makes the running real-server checks match members:
// unchanged ones keep running, changed and new ones start, removed ones
// stop.
func (b *Balancer) syncChecks(members []check.Member) {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	before := map[string]bool{}
	for _, name := range b.checks.Names() {
		before[name] = true
	}
	stopped, err := b.checks.Sync(members)
	if err != nil {
		b.log.Error(err, "real-server checks not started; their real servers stay in service")
	}
	restarted := map[string]bool{}
	for _, name := range stopped {
		restarted[name] = true
	}
	keys := map[string]realKey{}
	for _, m := range members {
		k := m.Config.(realConfig).key
		keys[m.Spec.Name] = k
		if !before[m.Spec.Name] || restarted[m.Spec.Name] {
			up := 0.0
			if m.Spec.InitiallyHealthy {
				up = 1
			}
			b.m.up.WithLabelValues(k.router, k.service, k.addr.String()).Set(up)
		}
	}
	for _, name := range stopped {
		if _, kept := keys[name]; !kept {
			b.m.forgetReal(b.realKeys[name])
		}
	}
	b.realKeys = keys
}

func keyString(k realKey) string { return k.router + "/" + k.service + "/" + k.addr.String() }

// checkMember builds the check of one real server.
func (b *Balancer) checkMember(k realKey, spec config.RealServerCheck, sem chan struct{}) (check.Member, error) {
	checker, err := newChecker(k.addr, spec)
	if err != nil {
		return check.Member{}, err
	}
	name := keyString(k)
	log := b.log.WithName("real").WithValues("router", k.router, "service", k.service, "real", k.addr.String())
	up := b.m.up.WithLabelValues(k.router, k.service, k.addr.String())
	return check.Member{
		Spec: check.Spec{
			Name:              name,
			Checker:           limited{checker, sem},
			Interval:          spec.Interval,
			Timeout:           spec.Timeout,
			Rise:              spec.Rise,
			Fall:              spec.Fall,
			InitiallyHealthy:  false,
			FirstProbeDecides: true,
			Jitter:            true,
		},
		Config: realConfig{key: k, spec: spec},
		OnChange: func(healthy bool, res check.Result) {
			if healthy {
				up.Set(1)
				log.Info("real server healthy, giving it its weight")
			} else {
				up.Set(0)
				log.Info("real server failed its check, draining it (weight 0)", "error", errString(res.Err))
			}
			b.Trigger()
		},
	}, nil
}

// newChecker builds the probe of real server addr.
func newChecker(addr netip.AddrPort, spec config.RealServerCheck) (check.Checker, error) {
	switch {
	case spec.TCP:
		port := addr.Port()
		if spec.TCPPort != 0 {
			port = spec.TCPPort
		}
		return check.TCP{Address: netip.AddrPortFrom(addr.Addr(), port)}, nil
	case spec.HTTP != nil:
		return check.NewHTTP(check.HTTPOptions{
			URL:                spec.HTTP.URL(addr),
			ExpectStatus:       spec.HTTP.ExpectStatus,
			CAFile:             spec.HTTP.CAFile,
			InsecureSkipVerify: spec.HTTP.InsecureSkipVerify,
			ServerName:         spec.HTTP.ServerName,
		})
	case len(spec.Exec) > 0:
		env := append(os.Environ(),
			"VIPVS_BACKEND_ADDRESS="+addr.Addr().String(),
			"VIPVS_BACKEND_PORT="+strconv.Itoa(int(addr.Port())))
		return check.Exec{Argv: spec.Exec, Env: env}, nil
	}
	return nil, errors.New("the health check has no kind")
}

// limited bounds the number of probes in flight with a semaphore. Waiting
// for a slot counts against the probe's timeout: a node too busy to probe
// in time cannot vouch for a real server.
type limited struct {
	check.Checker
	sem chan struct{}
}

func (l limited) Check(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("no probe slot free within the timeout (ipvs.checkConcurrency %d): %w", cap(l.sem), context.Cause(ctx))
	}
	defer func() { <-l.sem }()
	return l.Checker.Check(ctx)
}

func protocol(p agentv1alpha1.Protocol) ipvs.Protocol {
	switch p {
	case agentv1alpha1.ProtocolUDP:
		return ipvs.UDP
	case agentv1alpha1.ProtocolSCTP:
		return ipvs.SCTP
	}
	return ipvs.TCP
}

func forward(f agentv1alpha1.Forwarding) ipvs.Forward {
	switch f {
	case agentv1alpha1.ForwardingDR:
		return ipvs.DR
	case agentv1alpha1.ForwardingTunnel:
		return ipvs.Tunnel
	}
	return ipvs.NAT
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
