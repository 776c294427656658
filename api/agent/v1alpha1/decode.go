package v1alpha1

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/internal/strictyaml"
)

// Decode decodes one AgentConfig YAML (or JSON) document strictly (see
// strictyaml.Decode): a document that is not one mapping, a repeated key, a
// key that is not a field (names are case-sensitive) and a value of the
// wrong type (an unquoted number or boolean for a string:
// `authPassword: 0123`, `name: yes`) are errors. Every unknown field and
// type mismatch is reported, each naming its field path, in a
// field.ErrorList returned as a utilerrors.Aggregate; authPassword's value
// is never shown. Decode neither defaults nor validates values: see
// SetDefaults and package api/validation.
func Decode(data []byte) (*AgentConfig, error) {
	var c AgentConfig
	if err := strictyaml.Decode(data, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Marshal encodes c as YAML, with keys in alphabetical order. Decode reads
// the result back to an equal AgentConfig.
func Marshal(c *AgentConfig) ([]byte, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding agent config: %w", err)
	}
	return b, nil
}
