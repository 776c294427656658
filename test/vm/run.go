package vm

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Binary is a static executable to run inside the VM, usually a test binary
// from BuildTestBinary.
type Binary struct {
	// Path is the executable on the host.
	Path string
	// Name is its name in the VM's /bin; the base name of Path if empty.
	Name string
	// Args are its arguments, e.g. "-test.v", "-test.run", "TestX".
	Args []string
	// Env holds extra KEY=value pairs; the VM sets PATH, HOME, TMPDIR=/tmp
	// and VIPVS_IN_VM=1.
	Env []string
	// Dir is its working directory in the VM (created); /tmp/<name>.d if
	// empty.
	Dir string
}

func (b Binary) name() string {
	if b.Name != "" {
		return b.Name
	}
	return filepath.Base(b.Path)
}

// File is a host file or directory tree copied into the VM.
type File struct {
	// Src is the host path.
	Src string
	// Dst is the absolute path in the VM.
	Dst string
	// Mode overrides the permission bits of regular files when not zero.
	Mode fs.FileMode
}

// Accelerators for Options.Accel.
const (
	AccelAuto = ""    // KVM if /dev/kvm works, else TCG
	AccelKVM  = "kvm" // hardware virtualisation
	AccelTCG  = "tcg" // software emulation
)

// AccelEnv overrides the accelerator of Options.Accel == AccelAuto ("kvm" or
// "tcg"), e.g. to measure the software-emulation path on a KVM machine.
const AccelEnv = "VIPVS_VM_ACCEL"

// Options configure one VM run.
type Options struct {
	// Binaries run in order; all run even if one fails.
	Binaries []Binary
	// Files are extra files for the VM.
	Files []File
	// Modules to load, with their dependencies; nil means DefaultModules().
	Modules []string
	// Kernel to boot; FindKernel() if zero.
	Kernel Kernel
	// MemoryMiB is the VM's memory (default 1024). The initramfs, test
	// binaries included, lives in it.
	MemoryMiB int
	// CPUs is the number of virtual CPUs (default 2).
	CPUs int
	// Timeout bounds the whole run, boot included (default 10 minutes).
	Timeout time.Duration
	// Stdout receives the serial console line by line, "\r" removed; may be
	// nil.
	Stdout io.Writer
	// ConsoleLog, if set, is a file that receives a copy of the console.
	ConsoleLog string
	// Accel picks the accelerator: AccelAuto (default), AccelKVM or AccelTCG.
	Accel string
	// Append holds extra kernel command-line arguments.
	Append string
	// Qemu is the qemu binary (default qemu-system-x86_64 from PATH).
	Qemu string
	// Busybox is a static busybox (default: busybox from PATH).
	Busybox string
	// Uncompressed packs the initramfs without gzip: a larger file, but the
	// kernel does not spend emulated time inflating it.
	Uncompressed bool
}

// BinaryStatus is one binary's exit status inside the VM.
type BinaryStatus struct {
	Name   string
	Status int
}

// Result describes a VM run. Run returns it filled as far as the run got,
// also with an error.
type Result struct {
	// ExitStatus is 0 if every binary exited 0 and every module loaded,
	// otherwise the first non-zero status. It means something only when Run
	// returned no error.
	ExitStatus int
	// Binaries holds each binary's status, in the order they ran.
	Binaries []BinaryStatus
	// Accel is the accelerator used ("kvm" or "tcg").
	Accel string
	// PID is qemu's process ID (it has exited when Run returns).
	PID int
	// Build is the time spent writing the initramfs.
	Build time.Duration
	// Boot is the time from starting qemu to the init's first line.
	Boot time.Duration
	// KernelUptime is the guest's own uptime when the init started.
	KernelUptime time.Duration
	// Ready is the time from starting qemu until the modules were loaded
	// and the first binary started.
	Ready time.Duration
	// Total is the time from starting qemu until it exited.
	Total time.Duration
}

