package agent

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/vrrp"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/version"
)

// namespace prefixes every metric name.
const namespace = "vipvs"

// states are the values of the state label (keepalived's words).
var states = []string{"MASTER", "BACKUP", "FAULT", "STOP"}

// metrics are the agent's Prometheus metrics. Labels are bounded: router names
// and VRIDs come from the config, reasons from a fixed enum; a stranger's
// address is never a label.
type metrics struct {
	state        *prometheus.GaugeVec
	priority     *prometheus.GaugeVec
	transitions  *prometheus.CounterVec
	advertsSent  *prometheus.CounterVec
	advertsRecv  *prometheus.CounterVec
	advertsDrop  *prometheus.CounterVec
	conflicts    *prometheus.CounterVec
	announceSent *prometheus.CounterVec
	reloads      *prometheus.CounterVec
	checkUpG     *prometheus.GaugeVec
	checkProbes  *prometheus.CounterVec
	buildInfo    *prometheus.GaugeVec
	bgpState     *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	rl := []string{"router", "vrid", "family"}
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "vrrp", Name: "state",
			Help: "Current state of each virtual router: 1 for the state it is in, 0 for the others.",
		}, append(rl, "state")),
		priority: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "vrrp", Name: "priority",
			Help: "Effective VRRP priority of each virtual router.",
		}, rl),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "vrrp", Name: "transitions_total",
			Help: "State transitions of each virtual router, by the state entered.",
		}, append(rl, "state")),
		advertsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "vrrp", Name: "adverts_sent_total",
			Help: "VRRP advertisements sent (one per destination).",
		}, rl),
		advertsRecv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "vrrp", Name: "adverts_received_total",
			Help: "VRRP advertisements received that passed every receive check.",
		}, rl),
		advertsDrop: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "vrrp", Name: "adverts_dropped_total",
			Help: "VRRP advertisements dropped by a receive check, by reason.",
		}, append(rl, "reason")),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "vrrp", Name: "conflicts_total",
			Help: "Disagreements and alarms of a virtual router, by kind: address-mismatch, version-mismatch, interval-mismatch, auth-mismatch, second-master (two masters that both persist), mac-mismatch, forged-priority-0, unknown-peer, impostor, duplicate-owner, stall.",
		}, append(rl, "kind")),
		announceSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "announce", Name: "sent_total",
			Help: "Announcements sent for VIPs: gratuitous ARP (garp) or unsolicited neighbour advertisement (na).",
		}, []string{"router", "kind"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "config", Name: "reloads_total",
			Help: "Config reloads, by result (applied, unchanged, rejected).",
		}, []string{"result"}),
		checkUpG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "check", Name: "up",
			Help: "1 while a health check of the node is healthy (after rise/fall), 0 otherwise.",
		}, []string{"check"}),
		checkProbes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "check", Name: "probes_total",
			Help: "Probes of each health check, by result (success, failure).",
		}, []string{"check", "result"}),
		bgpState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "bgp", Name: "router_state",
			Help: "Current state of each virtual router in mode bgp: 1 for the state it is in (ADVERTISED: the node serves and advertises its VIPs; WITHDRAWN: it does not, a tracked check fails or the node drains), 0 for the other.",
		}, []string{"router", "family", "state"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help: "Always 1; the version label is the agent's build version.",
		}, []string{"version"}),
	}
	for _, c := range []prometheus.Collector{m.state, m.priority, m.transitions, m.advertsSent, m.advertsRecv, m.advertsDrop, m.conflicts, m.announceSent, m.reloads, m.checkUpG, m.checkProbes, m.buildInfo, m.bgpState} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	m.buildInfo.WithLabelValues(version.Version).Set(1)
	return m, nil
}

func routerLabels(rc config.Router) []string {
	return []string{rc.Name, fmt.Sprint(rc.VRID), family(rc.IPv6)}
}

func (m *metrics) setState(rc config.Router, s vrrp.State) {
	l := routerLabels(rc)
	for _, st := range states {
		v := 0.0
		if st == s.Keepalived() {
			v = 1
		}
		m.state.WithLabelValues(append(l, st)...).Set(v)
	}
	m.priority.WithLabelValues(l...).Set(float64(rc.Priority))
}

func (m *metrics) transition(rc config.Router, t vrrp.Transition) {
	m.setState(rc, t.To)
	m.transitions.WithLabelValues(append(routerLabels(rc), t.To.Keepalived())...).Inc()
}

func (m *metrics) setPriority(rc config.Router, p uint8) {
	m.priority.WithLabelValues(routerLabels(rc)...).Set(float64(p))
}

