package config

import (
	"strings"
	"testing"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// A router in mode bgp is valid API but not yet run by the agent: Parse
// says so rather than running it as a VRRP router with VRID 0.
func TestParseRejectsModeBGP(t *testing.T) {
	_, err := Parse([]byte(`apiVersion: agent.vipvs.io/v1alpha1
kind: AgentConfig
bgp:
  localASN: 65001
  peers:
  - address: 192.0.2.1
    asn: 65000
virtualRouters:
- name: ingress
  mode: bgp
  vips: [203.0.113.10]
`))
	if err == nil || !strings.Contains(err.Error(), "virtualRouters[0].mode: bgp is not supported by this agent yet") {
		t.Fatalf("Parse() = %v, want the mode bgp refusal", err)
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
