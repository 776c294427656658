package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfigCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: agent.vipvs.io/v1alpha1\nkind: AgentConfig\ninterface: eth0\nvirtualRouters:\n- name: api\n  vrid: 0\n  priority: 300\n  vips: [192.0.2.100/24]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{name: "valid", args: []string{"--check", "--config", "config/testdata/tracking.yaml"}, wantCode: 0, wantStdout: "valid, 1 virtual router(s), 4 check(s)"},
		{name: "invalid lists every problem", args: []string{"--check", "--config", bad}, wantCode: 1,
			wantStderr: []string{"invalid, 2 problem(s):", "  - virtualRouters[0].vrid: Invalid value: 0: must be between 1 and 255", "  - virtualRouters[0].priority: Invalid value: 300"}},
		{name: "missing file", args: []string{"--check", "--config", filepath.Join(dir, "none.yaml")}, wantCode: 1, wantStderr: []string{"no such file"}},
		{name: "unknown flag", args: []string{"--bogus"}, wantCode: 2, wantStderr: []string{"flag provided but not defined: -bogus"}},
		{name: "help", args: []string{"-h"}, wantCode: 0, wantStderr: []string{"Usage: vipvs agent", "SIGTERM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := Command(tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, errOut.String())
			}
			if !strings.Contains(out.String(), tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.wantStdout)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
		})
	}
}
