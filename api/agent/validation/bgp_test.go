package validation

import (
	"fmt"
	"strings"
	"testing"
	"time"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// bgpBase is base() plus a router in mode bgp and a BGP section.
func bgpBase() *agentv1alpha1.AgentConfig {
	c := base()
	c.VirtualRouters = append(c.VirtualRouters, agentv1alpha1.VirtualRouter{
		Name: "ingress",
		Mode: agentv1alpha1.ModeBGP,
		VIPs: []string{"203.0.113.10", "203.0.113.11/32"},
	})
	c.BGP = &agentv1alpha1.BGP{
		LocalASN: 65001,
		Peers:    []agentv1alpha1.BGPPeer{{Address: "192.0.2.1", ASN: 65000, BFD: true}},
	}
	return c
}

func TestValidateBGPGood(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *agentv1alpha1.AgentConfig)
	}{
		{name: "minimal", modify: func(*agentv1alpha1.AgentConfig) {}},
		{name: "minimal with defaults", modify: agentv1alpha1.SetDefaults},
		{name: "mode vrrp spelled out", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].Mode = agentv1alpha1.ModeVRRP }},
		{name: "bgp section without bgp routers", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters = c.VirtualRouters[:1] }},
		{name: "only bgp routers", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters = c.VirtualRouters[1:] }},
		{name: "IPv6 VIPs and peer", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[1].VIPs = []string{"2001:db8:1::10", "2001:db8:1::11/128"}
			c.BGP.Peers = append(c.BGP.Peers, agentv1alpha1.BGPPeer{Address: "2001:db8::1", ASN: 65000, SourceAddress: "2001:db8::11"})
		}},
		{name: "everything set", modify: func(c *agentv1alpha1.AgentConfig) {
			c.BGP = &agentv1alpha1.BGP{
				LocalASN:   4200000000,
				RouterID:   "192.0.2.11",
				ListenPort: 1179,
				Peers: []agentv1alpha1.BGPPeer{
					{Address: "192.0.2.1", ASN: 4200000000, Port: 179, SourceAddress: "192.0.2.11", PasswordFile: "/etc/vipvs/bgp/tor1", HoldTime: dur(9 * time.Second), KeepaliveTime: dur(3 * time.Second), ConnectRetry: dur(2 * time.Second), BFD: true},
					{Address: "198.51.100.1", ASN: 64512, EBGPMultihop: 4, HoldTime: dur(65535 * time.Second)},
				},
				BFDProfile:           &agentv1alpha1.BFDProfile{MinTxInterval: dur(10 * time.Millisecond), MinRxInterval: dur(time.Minute), Multiplier: ptr[int32](255)},
				GracefulShutdownWait: dur(0),
			}
		}},
		{name: "services with mh, and with the scheduler defaulted", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[1].VirtualServices = []agentv1alpha1.VirtualService{
				{Name: "https", Port: 443, Scheduler: "mh", Forwarding: agentv1alpha1.ForwardingDR, RealServers: []agentv1alpha1.RealServer{{Address: "203.0.113.21"}}},
				{Name: "http", Port: 80, Forwarding: agentv1alpha1.ForwardingTunnel, RealServers: []agentv1alpha1.RealServer{{Address: "203.0.113.21"}}},
			}
			agentv1alpha1.SetDefaults(c)
			if got := c.VirtualRouters[1].VirtualServices[1].Scheduler; got != "mh" {
				t.Errorf("defaulted scheduler of a bgp router's service = %q, want mh", got)
			}
		}},
		{name: "16 peers", modify: func(c *agentv1alpha1.AgentConfig) {
			c.BGP.Peers = nil
			for i := range 16 {
				c.BGP.Peers = append(c.BGP.Peers, agentv1alpha1.BGPPeer{Address: fmt.Sprintf("192.0.2.%d", 20+i), ASN: 65000})
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := bgpBase()
			tt.modify(c)
			if errs := ValidateAgentConfig(c); len(errs) != 0 {
				t.Errorf("ValidateAgentConfig() = %v, want no errors", errs)
			}
		})
	}
}

