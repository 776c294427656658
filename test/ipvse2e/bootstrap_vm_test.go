package ipvse2e

import (
	"testing"
	"time"
)

// TestBootstrapInVM boots the VM and runs test/ipvse2e/lb's
// TestBootstrapHandover: the API VIP's IPVS backends move from an
// installer's bootstrap node to the masters, with configs from the real
// renderer and the kernel's IPVS, and no probe of the VIP fails.
func TestBootstrapInVM(t *testing.T) {
	runLBInVM(t, "^TestBootstrapHandover$", []string{"TestBootstrapHandover"}, nil, 10*time.Minute)
}
