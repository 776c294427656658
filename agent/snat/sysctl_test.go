package snat

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeProcSys writes the sysctl files of vals (key: path below /proc/sys)
// into a temporary directory, with an old modification time, and returns
// it.
func fakeProcSys(t *testing.T, vals map[string]string) string {
	t.Helper()
	root := t.TempDir()
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for k, v := range vals {
		p := filepath.Join(root, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// readProcSys returns the value of every file below root and whether it
// was written (its modification time changed).
func readProcSys(t *testing.T, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		v := strings.TrimSpace(string(b))
		if info.ModTime().Year() != 2000 {
			v += " (written)"
		}
		got[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestEnableConntrack(t *testing.T) {
	all := map[string]string{sysctlVSConntrack: "0", sysctlIPv4Forward: "0", sysctlIPv6Forward: "0"}
	tests := []struct {
		name     string
		files    map[string]string
		families []Family
		want     map[string]string
		wantErr  string
		errIs    error
	}{
		{
			name: "conntrack only", files: all,
			want: map[string]string{sysctlVSConntrack: "1 (written)", sysctlIPv4Forward: "0", sysctlIPv6Forward: "0"},
		},
		{
			name: "ipv4", files: all, families: []Family{IPv4},
			want: map[string]string{sysctlVSConntrack: "1 (written)", sysctlIPv4Forward: "1 (written)", sysctlIPv6Forward: "0"},
		},
		{
			name: "both families", files: all, families: []Family{IPv6, IPv4},
			want: map[string]string{sysctlVSConntrack: "1 (written)", sysctlIPv4Forward: "1 (written)", sysctlIPv6Forward: "1 (written)"},
		},
		{
			name:     "already set: nothing written",
			files:    map[string]string{sysctlVSConntrack: "1", sysctlIPv4Forward: "1", sysctlIPv6Forward: "0"},
			families: []Family{IPv4},
			want:     map[string]string{sysctlVSConntrack: "1", sysctlIPv4Forward: "1", sysctlIPv6Forward: "0"},
		},
		{
			name:     "no IPVS: ErrNoIPVS, forwarding untouched",
			files:    map[string]string{sysctlIPv4Forward: "0", sysctlIPv6Forward: "0"},
			families: []Family{IPv4, IPv6},
			want:     map[string]string{sysctlIPv4Forward: "0", sysctlIPv6Forward: "0"},
			wantErr:  "snat: setting net.ipv4.vs.conntrack=1: snat: the kernel has no IPVS",
			errIs:    ErrNoIPVS,
		},
		{
			name:     "no IPv6: error names the sysctl, no file created",
			files:    map[string]string{sysctlVSConntrack: "0", sysctlIPv4Forward: "0"},
			families: []Family{IPv6},
			want:     map[string]string{sysctlVSConntrack: "1 (written)", sysctlIPv4Forward: "0"},
			wantErr:  "snat: setting net.ipv6.conf.all.forwarding=1: open ",
			errIs:    os.ErrNotExist,
		},
		{
			name:     "unknown family: nothing written",
			files:    all,
			families: []Family{IPv4, 5},
			want:     map[string]string{sysctlVSConntrack: "0", sysctlIPv4Forward: "0", sysctlIPv6Forward: "0"},
			wantErr:  "snat: enabling conntrack: unknown address family family-5",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeProcSys(t, tt.files)
			err := enableConntrack(root, tt.families)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("enableConntrack: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
				t.Errorf("enableConntrack = %v, want an error starting with %q", err, tt.wantErr)
			case tt.errIs != nil && !errors.Is(err, tt.errIs):
				t.Errorf("enableConntrack = %v, want it to wrap %v", err, tt.errIs)
			}
			if diff := cmp.Diff(tt.want, readProcSys(t, root)); diff != "" {
				t.Errorf("sysctls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnableTakeover(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  map[string]string
	}{
		{"both set", map[string]string{sysctlTCPLoose: "0", sysctlTCPLiberal: "0"}, map[string]string{sysctlTCPLoose: "1 (written)", sysctlTCPLiberal: "1 (written)"}},
		{"loose already on", map[string]string{sysctlTCPLoose: "1", sysctlTCPLiberal: "0"}, map[string]string{sysctlTCPLoose: "1", sysctlTCPLiberal: "1 (written)"}},
		{"no conntrack yet: skipped", map[string]string{sysctlIPv4Forward: "1"}, map[string]string{sysctlIPv4Forward: "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeProcSys(t, tt.files)
			if err := enableTakeover(root); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, readProcSys(t, root)); diff != "" {
				t.Errorf("sysctls (-want +got):\n%s", diff)
			}
		})
	}
}
