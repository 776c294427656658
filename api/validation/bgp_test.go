package validation

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

func TestValidateBGPGood(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(c *v1alpha1.LoadBalancerConfig)
	}{
		{name: "example", modify: func(*v1alpha1.LoadBalancerConfig) {}},
		{name: "example with defaults", modify: v1alpha1.SetDefaults},
		{name: "external speaker", modify: func(c *v1alpha1.LoadBalancerConfig) {
			c.Spec.BGP = &v1alpha1.BGP{ExternalSpeaker: &v1alpha1.ExternalSpeaker{Table: 198, Protocol: ptr(int32(250))}}
		}},
		{name: "bgp and vrrp virtual IPs side by side", modify: func(c *v1alpha1.LoadBalancerConfig) {
			c.Spec.VirtualIPs = append(c.Spec.VirtualIPs, v1alpha1.VirtualIP{Name: "vrrp", Address: "192.0.2.50", VRID: 70, PrefixLength: ptr(int32(24))})
		}},
		{name: "VRRPv2 for the vrrp virtual IP beside an IPv6 bgp one", modify: func(c *v1alpha1.LoadBalancerConfig) {
			c.Spec.VirtualIPs = append(c.Spec.VirtualIPs, v1alpha1.VirtualIP{Name: "vrrp", Address: "192.0.2.50", VRID: 70})
			c.Spec.VRRP = &v1alpha1.VRRP{Version: 2}
		}},
		{name: "host prefix length", modify: func(c *v1alpha1.LoadBalancerConfig) {
			c.Spec.VirtualIPs[0].PrefixLength = ptr(int32(32))
			c.Spec.VirtualIPs[1].PrefixLength = ptr(int32(128))
		}},
		{name: "multihop eBGP, edge timers", modify: func(c *v1alpha1.LoadBalancerConfig) {
			p := &c.Spec.BGP.Peers[1]
			p.BFD = false
			p.EBGPMultihop = ptr(int32(255))
			p.HoldTime, p.KeepaliveTime, p.ConnectRetry = lbcDur(3*time.Second), lbcDur(3*time.Second), lbcDur(time.Hour)
			c.Spec.BGP.BFDProfile.MinTxInterval = lbcDur(10 * time.Millisecond)
			c.Spec.BGP.LocalASN = ptr(int64(v1alpha1.MaxASN))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := example(t, "bgp.yaml")
			tt.modify(c)
			if errs := ValidateLoadBalancerConfig(c); len(errs) > 0 {
				t.Errorf("unexpected errors:\n%v", errs.ToAggregate())
			}
		})
	}
}

