package e2e

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// TestRollingRestart: the agents are restarted one after another, as a
// static-pod upgrade rolls over the masters (SIGTERM, then a new process),
// the master last. The client opening a connection to the VIP every 5 ms
// sees no failure.
func TestRollingRestart(t *testing.T) {
	vip := vip4
	router := agentlab.Router{Name: "api", VRID: 72, Unicast: true, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip}}
	c := setup(t, router)
	must(t, c.Start())
	n1 := c.Agents[0]
	must(t, c.WaitMaster("api", n1, vip.Addr(), 10*time.Second))
	p, err := c.Lab.Client(1).Probe(netip.AddrPortFrom(vip.Addr(), servicePort), 5*time.Millisecond, 200*time.Millisecond)
	must(t, err)
	defer p.Stop()
	start := time.Now()
	for _, i := range []int{2, 1, 0} {
		a := c.Agents[i]
		must(t, a.Signal(syscall.SIGTERM))
		st, err := a.Proc.Wait(15 * time.Second)
		must(t, err)
		if st.ExitCode() != 0 {
			t.Fatalf("%s: agent exited with %v after SIGTERM", a.Node.Name, st)
		}
		must(t, a.Start())
		must(t, lab.WaitFor(10*time.Second, a.Node.Name+" to run again", func() (bool, error) {
			r, err := a.RouterStatus("api")
			return err == nil && (r.State == "BACKUP" || r.State == "MASTER"), nil
		}))
		// n1 comes back with the highest priority and preempts after its
		// Master_Down_Interval; the others settle as backups.
		must(t, c.WaitMaster("api", n1, vip.Addr(), 15*time.Second))
		t.Logf("%s restarted: %s", a.Node.Name, p.Snapshot().Since(start).Summary())
	}
	r := p.Stop().Since(start)
	t.Logf("rolling restart of 3 agents: %s", r.Summary())
	// Each restart moves the VIP twice (away, and back by preemption).
	losses, straddles := r.HandoverLosses()
	if losses != 0 || straddles > 6 {
		t.Errorf("%d probes lost and %d reset across the rolling restart, want 0 lost and at most one reset per hand-over (6)", losses, straddles)
	} else if straddles > 0 {
		t.Logf("%d connections reset whose handshake straddled a client's ARP update (see lab.Result.HandoverLosses)", straddles)
	}
}

// TestLivePeerChange: a new unicast peer list is applied to a running
// router without a restart: no transition, the VIP stays, adverts go on.
func TestLivePeerChange(t *testing.T) {
	vip := vip4
	router := agentlab.Router{Name: "api", VRID: 73, Unicast: true, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip}}
	c := setup(t, router)
	must(t, c.Start())
	n1, n2 := c.Agents[0], c.Agents[1]
	must(t, c.WaitMaster("api", n1, vip.Addr(), 10*time.Second))
	cfg := c.Config(1, router)
	// A fourth node joins the peer list (it does not exist yet).
	cfg.VirtualRouters[0].UnicastPeers = append(cfg.VirtualRouters[0].UnicastPeers, "192.0.2.14")
	before, err := n1.Status()
	must(t, err)
	must(t, n1.WriteConfig(cfg))
	must(t, lab.WaitFor(10*time.Second, "n1 to apply the new peer list", func() (bool, error) {
		rep, err := n1.Status()
		return err == nil && rep.ConfigHash != before.ConfigHash, nil
	}))
	recv0, err := n2.RouterStatus("api")
	must(t, err)
	// Three Master_Down_Intervals: n2 keeps hearing n1, nobody moves.
	time.Sleep(3 * 3700 * time.Millisecond)
	for _, a := range c.Agents {
		r, err := a.RouterStatus("api")
		must(t, err)
		want := uint64(1)
		if a == n1 {
			want = 2
		}
		if r.Transitions != want {
			t.Errorf("%s made %d transitions across the peer change, want %d (no restart)", a.Node.Name, r.Transitions, want)
		}
	}
	recv1, err := n2.RouterStatus("api")
	must(t, err)
	if got := recv1.AdvertsRecv - recv0.AdvertsRecv; got < 9 {
		t.Errorf("n2 received %d adverts in 11 s after n1's peer change, want about 11", got)
	}
	must(t, c.WaitMaster("api", n1, vip.Addr(), time.Second))
}
