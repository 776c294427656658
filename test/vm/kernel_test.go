package vm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindKernel(t *testing.T) {
	root := t.TempDir()
	mods, boot := filepath.Join(root, "modules"), filepath.Join(root, "boot")
	if _, err := findKernel(mods, boot); !errors.Is(err, ErrNoKernel) {
		t.Fatalf("empty: err = %v, want ErrNoKernel", err)
	}
	for _, v := range []string{"6.1.0-9-cloud-amd64", "6.1.0-10-cloud-amd64", "6.1.0-11-amd64", "6.1.0-12-cloud-amd64"} {
		writeFile(t, filepath.Join(mods, v, "modules.dep"), "")
		if v != "6.1.0-12-cloud-amd64" { // modules without an image
			writeFile(t, filepath.Join(boot, "vmlinuz-"+v), "")
		}
	}
	writeFile(t, filepath.Join(boot, "vmlinuz-6.1.0-11-amd64"), "")
	k, err := findKernel(mods, boot)
	if err != nil {
		t.Fatal(err)
	}
	want := Kernel{
		Version: "6.1.0-10-cloud-amd64",
		Image:   filepath.Join(boot, "vmlinuz-6.1.0-10-cloud-amd64"),
		Modules: filepath.Join(mods, "6.1.0-10-cloud-amd64"),
	}
	if diff := cmp.Diff(want, k); diff != "" {
		t.Errorf("kernel (-want +got):\n%s", diff)
	}
}

func TestResolveModules(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "modules.dep"), strings.Join([]string{
		"kernel/net/netfilter/ipvs/ip_vs_rr.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko.xz kernel/net/netfilter/nf_conntrack.ko.xz kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko.xz kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko.xz kernel/lib/libcrc32c.ko.xz",
		"kernel/net/netfilter/ipvs/ip_vs.ko.xz: kernel/net/netfilter/nf_conntrack.ko.xz kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko.xz kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko.xz kernel/lib/libcrc32c.ko.xz",
		"kernel/net/netfilter/nf_conntrack.ko.xz: kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko.xz kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko.xz kernel/lib/libcrc32c.ko.xz",
		"kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko.xz:",
		"kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko.xz:",
		"kernel/lib/libcrc32c.ko.xz:",
		"kernel/drivers/net/veth.ko.xz:",
		"",
	}, "\n"))
	writeFile(t, filepath.Join(dir, "modules.builtin"), "kernel/net/ipv6/ipv6.ko\n")
	tree, err := readModuleTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := tree.resolve([]string{"ip_vs_rr", "ipv6", "veth", "ip-vs"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mods {
		got = append(got, m.name)
	}
	want := []string{"nf_defrag_ipv6", "nf_defrag_ipv4", "libcrc32c", "nf_conntrack", "ip_vs", "ip_vs_rr", "veth"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("load order (-want +got):\n%s", diff)
	}
	if _, err := tree.resolve([]string{"veth", "no_such_module"}); err == nil || !strings.Contains(err.Error(), "no_such_module") {
		t.Errorf("unknown module: err = %v, want one naming it", err)
	}
}

func TestConsoleParse(t *testing.T) {
	var out strings.Builder
	res := &Result{}
	c := &console{nonce: "abc", out: &out, res: res, bootc: make(chan struct{})}
	input := "noise\r\nVMTEST-INIT uptime=1.50\r\n" +
		"VMTEST-EXIT-STATUS=0 nonce=wrong\n" + // a test printing the marker text
		"VMTEST-BINARY-EXIT a.test status=0\nVMTEST-BINARY-EXIT b.test status=3\n" +
		"[    2.1] x: VMTEST-EXIT-STATUS=3 nonce=abc\n" + // shares a line with a kernel message
		"tail without newline"
	if err := c.read(strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	if !c.done || res.ExitStatus != 3 {
		t.Errorf("done=%v status=%d, want done with 3", c.done, res.ExitStatus)
	}
	if !c.booted() || res.KernelUptime != 1500*time.Millisecond {
		t.Errorf("booted=%v uptime=%s, want booted at 1.5s", c.booted(), res.KernelUptime)
	}
	want := []BinaryStatus{{"a.test", 0}, {"b.test", 3}}
	if diff := cmp.Diff(want, res.Binaries); diff != "" {
		t.Errorf("binaries (-want +got):\n%s", diff)
	}
	if strings.Contains(out.String(), "\r") || !strings.HasSuffix(out.String(), "tail without newline\n") {
		t.Errorf("console copy %q", out.String())
	}
}

func TestInitScript(t *testing.T) {
	im := &image{nonce: "n0", binaries: []Binary{
		{Path: "/host/a.test", Args: []string{"-test.run", "Test(A|B)"}, Env: []string{"X=1"}},
		{Path: "/host/b", Name: "b.test", Dir: "/work"},
	}}
	s := im.initScript([]string{"/lib/modules/v/kernel/a.ko"})
	for _, want := range []string{
		"#!/bin/busybox sh\n",
		"mkdir -p /run/netns",
		"insmod /lib/modules/v/kernel/a.ko || { echo 'vmtest: insmod a.ko failed'; status=1; }",
		"(cd /tmp/a.test.d && exec env X=1 /bin/a.test -test.run 'Test(A|B)') </dev/null",
		"(cd /work && exec env  /bin/b.test) </dev/null",
		`echo "VMTEST-EXIT-STATUS=$status nonce=n0"`,
		"poweroff -f",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
}
