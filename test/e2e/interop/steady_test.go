package interop

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// steadyWindow is TestSteadyState's observation time: VIPVS_INTEROP_STEADY
// if set, else 10 s with -short, else 60 s.
func steadyWindow(t *testing.T) time.Duration {
	if s := os.Getenv("VIPVS_INTEROP_STEADY"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("VIPVS_INTEROP_STEADY=%q: want a positive Go duration such as 60s", s)
		}
		return d
	}
	if testing.Short() {
		return 10 * time.Second
	}
	return 60 * time.Second
}

// TestSteadyState watches a settled mixed router for steadyWindow: no
// transition on either side (vipvs's status counts none, keepalived logs no
// new "Entering ... STATE" line), no advert dropped by vipvs, the VIP on
// the master only, and the client (a connection every 5 ms) always served
// by the master. Both rows run in parallel: vipvs master with keepalived
// backup (VRRPv3 multicast), and keepalived master with vipvs backups
// (VRRPv2 unicast with a password), so each side receives the other's
// adverts for the whole window.
func TestSteadyState(t *testing.T) {
	requireInterop(t)
	window := steadyWindow(t)
	rows := []struct {
		name             string
		mode             mode
		keepalivedMaster bool
	}{
		{name: modes[0].name + "/vipvs-master", mode: modes[0]},
		{name: modes[1].name + "/keepalived-master", mode: modes[1], keepalivedMaster: true},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prios := []int{150, 100, 50}
			master, wantK := vipvsNode, []string{"BACKUP"}
			if tc.keepalivedMaster {
				prios = []int{100, 150, 50}
				master, wantK = keepalivedNode, []string{"BACKUP", "MASTER"}
			}
			e := newEnv(t, tc.mode.router(51, prios...), nil)
			e.startAll()
			e.waitSettled(15*time.Second, master)
			p := e.probe()
			e.waitServedBy(p, master, time.Time{}, 5*time.Second)

			start := time.Now()
			before := map[int]vipvsCounters{}
			recv := map[int]uint64{}
			for _, i := range []int{vipvsNode, otherNode} {
				before[i], recv[i] = e.vipvsCounters(i)
			}
			kBefore := e.k.States(routerName)
			e.holdSteady(window, master)
			r := p.Snapshot().Since(start)

			for _, i := range []int{vipvsNode, otherNode} {
				after, n := e.vipvsCounters(i)
				if after != before[i] {
					t.Errorf("vipvs on n%d changed in steady state: %+v -> %+v", i, before[i], after)
				}
				t.Logf("vipvs on n%d: %s, %d transitions, %d adverts received in %v, drops %s", i, after.State, after.Transitions, n-recv[i], window, after.Drops)
				if after.Dropped != 0 {
					t.Errorf("vipvs on n%d dropped %d adverts (%s), want none between vipvs and keepalived", i, after.Dropped, after.Drops)
				}
				if i != master && n-recv[i] < uint64(window/time.Second)/2 {
					t.Errorf("vipvs backup on n%d received %d adverts in %v, want about one a second", i, n-recv[i], window)
				}
			}
			kAfter := e.k.States(routerName)
			t.Logf("keepalived: states %v; client: %s", kAfter, r.Summary())
			if strings.Contains(e.k.Log(), "invalid passwd") {
				t.Errorf("keepalived rejected a password in steady state:\n%s", e.k.Proc.LogTail(40))
			}
			if !slices.Equal(kBefore, wantK) || !slices.Equal(kAfter, wantK) {
				t.Errorf("keepalived entered %v before and %v after the window, want %v", kBefore, kAfter, wantK)
			}
			if f := r.Failed(); f != 0 {
				t.Errorf("%d of %d probes failed in steady state, want 0", f, len(r.Attempts))
			}
			if s := r.Servers(); len(s) != 1 || s[e.lab.Node(master).Name] == 0 {
				t.Errorf("the client was served by %v in steady state, want only %s", s, e.lab.Node(master).Name)
			}
		})
	}
}
