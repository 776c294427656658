package vm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vipvs/vipvs/test/vm"
)

// The packages these tests boot.
const (
	vmcheckPkg = "github.com/vipvs/vipvs/test/vm/internal/vmcheck"
	labPkg     = "github.com/vipvs/vipvs/test/lab"
)

// build compiles pkg's tests into the test's temporary directory.
func build(t *testing.T, pkg, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := vm.BuildTestBinary(ctx, pkg, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// run boots the VM and returns the result and the console; the console is
// logged when the test fails.
func run(t *testing.T, o vm.Options) (vm.Result, string, error) {
	t.Helper()
	var console strings.Builder
	o.Stdout = &console
	o.ConsoleLog = filepath.Join(t.TempDir(), "console.log")
	res, err := vm.Run(context.Background(), o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", console.String())
		}
	})
	t.Logf("accel=%s build=%s boot=%s (guest uptime %s) ready=%s total=%s",
		res.Accel, res.Build.Round(time.Millisecond), res.Boot.Round(time.Millisecond),
		res.KernelUptime.Round(time.Millisecond), res.Ready.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	b, rerr := os.ReadFile(o.ConsoleLog)
	if rerr != nil || string(b) != console.String() {
		t.Errorf("console log differs from the streamed console (read error %v)", rerr)
	}
	return res, console.String(), err
}

func requireLines(t *testing.T, console string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(console, "\n") {
		have[strings.TrimSpace(l)] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("console lacks the line %q", l)
		}
	}
}

// TestVMCheck boots the VM and proves that IPVS, namespaces, veth, bridges
// and nftables with NAT work inside, and that the test's verdicts come back
// through the console.
func TestVMCheck(t *testing.T) {
	vm.RequireDeps(t)
	bin := build(t, vmcheckPkg, "vmcheck.test")
	res, console, err := run(t, vm.Options{Binaries: []vm.Binary{{Path: bin, Args: []string{"-test.v"}}}, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitStatus != 0 {
		t.Errorf("exit status %d, want 0", res.ExitStatus)
	}
	if diff := cmp.Diff([]vm.BinaryStatus{{Name: "vmcheck.test", Status: 0}}, res.Binaries); diff != "" {
		t.Errorf("binaries (-want +got):\n%s", diff)
	}
	requireLines(t, console, "PASS")
	for _, name := range []string{"TestModulesLoaded", "TestIPVSFamily", "TestNamespaceVethBridge", "TestNftablesNAT"} {
		if !strings.Contains(console, "--- PASS: "+name+" (") {
			t.Errorf("console lacks a PASS line for %s", name)
		}
	}
}

// TestFailureIsReported proves that a failing test inside the VM yields a
// non-zero status, and that later binaries still run.
func TestFailureIsReported(t *testing.T) {
	vm.RequireDeps(t)
	bin := build(t, vmcheckPkg, "vmcheck.test")
	res, console, err := run(t, vm.Options{
		Binaries: []vm.Binary{
			{Path: bin, Name: "fail.test", Args: []string{"-test.v", "-test.run", "^TestWantFail$"}, Env: []string{"VMCHECK_FAIL=1"}},
			{Path: bin, Name: "pass.test", Args: []string{"-test.run", "^TestIPVSFamily$"}},
		},
		Timeout: 3 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitStatus == 0 {
		t.Errorf("exit status 0 after a failing test")
	}
	want := []vm.BinaryStatus{{Name: "fail.test", Status: 1}, {Name: "pass.test", Status: 0}}
	if diff := cmp.Diff(want, res.Binaries); diff != "" {
		t.Errorf("binaries (-want +got):\n%s", diff)
	}
	if !strings.Contains(console, "--- FAIL: TestWantFail (") {
		t.Errorf("console lacks the FAIL line")
	}
}

// TestTimeoutKillsQemu proves that a hung VM is killed at the timeout, that
// the error says so and that no temporary files stay behind.
func TestTimeoutKillsQemu(t *testing.T) {
	vm.RequireDeps(t)
	bin := build(t, vmcheckPkg, "vmcheck.test")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // Run's work directory goes here
	start := time.Now()
	const limit = 15 * time.Second
	res, console, err := run(t, vm.Options{
		Binaries: []vm.Binary{{Path: bin, Args: []string{"-test.v", "-test.run", "^TestHang$"}, Env: []string{"VMCHECK_HANG=1"}}},
		Timeout:  limit,
	})
	if !errors.Is(err, vm.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	t.Logf("error: %v", err)
	if took := time.Since(start); took > limit+30*time.Second {
		t.Errorf("Run returned after %s with a %s limit", took, limit)
	}
	if !strings.Contains(console, "hanging on purpose") {
		t.Logf("the VM did not reach the hanging test within %s (slow boot?): the kill hit the boot", limit)
	}
	if res.PID == 0 {
		t.Fatal("no qemu PID in the result")
	}
	if err := syscall.Kill(res.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("qemu pid %d still exists after Run (kill(0): %v)", res.PID, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("Run left %d entries in its temporary directory, e.g. %s", len(left), left[0].Name())
	}
}

// TestLabInVM runs the namespace lab's own tests, unchanged, inside the VM.
func TestLabInVM(t *testing.T) {
	vm.RequireDeps(t)
	if testing.Short() {
		t.Skip("boots the lab's whole test suite (about 10 s under TCG)")
	}
	bin := build(t, labPkg, "lab.test")
	res, console, err := run(t, vm.Options{
		Binaries: []vm.Binary{{Path: bin, Args: []string{"-test.v", "-test.timeout", "5m"}}},
		Timeout:  6 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitStatus != 0 {
		t.Errorf("lab tests exit status %d, want 0", res.ExitStatus)
	}
	requireLines(t, console, "PASS")
	if strings.Contains(console, "--- SKIP") {
		t.Errorf("lab tests skipped inside the VM")
	}
}
