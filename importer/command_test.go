package importer

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/api/v1alpha1"
	apivalidation "github.com/vipvs/vipvs/api/validation"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/<name>.golden, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got), rerun with -update if this is intended:\n%s", path, diff)
	}
}

func openshiftArgs() []string {
	var args []string
	for _, n := range []string{"master-0", "master-1", "master-2"} {
		args = append(args, "--node", n+"=testdata/openshift/"+n+".conf")
	}
	return args
}

func kubeadmArgs() []string {
	var args []string
	for _, n := range []string{"cp-0", "cp-1", "cp-2"} {
		args = append(args, "--node", n+"=testdata/kubeadm/"+n+".conf")
	}
	return args
}

// TestCommand runs `vipvs import` on the configurations people run and
// on broken ones, and compares the YAML (stdout), the report (stderr) and
// the Secrets with golden files.
func TestCommand(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		secrets  bool // also write the Secrets and compare them
	}{
		{name: "openshift", args: append(openshiftArgs(), "--node-selector", "node-role.kubernetes.io/master="), secrets: true},
		{name: "openshift-one-node", args: []string{"-f", "testdata/openshift/master-0.conf"}},
		{name: "kubeadm", args: append(kubeadmArgs(), "--node-selector", "node-role.kubernetes.io/control-plane="), secrets: true},
		{name: "lvs-nat", args: []string{"-f", "testdata/lvs-nat.conf"}},
		{name: "lvs-dr", args: []string{"-f", "testdata/lvs-dr.conf", "--node-name", "lb-0"}},
		{name: "misc-check", args: []string{"testdata/misc-check.conf"}},
		{name: "dual-stack", args: []string{"-f", "testdata/dual-stack.conf", "--node-selector", "vipvs.io/edge=true"}},
		{name: "include", args: []string{"-f", "testdata/include/keepalived.conf"}},
		{name: "conditional", args: []string{"--node", "lb-a=testdata/conditional.conf", "--node", "lb-b=testdata/conditional.conf"}},
		{name: "conditional-unnamed", args: []string{"-f", "testdata/conditional.conf"}},

		{name: "unbalanced-open", args: []string{"-f", "testdata/malformed/unbalanced-open.conf"}, wantCode: 1},
		{name: "unbalanced-close", args: []string{"-f", "testdata/malformed/unbalanced-close.conf"}, wantCode: 1},
		{name: "unknown-top", args: []string{"-f", "testdata/malformed/unknown-top.conf"}, wantCode: 1},
		{name: "missing-vrid", args: []string{"-f", "testdata/malformed/missing-vrid.conf"}, wantCode: 1},
		{name: "bad-value", args: []string{"-f", "testdata/malformed/bad-value.conf"}, wantCode: 1},
		{name: "include-loop", args: []string{"-f", "testdata/malformed/include-loop.conf"}, wantCode: 1},
		{name: "nothing", args: []string{"-f", "testdata/malformed/nothing.conf"}, wantCode: 1},
		{name: "disagree", args: []string{"-f", "testdata/malformed/disagree-0.conf", "-f", "testdata/malformed/disagree-1.conf"}, wantCode: 1},
		{name: "missing-file", args: []string{"-f", "testdata/no-such.conf"}, wantCode: 1},

		{name: "usage-no-input", args: nil, wantCode: 2},
		{name: "usage-bad-node", args: []string{"--node", "master-0"}, wantCode: 2},
		{name: "usage-node-name-twice", args: []string{"--node-name", "a", "-f", "x.conf", "-f", "y.conf"}, wantCode: 2},
		{name: "usage-bad-selector", args: []string{"--node-selector", "novalue", "-f", "x.conf"}, wantCode: 2},
		{name: "usage-bad-node-name", args: []string{"--node", "Master_0=x.conf"}, wantCode: 2},
		{name: "usage-node-twice", args: []string{"--node", "a=x.conf", "--node", "a=y.conf"}, wantCode: 2},
		{name: "usage-same-out", args: []string{"--out", "o.yaml", "--secrets-out", "o.yaml", "-f", "x.conf"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			dir := t.TempDir()
			secrets := filepath.Join(dir, "secrets.yaml")
			if tt.secrets {
				args = append(args, "--secrets-out", secrets)
			}
			var stdout, stderr bytes.Buffer
			if code := Command(args, &stdout, &stderr); code != tt.wantCode {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			report := strings.ReplaceAll(stderr.String(), dir, "$TMPDIR")
			if tt.wantCode == 2 {
				// Usage errors: the message, not the whole usage text.
				report, _, _ = strings.Cut(report, "Usage:")
			}
			golden(t, t.Name()+".report", []byte(report))
			if tt.wantCode != 0 {
				if stdout.Len() > 0 {
					t.Errorf("stdout is not empty on failure:\n%s", stdout.String())
				}
				return
			}
			golden(t, t.Name()+".yaml", stdout.Bytes())
			if !tt.secrets {
				return
			}
			fi, err := os.Stat(secrets)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("the Secrets file has mode %v, want 0600", fi.Mode().Perm())
			}
			data, err := os.ReadFile(secrets)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, t.Name()+".secrets", data)
		})
	}
}

