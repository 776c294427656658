package ipvse2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// connSyncTests are the connection-survival tests of test/ipvse2e/lb
// (connsync_test.go); each must PASS in the VM. VIPVS_SYNC_TESTS (a
// regular expression of test names) runs a subset.
var connSyncTests = []string{
	"TestConnSyncNAT",
	"TestConnSyncDR",
	"TestConnSyncTunnel",
	"TestConnSyncNAT6",
	"TestConnSyncOffNAT",
	"TestConnSyncOffDR",
	"TestConnSyncAPIVIP",
}

// TestConnSyncInVM boots the VM with the vipvs binary and test/ipvse2e/lb's
// test binary and runs the connection-survival tests: 100 long-lived TCP
// connections through the VIP survive a hard failover, a preemption back,
// a graceful stop and a preemption back after a restart, for NAT, DR and
// tunnel, and break without the connection sync; in the API-VIP shape
// (the directors are the real servers) those balanced to a director that
// is neither the old nor the new master survive. VIPVS_SYNC_CONNS sets
// the number of connections (default 100).
func TestConnSyncInVM(t *testing.T) {
	run := "^(" + strings.Join(connSyncTests, "|") + ")$"
	want := connSyncTests
	if re := os.Getenv("VIPVS_SYNC_TESTS"); re != "" {
		run, want = re, nil
	}
	var env []string
	if n := os.Getenv("VIPVS_SYNC_CONNS"); n != "" {
		env = append(env, "VIPVS_SYNC_CONNS="+n)
	}
	runLBInVM(t, run, want, env, 15*time.Minute)
}
