package companion

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vipvs/vipvs/render"
)

// serveAgent serves h on the unix socket of the agent of lbc below root, as
// an agent's status server does, until the test ends. Each of setup, if
// any, sees the server before it starts.
func serveAgent(t *testing.T, root, lbc string, h http.HandlerFunc, setup ...func(*httptest.Server)) {
	t.Helper()
	sock := filepath.Join(root, render.SocketPath(lbc))
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	for _, f := range setup {
		f(srv)
	}
	srv.Start()
	t.Cleanup(srv.Close)
}

// exposition serves a fixed text exposition as /metrics.
func exposition(text string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(text))
	}
}

// apiAgent is the exposition of an agent as the agent's registry writes
// it: its Go and process metrics, and its own.
const apiAgent = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 12
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 9
# HELP vipvs_build_info Always 1; the version label is the agent's build version.
# TYPE vipvs_build_info gauge
vipvs_build_info{version="v0.1.0"} 1
# HELP vipvs_ipvs_reconcile_duration_seconds Duration of the IPVS reconciles.
# TYPE vipvs_ipvs_reconcile_duration_seconds histogram
vipvs_ipvs_reconcile_duration_seconds_bucket{le="0.001"} 3
vipvs_ipvs_reconcile_duration_seconds_bucket{le="0.01"} 5
vipvs_ipvs_reconcile_duration_seconds_bucket{le="+Inf"} 6
vipvs_ipvs_reconcile_duration_seconds_sum 0.5
vipvs_ipvs_reconcile_duration_seconds_count 6
# HELP vipvs_vrrp_conflicts_total Adverts for our VRID from a router that disagrees.
# TYPE vipvs_vrrp_conflicts_total counter
vipvs_vrrp_conflicts_total{family="IPv4",kind="address-mismatch",router="api",vrid="51"} 2
# HELP vipvs_vrrp_state Current state of each virtual router: 1 for the state it is in, 0 for the others.
# TYPE vipvs_vrrp_state gauge
vipvs_vrrp_state{family="IPv4",router="api",state="BACKUP",vrid="51"} 0
vipvs_vrrp_state{family="IPv4",router="api",state="MASTER",vrid="51"} 1
# HELP vipvs_test_summary A summary, with a label the agent should not set.
# TYPE vipvs_test_summary summary
vipvs_test_summary{load_balancer_config="spoofed",quantile="0.5"} 0.25
vipvs_test_summary_sum{load_balancer_config="spoofed"} 1.5
vipvs_test_summary_count{load_balancer_config="spoofed"} 4
`

// TestAgentMetrics checks the collector against agents served on unix
// sockets: a good one is re-exported with the load_balancer_config label
// (without its go_* and process_* families); a malformed exposition, a
// duplicate series, a missing socket and an error status are scrape
// errors, and nothing of them is exported.
func TestAgentMetrics(t *testing.T) {
	root := t.TempDir()
	serveAgent(t, root, "api", exposition(apiAgent))
	// Does not parse: the label set is not closed.
	serveAgent(t, root, "broken", exposition("# TYPE vipvs_vrrp_state gauge\nvipvs_vrrp_state{router=\"b\" 1\nvipvs_build_info{version=\"v0.1.0\"} 1\n"))
	// Parses, but the same series twice would make the companion's whole
	// /metrics fail.
	serveAgent(t, root, "dup", exposition("# TYPE vipvs_check_up gauge\nvipvs_check_up{check=\"x\"} 1\nvipvs_check_up{check=\"x\"} 0\n"))
	serveAgent(t, root, "failing", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	agents := []string{"api", "broken", "dup", "failing", "gone"}
	m := NewAgentMetrics(root, func() []string { return agents }, testr.New(t))

	const agentSeries = `# HELP vipvs_build_info Always 1; the version label is the agent's build version.
