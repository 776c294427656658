package balancer

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/ipvs"
	"github.com/vipvs/vipvs/agent/status"
)

// sloppyMemTable is a memTable that records EnableSloppy and may fail it.
type sloppyMemTable struct {
	*memTable
	mu    sync.Mutex
	calls int
	err   error
}

func (s *sloppyMemTable) EnableSloppy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.err
}

func (s *sloppyMemTable) sloppyCalls() int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls }

func (s *sloppyMemTable) service(key string) (ipvs.Service, bool) {
	s.memTable.mu.Lock()
	defer s.memTable.mu.Unlock()
	svc, ok := s.services[key]
	return svc, ok
}

// bgpService is a service of a bgp router as config builds it.
func bgpService(persistence time.Duration) config.VirtualService {
	return config.VirtualService{Router: "api", Name: "api", Port: 6443, Protocol: "TCP", Scheduler: "mh", Forwarding: "DR",
		Persistence: persistence, ConsistentHashing: true,
		RealServers: []config.RealServer{
			{Addr: netip.MustParseAddrPort("192.0.2.13:6443"), Weight: 2},
			{Addr: netip.MustParseAddrPort("192.0.2.11:6443"), Weight: 1},
		}}
}

// TestConsistentHashing: the service of a bgp router is programmed with
// mh, mh-fallback and mh-port (no mh-port with persistence), its reals
// carry their nominal weights, and sloppy TCP/SCTP are switched on; a
// failure to switch them on fails the reconcile with
// the reason in the status, and a VRRP router's service needs none of it.
func TestConsistentHashing(t *testing.T) {
	for _, tt := range []struct {
		name      string
		svc       config.VirtualService
		sloppyErr error
		wantFlags ipvs.Flag
		wantCalls bool
	}{
		{name: "bgp", svc: bgpService(0), wantFlags: ipvs.FlagSched1 | ipvs.FlagSched2, wantCalls: true},
		{name: "bgp with persistence", svc: bgpService(time.Minute), wantFlags: ipvs.FlagSched1, wantCalls: true},
		{name: "bgp, sloppy cannot be set", svc: bgpService(0), sloppyErr: errors.New("read-only file system"), wantFlags: ipvs.FlagSched1 | ipvs.FlagSched2, wantCalls: true},
		{name: "vrrp router with mh", svc: func() config.VirtualService { s := bgpService(0); s.ConsistentHashing = false; return s }()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			table := &sloppyMemTable{memTable: newMemTable(), err: tt.sloppyErr}
			b := start(t, table, &memSNAT{}, nil)
			b.Update(testConfig(tt.svc))
			b.SetMaster("api", true)
			key := ipvs.Service{VIP: netip.MustParseAddr("192.0.2.100"), Port: 6443, Protocol: ipvs.TCP}.Key()
			var got ipvs.Service
			waitFor(t, "the service", 5*time.Second, func() bool {
				s, ok := table.service(key)
				got = s
				return ok && len(s.Reals) == 2
			})
			if got.Scheduler != "mh" || got.Flags != tt.wantFlags {
				t.Errorf("service scheduler %q flags %#x, want mh %#x", got.Scheduler, uint32(got.Flags), uint32(tt.wantFlags))
			}
			for _, r := range got.Reals {
				if r.Nominal != r.Weight {
					t.Errorf("real %v: nominal %d, want its weight %d", r.Addr, r.Nominal, r.Weight)
				}
			}
			if calls := table.sloppyCalls(); (calls > 0) != tt.wantCalls {
				t.Errorf("EnableSloppy called %d times, want calls: %v", calls, tt.wantCalls)
			}
			var st *status.IPVS
			waitFor(t, "the status", 5*time.Second, func() bool { st = b.Status(); return st != nil && st.Services == 2 })
			if tt.sloppyErr != nil {
				if st.State != status.IPVSFailing || !strings.Contains(st.LastError, "sloppy TCP") || !strings.Contains(st.LastError, "read-only") {
					t.Errorf("status %s: %q, want failing with the sloppy TCP error", st.State, st.LastError)
				}
			} else if st.State != status.IPVSActive || st.LastError != "" {
				t.Errorf("status %s: %q, want active", st.State, st.LastError)
			}
		})
	}
}

// TestNATOnEveryNodeMasquerades: the NAT service of a bgp router (its VIP
// on every node) is source-NATed to the node's own address, so that the
// real server answers this node rather than the VIP, which every node
// holds; a VRRP router's NAT service is source-NATed to its VIP.
func TestNATOnEveryNodeMasquerades(t *testing.T) {
	for _, tt := range []struct {
		name string
		bgp  bool
	}{{"bgp", true}, {"vrrp", false}} {
		t.Run(tt.name, func(t *testing.T) {
			svc := bgpService(0)
			svc.Forwarding = "NAT"
			svc.ConsistentHashing = tt.bgp
			table := &sloppyMemTable{memTable: newMemTable()}
			sn := &memSNAT{}
			b := start(t, table, sn, nil)
			b.Update(testConfig(svc))
			b.SetMaster("api", true)
			var got []SNATTarget
			waitFor(t, "the source NAT targets", 5*time.Second, func() bool {
				sn.mu.Lock()
				defer sn.mu.Unlock()
				got = slices.Clone(sn.targets)
				return len(got) == 2
			})
			for _, tg := range got {
				if tg.Masquerade != tt.bgp {
					t.Errorf("target %v: Masquerade %v, want %v", tg, tg.Masquerade, tt.bgp)
				}
			}
		})
	}
}
