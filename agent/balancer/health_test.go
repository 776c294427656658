package balancer

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/vipvs/vipvs/agent/config"
)

// TestRealServerHealthAtStart: a real server with a health check gets no
// traffic before a probe vouched for it (keepalived's alpha mode), the
// first probe runs at once (the clock never moves here, so a probe delayed
// by the jitter or an interval would never run), and one success is
// enough. A changed check carries its real server's state over instead of
// draining it until its first probe.
func TestRealServerHealthAtStart(t *testing.T) {
	tests := []struct {
		name string
		// listening says whether the real server accepts connections
		// when its check starts; change, if set, then changes the
		// check's interval with the listener closed.
		listening, change bool
		wantWeight        string
		wantUp            float64
	}{
		{name: "a refusing real server never gets a weight", listening: false, wantWeight: "0", wantUp: 0},
		{name: "an answering real server gets its weight from its first probe", listening: true, wantWeight: "3", wantUp: 1},
		{name: "a changed check keeps its real server's state", listening: true, change: true, wantWeight: "3", wantUp: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			addr := netip.MustParseAddrPort(ln.Addr().String())
			if !tt.listening {
				ln.Close()
			}
			clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			reg := prometheus.NewRegistry()
			table := newMemTable()
			b, err := New(Options{Log: testr.New(t), Clock: clk, Registerer: reg,
				OpenTable: func() (Table, error) { return table, nil }})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { b.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			svc := config.VirtualService{Router: "api", Name: "api", Port: 6443, Protocol: "TCP", Scheduler: "rr", Forwarding: "NAT",
				RealServers: []config.RealServer{{Addr: addr, Weight: 3}},
				HealthCheck: &config.RealServerCheck{TCP: true, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3}}
			name := keyString(realKey{"api", "api", addr})
			weight := func() string {
				for _, w := range table.weights() {
					if p := "192.0.2.100:6443/" + addr.String() + "="; strings.HasPrefix(w, p) {
						return strings.TrimPrefix(w, p)
					}
				}
				return "missing"
			}
			probed := func() bool {
				r, ok := b.checks.Runner(name)
				return ok && !r.Last().At.IsZero()
			}

			b.Update(testConfig(svc))
			waitFor(t, "the first probe, with the clock standing still", 5*time.Second, probed)
			if tt.change {
				waitFor(t, "the weight after the first probe", 5*time.Second, func() bool { return weight() == "3" })
				ln.Close()
				changed := *svc.HealthCheck
				changed.Interval = 3 * time.Second
				svc.HealthCheck = &changed
				b.Update(testConfig(svc))
				if w := weight(); w != "3" {
					t.Errorf("weight %s right after the check changed, want 3 (its state carried over)", w)
				}
				waitFor(t, "the changed check's first probe", 5*time.Second, probed)
			}
			b.Trigger()
			waitFor(t, "weight "+tt.wantWeight, 5*time.Second, func() bool { return weight() == tt.wantWeight })
			// A few more reconciles: the weight stays.
			for range 3 {
				b.Trigger()
				time.Sleep(20 * time.Millisecond)
			}
			if w := weight(); w != tt.wantWeight {
				t.Errorf("weight %s, want %s", w, tt.wantWeight)
			}
			if got := testutil.ToFloat64(b.m.up.WithLabelValues("api", "api", addr.String())); got != tt.wantUp {
				t.Errorf("vipvs_real_server_up = %v, want %v", got, tt.wantUp)
			}
			st := b.Status()
			if len(st.RealServers) != 1 || st.RealServers[0].Healthy != (tt.wantUp == 1) {
				t.Errorf("status real servers %+v, want healthy %v", st.RealServers, tt.wantUp == 1)
			}
		})
	}
}
