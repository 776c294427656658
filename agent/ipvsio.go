package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vipvs/vipvs/agent/balancer"
	"github.com/vipvs/vipvs/agent/ipvs"
)

// openIPVS opens the IPVS table of the agent's network namespace.
func openIPVS() (balancer.Table, error) {
	p, err := ipvs.New()
	if err != nil {
		return nil, err
	}
	return p, nil
}

// openSNAT opens the source NAT of NAT services; set once package snat
// exists.
var openSNAT func() (balancer.SourceNAT, error)

// prepareKernel sets the sysctls NAT services need: IPVS must keep
// conntrack entries (net.ipv4.vs.conntrack) for the source NAT to apply to
// forwarded connections, and the replies the source NAT brings back to the
// director are forwarded to the client.
func prepareKernel(ipv4NAT, ipv6NAT bool) error {
	var errs []error
	if ipv4NAT || ipv6NAT {
		errs = append(errs, writeSysctl("net/ipv4/vs/conntrack", "1"))
	}
	if ipv4NAT {
		errs = append(errs, writeSysctl("net/ipv4/ip_forward", "1"))
	}
	if ipv6NAT {
		errs = append(errs, writeSysctl("net/ipv6/conf/all/forwarding", "1"))
	}
	return errors.Join(errs...)
}

// writeSysctl sets /proc/sys/<name> when it differs.
func writeSysctl(name, value string) error {
	p := filepath.Join("/proc/sys", name)
	cur, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("reading sysctl %s: %w", strings.ReplaceAll(name, "/", "."), err)
	}
	if strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("setting sysctl %s=%s: %w", strings.ReplaceAll(name, "/", "."), value, err)
	}
	return nil
}
