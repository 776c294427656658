package operator

import (
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  string
		code int
		want []string
	}{
		{name: "help", args: []string{"-h"}, code: 0, want: []string{"Usage: vipvs operator", "vipvs.io/forget-nodes", "-leader-elect", "-image", "-namespace", "-manage-node-daemonset"}},
		{name: "no image", args: nil, code: 2, want: []string{"--image is required (or set $VIPVS_IMAGE)"}},
		{name: "unexpected argument", args: []string{"--image=x", "extra"}, code: 2, want: []string{`unexpected argument "extra"`}},
		{name: "bad flag", args: []string{"--nope"}, code: 2, want: []string{"flag provided but not defined: -nope"}},
		{name: "bad log format", args: []string{"--image=x", "--log-format=xml"}, code: 2, want: []string{`invalid --log-format "xml"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("VIPVS_IMAGE", tt.env)
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

func TestNodeFilesName(t *testing.T) {
	if got := NodeFilesName("api", "master-0"); got != "vipvs-api-master-0" {
		t.Errorf("NodeFilesName = %q", got)
	}
	long := strings.Repeat("n", 250)
	got := NodeFilesName("api", long)
	if len(got) > 253 || !strings.HasPrefix(got, "vipvs-api-nnn") {
		t.Errorf("NodeFilesName of a long node name = %q (%d characters)", got, len(got))
	}
	if NodeFilesName("api", long+"x") == got {
		t.Error("two long names give one Secret name")
	}
}
