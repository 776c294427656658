package vm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// InVM reports whether the process runs inside a test VM (the init sets
// VIPVS_IN_VM=1 for every binary).
func InVM() bool {
	return os.Getenv(inVMEnv) == "1"
}

// Missing returns why a VM cannot be booted on this machine (qemu, a static
// busybox or a cloud kernel is missing), or nil if it can.
func Missing() error {
	if _, err := lookPath("", "qemu-system-x86_64"); err != nil {
		return err
	}
	bb, err := lookPath("", "busybox")
	if err != nil {
		return err
	}
	if static, err := isStatic(bb); err != nil {
		return err
	} else if !static {
		return fmt.Errorf("busybox %s: %w", bb, errNotStatic)
	}
	k, err := FindKernel()
	if err != nil {
		return err
	}
	if f, err := os.Open(k.Image); err != nil {
		return fmt.Errorf("kernel image: %w", err)
	} else {
		f.Close()
	}
	return nil
}

// RequireDeps skips the test, with the reason, when a VM cannot be booted
// here. When the CI environment variable is set it fails the test instead,
// so that CI cannot pass by skipping.
func RequireDeps(t testing.TB) {
	t.Helper()
	err := Missing()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("vm: cannot boot a VM in CI: %v", err)
	}
	t.Skipf("vm: cannot boot a VM: %v", err)
}

// BuildTestBinary compiles the tests of package pkg (an import path or a
// ./relative directory, resolved from the current directory) into the
// static executable out: `go test -c` with CGO_ENABLED=0.
func BuildTestBinary(ctx context.Context, pkg, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building tests of %s: finding go: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "test", "-c", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building tests of %s: %w: %s", pkg, err, bytes.TrimSpace(buf.Bytes()))
	}
	if _, err := os.Stat(out); err != nil {
		// go test -c writes nothing for a package without tests.
		return fmt.Errorf("building tests of %s: %w", pkg, err)
	}
	return nil
}

// KVM ioctls (<linux/kvm.h>).
const (
	kvmGetAPIVersion = 0xAE00
	kvmCreateVM      = 0xAE01
	kvmAPIVersion    = 12
)

// KVMUsable reports whether /dev/kvm exists and can create a VM (it may
// exist but fail, e.g. without nested virtualisation).
func KVMUsable() bool {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	v, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmGetAPIVersion, 0)
	if errno != 0 || v != kvmAPIVersion {
		return false
	}
	vm, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmCreateVM, 0)
	if errno != 0 {
		return false
	}
	unix.Close(int(vm))
	return true
}

func pickAccel() string {
	if KVMUsable() {
		return AccelKVM
	}
	return AccelTCG
}