func (m *metrics) advertDropped(rc config.Router, reason string) {
	m.advertsDrop.WithLabelValues(append(routerLabels(rc), reason)...).Inc()
}

func (m *metrics) announced(router string, addrs []netip.Addr) {
	for _, a := range addrs {
		kind := "garp"
		if a.Is6() {
			kind = "na"
		}
		m.announceSent.WithLabelValues(router, kind).Inc()
	}
}

// forget removes a router's series when it is removed from the config.
func (m *metrics) forget(rc config.Router) {
	l := prometheus.Labels{"router": rc.Name}
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.state, m.priority, m.transitions, m.advertsSent, m.advertsRecv, m.advertsDrop, m.conflicts, m.announceSent} {
		v.DeletePartialMatch(l)
	}
}

func (m *metrics) conflict(rc config.Router, kind string) {
	m.conflicts.WithLabelValues(append(routerLabels(rc), kind)...).Inc()
}

func (m *metrics) checkUp(name string, healthy bool) {
	v := 0.0
	if healthy {
		v = 1
	}
	m.checkUpG.WithLabelValues(name).Set(v)
}

func (m *metrics) checkResult(name string, ok bool) {
	result := "failure"
	if ok {
		result = "success"
	}
	m.checkProbes.WithLabelValues(name, result).Inc()
}

func (m *metrics) forgetCheck(name string) {
	m.checkUpG.DeletePartialMatch(prometheus.Labels{"check": name})
	m.checkProbes.DeletePartialMatch(prometheus.Labels{"check": name})
}

// routerMetrics are one router's per-packet counters, resolved once: a
// label lookup per advert costs more than the advert at 10 ms intervals.
type routerMetrics struct {
	sent, recv prometheus.Counter
}

func (m *metrics) forRouter(rc config.Router) routerMetrics {
	l := routerLabels(rc)
	return routerMetrics{sent: m.advertsSent.WithLabelValues(l...), recv: m.advertsRecv.WithLabelValues(l...)}
}

// bgpStates are the values of the state label of vipvs_bgp_router_state.
var bgpStates = []string{statusv1.StateAdvertised, statusv1.StateWithdrawn}

func (m *metrics) setBGPRouterState(rc config.Router, state string) {
	for _, st := range bgpStates {
		v := 0.0
		if st == state {
			v = 1
		}
		m.bgpState.WithLabelValues(rc.Name, family(rc.IPv6), st).Set(v)
	}
}

func (m *metrics) forgetBGPRouter(rc config.Router) {
	m.bgpState.DeletePartialMatch(prometheus.Labels{"router": rc.Name})
}

// bgpCollector reads the bgp sessions when Prometheus scrapes: the
// sessions' state (vipvs_bgp_session_up), their BFD (vipvs_bgp_bfd_up) and
// the number of host routes the node advertises
// (vipvs_bgp_routes_advertised). Peers are addresses from the config: the
// label set is bounded.
type bgpCollector struct {
	report    func(context.Context) *statusv1.BGP
	sessionUp *prometheus.Desc
	bfdUp     *prometheus.Desc
	routes    *prometheus.Desc
}

func newBGPCollector(report func(context.Context) *statusv1.BGP) *bgpCollector {
	return &bgpCollector{
		report: report,
		sessionUp: prometheus.NewDesc(prometheus.BuildFQName(namespace, "bgp", "session_up"),
			"1 while the BGP session with a peer is established, 0 otherwise (embedded speaker).", []string{"peer"}, nil),
		bfdUp: prometheus.NewDesc(prometheus.BuildFQName(namespace, "bgp", "bfd_up"),
			"1 while the BFD session with a peer is up, 0 otherwise; only for peers with BFD.", []string{"peer"}, nil),
		routes: prometheus.NewDesc(prometheus.BuildFQName(namespace, "bgp", "routes_advertised"),
			"Host routes (VIPs of routers in mode bgp) the node advertises now.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *bgpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sessionUp
	ch <- c.bfdUp
	ch <- c.routes
}

// Collect implements prometheus.Collector; without routers in mode bgp it
// reports nothing.
func (c *bgpCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st := c.report(ctx)
	if st == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(len(st.Advertised)))
	for _, p := range st.Peers {
		ch <- prometheus.MustNewConstMetric(c.sessionUp, prometheus.GaugeValue, boolValue(p.Established()), p.Address)
		if p.BFD != "" {
			ch <- prometheus.MustNewConstMetric(c.bfdUp, prometheus.GaugeValue, boolValue(p.BFD == statusv1.BFDStateUp), p.Address)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