# TYPE vipvs_build_info gauge
vipvs_build_info{load_balancer_config="api",version="v0.1.0"} 1
# HELP vipvs_ipvs_reconcile_duration_seconds Duration of the IPVS reconciles.
# TYPE vipvs_ipvs_reconcile_duration_seconds histogram
vipvs_ipvs_reconcile_duration_seconds_bucket{load_balancer_config="api",le="0.001"} 3
vipvs_ipvs_reconcile_duration_seconds_bucket{load_balancer_config="api",le="0.01"} 5
vipvs_ipvs_reconcile_duration_seconds_bucket{load_balancer_config="api",le="+Inf"} 6
vipvs_ipvs_reconcile_duration_seconds_sum{load_balancer_config="api"} 0.5
vipvs_ipvs_reconcile_duration_seconds_count{load_balancer_config="api"} 6
# HELP vipvs_test_summary A summary, with a label the agent should not set.
# TYPE vipvs_test_summary summary
vipvs_test_summary{load_balancer_config="api",quantile="0.5"} 0.25
vipvs_test_summary_sum{load_balancer_config="api"} 1.5
vipvs_test_summary_count{load_balancer_config="api"} 4
# HELP vipvs_vrrp_conflicts_total Adverts for our VRID from a router that disagrees.
# TYPE vipvs_vrrp_conflicts_total counter
vipvs_vrrp_conflicts_total{family="IPv4",kind="address-mismatch",load_balancer_config="api",router="api",vrid="51"} 2
# HELP vipvs_vrrp_state Current state of each virtual router: 1 for the state it is in, 0 for the others.
# TYPE vipvs_vrrp_state gauge
vipvs_vrrp_state{family="IPv4",load_balancer_config="api",router="api",state="BACKUP",vrid="51"} 0
vipvs_vrrp_state{family="IPv4",load_balancer_config="api",router="api",state="MASTER",vrid="51"} 1
# HELP vipvs_node_agent_up 1 when the node companion read the agent's metrics from its unix socket at the last scrape, 0 otherwise.
# TYPE vipvs_node_agent_up gauge
vipvs_node_agent_up{load_balancer_config="api"} 1
vipvs_node_agent_up{load_balancer_config="broken"} 0
vipvs_node_agent_up{load_balancer_config="dup"} 0
vipvs_node_agent_up{load_balancer_config="failing"} 0
vipvs_node_agent_up{load_balancer_config="gone"} 0
`
	errors := func(n int) string {
		return fmt.Sprintf(`# HELP vipvs_node_agent_scrape_errors_total Reads of the agent's metrics from its unix socket that failed: no agent, no answer in time, or a malformed exposition.
# TYPE vipvs_node_agent_scrape_errors_total counter
vipvs_node_agent_scrape_errors_total{load_balancer_config="api"} 0
vipvs_node_agent_scrape_errors_total{load_balancer_config="broken"} %[1]d
vipvs_node_agent_scrape_errors_total{load_balancer_config="dup"} %[1]d
vipvs_node_agent_scrape_errors_total{load_balancer_config="failing"} %[1]d
vipvs_node_agent_scrape_errors_total{load_balancer_config="gone"} %[1]d
`, n)
	}
	for n := 1; n <= 2; n++ {
		if err := testutil.CollectAndCompare(m, strings.NewReader(agentSeries+errors(n))); err != nil {
			t.Errorf("collection %d: %v", n, err)
		}
	}

	// Registered beside the companion's own Go and process collectors,
	// as controller-runtime's registry holds them, the collection is
	// consistent: the agents' go_* and process_* are not re-exported.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m)
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gathering with the companion's own collectors: %v", err)
	}

	// A LoadBalancerConfig that left the node takes its series along.
	agents = []string{"api"}
	if n := testutil.CollectAndCount(m, MetricAgentUp, MetricAgentScrapeErrors); n != 2 {
		t.Errorf("after all but api left: %d series of %s and %s, want 2", n, MetricAgentUp, MetricAgentScrapeErrors)
	}
}

// TestAgentMetricsDisagree checks two agents of different versions: the
// help of the first is used for both, and a family whose type differs
// from the first's is left out (the rest of that agent is exported).
func TestAgentMetricsDisagree(t *testing.T) {
	root := t.TempDir()
	serveAgent(t, root, "a", exposition(`# HELP vipvs_x The old help.
# TYPE vipvs_x gauge
vipvs_x 1
# HELP vipvs_y A gauge.
# TYPE vipvs_y gauge
vipvs_y 1
`))
	serveAgent(t, root, "b", exposition(`# HELP vipvs_x The new help.
# TYPE vipvs_x gauge
vipvs_x 2
# HELP vipvs_y A counter now.
# TYPE vipvs_y counter
vipvs_y 5
`))
	m := NewAgentMetrics(root, func() []string { return []string{"a", "b"} }, testr.New(t))
	want := `# HELP vipvs_x The old help.
