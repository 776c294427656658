package ipvse2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/vm"
)

const ipvsPkg = "github.com/vipvs/vipvs/agent/ipvs"

// kernelTests are the tests of agent/ipvs that need IPVS; each must PASS in
// the VM (not skip).
var kernelTests = []string{
	"TestKernelFromEmpty",
	"TestKernelConfigChange",
	"TestKernelForeignDeleteComesBack",
	"TestKernelForeignServiceUntouched",
	"TestKernelApplyErrors",
	"TestKernelLocalReal",
}

func build(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ipvs.test")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := vm.BuildTestBinary(ctx, ipvsPkg, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// run boots the VM with the binary and returns the result and the console,
// logged in full when the test fails.
func run(t *testing.T, bin string, args []string, timeout time.Duration) (vm.Result, string) {
	t.Helper()
	var console strings.Builder
	res, err := vm.Run(context.Background(), vm.Options{
		Binaries: []vm.Binary{{Path: bin, Args: args}},
		Stdout:   &console,
		Timeout:  timeout,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", console.String())
		}
	})
	t.Logf("accel=%s build=%s boot=%s ready=%s total=%s", res.Accel, res.Build.Round(time.Millisecond),
		res.Boot.Round(time.Millisecond), res.Ready.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return res, console.String()
}

// TestIPVSInVM runs agent/ipvs's kernel tests inside the VM.
func TestIPVSInVM(t *testing.T) {
	vm.RequireDeps(t)
	bin := build(t)
	res, console := run(t, bin, []string{"-test.v", "-test.count=1", "-test.run", "^(" + strings.Join(kernelTests, "|") + ")$"}, 5*time.Minute)
	if res.ExitStatus != 0 {
		t.Errorf("exit status %d, want 0", res.ExitStatus)
	}
	for _, name := range kernelTests {
		if !strings.Contains(console, "--- PASS: "+name+" (") {
			t.Errorf("console lacks a PASS line for %s", name)
		}
	}
	for _, l := range strings.Split(console, "\n") {
		if strings.Contains(l, "--- PASS: TestKernel") || strings.Contains(l, "reads back as") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

var benchLine = regexp.MustCompile(`^Benchmark\w+/\S+\s+\d+\s+.*ns/op`)

// TestBenchmarkInVM runs BenchmarkReconcile inside the VM when
// VIPVS_IPVS_BENCH=1 and logs its figures; it asserts nothing about speed.
func TestBenchmarkInVM(t *testing.T) {
	if os.Getenv("VIPVS_IPVS_BENCH") != "1" {
		t.Skip("set VIPVS_IPVS_BENCH=1 to run BenchmarkReconcile in the VM")
	}
	vm.RequireDeps(t)
	bin := build(t)
	res, console := run(t, bin, []string{"-test.run", "^$", "-test.bench", envOr("VIPVS_IPVS_BENCH_RE", "^BenchmarkReconcile$"), "-test.benchtime", envOr("VIPVS_IPVS_BENCHTIME", "1s")}, 20*time.Minute)
	if res.ExitStatus != 0 {
		t.Errorf("exit status %d, want 0", res.ExitStatus)
	}
	n := 0
	for _, l := range strings.Split(console, "\n") {
		if l = strings.TrimSpace(l); benchLine.MatchString(l) {
			t.Log(l)
			n++
		}
	}
	if n == 0 {
		t.Error("no benchmark results on the console")
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
