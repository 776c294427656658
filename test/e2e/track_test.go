package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// healthServer is an HTTP server in a node's namespace whose /readyz answers
// 200 or 500 as the test says: a stand-in for kube-apiserver.
type healthServer struct {
	ok atomic.Bool
}

func startHealthServer(t *testing.T, h *lab.Host, port int) *healthServer {
	t.Helper()
	hs := &healthServer{}
	hs.ok.Store(true)
	var ln net.Listener
	must(t, h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		return err
	}))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hs.ok.Load() {
			fmt.Fprintln(w, "ok")
			return
		}
		http.Error(w, "etcd not ready", http.StatusInternalServerError)
	}), ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return hs
}

// TestTrackChecks: a failing track check of each kind moves the VIP off n1
// (weight -100: 150 -> 50, below n2's 100; weight 0: FAULT), and its recovery
// brings the VIP back.
func TestTrackChecks(t *testing.T) {
	const interval = 200 * time.Millisecond
	tests := []struct {
		name   string
		weight int32
		// setup returns the check and the functions that fail and heal it.
		setup func(t *testing.T, n *lab.Host, dir string) (v1alpha1.Check, func(), func())
	}{
		{
			name: "http", weight: -100,
			setup: func(t *testing.T, n *lab.Host, _ string) (v1alpha1.Check, func(), func()) {
				hs := startHealthServer(t, n, 6443)
				return v1alpha1.Check{Name: "apiserver", HTTP: &v1alpha1.HTTPCheck{URL: "http://127.0.0.1:6443/readyz"}},
					func() { hs.ok.Store(false) }, func() { hs.ok.Store(true) }
			},
		},
		{
			name: "http weight 0 means fault", weight: 0,
			setup: func(t *testing.T, n *lab.Host, _ string) (v1alpha1.Check, func(), func()) {
				hs := startHealthServer(t, n, 6443)
				return v1alpha1.Check{Name: "apiserver", HTTP: &v1alpha1.HTTPCheck{URL: "http://127.0.0.1:6443/readyz"}},
					func() { hs.ok.Store(false) }, func() { hs.ok.Store(true) }
			},
		},
		{
			name: "tcp", weight: -100,
			setup: func(t *testing.T, n *lab.Host, _ string) (v1alpha1.Check, func(), func()) {
				var stop func()
				serve := func() {
					var err error
					stop, err = n.Serve(9000)
					must(t, err)
				}
				serve()
				t.Cleanup(func() { stop() })
				return v1alpha1.Check{Name: "port", TCP: &v1alpha1.TCPCheck{Address: n.IPv4.String() + ":9000"}},
					func() { stop() }, serve
			},
		},
		{
			name: "exec", weight: -100,
			setup: func(t *testing.T, _ *lab.Host, dir string) (v1alpha1.Check, func(), func()) {
				flag := filepath.Join(dir, "healthy")
				must(t, os.WriteFile(flag, nil, 0o644))
				return v1alpha1.Check{Name: "script", Exec: &v1alpha1.ExecCheck{Command: []string{"/bin/test", "-e", flag}}},
					func() { must(t, os.Remove(flag)) }, func() { must(t, os.WriteFile(flag, nil, 0o644)) }
			},
		},
		{
			name: "interface", weight: -100,
			setup: func(t *testing.T, n *lab.Host, _ string) (v1alpha1.Check, func(), func()) {
				// A second link in n1: a veth pair whose peer the test
				// takes down and up (the tracked end loses carrier).
				nl := n.Netlink()
				veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up1"}
				must(t, nl.LinkAdd(veth))
				peer, err := nl.LinkByName("up1")
				must(t, err)
				must(t, nl.LinkSetUp(veth))
				must(t, nl.LinkSetUp(peer))
				return v1alpha1.Check{Name: "uplink", Interface: &v1alpha1.InterfaceCheck{Name: "up0"}},
					func() { must(t, nl.LinkSetDown(peer)) }, func() { must(t, nl.LinkSetUp(peer)) }
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vip := vip4
			router := agentlab.Router{Name: "api", VRID: 70, Interval: interval, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip}}
			c := setup(t, router)
			n1, n2 := c.Agents[0], c.Agents[1]
			chk, fail, heal := tt.setup(t, n1.Node, t.TempDir())
			chk.Interval = &v1alpha1.Duration{Duration: interval}
			chk.Timeout = &v1alpha1.Duration{Duration: interval}
			one, two := int32(1), int32(2)
			chk.Rise, chk.Fall = &two, &one
			cfg := c.Config(1, router)
			cfg.Checks = []v1alpha1.Check{chk}
			cfg.VirtualRouters[0].TrackChecks = []v1alpha1.TrackCheck{{Check: chk.Name, Weight: tt.weight}}
			must(t, n1.WriteConfig(cfg))
			must(t, c.Start())
			must(t, c.WaitMaster("api", n1, vip.Addr(), 10*time.Second))

			start := time.Now()
			fail()
			must(t, c.WaitMaster("api", n2, vip.Addr(), 10*time.Second))
			r, err := n1.RouterStatus("api")
			must(t, err)
			wantState := "BACKUP"
			if tt.weight == 0 {
				wantState = "FAULT"
			}
			t.Logf("check failed: n2 master after %v; n1 %s at priority %d", time.Since(start), r.State, r.Priority)
			if r.State != wantState {
				t.Errorf("n1 is %s with the check failing, want %s", r.State, wantState)
			}
			if tt.weight < 0 && r.Priority != 50 {
				t.Errorf("n1 priority %d with the check failing, want 150-100 = 50", r.Priority)
			}
			rep, err := n1.Status()
			must(t, err)
			if len(rep.Checks) != 1 || rep.Checks[0].Healthy || rep.Checks[0].LastError == "" {
				t.Errorf("status checks = %+v, want one unhealthy check with its error", rep.Checks)
			}

			start = time.Now()
			heal()
			must(t, c.WaitMaster("api", n1, vip.Addr(), 10*time.Second))
			t.Logf("check healed: n1 master again after %v", time.Since(start))
		})
	}
}

