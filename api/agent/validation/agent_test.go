package validation

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

func dur(d time.Duration) *agentv1alpha1.Duration { return &agentv1alpha1.Duration{Duration: d} }

// base returns a minimal valid configuration: one IPv4 multicast router.
func base() *agentv1alpha1.AgentConfig {
	return &agentv1alpha1.AgentConfig{
		APIVersion: agentv1alpha1.GroupVersion,
		Kind:       agentv1alpha1.Kind,
		Interface:  "eth0",
		VirtualRouters: []agentv1alpha1.VirtualRouter{{
			Name: "api",
			VRID: 51,
			VIPs: []string{"192.0.2.100/24"},
		}},
	}
}

// router2 is a second valid router, IPv6 unicast.
func router2() agentv1alpha1.VirtualRouter {
	return agentv1alpha1.VirtualRouter{
		Name:          "api6",
		VRID:          52,
		SourceAddress: "2001:db8::11",
		UnicastPeers:  []string{"2001:db8::12", "fe80::13"},
		VIPs:          []string{"2001:db8::100/64"},
	}
}

func TestValidateAgentConfigGood(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *agentv1alpha1.AgentConfig)
	}{
		{name: "minimal", modify: func(*agentv1alpha1.AgentConfig) {}},
		{name: "minimal with defaults", modify: agentv1alpha1.SetDefaults},
		{name: "no interface: the one whose subnet holds the VIP", modify: func(c *agentv1alpha1.AgentConfig) { c.Interface = "" }},
		{name: "no interface and a host VIP", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Interface = ""
			c.VirtualRouters[0].VIPs = []string{"192.0.2.100"}
		}},
		{name: "dual stack with defaults", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters = append(c.VirtualRouters, router2())
			agentv1alpha1.SetDefaults(c)
		}},
		{name: "same vrid on another interface", modify: func(c *agentv1alpha1.AgentConfig) {
			r := c.VirtualRouters[0]
			r.Name, r.Interface, r.VIPs = "other", "eth1", []string{"198.51.100.1"}
			c.VirtualRouters = append(c.VirtualRouters, r)
		}},
		{name: "same vrid in the other family", modify: func(c *agentv1alpha1.AgentConfig) {
			r := router2()
			r.VRID = 51
			c.VirtualRouters = append(c.VirtualRouters, r)
		}},
		{name: "every router names its interface", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Interface = ""
			c.VirtualRouters[0].Interface = "bond0.100"
		}},
		{name: "everything set, v3", modify: func(c *agentv1alpha1.AgentConfig) {
			c.NodeName = "master-0.example.com"
			c.Status = &agentv1alpha1.Status{ListenAddress: ptr("[::1]:9444"), SocketPath: ptr("/run/vipvs/agent.sock")}
			c.Notify = &agentv1alpha1.Notify{Command: []string{"/usr/local/bin/notify.sh", "--verbose"}, Timeout: dur(time.Hour)}
			c.VirtualRouters[0] = agentv1alpha1.VirtualRouter{
				Name: "api", VRID: 255, Interface: "eth0", Version: ptr[int32](3), Priority: ptr[int32](255),
				AdvertInterval: dur(40950 * time.Millisecond), Preempt: ptr(true), PreemptDelay: dur(time.Hour),
				ChecksumMode: agentv1alpha1.ChecksumRFC9568, SourceAddress: "192.0.2.11",
				UnicastPeers: []string{"192.0.2.12", "192.0.2.13"},
				VIPs:         []string{"192.0.2.100", "192.0.2.101/32", "198.51.100.5/24"},
				Announce:     &agentv1alpha1.Announce{Count: ptr[int32](100), RepeatDelay: dur(time.Minute), RefreshInterval: dur(time.Hour)},
			}
		}},
		{name: "v2 with password and whole-second interval", modify: func(c *agentv1alpha1.AgentConfig) {
			r := &c.VirtualRouters[0]
			r.Version, r.AuthPassword, r.AdvertInterval = ptr[int32](2), "12345678", dur(255*time.Second)
		}},
		{name: "v3 minimum interval", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].AdvertInterval = dur(10 * time.Millisecond)
		}},
		{name: "status endpoints disabled", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Status = &agentv1alpha1.Status{ListenAddress: ptr(""), SocketPath: ptr("")}
		}},
		{name: "listen on all addresses", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Status = &agentv1alpha1.Status{ListenAddress: ptr(":9444")}
		}},
		{name: "no preempt without delay", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Preempt, c.VirtualRouters[0].PreemptDelay = ptr(false), dur(0)
		}},
		{name: "announce zero repeat and refresh", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Announce = &agentv1alpha1.Announce{Count: ptr[int32](1), RepeatDelay: dur(0), RefreshInterval: dur(0)}
		}},
		{name: "64 routers", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters = nil
			for i := range 64 {
				c.VirtualRouters = append(c.VirtualRouters, agentv1alpha1.VirtualRouter{
					Name: "r" + string(rune('a'+i/26)) + string(rune('a'+i%26)),
					VRID: int32(i + 1),
					VIPs: []string{"10.0.0." + strconv.Itoa(i+1)},
				})
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.modify(c)
			if errs := ValidateAgentConfig(c); len(errs) != 0 {
				t.Errorf("ValidateAgentConfig() = %v, want no errors", errs)
			}
		})
	}
}

