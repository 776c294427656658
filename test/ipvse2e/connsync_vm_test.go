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

// connSyncTests are the connection-survival tests of test/ipvse2e/lb
// (connsync_test.go); each must PASS in the VM. VIPVS_SYNC_TESTS (a
// regular expression of test names) runs a subset.
var connSyncTests = []string{
	"TestConnSyncNAT",
	"TestConnSyncDR",
	"TestConnSyncTunnel",
	"TestConnSyncOffNAT",
	"TestConnSyncOffDR",
}

// TestConnSyncInVM boots the VM with the vipvs binary and test/ipvse2e/lb's
// test binary and runs the connection-survival tests: 100 long-lived TCP
// connections through the VIP survive a hard failover, a preemption back,
// a graceful stop and a preemption back after a restart, for NAT, DR and
// tunnel, and break without the connection sync. VIPVS_SYNC_CONNS sets
// the number of connections (default 100).
func TestConnSyncInVM(t *testing.T) {
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
	run := "^(" + strings.Join(connSyncTests, "|") + ")$"
	want := connSyncTests
	if re := os.Getenv("VIPVS_SYNC_TESTS"); re != "" {
		run, want = re, nil
	}
	env := []string{"VIPVS_BIN=/opt/vipvs/vipvs"}
	if n := os.Getenv("VIPVS_SYNC_CONNS"); n != "" {
		env = append(env, "VIPVS_SYNC_CONNS="+n)
	}
	var console strings.Builder
	res, err := vm.Run(context.Background(), vm.Options{
		Binaries: []vm.Binary{{
			Path: testBin,
			Args: []string{"-test.v", "-test.count=1", "-test.timeout=14m", "-test.run", run},
			Env:  env,
		}},
		Files:     []vm.File{{Src: vipvs, Dst: "/opt/vipvs/vipvs", Mode: 0o755}},
		Stdout:    &console,
		Timeout:   15 * time.Minute,
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