// ErrTimeout means the VM did not finish within Options.Timeout; qemu was
// killed.
var ErrTimeout = errors.New("vm timed out")

// ErrNoStatus means qemu exited without the init's exit-status marker, e.g.
// after a kernel panic or when the init could not start.
var ErrNoStatus = errors.New("vm stopped without an exit status")

// Run boots the kernel with an initramfs holding busybox, the modules and
// the binaries, runs the binaries in order and returns their status. The
// error is nil when the VM reported a status, whatever it was: check
// Result.ExitStatus. On timeout or cancellation qemu is killed by its PID;
// the temporary directory is always removed.
func Run(ctx context.Context, o Options) (Result, error) {
	var res Result
	o, err := o.withDefaults()
	if err != nil {
		return res, err
	}
	sweepStale(os.TempDir())
	dir, err := os.MkdirTemp("", fmt.Sprintf("vipvs-vm-%d-", os.Getpid()))
	if err != nil {
		return res, fmt.Errorf("creating work directory: %w", err)
	}
	defer os.RemoveAll(dir)

	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return res, fmt.Errorf("making nonce: %w", err)
	}
	start := time.Now()
	initrd := filepath.Join(dir, "initrd.img")
	if err := writeImage(initrd, &image{
		kernel: o.Kernel, modules: o.Modules, busybox: o.Busybox, binaries: o.Binaries,
		files: o.Files, nonce: hex.EncodeToString(nonce), compress: !o.Uncompressed,
	}); err != nil {
		return res, err
	}
	res.Build = time.Since(start)

	var out io.Writer = io.Discard
	if o.Stdout != nil {
		out = o.Stdout
	}
	if o.ConsoleLog != "" {
		f, err := os.Create(o.ConsoleLog)
		if err != nil {
			return res, fmt.Errorf("creating console log: %w", err)
		}
		defer f.Close()
		out = io.MultiWriter(out, f)
	}

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	accel, bootLimit := o.Accel, time.Duration(0)
	if accel == AccelAuto {
		accel = pickAccel()
		if accel == AccelKVM {
			bootLimit = kvmBootLimit
		}
	}
	p := &console{nonce: hex.EncodeToString(nonce), out: out, res: &res, bootc: make(chan struct{})}
	res.Accel = accel
	err = runQemu(ctx, o.Qemu, qemuArgs(o, accel, initrd), p, bootLimit)
	if err != nil && bootLimit != 0 && !p.booted() && ctx.Err() == nil {
		// /dev/kvm can work for KVM_CREATE_VM and still not run a guest
		// (nested virtualisation in a micro-VM): qemu aborts on an MSR or
		// the guest stalls in real mode. Auto mode falls back to TCG.
		fmt.Fprintf(out, "vm: KVM did not boot the kernel (%v); falling back to TCG\n", err)
		res.Accel = AccelTCG
		p = &console{nonce: p.nonce, out: out, res: &res, bootc: make(chan struct{})}
		err = runQemu(ctx, o.Qemu, qemuArgs(o, AccelTCG, initrd), p, 0)
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return res, fmt.Errorf("running the VM (kernel %s, %s) with a %s limit: %w", o.Kernel.Version, res.Accel, o.Timeout, ErrTimeout)
		}
		return res, fmt.Errorf("running the VM (kernel %s, %s): %w", o.Kernel.Version, res.Accel, err)
	}
	if !p.done {
		return res, fmt.Errorf("running the VM (kernel %s, %s): %w (see the console output)", o.Kernel.Version, res.Accel, ErrNoStatus)
	}
	return res, nil
}

// staleRE matches Run's work directories: vipvs-vm-<pid>-<random>.
var staleRE = regexp.MustCompile(`^vipvs-vm-([0-9]+)-[0-9]+$`)

// sweepStale removes the work directories of runs whose process died
// without cleaning up (SIGKILL, a test binary's timeout panic); qemu itself
// dies with its parent (Pdeathsig). Errors are ignored: a leftover costs
// disk space, not correctness.
func sweepStale(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		m := staleRE.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		os.RemoveAll(filepath.Join(tmp, e.Name()))
	}
}

