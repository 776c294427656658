package vm

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
)

// Mode bits of the newc header (the S_IF* values of <sys/stat.h>).
const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioCharDev = 0o020000
)

// cpioWriter writes the "newc" (SVR4, no CRC) cpio format that the kernel
// unpacks as an initramfs (Documentation/driver-api/early-userspace/
// buffer-format.rst). It creates missing parent directories itself, because
// the kernel's unpacker does not, and remembers the first error.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, dirs: map[string]bool{".": true, "/": true, "": true}}
}

// header writes one entry's header and name; the caller writes size bytes
// of data and then calls pad.
func (c *cpioWriter) header(name string, mode uint32, size int64, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := uint32(1)
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	// Fields: ino mode uid gid nlink mtime filesize devmajor devminor
	// rdevmajor rdevminor namesize check. mtime 0 keeps images reproducible.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad(int64(len(hdr) + len(name) + 1))
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	_, c.err = c.w.Write(b)
}

// pad aligns the stream to 4 bytes after n bytes of header or data.
func (c *cpioWriter) pad(n int64) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// clean turns name into the relative form cpio archives use ("bin/sh").
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// parents creates the missing parent directories of name.
func (c *cpioWriter) parents(name string) {
	dir := path.Dir(name)
	if c.dirs[dir] {
		return
	}
	c.Dir(dir, 0o755)
}

// Dir adds a directory (and its parents).
func (c *cpioWriter) Dir(name string, perm uint32) {
	name = clean(name)
	if c.dirs[name] {
		return
	}
	c.parents(name)
	c.dirs[name] = true
	c.header(name, cpioDir|perm, 0, 0, 0)
}

// File adds a regular file of size bytes read from r.
func (c *cpioWriter) File(name string, perm uint32, size int64, r io.Reader) {
	name = clean(name)
	c.parents(name)
	c.header(name, cpioFile|perm, size, 0, 0)
	if c.err != nil {
		return
	}
	n, err := io.CopyN(c.w, r, size)
	if err != nil {
		c.err = fmt.Errorf("writing %s to the archive (%d of %d bytes): %w", name, n, size, err)
		return
	}
	c.pad(size)
}

// Bytes adds a regular file holding b.
func (c *cpioWriter) Bytes(name string, perm uint32, b []byte) {
	c.File(name, perm, int64(len(b)), bytes.NewReader(b))
}

// Symlink adds a symbolic link name -> target.
func (c *cpioWriter) Symlink(name, target string) {
	name = clean(name)
	c.parents(name)
	c.header(name, cpioSymlink|0o777, int64(len(target)), 0, 0)
	c.write([]byte(target))
	c.pad(int64(len(target)))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, perm, major, minor uint32) {
	name = clean(name)
	c.parents(name)
	c.header(name, cpioCharDev|perm, 0, major, minor)
}

// Close writes the trailer and returns the first error. It does not close
// the underlying writer.
func (c *cpioWriter) Close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	return c.err
}
