package validation

import (
	"strings"
	"testing"
	"time"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// withChecks is base() with one check of each kind, tracked by the router.
func withChecks() *agentv1alpha1.AgentConfig {
	c := base()
	c.Checks = []agentv1alpha1.Check{
		{Name: "apiserver", HTTP: &agentv1alpha1.HTTPCheck{URL: "https://127.0.0.1:6443/readyz", CAFile: "/etc/kubernetes/pki/ca.crt"}},
		{Name: "tcp", TCP: &agentv1alpha1.TCPCheck{Address: "[::1]:6443"}, Interval: dur(time.Second), Timeout: dur(500 * time.Millisecond)},
		{Name: "script", Exec: &agentv1alpha1.ExecCheck{Command: []string{"/usr/local/bin/check", "-q"}}, Rise: ptr[int32](1), Fall: ptr[int32](1)},
		{Name: "uplink", Interface: &agentv1alpha1.InterfaceCheck{Name: "eth1"}},
	}
	c.VirtualRouters[0].TrackChecks = []agentv1alpha1.TrackCheck{
		{Check: "apiserver", Weight: 0}, {Check: "tcp", Weight: -60}, {Check: "script", Weight: 10}, {Check: "uplink", Weight: -254},
	}
	c.VirtualRouters[0].PreemptAfterChecks = true
	return c
}

func TestValidateChecks(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(c *agentv1alpha1.AgentConfig)
		wantErr []string // substrings; none means valid
	}{
		{name: "every kind", modify: func(*agentv1alpha1.AgentConfig) {}},
		{name: "every kind with defaults", modify: agentv1alpha1.SetDefaults},
		{name: "no kind", modify: func(c *agentv1alpha1.AgentConfig) { c.Checks[0].HTTP = nil },
			wantErr: []string{"checks[0]: Required value: must set one of tcp, http, exec or interface"}},
		{name: "two kinds", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Checks[1].Exec = &agentv1alpha1.ExecCheck{Command: []string{"/bin/true"}}
		},
			wantErr: []string{`checks[1]: Invalid value: "tcp, exec": must set exactly one`}},
		{name: "duplicate name", modify: func(c *agentv1alpha1.AgentConfig) { c.Checks[1].Name = "apiserver" },
			wantErr: []string{`checks[1].name: Duplicate value: "apiserver"`}},
		{name: "bad tcp address", modify: func(c *agentv1alpha1.AgentConfig) { c.Checks[1].TCP.Address = "localhost:6443" },
			wantErr: []string{`checks[1].tcp.address: Invalid value: "localhost:6443": must be "IP:port"`}},
		{name: "bad url", modify: func(c *agentv1alpha1.AgentConfig) { c.Checks[0].HTTP.URL = "ftp://x/readyz" },
			wantErr: []string{`checks[0].http.url: Invalid value: "ftp://x/readyz": must be an http:// or https:// URL`}},
		{name: "bad status", modify: func(c *agentv1alpha1.AgentConfig) { c.Checks[0].HTTP.ExpectStatus = []int32{200, 999} },
			wantErr: []string{"checks[0].http.expectStatus[1]: Invalid value: 999: must be an HTTP status code"}},
		{name: "ca and insecure", modify: func(c *agentv1alpha1.AgentConfig) { c.Checks[0].HTTP.InsecureSkipVerify = true },
			wantErr: []string{"checks[0].http.insecureSkipVerify: Invalid value: true: must not be set together with caFile"}},
		{name: "relative exec", modify: func(c *agentv1alpha1.AgentConfig) { c.Checks[2].Exec.Command = []string{"check"} },
			wantErr: []string{`checks[2].exec.command[0]: Invalid value: "check": must be the absolute path`}},
		{name: "timeout over interval", modify: func(c *agentv1alpha1.AgentConfig) { c.Checks[1].Timeout = dur(2 * time.Second) },
			wantErr: []string{`checks[1].timeout: Invalid value: "2s": must be at most the interval (1s)`}},
		{name: "interval too short", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Checks[1].Interval = dur(10 * time.Millisecond)
			c.Checks[1].Timeout = nil
		},
			wantErr: []string{`checks[1].interval: Invalid value: "10ms": must be between 100ms and 1h0m0s`}},
		{name: "rise and fall", modify: func(c *agentv1alpha1.AgentConfig) {
			c.Checks[2].Rise = ptr[int32](0)
			c.Checks[2].Fall = ptr[int32](101)
		},
			wantErr: []string{"checks[2].rise: Invalid value: 0: must be between 1 and 100", "checks[2].fall: Invalid value: 101"}},
		{name: "unknown tracked check", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].TrackChecks[1].Check = "nope" },
			wantErr: []string{`virtualRouters[0].trackChecks[1].check: Not found: "nope"`}},
		{name: "tracked twice", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].TrackChecks[1].Check = "apiserver" },
			wantErr: []string{`virtualRouters[0].trackChecks[1].check: Duplicate value: "apiserver"`}},
		{name: "weight out of range", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].TrackChecks[1].Weight = -255 },
			wantErr: []string{"virtualRouters[0].trackChecks[1].weight: Invalid value: -255: must be between -254 and 254"}},
		{name: "preemptAfterChecks without checks", modify: func(c *agentv1alpha1.AgentConfig) { c.VirtualRouters[0].TrackChecks = nil },
			wantErr: []string{"virtualRouters[0].preemptAfterChecks: Invalid value: true: needs trackChecks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withChecks()
			tt.modify(c)
			errs := ValidateAgentConfig(c)
			got := listErrors(errs)
			if len(tt.wantErr) == 0 && len(errs) > 0 {
				t.Fatalf("unexpected errors:\n%s", got)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(got, w) {
					t.Errorf("errors do not contain %q:\n%s", w, got)
				}
			}
		})
	}
}
