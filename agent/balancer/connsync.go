package balancer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/ipvssync"
	"github.com/vipvs/vipvs/agent/status"
	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// Connection synchronisation
//
// With the sync running, a DR or Tunnel service is programmed on backups
// too unless one of its real servers is this node (the case that keeps
// them master-only, see the package documentation). The kernel registers
// its IPVS hooks only while a network namespace has a service: a backup
// without one would hold the synced connections without using them when
// the VIP arrives, and a master that steps down would answer the packets
// still reaching it with resets.
//
// While some router has virtual services and ipvs.connectionSync is
// enabled, the balancer keeps the kernel's master and backup IPVS sync
// daemons running (package ipvssync) on every node, master or backup:
// whoever is master sends the connections it balances, the others learn
// them, and a node that becomes master forwards the established
// connections to the same real servers. The daemons are checked at every
// full reconcile (a daemon someone stopped comes back) and replaced when
// the settings change. They keep running when the agent stops, so that a
// node whose agent restarts (an upgrade) misses no sync message; switching
// the sync off, or removing every service, stops them.

// ConnSync runs the kernel's IPVS sync daemons; *ipvssync.Manager
// implements it.
type ConnSync interface {
	// Sync runs exactly the master and backup daemons of c (none for nil)
	// and returns those running.
	Sync(c *ipvssync.Config) ([]ipvssync.Daemon, error)
	// AdoptNAT creates the conntrack entries, with their source NAT to
	// the VIP, of the established connections of services in the IPVS
	// table.
	AdoptNAT(services []ipvssync.NATService) (ipvssync.Adoption, error)
}

// Taking NAT connections over
//
// A node that becomes master of a router with NAT services while the sync
// runs creates the conntrack entries of the connections it learnt from the
// sync (ConnSync.AdoptNAT), first thing in the next reconcile: without
// them a real server's packet reaching the new master before the client's
// is dropped, and after a hard failover, where both ends retransmit with
// TCP's exponential backoff, a connection waited up to 29 s instead of one
// retransmission (package ipvssync, nfct.go).

// syncState is the balancer's part of the connection sync; b.mu guards it.
type syncState struct {
	// want is the daemons' config; nil when the sync is off or no router
	// has services.
	want *ipvssync.Config
	// disabled is true when the config switches the sync off.
	disabled bool
	// notes are the limitations of the current config.
	notes []string
	// conn runs the daemons; nil until the table opens.
	conn ConnSync
	// applied is what conn.Sync last achieved; started is whether the
	// balancer ever started daemons (only then does it stop them).
	applied *ipvssync.Config
	started bool
	st      status.ConnectionSync
	// adopt are the routers this node became master of since the last
	// reconcile, whose NAT connections are to be taken over.
	adopt map[string]bool
}

// syncMetrics are the metrics of the connection sync.
type syncMetrics struct {
	daemon *prometheus.GaugeVec
	errors prometheus.Counter
	conns  *prometheus.GaugeVec
	adopt  *prometheus.CounterVec
}

func newSyncMetrics(reg prometheus.Registerer) (*syncMetrics, error) {
	m := &syncMetrics{
		daemon: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipvs_ipvs_sync_daemon",
			Help: "1 while the kernel's IPVS connection sync daemon of the role (master: sends, backup: receives) runs.",
		}, []string{"role"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipvs_ipvs_sync_errors_total",
			Help: "Attempts to start, check or stop the IPVS sync daemons that failed.",
		}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipvs_ipvs_connections",
			Help: "Connections in the IPVS table at the last full reconcile, by origin: local (balanced here) or sync (received from the master's sync daemon, ready for a takeover).",
		}, []string{"origin"}),
		adopt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipvs_ipvs_sync_nat_takeovers_total",
			Help: "Established NAT connections a node that became master found in its IPVS table, by result: created (their conntrack entry with the source NAT to the VIP was created), existing (conntrack had one), failed.",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.daemon, m.errors, m.conns, m.adopt} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("balancer: registering metrics: %w", err)
		}
	}
	return m, nil
}

