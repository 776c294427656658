package render

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
)

// bootstrapInput is the control plane of three masters with a bootstrap
// node.
func bootstrapInput(t *testing.T) Input {
	t.Helper()
	for _, tc := range goldenCases(t) {
		if tc.name == "bootstrap" {
			return tc.in
		}
	}
	t.Fatal("no golden case bootstrap")
	return Input{}
}

// agentConfigOf decodes the agent config of node n in out.
func agentConfigOf(t *testing.T, lbc string, out Output, n string) *agentv1alpha1.AgentConfig {
	t.Helper()
	for _, nf := range out.Nodes {
		if nf.NodeName != n {
			continue
		}
		for _, f := range nf.Files {
			if f.Path == AgentConfigPath(lbc, n) {
				c, err := agentv1alpha1.Decode(f.Data)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
		}
	}
	t.Fatalf("no agent config of node %s", n)
	return nil
}

// TestBootstrap checks what a bootstrap node changes: it has its own files,
// a priority one below the lowest master's, every node peers with it and
// sends to it as a selectedNodes backend; the MachineConfig of the masters
// leaves it out, and its Ignition config holds exactly its files.
func TestBootstrap(t *testing.T) {
	in := bootstrapInput(t)
	lbc := in.Config.Name
	out, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, nf := range out.Nodes {
		names = append(names, nf.NodeName)
		if nf.Bootstrap != (nf.NodeName == "bootstrap") {
			t.Errorf("node %s: Bootstrap %v", nf.NodeName, nf.Bootstrap)
		}
	}
	if want := []string{"bootstrap", "master-0", "master-1", "master-2"}; !slices.Equal(names, want) {
		t.Fatalf("nodes %v, want %v", names, want)
	}
	prios := map[string]int32{"bootstrap": 129, "master-0": 150, "master-1": 140, "master-2": 130}
	addr := map[string]string{"bootstrap": "192.0.2.19", "master-0": "192.0.2.11", "master-1": "192.0.2.12", "master-2": "192.0.2.13"}
	for n, prio := range prios {
		c := agentConfigOf(t, lbc, out, n)
		for _, vr := range c.VirtualRouters {
			if *vr.Priority != prio {
				t.Errorf("node %s router %s: priority %d, want %d", n, vr.Name, *vr.Priority, prio)
			}
			var want []string
			for o, a := range addr {
				if o != n {
					want = append(want, a)
				}
			}
			slices.Sort(want)
			if !slices.Equal(vr.UnicastPeers, want) {
				t.Errorf("node %s router %s: peers %v, want %v", n, vr.Name, vr.UnicastPeers, want)
			}
			for _, vs := range vr.VirtualServices {
				if !slices.ContainsFunc(vs.RealServers, func(rs agentv1alpha1.RealServer) bool { return rs.Address == "192.0.2.19" }) {
					t.Errorf("node %s service %s: real servers %+v lack the bootstrap node", n, vs.Name, vs.RealServers)
				}
			}
		}
	}

	mc, err := MachineConfig(lbc, "master", out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mc), "bootstrap") {
		t.Errorf("the masters' MachineConfig mentions the bootstrap node:\n%s", mc)
	}
	ign, err := BootstrapIgnition(lbc, out)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, ign)
	var cfg struct {
		Ignition struct {
			Version string `json:"version"`
		} `json:"ignition"`
		Storage struct {
			Files []struct {
				Path string `json:"path"`
			} `json:"files"`
		} `json:"storage"`
	}
	if err := json.Unmarshal(ign, &cfg); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range cfg.Storage.Files {
		paths = append(paths, f.Path)
	}
	if want := []string{StaticPodPath(lbc), AgentConfigPath(lbc, "bootstrap")}; cfg.Ignition.Version != IgnitionVersion || !slices.Equal(paths, want) {
		t.Errorf("ignition %s with files %v, want %s with %v", cfg.Ignition.Version, paths, IgnitionVersion, want)
	}

	// Without a bootstrap node there is no Ignition config to render.
	in.Bootstrap = nil
	plain, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BootstrapIgnition(lbc, plain); err == nil {
		t.Error("BootstrapIgnition without a bootstrap node: no error")
	}
}

func TestBootstrapRefused(t *testing.T) {
	tests := []struct {
		name      string
		bootstrap Node
		mutate    func(*v1alpha1.LoadBalancerConfig)
		field     string
		detail    string
	}{
		{"a member's name", Node{Name: "master-1", Addresses: addrs("192.0.2.19")}, nil, "nodes[3].name", "Duplicate"},
		{"a member's address", Node{Name: "bootstrap", Addresses: addrs("192.0.2.12")}, nil, "nodes[bootstrap].addresses[0]", "already an address of node master-1"},
		{"the VIP", Node{Name: "bootstrap", Addresses: addrs("192.0.2.10")}, nil, "nodes[bootstrap].addresses[0]", "virtual IP"},
		{"no priority below the members", Node{Name: "bootstrap", Addresses: addrs("192.0.2.19")}, func(c *v1alpha1.LoadBalancerConfig) {
			c.Spec.Priorities.ByNode[2].Priority = 1
		}, "spec.priorities", "needs a priority below every member's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := bootstrapInput(t)
			in.Config = in.Config.DeepCopy()
			if tt.mutate != nil {
				tt.mutate(in.Config)
			}
			in.Bootstrap = &tt.bootstrap
			_, err := Render(in)
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Render: %v, want an *InvalidError", err)
			}
			var found bool
			for _, fe := range inv.Errs {
				found = found || (fe.Field == tt.field && strings.Contains(fe.Error(), tt.detail))
			}
			if !found {
				t.Errorf("errors %v, want one of field %s saying %q", inv.Errs, tt.field, tt.detail)
			}
		})
	}
}