func TestValidateAgentConfigBad(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *agentv1alpha1.AgentConfig)
		// want are substrings of the errors, one per expected error, in
		// order.
		want []string
	}{
		{name: "nil", modify: nil, want: []string{"agentConfig: Required value"}},
		{name: "apiVersion missing", modify: func(c *agentv1alpha1.AgentConfig) { c.APIVersion = "" },
			want: []string{`apiVersion: Required value: must be "agent.vipvs.io/v1alpha1"`}},
		{name: "apiVersion wrong", modify: func(c *agentv1alpha1.AgentConfig) { c.APIVersion = "agent.vipvs.io/v1" },
			want: []string{`apiVersion: Unsupported value: "agent.vipvs.io/v1": supported values: "agent.vipvs.io/v1alpha1"`}},
		{name: "kind wrong", modify: func(c *agentv1alpha1.AgentConfig) { c.Kind = "agentconfig" },
			want: []string{`kind: Unsupported value: "agentconfig": supported values: "AgentConfig"`}},
		{name: "kind missing", modify: func(c *agentv1alpha1.AgentConfig) { c.Kind = "" },
			want: []string{`kind: Required value`}},
		{name: "node name", modify: func(c *agentv1alpha1.AgentConfig) { c.NodeName = "Master_0" },
			want: []string{`nodeName: Invalid value: "Master_0": must be a DNS-1123 subdomain`}},
		{name: "top interface too long", modify: func(c *agentv1alpha1.AgentConfig) { c.Interface = "abcdefghijklmnop" },
			want: []string{`interface: Invalid value: "abcdefghijklmnop": must be a Linux interface name: 1 to 15 bytes`}},
		{name: "router interface with slash", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].Interface = "eth0/1" },
			want: []string{`virtualRouters[0].interface: Invalid value: "eth0/1": must be a Linux interface name`}},
		{name: "interface with space", modify: func(c *agentv1alpha1.AgentConfig) { c.Interface = "eth 0" },
			want: []string{`interface: Invalid value: "eth 0"`}},
		{name: "interface dotdot", modify: func(c *agentv1alpha1.AgentConfig) { c.Interface = ".." },
			want: []string{`interface: Invalid value: ".."`}},
		{name: "two routers picking their interface with one VRID", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Interface = ""
			c.VirtualRouters = append(c.VirtualRouters, agentv1alpha1.VirtualRouter{Name: "ingress", VRID: 51, VIPs: []string{"192.0.2.101/24"}})
		}, want: []string{`virtualRouters[1].vrid: Duplicate value: 51: already the VRID of virtualRouters[0] on interface (the interface whose subnet holds the VIP) (IPv4)`}},
		{name: "listen address without port", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Status = &agentv1alpha1.Status{ListenAddress: ptr("127.0.0.1")}
		}, want: []string{`status.listenAddress: Invalid value: "127.0.0.1": must be host:port`}},
		{name: "listen address hostname", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Status = &agentv1alpha1.Status{ListenAddress: ptr("localhost:9444")}
		}, want: []string{`status.listenAddress: Invalid value: "localhost:9444": must be host:port with an IP address`}},
		{name: "listen port zero", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Status = &agentv1alpha1.Status{ListenAddress: ptr("127.0.0.1:0")}
		}, want: []string{`status.listenAddress: Invalid value: "127.0.0.1:0"`}},
		{name: "socket path relative", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Status = &agentv1alpha1.Status{SocketPath: ptr("run/agent.sock")}
		}, want: []string{`status.socketPath: Invalid value: "run/agent.sock": must be an absolute path`}},
		{name: "socket path too long", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Status = &agentv1alpha1.Status{SocketPath: ptr("/" + strings.Repeat("a", 107))}
		}, want: []string{`must be at most 107 bytes long (the limit of a unix socket address)`}},
		{name: "notify empty command", modify: func(c *agentv1alpha1.AgentConfig) { c.Notify = &agentv1alpha1.Notify{} },
			want: []string{`notify.command: Required value: must list the program`}},
		{name: "notify relative program", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Notify = &agentv1alpha1.Notify{Command: []string{"notify.sh"}}
		}, want: []string{`notify.command[0]: Invalid value: "notify.sh": must be the absolute path of the program`}},
		{name: "notify zero timeout", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Notify = &agentv1alpha1.Notify{Command: []string{"/bin/true"}, Timeout: dur(0)}
		}, want: []string{`notify.timeout: Invalid value: "0s": must be greater than 0 and at most 1h0m0s`}},
		{name: "no routers", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters = nil },
			want: []string{`virtualRouters: Required value: must list 1 to 255 virtual routers`}},
		{name: "256 routers", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters = nil
			for i := range 256 {
				r := agentv1alpha1.VirtualRouter{
					Name: "r" + strconv.Itoa(i), VRID: int32(i%255 + 1),
					VIPs: []string{"10.0." + strconv.Itoa(i/200) + "." + strconv.Itoa(i%200+1)},
				}
				if i >= 255 {
					r.Interface = "eth1" // VRIDs are unique per interface
				}
				c.VirtualRouters = append(c.VirtualRouters, r)
			}
		}, want: []string{`virtualRouters: Too many: 256: must have at most 255 items`}},
		{name: "name missing", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].Name = "" },
			want: []string{`virtualRouters[0].name: Required value: must be a DNS-1123 label`}},
		{name: "name upper case", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].Name = "API" },
			want: []string{`virtualRouters[0].name: Invalid value: "API": must be a DNS-1123 label`}},
		{name: "name duplicate", modify: func(c *agentv1alpha1.AgentConfig) {
			r := router2()
			r.Name = "api"
			c.VirtualRouters = append(c.VirtualRouters, r)
		}, want: []string{`virtualRouters[1].name: Duplicate value: "api": already the name of virtualRouters[0]`}},
		{name: "vrid zero", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VRID = 0 },
			want: []string{`virtualRouters[0].vrid: Invalid value: 0: must be between 1 and 255`}},
		{name: "vrid 256", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VRID = 256 },
			want: []string{`virtualRouters[0].vrid: Invalid value: 256: must be between 1 and 255`}},
		{name: "vrid duplicate on interface and family", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters = append(c.VirtualRouters, agentv1alpha1.VirtualRouter{
				Name: "ingress", VRID: 51, Interface: "eth0", VIPs: []string{"192.0.2.200"},
			})
		}, want: []string{`virtualRouters[1].vrid: Duplicate value: 51: already the VRID of virtualRouters[0] on interface eth0 (IPv4)`}},
		{name: "version 4", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].Version = ptr[int32](4) },
			want: []string{`virtualRouters[0].version: Invalid value: 4: must be 2 or 3`}},
		{name: "version 2 with IPv6", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Version = ptr[int32](2)
			c.VirtualRouters[0].VIPs = []string{"2001:db8::100"}
		}, want: []string{`virtualRouters[0].version: Invalid value: 2: VRRP version 2 supports IPv4 only`}},
		{name: "priority zero", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].Priority = ptr[int32](0) },
			want: []string{`virtualRouters[0].priority: Invalid value: 0: must be between 1 and 255`}},
		{name: "priority 256", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].Priority = ptr[int32](256) },
			want: []string{`virtualRouters[0].priority: Invalid value: 256`}},
		{name: "v3 interval too short", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].AdvertInterval = dur(5 * time.Millisecond)
		}, want: []string{`virtualRouters[0].advertInterval: Invalid value: "5ms": must be between 10ms and 40.95s in steps of 10ms for VRRP version 3`}},
		{name: "v3 interval not in centiseconds", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].AdvertInterval = dur(15 * time.Millisecond)
		}, want: []string{`virtualRouters[0].advertInterval: Invalid value: "15ms"`}},
		{name: "v3 interval too long", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].AdvertInterval = dur(41 * time.Second)
		}, want: []string{`virtualRouters[0].advertInterval: Invalid value: "41s"`}},
		{name: "v2 interval not whole seconds", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Version = ptr[int32](2)
			c.VirtualRouters[0].AdvertInterval = dur(1500 * time.Millisecond)
		}, want: []string{`virtualRouters[0].advertInterval: Invalid value: "1.5s": must be between 1s and 4m15s in whole seconds for VRRP version 2`}},
		{name: "v2 interval too long", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Version = ptr[int32](2)
			c.VirtualRouters[0].AdvertInterval = dur(256 * time.Second)
		}, want: []string{`virtualRouters[0].advertInterval: Invalid value: "4m16s"`}},
		{name: "preempt delay negative", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].PreemptDelay = dur(-time.Second)
		}, want: []string{`virtualRouters[0].preemptDelay: Invalid value: "-1s": must be between 0s and 1h0m0s`}},
		{name: "preempt delay without preempt", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Preempt = ptr(false)
			c.VirtualRouters[0].PreemptDelay = dur(time.Second)
		}, want: []string{`virtualRouters[0].preemptDelay: Invalid value: "1s": must be 0s when preempt is false`}},
		{name: "checksum mode unknown", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].ChecksumMode = "rfc5798" },
			want: []string{`virtualRouters[0].checksumMode: Unsupported value: "rfc5798": supported values: "pseudoHeader", "rfc9568"`}},
		{name: "checksum mode with v2", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Version = ptr[int32](2)
			c.VirtualRouters[0].ChecksumMode = agentv1alpha1.ChecksumRFC9568
		}, want: []string{`virtualRouters[0].checksumMode: Invalid value: "rfc9568": applies only to VRRP version 3 with IPv4 (version 2 has one checksum)`}},
		{name: "checksum mode with IPv6", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0] = router2()
			c.VirtualRouters[0].ChecksumMode = agentv1alpha1.ChecksumPseudoHeader
		}, want: []string{`virtualRouters[0].checksumMode: Invalid value: "pseudoHeader": applies only to VRRP version 3 with IPv4 (IPv6 always includes the pseudo-header)`}},
		{name: "password with v3", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].AuthPassword = "secret" },
			want: []string{`virtualRouters[0].authPassword: Invalid value: "<redacted>": applies only to VRRP version 2`}},
		{name: "password too long", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Version = ptr[int32](2)
			c.VirtualRouters[0].AuthPassword = "123456789"
		}, want: []string{`virtualRouters[0].authPassword: Invalid value: "<redacted>": must be at most 8 bytes long (is 9)`}},
		{name: "no vips", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VIPs = nil },
			want: []string{`virtualRouters[0].vips: Required value: must list 1 to 16 addresses of one family`}},
		{name: "17 vips", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].VIPs = nil
			for i := range 17 {
				c.VirtualRouters[0].VIPs = append(c.VirtualRouters[0].VIPs, "10.0.0."+strconv.Itoa(i+1))
			}
		}, want: []string{`virtualRouters[0].vips: Too many: 17: must have at most 16 items`}},
		{name: "vip garbage", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VIPs = []string{"192.0.2.300"} },
			want: []string{`virtualRouters[0].vips[0]: Invalid value: "192.0.2.300": must be an IP address with an optional prefix length`}},
		{name: "vip bad prefix length", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VIPs = []string{"192.0.2.1/33"} },
			want: []string{`virtualRouters[0].vips[0]: Invalid value: "192.0.2.1/33"`}},
		{name: "vip prefix zero", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VIPs = []string{"192.0.2.1/0"} },
			want: []string{`virtualRouters[0].vips[0]: Invalid value: "192.0.2.1/0": must have a prefix length of at least 1`}},
		{name: "vip multicast", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VIPs = []string{"224.0.0.18"} },
			want: []string{`virtualRouters[0].vips[0]: Invalid value: "224.0.0.18": must not be a multicast address`}},
		{name: "vip loopback", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VIPs = []string{"::1"} },
			want: []string{`virtualRouters[0].vips[0]: Invalid value: "::1": must not be a loopback address`}},
		{name: "vip unspecified", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VIPs = []string{"0.0.0.0"} },
			want: []string{`virtualRouters[0].vips[0]: Invalid value: "0.0.0.0": must not be the unspecified address`}},
		{name: "vip link-local", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VIPs = []string{"fe80::1/64"} },
			want: []string{`virtualRouters[0].vips[0]: Invalid value: "fe80::1/64": must not be a link-local address`}},
		{name: "vip with zone", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VIPs = []string{"2001:db8::1%eth0"} },
			want: []string{`virtualRouters[0].vips[0]: Invalid value: "2001:db8::1%eth0": must not have a zone`}},
		{name: "vip ipv4-mapped", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].VIPs = []string{"::ffff:192.0.2.1"} },
			want: []string{`virtualRouters[0].vips[0]: Invalid value: "::ffff:192.0.2.1": must not be an IPv4-mapped IPv6 address`}},
		{name: "vips of two families", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].VIPs = []string{"192.0.2.100", "2001:db8::100"}
		}, want: []string{`virtualRouters[0].vips[1]: Invalid value: "2001:db8::100": must be IPv4 like virtualRouters[0].vips[0]: a virtual router carries addresses of one family`}},
		{name: "vip duplicate in router", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].VIPs = []string{"192.0.2.100/24", "192.0.2.100/32"}
		}, want: []string{`virtualRouters[0].vips[1]: Duplicate value: "192.0.2.100/32": the address is already a VIP at virtualRouters[0].vips[0]`}},
		{name: "vip duplicate across routers", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters = append(c.VirtualRouters, agentv1alpha1.VirtualRouter{Name: "ingress", VRID: 52, VIPs: []string{"192.0.2.100"}})
		}, want: []string{`virtualRouters[1].vips[0]: Duplicate value: "192.0.2.100": the address is already a VIP at virtualRouters[0].vips[0]`}},
		{name: "source address with prefix", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].SourceAddress = "192.0.2.11/24" },
			want: []string{`virtualRouters[0].sourceAddress: Invalid value: "192.0.2.11/24": must be an IP address without prefix length`}},
		{name: "source address other family", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].SourceAddress = "2001:db8::11" },
			want: []string{`virtualRouters[0].sourceAddress: Invalid value: "2001:db8::11": must be IPv4, the family of the VIPs`}},
		{name: "source address is a vip", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].SourceAddress = "192.0.2.100" },
			want: []string{`virtualRouters[0].sourceAddress: Invalid value: "192.0.2.100": must be an address of this node, not a VIP (virtualRouters[0].vips[0])`}},
		{name: "peer is source", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].SourceAddress = "192.0.2.11"
			c.VirtualRouters[0].UnicastPeers = []string{"192.0.2.12", "192.0.2.11"}
		}, want: []string{`virtualRouters[0].unicastPeers[1]: Invalid value: "192.0.2.11": must not be the router's own sourceAddress`}},
		{name: "peer duplicate", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].UnicastPeers = []string{"192.0.2.12", "192.0.2.12"}
		}, want: []string{`virtualRouters[0].unicastPeers[1]: Duplicate value: "192.0.2.12": already listed as virtualRouters[0].unicastPeers[0]`}},
		{name: "peer multicast", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].UnicastPeers = []string{"224.0.0.18"} },
			want: []string{`virtualRouters[0].unicastPeers[0]: Invalid value: "224.0.0.18": must not be a multicast address: leave unicastPeers empty for multicast`}},
		{name: "peer loopback", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].UnicastPeers = []string{"127.0.0.1"} },
			want: []string{`virtualRouters[0].unicastPeers[0]: Invalid value: "127.0.0.1": must not be a loopback address`}},
		{name: "peer unspecified", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].UnicastPeers = []string{"0.0.0.0"} },
			want: []string{`virtualRouters[0].unicastPeers[0]: Invalid value: "0.0.0.0": must not be the unspecified address`}},
		{name: "multicast peer duplicate", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].UnicastPeers = nil
			c.VirtualRouters[0].MulticastPeers = []string{"192.0.2.12", "192.0.2.12"}
		}, want: []string{`virtualRouters[0].multicastPeers[1]: Duplicate value: "192.0.2.12": already listed as virtualRouters[0].multicastPeers[0]`}},
		{name: "multicast peers with unicast peers", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].UnicastPeers = []string{"192.0.2.12"}
			c.VirtualRouters[0].MulticastPeers = []string{"192.0.2.13"}
		}, want: []string{`virtualRouters[0].multicastPeers: Forbidden: only for multicast mode`}},
		{name: "peer other family", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].UnicastPeers = []string{"2001:db8::12"} },
			want: []string{`virtualRouters[0].unicastPeers[0]: Invalid value: "2001:db8::12": must be IPv4, the family of the VIPs`}},
		{name: "peer is a vip of another router", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters = append(c.VirtualRouters, agentv1alpha1.VirtualRouter{Name: "ingress", VRID: 52, VIPs: []string{"192.0.2.200"}})
			c.VirtualRouters[0].UnicastPeers = []string{"192.0.2.200"}
		}, want: []string{`virtualRouters[0].unicastPeers[0]: Invalid value: "192.0.2.200": must be a node address, not a VIP (virtualRouters[1].vips[0])`}},
		{name: "peer garbage", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].UnicastPeers = []string{"node-1"} },
			want: []string{`virtualRouters[0].unicastPeers[0]: Invalid value: "node-1": must be an IP address without prefix length`}},
		{name: "announce count zero", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Announce = &agentv1alpha1.Announce{Count: ptr[int32](0)}
		}, want: []string{`virtualRouters[0].announce.count: Invalid value: 0: must be between 1 and 100`}},
		{name: "announce repeat too long", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Announce = &agentv1alpha1.Announce{RepeatDelay: dur(2 * time.Minute)}
		}, want: []string{`virtualRouters[0].announce.repeatDelay: Invalid value: "2m0s": must be between 0s (no second burst) and 1m0s`}},
		{name: "announce refresh too short", modify: func(c *agentv1alpha1.AgentConfig) {
			c.VirtualRouters[0].Announce = &agentv1alpha1.Announce{RefreshInterval: dur(100 * time.Millisecond)}
		}, want: []string{`virtualRouters[0].announce.refreshInterval: Invalid value: "100ms": must be 0s (off) or between 1s and 1h0m0s`}},
		{name: "every problem is reported", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Kind = "Pod"
			c.VirtualRouters = append(c.VirtualRouters, agentv1alpha1.VirtualRouter{Name: "b", VRID: 0, Priority: ptr[int32](0), VIPs: []string{"x"}})
		}, want: []string{
			`kind: Unsupported value: "Pod"`,
			`virtualRouters[1].vrid: Invalid value: 0`,
			`virtualRouters[1].vips[0]: Invalid value: "x"`,
			`virtualRouters[1].priority: Invalid value: 0`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *agentv1alpha1.AgentConfig
			if tt.modify != nil {
				c = base()
				tt.modify(c)
			}
			errs := ValidateAgentConfig(c)
			if diff := cmp.Diff(len(tt.want), len(errs)); diff != "" {
				t.Fatalf("number of errors (-want +got):\n%s\nerrors: %s", diff, listErrors(errs))
			}
			for i, want := range tt.want {
				if got := errs[i].Error(); !strings.Contains(got, want) {
					t.Errorf("error %d = %q, want it to contain %q", i, got, want)
				}
			}
		})
	}
}

// TestValidateAgentConfigPasswordNotShown checks that no message holds the
// password, whatever is wrong with it.
func TestValidateAgentConfigPasswordNotShown(t *testing.T) {
	c := base()
	c.VirtualRouters[0].AuthPassword = "sup3rs3cretpassword"
	errs := ValidateAgentConfig(c)
	if len(errs) == 0 {
		t.Fatal("ValidateAgentConfig() = no errors, want errors about authPassword")
	}
	if got := listErrors(errs); strings.Contains(got, "s3cret") {
		t.Errorf("errors show the password: %s", got)
	}
}

func listErrors(errs field.ErrorList) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n\t" + e.Error())
	}
	return b.String()
}
