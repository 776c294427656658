package companion

import (
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{name: "help", args: []string{"-h"}, code: 0, want: []string{"Usage: vipvs node", "static pod first", "load_balancer_config", "-host-root", "-node-name", "-status-interval"}},
		{name: "no node name", args: nil, code: 2, want: []string{"--node-name is required"}},
		{name: "no host root", args: []string{"--node-name=m0", "--host-root=/nonexistent/host"}, code: 2, want: []string{"--host-root /nonexistent/host is not a directory"}},
		{name: "bad interval", args: []string{"--node-name=m0", "--status-interval=0s"}, code: 2, want: []string{"--status-interval must be positive"}},
		{name: "unexpected argument", args: []string{"--node-name=m0", "extra"}, code: 2, want: []string{`unexpected argument "extra"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NODE_NAME", "")
			var out, errOut strings.Builder
			if code := Command(tt.args, &out, &errOut); code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut.String())
			}
			got := out.String() + errOut.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
		})
	}
}
