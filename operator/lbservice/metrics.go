package lbservice

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the allocator's metrics (the alerts of
// manifests/monitoring/40-prometheusrule.yaml use them).
const (
	MetricPoolAddressesTotal  = "vipvs_pool_addresses_total"
	MetricPoolAddressesInUse  = "vipvs_pool_addresses_in_use"
	MetricAllocationFailures  = "vipvs_allocation_failures_total"
	labelPool                 = "pool"
	labelReason               = "reason"
	failureReasonAddrConflict = "AddressConflict"
)

// metrics are the allocator's metrics:
//   - vipvs_pool_addresses_total{pool}: the usable addresses of the pool
//     (without .0 and .255 when it avoids them; 0 while it hands out
//     nothing, e.g. when it overlaps an older pool);
//   - vipvs_pool_addresses_in_use{pool}: its addresses given to Services;
//   - vipvs_allocation_failures_total{reason}: each time a Service could
//     not get addresses, counted once per Service and message (reason as
//     in the Service's condition, e.g. PoolExhausted), and each address
//     conflict between two Services' status found at start
//     (AddressConflict).
type metrics struct {
	total, inUse *prometheus.GaugeVec
	failures     *prometheus.CounterVec
	// pools are the pools with series, to delete those of pools gone.
	pools map[string]bool
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	total, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricPoolAddressesTotal,
		Help: "Usable addresses of the IPPool (0 while it hands out none).",
	}, []string{labelPool}))
	if err != nil {
		return nil, err
	}
	inUse, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricPoolAddressesInUse,
		Help: "Addresses of the IPPool given to Services (a shared address counts once).",
	}, []string{labelPool}))
	if err != nil {
		return nil, err
	}
	failures, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricAllocationFailures,
		Help: "Services that could not get addresses, once per Service and message, by reason (PoolExhausted, IPTaken, PortCollision, UnknownPool, ...).",
	}, []string{labelReason}))
	if err != nil {
		return nil, err
	}
	return &metrics{total: total, inUse: inUse, failures: failures, pools: map[string]bool{}}, nil
}

// register registers c with reg, or returns the collector registered
// before it under the same description (tests run several managers).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("registering the allocator's metrics: %w", err)
}

// setPools sets the pools' series and deletes those of pools gone.
func (m *metrics) setPools(total, inUse map[string]float64) {
	for p, v := range total {
		m.total.WithLabelValues(p).Set(v)
		m.inUse.WithLabelValues(p).Set(inUse[p])
	}
	for p := range m.pools {
		if _, ok := total[p]; !ok {
			m.total.DeleteLabelValues(p)
			m.inUse.DeleteLabelValues(p)
		}
	}
	m.pools = map[string]bool{}
	for p := range total {
		m.pools[p] = true
	}
}
