package balancer

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/ipvssync"
	"github.com/vipvs/vipvs/agent/status"
	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// memSync records the configs the balancer asks the sync daemons for,
// and the NAT takeovers.
type memSync struct {
	mu     sync.Mutex
	calls  []*ipvssync.Config
	fail   error
	adopts [][]ipvssync.NATService
}

func (m *memSync) AdoptNAT(services []ipvssync.NATService) (ipvssync.Adoption, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.adopts = append(m.adopts, services)
	return ipvssync.Adoption{Created: 2, Existing: 1}, nil
}

func (m *memSync) adoptions() [][]ipvssync.NATService {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]ipvssync.NATService(nil), m.adopts...)
}

func (m *memSync) Sync(c *ipvssync.Config) ([]ipvssync.Daemon, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, c)
	if m.fail != nil || c == nil {
		return nil, m.fail
	}
	return []ipvssync.Daemon{{State: ipvssync.Master, Interface: c.Interface, SyncID: c.SyncID}, {State: ipvssync.Backup, Interface: c.Interface, SyncID: c.SyncID}}, nil
}

func (m *memSync) last() (*ipvssync.Config, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.calls) == 0 {
		return nil, 0
	}
	return m.calls[len(m.calls)-1], len(m.calls)
}

func syncConfig(enabled bool, unicast bool) *config.Config {
	c := testConfig(config.VirtualService{Router: "api", Name: "web", Port: 80, Protocol: agentv1alpha1.ProtocolTCP, Forwarding: agentv1alpha1.ForwardingNAT})
	c.Routers[0].Interface = "eth0"
	c.Routers[1].Interface = "eth1"
	if unicast {
		c.Routers[0].Peers = []netip.Addr{netip.MustParseAddr("192.0.2.2")}
	}
	c.IPVS.Sync = config.ConnectionSync{Enabled: enabled, SyncID: 51, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}
	return c
}

