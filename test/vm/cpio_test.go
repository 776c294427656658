package vm

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type cpioEntry struct {
	Name         string
	Mode         uint32
	Data         string
	Major, Minor uint32
}

// readCPIO parses a newc archive strictly: magic, alignment, trailer.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	align := func() { off = (off + 3) &^ 3 }
	for {
		if off+110 > len(b) {
			t.Fatalf("truncated header at %d", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, nsize := field(1), field(6), field(9), field(10), field(11)
		off += 110
		name := string(b[off : off+int(nsize)-1])
		if b[off+int(nsize)-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		off += int(nsize)
		align()
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		data := string(b[off : off+int(size)])
		off += int(size)
		align()
		out = append(out, cpioEntry{name, mode, data, rmaj, rmin})
	}
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.Dir("/tmp", 0o1777)
	c.CharDev("/dev/console", 0o600, 5, 1)
	c.Bytes("bin/x.test", 0o755, []byte("12345"))
	c.Symlink("/bin/sh", "busybox")
	c.Bytes("/a/b/c", 0o644, nil)
	c.File("bin/y", 0o755, 3, strings.NewReader("abcdef"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d not a multiple of 4", buf.Len())
	}
	want := []cpioEntry{
		{Name: "tmp", Mode: cpioDir | 0o1777},
		{Name: "dev", Mode: cpioDir | 0o755},
		{Name: "dev/console", Mode: cpioCharDev | 0o600, Major: 5, Minor: 1},
		{Name: "bin", Mode: cpioDir | 0o755},
		{Name: "bin/x.test", Mode: cpioFile | 0o755, Data: "12345"},
		{Name: "bin/sh", Mode: cpioSymlink | 0o777, Data: "busybox"},
		{Name: "a", Mode: cpioDir | 0o755},
		{Name: "a/b", Mode: cpioDir | 0o755},
		{Name: "a/b/c", Mode: cpioFile | 0o644},
		{Name: "bin/y", Mode: cpioFile | 0o755, Data: "abc"},
	}
	if diff := cmp.Diff(want, readCPIO(t, buf.Bytes())); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
}

func TestCPIOWriterShortFile(t *testing.T) {
	c := newCPIOWriter(&bytes.Buffer{})
	c.File("f", 0o644, 10, strings.NewReader("short"))
	if err := c.Close(); err == nil {
		t.Fatal("no error for a file shorter than its size")
	}
}

func TestShQuote(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"-test.v", "-test.v"},
		{"/bin/x.test", "/bin/x.test"},
		{"", "''"},
		{"Test(A|B)$", "'Test(A|B)$'"},
		{"it's", `'it'\''s'`},
		{"a b", "'a b'"},
	} {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			if got := shQuote(tt.in); got != tt.want {
				t.Errorf("shQuote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
