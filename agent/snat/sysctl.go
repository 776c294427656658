package snat

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNoIPVS means the kernel has no IPVS: /proc/sys/net/ipv4/vs does not
// exist in the network namespace.
var ErrNoIPVS = errors.New("snat: the kernel has no IPVS (no net.ipv4.vs sysctls; module ip_vs not loaded?)")

// Sysctls EnableConntrack sets, as paths below /proc/sys.
const (
	sysctlVSConntrack = "net/ipv4/vs/conntrack"
	sysctlIPv4Forward = "net/ipv4/ip_forward"
	sysctlIPv6Forward = "net/ipv6/conf/all/forwarding"
	// The conntrack sysctls exist once nf_conntrack is loaded (the nat
	// table loads it); EnableTakeover sets them when present.
	sysctlTCPLoose   = "net/netfilter/nf_conntrack_tcp_loose"
	sysctlTCPLiberal = "net/netfilter/nf_conntrack_tcp_be_liberal"
)

// EnableConntrack sets, in the network namespace of the calling OS thread
// (lock it and setns first to target another):
//
//   - net.ipv4.vs.conntrack=1, always: IPVS then keeps conntrack up to date
//     for the connections it forwards (both families), so that the rules
//     of a Manager match them;
//   - net.ipv4.ip_forward=1 for IPv4, net.ipv6.conf.all.forwarding=1 for
//     IPv6: the director forwards the real servers' answers.
//
// It reads each sysctl first and writes only one that is not already 1, in
// that order, and stops at the first error. Without IPVS it returns an
// error wrapping ErrNoIPVS and changes nothing. A read-only /proc/sys (an
// unprivileged container) fails with a hint to set the sysctls on the host.
// See the package documentation for the side effect of IPv6 forwarding on
// router advertisements.
func EnableConntrack(families ...Family) error {
	return enableConntrack("/proc/sys", families)
}

// enableConntrack is EnableConntrack with /proc/sys at root.
func enableConntrack(root string, families []Family) error {
	keys := []string{sysctlVSConntrack}
	for _, f := range families {
		switch f {
		case IPv4:
			keys = append(keys, sysctlIPv4Forward)
		case IPv6:
			keys = append(keys, sysctlIPv6Forward)
		default:
			return fmt.Errorf("snat: enabling conntrack: unknown address family %v", f)
		}
	}
	for _, k := range keys {
		err := ensureOne(filepath.Join(root, k))
		switch {
		case err == nil:
		case k == sysctlVSConntrack && errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("snat: setting %s=1: %w", sysctlName(k), ErrNoIPVS)
		case errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission):
			return fmt.Errorf("snat: setting %s=1 (/proc/sys is not writable here: set it on the host, e.g. in /etc/sysctl.d): %w", sysctlName(k), err)
		default:
			return fmt.Errorf("snat: setting %s=1: %w", sysctlName(k), err)
		}
	}
	return nil
}

// EnableTakeover sets, in the network namespace of the calling OS thread,
// what a director needs to continue the NAT connections another director
// forwarded until a failover (see the package documentation):
//
//   - net.netfilter.nf_conntrack_tcp_loose=1 (the kernel's default): the
//     new master creates the conntrack entry of an established TCP
//     connection from its next packet, and the source NAT to the VIP with
//     it;
//   - net.netfilter.nf_conntrack_tcp_be_liberal=1: a director that takes a
//     connection back (a preemption) still has the entry from before, whose
//     TCP window the other director's traffic has left behind. Strict
//     window tracking marks the next packets invalid, they lose their NAT,
//     and the real server resets the connection. kube-proxy offers the
//     same setting (--conntrack-tcp-be-liberal) for the same reason; it
//     only stops conntrack from judging sequence numbers, which the TCP
//     stacks at both ends still check.
//
// A sysctl that does not exist (nf_conntrack not loaded yet) is skipped;
// call it again once the source NAT is installed.
func EnableTakeover() error {
	return enableTakeover("/proc/sys")
}

func enableTakeover(root string) error {
	for _, k := range []string{sysctlTCPLoose, sysctlTCPLiberal} {
		err := ensureOne(filepath.Join(root, k))
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission):
			return fmt.Errorf("snat: setting %s=1 (/proc/sys is not writable here: set it on the host, e.g. in /etc/sysctl.d): %w", sysctlName(k), err)
		default:
			return fmt.Errorf("snat: setting %s=1: %w", sysctlName(k), err)
		}
	}
	return nil
}

// ensureOne makes the sysctl file at p read "1". It opens the file without
// O_CREATE: a missing sysctl is an error, never a new file.
func ensureOne(p string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString("1\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sysctlName turns "net/ipv4/vs/conntrack" into "net.ipv4.vs.conntrack".
func sysctlName(key string) string {
	return strings.ReplaceAll(key, "/", ".")
}