// kvmBootLimit is how long auto mode waits for the init under KVM before it
// falls back to TCG. KVM boots in about a second.
const kvmBootLimit = 20 * time.Second

// errBootStalled means the init did not start within the boot limit.
var errBootStalled = errors.New("the init did not start in time")

func (o Options) withDefaults() (Options, error) {
	if o.Kernel == (Kernel{}) {
		k, err := FindKernel()
		if err != nil {
			return o, err
		}
		o.Kernel = k
	}
	if o.Modules == nil {
		o.Modules = DefaultModules()
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 1024
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Accel == AccelAuto {
		o.Accel = os.Getenv(AccelEnv)
	}
	switch o.Accel {
	case AccelAuto, AccelKVM, AccelTCG:
	default:
		return o, fmt.Errorf("unknown accelerator %q (want %q or %q)", o.Accel, AccelKVM, AccelTCG)
	}
	var err error
	if o.Qemu, err = lookPath(o.Qemu, "qemu-system-x86_64"); err != nil {
		return o, err
	}
	if o.Busybox, err = lookPath(o.Busybox, "busybox"); err != nil {
		return o, err
	}
	if static, err := isStatic(o.Busybox); err != nil {
		return o, err
	} else if !static {
		return o, fmt.Errorf("busybox %s: %w", o.Busybox, errNotStatic)
	}
	names := map[string]bool{}
	for _, b := range o.Binaries {
		if !binNameRE.MatchString(b.name()) || names[b.name()] {
			return o, fmt.Errorf("binary %s: name %q must be unique and match %s (set Binary.Name)", b.Path, b.name(), binNameRE)
		}
		names[b.name()] = true
		if static, err := isStatic(b.Path); err != nil {
			return o, err
		} else if !static {
			return o, fmt.Errorf("binary %s: %w", b.Path, errNotStatic)
		}
	}
	return o, nil
}

// binNameRE limits the names of binaries in the VM to what the init's
// markers can carry.
var binNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

func lookPath(given, def string) (string, error) {
	if given != "" {
		return given, nil
	}
	p, err := exec.LookPath(def)
	if err != nil {
		return "", fmt.Errorf("finding %s (run hack/vm-deps.sh as root): %w", def, err)
	}
	return p, nil
}

func writeImage(p string, im *image) error {
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("creating initramfs: %w", err)
	}
	if err := im.write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing initramfs: %w", err)
	}
	return nil
}

func qemuArgs(o Options, accel, initrd string) []string {
	cmdline := "console=ttyS0 quiet panic=-1 oops=panic"
	if o.Append != "" {
		cmdline += " " + o.Append
	}
	args := []string{
		"-M", "q35", "-m", strconv.Itoa(o.MemoryMiB), "-smp", strconv.Itoa(o.CPUs),
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
		"-no-reboot", "-nic", "none",
		"-kernel", o.Kernel.Image, "-initrd", initrd, "-append", cmdline,
	}
	if accel == AccelKVM {
		return append(args, "-accel", "kvm", "-cpu", "host")
	}
	return append(args, "-accel", "tcg,thread=multi", "-cpu", "max")
}

