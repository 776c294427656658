package ipvse2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// ecmpTests are the consistent-hashing tests of test/ipvse2e/lb
// (ecmp_test.go); each must PASS in the VM. VIPVS_ECMP_TESTS (a regular
// expression of test names) runs a subset.
var ecmpTests = []string{
	"TestECMPConsistentDR",
	"TestECMPConsistentTunnel",
	"TestECMPRoundRobinBreaks",
	"TestECMPNoSloppyBreaks",
}

// TestECMPInVM boots the VM with test/ipvse2e/lb's test binary and runs
// the consistent-hashing tests of bgp-mode VIPs (issue 14): long-lived TCP
// connections through a VIP that a router spreads over three directors
// with ECMP survive a director joining and one leaving, with mh and sloppy
// TCP, for DR and tunnel; with rr, or without sloppy TCP, they break.
// VIPVS_ECMP_CONNS sets the number of connections (default 60).
func TestECMPInVM(t *testing.T) {
	run := "^(" + strings.Join(ecmpTests, "|") + ")$"
	want := ecmpTests
	if re := os.Getenv("VIPVS_ECMP_TESTS"); re != "" {
		run, want = re, nil
	}
	var env []string
	if n := os.Getenv("VIPVS_ECMP_CONNS"); n != "" {
		env = append(env, "VIPVS_ECMP_CONNS="+n)
	}
	runLBInVM(t, run, want, env, 12*time.Minute)
}
