// Package vm runs test binaries inside a real Linux kernel that has IPVS,
// booted under qemu: the host kernel of the CI machines has no IPVS and
// cannot load modules.
//
// Run writes an initramfs (newc cpio, gzip) from Go holding a static
// busybox, the kernel modules (IPVS, nftables with NAT and conntrack, veth,
// bridge, ipip, ... with their dependencies from modules.dep, see
// DefaultModules), the binaries and extra files, and a shell /init. It boots
// Debian's cloud kernel (FindKernel) with
//
//	qemu-system-x86_64 -M q35 -nodefaults -serial stdio -no-reboot -nic none \
//	    -kernel /boot/vmlinuz-<ver> -initrd <img> -append "console=ttyS0 quiet panic=-1 ..."
//
// under KVM when /dev/kvm works and TCG otherwise (VIPVS_VM_ACCEL=tcg forces
// it). The init mounts proc, sys, devtmpfs, devpts, and tmpfs on /tmp, /run
// and /dev/shm, creates /run/netns, insmods the modules in dependency order,
// runs each binary in turn with its output on the serial console and prints
// a marker line with the exit status and a per-run nonce, then powers off.
// Run streams the console to the caller, parses the markers and kills qemu
// by PID on timeout.
//
// The binaries are built on the host with BuildTestBinary (go test -c,
// CGO_ENABLED=0). Inside the VM, InVM reports true (VIPVS_IN_VM=1), the
// process is root, and network namespaces, veth, bridges, nftables and the
// IPVS generic netlink family work; there is no network to the outside.
//
//	vm.RequireDeps(t) // skips (fails when CI is set) without qemu or the kernel
//	bin := filepath.Join(t.TempDir(), "lab.test")
//	err := vm.BuildTestBinary(ctx, "github.com/vipvs/vipvs/test/lab", bin)
//	res, err := vm.Run(ctx, vm.Options{
//		Binaries: []vm.Binary{{Path: bin, Args: []string{"-test.v"}}},
//		Stdout:   os.Stdout,
//	})
//	// err == nil: res.ExitStatus is the status of the binaries
//
// hack/vm-deps.sh installs the Debian packages (qemu-system-x86,
// linux-image-cloud-amd64, busybox-static, xz-utils, zstd); the command
// test/vm/cmd/vmtest runs packages' tests in the VM from the command line.
package vm
