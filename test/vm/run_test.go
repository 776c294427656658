package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOptionsRejected(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	static, err := isStatic(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !static {
		t.Skip("the test binary is not static (cgo): it cannot stand in for busybox")
	}
	base := Options{Kernel: Kernel{Version: "v", Image: "i", Modules: "m"}, Qemu: "qemu", Busybox: exe}
	for _, tt := range []struct {
		name    string
		change  func(*Options)
		wantErr string
	}{
		{"unknown accelerator", func(o *Options) { o.Accel = "hvf" }, `unknown accelerator "hvf"`},
		{"same name twice", func(o *Options) {
			o.Binaries = []Binary{{Path: exe}, {Path: "/elsewhere/" + filepath.Base(exe)}}
		}, "must be unique"},
		{"name with a space", func(o *Options) { o.Binaries = []Binary{{Path: exe, Name: "a b"}} }, "must be unique and match"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.change(&o)
			_, err := o.withDefaults()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSweepStale(t *testing.T) {
	tmp := t.TempDir()
	// A PID that belongs to no process: a reaped child's.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("running true: %v", err)
	}
	dead := fmt.Sprintf("vipvs-vm-%d-123", cmd.Process.Pid)
	live := fmt.Sprintf("vipvs-vm-%d-456", os.Getpid())
	other := "vipvs-vm-notmine"
	for _, d := range []string{dead, live, other} {
		if err := os.MkdirAll(filepath.Join(tmp, d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sweepStale(tmp)
	var got []string
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if diff := cmp.Diff([]string{live, other}, got); diff != "" {
		t.Errorf("left after the sweep (-want +got):\n%s", diff)
	}
}
