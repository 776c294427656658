package config

import (
	"strings"
	"testing"
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
