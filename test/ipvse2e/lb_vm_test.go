package ipvse2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/vm"
)

const lbPkg = lbPackage

// lbTests are the tests of test/ipvse2e/lb; each must PASS in the VM.
var lbTests = []string{
	"TestNATBalancing",
	"TestDirectRouting",
	"TestTunnel",
	"TestOwnedAfterRestart",
	"TestBootstrapHandover",
}

// TestLoadBalancingInVM boots the VM with the vipvs binary and the test
// binary of test/ipvse2e/lb: three directors running the agent, three real
// servers and a client in namespaces, with the kernel's IPVS; and, in the
// same boot, TestBootstrapHandover: the API VIP's IPVS backends move from
// an installer's bootstrap node to the masters, with configs from the real
// renderer. VIPVS_BOOTSTRAP_SHUTDOWN_DELAY is passed on (see that test).
func TestLoadBalancingInVM(t *testing.T) {
	var env []string
	if v, ok := os.LookupEnv("VIPVS_BOOTSTRAP_SHUTDOWN_DELAY"); ok {
		env = append(env, "VIPVS_BOOTSTRAP_SHUTDOWN_DELAY="+v)
	}
	runLBInVM(t, "^("+strings.Join(lbTests, "|")+")$", lbTests, env, 16*time.Minute)
}

// runLBInVM boots the VM with the vipvs binary and test/ipvse2e/lb's test
// binary, runs the lb tests that match run (with env added to
// VIPVS_BIN) within timeout, and checks that each of want passed.
func runLBInVM(t *testing.T, run string, want, env []string, timeout time.Duration) {
	t.Helper()
	vm.RequireDeps(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	testBin := filepath.Join(dir, "lb.test")
	if err := vm.BuildTestBinary(ctx, lbPkg, testBin); err != nil {
		t.Fatal(err)
	}
	vipvs, err := agentlab.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	res, err := vm.Run(context.Background(), vm.Options{
		Binaries: []vm.Binary{{
			Path: testBin,
			Args: []string{"-test.v", "-test.count=1", "-test.timeout=" + (timeout - time.Minute).String(), "-test.run", run},
			Env:  append([]string{"VIPVS_BIN=/opt/vipvs/vipvs"}, env...),
		}},
		Files:     []vm.File{{Src: vipvs, Dst: "/opt/vipvs/vipvs", Mode: 0o755}},
		Stdout:    &console,
		Timeout:   timeout,
		MemoryMiB: 1536,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", console.String())
		}
	})
	t.Logf("accel=%s boot=%s total=%s", res.Accel, res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitStatus != 0 {
		t.Errorf("exit status %d, want 0", res.ExitStatus)
	}
	for _, name := range want {
		if !strings.Contains(console.String(), "--- PASS: "+name+" (") {
			t.Errorf("console lacks a PASS line for %s", name)
		}
	}
	for _, l := range strings.Split(console.String(), "\n") {
		if strings.Contains(l, "_test.go:") || strings.Contains(l, "--- ") {
			t.Log(strings.TrimSpace(l))
		}
	}
}
