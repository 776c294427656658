package companion

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vipvs/vipvs/render"
)

// Names of the companion's own metrics about the agents' metrics, and the
// label that every re-exported series gets.
const (
	MetricAgentUp           = "vipvs_node_agent_up"
	MetricAgentScrapeErrors = "vipvs_node_agent_scrape_errors_total"
	// MetricLabelLoadBalancerConfig names the LoadBalancerConfig whose
	// agent a series comes from. (The node is added by the ServiceMonitor,
	// from the scraped pod's node.)
	MetricLabelLoadBalancerConfig = "load_balancer_config"
)

// DefaultAgentMetricsTimeout bounds one read of an agent's metrics: well
// below the scrape timeout of the companion (10s by default), as the
// agents are read concurrently within one scrape.
const DefaultAgentMetricsTimeout = 3 * time.Second

// maxAgentMetricsBytes bounds an agent's exposition (a few kilobytes in
// practice).
const maxAgentMetricsBytes = 4 << 20

// skippedPrefixes are the agents' families that are not re-exported: the
// Go runtime's and the process's, which the companion exports for itself
// under the same names (and which say nothing about VRRP or IPVS).
var skippedPrefixes = []string{"go_", "process_", "promhttp_"}

// agentSet is the LoadBalancerConfigs whose files the last reconcile found
// for this node: the agents whose metrics the companion re-exports.
type agentSet struct {
	mu    sync.Mutex
	names []string
}

func (s *agentSet) set(names []string) {
	names = slices.Clone(names)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names = names
}

func (s *agentSet) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.names)
}

// AgentMetrics returns the collector of the agents' metrics of this
// companion's node (see AgentMetrics): the agents of the LoadBalancerConfigs
// its last reconcile found.
func (c *Companion) AgentMetrics(log logr.Logger) *AgentMetrics {
	return NewAgentMetrics(c.opts.HostRoot, c.agents.get, log)
}

// AgentMetrics is a prometheus.Collector that re-exports the metrics of the
// agents of one node. The agents are static pods on the host network whose
// /metrics listens on 127.0.0.1 only, out of Prometheus's reach; they serve
// the same endpoints on their unix sockets (render.SocketPath), which the
// companion sees below its host root.
//
// On each collection it reads /metrics from every agent's socket,
// concurrently, each read bounded by the timeout, and exports each family
// with the added label load_balancer_config=<lbc>, except the go_*,
// process_* and promhttp_* families (the companion has its own). Besides,
// per LoadBalancerConfig, vipvs_node_agent_up is 1 when the read succeeded
// and vipvs_node_agent_scrape_errors_total counts the reads that failed: no
// agent, no answer in time, or an exposition that does not parse or is not
// consistent (a duplicate series, say). Nothing of a failed read is
// exported. When two agents disagree about a family (agents of different
// versions during an upgrade), the help of the first (by
// LoadBalancerConfig name) is used, and a family of another type is left
// out, so that one agent can never make the companion's whole /metrics
// fail. (The companion's own families must not take an agent's family name,
// vipvs_build_info say: its registry would refuse the collection.)
//
// It is an unchecked collector (Describe sends nothing): the families are
// the agents'.
type AgentMetrics struct {
	hostRoot string
	agents   func() []string
	log      logr.Logger
	client   *http.Client
	timeout  time.Duration
	upDesc   *prometheus.Desc
	errDesc  *prometheus.Desc

	mu     sync.Mutex
	errors map[string]float64 // failed reads, by LoadBalancerConfig
	up     map[string]bool    // the last read's result, to log changes only
}

var _ prometheus.Collector = (*AgentMetrics)(nil)

