package config

import (
	"net/netip"
	"testing"
	"time"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// A router in mode bgp is converted with its VIPs held on lo (not the
// top-level interface), no VRRP settings, and the bgp section typed with its
// defaults.
func TestParseModeBGP(t *testing.T) {
	c, err := Parse([]byte(`apiVersion: agent.vipvs.io/v1alpha1
kind: AgentConfig
interface: eth0
checks:
- name: api
  tcp: {address: "127.0.0.1:6443"}
bgp:
  localASN: 65001
  routerID: 192.0.2.11
  peers:
  - address: 192.0.2.1
    asn: 65000
    sourceAddress: 192.0.2.11
    passwordFile: /etc/vipvs/bgp-password
    bfd: true
  - address: 2001:db8::1
    asn: 65000
    holdTime: 9s
virtualRouters:
- name: vrrp
  vrid: 1
  vips: [192.0.2.100]
- name: ingress
  mode: bgp
  vips: [203.0.113.10]
  trackChecks: [{check: api}]
- name: ingress6
  mode: bgp
  interface: dummy0
  vips: [2001:db8:ffff::10]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routers) != 3 {
		t.Fatalf("%d routers, want 3", len(c.Routers))
	}
	v, b, b6 := c.Routers[0], c.Routers[1], c.Routers[2]
	if v.Mode != ModeVRRP || v.Interface != "eth0" || v.VRID != 1 {
		t.Errorf("vrrp router = %+v", v)
	}
	if b.Mode != ModeBGP || b.Interface != DefaultBGPInterface || b.VRID != 0 || b.Priority != 0 || b.IPv6 ||
		len(b.VIPs) != 1 || b.VIPs[0] != netip.MustParsePrefix("203.0.113.10/32") || len(b.TrackChecks) != 1 {
		t.Errorf("bgp router = %+v, want mode bgp on lo, no VRRP settings", b)
	}
	if b6.Mode != ModeBGP || b6.Interface != "dummy0" || !b6.IPv6 {
		t.Errorf("bgp IPv6 router = %+v", b6)
	}
	if got := c.BGPRouters(); len(got) != 2 || got[0].Name != "ingress" {
		t.Errorf("BGPRouters() = %v", got)
	}
	if got := c.VRRPRouters(); len(got) != 1 || got[0].Name != "vrrp" {
		t.Errorf("VRRPRouters() = %v", got)
	}
	g := c.BGP
	if g == nil || g.LocalASN != 65001 || g.RouterID != netip.MustParseAddr("192.0.2.11") || len(g.Peers) != 2 ||
		g.GracefulShutdownWait != 2*time.Second || g.BFD != (BFDProfile{MinTx: 300 * time.Millisecond, MinRx: 300 * time.Millisecond, Multiplier: 3}) {
		t.Fatalf("BGP = %+v", g)
	}
	p := g.Peers[0]
	if p.Address != netip.MustParseAddr("192.0.2.1") || p.ASN != 65000 || p.Port != 179 || p.SourceAddress != netip.MustParseAddr("192.0.2.11") ||
		p.PasswordFile != "/etc/vipvs/bgp-password" || !p.BFD || p.HoldTime != 90*time.Second || p.KeepaliveTime != 30*time.Second || p.ConnectRetry != 5*time.Second {
		t.Errorf("peers[0] = %+v", p)
	}
	if p6 := g.Peers[1]; p6.HoldTime != 9*time.Second || p6.KeepaliveTime != 3*time.Second || p6.BFD {
		t.Errorf("peers[1] = %+v", p6)
	}
	if c.IPVS.Sync.SyncID != 0 {
		t.Errorf("connection sync follows a bgp router: %+v", c.IPVS.Sync)
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{ModeVRRP: "vrrp", ModeBGP: "bgp", Mode(7): "Mode(7)"} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(m), got, want)
		}
	}
}

// The services of a router in mode bgp are marked for consistent hashing
// (the balancer programs them with mh and sloppy TCP); those of a VRRP
// router are not.
func TestServicesConsistentHashing(t *testing.T) {
	for _, mode := range []agentv1alpha1.AnnouncementMode{"", agentv1alpha1.ModeVRRP, agentv1alpha1.ModeBGP} {
		vr := &agentv1alpha1.VirtualRouter{Name: "r", Mode: mode, VirtualServices: []agentv1alpha1.VirtualService{{
			Name: "s", Port: 80, Scheduler: "mh", RealServers: []agentv1alpha1.RealServer{{Address: "192.0.2.21"}},
		}}}
		svcs, err := servicesFromV1alpha1(vr)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := svcs[0].ConsistentHashing, mode == agentv1alpha1.ModeBGP; got != want {
			t.Errorf("mode %q: ConsistentHashing = %v, want %v", mode, got, want)
		}
	}
}
