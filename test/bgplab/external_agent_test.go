package bgplab

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipvs/vipvs/api/agent/v1alpha1"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/test/lab"
)

// extAgentConfig is the agent config of the external-speaker node: one bgp
// router for the VIP tracking a check that fails while failFile exists,
// and bgp.externalSpeaker writing table extTable with protocol
// extProtocol.
func extAgentConfig(name, socket, failFile string, wait time.Duration) *v1alpha1.AgentConfig {
	dur := func(d time.Duration) *v1alpha1.Duration { return &v1alpha1.Duration{Duration: d} }
	i32 := func(v int32) *int32 { return &v }
	listen := ""
	return &v1alpha1.AgentConfig{
		APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.Kind, NodeName: name,
		Status: &v1alpha1.Status{ListenAddress: &listen, SocketPath: &socket},
		Checks: []v1alpha1.Check{{
			Name: "service", Exec: &v1alpha1.ExecCheck{Command: []string{"/bin/sh", "-c", "test ! -e " + failFile}},
			Interval: dur(200 * time.Millisecond), Timeout: dur(200 * time.Millisecond), Rise: i32(1), Fall: i32(1),
		}},
		BGP: &v1alpha1.BGP{
			GracefulShutdownWait: dur(wait),
			ExternalSpeaker:      &v1alpha1.ExternalSpeaker{Table: extTable, Protocol: i32(extProtocol)},
		},
		VirtualRouters: []v1alpha1.VirtualRouter{{
			Name: "vip-4", Mode: v1alpha1.ModeBGP, VIPs: []string{vip.String()},
			TrackChecks: []v1alpha1.TrackCheck{{Check: "service"}},
		}},
	}
}

// ourRoutes lists the routes of protocol extProtocol in table tbl of the
// node.
func (e *extLab) ourRoutes(tbl int) ([]netlink.Route, error) {
	return e.node.Netlink().RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: tbl, Protocol: extProtocol},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
}

