package balancer

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/ipvs"
	"github.com/vipvs/vipvs/agent/status"
)

// memTable is an in-memory IPVS table for the unit tests; the kernel's is
// exercised by the VM tests (test/ipvse2e).
type memTable struct {
	mu       sync.Mutex
	services map[string]ipvs.Service
	closed   bool
	// realsRead has, for each read of the table, the number of services
	// whose reals were read: all the desired ones in a full reconcile, the
	// changed ones in an incremental one.
	realsRead []int
}

func newMemTable() *memTable { return &memTable{services: map[string]ipvs.Service{}} }

func (m *memTable) Services(ctx context.Context) ([]ipvs.Service, error) {
	return m.ServicesWithReals(ctx, nil)
}

// ServicesWithReals is ipvs.Programmer's: only the services withReals
// accepts (nil: all) come with their reals.
func (m *memTable) ServicesWithReals(_ context.Context, withReals func(ipvs.Service) bool) ([]ipvs.Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ipvs.Service
	n := 0
	for _, s := range m.services {
		bare := s
		bare.Reals = nil
		if withReals != nil && !withReals(bare) {
			out = append(out, bare)
			continue
		}
		s.Reals = slices.Clone(s.Reals)
		out = append(out, s)
		n++
	}
	m.realsRead = append(m.realsRead, n)
	return out, nil
}

// reads returns realsRead.
func (m *memTable) reads() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.realsRead)
}

func (m *memTable) Apply(_ context.Context, p ipvs.Plan) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range p.Ops {
		k := op.Service.Key()
		s := m.services[k]
		switch op.Kind {
		case ipvs.AddService, ipvs.UpdateService:
			op.Service.Reals = s.Reals
			m.services[k] = op.Service
		case ipvs.DelService:
			delete(m.services, k)
		case ipvs.AddReal, ipvs.UpdateReal, ipvs.DelReal:
			s.Reals = slices.DeleteFunc(s.Reals, func(r ipvs.Real) bool { return r.Addr == op.Real.Addr && r.Port == op.Real.Port })
			if op.Kind != ipvs.DelReal {
				s.Reals = append(s.Reals, op.Real)
			}
			m.services[k] = s
		}
	}
	return nil
}

func (m *memTable) Close() error { m.closed = true; return nil }

// weights returns "vip:port/real=weight" for every real, sorted.
func (m *memTable) weights() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, s := range m.services {
		for _, r := range s.Reals {
			out = append(out, fmt.Sprintf("%s:%d/%s:%d=%d", s.VIP, s.Port, r.Addr, r.Port, r.Weight))
		}
		if len(s.Reals) == 0 {
			out = append(out, fmt.Sprintf("%s:%d/-", s.VIP, s.Port))
		}
	}
	slices.Sort(out)
	return out
}

type memSNAT struct {
	mu      sync.Mutex
	targets []SNATTarget
	deleted bool
}

func (s *memSNAT) Sync(t []SNATTarget) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = slices.Clone(t)
	return nil
}