func TestValidateBGPBad(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *agentv1alpha1.AgentConfig)
		want   []string // substrings, one per expected error, in order
	}{
		{name: "unknown mode", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[1].Mode = "anycast" },
			want: []string{`virtualRouters[1].mode: Unsupported value: "anycast": supported values: "vrrp", "bgp"`}},
		{name: "another scheduler in mode bgp", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[1].VirtualServices = []agentv1alpha1.VirtualService{
				{Name: "https", Port: 443, Scheduler: "rr", Forwarding: agentv1alpha1.ForwardingDR, RealServers: []agentv1alpha1.RealServer{{Address: "203.0.113.21"}}},
			}
		}, want: []string{`virtualRouters[1].virtualServices[0].scheduler: Invalid value: "rr": must be mh (or unset) in mode bgp`}},
		{name: "mode bgp without a bgp section", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP = nil },
			want: []string{"virtualRouters[1].mode: Invalid value: \"bgp\": mode bgp needs BGP peers or an external speaker: configure bgp.localASN and bgp.peers, or bgp.externalSpeaker"}},
		{name: "mode bgp without peers", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers = nil },
			want: []string{"virtualRouters[1].mode: Invalid value: \"bgp\": mode bgp needs BGP peers or an external speaker", "bgp.peers: Required value: must list 1 to 16 BGP peers"}},
		{name: "mode vrrp still needs a vrid", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VRID = 0 },
			want: []string{"virtualRouters[0].vrid: Invalid value: 0: must be between 1 and 255"}},
		{name: "VRRP settings in mode bgp", modify: func(c *agentv1alpha1.AgentConfig) {
			r := &c.VirtualRouters[1]
			r.VRID, r.Priority, r.UnicastPeers, r.Announce = 7, ptr[int32](100), []string{"192.0.2.12"}, &agentv1alpha1.Announce{}
		}, want: []string{
			"virtualRouters[1].vrid: Forbidden: a VRRP setting: it does not apply in mode bgp",
			"virtualRouters[1].priority: Forbidden",
			"virtualRouters[1].unicastPeers: Forbidden",
			"virtualRouters[1].announce: Forbidden",
		}},
		{name: "a subnet VIP in mode bgp", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[1].VIPs = []string{"203.0.113.10/24"} },
			want: []string{"virtualRouters[1].vips[0]: Invalid value: \"203.0.113.10/24\": must be a host address in mode bgp (advertised as a /32 host route): write 203.0.113.10"}},
		{name: "ASN zero", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.LocalASN = 0 },
			want: []string{"bgp.localASN: Invalid value: 0: must be an AS number between 1 and 4294967294"}},
		{name: "ASN reserved", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].ASN = 4294967295 },
			want: []string{"bgp.peers[0].asn: Invalid value: 4294967295: must be an AS number between 1 and 4294967294"}},
		{name: "ASN too large", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.LocalASN = 1 << 33 },
			want: []string{"bgp.localASN: Invalid value: 8589934592"}},
		{name: "router ID IPv6", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.RouterID = "2001:db8::1" },
			want: []string{"bgp.routerID: Invalid value: \"2001:db8::1\": must be an IPv4 address other than 0.0.0.0"}},
		{name: "listen port", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ListenPort = 70000 },
			want: []string{"bgp.listenPort: Invalid value: 70000"}},
		{name: "too many peers", modify: func(c *agentv1alpha1.AgentConfig) {
			for i := range 16 {
				c.BGP.Peers = append(c.BGP.Peers, agentv1alpha1.BGPPeer{Address: fmt.Sprintf("192.0.2.%d", 20+i), ASN: 65000})
			}
		}, want: []string{"bgp.peers: Too many: 17: must have at most 16 items"}},
		{name: "duplicate peer", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers = append(c.BGP.Peers, c.BGP.Peers[0]) },
			want: []string{"bgp.peers[1].address: Duplicate value: \"192.0.2.1\""}},
		{name: "peer address invalid", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].Address = "192.0.2.1/24" },
			want: []string{"bgp.peers[0].address: Invalid value: \"192.0.2.1/24\": must be an IP address without prefix length"}},
		{name: "peer link-local", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].Address = "fe80::1" },
			want: []string{"bgp.peers[0].address: Invalid value: \"fe80::1\": must not be a link-local address"}},
		{name: "source of the other family", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].SourceAddress = "2001:db8::11" },
			want: []string{"bgp.peers[0].sourceAddress: Invalid value: \"2001:db8::11\": must be in the family of the peer's address 192.0.2.1"}},
		{name: "port", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].Port = -1 },
			want: []string{"bgp.peers[0].port: Invalid value: -1"}},
		{name: "password file relative", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].PasswordFile = "secret/tor1" },
			want: []string{"bgp.peers[0].passwordFile: Invalid value: \"secret/tor1\": must be an absolute path"}},
		{name: "hold time below 3s", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].HoldTime = dur(2 * time.Second) },
			want: []string{"bgp.peers[0].holdTime: Invalid value: \"2s\": must be between 3s and 18h12m15s in whole seconds"}},
		{name: "hold time fractional", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].HoldTime = dur(3500 * time.Millisecond) },
			want: []string{"bgp.peers[0].holdTime: Invalid value: \"3.5s\""}},
		{name: "keepalive above hold", modify: func(c *agentv1alpha1.AgentConfig) {
			c.BGP.Peers[0].HoldTime, c.BGP.Peers[0].KeepaliveTime = dur(9*time.Second), dur(10*time.Second)
		}, want: []string{"bgp.peers[0].keepaliveTime: Invalid value: \"10s\": must be between 1s and the hold time 9s"}},
		{name: "connect retry 1s", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].ConnectRetry = dur(time.Second) },
			want: []string{"bgp.peers[0].connectRetry: Invalid value: \"1s\": must be between 2s and 1h0m0s"}},
		{name: "multihop with BFD", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].EBGPMultihop = 3 },
			want: []string{"bgp.peers[0].ebgpMultihop: Invalid value: 3: BFD here is single-hop"}},
		{name: "multihop 1", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.Peers[0].BFD, c.BGP.Peers[0].EBGPMultihop = false, 1 },
			want: []string{"bgp.peers[0].ebgpMultihop: Invalid value: 1: must be between 2 and 255"}},
		{name: "multihop iBGP", modify: func(c *agentv1alpha1.AgentConfig) {
			c.BGP.Peers[0].BFD, c.BGP.Peers[0].EBGPMultihop, c.BGP.Peers[0].ASN = false, 2, 65001
		}, want: []string{"bgp.peers[0].ebgpMultihop: Invalid value: 2: applies to eBGP peers only"}},
		{name: "BFD interval below 10ms", modify: func(c *agentv1alpha1.AgentConfig) {
			c.BGP.BFDProfile = &agentv1alpha1.BFDProfile{MinRxInterval: dur(9 * time.Millisecond)}
		}, want: []string{"bgp.bfdProfile.minRxInterval: Invalid value: \"9ms\": must be between 10ms and 1m0s in whole microseconds"}},
		{name: "BFD interval in nanoseconds", modify: func(c *agentv1alpha1.AgentConfig) {
			c.BGP.BFDProfile = &agentv1alpha1.BFDProfile{MinTxInterval: dur(10*time.Millisecond + 1)}
		}, want: []string{"bgp.bfdProfile.minTxInterval: Invalid value: \"10.000001ms\""}},
		{name: "BFD multiplier 0", modify: func(c *agentv1alpha1.AgentConfig) {
			c.BGP.BFDProfile = &agentv1alpha1.BFDProfile{Multiplier: ptr[int32](0)}
		}, want: []string{"bgp.bfdProfile.multiplier: Invalid value: 0: must be between 1 and 255"}},
		{name: "graceful wait", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.GracefulShutdownWait = dur(time.Hour) },
			want: []string{"bgp.gracefulShutdownWait: Invalid value: \"1h0m0s\": must be between 0s and 10m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := bgpBase()
			tt.modify(c)
			errs := ValidateAgentConfig(c)
			if len(errs) != len(tt.want) {
				t.Fatalf("ValidateAgentConfig() = %d errors %v, want %d: %q", len(errs), errs, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Error(), w)
				}
			}
		})
	}
}

