package validation

import (
	"strings"
	"testing"
	"time"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// withServices returns a valid configuration with one service of each
// forwarding method and health check kind.
func withServices() *agentv1alpha1.AgentConfig {
	c := base()
	c.IPVS = &agentv1alpha1.IPVS{ResyncInterval: dur(5 * time.Second), CheckConcurrency: ptr[int32](4)}
	c.VirtualRouters[0].VirtualServices = []agentv1alpha1.VirtualService{
		{
			Name: "api", Port: 6443, Scheduler: "rr",
			RealServers: []agentv1alpha1.RealServer{{Address: "192.0.2.11"}, {Address: "192.0.2.12", Weight: ptr[int32](3)}},
			HealthCheck: &agentv1alpha1.RealServerCheck{
				HTTP:     &agentv1alpha1.RealServerHTTPCheck{Scheme: "https", Path: "/readyz", InsecureSkipVerify: true},
				Interval: dur(time.Second), Timeout: dur(500 * time.Millisecond), Rise: ptr[int32](1), Fall: ptr[int32](2),
			},
		},
		{
			Name: "dns", Port: 53, Protocol: agentv1alpha1.ProtocolUDP, Forwarding: agentv1alpha1.ForwardingDR,
			Persistence: dur(30 * time.Second),
			RealServers: []agentv1alpha1.RealServer{{Address: "192.0.2.11", Port: ptr[int32](53)}},
			HealthCheck: &agentv1alpha1.RealServerCheck{Exec: &agentv1alpha1.ExecCheck{Command: []string{"/usr/bin/dig", "@$VIPVS_BACKEND_ADDRESS"}}},
		},
		{
			Name: "http", Port: 80, Forwarding: agentv1alpha1.ForwardingTunnel, Scheduler: "mh",
			RealServers: []agentv1alpha1.RealServer{{Address: "192.0.2.13", Weight: ptr[int32](0)}},
			HealthCheck: &agentv1alpha1.RealServerCheck{TCP: &agentv1alpha1.RealServerTCPCheck{Port: ptr[int32](8080)}},
		},
		{
			Name: "ssh", Port: 22, Protocol: agentv1alpha1.ProtocolSCTP,
			RealServers: []agentv1alpha1.RealServer{{Address: "192.0.2.11", Port: ptr[int32](2222)}},
		},
	}
	return c
}

func TestValidateVirtualServicesGood(t *testing.T) {
	c := withServices()
	if errs := ValidateAgentConfig(c); len(errs) != 0 {
		t.Fatalf("ValidateAgentConfig() = %s, want no errors", listErrors(errs))
	}
	agentv1alpha1.SetDefaults(c)
	if errs := ValidateAgentConfig(c); len(errs) != 0 {
		t.Fatalf("ValidateAgentConfig() after SetDefaults = %s, want no errors", listErrors(errs))
	}
}

func TestValidateVirtualServicesBad(t *testing.T) {
	svc := func(c *agentv1alpha1.AgentConfig, i int) *agentv1alpha1.VirtualService {
		return &c.VirtualRouters[0].VirtualServices[i]
	}
	tests := []struct {
		name   string
		modify func(c *agentv1alpha1.AgentConfig)
		want   []string
	}{
		{"resync too short", func(c *agentv1alpha1.AgentConfig) { c.IPVS.ResyncInterval = dur(time.Millisecond) },
			[]string{`ipvs.resyncInterval: Invalid value: "1ms": must be between 1s and 1h0m0s`}},
		{"concurrency zero", func(c *agentv1alpha1.AgentConfig) { c.IPVS.CheckConcurrency = ptr[int32](0) },
			[]string{`ipvs.checkConcurrency: Invalid value: 0: must be between 1 and 1024`}},
		{"connection sync good", func(c *agentv1alpha1.AgentConfig) {
			c.IPVS.ConnectionSync = &agentv1alpha1.ConnectionSync{Enabled: ptr(false), Interface: "eth1", SyncID: ptr[int32](0), MulticastGroup: "ff02::81", Port: ptr[int32](8849), TTL: ptr[int32](2)}
		}, nil},
		{"connection sync bad", func(c *agentv1alpha1.AgentConfig) {
			c.IPVS.ConnectionSync = &agentv1alpha1.ConnectionSync{Interface: "eth 1", SyncID: ptr[int32](256), MulticastGroup: "192.0.2.1", Port: ptr[int32](0), TTL: ptr[int32](0)}
		}, []string{
			`ipvs.connectionSync.interface: Invalid value: "eth 1"`,
			`ipvs.connectionSync.syncID: Invalid value: 256: must be between 0 and 255`,
			`ipvs.connectionSync.multicastGroup: Invalid value: "192.0.2.1": must be a multicast address`,
			`ipvs.connectionSync.port: Invalid value: 0: must be between 1 and 65535`,
			`ipvs.connectionSync.ttl: Invalid value: 0: must be between 1 and 255`,
		}},
		{"connection sync group not an address", func(c *agentv1alpha1.AgentConfig) {
			c.IPVS.ConnectionSync = &agentv1alpha1.ConnectionSync{MulticastGroup: "all-directors"}
		}, []string{`ipvs.connectionSync.multicastGroup: Invalid value: "all-directors": must be an IPv4 or IPv6 multicast address`}},
		{"no name", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).Name = "" },
			[]string{`virtualRouters[0].virtualServices[0].name: Required value`}},
		{"duplicate name", func(c *agentv1alpha1.AgentConfig) { svc(c, 1).Name = "api" },
			[]string{`virtualRouters[0].virtualServices[1].name: Duplicate value: "api": already the name of virtualRouters[0].virtualServices[0]`}},
		{"duplicate protocol and port", func(c *agentv1alpha1.AgentConfig) { svc(c, 2).Port = 6443 },
			[]string{`virtualRouters[0].virtualServices[2].port: Duplicate value: 6443: TCP port 6443 is already the service virtualRouters[0].virtualServices[0]`}},
		{"same port other protocol is fine", func(c *agentv1alpha1.AgentConfig) { svc(c, 1).Port = 6443; svc(c, 1).RealServers[0].Port = nil }, nil},
		{"port zero", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).Port = 0 },
			[]string{`virtualRouters[0].virtualServices[0].port: Invalid value: 0: must be between 1 and 65535`}},
		{"protocol lower case", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).Protocol = "tcp" },
			[]string{`virtualRouters[0].virtualServices[0].protocol: Unsupported value: "tcp": supported values: "TCP", "UDP", "SCTP"`}},
		{"scheduler", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).Scheduler = "round-robin" },
			[]string{`virtualRouters[0].virtualServices[0].scheduler: Unsupported value: "round-robin"`}},
		{"forwarding", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).Forwarding = "masq" },
			[]string{`virtualRouters[0].virtualServices[0].forwarding: Unsupported value: "masq": supported values: "NAT", "DR", "Tunnel"`}},
		{"persistence fraction", func(c *agentv1alpha1.AgentConfig) { svc(c, 1).Persistence = dur(1500 * time.Millisecond) },
			[]string{`virtualRouters[0].virtualServices[1].persistence: Invalid value: "1.5s": must be whole seconds`}},
		{"persistence too long", func(c *agentv1alpha1.AgentConfig) { svc(c, 1).Persistence = dur(48 * time.Hour) },
			[]string{`virtualRouters[0].virtualServices[1].persistence: Invalid value: "48h0m0s": must be between 1s and 24h0m0s`}},
		{"no real servers", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).RealServers = nil },
			[]string{`virtualRouters[0].virtualServices[0].realServers: Required value: must list 1 to 256 real servers`}},
		{"real server hostname", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).RealServers[0].Address = "master-0" },
			[]string{`virtualRouters[0].virtualServices[0].realServers[0].address: Invalid value: "master-0": must be an IP address`}},
		{"real server with prefix", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).RealServers[0].Address = "192.0.2.11/24" },
			[]string{`realServers[0].address: Invalid value: "192.0.2.11/24": must be an IP address without prefix length`}},
		{"real server loopback", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).RealServers[0].Address = "127.0.0.1" },
			[]string{`realServers[0].address: Invalid value: "127.0.0.1": must be a unicast address of a real server`}},
		{"real server family", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).RealServers[0].Address = "2001:db8::11" },
			[]string{`virtualRouters[0].virtualServices[0].realServers[0].address: Invalid value: "2001:db8::11": must be IPv4, the family of the router's VIPs`}},
		{"duplicate real server", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).RealServers[1].Address = "192.0.2.11" },
			[]string{`virtualRouters[0].virtualServices[0].realServers[1]: Duplicate value: "192.0.2.11:6443": already listed as virtualRouters[0].virtualServices[0].realServers[0]`}},
		{"same address other port is fine", func(c *agentv1alpha1.AgentConfig) {
			svc(c, 0).RealServers[1].Address = "192.0.2.11"
			svc(c, 0).RealServers[1].Port = ptr[int32](6444)
		}, nil},
		{"weight too big", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).RealServers[0].Weight = ptr[int32](70000) },
			[]string{`realServers[0].weight: Invalid value: 70000: must be between 0 and 65535`}},
		{"DR changes port", func(c *agentv1alpha1.AgentConfig) { svc(c, 1).RealServers[0].Port = ptr[int32](5353) },
			[]string{`virtualRouters[0].virtualServices[1].realServers[0].port: Invalid value: 5353: must be the service's port (53) or unset: DR forwarding cannot change the port`}},
		{"two check kinds", func(c *agentv1alpha1.AgentConfig) { svc(c, 2).HealthCheck.HTTP = &agentv1alpha1.RealServerHTTPCheck{} },
			[]string{`virtualRouters[0].virtualServices[2].healthCheck: Invalid value: "tcp, http": must set exactly one of tcp, http or exec`}},
		{"no check kind", func(c *agentv1alpha1.AgentConfig) { svc(c, 2).HealthCheck.TCP = nil },
			[]string{`virtualRouters[0].virtualServices[2].healthCheck: Required value: must set one of tcp, http or exec`}},
		{"http path relative", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).HealthCheck.HTTP.Path = "readyz" },
			[]string{`healthCheck.http.path: Invalid value: "readyz": must be an absolute path`}},
		{"http scheme", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).HealthCheck.HTTP.Scheme = "HTTPS" },
			[]string{`healthCheck.http.scheme: Unsupported value: "HTTPS"`, `healthCheck.http.scheme: Invalid value: "HTTPS": caFile, insecureSkipVerify and serverName need scheme "https"`}},
		{"http status", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).HealthCheck.HTTP.ExpectStatus = []int32{200, 42} },
			[]string{`healthCheck.http.expectStatus[1]: Invalid value: 42`}},
		{"ca and insecure", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).HealthCheck.HTTP.CAFile = "/etc/ca.crt" },
			[]string{`healthCheck.http.insecureSkipVerify: Invalid value: true: must not be set together with caFile`}},
		{"exec relative", func(c *agentv1alpha1.AgentConfig) { svc(c, 1).HealthCheck.Exec.Command[0] = "dig" },
			[]string{`healthCheck.exec.command[0]: Invalid value: "dig": must be the absolute path of the program`}},
		{"timeout above interval", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).HealthCheck.Timeout = dur(2 * time.Second) },
			[]string{`virtualRouters[0].virtualServices[0].healthCheck.timeout: Invalid value: "2s": must be at most the interval (1s)`}},
		{"fall zero", func(c *agentv1alpha1.AgentConfig) { svc(c, 0).HealthCheck.Fall = ptr[int32](0) },
			[]string{`virtualRouters[0].virtualServices[0].healthCheck.fall: Invalid value: 0: must be between 1 and 100`}},
		{"tcp port", func(c *agentv1alpha1.AgentConfig) { svc(c, 2).HealthCheck.TCP.Port = ptr[int32](-1) },
			[]string{`healthCheck.tcp.port: Invalid value: -1: must be between 1 and 65535`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withServices()
			tt.modify(c)
			errs := ValidateAgentConfig(c)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d: %s", len(errs), len(tt.want), listErrors(errs))
			}
			for i, want := range tt.want {
				if got := errs[i].Error(); !strings.Contains(got, want) {
					t.Errorf("error %d = %q, want it to contain %q", i, got, want)
				}
			}
		})
	}
}
