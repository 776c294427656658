package render

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mcFile is a file of a decoded MachineConfig.
type mcFile struct {
	Path      string `json:"path"`
	Mode      int    `json:"mode"`
	Overwrite bool   `json:"overwrite"`
	Contents  struct {
		Source string `json:"source"`
	} `json:"contents"`
}

// decodedMachineConfig is the MachineConfig as OpenShift reads it.
type decodedMachineConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Config struct {
			Ignition struct {
				Version string `json:"version"`
			} `json:"ignition"`
			Storage struct {
				Files []mcFile `json:"files"`
			} `json:"storage"`
		} `json:"config"`
	} `json:"spec"`
}

func TestMachineConfig(t *testing.T) {
	for _, tc := range goldenCases(t) {
		if tc.name != "control-plane" && tc.name != "v2-password" && tc.name != "ca-secret" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			lbc := tc.in.Config.Name
			data, err := MachineConfig(lbc, "master", out)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, data)

			var mc decodedMachineConfig
			if err := decodeStrict(data, &mc); err != nil {
				t.Fatalf("the MachineConfig does not decode strictly: %v", err)
			}
			if mc.APIVersion != "machineconfiguration.openshift.io/v1" || mc.Kind != "MachineConfig" {
				t.Errorf("apiVersion %q kind %q", mc.APIVersion, mc.Kind)
			}
			if mc.Metadata.Name != "99-master-vipvs-"+lbc || mc.Metadata.Labels["machineconfiguration.openshift.io/role"] != "master" {
				t.Errorf("metadata %+v", mc.Metadata)
			}
			if mc.Spec.Config.Ignition.Version != "3.2.0" {
				t.Errorf("ignition version %q, want 3.2.0", mc.Spec.Config.Ignition.Version)
			}
			// Every file of every node, once.
			want := map[string]File{}
			for _, n := range out.Nodes {
				for _, f := range n.Files {
					want[f.Path] = f
				}
			}
			got := map[string]File{}
			for _, f := range mc.Spec.Config.Storage.Files {
				b64, ok := strings.CutPrefix(f.Contents.Source, "data:text/plain;charset=utf-8;base64,")
				if !ok {
					t.Fatalf("%s: source is not a base64 data: URL: %.40s", f.Path, f.Contents.Source)
				}
				d, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					t.Fatalf("%s: %v", f.Path, err)
				}
				if _, dup := got[f.Path]; dup {
					t.Errorf("%s is listed twice", f.Path)
				}
				if !f.Overwrite {
					t.Errorf("%s: overwrite is false", f.Path)
				}
				got[f.Path] = File{Path: f.Path, Data: d, Mode: os.FileMode(f.Mode)}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("files (-rendered +MachineConfig):\n%s", diff)
			}
		})
	}
}

func TestMachineConfigErrors(t *testing.T) {
	out, err := Render(baseInput())
	if err != nil {
		t.Fatal(err)
	}
	differs := Output{Nodes: []NodeFiles{
		{NodeName: "a", Files: []File{{Path: "/etc/x", Data: []byte("1"), Mode: ModePublic}}},
		{NodeName: "b", Files: []File{{Path: "/etc/x", Data: []byte("2"), Mode: ModePublic}}},
	}}
	tests := []struct {
		name string
		role string
		out  Output
		want string
	}{
		{"role that is not a label", "Master", out, `invalid MachineConfig role "Master": must be a DNS-1123 label, e.g. master or worker`},
		{"empty role", "", out, `invalid MachineConfig role "": must be a DNS-1123 label, e.g. master or worker`},
		{"no nodes", "master", Output{}, "rendering MachineConfig 99-master-vipvs-api: no node files"},
		{"a file that differs between nodes", "master", differs, "rendering MachineConfig 99-master-vipvs-api: file /etc/x differs between nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MachineConfig("api", tt.role, tt.out)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got error %v, want %s", err, tt.want)
			}
		})
	}
}