// An inline password is not part of the API: the decoder rejects it, so a
// key can only come from passwordFile.
func TestBGPInlinePasswordRejected(t *testing.T) {
	_, err := agentv1alpha1.Decode([]byte(`apiVersion: agent.vipvs.io/v1alpha1
kind: AgentConfig
bgp:
  localASN: 65001
  peers:
  - address: 192.0.2.1
    asn: 65000
    password: s3cret
virtualRouters:
- name: ingress
  mode: bgp
  vips: [203.0.113.10]
`))
	if err == nil || !strings.Contains(err.Error(), "bgp.peers[0].password") || !strings.Contains(err.Error(), "passwordFile") {
		t.Fatalf("Decode with an inline password = %v, want an unknown-field error at bgp.peers[0].password naming passwordFile", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestBGPDefaults(t *testing.T) {
	c := bgpBase()
	agentv1alpha1.SetDefaults(c)
	b := c.BGP
	if b.BFDProfile.MinTxInterval.Duration != 300*time.Millisecond || b.BFDProfile.MinRxInterval.Duration != 300*time.Millisecond || *b.BFDProfile.Multiplier != 3 {
		t.Errorf("BFD profile defaults = %+v, want 300ms/300ms x3", b.BFDProfile)
	}
	if b.GracefulShutdownWait.Duration != 2*time.Second {
		t.Errorf("gracefulShutdownWait default = %v, want 2s", b.GracefulShutdownWait)
	}
	p := b.Peers[0]
	if p.Port != 179 || p.HoldTime.Duration != 90*time.Second || p.KeepaliveTime.Duration != 30*time.Second || p.ConnectRetry.Duration != 5*time.Second {
		t.Errorf("peer defaults = port %d hold %v keepalive %v retry %v, want 179 90s 30s 5s", p.Port, p.HoldTime, p.KeepaliveTime, p.ConnectRetry)
	}
	// The VRRP fields of a bgp router stay unset; those of a vrrp router
	// are defaulted as before.
	if r := c.VirtualRouters[1]; r.Version != nil || r.Priority != nil || r.Announce != nil || r.ChecksumMode != "" {
		t.Errorf("bgp router after SetDefaults = %+v, want its VRRP fields unset", r)
	}
	if r := c.VirtualRouters[0]; r.Version == nil || r.Announce == nil {
		t.Errorf("vrrp router after SetDefaults = %+v, want its VRRP fields defaulted", r)
	}
	if errs := ValidateAgentConfig(c); len(errs) != 0 {
		t.Errorf("defaulted config: %v", errs)
	}
}

// externalBase is bgpBase with the bgp section of an external speaker.
func externalBase() *agentv1alpha1.AgentConfig {
	c := bgpBase()
	c.BGP = &agentv1alpha1.BGP{ExternalSpeaker: &agentv1alpha1.ExternalSpeaker{Table: 100}}
	return c
}

func TestValidateExternalSpeakerGood(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *agentv1alpha1.AgentConfig)
	}{
		{name: "table only", modify: func(*agentv1alpha1.AgentConfig) {}},
		{name: "table only with defaults", modify: agentv1alpha1.SetDefaults},
		{name: "table 1", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Table = 1 }},
		{name: "table 252", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Table = 252 }},
		{name: "table 256", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Table = 256 }},
		{name: "table 2^32-1", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Table = 4294967295 }},
		{name: "protocol 5", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](5) }},
		{name: "protocol 255", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](255) }},
		{name: "protocol 248 (kube-vip's default)", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](248) }},
		{name: "graceful wait", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.GracefulShutdownWait = dur(5 * time.Second) }},
		{name: "IPv6 VIPs", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[1].VIPs = []string{"2001:db8:1::10", "2001:db8:1::11/128"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := externalBase()
			tt.modify(c)
			if errs := ValidateAgentConfig(c); len(errs) != 0 {
				t.Errorf("ValidateAgentConfig() = %v, want no errors", errs)
			}
		})
	}
}

