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
		{name: "no command", args: nil, wantCode: 2, want: "Commands:"},
		{name: "help", args: []string{"help"}, wantCode: 0, want: "agent     run the node agent"},
		{name: "unknown", args: []string{"frobnicate"}, wantCode: 2, want: `unknown command "frobnicate"`},
		{name: "version", args: []string{"version"}, wantCode: 0, want: "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if code := run(tt.args, &out, &errOut); code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			if got := out.String() + errOut.String(); !strings.Contains(got, tt.want) {
				t.Errorf("output %q lacks %q", got, tt.want)
			}
		})
	}
}
