package ipvs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/vishvananda/netns"
)

// The sysctls of sloppy TCP and SCTP, as paths below /proc/sys.
const (
	sysctlSloppyTCP  = "net/ipv4/vs/sloppy_tcp"
	sysctlSloppySCTP = "net/ipv4/vs/sloppy_sctp"
)

// EnableSloppy sets net.ipv4.vs.sloppy_tcp=1 and net.ipv4.vs.sloppy_sctp=1
// in the Programmer's network namespace (both families: IPVS keeps them
// under ipv4). With them IPVS schedules a TCP or SCTP packet of a
// connection its table does not know, not only a SYN or INIT: a director
// that ECMP hands an established flow of another director balances it,
// and with mh and the same real servers in the same order it picks the
// real server the other director picked, so the flow survives.
//
// It reads each sysctl first and writes only one that is not 1 yet: a
// read-only /proc/sys (an unprivileged container) is fine when the node
// sets them (/etc/sysctl.d); otherwise the error says so.
func (p *Programmer) EnableSloppy() error {
	p.mu.Lock()
	ns := p.ns
	p.mu.Unlock()
	if ns == "" {
		return enableSloppy("/proc/sys")
	}
	return inNamespace(ns, func() error { return enableSloppy("/proc/sys") })
}

// enableSloppy is EnableSloppy with /proc/sys at root, in the calling
// thread's network namespace.
func enableSloppy(root string) error {
	for _, k := range []string{sysctlSloppyTCP, sysctlSloppySCTP} {
		name := strings.ReplaceAll(k, "/", ".")
		err := ensureSysctlOne(filepath.Join(root, k))
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("ipvs: setting %s=1: %w", name, ErrNoIPVS)
		case errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission):
			return fmt.Errorf("ipvs: setting %s=1 (/proc/sys is not writable here: set it on the node, e.g. in /etc/sysctl.d): %w", name, err)
		default:
			return fmt.Errorf("ipvs: setting %s=1: %w", name, err)
		}
	}
	return nil
}

// ensureSysctlOne makes the sysctl file at path read "1"; it never creates
// a file.
func ensureSysctlOne(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString("1\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// inNamespace runs fn on a new goroutine, locked to its OS thread and
// switched into the network namespace at path, and waits for it. The
// thread is switched back; if that fails it stays locked and so ends with
// the goroutine, and no other goroutine ever runs in the wrong namespace.
func inNamespace(path string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- runLocked(path, fn)
	}()
	return <-done
}

// runLocked is inNamespace's goroutine, on its locked thread.
func runLocked(path string, fn func() error) error {
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("ipvs: reading the thread's network namespace: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("ipvs: opening network namespace %s: %w", path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("ipvs: entering network namespace %s: %w", path, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("ipvs: leaving network namespace %s: %w", path, err))
	}
	runtime.UnlockOSThread()
	return ferr
}
