package render

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
)

// MachineConfig constants: OpenShift's machineconfiguration.openshift.io/v1
// API and the Ignition spec version its machine-config operator reads.
const (
	MachineConfigAPIVersion = "machineconfiguration.openshift.io/v1"
	MachineConfigRoleLabel  = "machineconfiguration.openshift.io/role"
	IgnitionVersion         = "3.2.0"
	dataURLPrefix           = "data:text/plain;charset=utf-8;base64,"
)

// MachineConfigName is the name of the MachineConfig of LoadBalancerConfig
// lbc for the nodes of role: 99-<role>-vipvs-<lbc>.
func MachineConfigName(role, lbc string) string {
	return "99-" + role + "-vipvs-" + lbc
}

// The MachineConfig, as much of it as vipvs writes. Its own small types
// rather than the OpenShift API module: the format is small and stable.
type machineConfig struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   mcMetadata      `json:"metadata"`
	Spec       machineConfigSp `json:"spec"`
}

type mcMetadata struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

type machineConfigSp struct {
	Config ignitionConfig `json:"config"`
}

type ignitionConfig struct {
	Ignition ignitionMeta    `json:"ignition"`
	Storage  ignitionStorage `json:"storage"`
}

type ignitionMeta struct {
	Version string `json:"version"`
}

type ignitionStorage struct {
	Files []ignitionFile `json:"files"`
}

type ignitionFile struct {
	Path      string           `json:"path"`
	Mode      int              `json:"mode"`
	Overwrite bool             `json:"overwrite"`
	Contents  ignitionContents `json:"contents"`
}

type ignitionContents struct {
	Source string `json:"source"`
}

// MachineConfig renders, for OpenShift's installer (its manifests
// directory), the MachineConfig (machineconfiguration.openshift.io/v1,
// Ignition 3.2.0) that writes the files of out, rendered for
// LoadBalancerConfig lbc, on every node of role (e.g. "master"): the static
// pod and the CA files once, and every node's agent config, each as a
// base64 data: URL with its mode (0644, 0600 for an agent config with a
// password). Every node of the role gets every node's agent config; the
// static pod's agent reads its own by its node name, so the role's nodes
// must be exactly the rendered nodes. The bootstrap node's files are left
// out (see BootstrapIgnition).
//
// A file that two nodes would get with different content is an error.
func MachineConfig(lbc, role string, out Output) ([]byte, error) {
	if len(k8svalidation.IsDNS1123Label(role)) > 0 {
		return nil, fmt.Errorf("invalid MachineConfig role %q: must be a DNS-1123 label, e.g. master or worker", role)
	}
	if len(out.Nodes) == 0 {
		return nil, fmt.Errorf("rendering MachineConfig %s: no node files", MachineConfigName(role, lbc))
	}
	byPath := map[string]File{}
	for _, n := range out.Nodes {
		if n.Bootstrap {
			continue // not a node of the role: see BootstrapIgnition
		}
		for _, f := range n.Files {
			if prev, ok := byPath[f.Path]; ok {
				if !bytes.Equal(prev.Data, f.Data) || prev.Mode != f.Mode {
					return nil, fmt.Errorf("rendering MachineConfig %s: file %s differs between nodes", MachineConfigName(role, lbc), f.Path)
				}
				continue
			}
			byPath[f.Path] = f
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	mc := machineConfig{
		APIVersion: MachineConfigAPIVersion,
		Kind:       "MachineConfig",
		Metadata: mcMetadata{
			Name: MachineConfigName(role, lbc),
			Labels: map[string]string{
				MachineConfigRoleLabel:  role,
				LabelLoadBalancerConfig: lbc,
			},
		},
		Spec: machineConfigSp{Config: ignitionConfig{Ignition: ignitionMeta{Version: IgnitionVersion}}},
	}
	for _, p := range paths {
		f := byPath[p]
		mc.Spec.Config.Storage.Files = append(mc.Spec.Config.Storage.Files, ignitionFile{
			Path:      f.Path,
			Mode:      int(f.Mode.Perm()),
			Overwrite: true,
			Contents:  ignitionContents{Source: dataURLPrefix + base64.StdEncoding.EncodeToString(f.Data)},
		})
	}
	body, err := marshalObject(mc)
	if err != nil {
		return nil, fmt.Errorf("rendering MachineConfig %s: %w", MachineConfigName(role, lbc), err)
	}
	header := fmt.Sprintf("# Rendered by vipvs from LoadBalancerConfig %s for the %s nodes; do not edit.\n", lbc, role)
	return append([]byte(header), body...), nil
}

// BootstrapIgnitionName is the file name of the bootstrap node's Ignition
// config of LoadBalancerConfig lbc: bootstrap-vipvs-<lbc>.ign.
func BootstrapIgnitionName(lbc string) string {
	return "bootstrap-vipvs-" + lbc + ".ign"
}

// BootstrapIgnition renders, for the bootstrap node of out (rendered with
// Input.Bootstrap), an Ignition config (spec 3.2.0, JSON) that writes its
// files (its agent config and the static pod), for the OpenShift
// installer's bootstrap Ignition: merge its storage.files into
// bootstrap.ign after `openshift-install create ignition-configs`, or add
// it to the bootstrap's ignition.config.merge. The bootstrap host's kubelet
// runs static pods from /etc/kubernetes/manifests like the masters'.
func BootstrapIgnition(lbc string, out Output) ([]byte, error) {
	var nf *NodeFiles
	for i := range out.Nodes {
		if out.Nodes[i].Bootstrap {
			nf = &out.Nodes[i]
		}
	}
	if nf == nil {
		return nil, fmt.Errorf("rendering %s: no bootstrap node was rendered", BootstrapIgnitionName(lbc))
	}
	cfg := ignitionConfig{Ignition: ignitionMeta{Version: IgnitionVersion}}
	for _, f := range nf.Files {
		cfg.Storage.Files = append(cfg.Storage.Files, ignitionFile{
			Path:      f.Path,
			Mode:      int(f.Mode.Perm()),
			Overwrite: true,
			Contents:  ignitionContents{Source: dataURLPrefix + base64.StdEncoding.EncodeToString(f.Data)},
		})
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", BootstrapIgnitionName(lbc), err)
	}
	return append(b, '\n'), nil
}