// NewAgentMetrics returns a collector that reads the metrics of the agents
// of the LoadBalancerConfigs agents returns (called on every collection),
// from their sockets below hostRoot.
func NewAgentMetrics(hostRoot string, agents func() []string, log logr.Logger) *AgentMetrics {
	m := &AgentMetrics{
		hostRoot: hostRoot,
		agents:   agents,
		log:      log,
		timeout:  DefaultAgentMetricsTimeout,
		upDesc: prometheus.NewDesc(MetricAgentUp,
			"1 when the node companion read the agent's metrics from its unix socket at the last scrape, 0 otherwise.",
			[]string{MetricLabelLoadBalancerConfig}, nil),
		errDesc: prometheus.NewDesc(MetricAgentScrapeErrors,
			"Reads of the agent's metrics from its unix socket that failed: no agent, no answer in time, or a malformed exposition.",
			[]string{MetricLabelLoadBalancerConfig}, nil),
		errors: map[string]float64{},
		up:     map[string]bool{},
	}
	// One transport for every agent: the URL's host is the
	// LoadBalancerConfig's name, which the dialer maps to its agent's
	// socket, so that kept-alive connections are per agent.
	m.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			lbc, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			var d net.Dialer
			return d.DialContext(ctx, "unix", m.socket(lbc))
		},
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Minute,
	}}
	return m
}

// socket is the path of an agent's socket in the companion's view.
func (m *AgentMetrics) socket(lbc string) string {
	return filepath.Join(m.hostRoot, render.SocketPath(lbc))
}

