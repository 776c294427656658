package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vipvs/vipvs/test/lab"
)

// TestDemo runs `make demo`'s program to the end, unattended, and checks that
// it told the story: a master, the failover to n2 with the client's view, the
// preemption back to n1, and the clean-up (no namespace left behind).
func TestDemo(t *testing.T) {
	lab.RequireRoot(t)
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	before := netnsNames(t)
	cmd := exec.Command("go", "run", "./test/demo", "-vipvs", vipvsBin)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	t.Logf("demo output:\n%s", out)
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}
	for _, want := range []string{
		"n1   MASTER  150",
		"the VIP is now on n2",
		"n2   MASTER  100",
		"preemption back to n1",
		"cleaned up",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if after := netnsNames(t); len(after) > len(before) {
		t.Errorf("demo left namespaces behind: before %v, after %v", before, after)
	}
}

func netnsNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(lab.NetnsDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