// TestPreemptAfterChecks: a restarted n1 (priority 150) whose track check
// is not healthy yet does not take the VIP back from n2, even though its
// check weight is small; once the check passes, it preempts.
func TestPreemptAfterChecks(t *testing.T) {
	vip := vip4
	router := agentlab.Router{Name: "api", VRID: 71, Interval: 200 * time.Millisecond, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip}}
	c := setup(t, router)
	n1, n2 := c.Agents[0], c.Agents[1]
	hs := startHealthServer(t, n1.Node, 6443)
	hs.ok.Store(false)
	cfg := c.Config(1, router)
	one := int32(1)
	cfg.Checks = []v1alpha1.Check{{Name: "apiserver", HTTP: &v1alpha1.HTTPCheck{URL: "http://127.0.0.1:6443/readyz"},
		Interval: &v1alpha1.Duration{Duration: 200 * time.Millisecond}, Timeout: &v1alpha1.Duration{Duration: 200 * time.Millisecond}, Rise: &one, Fall: &one}}
	// Weight -10 alone would leave n1 at 140, above n2: only
	// preemptAfterChecks keeps it from taking over.
	cfg.VirtualRouters[0].TrackChecks = []v1alpha1.TrackCheck{{Check: "apiserver", Weight: -10}}
	cfg.VirtualRouters[0].PreemptAfterChecks = true
	must(t, n1.WriteConfig(cfg))
	// n2 and n3 first: n2 becomes master.
	must(t, n2.Start())
	must(t, c.Agents[2].Start())
	must(t, c.WaitMaster("api", n2, vip.Addr(), 10*time.Second))
	must(t, n1.Start())
	must(t, lab.WaitFor(10*time.Second, "n1 to run as backup", func() (bool, error) {
		r, err := n1.RouterStatus("api")
		return err == nil && r.State == "BACKUP", nil
	}))
	// Ten Master_Down_Intervals (0.62 s at 200 ms) with the API not ready:
	// n2 keeps the VIP.
	time.Sleep(3 * time.Second)
	must(t, c.WaitMaster("api", n2, vip.Addr(), time.Second))
	hs.ok.Store(true)
	must(t, c.WaitMaster("api", n1, vip.Addr(), 10*time.Second))
}