// TestReportHidesPasswords checks that no password reaches stdout or the
// report, in any import of the test configurations.
func TestReportHidesPasswords(t *testing.T) {
	passwords := []string{"ostest_api_vip", "ostest_a", "ostest_i", "lvspass"}
	for _, args := range [][]string{openshiftArgs(), kubeadmArgs(), {"-f", "testdata/lvs-nat.conf"}} {
		var stdout, stderr bytes.Buffer
		if code := Command(args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit status %d:\n%s", args, code, stderr.String())
		}
		for _, p := range passwords {
			if strings.Contains(stdout.String(), p) || strings.Contains(stderr.String(), p) {
				t.Errorf("%v: the output shows the password %q", args, p)
			}
		}
	}
}

// TestCommandOut checks --out: the YAML goes to the file, not stdout.
func TestCommandOut(t *testing.T) {
	out := filepath.Join(t.TempDir(), "lbc.yaml")
	var stdout, stderr bytes.Buffer
	if code := Command([]string{"-f", "testdata/lvs-dr.conf", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout is not empty with --out:\n%s", stdout.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "kind: LoadBalancerConfig") {
		t.Errorf("%s holds no LoadBalancerConfig:\n%s", out, data)
	}
}

// TestHelp checks that -h teaches with an example and exits 0.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Command([]string{"-h"}, &stdout, &stderr); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	for _, want := range []string{"vipvs import --node master-0=", "--secrets-out", "Exit status"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestGoldenConfigsValid decodes every golden LoadBalancerConfig strictly
// and validates it as `vipvs render` would, and each file's set together.
func TestGoldenConfigsValid(t *testing.T) {
	files, err := filepath.Glob("testdata/TestCommand/*.yaml.golden")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden LoadBalancerConfigs: run go test -update")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var set []v1alpha1.LoadBalancerConfig
		for i, doc := range strings.Split(string(data), "\n---\n") {
			var c v1alpha1.LoadBalancerConfig
			if err := yaml.UnmarshalStrict([]byte(doc), &c); err != nil {
				t.Errorf("%s: document %d: %v", f, i, err)
				continue
			}
			if c.Kind != "LoadBalancerConfig" || c.APIVersion != v1alpha1.GroupVersion.String() {
				t.Errorf("%s: document %d is a %s %s", f, i, c.APIVersion, c.Kind)
			}
			v1alpha1.SetDefaults(&c)
			for _, e := range apivalidation.ValidateLoadBalancerConfig(&c) {
				t.Errorf("%s: document %d: %v", f, i, e)
			}
			set = append(set, c)
		}
		for _, e := range apivalidation.ValidateLoadBalancerConfigSet(set) {
			t.Errorf("%s: %v", f, e)
		}
	}
}
