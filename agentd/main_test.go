package main

import (
	"strings"
	"testing"
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
