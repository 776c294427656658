package operator

import (
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// exposition is the text format of the operator's metrics with lines as
// the series; the HELP and TYPE lines are added.
func exposition(current, master []string) string {
	var b strings.Builder
	if len(current) > 0 {
		b.WriteString("# HELP vipvs_operator_node_config_current 1 while the node's agent runs the configuration rendered for it (status.nodes[].running and runningConfigHash == renderedConfigHash), 0 otherwise.\n")
		b.WriteString("# TYPE vipvs_operator_node_config_current gauge\n")
		for _, l := range current {
			b.WriteString("vipvs_operator_node_config_current" + l + "\n")
		}
	}
	if len(master) > 0 {
		b.WriteString("# HELP vipvs_operator_vip_master 1 for each node that the node companions report as master of the virtual IP address vip.\n")
		b.WriteString("# TYPE vipvs_operator_vip_master gauge\n")
		for _, l := range master {
			b.WriteString("vipvs_operator_vip_master" + l + "\n")
		}
	}
	return b.String()
}

// TestStatusMetrics follows the metrics of two LoadBalancerConfigs through
// the statuses computeStatus gives: nodes running their configuration or
// not, a master moving, a split brain, a node leaving, a deletion.
func TestStatusMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newStatusMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// A second reconciler in the process shares the metrics.
	if again, err := newStatusMetrics(reg); err != nil || again.configCurrent != m.configCurrent || again.vipMaster != m.vipMaster {
		t.Fatalf("second registration: %v; want the metrics shared", err)
	}
	set := func(name string, obs observed) {
		t.Helper()
		st, masters, _ := computeStatus(testLBC(name), obs, metav1.Unix(1000, 0))
		m.set(name, st, masters)
	}
	check := func(step string, current, master []string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exposition(current, master)), MetricNodeConfigCurrent, MetricVIPMaster); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}

	set("cp", observe(
		nodeState{name: "m0", rendered: "h", running: "h", state: "MASTER"},
		nodeState{name: "m1", rendered: "h", running: "h", state: "BACKUP"},
		nodeState{name: "m2", rendered: "h"}, // no report yet
	))
	set("ingress", observe(nodeState{name: "w0", rendered: "i", running: "i", state: "MASTER"}))
	check("ready", []string{
		`{load_balancer_config="cp",node="m0"} 1`,
		`{load_balancer_config="cp",node="m1"} 1`,
		`{load_balancer_config="cp",node="m2"} 0`,
		`{load_balancer_config="ingress",node="w0"} 1`,
	}, []string{
		`{load_balancer_config="cp",node="m0",vip="192.0.2.10"} 1`,
		`{load_balancer_config="ingress",node="w0",vip="192.0.2.10"} 1`,
	})

	// m1 runs an older configuration, m0 rejected the newest one, and the
	// master moved to m2; then m1 and m2 both claim it.
	set("cp", observe(
		nodeState{name: "m0", rendered: "new", running: "h", state: "BACKUP", configErr: "bad"},
		nodeState{name: "m1", rendered: "new", running: "h", state: "BACKUP"},
		nodeState{name: "m2", rendered: "new", running: "new", state: "MASTER"},
	))
	check("rolling out", []string{
		`{load_balancer_config="cp",node="m0"} 0`,
		`{load_balancer_config="cp",node="m1"} 0`,
		`{load_balancer_config="cp",node="m2"} 1`,
		`{load_balancer_config="ingress",node="w0"} 1`,
	}, []string{
		`{load_balancer_config="cp",node="m2",vip="192.0.2.10"} 1`,
		`{load_balancer_config="ingress",node="w0",vip="192.0.2.10"} 1`,
	})
	set("cp", observe(
		nodeState{name: "m0", rendered: "new", running: "new", state: "BACKUP"},
		nodeState{name: "m1", rendered: "new", running: "new", state: "MASTER"},
		nodeState{name: "m2", rendered: "new", running: "new", state: "MASTER"},
	))
	check("split brain", []string{
		`{load_balancer_config="cp",node="m0"} 1`,
		`{load_balancer_config="cp",node="m1"} 1`,
		`{load_balancer_config="cp",node="m2"} 1`,
		`{load_balancer_config="ingress",node="w0"} 1`,
	}, []string{
		`{load_balancer_config="cp",node="m1",vip="192.0.2.10"} 1`,
		`{load_balancer_config="cp",node="m2",vip="192.0.2.10"} 1`,
		`{load_balancer_config="ingress",node="w0",vip="192.0.2.10"} 1`,
	})

	// m2 left; m1 is NotReady (its report may be stale: not master, not
	// running); m0's Node is gone (stays a member); a pending node has no
	// series.
	obs := observe(
		nodeState{name: "m0", missing: true, rendered: "new", running: "new", state: "MASTER"},
		nodeState{name: "m1", notReady: true, rendered: "new", running: "new", state: "MASTER"},
		nodeState{name: "m3"},
	)
	obs.members[2].addrs = nil
	set("cp", obs)
	check("node left, missing, not ready, pending", []string{
		`{load_balancer_config="cp",node="m0"} 0`,
		`{load_balancer_config="cp",node="m1"} 0`,
		`{load_balancer_config="ingress",node="w0"} 1`,
	}, []string{
		`{load_balancer_config="ingress",node="w0",vip="192.0.2.10"} 1`,
	})

	m.forget("cp")
	check("cp deleted", []string{`{load_balancer_config="ingress",node="w0"} 1`}, []string{`{load_balancer_config="ingress",node="w0",vip="192.0.2.10"} 1`})
	m.forget("ingress")
	check("all deleted", nil, nil)
}

// TestMetricsDocumented checks that the README's table of metrics lists
// the operator's (the alerts of manifests/monitoring rely on it).
func TestMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{MetricNodeConfigCurrent, MetricVIPMaster, MetricVIPAdvertisers, MetricBGPSessionUp} {
		if !strings.Contains(string(readme), "\n| `"+m+"` |") {
			t.Errorf("README.md's table of metrics has no row for %s", m)
		}
	}
}
