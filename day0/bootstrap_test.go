package day0

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestRenderBootstrap renders the control plane with a bootstrap node for
// OpenShift and compares every written file with testdata/bootstrap/
// (go test ./day0 -update rewrites them): the bootstrap node's files under
// its name, the masters' MachineConfig without them, and the bootstrap
// node's Ignition config.
func TestRenderBootstrap(t *testing.T) {
	dir := workdir(t, map[string]string{"lbc.yaml": validLBC, "nodes.yaml": validNodes})
	code, stdout, stderr := run(dir, "--config", "DIR/lbc.yaml", "--nodes", "DIR/nodes.yaml", "--out", "DIR/out", "--image", testImage,
		"--openshift", "--bootstrap", "bootstrap=192.0.2.19")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	for _, want := range []string{
		"bootstrap (configHash ", ", the bootstrap node)",
		"Ignition config of the bootstrap node bootstrap (merge into bootstrap.ign):\n    openshift/bootstrap-vipvs-api.ign",
		"Wrote 10 files under",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, stdout)
		}
	}
	got := tree(t, filepath.Join(dir, "out"))
	golden := filepath.Join("testdata", "bootstrap")
	if *update {
		if err := os.RemoveAll(golden); err != nil {
			t.Fatal(err)
		}
		for rel, f := range got {
			p := filepath.Join(golden, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(f.Data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := tree(t, golden)
	// The golden files are all 0644 in git; compare contents only, and the
	// modes by rule.
	gotData, wantData := map[string]string{}, map[string]string{}
	for rel, f := range got {
		gotData[rel] = f.Data
		if f.Mode != 0o644 {
			t.Errorf("%s: mode %04o, want 0644 (no password)", rel, f.Mode)
		}
	}
	for rel, f := range want {
		wantData[rel] = f.Data
	}
	if diff := cmp.Diff(wantData, gotData); diff != "" {
		var names []string
		for n := range gotData {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Errorf("written files differ from %s (-want +got); run go test ./day0 -update and review the diff:\n%s\nwritten: %v", golden, diff, names)
	}
	if mc := got["openshift/99-master-vipvs-api.yaml"].Data; strings.Contains(mc, "bootstrap") {
		t.Errorf("the masters' MachineConfig holds the bootstrap node's files:\n%s", mc)
	}
}

func TestBootstrapFlag(t *testing.T) {
	tests := []struct {
		value, err string
	}{
		{"bootstrap=192.0.2.19", ""},
		{"bootstrap=192.0.2.19,2001:db8::19", ""},
		{"bootstrap", "want NAME=ADDRESS"},
		{"=192.0.2.19", "want NAME=ADDRESS"},
		{"Bootstrap=192.0.2.19", "must be a Kubernetes node name"},
		{"bootstrap=192.0.2.300", `address "192.0.2.300" of bootstrap: not an IP address`},
	}
	for _, tt := range tests {
		var b bootstrapFlag
		err := b.Set(tt.value)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.value, err)
		case tt.err == "" && b.String() != tt.value:
			t.Errorf("%q: read back as %q", tt.value, b.String())
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want one saying %q", tt.value, err, tt.err)
		}
	}
	var b bootstrapFlag
	if err := b.Set("a=192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Set("b=192.0.2.2"); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("a second --bootstrap: %v", err)
	}
}
