package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{name: "help", args: []string{"help"}, wantCode: 0, want: "vipvs-agent [agent] [flags]"},
		{name: "agent flags without a subcommand", args: []string{"-h"}, wantCode: 0, want: "Usage: vipvs agent [flags]"},
		{name: "agent subcommand", args: []string{"agent", "-h"}, wantCode: 0, want: "Usage: vipvs agent [flags]"},
		{name: "agent check of a missing file", args: []string{"--check", "--config", "/nonexistent/agent.yaml"}, wantCode: 1, want: "/nonexistent/agent.yaml"},
		{name: "status", args: []string{"status", "-h"}, wantCode: 0, want: "Usage: vipvs status [flags]"},
		{name: "version", args: []string{"version"}, wantCode: 0, want: "dev"},
		{name: "--version", args: []string{"--version"}, wantCode: 0, want: "dev"},
		{name: "unknown", args: []string{"operator"}, wantCode: 2, want: `unknown command "operator"`},
		{name: "agent rejects a stray argument", args: []string{"agent", "extra"}, wantCode: 2, want: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if code := run(tt.args, &out, &errOut); code != tt.wantCode {
				t.Errorf("exit %d, want %d; output:\n%s%s", code, tt.wantCode, out.String(), errOut.String())
			}
			if got := out.String() + errOut.String(); !strings.Contains(got, tt.want) {
				t.Errorf("output %q lacks %q", got, tt.want)
			}
		})
	}
}

// TestNoKubernetesClient checks what the agent binary links: no Kubernetes
// client, no controller-runtime, no API machinery beyond the small
// field-error and set packages that the config validation reports with.
func TestNoKubernetesClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"k8s.io/apimachinery/pkg/util/validation/field": true,
		"k8s.io/apimachinery/pkg/util/errors":           true,
		"k8s.io/apimachinery/pkg/util/sets":             true,
	}
	forbidden := []string{"k8s.io/client-go", "sigs.k8s.io/controller-runtime", "k8s.io/api/", "k8s.io/apimachinery/", "k8s.io/klog", "github.com/vipvs/vipvs/api/v1alpha1", "github.com/vipvs/vipvs/operator", "github.com/vipvs/vipvs/companion",
		// GoBGP runs in the speaker process (agentd/bgpspeaker, docs/bgp.md).
		"github.com/osrg/gobgp", "google.golang.org/grpc", "github.com/spf13/viper"}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 50 {
		t.Fatalf("go list -deps listed %d packages, want the agent's (more than 50):\n%s", len(pkgs), out)
	}
	for _, p := range pkgs {
		if allowed[p] {
			continue
		}
		for _, f := range forbidden {
			if strings.HasPrefix(p, f) {
				t.Errorf("the agent binary links %s (%s*): keep Kubernetes clients, the LoadBalancerConfig types and GoBGP (agent/bgp, which the speaker process links) out of agent/", p, f)
			}
		}
	}
}
