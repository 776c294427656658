package day0

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// staticPodsDir holds the checked-in examples.
const staticPodsDir = "../static-pods"

// staticPodsArgs are the flags of `make static-pods` for each example
// directory (keep the two in step), without --out.
var staticPodsArgs = map[string][]string{
	"control-plane": {"--config", staticPodsDir + "/input/control-plane.yaml", "--nodes", staticPodsDir + "/input/nodes.yaml",
		"--image", "quay.io/vipvs/vipvs:latest", "--openshift", "--role", "master"},
	"ingress": {"--config", staticPodsDir + "/input/ingress.yaml", "--nodes", staticPodsDir + "/input/nodes.yaml",
		"--image", "quay.io/vipvs/vipvs:latest", "--openshift", "--role", "master"},
	"ingress-bgp": {"--config", staticPodsDir + "/input/bgp.yaml", "--nodes", staticPodsDir + "/input/nodes.yaml",
		"--secret-file", "vipvs/bgp-tor/password=" + staticPodsDir + "/input/bgp-md5.key",
		"--image", "quay.io/vipvs/vipvs:latest", "--openshift", "--role", "master"},
}

// TestStaticPodsUpToDate renders the inputs of static-pods/ as `make
// static-pods` does and compares every file with the checked-in one.
func TestStaticPodsUpToDate(t *testing.T) {
	for _, name := range []string{"control-plane", "ingress", "ingress-bgp"} {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			var stdout, stderr bytes.Buffer
			args := append(slices.Clone(staticPodsArgs[name]), "--out", tmp)
			if code := Command(args, &stdout, &stderr); code != 0 {
				t.Fatalf("vipvs render %s: exit %d:\n%s", strings.Join(args, " "), code, stderr.String())
			}
			want := readTree(t, tmp)
			got := readTree(t, filepath.Join(staticPodsDir, name))
			var problems []string
			for path, data := range want {
				old, ok := got[path]
				switch {
				case !ok:
					problems = append(problems, "missing: "+path)
				case !bytes.Equal(old, data):
					problems = append(problems, "differs: "+path)
				}
			}
			for path := range got {
				if _, ok := want[path]; !ok {
					problems = append(problems, "not rendered any more: "+path)
				}
			}
			if len(problems) > 0 {
				slices.Sort(problems)
				t.Errorf("static-pods/ is out of date: run make static-pods\n(static-pods/%s: %s)", name, strings.Join(problems, "; "))
			}
		})
	}
}

// readTree reads every regular file under dir, by slash-separated path
// relative to dir. File modes are not compared: git keeps only the
// executable bit.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return files
}
