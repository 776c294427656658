package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
)

// TestSpread: three VIPs over three nodes, one virtual router each, with the
// priorities rotated so that each VIP prefers a different node (spread mode).
// A failed node's VIP moves to the next node in its rotation and comes back
// when the node returns; the other VIPs do not move.
func TestSpread(t *testing.T) {
	var routers []agentlab.Router
	for i := 0; i < 3; i++ {
		prios := make([]int, 3)
		for n := 0; n < 3; n++ {
			// VIP i prefers node i, then node i+1, then node i+2.
			prios[(i+n)%3] = 150 - 50*n
		}
		routers = append(routers, agentlab.Router{
			Name: fmt.Sprintf("vip%d", i+1), VRID: 60 + i, Priorities: prios,
			VIPs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(101 + i)}), 24)},
		})
	}
	c := setup(t, routers...)
	must(t, c.Start())
	for i, r := range routers {
		must(t, c.WaitMaster(r.Name, c.Agents[i], r.VIPs[0].Addr(), 10*time.Second))
	}

	// n2 fails: vip2 moves to n3 (its second choice); vip1 and vip3 stay.
	n2 := c.Agents[1]
	must(t, n2.Node.LinkDown())
	must(t, c.WaitMaster("vip2", c.Agents[2], routers[1].VIPs[0].Addr(), 10*time.Second))
	must(t, c.WaitMaster("vip1", c.Agents[0], routers[0].VIPs[0].Addr(), time.Second))
	must(t, c.WaitMaster("vip3", c.Agents[2], routers[2].VIPs[0].Addr(), time.Second))

	// n2 returns and takes vip2 back.
	must(t, n2.Node.LinkUp())
	for i, r := range routers {
		must(t, c.WaitMaster(r.Name, c.Agents[i], r.VIPs[0].Addr(), 15*time.Second))
	}
	for _, a := range []*agentlab.Agent{c.Agents[0], c.Agents[2]} {
		for _, name := range []string{"vip1", "vip3"} {
			r, err := a.RouterStatus(name)
			must(t, err)
			if r.Transitions > 2 {
				t.Errorf("%s %s made %d transitions while n2 failed and returned, want at most 2 (it should not move)", a.Node.Name, name, r.Transitions)
			}
		}
	}
}
