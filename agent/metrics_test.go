package agent

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vipvs/vipvs/agent/balancer"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/vrrp"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
)

func TestBGPMetrics(t *testing.T) {
	st := &statusv1.BGP{Advertised: []string{"203.0.113.10/32", "2001:db8::10/128"}, Peers: []statusv1.BGPPeer{
		{Address: "192.0.2.1", State: statusv1.BGPStateEstablished, BFD: statusv1.BFDStateUp},
		{Address: "192.0.2.2", State: statusv1.BGPStateActive, BFD: statusv1.BFDStateDown},
		{Address: "2001:db8::1", State: statusv1.BGPStateEstablished},
	}}
	c := newBGPCollector(func(context.Context) *statusv1.BGP { return st })
	want := `
# HELP vipvs_bgp_bfd_up 1 while the BFD session with a peer is up, 0 otherwise; only for peers with BFD.
# TYPE vipvs_bgp_bfd_up gauge
vipvs_bgp_bfd_up{peer="192.0.2.1"} 1
vipvs_bgp_bfd_up{peer="192.0.2.2"} 0
# HELP vipvs_bgp_routes_advertised Host routes (VIPs of routers in mode bgp) the node advertises now.
# TYPE vipvs_bgp_routes_advertised gauge
vipvs_bgp_routes_advertised 2
# HELP vipvs_bgp_session_up 1 while the BGP session with a peer is established, 0 otherwise (embedded speaker).
# TYPE vipvs_bgp_session_up gauge
vipvs_bgp_session_up{peer="192.0.2.1"} 1
vipvs_bgp_session_up{peer="192.0.2.2"} 0
vipvs_bgp_session_up{peer="2001:db8::1"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	st = nil
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("%d metrics without bgp routers, want none", n)
	}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rc := config.Router{Name: "web", Mode: config.ModeBGP}
	m.setBGPRouterState(rc, statusv1.StateWithdrawn)
	if v := testutil.ToFloat64(m.bgpState.WithLabelValues("web", "IPv4", statusv1.StateWithdrawn)); v != 1 {
		t.Errorf("WITHDRAWN = %v", v)
	}
	if v := testutil.ToFloat64(m.bgpState.WithLabelValues("web", "IPv4", statusv1.StateAdvertised)); v != 0 {
		t.Errorf("ADVERTISED = %v", v)
	}
	m.forgetBGPRouter(rc)
	if n := testutil.CollectAndCount(m.bgpState); n != 0 {
		t.Errorf("%d series after forget", n)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rc := config.Router{Name: "api", VRID: 51, Priority: 150}
	m.setState(rc, vrrp.Initialize)
	m.transition(rc, vrrp.Transition{From: vrrp.Initialize, To: vrrp.Backup})
	m.transition(rc, vrrp.Transition{From: vrrp.Backup, To: vrrp.Active})
	m.advertDropped(rc, "peer")
	m.advertDropped(rc, "peer")
	m.conflict(rc, "address-mismatch")
	want := `
# HELP vipvs_vrrp_adverts_dropped_total VRRP advertisements dropped by a receive check, by reason.
# TYPE vipvs_vrrp_adverts_dropped_total counter
vipvs_vrrp_adverts_dropped_total{family="IPv4",reason="peer",router="api",vrid="51"} 2
# HELP vipvs_vrrp_conflicts_total Disagreements and alarms of a virtual router, by kind: address-mismatch, version-mismatch, interval-mismatch, auth-mismatch, second-master (two masters that both persist), mac-mismatch, forged-priority-0, unknown-peer, impostor, duplicate-owner, stall.
# TYPE vipvs_vrrp_conflicts_total counter
vipvs_vrrp_conflicts_total{family="IPv4",kind="address-mismatch",router="api",vrid="51"} 1
# HELP vipvs_vrrp_state Current state of each virtual router: 1 for the state it is in, 0 for the others.
# TYPE vipvs_vrrp_state gauge
vipvs_vrrp_state{family="IPv4",router="api",state="BACKUP",vrid="51"} 0
vipvs_vrrp_state{family="IPv4",router="api",state="FAULT",vrid="51"} 0
vipvs_vrrp_state{family="IPv4",router="api",state="MASTER",vrid="51"} 1
vipvs_vrrp_state{family="IPv4",router="api",state="STOP",vrid="51"} 0
# HELP vipvs_vrrp_transitions_total State transitions of each virtual router, by the state entered.
# TYPE vipvs_vrrp_transitions_total counter
vipvs_vrrp_transitions_total{family="IPv4",router="api",state="BACKUP",vrid="51"} 1
vipvs_vrrp_transitions_total{family="IPv4",router="api",state="MASTER",vrid="51"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"vipvs_vrrp_adverts_dropped_total", "vipvs_vrrp_conflicts_total", "vipvs_vrrp_state", "vipvs_vrrp_transitions_total"); err != nil {
		t.Error(err)
	}
	m.forget(rc)
	if n := testutil.CollectAndCount(m.state); n != 0 {
		t.Errorf("%d state series left after forget, want 0", n)
	}
}

func TestLiveChange(t *testing.T) {
	base := config.Router{Name: "api", VRID: 51, Priority: 100, Peers: []netip.Addr{netip.MustParseAddr("192.0.2.12")}}
	tests := []struct {
		name string
		mod  func(*config.Router)
		want bool
	}{
		{"priority changed", func(r *config.Router) { r.Priority = 120 }, true},
		{"vrid changed too", func(r *config.Router) { r.Priority = 120; r.VRID = 52 }, false},
		{"to owner", func(r *config.Router) { r.Priority = 255 }, false},
		{"track checks", func(r *config.Router) { r.TrackChecks = []config.TrackCheck{{Check: "api", Weight: -50}} }, true},
		{"unicast peers", func(r *config.Router) { r.Peers = []netip.Addr{netip.MustParseAddr("192.0.2.14")} }, true},
		{"unicast to multicast", func(r *config.Router) { r.Peers = nil }, false},
		{"vips too", func(r *config.Router) {
			r.Priority = 120
			r.VIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base
			tt.mod(&b)
			if got := liveChange(base, b); got != tt.want {
				t.Errorf("priorityOnly = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMetricsDocumented checks that the README's metrics reference lists
// every metric the agent and its balancer register.
func TestMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := balancer.New(balancer.Options{Registerer: reg, OpenTable: openIPVS}); err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(newBGPCollector(func(context.Context) *statusv1.BGP { return nil }))
	var names []string
	ch := make(chan *prometheus.Desc, 64)
	go func() { reg.Describe(ch); close(ch) }()
	for d := range ch {
		s := d.String()
		_, rest, _ := strings.Cut(s, `fqName: "`)
		name, _, _ := strings.Cut(rest, `"`)
		names = append(names, name)
	}
	if len(names) < 10 {
		t.Fatalf("only %d metrics described: %v", len(names), names)
	}
	for _, n := range names {
		if !strings.Contains(string(readme), "| `"+n+"` |") {
			t.Errorf("metric %s is not in the README's metrics table", n)
		}
	}
}
