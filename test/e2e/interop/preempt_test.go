package interop

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
)

// noPreemptWindow is how long a higher-priority backup with preemption off
// is watched: more than two Master_Down_Intervals (3.41 s at priority 150).
const noPreemptWindow = 8 * time.Second

// TestNoPreempt starts the higher-priority side, with preemption off, after
// the lower-priority side has become master: it must stay backup.
// Preemption on (the default) is TestTakeover's and TestGracefulHandover's
// second half, where the restarted higher-priority side takes the VIP back.
func TestNoPreempt(t *testing.T) {
	rows := []struct {
		name string
		// keepalivedLate: keepalived (priority 150, nopreempt) starts after
		// vipvs (100) is master; otherwise vipvs on n1 (150, preempt false)
		// starts after keepalived (100) is master.
		keepalivedLate bool
	}{
		{name: "keepalived-nopreempt", keepalivedLate: true},
		{name: "vipvs-preempt-false"},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			for _, tc := range rows {
				t.Run(tc.name, func(t *testing.T) {
					r := m.router(51, 150, 100, 50)
					var kmod func(*agentlab.KeepalivedInstance)
					master, late := keepalivedNode, vipvsNode
					if tc.keepalivedLate {
						r.Priorities = []int{100, 150, 50}
						kmod = func(k *agentlab.KeepalivedInstance) { k.NoPreempt = true }
						master, late = vipvsNode, keepalivedNode
					} else {
						r.NoPreempt = true
					}
					e := newEnv(t, r, kmod)
					if tc.keepalivedLate {
						must(t, e.vipvs(vipvsNode).Start())
					} else {
						must(t, e.k.Start())
					}
					must(t, e.vipvs(otherNode).Start())
					e.waitSettled(15*time.Second, master)

					// The late side starts and becomes backup.
					if tc.keepalivedLate {
						must(t, e.k.Start())
					} else {
						must(t, e.vipvs(vipvsNode).Start())
					}
					e.waitSettled(10*time.Second, master)
					e.holdSteady(noPreemptWindow, master)
					if tc.keepalivedLate {
						if got, want := e.k.States(routerName), []string{"BACKUP"}; !slices.Equal(got, want) {
							t.Errorf("keepalived with nopreempt went through %v, want %v", got, want)
						}
					} else {
						st, err := e.vipvs(late).RouterStatus(routerName)
						must(t, err)
						if st.State != "BACKUP" || st.Transitions != 1 {
							t.Errorf("vipvs with preempt false is %s after %d transitions, want BACKUP after 1", st.State, st.Transitions)
						}
					}
				})
			}
		})
	}
}

// holdSteady watches the router for d: master must stay the only master,
// followed by every backup, and the only holder of the VIP, at every check
// (every 100 ms). The window is a fixed observation time, not a wait.
func (e *env) holdSteady(d time.Duration, master int) {
	e.t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok, why := e.settled(master); !ok {
			e.t.Fatalf("%v into a %v steady-state window: %s", d-time.Until(deadline).Round(time.Millisecond), d, why)
		}
		<-tick.C
	}
}

// vipvsCounters are the counters of a vipvs router that must not move in
// steady state.
type vipvsCounters struct {
	State       string
	Transitions uint64
	Dropped     uint64
	Drops       string
}

func (e *env) vipvsCounters(i int) (vipvsCounters, uint64) {
	e.t.Helper()
	r, err := e.vipvs(i).RouterStatus(routerName)
	must(e.t, err)
	return vipvsCounters{State: r.State, Transitions: r.Transitions, Dropped: r.AdvertsDropped, Drops: fmt.Sprint(r.Drops)}, r.AdvertsRecv
}
