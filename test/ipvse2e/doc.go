// Package ipvse2e runs the kernel tests of agent/ipvs inside the test VM
// (test/vm), whose kernel has IPVS: the host's has none. The tests here
// run on the host; they build agent/ipvs's test binary, boot the VM with
// it and assert that every IPVS test passed inside.
//
// TestIPVSInVM also builds this package's own test binary and runs, in the
// same VM boot, the tests that only make sense with IPVS (snat_test.go:
// agent/snat's source NAT serving hairpin and outside clients of a NAT
// service). On the host those skip.
//
// VIPVS_IPVS_BENCH=1 also measures IPVS reconcile times in the VM
// (TestBenchmarkInVM, with RunFigures, which `make bench` uses too), next
// to keepalived's, and logs the section for BENCHMARKS.md;
// VIPVS_IPVS_GOBENCH runs agent/ipvs's Go benchmarks in the VM.
package ipvse2e