// directOnBackupLocked reports whether the DR or Tunnel service s is
// programmed while this node is not master: the sync runs and no real
// server of s is an address of this node. b.mu is held.
func (b *Balancer) directOnBackupLocked(s config.VirtualService) bool {
	if b.sync.want == nil {
		return false
	}
	local := b.localAddrs
	if local == nil {
		local = interfaceAddrs
	}
	addrs, err := local()
	if err != nil {
		return false
	}
	for _, r := range s.RealServers {
		if slices.Contains(addrs, r.Addr.Addr()) {
			return false
		}
	}
	return true
}

// interfaceAddrs returns the addresses of this network namespace.
func interfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// updateSyncLocked computes the wanted daemons from c. b.mu is held.
func (b *Balancer) updateSyncLocked(c *config.Config) {
	s := &b.sync
	s.want, s.notes = nil, nil
	s.disabled = !c.IPVS.Sync.Enabled
	if len(c.Services) == 0 {
		return
	}
	if s.disabled {
		s.notes = []string{"connection sync is switched off (ipvs.connectionSync.enabled: false): established connections break when the VIP moves"}
		return
	}
	cs := c.IPVS.Sync
	want := &ipvssync.Config{Interface: cs.Interface, SyncID: cs.SyncID, Group: cs.Group, Port: cs.Port, TTL: cs.TTL}
	withServices := map[string]bool{}
	for _, svc := range c.Services {
		withServices[svc.Router] = true
	}
	var unicast []string
	for _, r := range c.Routers {
		if !withServices[r.Name] {
			continue
		}
		if want.Interface == "" {
			want.Interface = r.Interface
		}
		if !r.Multicast() {
			unicast = append(unicast, r.Name)
		}
	}
	if len(unicast) > 0 {
		s.notes = append(s.notes, fmt.Sprintf("the kernel's IPVS sync is multicast only (group %s on %s) while VRRP of %v is unicast: the directors must share a segment that carries multicast", cs.Group, want.Interface, unicast))
	}
	for _, svc := range c.Services {
		if svc.Forwarding != agentv1alpha1.ForwardingNAT && svc.Forwarding != "" {
			continue
		}
		s.notes = append(s.notes, "NAT: where directors are also real servers, only the connections balanced to a director that is neither the old nor the new master survive a failover (the old master's own were delivered locally without source NAT, and the kernel refuses a synced connection to a local real server); connections of a director's own clients are masqueraded to its address and stay on it")
		break
	}
	if want.Interface == "" {
		// The router's interface is still being picked: no daemons yet.
		return
	}
	s.want = want
}

// syncDaemons makes the kernel's daemons match the config; on a full
// reconcile it also checks them and counts the connections by origin. It
// never fails the reconcile: the sync is reported on its own.
func (b *Balancer) syncDaemons(full bool) {
	b.mu.Lock()
	s := &b.sync
	conn, want, applied, started := s.conn, s.want, s.applied, s.started
	b.mu.Unlock()
	if conn == nil || (!full && reflect.DeepEqual(want, applied)) {
		return
	}
	if want == nil && !started {
		return // never started: leave the kernel's daemons alone
	}
	var perr error
	if want != nil && b.opts.PrepareTakeover != nil {
		perr = b.opts.PrepareTakeover()
	}
	running, err := conn.Sync(want)
	if perr != nil {
		err = errors.Join(err, fmt.Errorf("preparing conntrack to take over NAT connections: %w", perr))
	}
	st := status.ConnectionSync{State: status.SyncRunning}
	switch {
	case err != nil:
		st.State, st.LastError = status.SyncFailing, err.Error()
		b.sm.errors.Inc()
	case want == nil:
		st.State = status.SyncDisabled
	}
	roles := map[string]float64{"master": 0, "backup": 0}
	for _, d := range running {
		st.Daemons = append(st.Daemons, d.String())
		roles[d.State.String()] = 1
	}
	for r, v := range roles {
		b.sm.daemon.WithLabelValues(r).Set(v)
	}
	if full && b.opts.CountConns != nil && want != nil {
		if n, cerr := b.opts.CountConns(); cerr == nil {
			st.LocalConnections, st.SyncedConnections = n.Local, n.Synced
			b.sm.conns.WithLabelValues("local").Set(float64(n.Local))
			b.sm.conns.WithLabelValues("sync").Set(float64(n.Synced))
		}
	}
	b.mu.Lock()
	prev := s.st
	s.st = st
	if err == nil {
		s.applied = want
		s.started = s.started || want != nil
	} else {
		s.applied = nil
	}
	b.mu.Unlock()
	switch {
	case err != nil && err.Error() != prev.LastError:
		b.log.Error(err, "IPVS connection sync failed; established connections will not survive a failover until it runs")
	case err == nil && prev.State == status.SyncFailing:
		b.log.Info("IPVS connection sync runs again")
	}
}