// Describe implements prometheus.Collector: it sends nothing, which makes
// the collector unchecked.
func (m *AgentMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (m *AgentMetrics) Collect(ch chan<- prometheus.Metric) {
	names := slices.Clone(m.agents())
	sort.Strings(names)
	names = slices.Compact(names)
	fetched := make([]map[string]*dto.MetricFamily, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, lbc := range names {
		wg.Go(func() { fetched[i], errs[i] = m.fetch(lbc) })
	}
	wg.Wait()

	seen := map[string]family{}
	ok := make([]bool, len(names))
	for i, lbc := range names {
		if errs[i] != nil {
			continue
		}
		ms, added, err := convert(lbc, fetched[i], seen)
		if err != nil {
			errs[i] = fmt.Errorf("checking the metrics of the agent at %s: %w", render.SocketPath(lbc), err)
			continue
		}
		for n, f := range added {
			seen[n] = f
		}
		for _, x := range ms {
			ch <- x
		}
		ok[i] = true
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	live := map[string]bool{}
	for i, lbc := range names {
		live[lbc] = true
		if _, known := m.errors[lbc]; !known {
			m.errors[lbc] = 0
		}
		if !ok[i] {
			m.errors[lbc]++
			log := m.log.WithValues("loadBalancerConfig", lbc)
			if was, known := m.up[lbc]; !known || was {
				log.Info("cannot read the agent's metrics", "err", errs[i].Error())
			} else {
				log.V(1).Info("cannot read the agent's metrics", "err", errs[i].Error())
			}
		} else if was, known := m.up[lbc]; known && !was {
			m.log.Info("reading the agent's metrics again", "loadBalancerConfig", lbc)
		}
		m.up[lbc] = ok[i]
		up := 0.0
		if ok[i] {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(m.upDesc, prometheus.GaugeValue, up, lbc)
		ch <- prometheus.MustNewConstMetric(m.errDesc, prometheus.CounterValue, m.errors[lbc], lbc)
	}
	// A LoadBalancerConfig that left the node takes its series along.
	for lbc := range m.errors {
		if !live[lbc] {
			delete(m.errors, lbc)
			delete(m.up, lbc)
		}
	}
}

// fetch reads and parses the metrics of the agent of lbc.
func (m *AgentMetrics) fetch(lbc string) (map[string]*dto.MetricFamily, error) {
	sock := render.SocketPath(lbc) // as the host names it, in messages
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+lbc+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("reading the metrics of the agent at %s: %w", sock, err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the metrics of the agent at %s: %w", sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("reading the metrics of the agent at %s: %s: %s", sock, resp.Status, strings.TrimSpace(string(b)))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAgentMetricsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the metrics of the agent at %s: %w", sock, err)
	}
	if len(b) > maxAgentMetricsBytes {
		return nil, fmt.Errorf("reading the metrics of the agent at %s: more than %d bytes", sock, maxAgentMetricsBytes)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parsing the metrics of the agent at %s: %w", sock, err)
	}
	return fams, nil
}

// family is what must agree between the agents that export a family.
type family struct {
	help string
	typ  dto.MetricType
}

// convert turns the families of one agent into metrics with the label
// load_balancer_config=lbc, in name order. seen holds the families already
// exported from other agents: their help is reused, and a family of another
// type is left out. It returns the families it adds to those, or an error
// when the agent's metrics are not consistent (then nothing of them may be
// exported).
func convert(lbc string, fams map[string]*dto.MetricFamily, seen map[string]family) ([]prometheus.Metric, map[string]family, error) {
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []prometheus.Metric
	added := map[string]family{}
	for _, name := range names {
		mf := fams[name]
		if skipFamily(name) {
			continue
		}
		f := family{help: mf.GetHelp(), typ: mf.GetType()}
		if prev, ok := seen[name]; ok {
			if prev.typ != f.typ {
				continue // another agent's family of another type came first
			}
			f.help = prev.help
		} else {
			added[name] = f
		}
		for _, dm := range mf.GetMetric() {
			x, err := constMetric(name, f, dm, lbc)
			if err != nil {
				return nil, nil, fmt.Errorf("family %s: %w", name, err)
			}
			out = append(out, x)
		}
	}
	if err := consistent(out); err != nil {
		return nil, nil, err
	}
	return out, added, nil
}

// skipFamily reports whether an agent's family is not re-exported.
func skipFamily(name string) bool {
	for _, p := range skippedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return name == MetricAgentUp || name == MetricAgentScrapeErrors
}

// constMetric builds one series of family f with the label
// load_balancer_config=lbc (replacing one the agent would have set).
func constMetric(name string, f family, dm *dto.Metric, lbc string) (prometheus.Metric, error) {
	var labels, values []string
	for _, lp := range dm.GetLabel() {
		if lp.GetName() == MetricLabelLoadBalancerConfig {
			continue
		}
		labels = append(labels, lp.GetName())
		values = append(values, lp.GetValue())
	}
	labels = append(labels, MetricLabelLoadBalancerConfig)
	values = append(values, lbc)
	desc := prometheus.NewDesc(name, f.help, labels, nil)

	var x prometheus.Metric
	var err error
	switch f.typ {
	case dto.MetricType_COUNTER:
		x, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, dm.GetCounter().GetValue(), values...)
	case dto.MetricType_GAUGE:
		x, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, dm.GetGauge().GetValue(), values...)
	case dto.MetricType_UNTYPED:
		x, err = prometheus.NewConstMetric(desc, prometheus.UntypedValue, dm.GetUntyped().GetValue(), values...)
	case dto.MetricType_SUMMARY:
		s := dm.GetSummary()
		q := make(map[float64]float64, len(s.GetQuantile()))
		for _, v := range s.GetQuantile() {
			q[v.GetQuantile()] = v.GetValue()
		}
		x, err = prometheus.NewConstSummary(desc, s.GetSampleCount(), s.GetSampleSum(), q, values...)
	case dto.MetricType_HISTOGRAM:
		h := dm.GetHistogram()
		count := h.GetSampleCount()
		if h.SampleCountFloat != nil {
			count = uint64(h.GetSampleCountFloat())
		}
		buckets := make(map[float64]uint64, len(h.GetBucket()))
		for _, b := range h.GetBucket() {
			n := b.GetCumulativeCount()
			if b.CumulativeCountFloat != nil {
				n = uint64(b.GetCumulativeCountFloat())
			}
			buckets[b.GetUpperBound()] = n // +Inf too: the encoders do not repeat it
		}
		x, err = prometheus.NewConstHistogram(desc, count, h.GetSampleSum(), buckets, values...)
	default:
		return nil, fmt.Errorf("type %s is not re-exported", f.typ)
	}
	if err != nil {
		return nil, err
	}
	if dm.TimestampMs != nil {
		x = prometheus.NewMetricWithTimestamp(time.UnixMilli(dm.GetTimestampMs()), x)
	}
	return x, nil
}

// consistent runs on ms the checks that the companion's registry runs when
// it is scraped (a duplicate series, an invalid name, a label that a
// summary may not have, two families whose series names collide), so that
// an agent's malformed metrics are refused here instead of failing the
// companion's whole /metrics.
func consistent(ms []prometheus.Metric) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(metricList(ms)); err != nil {
		return err
	}
	_, err := reg.Gather()
	return err
}

// metricList is an unchecked collector of fixed metrics.
type metricList []prometheus.Metric

func (metricList) Describe(chan<- *prometheus.Desc) {}

func (l metricList) Collect(ch chan<- prometheus.Metric) {
	for _, m := range l {
		ch <- m
	}
}