// runQemu runs qemu until it exits or ctx ends, feeding its output to p.
// qemu is started from a goroutine locked to its OS thread for qemu's whole
// life, so that Pdeathsig (sent when the starting thread dies) kills qemu
// only when the test process itself dies.
//
// A non-zero bootLimit kills qemu if the init has not started by then.
func runQemu(ctx context.Context, qemu string, args []string, p *console, bootLimit time.Duration) error {
	// An os.Pipe rather than cmd.StdoutPipe: Wait closes the latter as soon
	// as qemu exits, possibly before the last lines (the marker) are read.
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating console pipe: %w", err)
	}
	defer pr.Close()
	type started struct {
		cmd *exec.Cmd
		err error
	}
	startc := make(chan started, 1)
	waitc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cmd := exec.Command(qemu, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		var stderr strings.Builder
		cmd.Stdout = pw
		cmd.Stderr = &stderr
		err := cmd.Start()
		pw.Close() // qemu holds the write end now
		startc <- started{cmd, err}
		if err != nil {
			return
		}
		err = cmd.Wait()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		waitc <- err
	}()
	s := <-startc
	if s.err != nil {
		return fmt.Errorf("starting %s: %w", qemu, s.err)
	}
	p.start = time.Now()
	p.res.PID = s.cmd.Process.Pid
	readc := make(chan error, 1)
	go func() { readc <- p.read(pr) }()

	var stall <-chan time.Time
	if bootLimit > 0 {
		t := time.NewTimer(bootLimit)
		defer t.Stop()
		stall = t.C
	}
	var waitErr error
	var killed error
	for killed == nil && waitErr == nil {
		select {
		case waitErr = <-waitc:
			if waitErr == nil {
				return p.finish(<-readc)
			}
			continue
		case <-p.bootc:
			stall = nil
			continue
		case <-stall:
			killed = errBootStalled
		case <-ctx.Done():
			killed = ctx.Err()
		}
		// By PID: the one process we started.
		if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("killing qemu (pid %d): %w", s.cmd.Process.Pid, err)
		}
		<-waitc
	}
	p.finish(<-readc)
	if killed != nil {
		return fmt.Errorf("qemu (pid %d) killed: %w", s.cmd.Process.Pid, killed)
	}
	return fmt.Errorf("qemu (pid %d): %w", s.cmd.Process.Pid, waitErr)
}

// finish records the run time once the console reader is done.
func (c *console) finish(readErr error) error {
	c.res.Total = time.Since(c.start)
	if readErr != nil {
		return fmt.Errorf("reading the console: %w", readErr)
	}
	return nil
}

// booted reports whether the init has started.
func (c *console) booted() bool {
	select {
	case <-c.bootc:
		return true
	default:
		return false
	}
}

// console parses the serial console and copies it to out.
type console struct {
	nonce string
	out   io.Writer
	res   *Result
	start time.Time
	done  bool
	bootc chan struct{} // closed when the init starts
}

func (c *console) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64*1024)
	var outErr error
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			c.parse(line)
			if outErr == nil {
				_, outErr = io.WriteString(c.out, line+"\n")
			}
		}
		if err == io.EOF {
			return outErr
		}
		if err != nil {
			return err
		}
	}
}

func (c *console) parse(line string) {
	switch {
	case strings.HasPrefix(line, initMarker+" "):
		c.res.Boot = time.Since(c.start)
		c.res.KernelUptime = uptime(line)
		if !c.booted() {
			close(c.bootc)
		}
	case strings.HasPrefix(line, "VMTEST-READY "):
		c.res.Ready = time.Since(c.start)
	case strings.HasPrefix(line, binMarker+" "):
		f := strings.Fields(line)
		if len(f) == 3 {
			if st, err := strconv.Atoi(strings.TrimPrefix(f[2], "status=")); err == nil {
				c.res.Binaries = append(c.res.Binaries, BinaryStatus{Name: f[1], Status: st})
			}
		}
	}
	// A kernel message may share the line: look for the marker anywhere.
	if i := strings.Index(line, exitMarker); i >= 0 && strings.Contains(line, " nonce="+c.nonce) {
		f := strings.Fields(line[i+len(exitMarker):])
		if len(f) > 0 {
			if st, err := strconv.Atoi(f[0]); err == nil {
				c.res.ExitStatus = st
				c.done = true
			}
		}
	}
}

// uptime reads "uptime=1.23" from an init marker line.
func uptime(line string) time.Duration {
	_, v, ok := strings.Cut(line, "uptime=")
	if !ok {
		return 0
	}
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0
	}
	s, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}
