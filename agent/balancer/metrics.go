package balancer

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipvs/vipvs/agent/ipvs"
)

// metrics are the balancer's Prometheus metrics.
type metrics struct {
	available  prometheus.Gauge
	duration   prometheus.Histogram
	errors     prometheus.Counter
	operations *prometheus.CounterVec
	services   prometheus.Gauge
	reals      *prometheus.GaugeVec
	up         *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		available: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vipvs_ipvs_available",
			Help: "1 when the agent can program IPVS, 0 when the kernel has no IPVS (the VIPs still move, connections are not balanced).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vipvs_ipvs_reconcile_duration_seconds",
			Help:    "Time to read the kernel's IPVS table, compute the difference and apply it.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipvs_ipvs_reconcile_errors_total",
			Help: "IPVS reconciles that failed (in part).",
		}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipvs_ipvs_operations_total",
			Help: "IPVS operations applied, by kind (add-service, update-real, ...).",
		}, []string{"op"}),
		services: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vipvs_ipvs_services",
			Help: "IPVS virtual services the agent programs (one per service and VIP).",
		}),
		reals: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipvs_ipvs_real_servers",
			Help: "Real servers of the programmed services, by state: active (weight > 0) or drained (weight 0).",
		}, []string{"state"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipvs_real_server_up",
			Help: "1 while a health-checked real server is healthy, 0 while it is drained.",
		}, []string{"router", "service", "real"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.available, m.duration, m.errors, m.operations, m.services, m.reals, m.up} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("balancer: registering metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one reconcile.
func (m *metrics) observe(plan ipvs.Plan, took time.Duration, err error) {
	m.duration.Observe(took.Seconds())
	if err != nil {
		m.errors.Inc()
	}
	for kind, n := range plan.Counts() {
		m.operations.WithLabelValues(kind.String()).Add(float64(n))
	}
}

// forgetReal drops the metrics of a real server no longer checked.
func (m *metrics) forgetReal(k realKey) {
	m.up.DeleteLabelValues(k.router, k.service, k.addr.String())
}
