package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/agent/transport"
	"github.com/vipvs/vipvs/agent/vrrp/packet"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// TestConflictsDetected: adverts for our VRID from a router that disagrees
// (another VIP list: another cluster on the L2; a lower-priority router that
// insists on being master; another version) are detected and shown in status,
// and the VIP does not move.
func TestConflictsDetected(t *testing.T) {
	vip := vip4
	c := setup(t, agentlab.Router{
		Name: "api", VRID: 59, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip},
	})
	must(t, c.Start())
	n1 := c.Agents[0]
	must(t, c.WaitMaster("api", n1, vip.Addr(), 10*time.Second))

	client := c.Lab.Client(1)
	hub := transport.NewHub(logr.Discard())
	defer hub.Close()
	var conn *transport.Sub
	must(t, client.Do(func() error {
		var err error
		conn, err = hub.Subscribe(transport.Options{Interface: client.IfName, Multicast: true}, 59, func(transport.Packet) {})
		return err
	}))
	group := transport.MulticastGroup(false)
	other := netip.MustParseAddr("192.0.2.200")
	adverts := []packet.Advert{
		// Another cluster's router with our VRID and priority 254.
		{Version: 3, VRID: 59, Priority: 254, Interval: time.Second, Addrs: []netip.Addr{other}},
		// A stray master with our VIP and a lower priority that never yields.
		{Version: 3, VRID: 59, Priority: 20, Interval: time.Second, Addrs: []netip.Addr{vip.Addr()}},
		// A VRRPv2 router with our VRID.
		{Version: 2, VRID: 59, Priority: 200, Interval: time.Second, Addrs: []netip.Addr{vip.Addr()}},
	}
	want := map[string]bool{"address-mismatch": true, "second-master": true, "version-mismatch": true}
	var rep status.Router
	err := lab.WaitFor(10*time.Second, "n1 to report the three conflicts", func() (bool, error) {
		for _, adv := range adverts {
			b, err := adv.Marshal(conn.Source(), group, packet.ChecksumPseudoHeader)
			if err != nil {
				return false, err
			}
			if err := conn.Write(b, group); err != nil {
				return false, err
			}
		}
		var err error
		rep, err = n1.RouterStatus("api")
		if err != nil {
			return false, nil
		}
		seen := map[string]bool{}
		for _, c := range rep.Conflicts {
			seen[c.Kind] = true
		}
		return len(seen) == len(want) && seen["address-mismatch"] && seen["second-master"] && seen["version-mismatch"], nil
	})
	for _, cf := range rep.Conflicts {
		t.Logf("conflict: %s from %s: %s (%d)", cf.Kind, cf.Peer, cf.Detail, cf.Count)
	}
	must(t, err)
	for _, cf := range rep.Conflicts {
		if cf.Peer != client.IPv4.String() {
			t.Errorf("conflict %s names peer %s, want the client %s", cf.Kind, cf.Peer, client.IPv4)
		}
	}
	if rep.Transitions != 2 || !rep.IsMaster() {
		t.Errorf("n1 is %s after %d transitions, want MASTER after 2: conflicts must not move the VIP", rep.State, rep.Transitions)
	}
	must(t, c.WaitMaster("api", n1, vip.Addr(), time.Second))
}
