package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Markers the init prints on the console. The exit-status marker carries a
// nonce that only the init script knows, so a test that prints the marker
// text cannot end the run early or fake its result.
const (
	initMarker   = "VMTEST-INIT"
	binMarker    = "VMTEST-BINARY-EXIT"
	exitMarker   = "VMTEST-EXIT-STATUS="
	inVMEnv      = "VIPVS_IN_VM"
	vmBinDir     = "/bin"
	vmModulesDir = "/lib/modules"
)

// image describes one initramfs.
type image struct {
	kernel   Kernel
	modules  []string
	busybox  string
	binaries []Binary
	files    []File
	nonce    string
	compress bool
}

// write builds the initramfs into w.
func (im *image) write(w io.Writer) error {
	mods, err := im.moduleList()
	if err != nil {
		return err
	}
	out := w
	var zw *gzip.Writer
	if im.compress {
		zw, err = gzip.NewWriterLevel(w, gzip.BestSpeed)
		if err != nil {
			return fmt.Errorf("starting gzip: %w", err)
		}
		out = zw
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	c := newCPIOWriter(bw)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "root", "etc", "lib/modules"} {
		c.Dir(d, 0o755)
	}
	c.Dir("tmp", 0o1777)
	// The kernel opens /dev/console for init before anything is mounted.
	c.CharDev("dev/console", 0o600, 5, 1)
	c.Bytes("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	c.Bytes("etc/group", 0o644, []byte("root:x:0:\n"))
	c.Bytes("etc/hosts", 0o644, []byte("127.0.0.1 localhost\n::1 localhost\n"))
	if err := addHostFile(c, im.busybox, "bin/busybox", 0o755); err != nil {
		return err
	}
	modDir := path.Join(vmModulesDir, im.kernel.Version)
	var loads []string
	for _, m := range mods {
		b, err := readModule(filepath.Join(im.kernel.Modules, m.rel))
		if err != nil {
			return err
		}
		p := path.Join(modDir, uncompressedName(m.rel))
		c.Bytes(p, 0o644, b)
		loads = append(loads, p)
	}
	dep, alias, err := im.moduleIndex(mods)
	if err != nil {
		return err
	}
	c.Bytes(path.Join(modDir, "modules.dep"), 0o644, dep)
	c.Bytes(path.Join(modDir, "modules.alias"), 0o644, alias)
	for _, b := range im.binaries {
		if err := addHostFile(c, b.Path, path.Join(vmBinDir, b.name()), 0o755); err != nil {
			return err
		}
	}
	for _, f := range im.files {
		if err := addHostTree(c, f); err != nil {
			return err
		}
	}
	c.Bytes("init", 0o755, []byte(im.initScript(loads)))
	if err := c.Close(); err != nil {
		return fmt.Errorf("writing initramfs: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing initramfs: %w", err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return fmt.Errorf("compressing initramfs: %w", err)
		}
	}
	return nil
}

func (im *image) moduleList() ([]module, error) {
	t, err := readModuleTree(im.kernel.Modules)
	if err != nil {
		return nil, err
	}
	mods, err := t.resolve(im.modules)
	if err != nil {
		return nil, fmt.Errorf("resolving modules of %s: %w", im.kernel.Version, err)
	}
	return mods, nil
}

// moduleIndex returns modules.dep and modules.alias for the packed modules
// only, with the names of the decompressed files, so that busybox modprobe
// (and the kernel's request_module through /sbin/modprobe) finds them.
func (im *image) moduleIndex(mods []module) (dep, alias []byte, err error) {
	t, err := readModuleTree(im.kernel.Modules)
	if err != nil {
		return nil, nil, err
	}
	packed := map[string]bool{}
	var d bytes.Buffer
	for _, m := range mods {
		packed[m.name] = true
		fmt.Fprintf(&d, "%s:", uncompressedName(m.rel))
		for _, dep := range t.deps[m.name] {
			if p, ok := t.path[dep]; ok {
				fmt.Fprintf(&d, " %s", uncompressedName(p))
			}
		}
		d.WriteString("\n")
	}
	var a bytes.Buffer
	if b, err := os.ReadFile(filepath.Join(im.kernel.Modules, "modules.alias")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "alias" && packed[moduleName(f[2])] {
				a.WriteString(l + "\n")
			}
		}
	}
	return d.Bytes(), a.Bytes(), nil
}

func uncompressedName(rel string) string {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		rel = strings.TrimSuffix(rel, ext)
	}
	return rel
}

