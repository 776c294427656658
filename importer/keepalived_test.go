package importer

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// keepalivedNoise are the messages of `keepalived --config-test` that do
// not make a test configuration invalid: they come from the test machine,
// not from the configuration, or keepalived reports them and goes on.
var keepalivedNoise = []*regexp.Regexp{
	// OpenShift's passwords are longer than 8 characters: keepalived uses
	// the first 8, as it does on the clusters that run it.
	regexp.MustCompile(`Truncating auth_pass to 8 characters$`),
	// Scripts of the configuration live on the nodes, not here.
	regexp.MustCompile(`^Disabling track script \S+ since not found/accessible$`),
}

// keepalivedNonRootNoise are messages that only a run as non-root gives:
// keepalived then judges root-owned scripts insecure for the user it runs
// as.
var keepalivedNonRootNoise = []*regexp.Regexp{
	regexp.MustCompile(`^Disabling track script \S+ due to insecure$`),
	regexp.MustCompile(`^SECURITY VIOLATION - `),
}

// TestKeepalivedConfigTest checks with the real keepalived that the test
// configurations are what they claim: the valid ones pass `keepalived
// --config-test` and the malformed ones fail it. Interfaces need not exist
// on this machine: each file is included from a wrapper that sets
// global_defs' dynamic_interfaces.
func TestKeepalivedConfigTest(t *testing.T) {
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived is not installed (Debian: apt-get install keepalived): the test configurations are not checked against it")
	}
	help, _ := exec.Command(bin, "--help").CombinedOutput()
	if !bytes.Contains(help, []byte("--config-test")) {
		t.Skipf("%s has no --config-test option", bin)
	}
	tests := []struct {
		file  string
		valid bool
	}{
		{file: "testdata/openshift/master-0.conf", valid: true},
		{file: "testdata/openshift/master-1.conf", valid: true},
		{file: "testdata/openshift/master-2.conf", valid: true},
		{file: "testdata/kubeadm/cp-0.conf", valid: true},
		{file: "testdata/kubeadm/cp-1.conf", valid: true},
		{file: "testdata/kubeadm/cp-2.conf", valid: true},
		{file: "testdata/lvs-nat.conf", valid: true},
		{file: "testdata/lvs-dr.conf", valid: true},
		{file: "testdata/misc-check.conf", valid: true},
		{file: "testdata/dual-stack.conf", valid: true},
		{file: "testdata/include/keepalived.conf", valid: true},
		{file: "testdata/conditional.conf", valid: true},
		{file: "testdata/malformed/unbalanced-open.conf"},
		{file: "testdata/malformed/unbalanced-close.conf"},
		{file: "testdata/malformed/unknown-top.conf"},
		{file: "testdata/malformed/missing-vrid.conf"},
		{file: "testdata/malformed/bad-value.conf"},
	}
	noise := keepalivedNoise
	if os.Geteuid() != 0 {
		noise = append(append([]*regexp.Regexp{}, noise...), keepalivedNonRootNoise...)
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.file, "testdata/"), func(t *testing.T) {
			abs, err := filepath.Abs(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			wrapper := filepath.Join(t.TempDir(), "keepalived.conf")
			if err := os.WriteFile(wrapper, []byte("global_defs {\n    dynamic_interfaces\n}\ninclude "+abs+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, runErr := exec.CommandContext(ctx, bin, "--config-test", "-f", wrapper).CombinedOutput()
			var problems []string
			for _, line := range strings.Split(string(out), "\n") {
				msg := strings.TrimSpace(line)
				// "(file: Line N) message" -> "message"
				if i := strings.Index(msg, ") "); strings.HasPrefix(msg, "(") && i > 0 {
					msg = msg[i+2:]
				}
				if msg != "" && !matchesAny(noise, msg) {
					problems = append(problems, line)
				}
			}
			switch {
			case tt.valid && len(problems) > 0:
				t.Errorf("keepalived --config-test rejects %s (%v):\n%s", tt.file, runErr, strings.Join(problems, "\n"))
			case tt.valid && runErr != nil && len(out) == 0:
				t.Errorf("keepalived --config-test fails on %s without a message: %v", tt.file, runErr)
			case !tt.valid && (runErr == nil || len(problems) == 0):
				t.Errorf("keepalived --config-test accepts %s, which the test says is malformed:\n%s", tt.file, out)
			}
		})
	}
}

func matchesAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
