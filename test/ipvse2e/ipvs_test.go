package ipvse2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/vm"
)

// kernelTests are the tests of agent/ipvs that need IPVS; each must PASS in
// the VM (not skip).
var kernelTests = []string{
	"TestKernelFromEmpty",
	"TestKernelConfigChange",
	"TestKernelForeignDeleteComesBack",
	"TestKernelForeignServiceUntouched",
	"TestKernelApplyErrors",
	"TestKernelLocalReal",
	"TestKernelReconcileChanged",
	"TestKernelHashingOrder",
}

// selfPkg is this package: its snat_test.go runs inside the VM.
const selfPkg = "github.com/vipvs/vipvs/test/ipvse2e"

// build compiles pkg's tests into the test's temporary directory as name.
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

// run boots the VM with the binaries and returns the result and the
// console, logged in full when the test fails.
func run(t *testing.T, binaries []vm.Binary, timeout time.Duration) (vm.Result, string) {
	t.Helper()
	var console strings.Builder
	res, err := vm.Run(context.Background(), vm.Options{
		Binaries: binaries,
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

// TestIPVSInVM runs agent/ipvs's kernel tests and this package's own
// in-VM tests (snatTests, the source NAT of agent/snat) in one VM boot.
func TestIPVSInVM(t *testing.T) {
	vm.RequireDeps(t)
	binaries := []vm.Binary{
		{Path: build(t, ipvsPkg, "ipvs.test"), Args: []string{"-test.v", "-test.count=1", "-test.run", "^(" + strings.Join(kernelTests, "|") + ")$"}},
		{Path: build(t, selfPkg, "ipvse2e.test"), Args: []string{"-test.v", "-test.count=1", "-test.run", "^(" + strings.Join(snatTests, "|") + ")$"}},
	}
	res, console := run(t, binaries, 5*time.Minute)
	if res.ExitStatus != 0 {
		t.Errorf("exit status %d, want 0", res.ExitStatus)
	}
	for _, name := range append(append([]string(nil), kernelTests...), snatTests...) {
		if !strings.Contains(console, "--- PASS: "+name+" (") {
			t.Errorf("console lacks a PASS line for %s", name)
		}
	}
	for _, l := range strings.Split(console, "\n") {
		if strings.Contains(l, "--- PASS: TestKernel") || strings.Contains(l, "reads back as") ||
			strings.Contains(l, "--- PASS: TestSNAT") || strings.Contains(l, "snat_test.go") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

// TestBenchmarkInVM measures IPVS reconcile times in the VM (RunFigures,
// as `make bench` does) when VIPVS_IPVS_BENCH=1 and logs the section for
// BENCHMARKS.md; it asserts nothing about speed. VIPVS_IPVS_BENCH_REPS (5),
// VIPVS_IPVS_BENCH_SIZES (10,100,1000), VIPVS_IPVS_BENCH_KEEPALIVED (the
// keepalived binary, /usr/sbin/keepalived if installed; "none" to skip)
// tune it, and VIPVS_IPVS_BENCH_OUT
// names a file (BENCHMARKS.md) whose section it replaces.
func TestBenchmarkInVM(t *testing.T) {
	if os.Getenv("VIPVS_IPVS_BENCH") != "1" {
		t.Skip("set VIPVS_IPVS_BENCH=1 to measure IPVS reconcile times in the VM")
	}
	vm.RequireDeps(t)
	var o FigureOptions
	if v := os.Getenv("VIPVS_IPVS_BENCH_REPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("VIPVS_IPVS_BENCH_REPS=%q: %v", v, err)
		}
		o.Reps = n
	}
	for _, v := range strings.Split(envOr("VIPVS_IPVS_BENCH_SIZES", "10,100,1000"), ",") {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("VIPVS_IPVS_BENCH_SIZES: %q: %v", v, err)
		}
		o.Sizes = append(o.Sizes, n)
	}
	switch ka := os.Getenv("VIPVS_IPVS_BENCH_KEEPALIVED"); ka {
	case "none":
	case "":
		if _, err := os.Stat(defaultKeepalived); err == nil {
			o.Keepalived = defaultKeepalived
		}
	default:
		o.Keepalived = ka
	}
	var console strings.Builder
	o.Stdout = &console
	f, err := RunFigures(context.Background(), o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", console.String())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	md := f.Markdown()
	t.Logf("\n%s", md)
	if out := os.Getenv("VIPVS_IPVS_BENCH_OUT"); out != "" {
		doc, err := os.ReadFile(out)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, []byte(UpdateSection(string(doc), md)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", out)
	}
}

// defaultKeepalived is where Debian installs keepalived.
const defaultKeepalived = "/usr/sbin/keepalived"

var benchLine = regexp.MustCompile(`^Benchmark\w+/\S+\s+\d+\s+.*ns/op`)

// TestGoBenchmarksInVM runs agent/ipvs's Go benchmarks matching
// VIPVS_IPVS_GOBENCH (e.g. "BenchmarkReconcile$") inside the
// VM, -benchtime VIPVS_IPVS_BENCHTIME (1s), and logs their lines.
func TestGoBenchmarksInVM(t *testing.T) {
	re := os.Getenv("VIPVS_IPVS_GOBENCH")
	if re == "" {
		t.Skip("set VIPVS_IPVS_GOBENCH to a regexp of agent/ipvs benchmarks to run them in the VM")
	}
	vm.RequireDeps(t)
	bin := build(t, ipvsPkg, "ipvs.test")
	args := []string{"-test.run", "^$", "-test.bench", re, "-test.benchtime", envOr("VIPVS_IPVS_BENCHTIME", "1s")}
	res, console := run(t, []vm.Binary{{Path: bin, Args: args}}, 30*time.Minute)
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
