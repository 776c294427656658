package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// TestInterfaceRecreated: a node's interface is deleted and created again
// under the same name (a NIC driver reload, a bond re-created by
// NetworkManager): it gets a new index. The node's routers go to FAULT while
// it is gone and come back on the new interface (new socket, multicast
// joined again, VIPs re-added and announced by a master). Done for the
// master and for a backup, in multicast and unicast mode: afterwards the
// VIP is on exactly one node, there is exactly one master, and the client
// reaches the VIP.
func TestInterfaceRecreated(t *testing.T) {
	for _, tc := range []struct {
		name    string
		unicast bool
		vrid    int
	}{
		{name: "multicast", vrid: 81},
		{name: "unicast", unicast: true, vrid: 82},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vip := vip4
			router := agentlab.Router{Name: "api", VRID: tc.vrid, Unicast: tc.unicast, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip}}
			c := setup(t, router)
			must(t, c.Start())
			n1, n2 := c.Agents[0], c.Agents[1]
			must(t, c.WaitMaster("api", n1, vip.Addr(), 10*time.Second))
			p, err := c.Lab.Client(1).Probe(netip.AddrPortFrom(vip.Addr(), servicePort), 5*time.Millisecond, 200*time.Millisecond)
			must(t, err)
			defer p.Stop()

			// The master's interface goes away: n2 takes over.
			start := time.Now()
			before, err := n1.Node.IfIndex()
			must(t, err)
			must(t, n1.Node.DeleteLink())
			must(t, lab.WaitFor(10*time.Second, "n1's router in FAULT", func() (bool, error) {
				r, err := n1.RouterStatus("api")
				return err == nil && r.State == "FAULT", nil
			}))
			must(t, waitOnlyMaster(c, "api", n2, vip.Addr(), 10*time.Second))
			waitServed(t, p, start, 10*time.Second)
			// It comes back with a new index: n1 returns, as a backup first,
			// and preempts n2 (priority 150): one master, one holder.
			must(t, n1.Node.CreateLink())
			after, err := n1.Node.IfIndex()
			must(t, err)
			if after == before {
				t.Fatalf("eth0 has the same index %d after its re-creation; the test needs a new one", after)
			}
			must(t, c.WaitMaster("api", n1, vip.Addr(), 15*time.Second))
			must(t, stayOnlyMaster(c, "api", n1, vip.Addr(), 3*time.Second))
			recreated := time.Now()
			waitServed(t, p, recreated, 10*time.Second)
			t.Logf("master's interface re-created (index %d -> %d): %s", before, after, p.Snapshot().Since(start).Summary())

			// A backup's interface goes away and comes back: the master
			// stays, the backup returns as a backup.
			start = time.Now()
			must(t, n2.Node.DeleteLink())
			must(t, lab.WaitFor(10*time.Second, "n2's router in FAULT", func() (bool, error) {
				r, err := n2.RouterStatus("api")
				return err == nil && r.State == "FAULT", nil
			}))
			must(t, n2.Node.CreateLink())
			must(t, lab.WaitFor(15*time.Second, "n2 back as a backup", func() (bool, error) {
				r, err := n2.RouterStatus("api")
				return err == nil && r.State == "BACKUP", nil
			}))
			must(t, stayOnlyMaster(c, "api", n1, vip.Addr(), 5*time.Second))
			// n2 hears n1 again on its new socket.
			r0, err := n2.RouterStatus("api")
			must(t, err)
			time.Sleep(2500 * time.Millisecond)
			r1, err := n2.RouterStatus("api")
			must(t, err)
			if r1.AdvertsRecv <= r0.AdvertsRecv {
				t.Errorf("n2 received no advert in 2.5 s after its interface came back (%d -> %d)", r0.AdvertsRecv, r1.AdvertsRecv)
			}
			r := p.Stop().Since(start)
			t.Logf("backup's interface re-created: %s", r.Summary())
			if r.Failed() != 0 {
				t.Errorf("%d probes failed while a backup's interface was re-created, want 0", r.Failed())
			}
		})
	}
}

// holders returns the nodes holding vip; a node without eth0 holds nothing.
func holders(c *agentlab.Cluster, vip netip.Addr) []*lab.Host {
	var hs []*lab.Host
	for _, n := range c.Lab.Nodes() {
		if ok, err := n.HasAddr(vip); err == nil && ok {
			hs = append(hs, n)
		}
	}
	return hs
}

// onlyMaster says whether want is the only master of router name and the
// only holder of vip, and if not, what is.
func onlyMaster(c *agentlab.Cluster, name string, want *agentlab.Agent, vip netip.Addr) (bool, string) {
	ms, err := c.Masters(name)
	if err != nil {
		return false, err.Error()
	}
	hs := holders(c, vip)
	ok := len(ms) == 1 && ms[0] == want && len(hs) == 1 && hs[0] == want.Node
	var names []string
	for _, m := range ms {
		names = append(names, m.Node.Name)
	}
	return ok, fmt.Sprintf("masters %v, holders %v", names, hs)
}

func waitOnlyMaster(c *agentlab.Cluster, name string, want *agentlab.Agent, vip netip.Addr, timeout time.Duration) error {
	return lab.WaitFor(timeout, want.Node.Name+" to be the only master and holder", func() (bool, error) {
		ok, _ := onlyMaster(c, name, want, vip)
		return ok, nil
	})
}

// stayOnlyMaster checks that want stays the only master and holder for d.
func stayOnlyMaster(c *agentlab.Cluster, name string, want *agentlab.Agent, vip netip.Addr, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if ok, what := onlyMaster(c, name, want, vip); !ok {
			return fmt.Errorf("%s is not the only master and holder any more: %s", want.Node.Name, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