func TestValidateExternalSpeakerBad(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *agentv1alpha1.AgentConfig)
		want   []string // substrings, one per expected error, in order
	}{
		{name: "table missing", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Table = 0 },
			want: []string{"bgp.externalSpeaker.table: Required value: the kernel routing table to write the VIPs' host routes to, 1 to 4294967295 except 253, 254 and 255"}},
		{name: "table negative", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Table = -1 },
			want: []string{"bgp.externalSpeaker.table: Invalid value: -1: must be a routing table between 1 and 4294967295"}},
		{name: "table too large", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Table = 1 << 32 },
			want: []string{"bgp.externalSpeaker.table: Invalid value: 4294967296: must be a routing table between 1 and 4294967295"}},
		{name: "table default", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Table = 253 },
			want: []string{`bgp.externalSpeaker.table: Invalid value: 253: is the kernel's table "default", whose routes the agent must not own: choose a table of its own`}},
		{name: "table main", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Table = 254 },
			want: []string{`bgp.externalSpeaker.table: Invalid value: 254: is the kernel's table "main"`}},
		{name: "table local", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Table = 255 },
			want: []string{`bgp.externalSpeaker.table: Invalid value: 255: is the kernel's table "local"`}},
		{name: "protocol static", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](4) },
			want: []string{"bgp.externalSpeaker.protocol: Invalid value: 4: must be a route protocol number between 5 and 255 (0 to 4 are the kernel's own); default 250"}},
		{name: "protocol 256", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](256) },
			want: []string{"bgp.externalSpeaker.protocol: Invalid value: 256: must be a route protocol number between 5 and 255"}},
		{name: "protocol zebra", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](11) },
			want: []string{`bgp.externalSpeaker.protocol: Invalid value: 11: is the protocol number of "zebra" (/etc/iproute2/rt_protos), whose routes are that daemon's: choose a number nothing else uses, e.g. the default 250`}},
		{name: "protocol bird", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](12) },
			want: []string{`protocol: Invalid value: 12: is the protocol number of "bird"`}},
		{name: "protocol keepalived", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](18) },
			want: []string{`protocol: Invalid value: 18: is the protocol number of "keepalived"`}},
		{name: "protocol babel", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](42) },
			want: []string{`protocol: Invalid value: 42: is the protocol number of "babel"`}},
		{name: "protocol openr", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](99) },
			want: []string{`protocol: Invalid value: 99: is the protocol number of "openr"`}},
		{name: "protocol bgp", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](186) },
			want: []string{`protocol: Invalid value: 186: is the protocol number of "bgp"`}},
		{name: "protocol FRR static", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](196) },
			want: []string{`protocol: Invalid value: 196: is the protocol number of "static"`}},
		{name: "protocol eigrp", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.ExternalSpeaker.Protocol = ptr[int32](192) },
			want: []string{`protocol: Invalid value: 192: is the protocol number of "eigrp"`}},
		{name: "embedded speaker settings", modify: func(c *agentv1alpha1.AgentConfig) {
			c.BGP.LocalASN, c.BGP.RouterID, c.BGP.ListenPort = 65001, "192.0.2.11", 179
			c.BGP.Peers = []agentv1alpha1.BGPPeer{{Address: "192.0.2.1", ASN: 65000}}
			c.BGP.BFDProfile = &agentv1alpha1.BFDProfile{}
		}, want: []string{
			"bgp.localASN: Forbidden: the agent speaks no BGP with externalSpeaker set (the node's BGP daemon does): remove it, or remove externalSpeaker",
			"bgp.routerID: Forbidden: the agent speaks no BGP with externalSpeaker set",
			"bgp.listenPort: Forbidden",
			"bgp.peers: Forbidden",
			"bgp.bfdProfile: Forbidden",
		}},
		{name: "graceful wait", modify: func(c *agentv1alpha1.AgentConfig) { c.BGP.GracefulShutdownWait = dur(time.Hour) },
			want: []string{"bgp.gracefulShutdownWait: Invalid value: \"1h0m0s\": must be between 0s and 10m0s"}},
		{name: "a subnet VIP", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[1].VIPs = []string{"2001:db8:1::/64"} },
			want: []string{"virtualRouters[1].vips[0]: Invalid value: \"2001:db8:1::/64\": must be a host address in mode bgp (advertised as a /128 host route)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := externalBase()
			tt.modify(c)
			errs := ValidateAgentConfig(c)
			if len(errs) != len(tt.want) {
				t.Fatalf("ValidateAgentConfig() = %d errors %v, want %d: %q", len(errs), errs, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Error(), w)
				}
			}
		})
	}
}

// The defaults of an external speaker: protocol 250, no BFD profile (it
// would be refused), the graceful wait.
func TestExternalSpeakerDefaults(t *testing.T) {
	c := externalBase()
	agentv1alpha1.SetDefaults(c)
	b := c.BGP
	if b.ExternalSpeaker.Protocol == nil || *b.ExternalSpeaker.Protocol != agentv1alpha1.DefaultRouteProtocol {
		t.Errorf("externalSpeaker.protocol default = %v, want %d", b.ExternalSpeaker.Protocol, agentv1alpha1.DefaultRouteProtocol)
	}
	if b.BFDProfile != nil {
		t.Errorf("bfdProfile after SetDefaults = %+v, want none with an external speaker", b.BFDProfile)
	}
	if b.GracefulShutdownWait == nil || b.GracefulShutdownWait.Duration != 2*time.Second {
		t.Errorf("gracefulShutdownWait default = %v, want 2s", b.GracefulShutdownWait)
	}
	if _, reserved := reservedRouteProtocols[agentv1alpha1.DefaultRouteProtocol]; reserved {
		t.Errorf("the default protocol %d is reserved", agentv1alpha1.DefaultRouteProtocol)
	}
}