// TestExternalSpeakerAgent runs the real vipvs-agent on the node with a bgp
// router and bgp.externalSpeaker, the node's FRR importing and
// redistributing the agent's table to the upstream router c1: the client
// reaches the VIP through c1; the tracked check failing withdraws the route
// from c1 and passing brings it back; SIGTERM removes the routes and the
// agent exits 0. The agent holds the VIP as a local route (no address on
// lo), which is what lets FRR 8.4 announce it (TestExternalSpeaker's
// VIPAddressShadowsTheTableRoute).
func TestExternalSpeakerAgent(t *testing.T) {
	lab.RequireRoot(t)
	if agentBin == "" {
		t.Skip("no vipvs-agent binary")
	}
	e := newExtLab(t)
	ctx := context.Background()
	nodeIP := e.node.IPv4
	vipHost := netip.PrefixFrom(vip, 32)

	dir := t.TempDir()
	socket, failFile := filepath.Join(dir, "n1.sock"), filepath.Join(dir, "n1.fail")
	const wait = time.Second
	b, err := v1alpha1.Marshal(extAgentConfig(e.node.Name, socket, failFile, wait))
	extMust(t, err)
	path := filepath.Join(dir, "n1.yaml")
	extMust(t, os.WriteFile(path, b, 0o644))
	agent, err := e.node.Start("vipvs-agent", []string{agentBin, "--config", path}, nil, "")
	extMust(t, err)
	logs := func() string { return agent.LogTail(40) }

	start := time.Now()
	took := e.waitUpstream(t, vip, start, 60*time.Second, nodeIP)
	t.Logf("agent start -> VIP routed to the node by c1: %v (includes the BGP session's establishment)", took.Round(time.Millisecond))

	t.Run("Advertised", func(t *testing.T) {
		name, err := e.dial(vip)
		if err != nil || name != e.node.Name {
			t.Fatalf("client -> %s:%d through c1 = %q, %v; want an answer from %s", vip, servicePort, name, err, e.node.Name)
		}
		// The node: the route in table 100, the VIP a local route of the
		// agent's protocol in the local table, and no address on lo.
		rs, err := e.ourRoutes(extTable)
		extMust(t, err)
		if len(rs) != 1 || rs[0].Dst.String() != vipHost.String() {
			t.Errorf("table %d, protocol %d: %v; want %s", extTable, extProtocol, rs, vipHost)
		}
		rs, err = e.ourRoutes(unix.RT_TABLE_LOCAL)
		extMust(t, err)
		if len(rs) != 1 || rs[0].Dst.String() != vipHost.String() || rs[0].Type != unix.RTN_LOCAL {
			t.Errorf("local table, protocol %d: %v; want the local route of %s", extProtocol, rs, vipHost)
		}
		if on, err := onLoopback(e.node, vip); err != nil || on {
			t.Errorf("the VIP is an address on lo (%v, %v): zebra's connected route would shadow the table's", on, err)
		}
		// The node's FRR selected the imported route.
		frs, err := e.speakerRoute(ctx, vipHost)
		extMust(t, err)
		if !slices.ContainsFunc(frs, func(r Route) bool { return r.Protocol == "table" && r.Selected }) {
			t.Errorf("node FRR: %s = %+v, want the imported table route selected", vipHost, frs)
		}
		st, err := AgentStatus(socket)
		extMust(t, err)
		if st.BGP == nil || st.BGP.Speaker != statusv1.SpeakerExternal || st.BGP.RouteTable != extTable ||
			!slices.Equal(st.BGP.Advertised, []string{vipHost.String()}) || st.BGP.LastError != "" {
			t.Errorf("agent status bgp = %+v, want external, table %d, advertising %s, no error", st.BGP, extTable, vipHost)
		}
		if len(st.Routers) != 1 || st.Routers[0].State != statusv1.StateAdvertised {
			t.Errorf("agent status routers = %+v, want vip-4 ADVERTISED", st.Routers)
		}
	})

	t.Run("NoARP", func(t *testing.T) {
		// Linux answers ARP for a target its local table routes as local,
		// address or not: the agent's ARP guard still applies. A host on
		// the segment told that the VIP is on-link cannot resolve it.
		eth, err := e.client.Netlink().LinkByName(lab.IfName)
		extMust(t, err)
		r := &netlink.Route{LinkIndex: eth.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: extIPNet(vipHost)}
		extMust(t, e.client.Netlink().RouteAdd(r))
		name, derr := e.dial(vip)
		extMust(t, e.client.Netlink().RouteDel(r))
		if derr == nil {
			t.Errorf("the node answered ARP for the VIP held as a local route: the client reached %q on-link", name)
		}
		if mac, ok, err := e.client.Neighbor(vip); err == nil && ok {
			t.Errorf("the client resolved the VIP to %v", mac)
		}
	})

	t.Run("CheckFailsAndPasses", func(t *testing.T) {
		start := time.Now()
		extMust(t, os.WriteFile(failFile, nil, 0o644))
		gone := e.waitUpstream(t, vip, start, 30*time.Second)
		if name, err := e.dial(vip); err == nil {
			t.Errorf("client reached the withdrawn VIP (answer %q)", name)
		}
		// After the drain wait the local route goes too.
		err := lab.WaitFor(10*time.Second, "the local route removed after the drain wait", func() (bool, error) {
			rs, err := e.ourRoutes(unix.RT_TABLE_LOCAL)
			return len(rs) == 0, err
		})
		extMust(t, err)
		start = time.Now()
		extMust(t, os.Remove(failFile))
		back := e.waitUpstream(t, vip, start, 30*time.Second, nodeIP)
		name, err := e.dial(vip)
		if err != nil || name != e.node.Name {
			t.Errorf("client -> VIP after the check passed again = %q, %v", name, err)
		}
		t.Logf("check fails -> route gone from c1's FIB: %v; check passes -> route back: %v (check interval 200ms)",
			gone.Round(time.Millisecond), back.Round(time.Millisecond))
	})

	t.Run("SIGTERM", func(t *testing.T) {
		start := time.Now()
		extMust(t, agent.Signal(syscall.SIGTERM))
		gone := e.waitUpstream(t, vip, start, 30*time.Second)
		st, err := agent.Wait(30 * time.Second)
		extMust(t, err)
		exited := time.Since(start)
		if st.ExitCode() != 0 {
			t.Errorf("agent exit code %d, want 0:\n%s", st.ExitCode(), logs())
		}
		if gone > exited {
			t.Errorf("the route left c1 %v after SIGTERM, after the agent exited (%v)", gone, exited)
		}
		for _, tbl := range []int{extTable, unix.RT_TABLE_LOCAL} {
			rs, err := e.ourRoutes(tbl)
			extMust(t, err)
			if len(rs) != 0 {
				t.Errorf("after the stop, table %d still has routes of protocol %d: %v", tbl, extProtocol, rs)
			}
		}
		t.Logf("SIGTERM -> route gone from c1's FIB: %v; agent exited after %v (gracefulShutdownWait %v)",
			gone.Round(time.Millisecond), exited.Round(time.Millisecond), wait)
	})
	if t.Failed() {
		t.Logf("agent log:\n%s", logs())
	}
}
