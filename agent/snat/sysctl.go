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
	// sysctlTCPLoose exists once nf_conntrack is loaded (the nat table
	// loads it); EnableConntrack sets it when present.
	sysctlTCPLoose = "net/netfilter/nf_conntrack_tcp_loose"
)

// EnableConntrack sets, in the network namespace of the calling OS thread
// (lock it and setns first to target another):
//
//   - net.ipv4.vs.conntrack=1, always: IPVS then keeps conntrack up to date
//     for the connections it forwards (both families), so that the rules
//     of a Manager match them;
//   - net.ipv4.ip_forward=1 for IPv4, net.ipv6.conf.all.forwarding=1 for
//     IPv6: the director forwards the real servers' answers;
//   - net.netfilter.nf_conntrack_tcp_loose=1 (the kernel's default), when
//     conntrack is loaded: a new master picks up the conntrack state of an
//     established TCP connection from its next packet, so that a
//     connection the IPVS sync brought over gets its source NAT (to the
//     VIP) again. Without conntrack loaded yet it is skipped; the next
//     call sets it.
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
	keys = append(keys, sysctlTCPLoose)
	for _, k := range keys {
		err := ensureOne(filepath.Join(root, k))
		switch {
		case err == nil:
		case k == sysctlTCPLoose && errors.Is(err, fs.ErrNotExist):
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
