package ipvse2e

import (
	"os"
	"testing"
	"time"
)

// TestBootstrapInVM boots the VM and runs test/ipvse2e/lb's
// TestBootstrapHandover: the API VIP's IPVS backends move from an
// installer's bootstrap node to the masters, with configs from the real
// renderer and the kernel's IPVS, and no probe of the VIP fails.
// VIPVS_BOOTSTRAP_SHUTDOWN_DELAY is passed on (see the test).
func TestBootstrapInVM(t *testing.T) {
	var env []string
	if v, ok := os.LookupEnv("VIPVS_BOOTSTRAP_SHUTDOWN_DELAY"); ok {
		env = append(env, "VIPVS_BOOTSTRAP_SHUTDOWN_DELAY="+v)
	}
	runLBInVM(t, "^TestBootstrapHandover$", []string{"TestBootstrapHandover"}, env, 10*time.Minute)
}