func TestConnectionSync(t *testing.T) {
	table, ms := newMemTable(), &memSync{}
	reg := prometheus.NewRegistry()
	b, err := New(Options{
		Log:        testr.New(t),
		Registerer: reg,
		OpenTable:  func() (Table, error) { return table, nil },
		OpenSync:   func() (ConnSync, error) { return ms, nil },
		CountConns: func() (ipvssync.ConnCounts, error) { return ipvssync.ConnCounts{Local: 3, Synced: 97}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Enabled, with services: both daemons on the first serviced router's
	// interface, with its sync ID; the unicast VRRP is reported.
	b.Update(syncConfig(true, true))
	waitFor(t, "the daemons", 5*time.Second, func() bool { c, _ := ms.last(); return c != nil })
	c, n := ms.last()
	if want := (ipvssync.Config{Interface: "eth0", SyncID: 51, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}); *c != want {
		t.Errorf("sync config %+v, want %+v", *c, want)
	}
	st := b.Status().ConnectionSync
	if st == nil || st.State != status.SyncRunning || len(st.Daemons) != 2 || st.SyncedConnections != 97 || st.LocalConnections != 3 {
		t.Fatalf("status %+v, want running with 2 daemons and the counts", st)
	}
	if !strings.Contains(strings.Join(st.Limitations, "\n"), "multicast only") {
		t.Errorf("limitations %q do not say that the sync is multicast while VRRP is unicast", st.Limitations)
	}
	if got := testutil.ToFloat64(b.sm.daemon.WithLabelValues("backup")); got != 1 {
		t.Errorf("vipvs_ipvs_sync_daemon{role=backup} = %v, want 1", got)
	}

	// An incremental reconcile with the same config does not touch them.
	b.Trigger()
	time.Sleep(100 * time.Millisecond)
	if _, n2 := ms.last(); n2 != n {
		t.Errorf("an unchanged incremental reconcile called Sync %d more times", n2-n)
	}

	// Switched off: the daemons the balancer started are stopped.
	b.Update(syncConfig(false, false))
	waitFor(t, "the daemons to stop", 5*time.Second, func() bool { c, n2 := ms.last(); return n2 > n && c == nil })
	if st := b.Status().ConnectionSync; st == nil || st.State != status.SyncDisabled || len(st.Limitations) == 0 {
		t.Errorf("status %+v, want disabled with the reason", st)
	}

	// A failure is reported, not fatal.
	ms.mu.Lock()
	ms.fail = errors.New("no such device")
	ms.mu.Unlock()
	b.Update(syncConfig(true, false))
	waitFor(t, "failing status", 5*time.Second, func() bool {
		st := b.Status().ConnectionSync
		return st != nil && st.State == status.SyncFailing && strings.Contains(st.LastError, "no such device")
	})
	if got := b.Status().State; got != status.IPVSActive {
		t.Errorf("IPVS state %q, want active: the sync failing does not fail the services", got)
	}
}

func TestConnectionSyncNeverStartedIsLeftAlone(t *testing.T) {
	table, ms := newMemTable(), &memSync{}
	b, err := New(Options{
		Log:       testr.New(t),
		OpenTable: func() (Table, error) { return table, nil },
		OpenSync:  func() (ConnSync, error) { return ms, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	b.Update(syncConfig(false, false))
	waitFor(t, "the table", 5*time.Second, func() bool { return b.Status() != nil && b.Status().Services > 0 })
	if _, n := ms.last(); n != 0 {
		t.Errorf("Sync called %d times with the sync switched off from the start, want 0 (the kernel's daemons are not ours)", n)
	}
}

func TestDirectOnBackups(t *testing.T) {
	dr := config.VirtualService{Router: "api", Name: "dr", Port: 80, Protocol: agentv1alpha1.ProtocolTCP, Forwarding: agentv1alpha1.ForwardingDR,
		RealServers: []config.RealServer{{Addr: netip.MustParseAddrPort("192.0.2.11:80"), Weight: 1}, {Addr: netip.MustParseAddrPort("192.0.2.12:80"), Weight: 1}}}
	tests := []struct {
		name  string
		sync  bool
		local string
		want  int // services desired while backup
	}{
		{"sync off: master only", false, "192.0.2.99", 0},
		{"sync on, not a real server: backups too", true, "192.0.2.99", 2},
		{"sync on, a real server: master only", true, "192.0.2.12", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(Options{Log: testr.New(t), OpenTable: func() (Table, error) { return newMemTable(), nil }})
			if err != nil {
				t.Fatal(err)
			}
			b.localAddrs = func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr(tt.local)}, nil }
			c := syncConfig(tt.sync, false)
			c.Services = []config.VirtualService{dr}
			b.Update(c)
			got, _, _, _, _ := b.desired()
			if len(got) != tt.want {
				t.Errorf("%d services desired on a backup, want %d", len(got), tt.want)
			}
		})
	}
}

// TestAdoptNATOnBecomingMaster: a node that becomes master of a router
// with NAT services takes their connections over once (each VIP and
// port of the router's NAT services); a router it stays master of, a
// backup, a router with only DR services or a sync switched off take
// nothing over.
func TestAdoptNATOnBecomingMaster(t *testing.T) {
	table, ms := newMemTable(), &memSync{}
	reg := prometheus.NewRegistry()
	b, err := New(Options{
		Log:        testr.New(t),
		Registerer: reg,
		OpenTable:  func() (Table, error) { return table, nil },
		OpenSync:   func() (ConnSync, error) { return ms, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	c := syncConfig(true, false)
	c.Services = append(c.Services,
		config.VirtualService{Router: "api", Name: "dns", Port: 53, Protocol: agentv1alpha1.ProtocolUDP, Forwarding: agentv1alpha1.ForwardingNAT},
		config.VirtualService{Router: "api", Name: "dr", Port: 8080, Protocol: agentv1alpha1.ProtocolTCP, Forwarding: agentv1alpha1.ForwardingDR},
		config.VirtualService{Router: "ingress", Name: "dr", Port: 443, Protocol: agentv1alpha1.ProtocolTCP, Forwarding: agentv1alpha1.ForwardingDR},
	)
	b.Update(c)
	waitFor(t, "the daemons", 5*time.Second, func() bool { c, _ := ms.last(); return c != nil })

	b.SetMaster("api", false)
	b.SetMaster("ingress", true) // DR only: nothing to take over
	b.SetMaster("api", true)
	waitFor(t, "the takeover", 5*time.Second, func() bool { return len(ms.adoptions()) > 0 })
	ap := netip.MustParseAddrPort
	want := []ipvssync.NATService{
		{Protocol: 6, VIP: ap("192.0.2.100:80")}, {Protocol: 6, VIP: ap("192.0.2.101:80")},
		{Protocol: 17, VIP: ap("192.0.2.100:53")}, {Protocol: 17, VIP: ap("192.0.2.101:53")},
	}
	if got := ms.adoptions(); len(got) != 1 || !slices.Equal(got[0], want) {
		t.Errorf("takeovers %v, want one of %v", got, want)
	}
	if got := testutil.ToFloat64(b.sm.adopt.WithLabelValues("created")); got != 2 {
		t.Errorf("vipvs_ipvs_sync_nat_takeovers_total{result=created} = %v, want 2", got)
	}

	// Still master, a reconcile: no second takeover.
	b.SetMaster("api", true)
	b.Trigger()
	time.Sleep(100 * time.Millisecond)
	if got := ms.adoptions(); len(got) != 1 {
		t.Errorf("%d takeovers while staying master, want 1", len(got))
	}

	// Sync off: becoming master again takes nothing over.
	b.Update(syncConfig(false, false))
	b.SetMaster("api", false)
	b.SetMaster("api", true)
	b.Trigger()
	time.Sleep(100 * time.Millisecond)
	if got := ms.adoptions(); len(got) != 1 {
		t.Errorf("%d takeovers with the sync off, want 1", len(got))
	}
}
