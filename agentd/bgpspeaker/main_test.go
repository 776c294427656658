package main

import (
	"strings"
	"testing"
)

// TestRun drives the speaker as the agent does, with agent/bgp (GoBGP)
// behind it: its errors reach the agent, and the end of stdin stops it.
func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		in         string
		wantCode   int
		wantOut    []string
		wantErrOut string
	}{
		{name: "version", args: []string{"version"}, wantCode: 0, wantOut: []string{"dev"}},
		{name: "arguments refused", args: []string{"--config", "x"}, wantCode: 2, wantErrOut: "takes no arguments"},
		{name: "no config", in: "", wantCode: 1, wantErrOut: "closed before a config"},
		{
			name:     "invalid config, then malformed and early requests",
			in:       `{"v":1,"id":1,"op":"config","config":{"asn":0,"routerID":"192.0.2.11","peers":[],"bfd":{}}}` + "\n" + `{"v":1,"id":2,"op":"status","x":1}` + "\n" + `{"v":1,"id":3,"op":"status"}` + "\n",
			wantCode: 1,
			wantOut:  []string{`"id":1,"error":"bgp config: asn: 0 is not a usable AS number`, `"id":2,"error":"malformed message: json: unknown field \"x\""`, `"id":3,"error":"op: status before config`},
		},
		{
			name: "runs until stdin closes",
			in: `{"v":1,"id":1,"op":"config","config":{"asn":65001,"routerID":"192.0.2.11","peers":[{"address":"127.0.0.1","asn":65000,"port":1,"password":"k"}],"bfd":{}}}` + "\n" +
				`{"v":1,"id":2,"op":"advertise","addr":"203.0.113.10"}` + "\n" +
				`{"v":1,"id":3,"op":"advertise","addr":"127.0.0.1"}` + "\n" +
				`{"v":1,"id":4,"op":"reconfigure","config":{"asn":65002,"routerID":"192.0.2.11","peers":[{"address":"127.0.0.1","asn":65000}],"bfd":{}}}` + "\n",
			wantCode: 0,
			wantOut:  []string{`{"v":1,"id":1}`, `{"v":1,"id":2}`, `"id":3,"error":"bgp: advertise: \"127.0.0.1\" is not a global unicast address`, `{"v":1,"id":4,"restartNeeded":true}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if code := run(tt.args, strings.NewReader(tt.in), &out, &errOut); code != tt.wantCode {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.wantCode, out.String(), errOut.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %s:\n%s", w, out.String())
				}
			}
			if !strings.Contains(errOut.String(), tt.wantErrOut) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErrOut, errOut.String())
			}
			if strings.Contains(errOut.String(), `"k"`) {
				t.Errorf("the key is in the log:\n%s", errOut.String())
			}
		})
	}
}