// readModule returns a module's ELF object, decompressed: busybox insmod
// does not load compressed modules. Debian 12 ships them uncompressed; later
// kernels use xz or zstd, decompressed with the host's xz/zstd tools.
func readModule(p string) ([]byte, error) {
	var tool []string
	switch {
	case strings.HasSuffix(p, ".ko"):
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading module: %w", err)
		}
		return b, nil
	case strings.HasSuffix(p, ".xz"):
		tool = []string{"xz", "-dc", p}
	case strings.HasSuffix(p, ".zst"):
		tool = []string{"zstd", "-qdc", p}
	case strings.HasSuffix(p, ".gz"):
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("reading module: %w", err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("decompressing %s: %w", p, err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("decompressing %s: %w", p, err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("module %s: unknown file type", p)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(tool[0], tool[1:]...)
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("decompressing %s with %s: %w: %s", p, tool[0], err, strings.TrimSpace(stderr.String()))
	}
	return b, nil
}

// addHostFile copies one host file into the archive.
func addHostFile(c *cpioWriter, src, dst string, perm uint32) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("adding %s to the initramfs: %w", src, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("adding %s to the initramfs: %w", src, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("adding %s to the initramfs: not a regular file", src)
	}
	c.File(dst, perm, st.Size(), f)
	if c.err != nil {
		return fmt.Errorf("adding %s to the initramfs: %w", src, c.err)
	}
	return nil
}

// addHostTree copies a host file or directory tree into the archive.
func addHostTree(c *cpioWriter, f File) error {
	return filepath.WalkDir(f.Src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("adding %s to the initramfs: %w", f.Src, err)
		}
		rel, err := filepath.Rel(f.Src, p)
		if err != nil {
			return fmt.Errorf("adding %s to the initramfs: %w", p, err)
		}
		dst := path.Join(f.Dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("adding %s to the initramfs: %w", p, err)
		}
		perm := uint32(info.Mode().Perm())
		switch {
		case d.IsDir():
			c.Dir(dst, perm)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("adding %s to the initramfs: %w", p, err)
			}
			c.Symlink(dst, target)
		case info.Mode().IsRegular():
			if f.Mode != 0 {
				perm = uint32(f.Mode.Perm())
			}
			return addHostFile(c, p, dst, perm)
		default:
			return fmt.Errorf("adding %s to the initramfs: unsupported file type %s", p, info.Mode().Type())
		}
		return c.err
	})
}

// isStatic reports whether the ELF executable at p has no program
// interpreter, i.e. runs without a dynamic loader.
func isStatic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// initScript returns /init: mount the pseudo file systems, load the modules
// in dependency order, run each binary with its output on the console, print
// the exit-status marker and power off. An insmod failure makes the run fail
// (status 1 at least) but the binaries still run, for the diagnosis.
func (im *image) initScript(loads []string) string {
	var b strings.Builder
	b.WriteString(`#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root TMPDIR=/tmp ` + inVMEnv + `=1
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec devpts /dev/pts
mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run
mkdir -p /run/netns /var
ln -s /run /var/run
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
echo "` + initMarker + ` uptime=$(cut -d' ' -f1 /proc/uptime)"
status=0
`)
	for _, l := range loads {
		fmt.Fprintf(&b, "insmod %s || { echo 'vmtest: insmod %s failed'; status=1; }\n", shQuote(l), path.Base(l))
	}
	b.WriteString("ip link set lo up\nhostname vm\n")
	b.WriteString(`echo "VMTEST-READY uptime=$(cut -d' ' -f1 /proc/uptime)"` + "\n")
	for _, bin := range im.binaries {
		dir := bin.Dir
		if dir == "" {
			dir = "/tmp/" + bin.name() + ".d"
		}
		args := []string{path.Join(vmBinDir, bin.name())}
		args = append(args, bin.Args...)
		for i := range args {
			args[i] = shQuote(args[i])
		}
		var env []string
		for _, e := range bin.Env {
			env = append(env, shQuote(e))
		}
		fmt.Fprintf(&b, "echo %s\n", shQuote("VMTEST-RUN "+strings.Join(args, " ")))
		fmt.Fprintf(&b, "mkdir -p %s\n", shQuote(dir))
		fmt.Fprintf(&b, "(cd %s && exec env %s %s) </dev/null 2>&1\n", shQuote(dir), strings.Join(env, " "), strings.Join(args, " "))
		fmt.Fprintf(&b, "st=$?\necho \"%s %s status=$st\"\n", binMarker, bin.name())
		b.WriteString("[ $status -eq 0 ] && status=$st\n")
	}
	fmt.Fprintf(&b, "echo \"%s$status nonce=%s\"\n", exitMarker, im.nonce)
	b.WriteString("poweroff -f\necho o >/proc/sysrq-trigger\nsleep 10\n")
	return b.String()
}

// errNotStatic is returned for a busybox or test binary that needs a
// dynamic loader, which the initramfs does not have.
var errNotStatic = errors.New("not a static executable (build with CGO_ENABLED=0 or install busybox-static)")
