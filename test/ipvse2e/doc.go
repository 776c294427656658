// Package ipvse2e runs the kernel tests of agent/ipvs inside the test VM
// (test/vm), whose kernel has IPVS: the host's has none. The tests here
// run on the host; they build agent/ipvs's test binary, boot the VM with
// it and assert that every IPVS test passed inside.
//
// VIPVS_IPVS_BENCH=1 also runs BenchmarkReconcile in the VM
// (TestBenchmarkInVM) and logs the figures.
package ipvse2e