# TYPE vipvs_x gauge
vipvs_x{load_balancer_config="a"} 1
vipvs_x{load_balancer_config="b"} 2
# HELP vipvs_y A gauge.
# TYPE vipvs_y gauge
vipvs_y{load_balancer_config="a"} 1
# HELP vipvs_node_agent_up 1 when the node companion read the agent's metrics from its unix socket at the last scrape, 0 otherwise.
# TYPE vipvs_node_agent_up gauge
vipvs_node_agent_up{load_balancer_config="a"} 1
vipvs_node_agent_up{load_balancer_config="b"} 1
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "vipvs_x", "vipvs_y", MetricAgentUp); err != nil {
		t.Error(err)
	}
}

// TestAgentMetricsConnections checks that the collections reuse one
// connection per agent rather than leave a new one open each time.
func TestAgentMetricsConnections(t *testing.T) {
	root := t.TempDir()
	var mu sync.Mutex
	conns := 0
	serveAgent(t, root, "api", exposition("# TYPE vipvs_z gauge\nvipvs_z 1\n"), func(srv *httptest.Server) {
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		}
	})
	m := NewAgentMetrics(root, func() []string { return []string{"api"} }, testr.New(t))
	for range 5 {
		if n := testutil.CollectAndCount(m, "vipvs_z"); n != 1 {
			t.Fatalf("%d series of vipvs_z, want 1", n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("5 collections opened %d connections to the agent, want 1", conns)
	}
}

// TestAgentMetricsTimeout checks that an agent that does not answer
// delays a collection by the timeout only, and counts as a scrape error.
func TestAgentMetricsTimeout(t *testing.T) {
	root := t.TempDir()
	serveAgent(t, root, "slow", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	serveAgent(t, root, "fast", exposition("# TYPE vipvs_z gauge\nvipvs_z 1\n"))
	m := NewAgentMetrics(root, func() []string { return []string{"fast", "slow"} }, testr.New(t))
	m.timeout = 200 * time.Millisecond
	start := time.Now()
	want := `# HELP vipvs_node_agent_up 1 when the node companion read the agent's metrics from its unix socket at the last scrape, 0 otherwise.
# TYPE vipvs_node_agent_up gauge
vipvs_node_agent_up{load_balancer_config="fast"} 1
vipvs_node_agent_up{load_balancer_config="slow"} 0
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), MetricAgentUp); err != nil {
		t.Error(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("collection took %v with a timeout of %v", d, m.timeout)
	}
}

// checkRealAgentMetrics checks what m re-exports of the real agent of
// TestCompanionReadsRealAgent, which is master of its one virtual router
// (named lbc): vipvs_vrrp_state with the load_balancer_config label, the
// agent up, and none of its go_* families.
func checkRealAgentMetrics(t *testing.T, m *AgentMetrics, lbc string) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering the agent's metrics: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		for _, f := range fams {
			if f.GetName() != name {
				continue
			}
		series:
			for _, s := range f.GetMetric() {
				got := map[string]string{}
				for _, lp := range s.GetLabel() {
					got[lp.GetName()] = lp.GetValue()
				}
				for k, v := range labels {
					if got[k] != v {
						continue series
					}
				}
				return s.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	var names []string
	for _, f := range fams {
		names = append(names, f.GetName())
		if strings.HasPrefix(f.GetName(), "go_") || strings.HasPrefix(f.GetName(), "process_") {
			t.Errorf("the agent's %s is re-exported", f.GetName())
		}
	}
	if v, ok := value(MetricAgentUp, map[string]string{MetricLabelLoadBalancerConfig: lbc}); !ok || v != 1 {
		t.Errorf("%s{%s=%q} = %v (found %v), want 1; families %v", MetricAgentUp, MetricLabelLoadBalancerConfig, lbc, v, ok, names)
	}
	master := map[string]string{MetricLabelLoadBalancerConfig: lbc, "router": lbc, "family": "IPv4", "state": "MASTER"}
	if v, ok := value("vipvs_vrrp_state", master); !ok || v != 1 {
		t.Errorf("vipvs_vrrp_state%v = %v (found %v), want 1; families %v", master, v, ok, names)
	}
}