func (s *memSNAT) Delete() error { s.mu.Lock(); s.deleted = true; s.mu.Unlock(); return nil }

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testConfig(services ...config.VirtualService) *config.Config {
	return &config.Config{
		IPVS: config.IPVS{ResyncInterval: time.Hour, CheckConcurrency: 4},
		Routers: []config.Router{
			{Name: "api", VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24"), netip.MustParsePrefix("192.0.2.101/24")}},
			{Name: "ingress", VIPs: []netip.Prefix{netip.MustParsePrefix("2001:db8::100/64")}},
		},
		Services: services,
	}
}

func start(t *testing.T, table Table, snat SourceNAT, reg prometheus.Registerer) *Balancer {
	t.Helper()
	b, err := New(Options{
		Log:        testr.New(t),
		Registerer: reg,
		OpenTable:  func() (Table, error) { return table, nil },
		OpenSNAT:   func() (SourceNAT, error) { return snat, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

func TestDesiredServices(t *testing.T) {
	table, snat := newMemTable(), &memSNAT{}
	b := start(t, table, snat, nil)
	b.Update(testConfig(
		config.VirtualService{Router: "api", Name: "api", Port: 6443, Protocol: "TCP", Scheduler: "rr", Forwarding: "NAT",
			RealServers: []config.RealServer{
				{Addr: netip.MustParseAddrPort("192.0.2.11:6443"), Weight: 1},
				{Addr: netip.MustParseAddrPort("192.0.2.12:8443"), Weight: 0},
			}},
		config.VirtualService{Router: "ingress", Name: "http", Port: 80, Protocol: "TCP", Scheduler: "wlc", Forwarding: "DR",
			RealServers: []config.RealServer{{Addr: netip.MustParseAddrPort("[2001:db8::21]:80"), Weight: 2}}},
	))
	want := []string{
		"192.0.2.100:6443/192.0.2.11:6443=1", "192.0.2.100:6443/192.0.2.12:8443=0",
		"192.0.2.101:6443/192.0.2.11:6443=1", "192.0.2.101:6443/192.0.2.12:8443=0",
	}
	waitFor(t, "the NAT service on both VIPs", 5*time.Second, func() bool { return slices.Equal(table.weights(), want) })

	// The DR service appears only while this node is master of ingress.
	b.SetMaster("ingress", true)
	withDR := append(slices.Clone(want), "2001:db8::100:80/2001:db8::21:80=2")
	slices.Sort(withDR)
	waitFor(t, "the DR service while master", 5*time.Second, func() bool { return slices.Equal(table.weights(), withDR) })
	b.SetMaster("ingress", false)
	waitFor(t, "no DR service as backup", 5*time.Second, func() bool { return slices.Equal(table.weights(), want) })

	snat.mu.Lock()
	got := fmt.Sprint(snat.targets)
	snat.mu.Unlock()
	if wantT := "[{192.0.2.100 6443 tcp false} {192.0.2.101 6443 tcp false}]"; got != wantT {
		t.Errorf("SNAT targets = %s, want %s", got, wantT)
	}
	// The status follows the table (it is updated after Apply).
	var st *status.IPVS
	waitFor(t, "the status of 2 services and 3 real servers", 5*time.Second, func() bool {
		st = b.Status()
		return st != nil && st.State == status.IPVSActive && st.Services == 2 && len(st.RealServers) == 3
	})

	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := table.weights(); len(got) != 0 || !table.closed || !snat.deleted {
		t.Errorf("after Shutdown: table %v closed %v, SNAT deleted %v; want empty, closed, deleted", got, table.closed, snat.deleted)
	}
}

// TestRecordAfterRestart: the services of an earlier run, recorded in
// config.IPVS.RecordFile, are deleted when no longer configured, even when
// no service is configured any more; a foreign service stays. The kernel's
// table is exercised the same way by test/ipvse2e/lb.TestOwnedAfterRestart.
func TestRecordAfterRestart(t *testing.T) {
	svc := func(port uint16) ipvs.Service {
		return ipvs.Service{VIP: netip.MustParseAddr("192.0.2.100"), Port: port, Protocol: ipvs.TCP, Scheduler: "rr", Forward: ipvs.NAT,
			Reals: []ipvs.Real{{Addr: netip.MustParseAddr("192.0.2.11"), Port: port, Weight: 1, Forward: ipvs.NAT}}}
	}
	vs := func(port uint16) config.VirtualService {
		return config.VirtualService{Router: "api", Name: fmt.Sprint("p", port), Port: port, Protocol: "TCP", Scheduler: "rr", Forwarding: "NAT",
			RealServers: []config.RealServer{{Addr: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.11"), port), Weight: 1}}}
	}
	for _, tt := range []struct {
		name       string
		configured []config.VirtualService
		want       []string // the table's services afterwards
	}{
		{"B dropped", []config.VirtualService{vs(1)}, []string{"tcp/192.0.2.100:1", "tcp/192.0.2.100:3", "tcp/192.0.2.101:1"}},
		{"all dropped", nil, []string{"tcp/192.0.2.100:3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The earlier run programmed A (port 1) and B (port 2) on one
			// VIP; port 3 is someone else's.
			record := filepath.Join(t.TempDir(), "agent.ipvs.json")
			table := newMemTable()
			for _, s := range []ipvs.Service{svc(1), svc(2), svc(3)} {
				table.services[s.Key()] = s
			}
			if err := ipvs.OwnedFile(record).Save([]ipvs.Service{svc(1), svc(2)}); err != nil {
				t.Fatal(err)
			}
			b := start(t, table, nil, nil)
			c := testConfig(tt.configured...)
			c.IPVS.RecordFile = record
			b.Update(c)
			keys := func() []string {
				table.mu.Lock()
				defer table.mu.Unlock()
				return slices.Sorted(maps.Keys(table.services))
			}
			waitFor(t, fmt.Sprint("the table to hold ", tt.want), 5*time.Second, func() bool { return slices.Equal(keys(), tt.want) })
			// The record follows the deletion (it is written after Apply).
			wantRecord := slices.DeleteFunc(slices.Clone(tt.want), func(k string) bool { return k == "tcp/192.0.2.100:3" })
			var recorded []string
			waitFor(t, fmt.Sprint("the record to hold ", wantRecord), 5*time.Second, func() bool {
				got, err := ipvs.OwnedFile(record).Load()
				if err != nil {
					t.Fatal(err)
				}
				recorded = nil
				for _, s := range got {
					recorded = append(recorded, s.Key())
				}
				return slices.Equal(recorded, wantRecord)
			})
		})
	}
}

// TestRealServerDrainAndRestore runs a TCP check against real listeners:
// a real server that stops accepting is drained (weight 0) and gets its
// weight back when it accepts again.
func TestRealServerDrainAndRestore(t *testing.T) {
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lnA.Close()
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrA := netip.MustParseAddrPort(lnA.Addr().String())
	addrB := netip.MustParseAddrPort(lnB.Addr().String())

	reg := prometheus.NewRegistry()
	table := newMemTable()
	b := start(t, table, nil, reg)
	svc := config.VirtualService{Router: "api", Name: "api", Port: 6443, Protocol: "TCP", Scheduler: "rr", Forwarding: "NAT",
		RealServers: []config.RealServer{{Addr: addrA, Weight: 3}, {Addr: addrB, Weight: 5}},
		HealthCheck: &config.RealServerCheck{TCP: true, Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 2, Fall: 2}}
	b.Update(testConfig(svc))
	weight := func(a netip.AddrPort) string {
		for _, w := range table.weights() {
			if strings.HasPrefix(w, "192.0.2.100:6443/"+a.String()+"=") {
				return strings.TrimPrefix(w, "192.0.2.100:6443/"+a.String()+"=")
			}
		}
		return "missing"
	}
	waitFor(t, "both real servers in service", 5*time.Second, func() bool { return weight(addrA) == "3" && weight(addrB) == "5" })

	lnB.Close()
	closed := time.Now()
	waitFor(t, "B drained", 5*time.Second, func() bool { return weight(addrB) == "0" })
	t.Logf("drained %v after the listener closed (fall 2 x interval 100ms + timeout 100ms = 300ms)", time.Since(closed).Round(time.Millisecond))
	if weight(addrA) != "3" {
		t.Errorf("A's weight = %s, want 3 (untouched)", weight(addrA))
	}
	if got := testutil.ToFloat64(b.m.up.WithLabelValues("api", "api", addrB.String())); got != 0 {
		t.Errorf("vipvs_real_server_up for B = %v, want 0", got)
	}
	st := b.Status()
	var sawB bool
	for _, rs := range st.RealServers {
		if rs.Address == addrB.String() {
			sawB = true
			if rs.Healthy || rs.Weight != 0 || !strings.Contains(rs.LastError, "refused") {
				t.Errorf("status of B = %+v, want unhealthy, weight 0, connection refused", rs)
			}
		}
	}
	if !sawB {
		t.Errorf("status has no entry for B: %+v", st.RealServers)
	}

	lnB2, err := net.Listen("tcp", addrB.String())
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addrB, err)
	}
	defer lnB2.Close()
	waitFor(t, "B restored", 5*time.Second, func() bool { return weight(addrB) == "5" })
}

// TestTriggerDoesNotPostponeResync: a trigger runs an incremental reconcile
// and leaves the full resync where it was, one resync interval after the
// last full reconcile. memTable tells them apart by the real servers read:
// a full reconcile reads those of every desired service, an incremental one
// those of the changed services only.
func TestTriggerDoesNotPostponeResync(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	// The kernel holds the services already, as after a restart of the
	// agent, so that the first reconcile has reals to read.
	table := newMemTable()
	for _, vip := range []string{"192.0.2.100", "192.0.2.101"} {
		s := ipvs.Service{VIP: netip.MustParseAddr(vip), Port: 6443, Protocol: ipvs.TCP, Scheduler: "rr", Forward: ipvs.NAT,
			Reals: []ipvs.Real{{Addr: netip.MustParseAddr("192.0.2.11"), Port: 6443, Weight: 1, Forward: ipvs.NAT}}}
		table.services[s.Key()] = s
	}
	b, err := New(Options{
		Log:       testr.New(t),
		Clock:     clk,
		OpenTable: func() (Table, error) { return table, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// Idle until configured: Run waits on its timer.
	waitFor(t, "Run to wait", 5*time.Second, clk.HasWaiters)

	// One service on the two VIPs of router api: two IPVS services.
	c := testConfig(config.VirtualService{Router: "api", Name: "api", Port: 6443, Protocol: "TCP", Scheduler: "rr", Forwarding: "NAT",
		RealServers: []config.RealServer{{Addr: netip.MustParseAddrPort("192.0.2.11:6443"), Weight: 1}}})
	c.IPVS.ResyncInterval = time.Hour
	b.Update(c)
	// reconciled waits for the table reads to be want and Run to wait on
	// its timer again.
	reconciled := func(what string, want ...int) {
		t.Helper()
		waitFor(t, what, 5*time.Second, func() bool { return slices.Equal(table.reads(), want) && clk.HasWaiters() })
	}
	reconciled("the first reconcile, full (the reals of both services read)", 2)

	clk.Step(40 * time.Minute)
	b.Trigger()
	reconciled("an incremental reconcile on the trigger (no reals read)", 2, 0)

	// An hour after the first full reconcile, not after the trigger.
	clk.Step(20 * time.Minute)
	reconciled("the full resync an hour after the first full reconcile", 2, 0, 2)

	// Triggers in between leave the next one an hour after that.
	clk.Step(59 * time.Minute)
	b.Trigger()
	reconciled("an incremental reconcile on the second trigger", 2, 0, 2, 0)
	clk.Step(time.Minute)
	reconciled("the next full resync", 2, 0, 2, 0, 2)
}

func TestNoIPVS(t *testing.T) {
	reg := prometheus.NewRegistry()
	var opens int
	var mu sync.Mutex
	b, err := New(Options{
		Log:        testr.New(t),
		Registerer: reg,
		OpenTable: func() (Table, error) {
			mu.Lock()
			opens++
			mu.Unlock()
			return nil, fmt.Errorf("opening: %w", ipvs.ErrNoIPVS)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.Status() != nil {
		t.Errorf("Status() before any service = %+v, want nil", b.Status())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	c := testConfig(config.VirtualService{Router: "api", Name: "api", Port: 6443, Protocol: "TCP", Scheduler: "rr", Forwarding: "NAT",
		RealServers: []config.RealServer{{Addr: netip.MustParseAddrPort("192.0.2.11:6443"), Weight: 1}}})
	c.IPVS.ResyncInterval = 50 * time.Millisecond
	b.Update(c)
	waitFor(t, "two attempts to open IPVS", 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return opens >= 2 })
	st := b.Status()
	if st == nil || st.State != status.IPVSUnavailable || !strings.Contains(st.Reason, "the kernel has no IPVS") {
		t.Fatalf("Status() = %+v, want unavailable because the kernel has no IPVS", st)
	}
	if got := testutil.ToFloat64(b.m.available); got != 0 {
		t.Errorf("vipvs_ipvs_available = %v, want 0", got)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown() without a table = %v, want nil", err)
	}
}

func TestLimitedWaitsForASlot(t *testing.T) {
	sem := make(chan struct{}, 1)
	sem <- struct{}{} // the only slot is taken
	l := limited{Checker: okChecker{}, sem: sem}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := l.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "no probe slot free") {
		t.Fatalf("Check() with no free slot = %v, want a 'no probe slot free' error", err)
	}
	<-sem
	if err := l.Check(context.Background()); err != nil {
		t.Fatalf("Check() with a free slot = %v", err)
	}
	if len(sem) != 0 {
		t.Errorf("slot not released")
	}
}

type okChecker struct{}

func (okChecker) Check(context.Context) error { return nil }
func (okChecker) String() string              { return "ok" }
