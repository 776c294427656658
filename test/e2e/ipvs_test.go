package e2e

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vipvs/vipvs/agent/status"
	v1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
	"github.com/vishvananda/netlink"
)

// TestNoIPVSDegraded runs agents with virtual services on this host, whose
// kernel has no IPVS (the VM tests in test/ipvse2e have it): each agent
// says in its status that it cannot balance and why, and the VIP still
// moves when the master fails. The routers name no interface: the agents
// take the one whose subnet holds the VIP.
func TestNoIPVSDegraded(t *testing.T) {
	if _, err := netlink.GenlFamilyGet("IPVS"); err == nil {
		t.Skip("this kernel has IPVS: the degraded mode cannot be seen here")
	}
	vip := vip4
	c := setup(t, agentlab.Router{
		Name: "api", VRID: 51, Unicast: true, Priorities: []int{150, 100, 50},
		VIPs: []netip.Prefix{vip}, PickInterface: true,
		Services: []v1alpha1.VirtualService{{
			Name: "web", Port: servicePort,
			RealServers: []v1alpha1.RealServer{{Address: "192.0.2.11"}, {Address: "192.0.2.12"}, {Address: "192.0.2.13"}},
		}},
	})
	must(t, c.Start())
	n1, n2 := c.Agents[0], c.Agents[1]
	must(t, c.WaitMaster("api", n1, vip.Addr(), 10*time.Second))

	for _, a := range c.Agents {
		var ip *status.IPVS
		must(t, lab.WaitFor(5*time.Second, a.Node.Name+" to report IPVS", func() (bool, error) {
			rep, err := a.Status()
			if err != nil {
				return false, nil
			}
			ip = rep.IPVS
			return ip != nil && ip.State != "", nil
		}))
		if ip.State != status.IPVSUnavailable || !strings.Contains(ip.Reason, "the kernel has no IPVS") {
			t.Errorf("%s: IPVS status = %+v, want unavailable because the kernel has no IPVS", a.Node.Name, ip)
		}
		if len(ip.RealServers) != 3 {
			t.Errorf("%s: %d real servers in the status, want 3", a.Node.Name, len(ip.RealServers))
		}
		r, err := a.RouterStatus("api")
		must(t, err)
		if r.Interface != a.Node.IfName {
			t.Errorf("%s: router interface = %q, want %q (the one whose subnet holds %s)", a.Node.Name, r.Interface, a.Node.IfName, vip)
		}
		log, err := os.ReadFile(a.Proc.LogPath)
		must(t, err)
		if !strings.Contains(string(log), "IPVS is unavailable") {
			t.Errorf("%s: the log does not say that IPVS is unavailable:\n%s", a.Node.Name, log)
		}
	}

	// The VIP still moves.
	must(t, n1.Node.LinkDown())
	must(t, lab.WaitFor(10*time.Second, "n2 to become master", func() (bool, error) {
		r, err := n2.RouterStatus("api")
		return err == nil && r.IsMaster(), nil
	}))
	client := c.Lab.Client(1)
	p, err := client.Probe(netip.AddrPortFrom(vip.Addr(), servicePort), 5*time.Millisecond, 200*time.Millisecond)
	must(t, err)
	defer p.Stop()
	must(t, lab.WaitFor(5*time.Second, "the client to be served by n2", func() (bool, error) {
		return p.Snapshot().Servers()[n2.Node.Name] > 0, nil
	}))
}

// TestVIPInNoSubnet: a router whose VIP is in no subnet of the node (and
// which names no interface) cannot start; the agent says why in its status
// and is not ready, and runs its other routers.
func TestVIPInNoSubnet(t *testing.T) {
	far := netip.MustParsePrefix("203.0.113.10/24")
	c := setup(t,
		agentlab.Router{Name: "api", VRID: 51, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip4}, PickInterface: true},
		agentlab.Router{Name: "far", VRID: 52, VIPs: []netip.Prefix{far}, PickInterface: true},
	)
	must(t, c.Start())
	must(t, c.WaitMaster("api", c.Agents[0], vip4.Addr(), 10*time.Second))
	for _, a := range c.Agents {
		rep, err := a.Status()
		must(t, err)
		if want := "router far: no interface has an address in the subnet of VIP 203.0.113.10"; !strings.Contains(rep.ConfigError, want) {
			t.Errorf("%s: configError = %q, want it to contain %q", a.Node.Name, rep.ConfigError, want)
		}
		if _, err := a.RouterStatus("far"); err == nil {
			t.Errorf("%s: router far runs, want it not started", a.Node.Name)
		}
	}
}