// openSyncLocked opens the connection sync with the table. b.mu is held.
func (b *Balancer) openSyncLocked() {
	if b.opts.OpenSync == nil || b.sync.conn != nil {
		return
	}
	c, err := b.opts.OpenSync()
	if err != nil {
		b.log.Error(err, "IPVS connection sync is unavailable: established connections will not survive a failover")
		b.sync.st = status.ConnectionSync{State: status.SyncFailing, LastError: err.Error()}
		return
	}
	b.sync.conn = c
}

// syncStatusLocked returns the sync's status. b.mu is held.
func (b *Balancer) syncStatusLocked() *status.ConnectionSync {
	s := &b.sync
	if len(b.services) == 0 && !s.started {
		return nil
	}
	st := s.st
	switch {
	case s.disabled:
		st.State = status.SyncDisabled
	case st.State == "":
		st.State = status.SyncFailing
		st.LastError = "not started yet (the IPVS table is not open, or the router's interface is not picked yet)"
	}
	st.Limitations = append([]string(nil), s.notes...)
	return &st
}

// noteMasterLocked records that this node became master of router, whose
// NAT connections the next reconcile takes over while the sync runs. It
// reports whether there is something to take over. b.mu is held.
func (b *Balancer) noteMasterLocked(router string) bool {
	if b.sync.want == nil {
		return false
	}
	for _, s := range b.services {
		if s.Router == router && s.Forwarding == agentv1alpha1.ForwardingNAT {
			if b.sync.adopt == nil {
				b.sync.adopt = map[string]bool{}
			}
			b.sync.adopt[router] = true
			return true
		}
	}
	return false
}

// adoptNAT takes over the NAT connections of the routers this node became
// master of (noteMasterLocked) and is still master of.
func (b *Balancer) adoptNAT() {
	b.mu.Lock()
	routers, conn := b.sync.adopt, b.sync.conn
	b.sync.adopt = nil
	var services []ipvssync.NATService
	for _, s := range b.services {
		if !routers[s.Router] || !b.master[s.Router] || s.Forwarding != agentv1alpha1.ForwardingNAT {
			continue
		}
		proto := protocol(s.Protocol)
		for _, vip := range b.vips[s.Router] {
			services = append(services, ipvssync.NATService{Protocol: uint8(proto), VIP: netip.AddrPortFrom(vip.Addr(), s.Port)})
		}
	}
	b.mu.Unlock()
	if conn == nil || len(services) == 0 {
		return
	}
	start := b.clk.Now()
	a, err := conn.AdoptNAT(services)
	b.sm.adopt.WithLabelValues("created").Add(float64(a.Created))
	b.sm.adopt.WithLabelValues("existing").Add(float64(a.Existing))
	b.sm.adopt.WithLabelValues("failed").Add(float64(a.Failed))
	took := b.clk.Since(start)
	if err != nil {
		b.log.Error(err, "taking the established NAT connections over failed; they continue from the client's next packet", "created", a.Created, "existing", a.Existing, "failed", a.Failed, "took", took)
		return
	}
	if a != (ipvssync.Adoption{}) {
		b.log.Info("established NAT connections taken over", "created", a.Created, "existing", a.Existing, "took", took)
	}
}
