package operator

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
)

// Names of the operator's metrics (README "Metrics"; the alerts of
// manifests/monitoring use them) and of their labels.
const (
	MetricNodeConfigCurrent = "vipvs_operator_node_config_current"
	MetricVIPMaster         = "vipvs_operator_vip_master"
	MetricVIPAdvertisers    = "vipvs_operator_vip_advertising_nodes"
	MetricBGPSessionUp      = "vipvs_operator_bgp_session_up"

	labelLoadBalancerConfig = "load_balancer_config"
	labelNode               = "node"
	labelVIP                = "vip"
	labelPeer               = "peer"
)

// statusMetrics exports what the status of each LoadBalancerConfig says,
// for alerts:
//   - vipvs_operator_node_config_current{load_balancer_config, node} is 1
//     while the node's agent runs the configuration rendered for it
//     (status.nodes[].running, and runningConfigHash == renderedConfigHash),
//     0 otherwise. Every rendered member has one, a node whose Node object
//     is gone from the API too (0: nothing reports for it); a selected node
//     that is not rendered yet (no InternalIP address) has none;
//   - vipvs_operator_vip_master{load_balancer_config, vip, node} is 1 for
//     each node that the companions report as master of the virtual IP
//     address vip (two during a split brain); there is none while no node
//     is master;
//   - vipvs_operator_vip_advertising_nodes{load_balancer_config, vip} is,
//     for each virtual IP address in mode bgp, the number of nodes that
//     advertise it (status.vips[].advertisedBy): 0 while none does;
//   - vipvs_operator_bgp_session_up{load_balancer_config, node, peer} is 1
//     while the node's BGP session with the peer address is established,
//     0 otherwise (status.nodes[].bgpPeers).
//
// A series is deleted when its node leaves, its peer or virtual IP goes,
// or its node stops being master, and with its LoadBalancerConfig.
type statusMetrics struct {
	configCurrent *prometheus.GaugeVec
	vipMaster     *prometheus.GaugeVec
	advertisers   *prometheus.GaugeVec
	sessionUp     *prometheus.GaugeVec

	mu sync.Mutex
	// nodes and masters are the label values of the series set for each
	// LoadBalancerConfig, by its name: what to delete when they go.
	nodes    map[string]map[string]bool
	masters  map[string]map[vipNode]bool
	bgpVIPs  map[string]map[string]bool
	sessions map[string]map[nodePeer]bool
}

type vipNode struct{ vip, node string }

type nodePeer struct{ node, peer string }

// newStatusMetrics returns the operator's metrics, registered with reg.
// When another reconciler of the process registered them already (tests
// run several managers), they are shared.
func newStatusMetrics(reg prometheus.Registerer) (*statusMetrics, error) {
	current, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricNodeConfigCurrent,
		Help: "1 while the node's agent runs the configuration rendered for it (status.nodes[].running and runningConfigHash == renderedConfigHash), 0 otherwise.",
	}, []string{labelLoadBalancerConfig, labelNode}))
	if err != nil {
		return nil, err
	}
	master, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricVIPMaster,
		Help: "1 for each node that the node companions report as master of the virtual IP address vip.",
	}, []string{labelLoadBalancerConfig, labelVIP, labelNode}))
	if err != nil {
		return nil, err
	}
	advertisers, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricVIPAdvertisers,
		Help: "The number of nodes that advertise the virtual IP address vip in mode bgp (status.vips[].advertisedBy); 0 while none does.",
	}, []string{labelLoadBalancerConfig, labelVIP}))
	if err != nil {
		return nil, err
	}
	sessionUp, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricBGPSessionUp,
		Help: "1 while the node's BGP session with the peer is established, 0 otherwise (status.nodes[].bgpPeers).",
	}, []string{labelLoadBalancerConfig, labelNode, labelPeer}))
	if err != nil {
		return nil, err
	}
	return &statusMetrics{
		configCurrent: current,
		vipMaster:     master,
		advertisers:   advertisers,
		sessionUp:     sessionUp,
		nodes:         map[string]map[string]bool{},
		masters:       map[string]map[vipNode]bool{},
		bgpVIPs:       map[string]map[string]bool{},
		sessions:      map[string]map[nodePeer]bool{},
	}, nil
}

