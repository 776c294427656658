// Package interop runs real keepalived and real vipvs agents in one virtual
// router, in network-namespace labs: node n2 runs keepalived 2.2.7 (the
// Debian package), nodes n1 and n3 run vipvs, and a client keeps opening
// connections to the VIP while the master is failed, stopped and restarted.
// It covers VRRPv3 multicast and VRRPv2 unicast with a password (the shape
// of OpenShift's on-premise keepalived.conf).
//
// The tests need root and /usr/sbin/keepalived. Without them they skip and
// say why, unless the CI environment variable is set: then they fail.
// VIPVS_INTEROP_STEADY (a Go duration) sets the steady-state window of
// TestSteadyState (default 60s, 10s with -short). VIPVS_BIN names a vipvs
// binary to test instead of building one from this module.
package interop

import (
	"fmt"
	"os"
	"testing"

	"github.com/vipvs/vipvs/test/agentlab"
)

// vipvsBin is the binary built once by TestMain (empty when not root).
var vipvsBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin, cleanup, err := agentlab.BinaryForTests("vipvs-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	vipvsBin = bin
	return m.Run()
}

// requireInterop skips the test when it cannot run here (not root, no
// keepalived), or fails it when CI is set.
func requireInterop(t *testing.T) {
	t.Helper()
	var why string
	switch {
	case os.Geteuid() != 0:
		why = "needs root: creates network namespaces and runs keepalived and vipvs in them"
	case vipvsBin == "":
		why = "the vipvs binary was not built"
	default:
		if _, err := os.Stat(agentlab.KeepalivedBin); err != nil {
			why = fmt.Sprintf("needs keepalived (apt-get install keepalived): %v", err)
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set but the interop test cannot run: %s", why)
	}
	t.Skip(why)
}
