package importer

import (
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

// document is a LoadBalancerConfig as written: without status and the
// empty metadata fields a marshalled object would carry.
type document struct {
	APIVersion string                          `json:"apiVersion"`
	Kind       string                          `json:"kind"`
	Metadata   metadata                        `json:"metadata"`
	Spec       v1alpha1.LoadBalancerConfigSpec `json:"spec"`
}

type metadata struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// secretDocument is a Kubernetes Secret holding a password.
type secretDocument struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metadata          `json:"metadata"`
	Type       string            `json:"type"`
	StringData map[string]string `json:"stringData"`
}

// WriteConfigs writes LoadBalancerConfigs as one YAML stream, a document
// each, with a comment naming the input files.
func WriteConfigs(w io.Writer, configs []v1alpha1.LoadBalancerConfig, files []string) error {
	for i, c := range configs {
		doc := document{
			APIVersion: v1alpha1.GroupVersion.String(),
			Kind:       "LoadBalancerConfig",
			Metadata:   metadata{Name: c.Name},
			Spec:       c.Spec,
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			return fmt.Errorf("encoding LoadBalancerConfig %s: %w", c.Name, err)
		}
		sep := ""
		if i > 0 {
			sep = "---\n"
		}
		if _, err := fmt.Fprintf(w, "%s# Imported by vipvs import from %s.\n# Read the import's report before applying it.\n%s", sep, strings.Join(files, ", "), out); err != nil {
			return fmt.Errorf("writing LoadBalancerConfig %s: %w", c.Name, err)
		}
	}
	return nil
}

// WriteSecrets writes the password Secrets as one YAML stream. The output
// holds the passwords: write it only where a Secret may be.
func WriteSecrets(w io.Writer, secrets []Secret) error {
	for i, s := range secrets {
		doc := secretDocument{
			APIVersion: "v1",
			Kind:       "Secret",
			Metadata:   metadata{Name: s.Name, Namespace: s.Namespace},
			Type:       "Opaque",
			StringData: map[string]string{s.Key: s.Value},
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			return fmt.Errorf("encoding Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		sep := ""
		if i > 0 {
			sep = "---\n"
		}
		if _, err := fmt.Fprintf(w, "%s# The VRRP password of keepalived's auth_pass at %s.\n%s", sep, s.Pos, out); err != nil {
			return fmt.Errorf("writing Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return nil
}