func TestValidateBGPBad(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(c *v1alpha1.LoadBalancerConfig)
		want   []string
	}{
		{
			name:   "bgp virtual IP without peers",
			modify: func(c *v1alpha1.LoadBalancerConfig) { c.Spec.BGP = nil },
			want:   []string{"spec.bgp: Required value: " + msgBGPNeedsPeers},
		},
		{
			name: "bgp virtual IP with an empty bgp section",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.BGP = &v1alpha1.BGP{}
			},
			want: []string{"spec.bgp: Required value: " + msgBGPNeedsPeers},
		},
		{
			name: "ASN out of range",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.BGP.LocalASN = ptr(int64(0))
				c.Spec.BGP.Peers[0].ASN = 4294967295
				c.Spec.BGP.ByNode[0].LocalASN = ptr(int64(-1))
			},
			want: []string{
				"spec.bgp.localASN: Invalid value: 0: must be an AS number between 1 and 4294967294",
				"spec.bgp.peers[0].asn: Invalid value: 4294967295: must be an AS number between 1 and 4294967294",
				"spec.bgp.byNode[0].localASN: Invalid value: -1: must be an AS number between 1 and 4294967294",
			},
		},
		{
			name: "BFD interval below 10ms",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.BGP.BFDProfile.MinTxInterval = lbcDur(5 * time.Millisecond)
				c.Spec.BGP.BFDProfile.MinRxInterval = lbcDur(2 * time.Minute)
				c.Spec.BGP.BFDProfile.Multiplier = ptr(int32(0))
			},
			want: []string{
				`spec.bgp.bfdProfile.minTxInterval: Invalid value: "5ms": minTxInterval ` + msgBFDInterval,
				`spec.bgp.bfdProfile.minRxInterval: Invalid value: "2m0s": minRxInterval ` + msgBFDInterval,
				`spec.bgp.bfdProfile.multiplier: Invalid value: 0: multiplier must be between 1 and 255`,
			},
		},
		{
			name: "VRRP settings on a bgp virtual IP",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.VirtualIPs[0].VRID = 51
				c.Spec.VirtualIPs[1].PrefixLength = ptr(int32(64))
			},
			want: []string{
				"spec.virtualIPs[0].vrid: Invalid value: 51: " + msgVRIDBGP,
				"spec.virtualIPs[1].prefixLength: Invalid value: 64: " + msgPrefixBGP,
			},
		},
		{
			name: "vrrp virtual IP without vrid",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.VirtualIPs[0].Mode = v1alpha1.AnnouncementVRRP
			},
			want: []string{"spec.virtualIPs[0].vrid: Required value: " + msgVRIDRequired},
		},
		{
			name: "unknown mode",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.VirtualIPs[0].Mode = "ospf"
			},
			want: []string{
				`spec.virtualIPs[0].mode: Unsupported value: "ospf": supported values: "vrrp", "bgp"`,
				"spec.virtualIPs[0].vrid: Required value: " + msgVRIDRequired,
			},
		},
		{
			name: "externalSpeaker with peers",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.BGP.ExternalSpeaker = &v1alpha1.ExternalSpeaker{Table: 198}
			},
			want: []string{
				`spec.bgp.externalSpeaker: Invalid value: "externalSpeaker, peers": ` + msgExternalPeers,
				`spec.bgp.externalSpeaker: Invalid value: "set": ` + msgExternalSpeaker,
			},
		},
		{
			name: "externalSpeaker table 0, 253, 254, 255",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.BGP = &v1alpha1.BGP{ExternalSpeaker: &v1alpha1.ExternalSpeaker{Table: 254, Protocol: ptr(int32(4))}}
			},
			want: []string{
				"spec.bgp.externalSpeaker.table: Invalid value: 254: " + msgTable,
				"spec.bgp.externalSpeaker.protocol: Invalid value: 4: protocol must be between 5 and 255",
			},
		},
		{
			name: "externalSpeaker table 0",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.BGP = &v1alpha1.BGP{ExternalSpeaker: &v1alpha1.ExternalSpeaker{}}
			},
			want: []string{"spec.bgp.externalSpeaker.table: Invalid value: 0: table must be between 1 and 4294967295"},
		},
		{
			name: "peers without localASN",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.BGP.LocalASN = nil
			},
			want: []string{"spec.bgp.localASN: Required value: " + msgLocalASNRequired},
		},
		{
			name: "peer address, duplicate, timers, multihop",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				b := c.Spec.BGP
				b.Peers = append(b.Peers,
					v1alpha1.BGPPeer{Address: "192.0.2.1", ASN: 64512},
					v1alpha1.BGPPeer{Address: "fe80::1", ASN: 64512},
					v1alpha1.BGPPeer{Address: "192.0.2.2/32", ASN: 64512},
					v1alpha1.BGPPeer{Address: "192.0.2.3", ASN: 64513, EBGPMultihop: ptr(int32(2))},
					v1alpha1.BGPPeer{Address: "192.0.2.4", ASN: 64512, EBGPMultihop: ptr(int32(2)), BFD: true},
					v1alpha1.BGPPeer{Address: "192.0.2.5", ASN: 64512, HoldTime: lbcDur(2 * time.Second), KeepaliveTime: lbcDur(1500 * time.Millisecond), ConnectRetry: lbcDur(time.Second)},
					v1alpha1.BGPPeer{Address: "192.0.2.6", ASN: 64512, HoldTime: lbcDur(9 * time.Second), KeepaliveTime: lbcDur(10 * time.Second), Port: ptr(int32(0))},
				)
			},
			want: []string{
				`spec.bgp.peers[2].address: Duplicate value: "192.0.2.1"`,
				`spec.bgp.peers[3].address: Invalid value: "fe80::1": ` + msgAddressUnicast,
				`spec.bgp.peers[4].address: Invalid value: "192.0.2.2/32": ` + msgPeerAddressForm,
				`spec.bgp.peers[5].ebgpMultihop: Invalid value: 2: ` + msgMultihopIBGP,
				`spec.bgp.peers[6].ebgpMultihop: Invalid value: 2: ` + msgMultihopBFD,
				`spec.bgp.peers[7].holdTime: Invalid value: "2s": ` + msgHoldTime,
				`spec.bgp.peers[7].keepaliveTime: Invalid value: "1.5s": ` + msgKeepalive,
				`spec.bgp.peers[7].connectRetry: Invalid value: "1s": ` + msgConnectRetry,
				`spec.bgp.peers[8].port: Invalid value: 0: port must be between 1 and 65535`,
				`spec.bgp.peers[8].keepaliveTime: Invalid value: "10s": ` + msgKeepaliveHold,
			},
		},
		{
			name: "bgp virtual IP without a peer of its family",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.BGP.Peers = c.Spec.BGP.Peers[:1]
			},
			want: []string{`spec.virtualIPs[1].address: Invalid value: "2001:db8::40": ` + msgPeerFamily},
		},
		{
			name: "password Secret reference",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.BGP.Peers[0].PasswordSecretRef = &v1alpha1.SecretKeyReference{Namespace: "vipvs", Name: "bgp"}
			},
			want: []string{"spec.bgp.peers[0].passwordSecretRef.key: Required value: must name the key in the Secret's data"},
		},
		{
			name: "byNode",
			modify: func(c *v1alpha1.LoadBalancerConfig) {
				c.Spec.BGP.ByNode = append(c.Spec.BGP.ByNode,
					v1alpha1.BGPNode{NodeName: "master-2"},
					v1alpha1.BGPNode{NodeName: "master-0", RouterID: "2001:db8::11", SourceAddresses: []string{"192.0.2.11", "192.0.2.21", "2001:db8::011"}},
				)
				c.Spec.BGP.GracefulShutdownWait = lbcDur(11 * time.Minute)
			},
			want: []string{
				`spec.bgp.gracefulShutdownWait: Invalid value: "11m0s": ` + msgGracefulWait,
				`spec.bgp.byNode[1].nodeName: Duplicate value: "master-2"`,
				`spec.bgp.byNode[2].routerID: Invalid value: "2001:db8::11": ` + msgRouterID,
				`spec.bgp.byNode[2].sourceAddresses: Too many: 3: must have at most 2 items`,
				`spec.bgp.byNode[2].sourceAddresses[1]: Invalid value: "192.0.2.21": ` + msgSourcePerFamily,
				`spec.bgp.byNode[2].sourceAddresses[2]: Invalid value: "2001:db8::011": ` + msgSourceAddresses,
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := example(t, "bgp.yaml")
			v1alpha1.SetDefaults(c)
			tt.modify(c)
			got := errStrings(ValidateLoadBalancerConfig(c))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateBGPSet checks that virtual IPs in mode bgp, which have no
// VRID, never collide by VRID across LoadBalancerConfigs.
func TestValidateBGPSet(t *testing.T) {
	a, b := example(t, "bgp.yaml"), example(t, "bgp.yaml")
	b.Name = "other"
	b.Spec.VirtualIPs[0].Address = "192.0.2.41"
	b.Spec.VirtualIPs[1].Address = "2001:db8::41"
	if errs := ValidateLoadBalancerConfigSet([]v1alpha1.LoadBalancerConfig{*a, *b}); len(errs) > 0 {
		t.Errorf("unexpected errors:\n%v", errs.ToAggregate())
	}
}