// register registers c with reg, or returns the collector registered
// before it under the same description.
func register(reg prometheus.Registerer, c *prometheus.GaugeVec) (*prometheus.GaugeVec, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
			return existing, nil
		}
	}
	return nil, fmt.Errorf("registering the operator's metrics: %w", err)
}

// set makes the series of LoadBalancerConfig lbc say what st says, with
// masters the nodes that report being master, by virtual IP address (as
// computeStatus returns them). It deletes the series of nodes that left and
// of masters that are no longer.
func (m *statusMetrics) set(lbc string, st v1alpha1.LoadBalancerConfigStatus, masters map[string][]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	nodes := map[string]bool{}
	for _, ns := range st.Nodes {
		if len(ns.Addresses) == 0 {
			continue // not rendered: no configuration to run
		}
		nodes[ns.Name] = true
		v := 0.0
		if ns.Running && ns.RenderedConfigHash != "" && ns.RunningConfigHash == ns.RenderedConfigHash {
			v = 1
		}
		m.configCurrent.WithLabelValues(lbc, ns.Name).Set(v)
	}
	ms := map[vipNode]bool{}
	for vip, names := range masters {
		for _, n := range names {
			ms[vipNode{vip, n}] = true
			m.vipMaster.WithLabelValues(lbc, vip, n).Set(1)
		}
	}
	for n := range m.nodes[lbc] {
		if !nodes[n] {
			m.configCurrent.DeleteLabelValues(lbc, n)
		}
	}
	for k := range m.masters[lbc] {
		if !ms[k] {
			m.vipMaster.DeleteLabelValues(lbc, k.vip, k.node)
		}
	}
	m.nodes[lbc], m.masters[lbc] = nodes, ms

	vips := map[string]bool{}
	for _, vs := range st.VIPs {
		if vs.Mode == v1alpha1.AnnouncementBGP {
			vips[vs.Address] = true
			m.advertisers.WithLabelValues(lbc, vs.Address).Set(float64(len(vs.AdvertisedBy)))
		}
	}
	sessions := map[nodePeer]bool{}
	for _, ns := range st.Nodes {
		for _, p := range ns.BGPPeers {
			sessions[nodePeer{ns.Name, p.Address}] = true
			v := 0.0
			if p.State == statusv1.BGPStateEstablished {
				v = 1
			}
			m.sessionUp.WithLabelValues(lbc, ns.Name, p.Address).Set(v)
		}
	}
	for v := range m.bgpVIPs[lbc] {
		if !vips[v] {
			m.advertisers.DeleteLabelValues(lbc, v)
		}
	}
	for k := range m.sessions[lbc] {
		if !sessions[k] {
			m.sessionUp.DeleteLabelValues(lbc, k.node, k.peer)
		}
	}
	m.bgpVIPs[lbc], m.sessions[lbc] = vips, sessions
}

// forget deletes every series of LoadBalancerConfig lbc.
func (m *statusMetrics) forget(lbc string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.configCurrent.DeletePartialMatch(prometheus.Labels{labelLoadBalancerConfig: lbc})
	m.vipMaster.DeletePartialMatch(prometheus.Labels{labelLoadBalancerConfig: lbc})
	m.advertisers.DeletePartialMatch(prometheus.Labels{labelLoadBalancerConfig: lbc})
	m.sessionUp.DeletePartialMatch(prometheus.Labels{labelLoadBalancerConfig: lbc})
	delete(m.nodes, lbc)
	delete(m.masters, lbc)
	delete(m.bgpVIPs, lbc)
	delete(m.sessions, lbc)
}
