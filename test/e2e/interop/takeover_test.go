package interop

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// fault is how a master is failed (and later brought back).
type fault string

const (
	// linkDown downs the master node's eth0; LinkUp brings it back, and the
	// two masters meet.
	linkDown fault = "link-down"
	// sigkill kills the master's process (its process group, so keepalived's
	// VRRP child too): a crash, the VIP stays behind on the node. The
	// process is started again.
	sigkill fault = "SIGKILL"
	// sigterm stops the master gracefully: it sends priority 0. The process
	// is started again.
	sigterm fault = "SIGTERM"
)

// takeover is one row of the takeover tests: who is master, how it fails.
type takeover struct {
	name string
	// keepalivedMaster: keepalived on n2 has priority 150 and vipvs on n1
	// 100; otherwise n1 has 150 and keepalived 100. n3 (vipvs) has 50.
	keepalivedMaster bool
	fault            fault
	// zeroLoss asserts that the client sees no failed connection across
	// the takeover.
	zeroLoss bool
}

// skewBound bounds the takeover after a priority-0 advert: the skew time at
// priority 100 is 0.61 s, Master_Down_Interval would be 3.61 s.
const skewBound = 2500 * time.Millisecond

// TestTakeover fails the master of a mixed router and checks that the other
// implementation takes over (it becomes master, the VIP moves to its node,
// the lowest-priority vipvs node follows it and the client reaches it), and
// that the failed master preempts again when it comes back:
//
//   - vipvs master (n1), its link goes down or it is SIGKILLed: keepalived
//     takes over after Master_Down_Interval;
//   - keepalived master (n2) is SIGKILLed: vipvs takes over after
//     Master_Down_Interval.
//
// The graceful stops (SIGTERM) are TestGracefulHandover.
func TestTakeover(t *testing.T) {
	rows := []takeover{
		{name: "vipvs-master/link-down", fault: linkDown},
		{name: "vipvs-master/SIGKILL", fault: sigkill},
		{name: "keepalived-master/SIGKILL", keepalivedMaster: true, fault: sigkill},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			for _, tc := range rows {
				t.Run(tc.name, func(t *testing.T) { runTakeover(t, m, tc) })
			}
		})
	}
}

// TestGracefulHandover stops the master of a mixed router with SIGTERM:
//
//   - vipvs master: it sends priority 0 and keeps the VIP until keepalived
//     has announced itself master, so the client (a connection every 5 ms)
//     sees no failed connection;
//   - keepalived master: it sends priority 0 and releases the VIP at once,
//     so the client may see failures until vipvs has taken over (after its
//     skew time): their number is reported, not asserted.
//
// In both directions the new master must take over after the skew time
// (0.61 s), not after Master_Down_Interval, and the stopped side preempts
// again when it is started.
func TestGracefulHandover(t *testing.T) {
	rows := []takeover{
		{name: "vipvs-to-keepalived", fault: sigterm, zeroLoss: true},
		{name: "keepalived-to-vipvs", keepalivedMaster: true, fault: sigterm},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			for _, tc := range rows {
				t.Run(tc.name, func(t *testing.T) { runTakeover(t, m, tc) })
			}
		})
	}
}

// runTakeover runs one takeover row in mode m.
func runTakeover(t *testing.T, m mode, tc takeover) {
	prios := []int{150, 100, 50}
	master, heir := vipvsNode, keepalivedNode
	if tc.keepalivedMaster {
		prios = []int{100, 150, 50}
		master, heir = keepalivedNode, vipvsNode
	}
	e := newEnv(t, m.router(51, prios...), nil)
	e.startAll()
	// Startup: Master_Down_Interval at priority 150 is 3.41 s.
	e.waitSettled(15*time.Second, master)
	p := e.probe()
	e.waitServedBy(p, master, time.Time{}, 5*time.Second)

	start := time.Now()
	e.fail(master, tc.fault)
	took := e.waitRouterMaster(10*time.Second, heir, start)
	// The failed node is left out: after a link down it still believes it
	// is master, after SIGKILL its VIP stays behind.
	e.waitSettled(10*time.Second, heir, master)
	e.waitServedBy(p, heir, start, 10*time.Second)
	r := p.Snapshot().Since(start)
	t.Logf("%s of %s master: n%d master after %v; client: %d failed of %d probes, longest gap %v",
		tc.fault, name(master), heir, took.Round(time.Millisecond), r.Failed(), len(r.Attempts), r.LongestGap().Round(time.Millisecond))
	if tc.fault == sigterm && took > skewBound {
		t.Errorf("n%d took over %v after SIGTERM of the master, want about the skew time (0.61 s): priority 0 not honoured?", heir, took)
	}
	if losses, straddles := r.HandoverLosses(); tc.zeroLoss && (losses != 0 || straddles > 1) {
		t.Errorf("%d of %d probes lost and %d reset across a graceful handover from %s, want 0 lost and at most one reset (a handshake straddling the ARP update)", losses, len(r.Attempts), straddles, name(master))
	}
	if tc.fault == sigterm {
		e.checkCleanExit(master)
	}

	// The failed master comes back and preempts.
	back := time.Now()
	e.recover(master, tc.fault)
	e.waitSettled(15*time.Second, master)
	e.waitServedBy(p, master, back, 10*time.Second)
	r = p.Snapshot().Since(back)
	t.Logf("%s back: master again after %v; client: %d failed of %d probes, longest gap %v",
		name(master), time.Since(back).Round(time.Millisecond), r.Failed(), len(r.Attempts), r.LongestGap().Round(time.Millisecond))
}

// name says which implementation runs on node i.
func name(i int) string {
	if i == keepalivedNode {
		return "keepalived"
	}
	return fmt.Sprintf("vipvs (n%d)", i)
}

// fail injects f on node i.
func (e *env) fail(i int, f fault) {
	e.t.Helper()
	switch {
	case f == linkDown:
		must(e.t, e.lab.Node(i).LinkDown())
	case i == keepalivedNode && f == sigkill:
		must(e.t, e.k.Proc.Kill())
	case i == keepalivedNode && f == sigterm:
		must(e.t, e.k.Proc.Signal(syscall.SIGTERM))
	case f == sigkill:
		must(e.t, e.vipvs(i).Proc.Kill())
	case f == sigterm:
		must(e.t, e.vipvs(i).Signal(syscall.SIGTERM))
	default:
		e.t.Fatalf("unknown fault %q", f)
	}
}

// checkCleanExit waits for node i's process to exit after SIGTERM and
// checks that it exited with status 0.
func (e *env) checkCleanExit(i int) {
	e.t.Helper()
	proc := e.k.Proc
	if i != keepalivedNode {
		proc = e.vipvs(i).Proc
	}
	st, err := proc.Wait(10 * time.Second)
	must(e.t, err)
	if st.ExitCode() != 0 {
		e.t.Errorf("%s exited with %v after SIGTERM, want status 0", name(i), st)
	}
}

// recover undoes f on node i: the link comes up, or the process is started
// again.
func (e *env) recover(i int, f fault) {
	e.t.Helper()
	if f == linkDown {
		must(e.t, e.lab.Node(i).LinkUp())
		return
	}
	if i == keepalivedNode {
		_, err := e.k.Proc.Wait(10 * time.Second)
		must(e.t, err)
		must(e.t, e.k.Start())
		return
	}
	a := e.vipvs(i)
	_, err := a.Proc.Wait(10 * time.Second)
	must(e.t, err)
	must(e.t, a.Start())
}
